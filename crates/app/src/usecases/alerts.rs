//! Use case: alert rules, evaluated after each ingested batch and periodically (staleness).
//!
//! Each rule watches *subjects* (a building, a source, a provider). For each (rule, subject)
//! at most one alert fires at a time; it resolves when the condition clears, and after it
//! fired the same (rule, subject) does not fire again within the rule's cooldown. Every change
//! is persisted with an event in the store's event log, then broadcast to live subscribers
//! (SSE, webhooks, MQTT), in sequence order.
//!
//! The ingest use case knows nothing of alerts: the composition layer (the API's
//! `POST /records`, the MQTT subscriber) calls [`AlertEngine::on_ingested`] after each batch.
//!
//! In-memory evaluation state: the sliding windows of `valid_share` rules and the last arrival
//! per building of `stale` rules are rebuilt from the store when the process starts
//! ([`AlertEngine::restore`]: one query per `valid_share` rule and one for every building's last
//! arrival, never one per building), so that a restart neither forgets a building that went
//! silent before it nor needs a whole new window; firing alerts are reloaded from the store.
//! A `valid_share` rule created or changed later starts with an empty window. Memory stays
//! what the live windows hold: one time per building, at most `window` flags per subject.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use emdp_domain::analysis::BaselineModel;
use emdp_domain::{QualityStatus, RuleSet};
use serde_json::json;
use tokio::sync::{Mutex, broadcast};

use crate::ports::{
    Alert, AlertEvent, AlertRule, AlertStore, Clock, NewAlert, RawLink, RawRow, RuleKind, RuleSpec, ShareScope,
    StoreError,
};
use crate::usecases::analyze::{Analyzer, PeriodRequest};

/// How long a fitted baseline is reused by anomaly rules.
pub const MODEL_TTL_SECONDS: i64 = 3600;

/// Why an alert operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    /// The rule is not valid.
    #[error("{0}")]
    Invalid(String),
    /// No such rule or alert.
    #[error("not found")]
    NotFound,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

type Key = (i64, String);

#[derive(Default)]
struct EngineState {
    rules: Option<Arc<Vec<AlertRule>>>,
    open: Option<HashMap<Key, i64>>,
    last_fired: HashMap<Key, DateTime<Utc>>,
    windows: HashMap<Key, VecDeque<bool>>,
    last_seen: HashMap<String, DateTime<Utc>>,
    /// Whether `last_seen` holds the store's last arrivals (loaded once per process).
    last_seen_restored: bool,
    models: HashMap<String, (DateTime<Utc>, Option<BaselineModel>)>,
}

struct Inner {
    store: Arc<dyn AlertStore>,
    analyzer: Option<Analyzer>,
    /// The quality rules in force: they word the reasons of the records a status rule fires on.
    rules: Arc<RuleSet>,
    clock: Arc<dyn Clock>,
    events: broadcast::Sender<AlertEvent>,
    state: Mutex<EngineState>,
    started: DateTime<Utc>,
}

/// Evaluates alert rules and publishes alert events (cheap to clone).
#[derive(Clone)]
pub struct AlertEngine {
    inner: Arc<Inner>,
}

/// What one rule says about one subject after looking at some records.
struct Observation {
    rule: usize,
    subject: String,
    building: Option<String>,
    firing: bool,
    message: String,
    details: serde_json::Value,
}

/// What a `valid_share` rule (the `index`-th) says about the subject `key` of `scope` given its
/// window `entry`: nothing until the window holds `window` records.
fn share_observation(
    index: usize,
    scope: ShareScope,
    key: &str,
    entry: &VecDeque<bool>,
    window: usize,
    min_percent: f64,
) -> Option<Observation> {
    if entry.len() < window {
        return None;
    }
    let valid = entry.iter().filter(|v| **v).count();
    let share = 100.0 * valid as f64 / entry.len() as f64;
    let scope_name = scope.as_str();
    Some(Observation {
        rule: index,
        subject: format!("{scope_name}:{key}"),
        building: (scope == ShareScope::Building).then(|| key.to_owned()),
        firing: share < min_percent,
        message: format!(
            "{scope_name} {key}: {share:.1} % VALID over the last {} records (minimum {min_percent} %)",
            entry.len()
        ),
        details: json!({"share_percent": share, "valid": valid, "window": entry.len(), "min_percent": min_percent}),
    })
}

/// Checks a rule before it is stored ([`RuleSpec::validate`]).
pub fn validate_spec(spec: &RuleSpec) -> Result<(), AlertError> {
    spec.validate().map_err(|err| AlertError::Invalid(err.to_string()))
}

