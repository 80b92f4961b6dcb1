//! The alert store, written once for SQLite and PostgreSQL: both schemas keep times as
//! milliseconds since the epoch and booleans as integers. Statements are written with `$N`
//! placeholders ([`Sql::numbered`]); texts are bound and read through the backend, which
//! escapes NUL on PostgreSQL as the record store does.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use emdp_app::ports::{
    Alert, AlertEvent, AlertFilter, AlertRule, AlertState, AlertStore, DeliveryAttempt, EventKind, NewAlert, RuleKind,
    RuleSpec, Severity, ShareScope, StoreError,
};
use emdp_domain::{Admission, QualityStatus};

use crate::error::DbResult;
use crate::rows::from_millis;
use crate::sql::{Backend, Cols, On, Sql, Tx, execute, fetch};
use crate::store::{SqlStore, row_on};

/// Columns of `alert_rules` in the order `rule_row` reads them.
const RULE_COLUMNS: &str = "id, name, kind, params, severity, cooldown_seconds, enabled, created_at, updated_at";

/// Columns of `alerts` in the order `alert_row` reads them.
const ALERT_COLUMNS: &str = "id, rule_id, rule_name, severity, subject, building, state, fired_at, resolved_at, \
     acknowledged_at, message, details";

/// Columns of `webhook_deliveries` in the order `attempt_row` reads them.
const ATTEMPT_COLUMNS: &str = "event_seq, alert_id, url, attempt, at, status, success, error, duration_ms";

fn other(text: impl std::fmt::Display) -> StoreError {
    StoreError::Other(text.to_string())
}

/// A time column (epoch milliseconds).
fn millis_at(row: &impl Cols, index: usize) -> Result<DateTime<Utc>, StoreError> {
    Ok(from_millis(row.int(index)?))
}

fn opt_millis_at(row: &impl Cols, index: usize) -> Result<Option<DateTime<Utc>>, StoreError> {
    Ok(row.opt_int(index)?.map(from_millis))
}

fn rule_row(row: &impl Cols) -> Result<AlertRule, StoreError> {
    let (kind, severity) = (row.text(2)?, row.text(4)?);
    let params: serde_json::Value = serde_json::from_str(&row.text(3)?).map_err(other)?;
    Ok(AlertRule {
        id: row.int(0)?,
        spec: RuleSpec {
            name: row.text(1)?,
            kind: RuleKind::from_parts(&kind, params).map_err(other)?,
            severity: Severity::parse(&severity).ok_or_else(|| other(format!("bad severity {severity}")))?,
            cooldown_seconds: row.int(5)?.max(0) as u64,
            enabled: row.int(6)? != 0,
        },
        created_at: millis_at(row, 7)?,
        updated_at: millis_at(row, 8)?,
    })
}

fn alert_row(row: &impl Cols) -> Result<Alert, StoreError> {
    let (severity, state) = (row.text(3)?, row.text(6)?);
    Ok(Alert {
        id: row.int(0)?,
        rule_id: row.int(1)?,
        rule_name: row.text(2)?,
        severity: Severity::parse(&severity).ok_or_else(|| other(format!("bad severity {severity}")))?,
        subject: row.text(4)?,
        building: row.opt_text(5)?,
        state: AlertState::parse(&state).ok_or_else(|| other(format!("bad alert state {state}")))?,
        fired_at: millis_at(row, 7)?,
        resolved_at: opt_millis_at(row, 8)?,
        acknowledged_at: opt_millis_at(row, 9)?,
        message: row.text(10)?,
        details: serde_json::from_str(&row.text(11)?).map_err(other)?,
    })
}

fn attempt_row(row: &impl Cols) -> Result<DeliveryAttempt, StoreError> {
    Ok(DeliveryAttempt {
        event_seq: row.int(0)?,
        alert_id: row.int(1)?,
        url: row.text(2)?,
        attempt: row.int(3)?.max(0) as u32,
        at: millis_at(row, 4)?,
        status: row.opt_int(5)?.map(|s| s as u16),
        success: row.int(6)? != 0,
        error: row.opt_text(7)?,
        duration_ms: row.int(8)?.max(0) as u64,
    })
}

