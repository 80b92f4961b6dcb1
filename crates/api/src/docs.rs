//! The OpenAPI document (generated from the handlers' annotations) and the two documentation
//! pages, both served from the binary: Swagger UI from `utoipa-swagger-ui`'s vendored
//! assets, ReDoc from the `redoc@2.5.4` standalone bundle (npm) kept in `assets/`. No page
//! loads anything from another host.

use axum::Router;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use utoipa::OpenApi;
use utoipa_swagger_ui::{Config, SwaggerUi};

use crate::routes;
use crate::state::AppState;

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(title = "emdp — energy monitoring data platform", description = "Classify, store and analyze daily energy readings. Errors are RFC 9457 problem details (`application/problem+json`).", license(name = "MIT")),
    paths(
        routes::records::validate,
        routes::records::create,
        routes::records::list,
        routes::records::get,
        routes::records::patch,
        routes::records::delete,
        routes::records::history,
        routes::batches::list,
        routes::buildings::list,
        routes::buildings::series,
        routes::buildings::baseline,
        routes::buildings::anomalies,
        routes::buildings::savings,
        routes::quality::summary,
        routes::quality::report,
        crate::dashboard::overview,
        routes::quality::timeline,
        routes::quality::buildings,
        routes::quality::gaps,
        routes::quality::duplicates,
        routes::quality::resolve,
        routes::quality::resolve_groups,
        routes::alerts::list_rules,
        routes::alerts::create_rule,
        routes::alerts::get_rule,
        routes::alerts::update_rule,
        routes::alerts::delete_rule,
        routes::alerts::list_alerts,
        routes::alerts::get_alert,
        routes::alerts::ack,
        routes::alerts::deliveries,
        routes::alerts::stream,
        routes::meta::health,
        routes::meta::ready,
        routes::meta::rules,
        routes::seed::health,
        routes::seed::create,
        routes::seed::validate,
        routes::seed::list,
        routes::seed::get,
        routes::seed::patch,
        routes::seed::delete,
        routes::seed::quality_summary,
    ),
    components(schemas(crate::error::Problem)),
    modifiers(&BearerAuth),
    tags(
        (name = "records", description = "Validate, ingest and read energy records"),
        (name = "quality", description = "Data quality"),
        (name = "analysis", description = "Consumption series, weather-normalized baselines, anomalies and savings (VALID records only)"),
        (name = "alerts", description = "Alert rules, alerts and the live alert stream (SSE)"),
        (name = "operations", description = "Health and readiness"),
        (name = "legacy", description = "The original MVP's routes, kept for existing clients (deprecated)"),
    )
)]
pub struct ApiDoc;

/// Declares the API-key bearer scheme, required by every operation except health and
/// readiness (which declare an empty requirement: no key needed).
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("emdp API key")
            .description(Some("An API key from `emdp keys create`, sent as `Authorization: Bearer emdp_...`. Roles: reader (GET), ingester (+ validate and ingest), admin (everything)."))
            .build();
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme("api_key", SecurityScheme::Http(scheme));
        openapi.security = Some(vec![SecurityRequirement::new("api_key", Vec::<String>::new())]);
        for path in ["/health", "/api/v1/health", "/api/v1/ready"] {
            if let Some(operation) = openapi.paths.paths.get_mut(path).and_then(|item| item.get.as_mut()) {
                operation.security = Some(vec![SecurityRequirement::default()]);
            }
        }
    }
}

const REDOC_JS: &[u8] = include_bytes!("../assets/redoc.standalone.js");

const REDOC_PAGE: &str = r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>emdp API — ReDoc</title>
<style>body { margin: 0; padding: 0; }</style>
</head>
<body>
<div id="redoc"></div>
<script src="/redoc/redoc.standalone.js"></script>
<script>Redoc.init("/openapi.json", { disableSearch: false, hideDownloadButton: false }, document.getElementById("redoc"));</script>
</body>
</html>
"#;

/// `/openapi.json`, `/docs` (Swagger UI) and `/redoc`.
pub fn router() -> Router<AppState> {
    let swagger: Router<AppState> = SwaggerUi::new("/docs")
        .url("/openapi.json", ApiDoc::openapi())
        .config(Config::default().validator_url("none"))
        .into();
    swagger.route("/redoc", get(|| async { Html(REDOC_PAGE) })).route(
        "/redoc/redoc.standalone.js",
        get(|| async {
            (
                [(header::CONTENT_TYPE, "application/javascript"), (header::CACHE_CONTROL, "public, max-age=86400")],
                REDOC_JS,
            )
                .into_response()
        }),
    )
}
