//! The route handlers, one module per resource, and [`registry`]: the one list that declares
//! every operation with the role it needs. The router, the OpenAPI paths and the guard's
//! access table are all built from that list, so they cannot drift apart.

pub mod alerts;
pub mod batches;
pub mod buildings;
pub mod dead_letters;
pub mod meta;
pub mod quality;
pub mod records;
pub mod seed;

use std::collections::HashMap;

use axum::Router;
use axum::http::Method;
use emdp_app::ports::Role;
use utoipa::openapi::path::{ParameterIn, Paths};
use utoipa::openapi::schema::Schema;
use utoipa::openapi::{PathItem, RefOr};
use utoipa_axum::router::UtoipaMethodRouter;
use utoipa_axum::routes;

use crate::state::AppState;

/// Who may call an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without a key; neither rate-limited nor counted against the concurrency cap.
    Public,
    /// A key with at least this role (when authentication is on).
    Needs(Role),
}

const READER: Access = Access::Needs(Role::Reader);
const INGESTER: Access = Access::Needs(Role::Ingester);
const ADMIN: Access = Access::Needs(Role::Admin);

/// Every operation of the API: its handler (whose `#[utoipa::path]` gives both its route and
/// its OpenAPI operation) and who may call it. A route exists if and only if it is here.
#[allow(deprecated)] // The MVP's routes are deprecated for clients, not for us.
fn operations() -> Vec<(Access, UtoipaMethodRouter<AppState>)> {
    vec![
        (INGESTER, routes!(records::validate)),
        (INGESTER, routes!(records::create)),
        (READER, routes!(records::list)),
        (READER, routes!(records::get)),
        (ADMIN, routes!(records::patch)),
        (ADMIN, routes!(records::delete)),
        (READER, routes!(records::history)),
        (READER, routes!(batches::list)),
        (READER, routes!(dead_letters::list)),
        (READER, routes!(buildings::list)),
        (READER, routes!(buildings::series)),
        (READER, routes!(buildings::baseline)),
        (READER, routes!(buildings::anomalies)),
        // Computing savings is a read that takes its parameters in a body.
        (READER, routes!(buildings::savings)),
        (READER, routes!(quality::summary)),
        (READER, routes!(quality::report)),
        (READER, routes!(crate::dashboard::overview)),
        (READER, routes!(quality::timeline)),
        (READER, routes!(quality::buildings)),
        (READER, routes!(quality::gaps)),
        (READER, routes!(quality::duplicates)),
        (ADMIN, routes!(quality::resolve)),
        (ADMIN, routes!(quality::resolve_groups)),
        (READER, routes!(alerts::list_rules)),
        (ADMIN, routes!(alerts::create_rule)),
        (READER, routes!(alerts::get_rule)),
        (ADMIN, routes!(alerts::update_rule)),
        (ADMIN, routes!(alerts::delete_rule)),
        (READER, routes!(alerts::list_alerts)),
        (READER, routes!(alerts::get_alert)),
        (ADMIN, routes!(alerts::ack)),
        (READER, routes!(alerts::deliveries)),
        (READER, routes!(alerts::stream)),
        (Access::Public, routes!(meta::health)),
        (Access::Public, routes!(meta::ready)),
        (READER, routes!(meta::rules)),
        (Access::Public, routes!(seed::health)),
        (INGESTER, routes!(seed::create)),
        (INGESTER, routes!(seed::validate)),
        (READER, routes!(seed::list)),
        (READER, routes!(seed::get)),
        (ADMIN, routes!(seed::patch)),
        (ADMIN, routes!(seed::delete)),
        (READER, routes!(seed::quality_summary)),
    ]
}

/// Who may call each routed operation, by method and route (as axum matched it).
#[derive(Debug, Clone, Default)]
pub struct AccessTable(HashMap<(Method, String), Access>);

impl AccessTable {
    /// Who may call `method` on the matched `route`: `None` when no operation is declared
    /// there (HEAD is answered by GET's operation).
    pub fn get(&self, method: &Method, route: &str) -> Option<Access> {
        let method = if method == Method::HEAD { &Method::GET } else { method };
        self.0.get(&(method.clone(), route.to_owned())).copied()
    }

    /// Declares who may call `method` on `route` (for the few routes outside the OpenAPI
    /// document, such as `/metrics`).
    pub fn insert(&mut self, method: Method, route: &str, access: Access) {
        self.0.insert((method, route.to_owned()), access);
    }
}

