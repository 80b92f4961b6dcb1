//! One module per subcommand.

pub mod analyze;
pub mod batches;
pub mod config;
pub mod dead_letters;
pub mod duplicates;
pub mod generate;
pub mod health;
pub mod import_mongo;
pub mod ingest;
pub mod keys;
pub mod migrate;
pub mod records;
pub mod report;
pub mod serve;
pub mod validate;

use chrono::NaiveDate;
use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use emdp_domain::ConflictPolicy;

/// Parses `--today` and other date flags as ISO 8601 `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> Result<NaiveDate, String> {
    emdp_domain::parse_iso_date(text.trim()).map_err(|err| format!("{err}: expected YYYY-MM-DD"))
}

/// `--from` and `--to`: the days a command looks at, the same two flags wherever one filters by
/// day (`report`, `records list`, `duplicates list`).
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct DayRange {
    /// Only days on or after this one.
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_date)]
    pub from: Option<NaiveDate>,
    /// Only days on or before this one.
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_date)]
    pub to: Option<NaiveDate>,
}

impl DayRange {
    /// The range, refused (a usage error naming both days) when it ends before it starts, as
    /// the API answers 400 for the same query.
    pub fn checked(self) -> Result<Self, crate::error::CliError> {
        match (self.from, self.to) {
            (Some(from), Some(to)) if from > to => {
                Err(crate::error::CliError::Usage(format!("--from {from} is after --to {to}")))
            }
            _ => Ok(self),
        }
    }
}

#[cfg(test)]
mod day_range_tests {
    use super::*;

    fn day(text: &str) -> Option<NaiveDate> {
        Some(parse_date(text).unwrap())
    }

    #[test]
    fn a_range_ending_before_it_starts_names_both_days() {
        let inverted = DayRange { from: day("2026-05-01"), to: day("2026-01-01") };
        let err = inverted.checked().unwrap_err().to_string();
        assert!(err.contains("--from 2026-05-01 is after --to 2026-01-01"), "{err}");
        for ok in [
            DayRange { from: day("2026-01-01"), to: day("2026-01-01") },
            DayRange { from: day("2026-01-01"), to: None },
            DayRange { from: None, to: None },
        ] {
            assert!(ok.checked().is_ok());
        }
    }
}

/// `--policy`: a conflict policy read by the domain's one parser ([`ConflictPolicy::parse`]:
/// `keep_latest` or `keep-latest`); help lists the snake_case names every output uses.
#[derive(Debug, Clone, Copy)]
pub struct PolicyParser;

impl PolicyParser {
    /// What a policy does, for `--help`.
    fn help(policy: ConflictPolicy) -> &'static str {
        match policy {
            ConflictPolicy::PreferValid => "A VALID version wins; ties (or no VALID version) go to the latest arrival",
            ConflictPolicy::KeepFirst => "The first version stays",
            ConflictPolicy::KeepLatest => "The latest version wins",
            ConflictPolicy::Manual => "No automatic winner: conflicts wait for a decision",
        }
    }
}

impl TypedValueParser for PolicyParser {
    type Value = ConflictPolicy;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<ConflictPolicy, clap::Error> {
        if let Some(policy) = value.to_str().and_then(ConflictPolicy::parse) {
            return Ok(policy);
        }
        // clap's own message: "invalid value 'x' for '--policy <POLICY>' [possible values: ...]".
        let names = PossibleValuesParser::new(ConflictPolicy::ALL.map(ConflictPolicy::as_str));
        Err(match names.parse_ref(cmd, arg, value) {
            Err(err) => err,
            Ok(_) => clap::Error::new(clap::error::ErrorKind::InvalidValue).with_cmd(cmd),
        })
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(
            ConflictPolicy::ALL.into_iter().map(|policy| PossibleValue::new(policy.as_str()).help(Self::help(policy))),
        ))
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Flags {
        #[arg(long, value_parser = PolicyParser)]
        policy: ConflictPolicy,
    }

    #[test]
    fn policy_flags_take_both_spellings_and_name_the_snake_case_ones() {
        for (text, policy) in [("keep_latest", ConflictPolicy::KeepLatest), ("keep-latest", ConflictPolicy::KeepLatest)]
        {
            assert_eq!(Flags::try_parse_from(["emdp", "--policy", text]).unwrap().policy, policy, "{text}");
        }
        let err = Flags::try_parse_from(["emdp", "--policy", "newest"]).unwrap_err().to_string();
        assert!(err.contains("invalid value 'newest'"), "{err}");
        assert!(err.contains("prefer_valid, keep_first, keep_latest, manual"), "{err}");
    }
}
