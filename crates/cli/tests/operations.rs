//! `emdp keys`, `emdp config show`, `emdp serve` start-up checks and `emdp health`, run as an
//! operator would.

#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap fails the test")]

mod common;

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{emdp, fails_with_2, run_json, run_ok, sqlite_url, temp_dir, wal_bytes, write_file};

/// Every command that opens a SQLite database closes it: the schema its first use created,
/// and what it wrote, are in the file, and a copy of the file alone holds them.
#[test]
fn every_command_leaves_its_sqlite_file_whole() {
    let dir = temp_dir();
    let url = sqlite_url(&dir, "keys.db");
    run_ok(&["keys", "create", "--name", "ops", "--role", "admin", "--database-url", &url]);
    assert_eq!(wal_bytes(&dir, "keys.db"), 0, "keys create left its commits in the WAL");
    std::fs::copy(dir.path().join("keys.db"), dir.path().join("copy.db")).unwrap();
    let listed = run_json(&["keys", "list", "--output", "json", "--database-url", &sqlite_url(&dir, "copy.db")]);
    assert_eq!(listed[0]["name"], "ops");
    let readers: [&[&str]; 6] = [
        &["keys", "list"],
        &["records", "list"],
        &["duplicates", "list"],
        &["duplicates", "resolve", "--all", "--policy", "prefer-valid"],
        &["report"],
        &["analyze", "--all"],
    ];
    for (i, command) in readers.iter().enumerate() {
        // A new, empty file each time: opening it creates the schema, a write like any other.
        let name = format!("fresh{i}.db");
        std::fs::File::create(dir.path().join(&name)).unwrap();
        let url = sqlite_url(&dir, &name);
        let mut args = command.to_vec();
        args.extend(["--database-url", &url]);
        run_ok(&args);
        assert_eq!(wal_bytes(&dir, &name), 0, "`emdp {}` left pages in the WAL", command.join(" "));
    }
}

/// A command that only reads, pointed at a SQLite file that does not exist, says so (exit 2)
/// and creates nothing: an empty new file would report no data, and a user would conclude
/// the data is gone. Commands that write create the file.
#[test]
fn read_only_commands_refuse_a_missing_database_and_writers_create_it() {
    let dir = temp_dir();
    let missing = dir.path().join("missing.db");
    let url = sqlite_url(&dir, "missing.db");
    let readers: [&[&str]; 9] = [
        &["report"],
        &["records", "list"],
        &["records", "get", "1"],
        &["batches", "list"],
        &["analyze", "--all"],
        &["duplicates", "list"],
        &["duplicates", "decisions", "1"],
        &["keys", "list"],
        &["report", "--output", "json"],
    ];
    for command in readers {
        let mut args = command.to_vec();
        args.extend(["--database-url", &url]);
        let stderr = fails_with_2(&args);
        assert!(
            stderr.contains(&format!(
                "no emdp database at {} (check --database-url or run `emdp ingest` first)",
                missing.display()
            )),
            "`emdp {}`: {stderr}",
            command.join(" ")
        );
        assert!(!missing.exists(), "`emdp {}` created the file", command.join(" "));
    }
    let csv = write_file(&dir, "a.csv", "building_id,date,consumption,temperature,provider\nB1,2025-01-01,10,5,p\n");
    let writers: [&[&str]; 3] =
        [&["keys", "create", "--name", "ops", "--role", "admin"], &["ingest", csv.to_str().unwrap()], &["migrate"]];
    for (i, command) in writers.iter().enumerate() {
        let url = sqlite_url(&dir, &format!("new{i}.db"));
        let mut args = command.to_vec();
        args.extend(["--database-url", &url]);
        run_ok(&args);
        assert!(dir.path().join(format!("new{i}.db")).exists(), "`emdp {}` created no file", command.join(" "));
    }
    let listed = run_ok(&["records", "list", "--database-url", &sqlite_url(&dir, "new1.db")]);
    assert!(listed.contains("B1"), "{listed}");
}

