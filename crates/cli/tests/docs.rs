//! The book in `docs/` against the code it describes:
//!
//! - every subcommand of `emdp` has a section in the CLI reference (`docs/src/cli.md`), and the
//!   `--help` text shown there is exactly what the binary prints (regenerate it with
//!   `EMDP_BLESS=1 cargo test -p emdp-cli --test docs`);
//! - every relative link of the book, the README and BENCHMARKS.md leads to a file and heading
//!   that exist, and SUMMARY.md lists every chapter;
//! - every `EMDP_*` variable the docs name is one the code or scripts read.

#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap fails the test")]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use common::emdp;

/// Set to `1` to rewrite the help blocks of `docs/src/cli.md` from the binary.
const BLESS: &str = "EMDP_BLESS";

/// How to regenerate the reference, for failure messages.
const REGENERATE: &str = "regenerate it with `EMDP_BLESS=1 cargo test -p emdp-cli --test docs`";

/// The repository's root directory.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("the repository root")
}

/// `docs/src/cli.md`.
fn cli_md() -> PathBuf {
    root().join("docs/src/cli.md")
}

/// `emdp PATH... --help` as a user with no `EMDP_*` variable, no `.env` and no `emdp.toml` sees
/// it (clap shows an environment variable's value in the help when it is set).
fn help(path: &[String]) -> String {
    let empty = tempfile::tempdir().expect("a temporary directory");
    let output = emdp().args(path).arg("--help").env_clear().current_dir(empty.path()).output().expect("emdp runs");
    assert!(output.status.success(), "emdp {} --help failed: {output:?}", path.join(" "));
    String::from_utf8(output.stdout).expect("the help is UTF-8")
}

/// The subcommands listed under `Commands:` in a help text, without clap's `help`.
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|line| line.trim_end() != "Commands:")
        .skip(1)
        .take_while(|line| line.starts_with("  "))
        .filter(|line| !line[2..].starts_with(' '))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

/// Every command of the binary (the root first, then depth first in the order clap lists them)
/// with its `--help` text.
fn command_tree() -> Vec<(Vec<String>, String)> {
    let mut commands = Vec::new();
    let mut pending = vec![Vec::new()];
    while let Some(path) = pending.pop() {
        let text = help(&path);
        for name in subcommands(&text).into_iter().rev() {
            let mut child = path.clone();
            child.push(name);
            pending.push(child);
        }
        commands.push((path, text));
    }
    commands
}

/// `emdp keys create`.
fn title(path: &[String]) -> String {
    std::iter::once("emdp").chain(path.iter().map(String::as_str)).collect::<Vec<_>>().join(" ")
}

/// The marker that opens a command's generated help block.
fn begin_marker(title: &str) -> String {
    format!("<!-- BEGIN GENERATED: {title} --help -->")
}

/// The marker that closes every generated help block.
const END_MARKER: &str = "<!-- END GENERATED -->";

/// A generated help block's body: the help text as a code block.
fn block_body(help: &str) -> String {
    format!("```text\n{}\n```\n", help.trim_end())
}

/// The generated blocks of a document: command title -> (byte range of the body, body).
fn blocks(doc: &str) -> BTreeMap<String, (std::ops::Range<usize>, String)> {
    let mut found = BTreeMap::new();
    let mut rest = 0;
    while let Some(at) = doc[rest..].find("<!-- BEGIN GENERATED: ") {
        let start = rest + at;
        let line_end = start + doc[start..].find('\n').expect("a marker ends its line");
        let marker = &doc[start..line_end];
        let title = marker
            .trim_start_matches("<!-- BEGIN GENERATED: ")
            .trim_end_matches(" -->")
            .trim_end_matches(" --help")
            .to_owned();
        let body_start = line_end + 1;
        let end =
            body_start + doc[body_start..].find(END_MARKER).unwrap_or_else(|| panic!("{marker} has no `{END_MARKER}`"));
        found.insert(title, (body_start..end, doc[body_start..end].to_owned()));
        rest = end;
    }
    found
}