impl AlertEngine {
    /// An engine over `store`; anomaly rules need [`AlertEngine::with_analyzer`], and the
    /// reasons of a status rule's alerts are worded by the default rules unless
    /// [`AlertEngine::with_rules`] gives the ones in force.
    pub fn new(store: Arc<dyn AlertStore>, clock: Arc<dyn Clock>) -> Self {
        let (events, _) = broadcast::channel(4096);
        let started = clock.now();
        AlertEngine {
            inner: Arc::new(Inner {
                store,
                analyzer: None,
                rules: Arc::new(RuleSet::default()),
                clock,
                events,
                state: Mutex::new(EngineState::default()),
                started,
            }),
        }
    }

    /// The same engine fitting baselines with `analyzer` for anomaly rules. Call before cloning.
    pub fn with_analyzer(self, analyzer: Analyzer) -> Self {
        self.configured(|inner| inner.analyzer = Some(analyzer))
    }

    /// The same engine wording reasons by `rules` (the quality rules in force). Call before
    /// cloning.
    pub fn with_rules(self, rules: Arc<RuleSet>) -> Self {
        self.configured(|inner| inner.rules = rules)
    }

    /// The engine with `change` applied to its set-up (a clone's state starts afresh).
    fn configured(self, change: impl FnOnce(&mut Inner)) -> Self {
        let mut inner = Arc::try_unwrap(self.inner).unwrap_or_else(|shared| Inner {
            store: shared.store.clone(),
            analyzer: shared.analyzer.clone(),
            rules: shared.rules.clone(),
            clock: shared.clock.clone(),
            events: shared.events.clone(),
            state: Mutex::new(EngineState::default()),
            started: shared.started,
        });
        change(&mut inner);
        AlertEngine { inner: Arc::new(inner) }
    }

    /// The store (alerts, events, deliveries).
    pub fn store(&self) -> &Arc<dyn AlertStore> {
        &self.inner.store
    }