/// A database URL without a path is a usage error naming it, before anything is opened.
#[test]
fn a_sqlite_url_without_a_path_is_exit_2_naming_it() {
    let dir = temp_dir();
    let csv = write_file(&dir, "a.csv", "building_id,date,consumption,temperature,provider\nB1,2025-01-01,10,5,p\n");
    let expected = "sqlite://: this SQLite URL has no file path; use sqlite://PATH";
    for command in [vec!["ingest", csv.to_str().unwrap()], vec!["records", "list"], vec!["migrate"]] {
        let mut args = command.clone();
        args.extend(["--database-url", "sqlite://"]);
        let stderr = fails_with_2(&args);
        assert!(stderr.contains(&format!("--database-url: {expected}")), "{command:?}: {stderr}");
        assert!(!stderr.contains("the same command again"), "{stderr}");
    }
    let output = emdp().current_dir(dir.path()).env("DATABASE_URL", "sqlite://").args(["serve"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&format!("DATABASE_URL (database_url): {expected}")), "{stderr}");
}

/// `emdp records list | head -1`: when the reader of standard output goes away, the command
/// stops quietly with the status of a tool stopped by SIGPIPE (141), as `ls | head` does.
#[test]
fn a_closed_standard_output_stops_the_command_quietly() {
    let dir = temp_dir();
    let url = sqlite_url(&dir, "pipe.db");
    let csv = write_file(&dir, "a.csv", "building_id,date,consumption,temperature,provider\nB1,2025-01-01,10,5,p\n");
    run_ok(&["ingest", csv.to_str().unwrap(), "--database-url", &url]);
    let commands: [&[&str]; 4] = [
        &["records", "list", "--database-url", &url],
        &["report", "--database-url", &url],
        &["keys", "list", "--database-url", &url],
        &["generate", "--buildings", "2", "--days", "3", "--out", "-"],
    ];
    for command in commands {
        // The pipe's reading end is closed before the command starts: its first write fails.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let output = std::process::Command::new(assert_cmd::cargo::cargo_bin("emdp"))
            .args(command)
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(141), "`emdp {}`: {stderr}", command.join(" "));
        assert!(stderr.is_empty(), "`emdp {}` said: {stderr}", command.join(" "));
    }
}

/// Commands started together on a new SQLite file (two cron jobs, `serve` beside an
/// `ingest`) all create its schema once: none fails because another got there first.
#[test]
fn commands_started_together_on_a_new_file_all_succeed() {
    for round in 0..3 {
        let dir = temp_dir();
        let url = sqlite_url(&dir, "new.db");
        let children: Vec<_> = (0..6)
            .map(|_| {
                std::process::Command::new(assert_cmd::cargo::cargo_bin("emdp"))
                    .args(["migrate", "--database-url", &url])
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("emdp starts")
            })
            .collect();
        for child in children {
            let output = child.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(output.status.success(), "round {round}: {stderr}");
        }
        let migrated = run_ok(&["migrate", "--database-url", &url]);
        assert!(migrated.contains("schema up to date"), "{migrated}");
    }
}

#[test]
fn keys_are_created_once_listed_and_revoked() {
    let dir = temp_dir();
    let url = sqlite_url(&dir, "keys.db");
    let created =
        run_json(&["keys", "create", "--name", "ops", "--role", "admin", "--output", "json", "--database-url", &url]);
    let secret = created["key"].as_str().unwrap();
    assert!(secret.starts_with("emdp_") && secret.len() == 48, "{created}");
    assert_eq!(created["role"], "admin");
    assert_eq!(created["prefix"], &secret[..13]);
    let text = run_ok(&["keys", "create", "--name", "loader", "--role", "ingester", "--database-url", &url]);
    assert!(text.trim().starts_with("emdp_") && text.lines().count() == 1, "text output is the key alone: {text}");

    let listed = run_json(&["keys", "list", "--output", "json", "--database-url", &url]);
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!((listed[0]["name"].as_str(), listed[1]["role"].as_str()), (Some("ops"), Some("ingester")));
    let all = serde_json::to_string(listed).unwrap();
    assert!(!all.contains(secret) && !all.contains("hash"), "neither the key nor its hash is shown: {all}");

    run_ok(&["keys", "revoke", "ops", "--database-url", &url]);
    let listed = run_json(&["keys", "list", "--output", "json", "--database-url", &url]);
    assert!(listed[0]["revoked_at"].is_string() && listed[1]["revoked_at"].is_null(), "{listed}");
    let id = listed[1]["id"].to_string();
    run_ok(&["keys", "revoke", &id, "--database-url", &url]);

    assert!(fails_with_2(&["keys", "revoke", "nobody", "--database-url", &url]).contains("no key named"));
    assert!(
        fails_with_2(&["keys", "create", "--name", "ops", "--role", "reader", "--database-url", &url])
            .contains("exists already")
    );
    fails_with_2(&["keys", "create", "--name", "x", "--role", "root", "--database-url", &url]);
}

