//! `emdp health`: ask a running server whether it is ready (for container health checks; no
//! HTTP client library, no shell tools needed in the image).

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

use crate::error::CliError;

/// Check that a server answers `GET /api/v1/ready` with 200 (exit 0), else exit 1.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The server's base URL (plain HTTP).
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    pub url: String,
    /// The path to ask.
    #[arg(long, default_value = "/api/v1/ready")]
    pub path: String,
    /// Seconds to wait for an answer.
    #[arg(long, default_value_t = 5)]
    pub timeout: u64,
}

/// The status code of `GET path` on `host:port`.
fn status(authority: &str, path: &str, timeout: Duration) -> Result<u16, String> {
    let address = authority
        .to_socket_addrs()
        .map_err(|err| format!("{authority}: {err}"))?
        .next()
        .ok_or_else(|| format!("{authority}: no address"))?;
    let mut stream = TcpStream::connect_timeout(&address, timeout).map_err(|err| format!("{authority}: {err}"))?;
    stream.set_read_timeout(Some(timeout)).map_err(|err| err.to_string())?;
    stream.set_write_timeout(Some(timeout)).map_err(|err| err.to_string())?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nUser-Agent: emdp-health\r\n\r\n")
        .map_err(|err| err.to_string())?;
    let mut head = [0u8; 64];
    let read = stream.read(&mut head).map_err(|err| err.to_string())?;
    let line = String::from_utf8_lossy(&head[..read]);
    line.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("not an HTTP answer: {line:?}"))
}

/// Runs `emdp health`.
pub fn run(args: Args) -> Result<ExitCode, CliError> {
    let Some(rest) = args.url.strip_prefix("http://") else {
        return Err(CliError::Usage(format!("--url: only http:// URLs are supported, got '{}'", args.url)));
    };
    let authority = rest.split('/').next().unwrap_or(rest);
    let authority = if authority.contains(':') { authority.to_owned() } else { format!("{authority}:80") };
    match status(&authority, &args.path, Duration::from_secs(args.timeout.max(1))) {
        Ok(200) => {
            println!("ok");
            Ok(ExitCode::SUCCESS)
        }
        Ok(code) => {
            eprintln!("emdp: {}{} answered {code}", args.url, args.path);
            Ok(ExitCode::from(1))
        }
        Err(err) => {
            eprintln!("emdp: {}{}: {err}", args.url, args.path);
            Ok(ExitCode::from(1))
        }
    }
}
