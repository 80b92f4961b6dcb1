//! What "today" is: the quality rules reject dates after it.

use chrono::{DateTime, NaiveDate, Utc};

/// Tells use cases the current day (UTC) and time. A port so that tests and `--today` can
/// pin "today".
pub trait Clock: Send + Sync {
    /// Today's date, UTC.
    fn today(&self) -> NaiveDate;

    /// The current time (arrival times, audit stamps).
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// The machine's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn today(&self) -> NaiveDate {
        Utc::now().date_naive()
    }
}

/// A clock stopped on one day (`--today`, tests).
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub NaiveDate);

impl Clock for FixedClock {
    fn today(&self) -> NaiveDate {
        self.0
    }
}
