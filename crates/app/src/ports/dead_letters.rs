//! The dead-letter store: messages a real-time ingestion could not store after its bounded
//! attempts (a message that fails by itself, not a database that is down), kept raw with the
//! error so that nothing accepted is lost, then acknowledged so that the stream goes on.

use async_trait::async_trait;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ports::StoreError;

/// A message's bytes as a dead letter keeps them: the text when it is UTF-8, else base64, so
/// that every byte is kept in a text column and in JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "payload_encoding", content = "payload", rename_all = "lowercase")]
pub enum DeadLetterPayload {
    /// The message was UTF-8 text: kept as it is.
    #[serde(rename = "utf-8")]
    Utf8(String),
    /// The message was not UTF-8: its bytes in standard base64 (with padding).
    Base64(String),
}

impl DeadLetterPayload {
    /// The payload of a message's bytes.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        match std::str::from_utf8(bytes) {
            Ok(text) => DeadLetterPayload::Utf8(text.to_owned()),
            Err(_) => DeadLetterPayload::Base64(base64::engine::general_purpose::STANDARD.encode(bytes)),
        }
    }

    /// Reads a payload back from its encoding's name ([`DeadLetterPayload::encoding`]) and its
    /// text; `None` for an unknown encoding.
    pub fn parse(encoding: &str, text: String) -> Option<Self> {
        match encoding {
            "utf-8" => Some(DeadLetterPayload::Utf8(text)),
            "base64" => Some(DeadLetterPayload::Base64(text)),
            _ => None,
        }
    }

    /// `utf-8` or `base64`.
    pub fn encoding(&self) -> &'static str {
        match self {
            DeadLetterPayload::Utf8(_) => "utf-8",
            DeadLetterPayload::Base64(_) => "base64",
        }
    }

    /// The text kept: the message itself, or its base64.
    pub fn text(&self) -> &str {
        match self {
            DeadLetterPayload::Utf8(text) | DeadLetterPayload::Base64(text) => text,
        }
    }

    /// The message's bytes (`None` for base64 that does not decode).
    pub fn to_bytes(&self) -> Option<Vec<u8>> {
        match self {
            DeadLetterPayload::Utf8(text) => Some(text.as_bytes().to_vec()),
            DeadLetterPayload::Base64(text) => base64::engine::general_purpose::STANDARD.decode(text).ok(),
        }
    }
}

/// A message to keep as a dead letter.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDeadLetter {
    /// The topic it arrived on.
    pub topic: String,
    /// Its bytes.
    pub payload: DeadLetterPayload,
    /// When it arrived.
    pub received_at: DateTime<Utc>,
    /// The last error storing it.
    pub error: String,
    /// How many store attempts failed with an error of its own (outages not counted).
    pub attempts: u32,
    /// When it was given up on.
    pub dead_at: DateTime<Utc>,
}

/// A stored dead letter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Its id (increasing: the list's cursor).
    pub id: i64,
    /// The topic it arrived on.
    pub topic: String,
    /// Its bytes: `payload` with its `payload_encoding` (`utf-8` or `base64`).
    #[serde(flatten)]
    pub payload: DeadLetterPayload,
    /// When it arrived.
    pub received_at: DateTime<Utc>,
    /// The last error storing it.
    pub error: String,
    /// How many store attempts failed with an error of its own.
    pub attempts: u32,
    /// When it was given up on and acknowledged.
    pub dead_at: DateTime<Utc>,
}

/// Where dead letters are kept.
#[async_trait]
pub trait DeadLetterStore: Send + Sync {
    /// Keeps a dead letter; returns its id.
    async fn add_dead_letter(&self, letter: &NewDeadLetter) -> Result<i64, StoreError>;
    /// Dead letters newest first, with ids below `before`, at most `limit`.
    async fn list_dead_letters(&self, before: Option<i64>, limit: u32) -> Result<Vec<DeadLetter>, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_is_kept_as_text_and_anything_else_as_base64() {
        let text = DeadLetterPayload::from_bytes("{\"a\":\"é\"}".as_bytes());
        assert_eq!(text, DeadLetterPayload::Utf8("{\"a\":\"é\"}".into()));
        assert_eq!(text.encoding(), "utf-8");
        let bytes = [0xff, 0x00, b'a'];
        let binary = DeadLetterPayload::from_bytes(&bytes);
        assert_eq!(binary, DeadLetterPayload::Base64("/wBh".into()));
        for payload in [text, binary] {
            let parsed = DeadLetterPayload::parse(payload.encoding(), payload.text().to_owned()).unwrap();
            assert_eq!(parsed, payload);
            assert_eq!(DeadLetterPayload::from_bytes(&parsed.to_bytes().unwrap()), payload);
        }
        assert_eq!(DeadLetterPayload::parse("hex", "00".into()), None);
    }

    #[test]
    fn json_names_the_encoding_beside_the_payload() {
        let json = serde_json::to_value(DeadLetterPayload::Base64("/wBh".into())).unwrap();
        assert_eq!(json, serde_json::json!({"payload_encoding": "base64", "payload": "/wBh"}));
    }
}
