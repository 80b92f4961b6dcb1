//! Identifiers: the building and the provider of a record.

use std::borrow::Cow;
use std::fmt;

/// Why a piece of text is not a valid identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdentifierError {
    /// Longer than the rule set allows (counted in characters, not bytes).
    #[error("longer than {max} characters")]
    TooLong {
        /// The limit that was exceeded.
        max: usize,
    },
    /// Contains a control character (e.g. a NUL, a tab or a line break inside the value).
    #[error("contains a control character")]
    ControlCharacter,
    /// Empty after trimming.
    #[error("is empty")]
    Empty,
}

/// Checks an identifier that has already been trimmed: non-empty, at most `max_chars`
/// characters, no control characters.
fn check(text: &str, max_chars: usize) -> Result<(), IdentifierError> {
    if text.is_empty() {
        return Err(IdentifierError::Empty);
    }
    // Byte length bounds the character count from above, so short ASCII ids skip counting.
    if text.len() > max_chars && text.chars().count() > max_chars {
        return Err(IdentifierError::TooLong { max: max_chars });
    }
    // ASCII text has no control characters if no byte is below space or DEL; any other
    // text is checked character by character (C1 controls are two bytes in UTF-8).
    let ascii_visible = text.bytes().all(|byte| (b' '..b'\x7f').contains(&byte));
    if !ascii_visible && text.chars().any(char::is_control) {
        return Err(IdentifierError::ControlCharacter);
    }
    Ok(())
}

macro_rules! identifier {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name<'a>(Cow<'a, str>);

        impl<'a> $name<'a> {
            /// Parses trimmed text into an identifier of at most `max_chars` characters
            /// with no control characters. Borrows: no allocation on the hot path.
            pub fn parse(text: &'a str, max_chars: usize) -> Result<Self, IdentifierError> {
                check(text, max_chars)?;
                Ok(Self(Cow::Borrowed(text)))
            }

            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// An owned copy that outlives the input buffer.
            pub fn into_owned(self) -> $name<'static> {
                $name(Cow::Owned(self.0.into_owned()))
            }
        }

        impl fmt::Display for $name<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name<'_> {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

identifier!(
    /// The building a reading belongs to (e.g. `B00042`).
    BuildingId
);
identifier!(
    /// The energy provider or data source that reported a reading.
    ProviderName
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_ids() {
        assert_eq!(BuildingId::parse("B00042", 128).unwrap().as_str(), "B00042");
        assert_eq!(ProviderName::parse("Énergie Süd", 128).unwrap().to_string(), "Énergie Süd");
    }

    #[test]
    fn length_is_counted_in_characters() {
        let ascii = "a".repeat(128);
        assert!(BuildingId::parse(&ascii, 128).is_ok());
        let too_long = "a".repeat(129);
        assert_eq!(BuildingId::parse(&too_long, 128), Err(IdentifierError::TooLong { max: 128 }));
        // 128 two-byte characters are 256 bytes but still 128 characters.
        let accented = "é".repeat(128);
        assert!(BuildingId::parse(&accented, 128).is_ok());
    }

    #[test]
    fn control_characters_are_rejected() {
        for text in ["B\u{0}1", "B\t1", "B\n1", "B\u{7f}", "B\u{85}"] {
            assert_eq!(BuildingId::parse(text, 128), Err(IdentifierError::ControlCharacter), "{text:?}");
        }
    }

    #[test]
    fn empty_is_rejected() {
        assert_eq!(ProviderName::parse("", 128), Err(IdentifierError::Empty));
    }

    #[test]
    fn into_owned_keeps_the_text() {
        let owned = {
            let text = String::from("B7");
            BuildingId::parse(&text, 128).unwrap().into_owned()
        };
        assert_eq!(owned.as_str(), "B7");
    }
}