fn event_row(row: &impl Cols) -> Result<AlertEvent, StoreError> {
    let kind = row.text(1)?;
    Ok(AlertEvent {
        seq: row.int(0)?,
        kind: EventKind::parse(&kind).ok_or_else(|| other(format!("bad event kind {kind}")))?,
        at: millis_at(row, 2)?,
        alert: serde_json::from_str(&row.text(3)?).map_err(other)?,
    })
}

/// The rule statement's parameters $1-$6: name, kind, params, severity, cooldown, enabled.
fn rule_params(spec: &RuleSpec) -> Vec<crate::sql::Param> {
    vec![
        spec.name.as_str().into(),
        spec.kind.name().into(),
        spec.kind.params().to_string().into(),
        spec.severity.as_str().into(),
        (spec.cooldown_seconds.min(i64::MAX as u64) as i64).into(),
        i64::from(spec.enabled).into(),
    ]
}

impl<B: Backend> SqlStore<B> {
    /// Logs an event for `alert` in `tx`.
    async fn log_event(
        &self,
        tx: &mut Tx<B>,
        kind: EventKind,
        at: DateTime<Utc>,
        alert: &Alert,
    ) -> Result<AlertEvent, StoreError> {
        let payload = serde_json::to_string(alert).map_err(other)?;
        let sql = self.sql(
            "INSERT INTO alert_events (alert_id, kind, at, payload) VALUES ($1, $2, $3, $4) RETURNING seq",
            vec![alert.id.into(), kind.as_str().into(), at.timestamp_millis().into(), payload.into()],
        );
        let row = row_on::<B>(On::Conn(&mut **tx), &sql).await?.ok_or(StoreError::NotFound)?;
        Ok(AlertEvent { seq: row.int(0)?, kind, at, alert: alert.clone() })
    }

    /// Runs an `UPDATE alerts ... RETURNING` statement in a transaction and logs `kind` for the
    /// alert it changed; `None` when it changed none.
    async fn change_alert(
        &self,
        sql: Sql,
        kind: EventKind,
        at: DateTime<Utc>,
    ) -> Result<Option<(Alert, AlertEvent)>, StoreError> {
        let mut tx = self.begin(false).await?;
        let Some(stored) = row_on::<B>(On::Conn(&mut *tx), &sql).await?.as_ref().map(alert_row).transpose()? else {
            return Ok(None);
        };
        let event = self.log_event(&mut tx, kind, at, &stored).await?;
        tx.commit().await.db()?;
        Ok(Some((stored, event)))
    }

    async fn alerts(&self, sql: Sql) -> Result<Vec<Alert>, StoreError> {
        self.rows(&sql).await?.iter().map(alert_row).collect()
    }
}

#[async_trait]
impl<B: Backend> AlertStore for SqlStore<B> {
    async fn list_rules(&self) -> Result<Vec<AlertRule>, StoreError> {
        let sql = self.sql(&format!("SELECT {RULE_COLUMNS} FROM alert_rules ORDER BY id"), Vec::new());
        self.rows(&sql).await?.iter().map(rule_row).collect()
    }

    async fn get_rule(&self, id: i64) -> Result<Option<AlertRule>, StoreError> {
        let sql = self.sql(&format!("SELECT {RULE_COLUMNS} FROM alert_rules WHERE id = $1"), vec![id.into()]);
        row_on::<B>(self.pooled(), &sql).await?.as_ref().map(rule_row).transpose()
    }

    async fn create_rule(&self, spec: &RuleSpec, at: DateTime<Utc>) -> Result<AlertRule, StoreError> {
        let mut params = rule_params(spec);
        params.extend([at.timestamp_millis().into(), at.timestamp_millis().into()]);
        let sql = self.sql(
            &format!(
                "INSERT INTO alert_rules (name, kind, params, severity, cooldown_seconds, enabled, created_at, \
                 updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {RULE_COLUMNS}"
            ),
            params,
        );
        rule_row(&row_on::<B>(self.pooled(), &sql).await?.ok_or(StoreError::NotFound)?)
    }

