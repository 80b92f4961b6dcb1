//! The rules file: the quality thresholds as TOML (`--rules FILE`).
//!
//! ```toml
//! [consumption]
//! min_exclusive = 0.0
//! max = 1_000_000.0
//! unit = "kWh"
//!
//! [temperature]
//! min = -20.0
//! max = 55.0
//!
//! [identifiers]
//! max_length = 128
//! ```
//! Every key is optional (defaults apply); an unknown key or an empty range is an error.

use std::path::Path;

use emdp_domain::{RuleSet, RuleSetError};

/// Why a rules file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RulesFileError {
    /// The file could not be read.
    #[error("{path}: cannot read rules file: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown keys / wrong types.
    #[error("{path}: {message}")]
    Syntax {
        /// The file.
        path: String,
        /// The parser's message, with line and column.
        message: String,
    },
    /// The thresholds do not make sense together.
    #[error("{path}: {source}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        source: RuleSetError,
    },
}

/// Parses a rule set from TOML text; `path` is only used in error messages.
pub fn parse_rules(path: &str, text: &str) -> Result<RuleSet, RulesFileError> {
    let rules: RuleSet = toml::from_str(text).map_err(|err| RulesFileError::Syntax {
        path: path.to_owned(),
        message: err.to_string().trim_end().to_owned(),
    })?;
    rules.validated().map_err(|source| RulesFileError::Invalid { path: path.to_owned(), source })
}

/// Reads and checks a rules file.
pub fn load_rules(path: &Path) -> Result<RuleSet, RulesFileError> {
    let display = path.display().to_string();
    let text =
        std::fs::read_to_string(path).map_err(|source| RulesFileError::Read { path: display.clone(), source })?;
    parse_rules(&display, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_file_keeps_defaults() {
        let rules = parse_rules("r.toml", "[temperature]\nmax = 60\n").unwrap();
        assert_eq!(rules.temperature.max, 60.0);
        assert_eq!(rules.consumption.max, 1_000_000.0);
    }

    #[test]
    fn unknown_keys_and_bad_types_name_the_key() {
        let err = parse_rules("r.toml", "[temperature]\nmaximum = 60\n").unwrap_err().to_string();
        assert!(err.starts_with("r.toml: ") && err.contains("maximum"), "{err}");
        let err = parse_rules("r.toml", "[temperature]\nmax = \"hot\"\n").unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn empty_ranges_are_rejected() {
        let err = parse_rules("r.toml", "[temperature]\nmin = 10\nmax = 0\n").unwrap_err().to_string();
        assert_eq!(err, "r.toml: temperature.min (10) must be below temperature.max (0)");
    }

    #[test]
    fn missing_file() {
        let err = load_rules(Path::new("/nonexistent/rules.toml")).unwrap_err().to_string();
        assert!(err.starts_with("/nonexistent/rules.toml: cannot read rules file"), "{err}");
    }
}
