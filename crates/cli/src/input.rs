//! Opening input files and standard input as record sources.

use std::fs::File;
use std::io::{BufRead, BufReader};

use emdp_app::ports::{RecordSource, SourceFormat};

use crate::error::CliError;

/// Buffer size for input files: large reads keep system calls off the profile.
pub const BUFFER: usize = 256 * 1024;

/// The format of `path`: `format` when given, else guessed from the extension.
pub fn format_of(path: &str, format: Option<SourceFormat>) -> Result<SourceFormat, CliError> {
    match format.or_else(|| SourceFormat::from_path(path)) {
        Some(format) => Ok(format),
        None if path == "-" => Err(CliError::Usage("reading standard input needs --format csv|ndjson|json".into())),
        None => Err(CliError::Input {
            path: path.to_owned(),
            message: "cannot tell the format from the extension; pass --format csv|ndjson|json".into(),
        }),
    }
}

/// Opens the input file `path`, naming it in the error.
pub fn open_file(path: &str) -> Result<File, CliError> {
    File::open(path).map_err(|err| CliError::Input { path: path.to_owned(), message: format!("cannot open: {err}") })
}

/// Checks that every input of a command can be read before it starts on the first: its
/// format is known and the file opens (`-`, standard input, always does).
pub fn check_all(paths: &[String], format: Option<SourceFormat>) -> Result<(), CliError> {
    for path in paths {
        format_of(path, format)?;
        if path != "-" {
            open_file(path)?;
        }
    }
    Ok(())
}

/// Opens `path` (`-` = standard input) as a record source.
pub fn open(path: &str, format: Option<SourceFormat>) -> Result<Box<dyn RecordSource + Send>, CliError> {
    let format = format_of(path, format)?;
    let input: Box<dyn BufRead + Send> = if path == "-" {
        Box::new(BufReader::with_capacity(BUFFER, std::io::stdin()))
    } else {
        Box::new(BufReader::with_capacity(BUFFER, open_file(path)?))
    };
    Ok(emdp_formats::open_source(format, input))
}
