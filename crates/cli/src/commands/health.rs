//! `emdp health`: ask a running server whether it is ready (for container health checks; no
//! HTTP client library, no shell tools needed in the image).

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

use crate::error::CliError;
use crate::output::write_out;

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

/// The most of an answer read: its status line, headers and a problem document's detail.
const MAX_ANSWER: u64 = 64 * 1024;

/// A server's answer: its status code and, for a problem document, its `detail`.
struct Answer {
    status: u16,
    detail: Option<String>,
}

/// Why a request got no answer, in words ([`emdp_storage::io_reason`]), with what a user of
/// `emdp health` checks next.
fn reason(err: &std::io::Error, timeout: Duration) -> String {
    use std::io::ErrorKind;
    match err.kind() {
        ErrorKind::ConnectionRefused => "connection refused (is emdp serve running there?)".to_owned(),
        ErrorKind::TimedOut | ErrorKind::WouldBlock => format!("no answer within {} s", timeout.as_secs()),
        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::UnexpectedEof => {
            "the connection was closed before an answer".to_owned()
        }
        _ => emdp_storage::io_reason(err),
    }
}

/// `GET path` on `host:port`: the answer, or why there was none.
fn get(authority: &str, path: &str, timeout: Duration) -> Result<Answer, String> {
    let why = |err: std::io::Error| reason(&err, timeout);
    // A name that does not resolve fails here, whatever the resolver's own words.
    let address = authority
        .to_socket_addrs()
        .map_err(|err| format!("cannot resolve {authority}: no such host ({err})"))?
        .next()
        .ok_or_else(|| format!("cannot resolve {authority}: no such host"))?;
    let mut stream = TcpStream::connect_timeout(&address, timeout).map_err(why)?;
    stream.set_read_timeout(Some(timeout)).map_err(why)?;
    stream.set_write_timeout(Some(timeout)).map_err(why)?;
    // One write: a request sent in pieces can meet a server that answered the first.
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nUser-Agent: emdp-health\r\n\r\n");
    stream.write_all(request.as_bytes()).map_err(why)?;
    let mut answer = Vec::new();
    let read = stream.take(MAX_ANSWER).read_to_end(&mut answer);
    if answer.is_empty() {
        return Err(match read {
            Err(err) => why(err),
            Ok(_) => "the connection was closed before an answer".to_owned(),
        });
    }
    // What arrived before a timeout or a reset is still the answer (its status line first).
    let text = String::from_utf8_lossy(&answer);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("not an HTTP answer: {:?}", text.lines().next().unwrap_or_default()))?;
    let detail = text
        .split_once("\r\n\r\n")
        .and_then(|(_, body)| serde_json::from_str::<serde_json::Value>(body).ok())
        .and_then(|body| body.get("detail").and_then(|detail| detail.as_str()).map(str::to_owned));
    Ok(Answer { status, detail })
}

/// Runs `emdp health`.
pub fn run(args: Args) -> Result<ExitCode, CliError> {
    let Some(rest) = args.url.strip_prefix("http://") else {
        return Err(CliError::Usage(format!("--url: only http:// URLs are supported, got '{}'", args.url)));
    };
    let authority = rest.split('/').next().unwrap_or(rest);
    let authority = if authority.contains(':') { authority.to_owned() } else { format!("{authority}:80") };
    match get(&authority, &args.path, Duration::from_secs(args.timeout.max(1))) {
        Ok(Answer { status: 200, .. }) => {
            write_out("ok\n")?;
            Ok(ExitCode::SUCCESS)
        }
        Ok(Answer { status, detail }) => {
            let detail = detail.map(|detail| format!(": {detail}")).unwrap_or_default();
            eprintln!("emdp: {}{} answered {status}{detail}", args.url, args.path);
            Ok(ExitCode::from(1))
        }
        Err(err) => {
            eprintln!("emdp: {}{}: {err}", args.url, args.path);
            Ok(ExitCode::from(1))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Error, ErrorKind};

    use super::*;

    #[test]
    fn failures_are_told_in_words_not_error_numbers() {
        let timeout = Duration::from_secs(5);
        // What a read timeout is on Linux: EAGAIN, "Resource temporarily unavailable (os error 11)".
        assert_eq!(reason(&Error::from_raw_os_error(11), timeout), "no answer within 5 s");
        assert_eq!(reason(&Error::from(ErrorKind::TimedOut), timeout), "no answer within 5 s");
        let refused = reason(&Error::from(ErrorKind::ConnectionRefused), timeout);
        assert!(refused.starts_with("connection refused"), "{refused}");
        let reset = reason(&Error::from(ErrorKind::ConnectionReset), timeout);
        assert_eq!(reset, "the connection was closed before an answer");
    }
}