#[test]
fn every_subcommand_has_a_section_in_the_cli_reference() {
    let doc = fs::read_to_string(cli_md()).expect("docs/src/cli.md");
    let headings: BTreeSet<String> = doc
        .lines()
        .filter(|line| line.starts_with('#'))
        .map(|line| line.trim_start_matches('#').trim().trim_matches('`').to_owned())
        .collect();
    let tree = command_tree();
    assert!(tree.len() > 20, "the command tree was not read: {:?}", tree.iter().map(|(p, _)| p).collect::<Vec<_>>());
    let missing: Vec<String> =
        tree.iter().skip(1).map(|(path, _)| title(path)).filter(|title| !headings.contains(title)).collect();
    assert!(
        missing.is_empty(),
        "docs/src/cli.md has no heading for {missing:?}: add one (`### `emdp keys create``) above the command's help \
         block; for a new command, {REGENERATE}, which appends a section, then move it into place and describe it"
    );
}

#[test]
fn the_cli_reference_shows_what_help_prints() {
    let path = cli_md();
    let mut doc = fs::read_to_string(&path).expect("docs/src/cli.md");
    let tree = command_tree();
    let expected: BTreeMap<String, String> = tree.iter().map(|(path, help)| (title(path), block_body(help))).collect();
    let found = blocks(&doc);
    let stale: Vec<&String> = found.keys().filter(|title| !expected.contains_key(*title)).collect();
    assert!(
        stale.is_empty(),
        "docs/src/cli.md documents commands that no longer exist: {stale:?}; remove their sections"
    );
    if std::env::var(BLESS).is_ok_and(|value| value == "1") {
        // Replace from the end so that earlier ranges stay valid, then append what is missing.
        let mut replacements: Vec<_> =
            found.iter().map(|(title, (range, _))| (range.clone(), &expected[title])).collect();
        replacements.sort_by_key(|(range, _)| std::cmp::Reverse(range.start));
        for (range, body) in replacements {
            doc.replace_range(range, body);
        }
        for (path, _) in &tree {
            let title = title(path);
            if !found.contains_key(&title) {
                let heading = "#".repeat(path.len().clamp(1, 2) + 1);
                doc.push_str(&format!(
                    "\n{heading} `{title}`\n\n{}\n{}{END_MARKER}\n",
                    begin_marker(&title),
                    expected[&title]
                ));
            }
        }
        fs::write(&path, doc).expect("write docs/src/cli.md");
        return;
    }
    let differ: Vec<&String> = expected
        .iter()
        .filter(|(title, body)| found.get(*title).map(|(_, b)| b) != Some(body))
        .map(|(t, _)| t)
        .collect();
    assert!(
        differ.is_empty(),
        "the help of {differ:?} in docs/src/cli.md differs from the binary's or is missing; {REGENERATE}"
    );
}

/// The Markdown files whose links are checked: README.md, BENCHMARKS.md and the book's chapters.
fn documents() -> Vec<PathBuf> {
    let mut files = vec![root().join("README.md"), root().join("BENCHMARKS.md")];
    let mut chapters: Vec<PathBuf> = fs::read_dir(root().join("docs/src"))
        .expect("docs/src")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    chapters.sort();
    files.extend(chapters);
    files
}

/// The targets of a document's inline links `[text](target)`, outside code blocks and spans.
fn links(doc: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let mut in_code_block = false;
    for line in doc.lines() {
        if line.trim_start().starts_with("```") {
            in_code_block = !in_code_block;
            continue;
        }
        if in_code_block {
            continue;
        }
        let prose: String = line.split('`').step_by(2).collect::<Vec<_>>().join("");
        let mut rest = prose.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let Some(end) = after.find(')') else { break };
            targets.push(after[..end].to_owned());
            rest = &after[end..];
        }
    }
    targets
}