    async fn update_rule(&self, id: i64, spec: &RuleSpec, at: DateTime<Utc>) -> Result<AlertRule, StoreError> {
        let mut params = rule_params(spec);
        params.extend([at.timestamp_millis().into(), id.into()]);
        let sql = self.sql(
            &format!(
                "UPDATE alert_rules SET name = $1, kind = $2, params = $3, severity = $4, cooldown_seconds = $5, \
                 enabled = $6, updated_at = $7 WHERE id = $8 RETURNING {RULE_COLUMNS}"
            ),
            params,
        );
        row_on::<B>(self.pooled(), &sql).await?.as_ref().map(rule_row).transpose()?.ok_or(StoreError::NotFound)
    }

    async fn delete_rule(&self, id: i64) -> Result<bool, StoreError> {
        let sql = self.sql("DELETE FROM alert_rules WHERE id = $1 RETURNING id", vec![id.into()]);
        Ok(row_on::<B>(self.pooled(), &sql).await?.is_some())
    }

    async fn fire(&self, alert: &NewAlert) -> Result<AlertEvent, StoreError> {
        let mut tx = self.begin(false).await?;
        let sql = self.sql(
            &format!(
                "INSERT INTO alerts (rule_id, rule_name, severity, subject, building, state, fired_at, message, \
                 details) VALUES ($1, $2, $3, $4, $5, 'firing', $6, $7, $8) RETURNING {ALERT_COLUMNS}"
            ),
            vec![
                alert.rule_id.into(),
                alert.rule_name.as_str().into(),
                alert.severity.as_str().into(),
                alert.subject.as_str().into(),
                alert.building.as_deref().into(),
                alert.fired_at.timestamp_millis().into(),
                alert.message.as_str().into(),
                alert.details.to_string().into(),
            ],
        );
        let stored = alert_row(&row_on::<B>(On::Conn(&mut *tx), &sql).await?.ok_or(StoreError::NotFound)?)?;
        let event = self.log_event(&mut tx, EventKind::Fired, alert.fired_at, &stored).await?;
        tx.commit().await.db()?;
        Ok(event)
    }

    async fn resolve(&self, id: i64, at: DateTime<Utc>) -> Result<AlertEvent, StoreError> {
        let sql = self.sql(
            &format!(
                "UPDATE alerts SET state = 'resolved', resolved_at = $1 WHERE id = $2 AND state = 'firing' \
                 RETURNING {ALERT_COLUMNS}"
            ),
            vec![at.timestamp_millis().into(), id.into()],
        );
        let (_, event) = self.change_alert(sql, EventKind::Resolved, at).await?.ok_or(StoreError::NotFound)?;
        Ok(event)
    }

    async fn acknowledge(&self, id: i64, at: DateTime<Utc>) -> Result<(Alert, Option<AlertEvent>), StoreError> {
        let sql = self.sql(
            &format!(
                "UPDATE alerts SET acknowledged_at = $1 WHERE id = $2 AND acknowledged_at IS NULL \
                 RETURNING {ALERT_COLUMNS}"
            ),
            vec![at.timestamp_millis().into(), id.into()],
        );
        match self.change_alert(sql, EventKind::Acknowledged, at).await? {
            Some((stored, event)) => Ok((stored, Some(event))),
            None => Ok((self.get_alert(id).await?.ok_or(StoreError::NotFound)?, None)),
        }
    }

