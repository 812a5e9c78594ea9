//! Configuration: the TOML file users write (`schema`), how it is checked and compiled into
//! the read-only runtime form that workers share (`compile`), and how problems are reported
//! with file, line and field (`locate`).
//!
//! Loading never stops at the first semantic problem: every invalid field is collected so
//! that `portcullis check` lists them all. A TOML syntax or type error stops parsing, and is
//! reported with its own position.

pub mod compile;
pub mod duration;
pub mod locate;
pub mod schema;

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::access::cidr::Cidr;
use crate::access::rules::AccessPolicy;
use crate::http::{ChunkedLimits, RequestLimits, ResponseLimits};
use crate::proxy::router::Router;

pub use locate::{FieldPath, Position};

/// The compiled configuration that workers share. It is immutable; a reload builds a new one
/// and swaps the `Arc`, and requests in flight finish on the snapshot they started with.
pub struct Config {
    pub workers: usize,
    pub listeners: Vec<ListenerSpec>,
    pub api_listeners: Vec<SocketAddr>,
    pub limits: Limits,
    /// Peers whose `X-Forwarded-*` headers are kept; all others have them replaced.
    pub trusted_proxies: Vec<Cidr>,
    pub router: Router,
    pub access: AccessPolicy,
}

/// A proxy listener and whether it terminates TLS.
#[derive(Clone)]
pub struct ListenerSpec {
    pub addr: SocketAddr,
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl fmt::Debug for ListenerSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ListenerSpec").field("addr", &self.addr).field("tls", &self.tls.is_some()).finish()
    }
}

/// Resource bounds and timeouts. Defaults follow nginx and HAProxy where they agree.
#[derive(Clone, Debug)]
pub struct Limits {
    pub request: RequestLimits,
    pub response: ResponseLimits,
    pub chunked: ChunkedLimits,
    /// Request body limit for routes without their own; None means no limit.
    pub max_body_bytes: Option<u64>,
    /// Time to receive a whole request head, counted from its first byte (or from the end of
    /// the previous response on a kept-alive connection). Default 10 s, then 408 and close.
    pub head_timeout: Duration,
    /// Longest pause between two reads of a request body. Default 30 s.
    pub body_timeout: Duration,
    /// Longest pause while the client does not accept response bytes. Default 60 s.
    pub send_timeout: Duration,
    /// Idle time allowed between requests on a kept-alive connection. Default 60 s.
    pub keepalive_timeout: Duration,
    /// Requests served on one client connection before it is closed. Default 1000.
    pub max_requests_per_connection: u32,
    /// Open client connections across all workers; accepting pauses at the limit.
    pub max_connections: usize,
    /// Idle upstream connections kept per target and worker. Default 128: a pool smaller than
    /// the number of concurrent requests to a target closes and reopens connections all the
    /// time, because idle connections briefly outnumber the pool after each burst.
    pub upstream_keepalive_pool_size: usize,
    /// How long an idle upstream connection stays pooled. Default 60 s.
    pub upstream_keepalive_timeout: Duration,
    /// Requests sent on one upstream connection before it is retired. Default 1000.
    pub upstream_keepalive_requests: u32,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            request: RequestLimits::default(),
            response: ResponseLimits::default(),
            chunked: ChunkedLimits::default(),
            max_body_bytes: Some(1024 * 1024),
            head_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            send_timeout: Duration::from_secs(60),
            keepalive_timeout: Duration::from_secs(60),
            max_requests_per_connection: 1000,
            max_connections: 10_000,
            upstream_keepalive_pool_size: 128,
            upstream_keepalive_timeout: Duration::from_secs(60),
            upstream_keepalive_requests: 1000,
        }
    }
}

/// One problem in a configuration file.
#[derive(Clone, Debug)]
pub struct ConfigError {
    pub file: String,
    pub position: Option<Position>,
    pub field: FieldPath,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(position) = self.position {
            write!(f, ":{}:{}", position.line, position.column)?;
        }
        if self.field.0.is_empty() {
            write!(f, ": {}", self.message)
        } else {
            write!(f, ": {}: {}", self.field, self.message)
        }
    }
}

/// Every problem found in a file, in the order found.
#[derive(Clone, Debug)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, error) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// A compiled configuration plus findings that do not stop it from loading.
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<ConfigError>,
}

/// Reads, checks and compiles the configuration file at `path`.
pub fn load(path: &Path) -> Result<Loaded, ConfigErrors> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|error| {
        ConfigErrors(vec![ConfigError {
            file: file.clone(),
            position: None,
            field: FieldPath::root(),
            message: format!("cannot read the configuration file: {error}"),
        }])
    })?;
    compile::compile_text(&text, &file, path.parent())
}