/// The anchors mdBook and GitHub give a document's headings: lower case, spaces as `-`,
/// punctuation other than `-` and `_` dropped.
fn anchors(doc: &str) -> BTreeSet<String> {
    let mut in_code_block = false;
    let mut found = BTreeSet::new();
    for line in doc.lines() {
        if line.trim_start().starts_with("```") {
            in_code_block = !in_code_block;
        }
        if in_code_block || !line.starts_with('#') {
            continue;
        }
        let text = line.trim_start_matches('#').trim();
        let anchor: String = text
            .chars()
            .filter_map(|c| match c {
                ' ' => Some('-'),
                c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c.to_ascii_lowercase()),
                _ => None,
            })
            .collect();
        found.insert(anchor);
    }
    found
}

#[test]
fn relative_links_lead_to_files_and_headings_that_exist() {
    let mut broken = Vec::new();
    for document in documents() {
        let doc = fs::read_to_string(&document).expect("a document");
        for target in links(&doc) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (file, anchor) = target.split_once('#').unwrap_or((&target, ""));
            let linked =
                if file.is_empty() { document.clone() } else { document.parent().expect("a directory").join(file) };
            if !linked.exists() {
                broken.push(format!("{}: {target}: no such file", document.display()));
                continue;
            }
            if !anchor.is_empty() && linked.extension().is_some_and(|ext| ext == "md") {
                let linked_doc = fs::read_to_string(&linked).expect("a linked document");
                if !anchors(&linked_doc).contains(anchor) {
                    broken.push(format!("{}: {target}: no such heading", document.display()));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn the_summary_lists_every_chapter() {
    let src = root().join("docs/src");
    let summary = fs::read_to_string(src.join("SUMMARY.md")).expect("docs/src/SUMMARY.md");
    let listed: BTreeSet<String> = links(&summary).into_iter().collect();
    let unlisted: Vec<String> = documents()
        .iter()
        .filter(|path| path.starts_with(&src))
        .filter_map(|path| path.file_name().map(|name| name.to_string_lossy().into_owned()))
        .filter(|name| name != "SUMMARY.md" && !listed.contains(name))
        .collect();
    assert!(unlisted.is_empty(), "docs/src/SUMMARY.md does not list {unlisted:?}");
}

/// The `EMDP_*` names in a text.
fn variables(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("EMDP_") {
        let name: String =
            rest[at..].chars().take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_').collect();
        rest = &rest[at + name.len()..];
        let name = name.trim_end_matches('_');
        // `EMDP_*` names the family, not a variable.
        if name != "EMDP" {
            names.insert(name.to_owned());
        }
    }
    names
}

/// The text of every file under `dir` (recursively) whose name ends in one of `extensions`.
fn texts(dir: &Path, extensions: &[&str], out: &mut String) {
    for entry in fs::read_dir(dir).expect("a directory") {
        let path = entry.expect("a directory entry").path();
        let name = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
        if path.is_dir() && !matches!(name.as_str(), "target" | "node_modules" | "out" | ".git") {
            texts(&path, extensions, out);
        } else if extensions.iter().any(|ext| name.ends_with(ext)) && path.is_file() {
            out.push_str(&fs::read_to_string(&path).unwrap_or_default());
        }
    }
}

#[test]
fn every_variable_the_docs_name_is_read_somewhere() {
    let root = root();
    let mut code = String::new();
    for dir in ["crates", "scripts", "bench", "tests", ".ci"] {
        texts(&root.join(dir), &[".rs", ".sh", ".py", ".mjs", ".js", "test", "e2e", "schemathesis", "run"], &mut code);
    }
    for file in ["Dockerfile", "docker-compose.yml", ".env.example"] {
        code.push_str(&fs::read_to_string(root.join(file)).unwrap_or_default());
    }
    let known = variables(&code);
    let mut unknown = Vec::new();
    for document in documents() {
        let doc = fs::read_to_string(&document).expect("a document");
        for name in variables(&doc).difference(&known) {
            unknown.push(format!("{}: {name}", document.display()));
        }
    }
    assert!(unknown.is_empty(), "the docs name variables no code or script reads:\n{}", unknown.join("\n"));
}
