//! The API as a client uses it: a real server on a random port, a fresh database per test,
//! run against SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap fails the test")]

mod common;

use common::{Server, gzip, start, start_with};
use reqwest::Method;
use serde_json::json;

const CSV: &str = "building_id,date,consumption,temperature,provider\n\
                   B1,2025-01-01,100,5,p\nB1,2025-01-02,101,6,p\nB2,2025-01-01,,5,p\nB1,2025-01-01,100.0,5,p\n";

async fn operations_and_docs(server: Server) {
    assert_eq!(server.get("/api/v1/health").await, (200, json!({"status": "ok"})));
    assert_eq!(server.get("/api/v1/ready").await, (200, json!({"status": "ok"})));
    assert_eq!(server.get("/health").await, (200, json!({"status": "ok"})));
    let (status, rules) = server.get("/api/v1/rules").await;
    assert_eq!(status, 200);
    assert_eq!(rules["thresholds"]["temperature"]["max"], 55.0);
    assert_eq!(rules["rules"].as_array().unwrap().len(), 14);
    let (status, spec) = server.get("/openapi.json").await;
    assert_eq!(status, 200);
    assert!(spec["openapi"].as_str().unwrap().starts_with("3.1"));
    assert!(spec["paths"]["/api/v1/records:validate"]["post"].is_object());
    assert_eq!(spec["paths"]["/energy-record"]["post"]["deprecated"], true);
    for path in ["/api/v1/records", "/api/v1/records:validate"] {
        let column = &spec["paths"][path]["post"]["parameters"][0];
        assert_eq!((column["name"].as_str(), column["in"].as_str()), (Some("column"), Some("query")), "{column}");
        assert_eq!((column["style"].as_str(), column["explode"].as_bool()), (Some("form"), Some(true)), "{column}");
        assert_eq!(column["schema"]["items"]["type"], "string", "{column}");
    }
    for page in ["/redoc", "/docs/"] {
        let html = server.client.get(server.url(page)).send().await.unwrap().text().await.unwrap();
        assert!(html.contains("<html") || html.contains("<!DOCTYPE"), "{page}");
        for external in ["https://", "http://", "//cdn", "fonts.googleapis"] {
            assert!(!html.contains(external), "{page} refers to an external resource: {external}");
        }
    }
    let js = server.client.get(server.url("/redoc/redoc.standalone.js")).send().await.unwrap();
    assert_eq!(js.status(), 200);
    assert!(js.bytes().await.unwrap().len() > 500_000);
}

async fn ingest_one_and_read_back(server: Server) {
    let record =
        json!({"building_id": "B1", "date": "2025-01-01", "consumption": 120.5, "temperature": 4, "provider": "acme"});
    let (status, created) = server.post_json("/api/v1/records", record.clone()).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["admission"], "new");
    assert_eq!(created["record"]["quality_status"], "VALID");
    let id = created["record"]["id"].as_i64().unwrap();
    // Sent again (another request, another batch): a re-delivery, no duplicate.
    let (status, again) = server.post_json("/api/v1/records", record).await;
    assert_eq!(
        (status, again["admission"].as_str(), again["record"]["id"].as_i64()),
        (201, Some("redelivered"), Some(id))
    );
    let (status, read) = server.get(&format!("/api/v1/records/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(read["consumption"], 120.5);
    assert_eq!(read["exact_duplicates"], 0);
    let (status, history) = server.get(&format!("/api/v1/records/{id}/history")).await;
    assert_eq!(status, 200);
    assert_eq!(history.as_array().unwrap().len(), 2);
    assert_eq!(history[0]["source"], "api");
}

async fn bulk_bodies(server: Server) {
    let (status, body) = server.send(Method::POST, "/api/v1/records", "text/csv", CSV).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["summary"]["total"], 4);
    assert_eq!(body["summary"]["stored"]["inserted"], 3);
    assert_eq!(body["summary"]["duplicates"]["exact"], 1);
    assert_eq!(body["records"][2]["quality_status"], "INCOMPLETE");
    assert_eq!(body["records"][2]["reasons"][0]["code"], "missing_consumption");
    let ndjson = "{\"building_id\":\"B3\",\"date\":\"2025-01-01\",\"consumption\":1,\"temperature\":2,\"provider\":\"p\"}\nnot json\n";
    let (status, body) = server.send(Method::POST, "/api/v1/records", "application/x-ndjson", ndjson).await;
    assert_eq!(status, 201);
    assert_eq!(body["summary"]["reasons"]["malformed_row"], 1);
    let (status, body) = server
        .post_json("/api/v1/records", json!([{"building_id": "B4", "date": "2025-01-01", "consumption": 1, "temperature": 2, "provider": "p"}, {"building_id": "B4"}]))
        .await;
    assert_eq!((status, body["summary"]["total"].as_i64()), (201, Some(2)));
    let (status, problem) =
        server.send(Method::POST, "/api/v1/records", "text/csv", "building_id,date\nB1,2025-01-01\n").await;
    assert_eq!(status, 400);
    assert!(problem["detail"].as_str().unwrap().contains("missing required column"), "{problem}");
}

