//! One field of a record, first as read ([`RawField`]) and then as parsed ([`Field`]).

/// A field exactly as a reader found it, before any interpretation.
///
/// Readers only decide *where* a value is; what it means is decided by
/// [`ParsedRecord::parse`](crate::ParsedRecord::parse).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RawField<'a> {
    /// The column or key is absent, or the value is JSON `null`.
    #[default]
    Absent,
    /// Text as read (a CSV cell, a JSON string, or the literal text of a JSON number).
    Text(&'a str),
    /// A JSON value of a type no field can hold (`true`, an object, an array), as JSON text.
    WrongType(&'a str),
}

impl<'a> RawField<'a> {
    /// The value with surrounding whitespace removed, or `None` when the field counts as
    /// missing: absent, null, empty or whitespace-only.
    ///
    /// A wrong JSON type is present (it is not missing, it is unusable), so it is returned
    /// as `Err` with its JSON text.
    pub fn trimmed(self) -> Option<Result<&'a str, &'a str>> {
        match self {
            RawField::Absent => None,
            RawField::Text(text) => {
                let text = trim(text);
                (!text.is_empty()).then_some(Ok(text))
            }
            RawField::WrongType(json) => Some(Err(json)),
        }
    }

    /// The text as read, for reports that echo the input (`""` when absent).
    pub fn as_read(self) -> &'a str {
        match self {
            RawField::Absent => "",
            RawField::Text(text) | RawField::WrongType(text) => text,
        }
    }
}

/// `str::trim`, skipped when the text starts and ends with a visible ASCII character (the
/// usual case), which no whitespace can be.
fn trim(text: &str) -> &str {
    let visible = |byte: Option<&u8>| matches!(byte, Some(b'!'..=b'~'));
    let bytes = text.as_bytes();
    if visible(bytes.first()) && visible(bytes.last()) { text } else { text.trim() }
}

/// A field after parsing: missing, present but unusable, or a typed value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Field<T> {
    /// Absent, null, empty or whitespace-only.
    Missing,
    /// Present but not a value of the field's type (unparsable number or date, invalid identifier).
    Invalid,
    /// A typed value.
    Present(T),
}

impl<T> Field<T> {
    /// The typed value, if there is one.
    pub fn value(&self) -> Option<&T> {
        match self {
            Field::Present(value) => Some(value),
            _ => None,
        }
    }

    /// Whether the field is missing.
    pub fn is_missing(&self) -> bool {
        matches!(self, Field::Missing)
    }

    /// Parses a raw field: missing stays missing, a wrong JSON type or a `parse` error is
    /// [`Field::Invalid`].
    pub fn parse<'a, E>(raw: RawField<'a>, parse: impl FnOnce(&'a str) -> Result<T, E>) -> Self {
        Self::parse_trimmed(raw.trimmed(), parse)
    }

    /// [`Field::parse`] for a field already trimmed with [`RawField::trimmed`].
    pub fn parse_trimmed<'a, E>(
        trimmed: Option<Result<&'a str, &'a str>>,
        parse: impl FnOnce(&'a str) -> Result<T, E>,
    ) -> Self {
        match trimmed {
            None => Field::Missing,
            Some(Err(_)) => Field::Invalid,
            Some(Ok(text)) => parse(text).map_or(Field::Invalid, Field::Present),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_empty_and_blank_are_missing() {
        assert_eq!(RawField::Absent.trimmed(), None);
        assert_eq!(RawField::Text("").trimmed(), None);
        assert_eq!(RawField::Text(" \t\r\n ").trimmed(), None);
    }

    #[test]
    fn text_is_trimmed() {
        assert_eq!(RawField::Text("  B1 ").trimmed(), Some(Ok("B1")));
        assert_eq!(RawField::Text("B1").trimmed(), Some(Ok("B1")));
        assert_eq!(RawField::Text("B 1\u{a0}").trimmed(), Some(Ok("B 1")));
        assert_eq!(RawField::Text("\u{2003}x\t").trimmed(), Some(Ok("x")));
    }

    #[test]
    fn wrong_type_is_present_but_unusable() {
        assert_eq!(RawField::WrongType("true").trimmed(), Some(Err("true")));
        let field: Field<f64> = Field::parse(RawField::WrongType("{}"), |t| t.parse::<f64>());
        assert_eq!(field, Field::Invalid);
    }

    #[test]
    fn parse_maps_errors_to_invalid() {
        let ok: Field<i32> = Field::parse(RawField::Text(" 7 "), str::parse);
        assert_eq!(ok, Field::Present(7));
        let bad: Field<i32> = Field::parse(RawField::Text("x"), str::parse);
        assert_eq!(bad, Field::Invalid);
        let missing: Field<i32> = Field::parse(RawField::Text("  "), str::parse);
        assert!(missing.is_missing());
    }
}
