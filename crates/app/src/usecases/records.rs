//! Use cases on single curated records: explicit edits (`PATCH /records/{id}`).

use emdp_domain::{Admission, Arrival, FieldName, RawField, RawRecord};

use crate::ports::{
    NewBatch, RawLink, RecordId, RecordState, RecordStore, RecordUpdate, SourceFormat, SourceRow, StoreError,
    StoredRecord,
};
use crate::usecases::ingest::{Ingestor, classify};

/// A partial edit: for each field, absent (keep), `None` (clear) or a new value as text.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecordPatch {
    fields: [Option<Option<String>>; 5],
}

impl RecordPatch {
    /// Sets a field: `Some(text)` replaces it, `None` clears it.
    pub fn set(&mut self, field: FieldName, value: Option<String>) {
        self.fields[field as usize] = Some(value);
    }

    /// Whether the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        self.fields.iter().all(Option::is_none)
    }
}

/// The record's shown values as text, for the fields a patch leaves alone. (A value that was
/// unparsable is shown as missing, so it stays missing unless the patch sets it.)
fn current_text(record: &StoredRecord, field: FieldName) -> Option<String> {
    let fields = &record.state.fields;
    match field {
        FieldName::BuildingId => fields.building_id.clone(),
        FieldName::Date => fields.date.map(|d| d.to_string()),
        FieldName::Consumption => fields.consumption.map(|v| v.to_string()),
        FieldName::Temperature => fields.temperature.map(|v| v.to_string()),
        FieldName::Provider => fields.provider.clone(),
    }
}

/// Applies `patch` to record `id`: the merged values are classified like any input, kept in
/// the raw store as a new version from `source` (a JSON payload), and made the record's
/// winner; its key follows the new values. Returns `None` when there is no such record, and
/// [`StoreError::KeyTaken`] (naming it) when the new key belongs to another record.
pub async fn edit_record(
    ingestor: &Ingestor,
    store: &dyn RecordStore,
    id: RecordId,
    patch: &RecordPatch,
    source: &str,
) -> Result<Option<StoredRecord>, StoreError> {
    let Some(current) = store.get_record(id).await? else { return Ok(None) };
    if patch.is_empty() {
        return Ok(Some(current));
    }
    let merged: Vec<(FieldName, Option<String>)> = FieldName::ALL
        .into_iter()
        .map(|field| (field, patch.fields[field as usize].clone().unwrap_or_else(|| current_text(&current, field))))
        .collect();
    let payload = serde_json::Value::Object(
        merged.iter().map(|(field, text)| (field.as_str().to_owned(), text.clone().into())).collect(),
    )
    .to_string();
    let mut raw = RawRecord::default();
    for (field, text) in &merged {
        if let Some(text) = text {
            raw.set(*field, RawField::Text(text));
        }
    }
    let clock = ingestor.clock();
    let row = classify(
        &SourceRow { line: 1, raw: &payload, record: raw, parse_error: None, origin: None, oversize: None },
        ingestor.rules(),
        clock.today(),
        clock.now(),
    );
    if row.values == current.state.values && row.fields == current.state.fields && row.status == current.state.status {
        return Ok(Some(current));
    }

    let mut tx = store.begin_ingest().await?;
    // Under the key's lock, so no ingest can store it between this look and the update.
    tx.lock_keys(&[&row.key]).await?;
    if let Some(other) = tx.load_keys(std::slice::from_ref(&row.key)).await?.into_iter().find(|key| key.id != id) {
        return Err(StoreError::KeyTaken(other.id));
    }
    let batch = tx
        .create_batch(&NewBatch {
            source: source.to_owned(),
            format: SourceFormat::Json,
            header: None,
            columns: None,
            started_at: clock.now(),
        })
        .await?;
    let state = RecordState {
        fields: row.fields.clone(),
        status: row.status,
        reasons: row.reasons,
        values: row.values,
        winner: Arrival { batch, line: row.line },
        versions: current.state.versions + 1,
        pending: false,
    };
    tx.update_records(&[RecordUpdate { id, key: row.key.clone(), state, updated_at: clock.now() }]).await?;
    tx.insert_raw(batch, std::slice::from_ref(&row), &[RawLink { record_id: id, admission: Admission::Edit }]).await?;
    tx.finish_batch(batch, 1, &serde_json::json!({"edit_of": id})).await?;
    tx.commit().await?;
    store.get_record(id).await
}
