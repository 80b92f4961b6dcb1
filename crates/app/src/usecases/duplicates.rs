//! Use case: list conflict groups and re-resolve them (`emdp duplicates`,
//! `GET /api/v1/duplicates`, `POST /api/v1/duplicates/{key}:resolve`).
//!
//! A resolution picks the winning version with a [`ConflictPolicy`] or an explicit version
//! (its arrival: batch and line), through [`KeyVersions`]; the record then shows that
//! version's values and status. Every decision is recorded with who made it; no version is
//! ever deleted. Status and duplicate counts are read live from the stores, so they stay
//! consistent after every resolution.

use chrono::{DateTime, Utc};
use emdp_domain::{Arrival, ConflictPolicy, KeyVersions, Version};
use serde::Serialize;

use crate::ports::{
    ConflictGroup, DecisionMethod, DuplicateFilter, DuplicateStore, RecordId, RecordState, Resolution, StoreError,
    StoredKey,
};

/// Groups per page when resolving all of them.
pub const RESOLVE_PAGE: u32 = 500;

/// How often a resolution is retried when a concurrent ingest changed the record meanwhile.
const RETRIES: usize = 3;

/// What picks the winner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Choice {
    /// A policy.
    Policy(ConflictPolicy),
    /// This version (batch and line of its arrival).
    Version(Arrival),
}

/// One page of conflict groups (written by the API's and the CLI's `GroupPageDto`).
#[derive(Debug, Clone, PartialEq)]
pub struct GroupPage {
    /// The groups, in record id order.
    pub items: Vec<ConflictGroup>,
    /// The `cursor` of the next page (`None`: this was the last).
    pub next_cursor: Option<String>,
}

/// What a resolution did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResolveOutcome {
    /// Groups examined.
    pub groups: u64,
    /// Groups whose winner or pending state changed.
    pub changed: u64,
    /// Groups left as they were.
    pub unchanged: u64,
    /// Decisions recorded.
    pub decisions: u64,
}

/// Why a resolution was refused.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// No such record.
    #[error("no record with id {0}")]
    NotFound(RecordId),
    /// The record has a single version and no pending decision.
    #[error("record {0} has a single version: nothing to resolve")]
    NotAGroup(RecordId),
    /// The explicit version is not one of the record's versions.
    #[error("record {record} has no version from batch {} line {}", .arrival.batch, .arrival.line)]
    NoSuchVersion {
        /// The record.
        record: RecordId,
        /// The version asked for.
        arrival: Arrival,
    },
    /// A store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Lists conflict groups after the record `after` (a page's cursor), at most `limit`.
pub async fn list_groups(
    store: &dyn DuplicateStore,
    filter: &DuplicateFilter,
    after: Option<RecordId>,
    limit: u32,
) -> Result<GroupPage, StoreError> {
    let items = store.list_groups(filter, after, limit).await?;
    let next_cursor = crate::page::next_cursor(&items, limit, |group| group.record_id);
    Ok(GroupPage { items, next_cursor })
}

/// The resolution `choice` makes for `key`, or `None` when it changes nothing and `always`
/// is false.
fn decide(
    key: &StoredKey,
    choice: Choice,
    decided_by: &str,
    now: DateTime<Utc>,
    always: bool,
) -> Result<Option<Resolution>, ResolveError> {
    let versions: Vec<Version> = key.versions.iter().map(|v| v.version).collect();
    let mut group = KeyVersions::from_stored(versions, key.state.winner, key.state.pending)
        .ok_or_else(|| StoreError::Other(format!("record {} has no version for its winner", key.id)))?;
    let method = match choice {
        Choice::Policy(policy) => {
            group.resolve(policy);
            DecisionMethod::Policy(policy)
        }
        Choice::Version(arrival) => {
            if !group.choose(arrival) {
                return Err(ResolveError::NoSuchVersion { record: key.id, arrival });
            }
            DecisionMethod::Explicit
        }
    };
    let winner = *group.winner().ok_or_else(|| StoreError::Other(format!("record {} has no winner", key.id)))?;
    let changed = winner.arrival != key.state.winner || group.is_pending() != key.state.pending;
    if !changed && !always {
        return Ok(None);
    }
    let kept = key
        .versions
        .iter()
        .find(|v| v.version.arrival == winner.arrival)
        .ok_or_else(|| StoreError::Other(format!("record {}: winner not among its versions", key.id)))?;
    let state = RecordState {
        fields: kept.fields.clone(),
        status: winner.status,
        reasons: kept.reasons,
        values: winner.values,
        winner: winner.arrival,
        versions: group.versions().len() as i64,
        pending: group.is_pending(),
    };
    Ok(Some(Resolution {
        record_id: key.id,
        previous: key.state.winner,
        previous_versions: key.state.versions,
        state,
        decided_by: decided_by.to_owned(),
        method,
        decided_at: now,
    }))
}

