//! `/api/v1/dead-letters`: the MQTT messages the subscriber gave up on (a store write that kept
//! failing with the message's own error), kept raw with the error, newest first.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use emdp_app::ports::DeadLetter;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiResult;
use crate::extract::{Page, Params};
use crate::state::AppState;

/// One dead letter (the same object as `emdp dead-letters list --output json`).
#[derive(Debug, Serialize, ToSchema)]
pub struct DeadLetterDto {
    /// Its id (the list's cursor).
    pub id: i64,
    /// The MQTT topic it arrived on.
    pub topic: String,
    /// `utf-8` when `payload` is the message itself, `base64` when the message was not UTF-8.
    #[schema(pattern = "^(utf-8|base64)$")]
    pub payload_encoding: String,
    /// The message, exactly as received (see `payload_encoding`).
    pub payload: String,
    /// When it arrived.
    pub received_at: DateTime<Utc>,
    /// The last error storing it.
    pub error: String,
    /// How many store attempts failed with its own error (database outages are not counted).
    pub attempts: u32,
    /// When it was given up on and acknowledged.
    pub dead_at: DateTime<Utc>,
}

impl From<DeadLetter> for DeadLetterDto {
    fn from(letter: DeadLetter) -> Self {
        DeadLetterDto {
            id: letter.id,
            topic: letter.topic,
            payload_encoding: letter.payload.encoding().to_owned(),
            payload: letter.payload.text().to_owned(),
            received_at: letter.received_at,
            error: letter.error,
            attempts: letter.attempts,
            dead_at: letter.dead_at,
        }
    }
}

/// A page of dead letters.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeadLetterPageDto {
    /// The dead letters, newest first.
    pub items: Vec<DeadLetterDto>,
    /// Pass as `cursor` to get the next (older) page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// List the MQTT messages kept as dead letters, newest first, with keyset (cursor) pagination.
#[utoipa::path(get, path = "/api/v1/dead-letters", tag = "records",
    params(Page),
    responses((status = 200, description = "A page of dead letters", body = DeadLetterPageDto)))]
pub async fn list(State(state): State<AppState>, Params(page): Params<Page>) -> ApiResult<Json<DeadLetterPageDto>> {
    let letters = state.dead_letters.list_dead_letters(page.cursor, page.limit).await?;
    let next_cursor = page.next_cursor(&letters, |letter| letter.id);
    Ok(Json(DeadLetterPageDto { items: letters.into_iter().map(DeadLetterDto::from).collect(), next_cursor }))
}
