//! The OpenAPI document (generated from the handlers' annotations) and the two documentation
//! pages, both served from the binary: Swagger UI from `utoipa-swagger-ui`'s vendored
//! assets, ReDoc from the `redoc@2.5.4` standalone bundle (npm) kept in `assets/`. No page
//! loads anything from another host.

use axum::Router;
use axum::http::{Method, header};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use utoipa::OpenApi;
use utoipa_swagger_ui::{Config, SwaggerUi};

use crate::routes::{self, Access};
use crate::state::AppState;

/// The API description. Its paths come from [`routes::registry`], the list the router is built
/// from; [`Contract`] adds them with who may call each operation and every status it can
/// answer.
#[derive(OpenApi)]
#[openapi(
    info(title = "emdp — energy monitoring data platform", description = "Classify, store and analyze daily energy readings. Errors are RFC 9457 problem details (`application/problem+json`).", license(name = "MIT")),
    components(schemas(crate::error::Problem)),
    modifiers(&Contract),
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

/// Adds the registry's operations to the document, declares the API-key bearer scheme, and
/// gives each operation its security requirement (none for public operations; otherwise the
/// least role, as the scheme's "scope") and the problem responses it can answer.
struct Contract;

impl utoipa::Modify for Contract {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
        let registry = routes::registry();
        let mut entries = registry.paths;
        for (path, item, access) in &mut entries {
            let strict = path.starts_with("/api/v1/");
            for (method, operation) in routes::operations_mut(item) {
                operation.security = Some(vec![match access {
                    Access::Public => SecurityRequirement::default(),
                    Access::Needs(role) => SecurityRequirement::new("api_key", [role.to_string()]),
                }]);
                document_statuses(operation, &method, *access, strict);
            }
        }
        openapi.paths = routes::paths(&entries);
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("emdp API key")
            .description(Some("An API key from `emdp keys create`, sent as `Authorization: Bearer emdp_...`. Roles: reader (reads), ingester (+ validate and ingest), admin (everything); each operation names the least role it needs."))
            .build();
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("api_key", SecurityScheme::Http(scheme));
        components.schemas.extend(registry.schemas);
        openapi.security = Some(vec![SecurityRequirement::new("api_key", Vec::<String>::new())]);
    }
}

/// Documents, on one operation, the problem responses the layers around its handler can
/// answer (a more specific description given by the handler is kept): 400 for a malformed
/// query or body (and on every `/api/v1` operation, `strict`, for a query parameter it does
/// not take or an undecodable path), 413 and 415 for a body, 404 for a path naming nothing,
/// and for a guarded
/// operation 401 (no valid key), 403 (a role too low), 429 (rate limit), 503 (timeout or
/// database unavailable) and, when it writes, 409 (a concurrent writer won).
fn document_statuses(operation: &mut utoipa::openapi::path::Operation, method: &Method, access: Access, strict: bool) {
    use utoipa::openapi::Type;
    use utoipa::openapi::path::ParameterIn;
    let located = |location: ParameterIn| {
        operation.parameters.iter().flatten().any(|parameter| match parameter {
            utoipa::openapi::RefOr::T(parameter) => parameter.parameter_in == location,
            utoipa::openapi::RefOr::Ref(_) => false,
        })
    };
    let (query, path) = (located(ParameterIn::Query), located(ParameterIn::Path));
    let body = operation.request_body.is_some();
    let mut problems: Vec<(u16, utoipa::openapi::Response)> = Vec::new();
    if body || query || strict {
        problems.push((400, problem("A malformed or unknown query parameter, or a malformed body", None)));
    }
    if body {
        problems.push((413, problem("The body is larger than the limit", None)));
        problems.push((415, problem("An unsupported content type or content encoding", None)));
    }
    if path {
        problems.push((404, problem("No such resource", None)));
    }
    if let Access::Needs(role) = access {
        let unauthorized = "No valid API key (missing, unknown or revoked)";
        problems.push((401, problem(unauthorized, Some(("www-authenticate", Type::String)))));
        if role > emdp_app::ports::Role::Reader {
            problems.push((403, problem("The key's role is too low", None)));
        }
        let limited = "The rate limit is exhausted: retry after `Retry-After` seconds";
        problems.push((429, problem(limited, Some(("retry-after", Type::Integer)))));
        problems.push((503, problem("The request timed out, or the database is unavailable", None)));
        if !method.is_safe() {
            problems.push((409, problem("A concurrent update won: retry", None)));
        }
    }
    for (status, response) in problems {
        operation.responses.responses.entry(status.to_string()).or_insert_with(|| response.into());
    }
}

/// A problem-details response, with the header it always carries.
fn problem(description: &str, header: Option<(&str, utoipa::openapi::Type)>) -> utoipa::openapi::Response {
    use utoipa::openapi::{ContentBuilder, HeaderBuilder, ObjectBuilder, Ref, ResponseBuilder};
    let content = ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).build();
    let mut response = ResponseBuilder::new().description(description).content("application/problem+json", content);
    if let Some((name, kind)) = header {
        response =
            response.header(name, HeaderBuilder::new().schema(Some(ObjectBuilder::new().schema_type(kind))).build());
    }
    response.build()
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