/// `column=FIELD=NAME` (repeatable) reads a field from a column or key of another name, as
/// `emdp ingest --column` does; a bad mapping is a 400 naming `column`, and stores nothing.
async fn bodies_with_other_column_names(server: Server) {
    let csv = "site,day,kwh,temperature,provider\nS1,2025-01-01,12.5,5,p\n";
    let path = "/api/v1/records?column=building_id%3Dsite&column=date%3Dday&column=consumption%3Dkwh";
    let (status, body) = server.send(Method::POST, path, "text/csv", csv).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!((body["summary"]["valid"].as_i64(), body["summary"]["stored"]["inserted"].as_i64()), (Some(1), Some(1)));
    let (_, read) = server.get(&format!("/api/v1/records/{}", body["records"][0]["id"])).await;
    assert_eq!((read["building_id"].as_str(), read["consumption"].as_f64()), (Some("S1"), Some(12.5)), "{read}");
    let (_, history) = server.get(&format!("/api/v1/records/{}/history", body["records"][0]["id"])).await;
    let columns = "building_id=site, date=day, consumption=kwh, temperature=temperature, provider=provider";
    assert_eq!(
        (history[0]["header"].as_str(), history[0]["columns"].as_str()),
        (Some("site,day,kwh,temperature,provider"), Some(columns))
    );

    let record = json!({"site": "S2", "date": "2025-01-01", "consumption": 1, "temperature": 2, "provider": "p"});
    let (status, verdict) = server.post_json("/api/v1/records:validate?column=building_id%3Dsite", record).await;
    assert_eq!((status, verdict["quality_status"].as_str()), (200, Some("VALID")), "{verdict}");

    for (query, reason) in [
        ("column=kwh", "is not FIELD=NAME"),
        ("column=energy%3Dkwh", "is not a field"),
        ("column=consumption%3Dkwh&column=consumption%3Dmwh", "mapped twice"),
        ("column=building_id%3Ddate", "would both be read from column 'date'"),
    ] {
        let (status, problem) = server.send(Method::POST, &format!("/api/v1/records?{query}"), "text/csv", csv).await;
        assert_eq!((status, problem["field"].as_str()), (400, Some("column")), "{query}: {problem}");
        assert!(problem["detail"].as_str().unwrap().contains(reason), "{query}: {problem}");
    }
    let (_, page) = server.get("/api/v1/records").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1, "nothing stored by the refused bodies");
}

