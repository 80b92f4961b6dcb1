//! `emdp ingest`: store every record of one or more files, losing nothing.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use chrono::NaiveDate;
use emdp_app::ports::{Clock, FixedClock, RecordSource, SourceError, SourceFormat, SystemClock};
use emdp_app::usecases::ingest::{IngestError, IngestProgress, IngestSummary, Ingestor, StoredCounts};
use emdp_domain::QualitySummary;
use emdp_domain::{ColumnNames, ConflictPolicy};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::commands::validate::{InputFormat, load_rules, print_table};
use crate::db::DatabaseArgs;
use crate::error::CliError;
use crate::output::OutputFormat;

/// Store every record of one or more files (CSV, NDJSON, JSON, gzipped or not): each payload in the raw store,
/// each record classified in the curated store, duplicates linked, conflicts resolved by the
/// policy. Safe to run again: rows already stored are counted as re-delivered, not as duplicates.
///
/// A file of more than 50,000 rows is read whole and sorted by key before it is stored (into
/// either database), through temporary files in TMPDIR (about 200 bytes a row, removed when
/// done).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Files to ingest, one batch each; `-` reads standard input (then --format is required).
    #[arg(required = true)]
    pub files: Vec<String>,
    /// Input format; guessed from each file's extension when omitted.
    #[arg(long, value_enum)]
    pub format: Option<InputFormat>,
    /// Read FIELD from the column (CSV header) or key (JSON) NAME, e.g. `--column
    /// consumption=kwh`; once per field that the input names differently.
    #[arg(long = "column", value_name = "FIELD=NAME")]
    pub columns: Vec<String>,
    /// The batch's source name (default: the file name).
    #[arg(long)]
    pub source: Option<String>,
    /// Quality thresholds as TOML.
    #[arg(long, value_name = "FILE")]
    pub rules: Option<PathBuf>,
    /// The last day that is not in the future (default: today, UTC).
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = super::parse_date)]
    pub today: Option<NaiveDate>,
    /// How conflicting duplicates are resolved (`keep-latest` is read as `keep_latest`).
    #[arg(long, value_parser = super::PolicyParser, default_value = "prefer_valid")]
    pub policy: ConflictPolicy,
    /// How to print each file's summary (JSON: one object per line, one line per file).
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

/// A progress bar on a terminal, nothing otherwise: bytes read, with rows stored beside them;
/// when the whole input is read before anything is stored (stores written in key order),
/// rows stored out of the input's, each with its rate and ETA.
pub struct Progress {
    bar: Option<ProgressBar>,
    /// The bar counts rows stored rather than bytes read.
    rows: AtomicBool,
    /// Rows committed so far, for the error if the database fails.
    stored: AtomicU64,
}

impl Progress {
    /// Progress on `bar`, if there is one.
    fn new(bar: Option<ProgressBar>) -> Self {
        Progress { bar, rows: AtomicBool::new(false), stored: AtomicU64::new(0) }
    }

    /// The rows committed so far: what an error says was kept.
    pub fn stored_rows(&self) -> u64 {
        self.stored.load(Ordering::Relaxed)
    }

    /// Takes the bar off the terminal, before the summary or the error is printed.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl IngestProgress for Progress {
    fn read(&self, rows: u64) {
        if let Some(bar) = &self.bar {
            // The style, length and position change before the bar is drawn again: drawn after
            // the new length but before the reset, it showed the bytes read as rows stored
            // ("41,596,198/1,000,000 rows stored").
            bar.set_style(rows_style());
            bar.update(|state| {
                state.set_len(rows);
                state.set_pos(0);
            });
            bar.reset();
            self.rows.store(true, Ordering::Relaxed);
        }
    }

    fn stored(&self, rows: u64) {
        self.stored.store(rows, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            if self.rows.load(Ordering::Relaxed) {
                bar.set_position(rows);
            } else {
                bar.set_message(format!("{rows} rows stored"));
            }
        }
    }
}

/// Opens `path` for ingestion, with a progress bar when standard error is a terminal.
fn open(
    path: &str,
    format: Option<SourceFormat>,
    columns: ColumnNames,
) -> Result<(Box<dyn RecordSource + Send>, Progress), CliError> {
    let format = crate::input::format_of(path, format)?;
    let (input, progress) = read_with_progress(path)?;
    Ok((emdp_formats::open_source(format, input, columns), progress))
}

