//! portcullis: an identity-aware HTTP/1.1 API gateway. It routes requests like Kong
//! (services, routes, upstreams), decides access like Ory Oathkeeper (rules with
//! authenticators, an authorizer, mutators and error handlers), checks sessions with Ory
//! Kratos, and streams traffic to upstream services, in one process with one event loop per
//! worker thread.
//!
//! The request path: `reactor` accepts and polls; `http` parses and validates heads and
//! bodies; `proxy::router` picks the route; `access` picks the rule and runs the pipeline,
//! whose subrequests `identity` sends; `proxy::exchange` forwards to the upstream.
//! Off the request path, `config` loads the configuration file and `import` writes one from
//! an Ory Oathkeeper setup.

pub mod access;
pub mod config;
pub mod http;
pub mod identity;
pub mod import;
pub mod proxy;
pub mod reactor;
pub mod server;
pub mod tls;