    async fn get_alert(&self, id: i64) -> Result<Option<Alert>, StoreError> {
        let sql = self.sql(&format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = $1"), vec![id.into()]);
        Ok(self.alerts(sql).await?.into_iter().next())
    }

    async fn list_alerts(
        &self,
        filter: &AlertFilter,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Alert>, StoreError> {
        let sql = self.sql(
            &format!(
                "SELECT {ALERT_COLUMNS} FROM alerts WHERE ($1 IS NULL OR state = $1) \
                 AND ($2 IS NULL OR severity = $2) AND ($3 IS NULL OR building = $3) \
                 AND ($4 IS NULL OR rule_id = $4) AND ($5 IS NULL OR id < $5) ORDER BY id DESC LIMIT $6"
            ),
            vec![
                filter.state.map(|s| s.as_str()).into(),
                filter.severity.map(|s| s.as_str()).into(),
                filter.building.as_deref().into(),
                filter.rule_id.into(),
                before.into(),
                i64::from(limit).into(),
            ],
        );
        self.alerts(sql).await
    }

    async fn firing_alerts(&self) -> Result<Vec<Alert>, StoreError> {
        self.alerts(
            self.sql(&format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE state = 'firing' ORDER BY id"), Vec::new()),
        )
        .await
    }

    async fn events_after(&self, seq: i64, limit: u32) -> Result<Vec<AlertEvent>, StoreError> {
        let sql = self.sql(
            "SELECT seq, kind, at, payload FROM alert_events WHERE seq > $1 ORDER BY seq LIMIT $2",
            vec![seq.into(), i64::from(limit).into()],
        );
        self.rows(&sql).await?.iter().map(event_row).collect()
    }

    async fn record_attempt(&self, attempt: &DeliveryAttempt) -> Result<(), StoreError> {
        let sql = self.sql(
            &format!("INSERT INTO webhook_deliveries ({ATTEMPT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"),
            vec![
                attempt.event_seq.into(),
                attempt.alert_id.into(),
                attempt.url.as_str().into(),
                i64::from(attempt.attempt).into(),
                attempt.at.timestamp_millis().into(),
                attempt.status.map(i64::from).into(),
                i64::from(attempt.success).into(),
                attempt.error.as_deref().into(),
                (attempt.duration_ms.min(i64::MAX as u64) as i64).into(),
            ],
        );
        execute::<B>(self.pooled(), &sql).await
    }

    async fn attempts(&self, alert_id: i64) -> Result<Vec<DeliveryAttempt>, StoreError> {
        let sql = self.sql(
            &format!("SELECT {ATTEMPT_COLUMNS} FROM webhook_deliveries WHERE alert_id = $1 ORDER BY id"),
            vec![alert_id.into()],
        );
        self.rows(&sql).await?.iter().map(attempt_row).collect()
    }

    async fn last_arrivals(&self) -> Result<Vec<(String, DateTime<Utc>)>, StoreError> {
        // An edit (PATCH) is an operator's, not a sign of life from the building.
        let sql = self.sql(
            &format!(
                "SELECT building_id, {} FROM raw_records WHERE building_id IS NOT NULL AND admission <> $1 \
                 GROUP BY building_id",
                B::DIALECT.millis("MAX(received_at)")
            ),
            vec![Admission::Edit.as_str().into()],
        );
        self.rows(&sql).await?.iter().map(|row| Ok((row.text(0)?, millis_at(row, 1)?))).collect()
    }

    async fn recent_validity(
        &self,
        scope: ShareScope,
        value: Option<&str>,
        window: usize,
    ) -> Result<Vec<(String, Vec<bool>)>, StoreError> {
        let (subject, join) = match scope {
            ShareScope::Source => ("b.source", " JOIN batches b ON b.id = r.batch_id"),
            ShareScope::Provider => ("r.provider", ""),
            ShareScope::Building => ("r.building_id", ""),
        };
        // The rule sees new versions and conflicting ones; not exact re-deliveries, nor edits
        // (PATCH), which it is never shown. Arrival order is batch, then line.
        let sql = self.sql(
            &format!(
                "SELECT subject, valid FROM (SELECT {subject} AS subject, \
                 CAST(CASE WHEN r.status = $1 THEN 1 ELSE 0 END AS BIGINT) AS valid, r.batch_id, r.line, \
                 ROW_NUMBER() OVER (PARTITION BY {subject} ORDER BY r.batch_id DESC, r.line DESC) AS n \
                 FROM raw_records r{join} WHERE r.admission IN ($2, $3) AND {subject} IS NOT NULL \
                 AND ($4 IS NULL OR {subject} = $4)) w \
                 WHERE n <= $5 ORDER BY subject, batch_id, line"
            ),
            vec![
                QualityStatus::Valid.as_str().into(),
                Admission::New.as_str().into(),
                Admission::Conflicting.as_str().into(),
                value.into(),
                (window.min(i64::MAX as usize) as i64).into(),
            ],
        );
        // Streamed, kept as flags: memory is what the windows themselves hold.
        let mut subjects: Vec<(String, Vec<bool>)> = Vec::new();
        fetch::<B>(self.pooled(), &sql, &mut |row| {
            let (subject, valid) = (row.text(0)?, row.int(1)? != 0);
            match subjects.last_mut() {
                Some((last, flags)) if *last == subject => flags.push(valid),
                _ => subjects.push((subject, vec![valid])),
            }
            Ok(())
        })
        .await?;
        Ok(subjects)
    }
}