/// `GET /api/v1/batches`: ingestions newest first, with their summaries; bad parameters are
/// 400s naming them.
async fn batches_are_listed(server: Server) {
    server.send(Method::POST, "/api/v1/records", "text/csv", CSV).await;
    server.post_json("/api/v1/records", json!({"building_id": "B9", "date": "2025-01-01"})).await;
    let (status, page) = server.get("/api/v1/batches").await;
    assert_eq!(status, 200, "{page}");
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert!(items[0]["id"].as_i64() > items[1]["id"].as_i64(), "newest first: {page}");
    let csv = &items[1];
    assert_eq!(
        (csv["source"].as_str(), csv["format"].as_str(), csv["rows_stored"].as_i64()),
        (Some("api"), Some("csv"), Some(4))
    );
    assert_eq!(csv["summary"]["total"], 4);
    assert!(csv["finished_at"].is_string(), "{csv}");
    let (_, page) = server.get("/api/v1/batches?limit=1").await;
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let (_, older) = server.get(&format!("/api/v1/batches?limit=1&cursor={cursor}")).await;
    assert_eq!(older["items"][0]["id"], csv["id"]);
    let (_, open) = server.get("/api/v1/batches?unfinished=true").await;
    assert_eq!(open["items"], json!([]), "every batch finished");
    for (query, field) in [("limit=0", "limit"), ("unfinished=maybe", "unfinished"), ("cursor=x", "cursor")] {
        let (status, problem) = server.get(&format!("/api/v1/batches?{query}")).await;
        assert_eq!((status, problem["field"].as_str()), (400, Some(field)), "{query}: {problem}");
    }
}

async fn gzip_bodies(server: Server) {
    let (status, body) = server.post_encoded("/api/v1/records", "text/csv", "gzip", gzip(CSV)).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!((body["summary"]["total"].as_i64(), body["summary"]["stored"]["inserted"].as_i64()), (Some(4), Some(3)));
    let record =
        json!({"building_id": "B7", "date": "2025-01-01", "consumption": 1, "temperature": 2, "provider": "p"});
    let (status, body) =
        server.post_encoded("/api/v1/records:validate", "application/json", "gzip", gzip(&record.to_string())).await;
    assert_eq!((status, body["quality_status"].as_str()), (200, Some("VALID")), "{body}");

    let (status, problem) = server.post_encoded("/api/v1/records", "text/csv", "br", CSV.as_bytes().to_vec()).await;
    assert_eq!((status, problem["type"].as_str()), (415, Some("urn:emdp:problem:unsupported-media-type")));
    assert!(problem["detail"].as_str().unwrap().contains("'br'"), "{problem}");
    let mut truncated = gzip(&CSV.repeat(50));
    truncated.truncate(truncated.len() / 2);
    let (status, problem) = server.post_encoded("/api/v1/records", "text/csv", "gzip", truncated).await;
    assert_eq!(status, 400, "{problem}");
    let (_, page) = server.get("/api/v1/records?building_id=B7").await;
    assert!(page["items"].as_array().unwrap().is_empty(), "nothing stored by the failed bodies");
}