/// The registry, assembled: the router, the OpenAPI paths (with their schemas) and the access
/// table, from the one list of operations.
pub struct Registry {
    /// Every operation's route.
    pub router: Router<AppState>,
    /// Every operation's OpenAPI path item, each with who may call it.
    pub paths: Vec<(String, PathItem, Access)>,
    /// The schemas the operations refer to.
    pub schemas: Vec<(String, RefOr<Schema>)>,
    /// Who may call each route.
    pub access: AccessTable,
    /// The query parameters each route documents, the only ones it accepts.
    pub queries: crate::extract::QueryNames,
}

/// Assembles the registry.
pub fn registry() -> Registry {
    let mut registry = Registry {
        router: Router::new(),
        paths: Vec::new(),
        schemas: Vec::new(),
        access: AccessTable::default(),
        queries: crate::extract::QueryNames::default(),
    };
    for (access, (schemas, paths, method_router)) in operations() {
        registry.schemas.extend(schemas);
        for (path, mut item) in paths.paths {
            let route = axum_route(&path);
            for (method, operation) in operations_mut(&mut item) {
                registry.access.insert(method.clone(), &route, access);
                let names = operation.parameters.iter().flatten().filter_map(|parameter| match parameter {
                    RefOr::T(parameter) if parameter.parameter_in == ParameterIn::Query => Some(parameter.name.clone()),
                    _ => None,
                });
                registry.queries.insert(method, &route, names);
            }
            registry.router = registry.router.route(&route, method_router.clone());
            registry.paths.push((path, item, access));
        }
    }
    registry
}

/// The OpenAPI paths of the registry (several operations on one path merged into its item).
pub fn paths(entries: &[(String, PathItem, Access)]) -> Paths {
    let mut paths = Paths::new();
    for (path, item, _) in entries {
        match paths.paths.get_mut(path) {
            Some(existing) => existing.merge_operations(item.clone()),
            None => {
                paths.paths.insert(path.clone(), item.clone());
            }
        }
    }
    paths
}

/// The route axum matches for a documented path. A custom method such as
/// `/alerts/{id}:ack` is routed on `/alerts/{id}` (axum matches a parameter only as a
/// whole segment); its handler reads the suffix.
pub fn axum_route(path: &str) -> String {
    path.split('/')
        .map(|segment| match (segment.starts_with('{'), segment.find("}:")) {
            (true, Some(end)) => &segment[..=end],
            _ => segment,
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The operations of a path item, with their methods.
pub fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = (Method, &mut utoipa::openapi::path::Operation)> {
    [
        (Method::GET, &mut item.get),
        (Method::PUT, &mut item.put),
        (Method::POST, &mut item.post),
        (Method::DELETE, &mut item.delete),
        (Method::OPTIONS, &mut item.options),
        (Method::HEAD, &mut item.head),
        (Method::PATCH, &mut item.patch),
        (Method::TRACE, &mut item.trace),
    ]
    .into_iter()
    .filter_map(|(method, operation)| operation.as_mut().map(|operation| (method, operation)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_methods_are_routed_on_their_resource() {
        assert_eq!(axum_route("/api/v1/alerts/{id}:ack"), "/api/v1/alerts/{id}");
        assert_eq!(axum_route("/api/v1/records:validate"), "/api/v1/records:validate");
        assert_eq!(axum_route("/api/v1/records/{id}/history"), "/api/v1/records/{id}/history");
    }

    #[test]
    fn schema_names_are_unique() {
        let mut seen: HashMap<String, RefOr<Schema>> = HashMap::new();
        for (name, schema) in registry().schemas {
            if let Some(other) = seen.insert(name.clone(), schema.clone()) {
                assert!(other == schema, "two types are documented as the schema '{name}'");
            }
        }
    }

    #[test]
    fn roles_are_declared_with_the_routes() {
        let access = registry().access;
        assert_eq!(access.get(&Method::GET, "/api/v1/records"), Some(READER));
        assert_eq!(access.get(&Method::HEAD, "/api/v1/records"), Some(READER));
        assert_eq!(access.get(&Method::POST, "/api/v1/records"), Some(INGESTER));
        assert_eq!(access.get(&Method::POST, "/energy-record:validate"), Some(INGESTER));
        assert_eq!(access.get(&Method::DELETE, "/api/v1/records/{id}"), Some(ADMIN));
        assert_eq!(access.get(&Method::POST, "/api/v1/duplicates/{key}"), Some(ADMIN));
        assert_eq!(access.get(&Method::POST, "/api/v1/buildings/{id}/savings"), Some(READER));
        assert_eq!(access.get(&Method::GET, "/api/v1/ready"), Some(Access::Public));
        assert_eq!(access.get(&Method::PUT, "/api/v1/records"), None);
    }
}
