//! The alert store's SQL, shared by SQLite and PostgreSQL: both schemas keep times as
//! milliseconds since the epoch and booleans as integers, so one implementation (expanded per
//! backend by [`impl_alert_store`]) serves both. Statements are written with `$N` placeholders;
//! the SQLite adapter's `sql` function turns them into `?N`. Every free text (names, subjects,
//! buildings, messages, URLs, errors) is bound through the backend's `put` and read back through
//! its `get`: PostgreSQL's `TEXT` cannot hold NUL, which building identifiers may contain, so its
//! adapter escapes it as the record store does; JSON columns need nothing (serde escapes NUL).

/// Columns of `alert_rules` in the order `rule_row` reads them.
pub const RULE_COLUMNS: &str = "id, name, kind, params, severity, cooldown_seconds, enabled, created_at, updated_at";

/// Columns of `alerts` in the order `alert_row` reads them.
pub const ALERT_COLUMNS: &str = "id, rule_id, rule_name, severity, subject, building, state, fired_at, resolved_at, \
     acknowledged_at, message, details";

/// Columns of `webhook_deliveries` in the order `attempt_row` reads them.
pub const ATTEMPT_COLUMNS: &str = "event_seq, alert_id, url, attempt, at, status, success, error, duration_ms";

macro_rules! impl_alert_store {
    ($store:ty, $row:ty) => {
        use async_trait::async_trait;
        use chrono::{DateTime, Utc};
        use emdp_app::ports::{
            Alert, AlertEvent, AlertFilter, AlertRule, AlertState, AlertStore, DeliveryAttempt, EventKind, NewAlert,
            RuleKind, RuleSpec, Severity, StoreError,
        };
        use sqlx::Row;

        use crate::alerts_sql::{ALERT_COLUMNS, ATTEMPT_COLUMNS, RULE_COLUMNS};
        use crate::error::store_error;
        use crate::rows::from_millis;

        fn other(text: impl std::fmt::Display) -> StoreError {
            StoreError::Other(text.to_string())
        }

        /// A text column read back as it was given (see the backend's `put`).
        fn text(row: &$row, index: usize) -> Result<String, StoreError> {
            row.try_get::<String, _>(index).map(get).map_err(store_error)
        }

        /// A nullable text column read back as it was given.
        fn text_opt(row: &$row, index: usize) -> Result<Option<String>, StoreError> {
            Ok(row.try_get::<Option<String>, _>(index).map_err(store_error)?.map(get))
        }

        fn rule_row(row: &$row) -> Result<AlertRule, StoreError> {
            let kind: String = row.try_get(2).map_err(store_error)?;
            let params: String = row.try_get(3).map_err(store_error)?;
            let params: serde_json::Value = serde_json::from_str(&params).map_err(other)?;
            let severity: String = row.try_get(4).map_err(store_error)?;
            Ok(AlertRule {
                id: row.try_get(0).map_err(store_error)?,
                spec: RuleSpec {
                    name: text(row, 1)?,
                    kind: RuleKind::from_parts(&kind, params).map_err(other)?,
                    severity: Severity::parse(&severity).ok_or_else(|| other(format!("bad severity {severity}")))?,
                    cooldown_seconds: row.try_get::<i64, _>(5).map_err(store_error)?.max(0) as u64,
                    enabled: row.try_get::<i64, _>(6).map_err(store_error)? != 0,
                },
                created_at: from_millis(row.try_get(7).map_err(store_error)?),
                updated_at: from_millis(row.try_get(8).map_err(store_error)?),
            })
        }

        fn alert_row(row: &$row) -> Result<Alert, StoreError> {
            let severity: String = row.try_get(3).map_err(store_error)?;
            let state: String = row.try_get(6).map_err(store_error)?;
            let details: String = row.try_get(11).map_err(store_error)?;
            let time = |index: usize| -> Result<Option<DateTime<Utc>>, StoreError> {
                Ok(row.try_get::<Option<i64>, _>(index).map_err(store_error)?.map(from_millis))
            };
            Ok(Alert {
                id: row.try_get(0).map_err(store_error)?,
                rule_id: row.try_get(1).map_err(store_error)?,
                rule_name: text(row, 2)?,
                severity: Severity::parse(&severity).ok_or_else(|| other(format!("bad severity {severity}")))?,
                subject: text(row, 4)?,
                building: text_opt(row, 5)?,
                state: AlertState::parse(&state).ok_or_else(|| other(format!("bad alert state {state}")))?,
                fired_at: from_millis(row.try_get(7).map_err(store_error)?),
                resolved_at: time(8)?,
                acknowledged_at: time(9)?,
                message: text(row, 10)?,
                details: serde_json::from_str(&details).map_err(other)?,
            })
        }

        fn attempt_row(row: &$row) -> Result<DeliveryAttempt, StoreError> {
            Ok(DeliveryAttempt {
                event_seq: row.try_get(0).map_err(store_error)?,
                alert_id: row.try_get(1).map_err(store_error)?,
                url: text(row, 2)?,
                attempt: row.try_get::<i64, _>(3).map_err(store_error)?.max(0) as u32,
                at: from_millis(row.try_get(4).map_err(store_error)?),
                status: row.try_get::<Option<i64>, _>(5).map_err(store_error)?.map(|s| s as u16),
                success: row.try_get::<i64, _>(6).map_err(store_error)? != 0,
                error: text_opt(row, 7)?,
                duration_ms: row.try_get::<i64, _>(8).map_err(store_error)?.max(0) as u64,
            })
        }

        fn event_row(row: &$row) -> Result<AlertEvent, StoreError> {
            let kind: String = row.try_get(1).map_err(store_error)?;
            let payload: String = row.try_get(3).map_err(store_error)?;
            Ok(AlertEvent {
                seq: row.try_get(0).map_err(store_error)?,
                kind: EventKind::parse(&kind).ok_or_else(|| other(format!("bad event kind {kind}")))?,
                at: from_millis(row.try_get(2).map_err(store_error)?),
                alert: serde_json::from_str(&payload).map_err(other)?,
            })
        }

        impl $store {
            /// Logs an event for `alert` in `tx`.
            async fn log_event<'c>(
                executor: impl sqlx::Executor<'c, Database = <$row as Row>::Database>,
                kind: EventKind,
                at: DateTime<Utc>,
                alert: &Alert,
            ) -> Result<AlertEvent, StoreError> {
                let payload = serde_json::to_string(alert).map_err(other)?;
                let seq: i64 = sqlx::query_scalar(sql(
                    "INSERT INTO alert_events (alert_id, kind, at, payload) VALUES ($1, $2, $3, $4) RETURNING seq",
                ))
                .bind(alert.id)
                .bind(kind.as_str())
                .bind(at.timestamp_millis())
                .bind(payload)
                .fetch_one(executor)
                .await
                .map_err(store_error)?;
                Ok(AlertEvent { seq, kind, at, alert: alert.clone() })
            }
        }

        #[async_trait]
        impl AlertStore for $store {
            async fn list_rules(&self) -> Result<Vec<AlertRule>, StoreError> {
                let rows = sqlx::query(sql(&format!("SELECT {RULE_COLUMNS} FROM alert_rules ORDER BY id")))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(store_error)?;
                rows.iter().map(rule_row).collect()
            }

            async fn get_rule(&self, id: i64) -> Result<Option<AlertRule>, StoreError> {
                let row = sqlx::query(sql(&format!("SELECT {RULE_COLUMNS} FROM alert_rules WHERE id = $1")))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(store_error)?;
                row.as_ref().map(rule_row).transpose()
            }

            async fn create_rule(&self, spec: &RuleSpec, at: DateTime<Utc>) -> Result<AlertRule, StoreError> {
                let row = sqlx::query(sql(&format!(
                    "INSERT INTO alert_rules (name, kind, params, severity, cooldown_seconds, enabled, created_at, \
                     updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {RULE_COLUMNS}"
                )))
                .bind(put(&spec.name))
                .bind(spec.kind.name())
                .bind(spec.kind.params().to_string())
                .bind(spec.severity.as_str())
                .bind(spec.cooldown_seconds.min(i64::MAX as u64) as i64)
                .bind(i64::from(spec.enabled))
                .bind(at.timestamp_millis())
                .bind(at.timestamp_millis())
                .fetch_one(&self.pool)
                .await
                .map_err(store_error)?;
                rule_row(&row)
            }

            async fn update_rule(&self, id: i64, spec: &RuleSpec, at: DateTime<Utc>) -> Result<AlertRule, StoreError> {
                let row = sqlx::query(sql(&format!(
                    "UPDATE alert_rules SET name = $1, kind = $2, params = $3, severity = $4, cooldown_seconds = $5, \
                     enabled = $6, updated_at = $7 WHERE id = $8 RETURNING {RULE_COLUMNS}"
                )))
                .bind(put(&spec.name))
                .bind(spec.kind.name())
                .bind(spec.kind.params().to_string())
                .bind(spec.severity.as_str())
                .bind(spec.cooldown_seconds.min(i64::MAX as u64) as i64)
                .bind(i64::from(spec.enabled))
                .bind(at.timestamp_millis())
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err(store_error)?;
                row.as_ref().map(rule_row).transpose()?.ok_or(StoreError::NotFound)
            }

            async fn delete_rule(&self, id: i64) -> Result<bool, StoreError> {
                let done = sqlx::query(sql("DELETE FROM alert_rules WHERE id = $1"))
                    .bind(id)
                    .execute(&self.pool)
                    .await
                    .map_err(store_error)?;
                Ok(done.rows_affected() > 0)
            }

            async fn fire(&self, alert: &NewAlert) -> Result<AlertEvent, StoreError> {
                let mut tx = self.pool.begin().await.map_err(store_error)?;
                let row = sqlx::query(sql(&format!(
                    "INSERT INTO alerts (rule_id, rule_name, severity, subject, building, state, fired_at, message, \
                     details) VALUES ($1, $2, $3, $4, $5, 'firing', $6, $7, $8) RETURNING {ALERT_COLUMNS}"
                )))
                .bind(alert.rule_id)
                .bind(put(&alert.rule_name))
                .bind(alert.severity.as_str())
                .bind(put(&alert.subject))
                .bind(alert.building.as_deref().map(put))
                .bind(alert.fired_at.timestamp_millis())
                .bind(put(&alert.message))
                .bind(alert.details.to_string())
                .fetch_one(&mut *tx)
                .await
                .map_err(store_error)?;
                let stored = alert_row(&row)?;
                let event = Self::log_event(&mut *tx, EventKind::Fired, alert.fired_at, &stored).await?;
                tx.commit().await.map_err(store_error)?;
                Ok(event)
            }

            async fn resolve(&self, id: i64, at: DateTime<Utc>) -> Result<AlertEvent, StoreError> {
                let mut tx = self.pool.begin().await.map_err(store_error)?;
                let row = sqlx::query(sql(&format!(
                    "UPDATE alerts SET state = 'resolved', resolved_at = $1 WHERE id = $2 AND state = 'firing' \
                     RETURNING {ALERT_COLUMNS}"
                )))
                .bind(at.timestamp_millis())
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(store_error)?;
                let stored = row.as_ref().map(alert_row).transpose()?.ok_or(StoreError::NotFound)?;
                let event = Self::log_event(&mut *tx, EventKind::Resolved, at, &stored).await?;
                tx.commit().await.map_err(store_error)?;
                Ok(event)
            }

            async fn acknowledge(&self, id: i64, at: DateTime<Utc>) -> Result<(Alert, Option<AlertEvent>), StoreError> {
                let mut tx = self.pool.begin().await.map_err(store_error)?;
                let row = sqlx::query(sql(&format!(
                    "UPDATE alerts SET acknowledged_at = $1 WHERE id = $2 AND acknowledged_at IS NULL \
                     RETURNING {ALERT_COLUMNS}"
                )))
                .bind(at.timestamp_millis())
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(store_error)?;
                match row.as_ref().map(alert_row).transpose()? {
                    Some(stored) => {
                        let event = Self::log_event(&mut *tx, EventKind::Acknowledged, at, &stored).await?;
                        tx.commit().await.map_err(store_error)?;
                        Ok((stored, Some(event)))
                    }
                    None => {
                        drop(tx);
                        let stored = self.get_alert(id).await?.ok_or(StoreError::NotFound)?;
                        Ok((stored, None))
                    }
                }
            }

            async fn get_alert(&self, id: i64) -> Result<Option<Alert>, StoreError> {
                let row = sqlx::query(sql(&format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = $1")))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(store_error)?;
                row.as_ref().map(alert_row).transpose()
            }

            async fn list_alerts(
                &self,
                filter: &AlertFilter,
                before: Option<i64>,
                limit: u32,
            ) -> Result<Vec<Alert>, StoreError> {
                let rows = sqlx::query(sql(&format!(
                    "SELECT {ALERT_COLUMNS} FROM alerts WHERE ($1 IS NULL OR state = $1) \
                     AND ($2 IS NULL OR severity = $2) AND ($3 IS NULL OR building = $3) \
                     AND ($4 IS NULL OR rule_id = $4) AND ($5 IS NULL OR id < $5) ORDER BY id DESC LIMIT $6"
                )))
                .bind(filter.state.map(|s| s.as_str()))
                .bind(filter.severity.map(|s| s.as_str()))
                .bind(filter.building.as_deref().map(put))
                .bind(filter.rule_id)
                .bind(before)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(store_error)?;
                rows.iter().map(alert_row).collect()
            }

            async fn firing_alerts(&self) -> Result<Vec<Alert>, StoreError> {
                let rows =
                    sqlx::query(sql(&format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE state = 'firing' ORDER BY id")))
                        .fetch_all(&self.pool)
                        .await
                        .map_err(store_error)?;
                rows.iter().map(alert_row).collect()
            }

            async fn events_after(&self, seq: i64, limit: u32) -> Result<Vec<AlertEvent>, StoreError> {
                let rows = sqlx::query(sql(
                    "SELECT seq, kind, at, payload FROM alert_events WHERE seq > $1 ORDER BY seq LIMIT $2",
                ))
                .bind(seq)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(store_error)?;
                rows.iter().map(event_row).collect()
            }

            async fn record_attempt(&self, attempt: &DeliveryAttempt) -> Result<(), StoreError> {
                sqlx::query(sql(&format!(
                    "INSERT INTO webhook_deliveries ({ATTEMPT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
                )))
                .bind(attempt.event_seq)
                .bind(attempt.alert_id)
                .bind(put(&attempt.url))
                .bind(i64::from(attempt.attempt))
                .bind(attempt.at.timestamp_millis())
                .bind(attempt.status.map(i64::from))
                .bind(i64::from(attempt.success))
                .bind(attempt.error.as_deref().map(put))
                .bind(attempt.duration_ms.min(i64::MAX as u64) as i64)
                .execute(&self.pool)
                .await
                .map_err(store_error)?;
                Ok(())
            }

            async fn attempts(&self, alert_id: i64) -> Result<Vec<DeliveryAttempt>, StoreError> {
                let rows = sqlx::query(sql(&format!(
                    "SELECT {ATTEMPT_COLUMNS} FROM webhook_deliveries WHERE alert_id = $1 ORDER BY id"
                )))
                .bind(alert_id)
                .fetch_all(&self.pool)
                .await
                .map_err(store_error)?;
                rows.iter().map(attempt_row).collect()
            }
        }
    };
}

pub(crate) use impl_alert_store;
