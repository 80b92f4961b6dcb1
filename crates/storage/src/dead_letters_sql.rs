//! The dead-letter store, written once for SQLite and PostgreSQL like the alert store: times
//! are milliseconds since the epoch in both schemas, statements use `$N` placeholders.

use async_trait::async_trait;
use emdp_app::ports::{DeadLetter, DeadLetterPayload, DeadLetterStore, NewDeadLetter, StoreError};

use crate::rows::from_millis;
use crate::sql::{Backend, Cols};
use crate::store::{SqlStore, row_on};

/// Columns of `dead_letters` in the order `dead_letter_row` reads them.
const COLUMNS: &str = "id, topic, payload_encoding, payload, received_at, error, attempts, dead_at";

fn dead_letter_row(row: &impl Cols) -> Result<DeadLetter, StoreError> {
    let encoding = row.text(2)?;
    Ok(DeadLetter {
        id: row.int(0)?,
        topic: row.text(1)?,
        payload: DeadLetterPayload::parse(&encoding, row.text(3)?)
            .ok_or_else(|| StoreError::Other(format!("bad dead-letter payload encoding {encoding}")))?,
        received_at: from_millis(row.int(4)?),
        error: row.text(5)?,
        attempts: u32::try_from(row.int(6)?).unwrap_or(u32::MAX),
        dead_at: from_millis(row.int(7)?),
    })
}

#[async_trait]
impl<B: Backend> DeadLetterStore for SqlStore<B> {
    async fn add_dead_letter(&self, letter: &NewDeadLetter) -> Result<i64, StoreError> {
        let sql = self.sql(
            "INSERT INTO dead_letters (topic, payload_encoding, payload, received_at, error, attempts, dead_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            vec![
                letter.topic.as_str().into(),
                letter.payload.encoding().into(),
                letter.payload.text().into(),
                letter.received_at.timestamp_millis().into(),
                letter.error.as_str().into(),
                i64::from(letter.attempts).into(),
                letter.dead_at.timestamp_millis().into(),
            ],
        );
        row_on::<B>(self.pooled(), &sql).await?.ok_or(StoreError::NotFound)?.int(0)
    }

    async fn list_dead_letters(&self, before: Option<i64>, limit: u32) -> Result<Vec<DeadLetter>, StoreError> {
        let sql = self.sql(
            &format!("SELECT {COLUMNS} FROM dead_letters WHERE ($1 IS NULL OR id < $1) ORDER BY id DESC LIMIT $2"),
            vec![before.into(), i64::from(limit).into()],
        );
        self.rows(&sql).await?.iter().map(dead_letter_row).collect()
    }
}