/// The input at `path` (`-`: standard input), buffered and un-gzipped, and its progress for
/// [`Ingestor::ingest`]: a bar when standard error is a terminal.
pub fn read_with_progress(path: &str) -> Result<(Box<dyn std::io::BufRead + Send>, Progress), CliError> {
    let tty = std::io::stderr().is_terminal();
    // The bar counts the bytes of the file itself (compressed ones for a .gz), as its size
    // does; standard input has no size, and a spinner counts its bytes.
    let (reader, bar): (Box<dyn std::io::Read + Send>, _) = if path == "-" {
        (Box::new(std::io::stdin()), tty.then(|| ProgressBar::new_spinner().with_style(spinner_style())))
    } else {
        let file = crate::input::open_file(path)?;
        let length = file.metadata().map(|m| m.len()).unwrap_or(0);
        (Box::new(file), tty.then(|| ProgressBar::new(length).with_style(bar_style())))
    };
    let input = match &bar {
        Some(bar) => bytes_read(path, reader, bar, ProgressDrawTarget::stderr())?,
        None => crate::input::buffered(path, reader)?,
    };
    Ok((input, Progress::new(bar)))
}

/// `file` (or standard input), buffered, its bytes counted on `bar`, drawn on `target`. The bar stays hidden while
/// the first two bytes are read to tell a gzip file: its rate and ETA from two bytes were
/// noise ("2 B/39.67 MiB 105.29 KiB/s ETA 7m").
fn bytes_read(
    path: &str,
    file: impl std::io::Read + Send + 'static,
    bar: &ProgressBar,
    target: ProgressDrawTarget,
) -> Result<Box<dyn std::io::BufRead + Send>, CliError> {
    bar.set_draw_target(ProgressDrawTarget::hidden());
    let input = crate::input::buffered(path, bar.wrap_read(file))?;
    // The two bytes stay counted; the rate and ETA start afresh.
    bar.reset_elapsed();
    bar.reset_eta();
    bar.set_draw_target(target);
    Ok(input)
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template("{bar:30} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
}

fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {bytes} {bytes_per_sec} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

/// Rows stored out of the input's, the rate in whole rows (`{per_sec}` alone shows four decimals).
fn rows_style() -> ProgressStyle {
    ProgressStyle::with_template("{bar:30} {human_pos}/{human_len} rows stored {per_sec:0} ETA {eta}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// Runs `emdp ingest`.
pub fn run(args: Args) -> Result<ExitCode, CliError> {
    let rules = Arc::new(load_rules(args.rules.as_ref())?);
    // A missing or unreadable file stops the command before the database is opened and
    // before the files ahead of it are stored: nothing half done to pick apart.
    crate::input::check_all(&args.files, args.format.map(Into::into))?;
    let columns = crate::input::column_names(&args.columns)?;
    let clock: Arc<dyn Clock> = match args.today {
        Some(today) => Arc::new(FixedClock(today)),
        None => Arc::new(SystemClock),
    };
    crate::db::block_on(args.database.with_writable_store(|store| async move {
        let ingestor = Ingestor::new(store, rules, clock, args.policy);
        for path in &args.files {
            let (source, progress) = open(path, args.format.map(Into::into), columns.clone())?;
            let name = args.source.clone().unwrap_or_else(|| path.clone());
            let summary = ingest_watched(&ingestor, source, &name, path, &progress).await?;
            print_summary(path, &summary, args.output)?;
        }
        Ok(ExitCode::SUCCESS)
    }))
}

/// Ingests `source` (the input at `path`) as batch `name`, and tells the user on standard error
/// about its records cut at the limit and when it has none; an empty input is one without
/// records, not an error.
pub async fn ingest_watched(
    ingestor: &Ingestor,
    source: Box<dyn RecordSource + Send>,
    name: &str,
    path: &str,
    progress: &Progress,
) -> Result<IngestSummary, CliError> {
    let format = source.format();
    let (source, notes) = crate::input::watch(source);
    let result = ingestor.ingest(source, name, progress).await;
    progress.finish();
    let summary = match result {
        Ok(summary) => summary,
        Err(IngestError::Source(SourceError::Empty)) => {
            IngestSummary { quality: QualitySummary::default(), stored: StoredCounts::default(), batch_id: None }
        }
        Err(err) => {
            crate::input::print_notes(&notes, path, format, None);
            return Err(ingest_error(path, err, progress.stored_rows()));
        }
    };
    crate::input::print_notes(&notes, path, format, Some(summary.quality.total));
    Ok(summary)
}

/// What a failed ingest of `path` tells the user: the file's problem (exit 2) or the
/// database's (exit 3), with how many of its rows (`stored`) were committed before.
pub fn ingest_error(path: &str, err: IngestError, stored: u64) -> CliError {
    match err {
        IngestError::Source(err) => CliError::Input { path: path.to_owned(), message: err.to_string() },
        IngestError::Store(source) => CliError::Interrupted { path: path.to_owned(), stored, source },
        IngestError::Reader(message) => CliError::Input { path: path.to_owned(), message },
        // The temporary directory's problem, not the file's: named as the place to fix.
        IngestError::Sort(err) => {
            CliError::Output { path: std::env::temp_dir().display().to_string(), message: err.to_string() }
        }
    }
}

/// Prints an ingest summary as a table or one JSON line.
pub fn print_summary(path: &str, summary: &IngestSummary, output: OutputFormat) -> Result<(), CliError> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let written = match output {
        OutputFormat::Json => {
            serde_json::to_writer(&mut out, summary).map_err(std::io::Error::from).and_then(|()| writeln!(out))
        }
        OutputFormat::Text => print_table(&mut out, path, &summary.quality).and_then(|()| {
            writeln!(out)?;
            writeln!(out, "  {:<26} {:>12}", "stored", "records")?;
            writeln!(out, "  {:<26} {:>12}", "inserted", summary.stored.inserted)?;
            writeln!(out, "  {:<26} {:>12}", "duplicates skipped", summary.stored.duplicates_skipped)?;
            writeln!(out, "  {:<26} {:>12}", "conflicts", summary.stored.conflicts)?;
            writeln!(out, "  {:<26} {:>12}", "redelivered", summary.stored.redelivered)?;
            match summary.batch_id {
                Some(batch) => writeln!(out, "  batch {batch}"),
                None => writeln!(out, "  no batch: nothing to store"),
            }
        }),
    };
    written.map_err(|err| crate::output::write_error("stdout", &err))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use indicatif::TermLike;

    use super::*;

    /// A terminal that keeps every line drawn on it.
    #[derive(Debug, Clone, Default)]
    struct Screen(Arc<Mutex<Vec<String>>>);

    impl TermLike for Screen {
        fn width(&self) -> u16 {
            120
        }
        fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn write_line(&self, line: &str) -> std::io::Result<()> {
            self.write_str(line)
        }
        fn write_str(&self, text: &str) -> std::io::Result<()> {
            if !text.trim().is_empty() {
                self.0.lock().unwrap().push(text.to_owned());
            }
            Ok(())
        }
        fn clear_line(&self) -> std::io::Result<()> {
            Ok(())
        }
        fn flush(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_bar_shows_no_rate_from_the_two_bytes_read_to_tell_a_gzip_file() {
        let screen = Screen::default();
        let on_screen = || ProgressDrawTarget::term_like(Box::new(screen.clone()));
        let file = "building_id,date,consumption,temperature,provider\n".repeat(4_000);
        let length = file.len() as u64;
        let bar = ProgressBar::with_draw_target(Some(length), on_screen()).with_style(bar_style());
        let mut input = bytes_read("a.csv", std::io::Cursor::new(file), &bar, on_screen()).unwrap();
        assert!(screen.0.lock().unwrap().is_empty(), "nothing drawn yet");
        std::io::copy(&mut input, &mut std::io::sink()).unwrap();
        let frames = screen.0.lock().unwrap().clone();
        assert!(!frames.is_empty());
        assert!(frames.iter().all(|frame| !frame.contains(" 2 B/")), "{frames:?}");
        assert_eq!(bar.position(), length, "every byte counted");
    }

    #[test]
    fn the_bar_turns_from_bytes_read_to_rows_stored_without_mixing_them() {
        let screen = Screen::default();
        // No rate limit: every frame is drawn.
        let bar =
            ProgressBar::with_draw_target(Some(41_596_198), ProgressDrawTarget::term_like(Box::new(screen.clone())))
                .with_style(bar_style());
        bar.set_position(41_596_198);
        let progress = Progress::new(Some(bar));
        progress.read(1_000_000);
        progress.stored(500_000);
        let frames = screen.0.lock().unwrap().clone();
        let rows: Vec<&String> = frames.iter().filter(|frame| frame.contains("rows stored")).collect();
        assert!(!rows.is_empty(), "{frames:?}");
        for frame in rows {
            assert!(frame.contains("/1,000,000 rows stored"), "{frame}");
            assert!(!frame.contains("41,596,198"), "bytes shown as rows: {frame}");
            let rate = frame.split_whitespace().find(|word| word.ends_with("/s")).unwrap();
            assert!(!rate.contains('.'), "a rate in whole rows: {frame}");
        }
        assert_eq!(progress.stored_rows(), 500_000);
    }
}
