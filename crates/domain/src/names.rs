//! Test support: pins the names enums are stored and sent as.

use std::fmt::Debug;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Asserts that each value's name (from its `strum` derive) and its serde form are the given
/// string, and that serde reads that string back as the value.
pub(crate) fn assert_names<T>(table: &[(T, &str)])
where
    T: Copy + Debug + PartialEq + Serialize + DeserializeOwned + Into<&'static str>,
{
    for &(value, name) in table {
        let derived: &'static str = value.into();
        assert_eq!(derived, name, "{value:?}: the name is stored in databases and sent over the API: never change it");
        assert_eq!(serde_json::to_value(value).ok(), Some(name.into()), "{value:?}: serde and strum disagree");
        assert_eq!(serde_json::from_value::<T>(name.into()).ok(), Some(value), "{value:?} is read back");
    }
}
