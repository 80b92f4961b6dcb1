//! The OpenAPI document is a contract the server keeps: every documented operation is routed
//! and nothing else is, every 2xx body has a schema, and every operation documents the
//! problems the layers around its handler can answer.

#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap fails the test")]

mod common;

use emdp_api::ApiDoc;
use reqwest::Method;
use serde_json::Value;
use utoipa::OpenApi;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// The document as a client reads it.
fn document() -> Value {
    serde_json::to_value(ApiDoc::openapi()).expect("the document serializes")
}

/// `path` with each `{parameter}` replaced by `1`.
fn concrete(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        let end = rest[start..].find('}').map_or(rest.len(), |end| start + end + 1);
        out.push_str(&rest[..start]);
        out.push('1');
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Whether the router answered as for a route it does not have.
fn unrouted(status: u16, problem: &Value) -> bool {
    status == 405 || (status == 404 && problem["detail"].as_str().is_some_and(|d| d.starts_with("no such route")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_router_serves_exactly_the_documented_operations() {
    let server = common::start(emdp_testkit::sqlite().await).await;
    let spec = document();
    let paths = spec["paths"].as_object().expect("paths");
    assert!(paths.len() > 30, "{} paths", paths.len());
    for (path, item) in paths {
        let url = concrete(path);
        for method in METHODS {
            let documented = item.get(method).is_some();
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let response = server.client.request(method.clone(), server.url(&url)).send().await.unwrap();
            let status = response.status().as_u16();
            // The alert stream never ends: its headers are enough.
            let problem = if status >= 400 { common::decode(response).await.1 } else { Value::Null };
            assert_eq!(
                !unrouted(status, &problem),
                documented,
                "{method} {path} ({url}): documented {documented}, answered {status} {problem}"
            );
        }
    }
}

/// Resolves a `$ref` to its component schema.
fn resolve<'a>(spec: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str().and_then(|r| r.strip_prefix("#/components/schemas/")) {
        Some(name) => resolve(spec, &spec["components"]["schemas"][name]),
        None => schema,
    }
}

/// Whether `schema` says nothing about its value: absent, or an object without properties,
/// composition or typed values (and the same for an array's items).
fn untyped(spec: &Value, schema: &Value) -> bool {
    let schema = resolve(spec, schema);
    let Some(object) = schema.as_object() else { return true };
    if ["allOf", "oneOf", "anyOf", "properties", "additionalProperties"].iter().any(|key| object.contains_key(*key)) {
        return false;
    }
    match schema["type"].as_str() {
        Some("array") => untyped(spec, &schema["items"]),
        Some("object") | None => true,
        Some(_) => false,
    }
}

#[test]
fn no_success_body_is_untyped() {
    let spec = document();
    let mut untyped_bodies = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            for (status, response) in operation["responses"].as_object().unwrap() {
                if !status.starts_with('2') || status == "204" {
                    continue;
                }
                let content = response["content"].as_object();
                match content {
                    None => untyped_bodies.push(format!("{method} {path} {status}: no content")),
                    Some(content) => {
                        for (media_type, body) in content {
                            let json = media_type.contains("json");
                            if json && untyped(&spec, &body["schema"]) {
                                untyped_bodies
                                    .push(format!("{method} {path} {status} {media_type}: {}", body["schema"]));
                            }
                        }
                    }
                }
            }
        }
    }
    assert!(untyped_bodies.is_empty(), "untyped 2xx bodies:\n{}", untyped_bodies.join("\n"));
}

#[test]
fn every_operation_documents_the_problems_it_can_answer() {
    let spec = document();
    let mut missing = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let public = operation["security"] == serde_json::json!([{}]);
            let body = operation.get("requestBody").is_some();
            let located = |location: &str| {
                operation["parameters"].as_array().is_some_and(|ps| ps.iter().any(|p| p["in"] == location))
            };
            let mut expected: Vec<&str> = Vec::new();
            if !public {
                expected.extend(["401", "429", "503"]);
                if method != "get" {
                    expected.push("409");
                }
            }
            if body {
                expected.extend(["400", "413", "415"]);
            }
            if located("query") {
                expected.push("400");
            }
            if located("path") {
                expected.push("404");
            }
            for status in expected {
                let response = &operation["responses"][status];
                if response["content"]["application/problem+json"]["schema"]["$ref"] != "#/components/schemas/Problem" {
                    missing.push(format!("{method} {path}: {status}"));
                }
            }
        }
    }
    assert!(missing.is_empty(), "undocumented problems:\n{}", missing.join("\n"));
}