async fn validate_without_storing(server: Server) {
    let (status, verdict) = server
        .post_json(
            "/api/v1/records:validate",
            json!({"building_id": "B1", "date": "2099-01-01", "consumption": "abc", "temperature": true}),
        )
        .await;
    assert_eq!(status, 200, "{verdict}");
    assert_eq!(verdict["quality_status"], "INCOMPLETE");
    let codes: Vec<&str> = verdict["reasons"].as_array().unwrap().iter().map(|r| r["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["missing_provider", "unparsable_consumption", "unparsable_temperature", "date_in_future"]);
    assert!(verdict["reasons"][0]["message"].as_str().unwrap().contains("provider"));
    let (_, page) = server.get("/api/v1/records").await;
    assert!(page["items"].as_array().unwrap().is_empty(), "validate stores nothing");

    server.send(Method::POST, "/api/v1/records", "text/csv", CSV).await;
    let (status, batch) = server
        .post_json(
            "/api/v1/records:validate",
            json!([
                {"building_id": "B1", "date": "2025-01-01", "consumption": "100.00", "temperature": 5, "provider": "p"},
                {"building_id": "B1", "date": "2025-01-01", "consumption": 99, "temperature": 5, "provider": "p"},
                {"building_id": "B9", "date": "2025-01-01", "consumption": 1, "temperature": 5, "provider": "p"},
                {"building_id": "B9", "date": "2025-01-01", "consumption": 1, "temperature": 5, "provider": "p"},
                7
            ]),
        )
        .await;
    assert_eq!(status, 200);
    let duplicates: Vec<_> = batch["items"].as_array().unwrap().iter().map(|i| i["duplicate"].clone()).collect();
    assert_eq!(duplicates, [json!("exact"), json!("conflicting"), json!(null), json!("exact"), json!(null)]);
    assert!(batch["items"][0]["duplicate_of"].is_i64());
    assert_eq!(batch["items"][4]["reasons"][0]["code"], "missing_building_id");
    assert_eq!(batch["summary"]["total"], 5);
}

async fn list_filters_and_pages(server: Server) {
    server.send(Method::POST, "/api/v1/records", "text/csv", CSV).await;
    let (status, page) = server.get("/api/v1/records?building_id=B1&status=VALID").await;
    assert_eq!(status, 200);
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let (_, first) = server.get("/api/v1/records?limit=2").await;
    assert_eq!(first["items"].as_array().unwrap().len(), 2);
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    let (_, second) = server.get(&format!("/api/v1/records?limit=2&cursor={cursor}")).await;
    assert_eq!(second["items"].as_array().unwrap().len(), 1);
    assert!(second["next_cursor"].is_null());
    let (_, ranged) = server.get("/api/v1/records?from=2025-01-02&to=2025-01-31").await;
    assert_eq!(ranged["items"].as_array().unwrap().len(), 1);
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=x", "limit"),
        ("status=GOOD", "status"),
        ("from=2025-13-01", "from"),
        ("cursor=abc", "cursor"),
    ] {
        let (status, problem) = server.get(&format!("/api/v1/records?{query}")).await;
        assert_eq!((status, problem["field"].as_str()), (400, Some(field)), "{query}: {problem}");
        assert_eq!(problem["type"], "urn:emdp:problem:bad-request");
    }
}

async fn patch_reclassifies_and_keeps_versions(server: Server) {
    let (_, created) = server
        .post_json(
            "/api/v1/records",
            json!({"building_id": "B1", "date": "2025-01-01", "temperature": 5, "provider": "p"}),
        )
        .await;
    let id = created["record"]["id"].as_i64().unwrap();
    assert_eq!(created["record"]["quality_status"], "INCOMPLETE");
    let (status, patched) = server
        .send(Method::PATCH, &format!("/api/v1/records/{id}"), "application/json", r#"{"consumption": 42.5}"#)
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(
        (patched["id"].as_i64(), patched["quality_status"].as_str(), patched["consumption"].as_f64()),
        (Some(id), Some("VALID"), Some(42.5))
    );
    assert_eq!(patched["versions"], 2);
    let (_, history) = server.get(&format!("/api/v1/records/{id}/history")).await;
    assert_eq!(
        history.as_array().unwrap().iter().map(|h| h["admission"].as_str().unwrap()).collect::<Vec<_>>(),
        ["new", "edit"]
    );
    // Receiving the edited record again is a re-delivery of the edit.
    let (_, again) = server
        .post_json(
            "/api/v1/records",
            json!({"building_id": "B1", "date": "2025-01-01", "consumption": 42.5, "temperature": 5, "provider": "p"}),
        )
        .await;
    assert_eq!((again["admission"].as_str(), again["record"]["id"].as_i64()), (Some("redelivered"), Some(id)));

    let (_, other) = server
        .post_json(
            "/api/v1/records",
            json!({"building_id": "B2", "date": "2025-01-01", "consumption": 1, "temperature": 5, "provider": "p"}),
        )
        .await;
    let other = other["record"]["id"].as_i64().unwrap();
    let (status, problem) = server
        .send(Method::PATCH, &format!("/api/v1/records/{other}"), "application/json", r#"{"building_id": "B1"}"#)
        .await;
    assert_eq!(status, 409, "{problem}");
    let (status, problem) =
        server.send(Method::PATCH, &format!("/api/v1/records/{id}"), "application/json", r#"{"kwh": 1}"#).await;
    assert_eq!((status, problem["field"].as_str()), (400, Some("kwh")));
    let (status, _) =
        server.send(Method::PATCH, "/api/v1/records/999999", "application/json", r#"{"consumption": 1}"#).await;
    assert_eq!(status, 404);
}

async fn delete_keeps_raw_payloads(server: Server) {
    let (_, created) = server
        .post_json(
            "/api/v1/records",
            json!({"building_id": "B1", "date": "2025-01-01", "consumption": 1, "temperature": 5, "provider": "p"}),
        )
        .await;
    let id = created["record"]["id"].as_i64().unwrap();
    assert_eq!(server.send(Method::DELETE, &format!("/api/v1/records/{id}"), "application/json", "").await.0, 204);
    assert_eq!(server.get(&format!("/api/v1/records/{id}")).await.0, 404);
    assert_eq!(server.send(Method::DELETE, &format!("/api/v1/records/{id}"), "application/json", "").await.0, 404);
    assert_eq!(server.get(&format!("/api/v1/records/{id}/history")).await.0, 200);
}

async fn errors_are_problem_details(server: Server) {
    let (status, problem) =
        server.send(Method::POST, "/api/v1/records", "application/json", "{\"building_id\": ").await;
    assert_eq!((status, problem["status"].as_u64()), (400, Some(400)));
    assert!(problem["detail"].as_str().unwrap().starts_with("malformed JSON"));
    assert_eq!(server.send(Method::POST, "/api/v1/records", "application/xml", "<r/>").await.0, 415);
    assert_eq!(server.send(Method::POST, "/api/v1/records:validate", "text/csv", CSV).await.0, 415);
    assert_eq!(server.post_json("/api/v1/records", json!(42)).await.0, 400);
    assert_eq!(server.get("/api/v1/records/abc").await.0, 404);
    assert_eq!(server.get("/api/v1/records/123456").await.0, 404);
    assert_eq!(server.get("/api/v1/nothing").await.0, 404);
    let (status, problem) = server.send(Method::PUT, "/api/v1/records", "application/json", "{}").await;
    assert_eq!((status, problem["type"].as_str()), (405, Some("urn:emdp:problem:method-not-allowed")));
}

async fn bodies_over_the_limit_are_413(server: Server) {
    let big = format!("building_id,date,consumption,temperature,provider\n{}", "B1,2025-01-01,1,2,p\n".repeat(200));
    let (status, problem) = server.send(Method::POST, "/api/v1/records", "text/csv", big.clone()).await;
    assert_eq!(status, 413, "{problem}");
    assert_eq!(problem["type"], "urn:emdp:problem:payload-too-large");
    // The limit counts decompressed bytes: 4 KB that gzip makes 100 bytes are still too large.
    let (status, problem) = server.post_encoded("/api/v1/records", "text/csv", "gzip", gzip(&big)).await;
    assert_eq!((status, problem["type"].as_str()), (413, Some("urn:emdp:problem:payload-too-large")));
    // A body declared far larger than it is: refused at once, not awaited until the request's
    // time runs out (which answered 503 after 30 s).
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(server.base.trim_start_matches("http://")).await.unwrap();
    let request = "POST /api/v1/records HTTP/1.1\r\nHost: emdp\r\nContent-Type: text/csv\r\nContent-Length: 999999999999\r\n\r\nab";
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut status_line = [0; 12];
    stream.read_exact(&mut status_line).await.unwrap();
    assert_eq!(std::str::from_utf8(&status_line).unwrap(), "HTTP/1.1 413");
}

async fn legacy_routes(server: Server) {
    let record =
        json!({"building_id": "B1", "date": "2025-01-01", "consumption": 10.5, "temperature": 20, "provider": "acme"});
    let (status, created) = server.post_json("/energy-record", record.clone()).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["data_quality"], "valid");
    assert!(created["id"].is_string());
    assert!(created["created_at"].is_string());
    let id = created["id"].as_str().unwrap().to_owned();
    let (status, verdict) = server.post_json("/energy-record:validate", record).await;
    assert_eq!((status, verdict), (200, json!({"data_quality": "valid", "is_duplicate": true})));
    let (_, verdict) = server.post_json("/energy-record:validate", json!({"building_id": "B1"})).await;
    assert_eq!(verdict, json!({"data_quality": "incomplete", "is_duplicate": false}));
    for i in 2..=5 {
        server.post_json("/energy-record", json!({"building_id": "B1", "date": format!("2025-01-0{i}"), "consumption": i, "temperature": 1, "provider": "acme"})).await;
    }
    let (status, page) = server.get("/energy-records?limit=2&skip=1").await;
    assert_eq!(status, 200);
    assert_eq!(page.as_array().unwrap().len(), 2);
    assert_eq!(page[0]["date"], "2025-01-02");
    let (status, read) = server.get(&format!("/energy-records/{id}")).await;
    assert_eq!((status, read["consumption"].as_f64()), (200, Some(10.5)));
    let (status, patched) = server
        .send(Method::PATCH, &format!("/energy-records/{id}"), "application/json", r#"{"temperature": 99}"#)
        .await;
    assert_eq!((status, patched["data_quality"].as_str()), (200, Some("inconsistent")));
    assert_eq!(server.send(Method::DELETE, &format!("/energy-records/{id}"), "application/json", "").await.0, 204);
    assert_eq!(server.get(&format!("/energy-records/{id}")).await.0, 404);
}

async fn analysis_endpoints(server: Server) {
    let config = emdp_datagen::GeneratorConfig {
        buildings: 2,
        days: 400,
        seed: 5,
        fault_rate: 0.0,
        end_date: chrono::NaiveDate::from_ymd_opt(2025, 6, 1).unwrap(),
    };
    let mut csv = Vec::new();
    emdp_datagen::generate(&config, &mut csv).unwrap();
    let (status, _) = server.send(Method::POST, "/api/v1/records", "text/csv", csv).await;
    assert_eq!(status, 201);
    let (status, buildings) = server.get("/api/v1/buildings").await;
    assert_eq!(status, 200);
    assert_eq!(buildings.as_array().unwrap().len(), 2);
    assert_eq!(buildings[0]["building_id"], "B00001");
    assert_eq!(buildings[0]["valid_records"], 400);

    let (status, series) =
        server.get("/api/v1/buildings/B00001/series?granularity=month&from=2025-01-01&to=2025-03-31").await;
    assert_eq!(status, 200, "{series}");
    let text = series.to_string();
    assert!(text.contains("2025-01-01") && text.contains("2025-03-01"), "{series}");
    let (status, baseline) = server.get("/api/v1/buildings/B00001/baseline").await;
    assert_eq!(status, 200, "{baseline}");
    assert!(baseline["model"]["model_type"].is_string(), "{baseline}");
    assert!(baseline["model"]["r2"].as_f64().unwrap() > 0.0);
    let (status, anomalies) = server.get("/api/v1/buildings/B00001/anomalies?from=2024-06-01").await;
    assert_eq!(status, 200, "{anomalies}");
    assert!(anomalies["anomalies"].is_array() || anomalies.to_string().contains("anomalies"), "{anomalies}");
    let request = json!({"baseline": {"from": "2024-04-28", "to": "2025-03-31"}, "reporting": {"from": "2025-04-01", "to": "2025-06-01"}});
    let (status, savings) = server.post_json("/api/v1/buildings/B00001/savings", request).await;
    assert_eq!(status, 200, "{savings}");

    assert_eq!(server.get("/api/v1/buildings/NOPE/baseline").await.0, 404);
    let (status, problem) = server.get("/api/v1/buildings/B00001/baseline?from=2025-03-01&to=2025-01-01").await;
    assert_eq!(status, 400, "{problem}");
    let (status, problem) = server.get("/api/v1/buildings/B00001/baseline?from=2025-05-31&to=2025-06-01").await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(server.get("/api/v1/buildings/B00001/series?granularity=year").await.0, 400);
    assert_eq!(server.post_json("/api/v1/buildings/B00001/savings", json!({"baseline": 3})).await.0, 400);
}

async fn quality_and_duplicates(server: Server) {
    let csv = "building_id,date,consumption,temperature,provider\n\
               B1,2025-01-01,10,5,p\nB1,2025-01-02,11,5,p\nB1,2025-01-05,12,5,p\n\
               B1,2025-01-02,15,5,p\nB2,2025-01-01,-1,5,q\nB2,2025-01-01,-1,5,q\n";
    assert_eq!(server.send(Method::POST, "/api/v1/records", "text/csv", csv).await.0, 201);
    let (status, summary) = server.get("/api/v1/quality/summary").await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(
        (summary["total"].as_i64(), summary["valid"].as_i64(), summary["inconsistent"].as_i64()),
        (Some(4), Some(3), Some(1))
    );
    assert_eq!(summary["duplicates"], json!({"exact": 1, "conflicting": 1}));
    assert_eq!((summary["redelivered"].as_i64(), summary["rows_received"].as_i64()), (Some(0), Some(6)));
    assert_eq!(summary["reasons"]["consumption_non_positive"], 1);
    // The same body again: every row re-delivered, no duplicate figure changes.
    let (status, body) = server.send(Method::POST, "/api/v1/records", "text/csv", csv).await;
    assert_eq!((status, &body["summary"]["stored"]["redelivered"]), (201, &json!(6)), "{body}");
    assert_eq!(body["summary"]["duplicates"], json!({"exact": 0, "conflicting": 0}));
    let (_, again) = server.get("/api/v1/quality/summary").await;
    assert_eq!(again["duplicates"], summary["duplicates"]);
    assert_eq!((again["redelivered"].as_i64(), again["rows_received"].as_i64()), (Some(6), Some(12)));
    assert_eq!((&again["total"], &again["conflict_groups"]), (&summary["total"], &summary["conflict_groups"]));
    let (_, filtered) = server.get("/api/v1/quality/summary?provider=q").await;
    assert_eq!(filtered["total"], 1);
    let (status, report) = server.get("/api/v1/quality/report?today=2025-01-10").await;
    assert_eq!(status, 200, "{report}");
    assert!(report["gaps"].to_string().contains("2025-01-03"), "{report}");
    assert!(report["stale"].to_string().contains("B1"), "{report}");
    for path in ["/api/v1/quality/timeline", "/api/v1/quality/buildings", "/api/v1/quality/gaps"] {
        assert_eq!(server.get(path).await.0, 200, "{path}");
    }
    assert_eq!(server.get("/api/v1/quality/report?flatline_days=1").await.0, 400);
    let (status, legacy) = server.get("/quality/summary").await;
    assert_eq!((status, legacy), (200, json!({"valid": 3, "inconsistent": 1, "incomplete": 0, "duplicates": 2})));

    let (status, page) = server.get("/api/v1/duplicates").await;
    assert_eq!(status, 200, "{page}");
    let groups = page["items"].as_array().unwrap();
    assert_eq!(groups.len(), 1);
    let id = groups[0]["record_id"].as_i64().unwrap();
    let (status, outcome) =
        server.post_json(&format!("/api/v1/duplicates/{id}:resolve"), json!({"policy": "keep_first"})).await;
    assert_eq!(status, 200, "{outcome}");
    let (_, record) = server.get(&format!("/api/v1/records/{id}")).await;
    assert_eq!(record["consumption"], 11.0, "keep_first");
    let (status, problem) =
        server.post_json(&format!("/api/v1/duplicates/{id}:resolve"), json!({"policy": "best"})).await;
    assert_eq!((status, problem["field"].as_str()), (400, Some("policy")));
    let (status, _) = server.post_json("/api/v1/duplicates:resolve", json!({"policy": "keep_latest"})).await;
    assert_eq!(status, 200);
    let (_, record) = server.get(&format!("/api/v1/records/{id}")).await;
    assert_eq!(record["consumption"], 15.0, "keep_latest");
    assert_eq!(server.post_json("/api/v1/duplicates/999999:resolve", json!({"policy": "keep_first"})).await.0, 404);
}

emdp_testkit::every_backend! {
    |store| start(store).await => [
        operations_and_docs,
        ingest_one_and_read_back,
        bulk_bodies,
        bodies_with_other_column_names,
        batches_are_listed,
        gzip_bodies,
        validate_without_storing,
        list_filters_and_pages,
        patch_reclassifies_and_keeps_versions,
        delete_keeps_raw_payloads,
        errors_are_problem_details,
        legacy_routes,
        analysis_endpoints,
        quality_and_duplicates,
    ],
    |store| start_with(store, 1024).await => [bodies_over_the_limit_are_413],
}