fn changed(resolution: &Resolution, key: &StoredKey) -> bool {
    resolution.state.winner != key.state.winner || resolution.state.pending != key.state.pending
}

/// Re-resolves one record with `choice`; the decision is recorded even when the winner stays.
pub async fn resolve_one(
    store: &dyn DuplicateStore,
    record: RecordId,
    choice: Choice,
    decided_by: &str,
    now: DateTime<Utc>,
) -> Result<ResolveOutcome, ResolveError> {
    let mut attempt = 0;
    loop {
        let key = store.load_groups(&[record]).await?.pop().ok_or(ResolveError::NotFound(record))?;
        if key.versions.len() < 2 && !key.state.pending {
            return Err(ResolveError::NotAGroup(record));
        }
        let Some(resolution) = decide(&key, choice, decided_by, now, true)? else {
            return Ok(ResolveOutcome { groups: 1, unchanged: 1, ..Default::default() });
        };
        let was_changed = changed(&resolution, &key);
        match store.apply_resolutions(std::slice::from_ref(&resolution)).await {
            Ok(()) => {
                return Ok(ResolveOutcome {
                    groups: 1,
                    changed: u64::from(was_changed),
                    unchanged: u64::from(!was_changed),
                    decisions: 1,
                });
            }
            Err(StoreError::Conflict(_)) if attempt + 1 < RETRIES => attempt += 1,
            Err(err) => return Err(err.into()),
        }
    }
}

/// Re-resolves every conflict group matching `filter` with `policy`, a page at a time (one
/// transaction per page). Only groups whose winner or pending state changes get a decision.
pub async fn resolve_all(
    store: &dyn DuplicateStore,
    filter: &DuplicateFilter,
    policy: ConflictPolicy,
    decided_by: &str,
    now: DateTime<Utc>,
) -> Result<ResolveOutcome, ResolveError> {
    let mut outcome = ResolveOutcome::default();
    let mut after = None;
    loop {
        let ids = store.group_ids(filter, after, RESOLVE_PAGE).await?;
        let Some(&last) = ids.last() else { break };
        let mut attempt = 0;
        loop {
            let keys = store.load_groups(&ids).await?;
            let mut resolutions = Vec::new();
            for key in &keys {
                if let Some(resolution) = decide(key, Choice::Policy(policy), decided_by, now, false)? {
                    resolutions.push(resolution);
                }
            }
            match store.apply_resolutions(&resolutions).await {
                Ok(()) => {
                    outcome.groups += keys.len() as u64;
                    outcome.changed += resolutions.len() as u64;
                    outcome.unchanged += (keys.len() - resolutions.len()) as u64;
                    outcome.decisions += resolutions.len() as u64;
                    break;
                }
                Err(StoreError::Conflict(_)) if attempt + 1 < RETRIES => attempt += 1,
                Err(err) => return Err(err.into()),
            }
        }
        after = Some(last);
        if (ids.len() as u32) < RESOLVE_PAGE {
            break;
        }
    }
    Ok(outcome)
}