    /// Live alert events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<AlertEvent> {
        self.inner.events.subscribe()
    }

    /// Every rule.
    pub async fn list_rules(&self) -> Result<Vec<AlertRule>, AlertError> {
        Ok(self.inner.store.list_rules().await?)
    }

    /// One rule.
    pub async fn get_rule(&self, id: i64) -> Result<AlertRule, AlertError> {
        self.inner.store.get_rule(id).await?.ok_or(AlertError::NotFound)
    }

    /// Creates a rule.
    pub async fn create_rule(&self, spec: &RuleSpec) -> Result<AlertRule, AlertError> {
        validate_spec(spec)?;
        let rule = self.inner.store.create_rule(spec, self.inner.clock.now()).await?;
        self.inner.state.lock().await.rules = None;
        Ok(rule)
    }

    /// Replaces a rule.
    pub async fn update_rule(&self, id: i64, spec: &RuleSpec) -> Result<AlertRule, AlertError> {
        validate_spec(spec)?;
        let rule = self.inner.store.update_rule(id, spec, self.inner.clock.now()).await.map_err(not_found)?;
        let mut state = self.inner.state.lock().await;
        state.rules = None;
        state.windows.retain(|key, _| key.0 != id);
        state.last_fired.retain(|key, _| key.0 != id);
        Ok(rule)
    }

    /// Deletes a rule (its alerts stay).
    pub async fn delete_rule(&self, id: i64) -> Result<(), AlertError> {
        if !self.inner.store.delete_rule(id).await? {
            return Err(AlertError::NotFound);
        }
        let mut state = self.inner.state.lock().await;
        state.rules = None;
        state.windows.retain(|key, _| key.0 != id);
        Ok(())
    }

    /// Acknowledges an alert (idempotent; the first time an event is published).
    pub async fn acknowledge(&self, id: i64) -> Result<Alert, AlertError> {
        let _state = self.inner.state.lock().await;
        let (alert, event) = self.inner.store.acknowledge(id, self.inner.clock.now()).await.map_err(not_found)?;
        if let Some(event) = event {
            let _ = self.inner.events.send(event);
        }
        Ok(alert)
    }

    /// Rebuilds the evaluation state of a process that just started from the store: the
    /// window of every `valid_share` rule (its subjects' latest raw rows, one query per rule)
    /// and, when a `stale` rule exists, the last arrival of every building (one query). The
    /// rebuilt full windows are evaluated at once, so a share that fell below its minimum
    /// before the restart fires without waiting for new records (an alert still firing from
    /// before is not raised again); returns the events. Call once at start-up, before any
    /// batch is evaluated: a window rebuilt later would count the batch being evaluated twice.
    pub async fn restore(&self) -> Result<Vec<AlertEvent>, AlertError> {
        let mut state = self.inner.state.lock().await;
        let rules = self.rules(&mut state).await?;
        self.restore_last_seen(&mut state, &rules).await?;
        let mut observations = Vec::new();
        for (index, rule) in rules.iter().enumerate().filter(|(_, rule)| rule.spec.enabled) {
            let RuleKind::ValidShare { scope, value, min_percent, window } = &rule.spec.kind else { continue };
            let subjects = self.inner.store.recent_validity(*scope, value.as_deref(), *window).await?;
            tracing::debug!(rule = rule.id, subjects = subjects.len(), "valid_share windows rebuilt from the store");
            for (subject, flags) in subjects {
                let mut entry: VecDeque<bool> = flags.into_iter().collect();
                while entry.len() > *window {
                    entry.pop_front();
                }
                observations.extend(share_observation(index, *scope, &subject, &entry, *window, *min_percent));
                state.windows.insert((rule.id, subject), entry);
            }
        }
        let now = self.inner.clock.now();
        self.apply(&mut state, &rules, observations, now).await
    }

    /// Loads every building's last arrival into `last_seen` once, when a `stale` rule exists
    /// (merged with what arrived since: the later time wins).
    async fn restore_last_seen(&self, state: &mut EngineState, rules: &[AlertRule]) -> Result<(), AlertError> {
        if state.last_seen_restored || !rules.iter().any(|rule| matches!(rule.spec.kind, RuleKind::Stale { .. })) {
            return Ok(());
        }
        for (building, at) in self.inner.store.last_arrivals().await? {
            let seen = state.last_seen.entry(building).or_insert(at);
            *seen = (*seen).max(at);
        }
        state.last_seen_restored = true;
        Ok(())
    }

    /// Evaluates the rules on a stored batch from `source` (`rows[i]` became `links[i]`) and
    /// returns the alert events it caused. Repeats of a kept version (a message received
    /// again) are not evaluated, except as a sign of life for staleness.
    pub async fn on_ingested(
        &self,
        source: &str,
        rows: &[RawRow],
        links: &[RawLink],
    ) -> Result<Vec<AlertEvent>, AlertError> {
        let mut state = self.inner.state.lock().await;
        let rules = self.rules(&mut state).await?;
        let now = self.inner.clock.now();
        for row in rows {
            if let Some(building) = &row.fields.building_id {
                state.last_seen.insert(building.clone(), now);
            }
        }
        if rules.iter().all(|rule| !rule.spec.enabled) {
            return Ok(Vec::new());
        }
        let fresh: Vec<&RawRow> = rows
            .iter()
            .zip(links.iter().map(Some).chain(std::iter::repeat(None)))
            .filter(|(_, link)| link.is_none_or(|link| link.admission.keeps_version()))
            .map(|(row, _)| row)
            .collect();
        let mut observations = Vec::new();
        for (index, rule) in rules.iter().enumerate().filter(|(_, rule)| rule.spec.enabled) {
            match &rule.spec.kind {
                RuleKind::Threshold { building, above, below } => {
                    for row in &fresh {
                        let (Some(b), Some(consumption)) = (&row.fields.building_id, row.fields.consumption) else {
                            continue;
                        };
                        if building.as_ref().is_some_and(|wanted| wanted != b) {
                            continue;
                        }
                        let high = above.is_some_and(|limit| consumption > limit);
                        let low = below.is_some_and(|limit| consumption < limit);
                        let message = if high {
                            format!("building {b}: consumption {consumption} above {}", above.unwrap_or_default())
                        } else if low {
                            format!("building {b}: consumption {consumption} below {}", below.unwrap_or_default())
                        } else {
                            format!("building {b}: consumption {consumption} within limits")
                        };
                        observations.push(Observation {
                            rule: index,
                            subject: b.clone(),
                            building: Some(b.clone()),
                            firing: high || low,
                            message,
                            details: json!({"consumption": consumption, "date": row.fields.date, "above": above,
                                "below": below, "provider": row.fields.provider, "source": source}),
                        });
                    }
                }
                RuleKind::Anomaly { building, z } => {
                    for row in &fresh {
                        let (Some(b), Some(consumption), Some(temperature)) =
                            (&row.fields.building_id, row.fields.consumption, row.fields.temperature)
                        else {
                            continue;
                        };
                        if row.status != QualityStatus::Valid || building.as_ref().is_some_and(|wanted| wanted != b) {
                            continue;
                        }
                        let Some(model) = self.model(&mut state, b, now).await else { continue };
                        let expected = model.predict(temperature);
                        let residual = consumption - expected;
                        let score = if model.rmse > 0.0 { residual / model.rmse } else { 0.0 };
                        observations.push(Observation {
                            rule: index,
                            subject: b.clone(),
                            building: Some(b.clone()),
                            firing: score.abs() > *z,
                            message: format!(
                                "building {b}: consumption {consumption} vs expected {expected:.1} ({score:+.1} x RMSE)"
                            ),
                            details: json!({"consumption": consumption, "expected": expected, "residual": residual,
                                "score": score, "z": z, "rmse": model.rmse, "date": row.fields.date}),
                        });
                    }
                }
                RuleKind::ValidShare { scope, value, min_percent, window } => {
                    let mut touched: Vec<String> = Vec::new();
                    for row in &fresh {
                        let key = match scope {
                            ShareScope::Source => Some(source),
                            ShareScope::Provider => row.fields.provider.as_deref(),
                            ShareScope::Building => row.fields.building_id.as_deref(),
                        };
                        let Some(key) = key else { continue };
                        if value.as_ref().is_some_and(|wanted| wanted != key) {
                            continue;
                        }
                        let entry = state.windows.entry((rule.id, key.to_owned())).or_default();
                        entry.push_back(row.status == QualityStatus::Valid);
                        while entry.len() > *window {
                            entry.pop_front();
                        }
                        if !touched.iter().any(|t| t == key) {
                            touched.push(key.to_owned());
                        }
                    }
                    for key in touched {
                        let Some(entry) = state.windows.get(&(rule.id, key.clone())) else { continue };
                        observations.extend(share_observation(index, *scope, &key, entry, *window, *min_percent));
                    }
                }
                RuleKind::Stale { building, .. } => {
                    for row in rows {
                        let Some(b) = &row.fields.building_id else { continue };
                        if building.as_ref().is_some_and(|wanted| wanted != b) {
                            continue;
                        }
                        observations.push(Observation {
                            rule: index,
                            subject: b.clone(),
                            building: Some(b.clone()),
                            firing: false,
                            message: format!("building {b}: data received"),
                            details: json!({"last_seen": now}),
                        });
                    }
                }
                RuleKind::Status { source: wanted_source, status, reason } => {
                    if wanted_source.as_ref().is_some_and(|wanted| wanted != source) {
                        continue;
                    }
                    let status = status.as_deref().and_then(QualityStatus::parse);
                    for row in &fresh {
                        let by_status = status.is_some_and(|s| row.status == s);
                        let by_reason = reason.as_ref().is_some_and(|r| row.reasons.iter().any(|x| x.code() == r));
                        let (subject, building) = match &row.fields.building_id {
                            Some(b) => (b.clone(), Some(b.clone())),
                            None => (format!("source:{source}"), None),
                        };
                        let codes: Vec<&str> = row.reasons.iter().map(|r| r.code()).collect();
                        let reasons: Vec<serde_json::Value> = row
                            .reasons
                            .iter()
                            .map(|r| json!({"code": r.code(), "message": r.message(&self.inner.rules)}))
                            .collect();
                        observations.push(Observation {
                            rule: index,
                            subject,
                            building,
                            firing: by_status || by_reason,
                            message: format!(
                                "{source}: record of building {} is {} ({})",
                                row.fields.building_id.as_deref().unwrap_or("-"),
                                row.status,
                                codes.join(", ")
                            ),
                            details: json!({"source": source, "status": row.status.as_str(), "reasons": reasons,
                                "line": row.line, "date": row.fields.date}),
                        });
                    }
                }
            }
        }
        self.apply(&mut state, &rules, observations, now).await
    }

    /// Evaluates the staleness rules now.
    pub async fn check_stale(&self) -> Result<Vec<AlertEvent>, AlertError> {
        let mut state = self.inner.state.lock().await;
        let rules = self.rules(&mut state).await?;
        // A stale rule created after start-up watches the buildings of the store too.
        self.restore_last_seen(&mut state, &rules).await?;
        let now = self.inner.clock.now();
        let mut observations = Vec::new();
        for (index, rule) in rules.iter().enumerate().filter(|(_, rule)| rule.spec.enabled) {
            let RuleKind::Stale { building, max_silence_seconds } = &rule.spec.kind else { continue };
            let buildings: Vec<String> = match building {
                Some(b) => vec![b.clone()],
                None => state.last_seen.keys().cloned().collect(),
            };
            for b in buildings {
                let last = state.last_seen.get(&b).copied().unwrap_or(self.inner.started);
                let silence = (now - last).num_milliseconds() as f64 / 1000.0;
                observations.push(Observation {
                    rule: index,
                    subject: b.clone(),
                    building: Some(b.clone()),
                    firing: silence > *max_silence_seconds as f64,
                    message: format!("building {b}: no data for {silence:.0} s (limit {max_silence_seconds} s)"),
                    details: json!({"last_seen": last, "silence_seconds": silence,
                        "max_silence_seconds": max_silence_seconds}),
                });
            }
        }
        self.apply(&mut state, &rules, observations, now).await
    }

    /// Runs [`AlertEngine::check_stale`] every `period` until the task is aborted.
    pub fn spawn_staleness(&self, period: Duration) -> tokio::task::JoinHandle<()> {
        let engine = self.clone();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(period);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                if let Err(err) = engine.check_stale().await {
                    tracing::warn!(error = %err, "staleness check failed");
                }
            }
        })
    }

    async fn rules(&self, state: &mut EngineState) -> Result<Arc<Vec<AlertRule>>, AlertError> {
        if let Some(rules) = &state.rules {
            return Ok(rules.clone());
        }
        let rules = Arc::new(self.inner.store.list_rules().await?);
        state.rules = Some(rules.clone());
        Ok(rules)
    }

    async fn model(&self, state: &mut EngineState, building: &str, now: DateTime<Utc>) -> Option<BaselineModel> {
        if let Some((fitted, model)) = state.models.get(building)
            && (now - *fitted).num_seconds() < MODEL_TTL_SECONDS
        {
            return model.clone();
        }
        let analyzer = self.inner.analyzer.as_ref()?;
        let model = analyzer.baseline(building, PeriodRequest::default()).await.ok().map(|report| report.model);
        state.models.insert(building.to_owned(), (now, model.clone()));
        model
    }

    async fn apply(
        &self,
        state: &mut EngineState,
        rules: &[AlertRule],
        observations: Vec<Observation>,
        now: DateTime<Utc>,
    ) -> Result<Vec<AlertEvent>, AlertError> {
        if state.open.is_none() {
            let mut open = HashMap::new();
            for alert in self.inner.store.firing_alerts().await? {
                let key = (alert.rule_id, alert.subject.clone());
                state.last_fired.entry(key.clone()).or_insert(alert.fired_at);
                open.insert(key, alert.id);
            }
            state.open = Some(open);
        }
        // Per (rule, subject): the first firing observation, and whether the last one fires.
        let mut order: Vec<Key> = Vec::new();
        let mut collapsed: HashMap<Key, (Option<Observation>, bool)> = HashMap::new();
        for observation in observations {
            let key = (rules[observation.rule].id, observation.subject.clone());
            let entry = collapsed.entry(key.clone()).or_insert_with(|| {
                order.push(key);
                (None, false)
            });
            entry.1 = observation.firing;
            if observation.firing && entry.0.is_none() {
                entry.0 = Some(observation);
            }
        }
        let mut events = Vec::new();
        for key in order {
            let Some((first, last_firing)) = collapsed.remove(&key) else { continue };
            let open = state.open.get_or_insert_with(HashMap::new);
            if let Some(observation) = first
                && !open.contains_key(&key)
            {
                let rule = &rules[observation.rule];
                let cooling = state.last_fired.get(&key).is_some_and(|last| {
                    (now - *last).num_milliseconds() < (rule.spec.cooldown_seconds as i64).saturating_mul(1000)
                });
                if !cooling {
                    let alert = NewAlert {
                        rule_id: rule.id,
                        rule_name: rule.spec.name.clone(),
                        severity: rule.spec.severity,
                        subject: observation.subject,
                        building: observation.building,
                        fired_at: now,
                        message: observation.message,
                        details: observation.details,
                    };
                    let event = self.inner.store.fire(&alert).await?;
                    open.insert(key.clone(), event.alert.id);
                    state.last_fired.insert(key.clone(), now);
                    let _ = self.inner.events.send(event.clone());
                    events.push(event);
                }
            }
            let open = state.open.get_or_insert_with(HashMap::new);
            if !last_firing && let Some(id) = open.remove(&key) {
                let event = self.inner.store.resolve(id, now).await?;
                let _ = self.inner.events.send(event.clone());
                events.push(event);
            }
        }
        Ok(events)
    }
}

fn not_found(err: StoreError) -> AlertError {
    match err {
        StoreError::NotFound => AlertError::NotFound,
        other => AlertError::Store(other),
    }
}