#[test]
fn config_show_applies_file_env_and_flags_and_hides_secrets() {
    let dir = temp_dir();
    write_file(&dir, "emdp.toml", "[server]\nbind = \"0.0.0.0:9000\"\ntimeout_secs = 5\nmax_concurrent = 9\n");
    write_file(&dir, ".env", "EMDP_RATE_LIMIT_BURST=7\nEMDP_TIMEOUT_SECS=99\n");
    let output = emdp()
        .current_dir(dir.path())
        .env("EMDP_TIMEOUT_SECS", "6")
        .env("DATABASE_URL", "postgres://emdp:hunter2@db:5432/emdp")
        .args(["config", "show", "--bind", "127.0.0.1:9200"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("bind = \"127.0.0.1:9200\""), "the flag wins: {stdout}");
    assert!(stdout.contains("timeout_secs = 6"), "the environment beats .env and the file: {stdout}");
    assert!(stdout.contains("max_concurrent = 9"), "the file beats defaults: {stdout}");
    assert!(stdout.contains("burst = 7"), ".env fills unset variables: {stdout}");
    assert!(stdout.contains("postgres://emdp:***@db:5432/emdp") && !stdout.contains("hunter2"), "{stdout}");
}

#[test]
fn invalid_configuration_stops_serve_with_exit_2_naming_the_key() {
    let dir = temp_dir();
    let output = emdp().current_dir(dir.path()).env("EMDP_BIND", "nowhere").args(["serve"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("EMDP_BIND (server.bind): invalid value 'nowhere'"), "{stderr}");
    let bad = write_file(&dir, "bad.toml", "[server]\nbnid = 1\n");
    let stderr = fails_with_2(&["config", "show", "--config", bad.to_str().unwrap()]);
    assert!(stderr.contains("bnid"), "{stderr}");
    let stderr = fails_with_2(&["serve", "--rate-limit-burst", "many"]);
    assert!(stderr.contains("--rate-limit-burst (rate_limit.burst)"), "{stderr}");
    // A habit from other servers: the hint names the flag that does it.
    let stderr = fails_with_2(&["serve", "--port", "8080"]);
    assert!(stderr.contains("emdp serve has no --port option: use --bind 127.0.0.1:8080"), "{stderr}");
    let stderr = fails_with_2(&["serve", "--port=9000"]);
    assert!(stderr.contains("use --bind 127.0.0.1:9000"), "{stderr}");
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `emdp serve` on a free port with `args` and waits until it answers `/ready`.
fn start_server(dir: &tempfile::TempDir, args: &[&str], stderr: Stdio) -> (Killed, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let bind = format!("127.0.0.1:{port}");
    let base = format!("http://{bind}");
    let server = std::process::Command::new(assert_cmd::cargo::cargo_bin("emdp"))
        .current_dir(dir.path())
        .args(["serve", "--bind", &bind])
        .args(args)
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let server = Killed(server);
    let started = Instant::now();
    loop {
        let status = emdp().args(["health", "--url", &base, "--timeout", "1"]).output().unwrap().status;
        if status.success() {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "the server did not become ready");
        std::thread::sleep(Duration::from_millis(100));
    }
    (server, base)
}

#[test]
fn serve_answers_health_checks_and_requires_keys_once_one_exists() {
    let dir = temp_dir();
    let url = sqlite_url(&dir, "serve.db");
    run_ok(&["keys", "create", "--name", "ops", "--role", "admin", "--database-url", &url]);
    let (_server, base) = start_server(&dir, &["--database-url", &url, "--log-format", "json"], Stdio::null());
    // A key exists, so the records need one.
    let output = emdp().args(["health", "--url", &base, "--path", "/api/v1/records"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("answered 401"));
    // Nothing listens here.
    let output = emdp().args(["health", "--url", "http://127.0.0.1:1", "--timeout", "1"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
}

/// A server that answers `/ready` with a problem document, once, on a free port.
fn answering_once(answer: String) -> (std::thread::JoinHandle<()>, String) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let serving = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut stream, _) = listener.accept().unwrap();
        let mut request = Vec::new();
        let mut byte = [0u8; 1];
        while !request.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap() == 1 {
            request.push(byte[0]);
        }
        if !answer.is_empty() {
            stream.write_all(answer.as_bytes()).unwrap();
        } else {
            // Silent until the client gives up.
            let _ = stream.read(&mut byte);
        }
    });
    (serving, base)
}

/// `emdp health` says why in words: the server's own reason for a 503, or what kept it from
/// getting an answer (never an OS error number such as "os error 11" for a read that timed out).
#[test]
fn health_says_why_in_words() {
    let health = |base: &str| {
        let output = emdp().args(["health", "--url", base, "--timeout", "1"]).output().unwrap();
        assert_eq!(output.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(!stderr.contains("os error"), "{stderr}");
        stderr
    };
    let stderr = health("http://127.0.0.1:1");
    assert!(stderr.contains("http://127.0.0.1:1/api/v1/ready: connection refused"), "{stderr}");

    let body = r#"{"type":"urn:emdp:problem:unavailable","title":"Service unavailable","status":503,"detail":"database unavailable: cannot connect to 127.0.0.1:5432: connection refused"}"#;
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/problem+json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let (serving, base) = answering_once(answer);
    let stderr = health(&base);
    serving.join().unwrap();
    assert!(
        stderr.contains("answered 503: database unavailable: cannot connect to 127.0.0.1:5432: connection refused"),
        "{stderr}"
    );

    let (serving, base) = answering_once(String::new());
    let stderr = health(&base);
    serving.join().unwrap();
    assert!(stderr.contains("/api/v1/ready: no answer within 1 s"), "{stderr}");
}

#[test]
fn serve_logs_each_request_as_plain_text_and_flushes_on_sigterm() {
    let dir = temp_dir();
    let url = sqlite_url(&dir, "logs.db");
    let log = std::fs::File::create(dir.path().join("serve.log")).unwrap();
    let args = ["--database-url", url.as_str(), "--log-format", "pretty", "--no-auth"];
    let (mut server, base) = start_server(&dir, &args, Stdio::from(log));
    let output = emdp().args(["health", "--url", &base, "--path", "/api/v1/rules"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    let terminated = std::process::Command::new("kill").args(["-TERM", &server.0.id().to_string()]).status();
    assert!(terminated.unwrap().success());
    assert!(server.0.wait().unwrap().success(), "SIGTERM stops the server cleanly");
    let text = std::fs::read_to_string(dir.path().join("serve.log")).unwrap();
    assert!(text.contains("route=/api/v1/rules status=200"), "one line per request: {text}");
    assert!(
        text.contains(&format!(
            "emdp: serving {base} (dashboard {base}/, API docs {base}/docs and {base}/redoc, API {base}/api/v1"
        )),
        "the start-up line names the dashboard, the docs and the API: {text}"
    );
    assert!(text.contains("shutting down"), "lines queued at shutdown are written: {text}");
    assert!(!text.contains('\u{1b}'), "no colour codes when the log is not a terminal: {text}");
    assert_eq!(wal_bytes(&dir, "logs.db"), 0, "the stores are closed on SIGTERM too");
}
