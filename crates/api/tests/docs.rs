//! The book's HTTP API chapter (`docs/src/api.md`) against the OpenAPI document the server
//! serves at `/openapi.json`: every operation is named there as `METHOD /path`, and every
//! `/api/v1` operation the chapter names exists.

#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap fails the test")]

use std::collections::BTreeSet;
use std::path::Path;

use utoipa::OpenApi;

/// The HTTP methods an OpenAPI path item may hold.
const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// Every operation of the OpenAPI document, as `METHOD /path` (`GET /api/v1/records/{id}`).
fn operations() -> BTreeSet<String> {
    let document = serde_json::to_value(emdp_api::ApiDoc::openapi()).expect("the document serializes");
    let paths = document["paths"].as_object().expect("the document has paths");
    let mut operations = BTreeSet::new();
    for (path, item) in paths {
        for method in METHODS {
            if item.get(method).is_some() {
                operations.insert(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    operations
}

/// `docs/src/api.md`.
fn chapter() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/src/api.md");
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// The operations a text names in code spans: `` `METHOD /path` `` (a query string is left out).
fn named(text: &str) -> BTreeSet<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(|span| span.split_once('?').map_or(span, |(operation, _)| operation))
        .filter(|span| {
            span.split_once(' ').is_some_and(|(method, path)| {
                METHODS.contains(&method.to_lowercase().as_str())
                    && method.chars().all(|c| c.is_ascii_uppercase())
                    && path.starts_with('/')
                    && !path.contains(' ')
            })
        })
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_operation_is_named_in_the_api_chapter() {
    let operations = operations();
    assert!(operations.len() > 40, "the document was not read: {operations:?}");
    let named = named(&chapter());
    let missing: Vec<&String> = operations.difference(&named).collect();
    assert!(
        missing.is_empty(),
        "docs/src/api.md does not name these operations of /openapi.json (write each as `METHOD /path` \
         in a code span and say what it does): {missing:?}"
    );
}

#[test]
fn every_api_v1_operation_the_chapter_names_exists() {
    let operations = operations();
    let stale: Vec<String> =
        named(&chapter()).into_iter().filter(|op| op.contains(" /api/v1/") && !operations.contains(op)).collect();
    assert!(stale.is_empty(), "docs/src/api.md names operations that /openapi.json does not have: {stale:?}");
}
