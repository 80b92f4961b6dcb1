//! Which column of a file (a CSV header, a JSON key) each of the five fields is read from.
//!
//! Meter exports rarely use emdp's names: a utility portal writes `site_id,day,kwh,temp_c,
//! supplier`. [`ColumnNames`] says where each field is found; by default under its own name.

use std::fmt;

use crate::record::FieldName;

/// The column each field is read from. Names match trimmed and ASCII case-insensitively, like
/// the default names; every field has exactly one name and no two fields share one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnNames {
    /// Per field (in [`FieldName::ALL`] order), the name it is read from.
    names: [String; 5],
}

impl Default for ColumnNames {
    /// Every field under its own name (`building_id`, `date`, ...).
    fn default() -> Self {
        ColumnNames { names: FieldName::ALL.map(|field| field.as_str().to_owned()) }
    }
}

/// Why a set of `FIELD=NAME` mappings cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ColumnNamesError {
    /// A mapping is not of the form `FIELD=NAME`.
    #[error("'{0}' is not FIELD=NAME (e.g. consumption=kwh)")]
    Form(String),
    /// The field is not one of the five.
    #[error("'{0}' is not a field: building_id, date, consumption, temperature or provider")]
    UnknownField(String),
    /// The name is empty once trimmed.
    #[error("the column name for {0} is empty")]
    EmptyName(&'static str),
    /// The same field is mapped twice.
    #[error("{0} is mapped twice")]
    FieldTwice(&'static str),
    /// Two fields would be read from the same column.
    #[error("{first} and {second} would both be read from column '{name}'")]
    NameTwice {
        /// The first field.
        first: &'static str,
        /// The second field.
        second: &'static str,
        /// The column both name.
        name: String,
    },
}

impl ColumnNames {
    /// The default names with each `FIELD=NAME` mapping applied (`consumption=kwh`): a field
    /// not mapped keeps its own name, unless another field is mapped to it.
    pub fn parse<S: AsRef<str>>(mappings: &[S]) -> Result<Self, ColumnNamesError> {
        let mut columns = ColumnNames::default();
        let mut mapped = [false; 5];
        for mapping in mappings {
            let mapping = mapping.as_ref();
            let (field, name) = mapping.split_once('=').ok_or_else(|| ColumnNamesError::Form(mapping.to_owned()))?;
            let field =
                FieldName::from_header(field).ok_or_else(|| ColumnNamesError::UnknownField(field.to_owned()))?;
            let name = name.trim();
            if name.is_empty() {
                return Err(ColumnNamesError::EmptyName(field.as_str()));
            }
            if std::mem::replace(&mut mapped[field as usize], true) {
                return Err(ColumnNamesError::FieldTwice(field.as_str()));
            }
            columns.names[field as usize] = name.to_owned();
        }
        for (i, first) in FieldName::ALL.into_iter().enumerate() {
            for second in FieldName::ALL.into_iter().skip(i + 1) {
                let name = columns.name(first);
                if name.eq_ignore_ascii_case(columns.name(second)) {
                    // The field that kept its own name is the one to map elsewhere.
                    let (first, second) = if mapped[first as usize] && !mapped[second as usize] {
                        (second, first)
                    } else {
                        (first, second)
                    };
                    return Err(ColumnNamesError::NameTwice {
                        first: first.as_str(),
                        second: second.as_str(),
                        name: name.to_owned(),
                    });
                }
            }
        }
        Ok(columns)
    }

    /// These names when some field is read under another name than its own (a mapping was
    /// given, which a batch keeps), `None` when every field is read under its own.
    pub fn mapped(&self) -> Option<&Self> {
        FieldName::ALL.into_iter().any(|field| self.name(field) != field.as_str()).then_some(self)
    }

    /// The column `field` is read from.
    pub fn name(&self, field: FieldName) -> &str {
        &self.names[field as usize]
    }

    /// The field read from the column (or key) `header`, if any: trimmed, case-insensitive.
    pub fn field_of(&self, header: &str) -> Option<FieldName> {
        let header = header.trim();
        FieldName::ALL.into_iter().find(|field| self.names[*field as usize].eq_ignore_ascii_case(header))
    }

    /// How an error names the column of `field`: `kwh (consumption)` when it is mapped,
    /// `consumption` otherwise.
    pub fn describe(&self, field: FieldName) -> String {
        let name = self.name(field);
        if name == field.as_str() { name.to_owned() } else { format!("{name} ({})", field.as_str()) }
    }
}

impl fmt::Display for ColumnNames {
    /// `building_id=site, date=day, ...`: every field with its column.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, field) in FieldName::ALL.into_iter().enumerate() {
            let separator = if i == 0 { "" } else { ", " };
            write!(f, "{separator}{}={}", field.as_str(), self.name(field))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_default_each_field_is_read_under_its_own_name() {
        let columns = ColumnNames::default();
        assert_eq!(columns.field_of(" Building_ID "), Some(FieldName::BuildingId));
        assert_eq!(columns.field_of("CONSUMPTION"), Some(FieldName::Consumption));
        assert_eq!(columns.field_of("kwh"), None);
        assert_eq!(ColumnNames::parse::<&str>(&[]).unwrap(), columns);
        assert_eq!(columns.describe(FieldName::Date), "date");
        assert_eq!(columns.mapped(), None);
        let mapped = ColumnNames::parse(&["consumption=kwh"]).unwrap();
        assert_eq!(mapped.mapped(), Some(&mapped));
    }

    #[test]
    fn a_mapped_field_is_read_from_its_column_only() {
        let columns = ColumnNames::parse(&["consumption=kwh", " Building_Id = Site ID "]).unwrap();
        assert_eq!(columns.field_of("KWH"), Some(FieldName::Consumption));
        assert_eq!(columns.field_of("consumption"), None, "its own name is an extra column now");
        assert_eq!(columns.field_of("site id"), Some(FieldName::BuildingId));
        assert_eq!(columns.field_of("date"), Some(FieldName::Date));
        assert_eq!(columns.describe(FieldName::Consumption), "kwh (consumption)");
        assert_eq!(
            columns.to_string(),
            "building_id=Site ID, date=date, consumption=kwh, temperature=temperature, provider=provider"
        );
    }

    #[test]
    fn fields_can_swap_names() {
        let columns = ColumnNames::parse(&["consumption=temperature", "temperature=consumption"]).unwrap();
        assert_eq!(columns.field_of("temperature"), Some(FieldName::Consumption));
        assert_eq!(columns.field_of("consumption"), Some(FieldName::Temperature));
    }

    #[test]
    fn bad_mappings_say_what_is_wrong() {
        use ColumnNamesError::*;
        assert_eq!(ColumnNames::parse(&["kwh"]), Err(Form("kwh".into())));
        assert_eq!(ColumnNames::parse(&["energy=kwh"]), Err(UnknownField("energy".into())));
        assert_eq!(ColumnNames::parse(&["date= "]), Err(EmptyName("date")));
        assert_eq!(ColumnNames::parse(&["date=day", "date=d"]), Err(FieldTwice("date")));
        assert_eq!(
            ColumnNames::parse(&["consumption=Date"]),
            Err(NameTwice { first: "date", second: "consumption", name: "date".into() })
        );
        assert_eq!(
            ColumnNames::parse(&["consumption=x", "temperature=X"]),
            Err(NameTwice { first: "consumption", second: "temperature", name: "x".into() })
        );
    }
}
