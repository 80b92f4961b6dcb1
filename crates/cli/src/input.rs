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

/// Opens `path` (`-` = standard input) as a record source.
pub fn open(path: &str, format: Option<SourceFormat>) -> Result<Box<dyn RecordSource + Send>, CliError> {
    let format = format_of(path, format)?;
    let input: Box<dyn BufRead + Send> = if path == "-" {
        Box::new(BufReader::with_capacity(BUFFER, std::io::stdin()))
    } else {
        let file = File::open(path)
            .map_err(|err| CliError::Input { path: path.to_owned(), message: format!("cannot open: {err}") })?;
        Box::new(BufReader::with_capacity(BUFFER, file))
    };
    Ok(emdp_formats::open_source(format, input))
}
