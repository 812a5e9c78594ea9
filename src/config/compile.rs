//! Checks a parsed configuration file and compiles it into the runtime `Config`.
//!
//! Problems are collected with the field path where they were found; positions are looked up
//! once at the end. Handler settings follow Oathkeeper: a rule's `config` table is merged over
//! the global `[authenticators.<name>]` (or authorizers, mutators, error handlers) table, with
//! the rule winning, before it is checked.

use std::collections::{HashMap, HashSet};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::locate::{locate, position_of, FieldPath};
use super::schema::*;
use super::{Config, ConfigError, ConfigErrors, Limits, ListenerSpec, Loaded};
use crate::access::cidr::Cidr;
use crate::access::errors::{ErrorHandler, ErrorHandlers, ErrorKind, When};
use crate::access::json::JsonPath;
use crate::access::jwks::JwksSource;
use crate::access::jwt::{Algorithm, ClaimRules, KeySet, ScopeStrategy};
use crate::access::matcher::{MatchingStrategy, RuleMatcher, RuleSpec};
use crate::access::rules::{
    owned_header_key, AccessPolicy, Authenticator, Authorizer, HeaderTemplate, IdTokenMutator, JwtAuthenticator, Mutator,
    RemoteEndpoint, RemoteJson, Rule, SessionCacheSettings, SessionCheck, TokenSource,
};
use crate::access::template::Template;
use crate::proxy::router::{self, HostMatcher, PathMatcher, Route, RoutePaths, Router, Service, Target};

/// Default deadline for a session check or remote authorization subrequest.
const DEFAULT_SUBREQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Collected problems, each with the field it concerns.
#[derive(Default)]
struct Problems {
    errors: Vec<(FieldPath, String)>,
    warnings: Vec<(FieldPath, String)>,
}

impl Problems {
    fn error(&mut self, field: FieldPath, message: impl Into<String>) {
        self.errors.push((field, message.into()));
    }

    fn warning(&mut self, field: FieldPath, message: impl Into<String>) {
        self.warnings.push((field, message.into()));
    }
}

/// Compiles configuration text. `base_dir` resolves relative file paths (TLS keys).
pub fn compile_text(text: &str, file: &str, base_dir: Option<&Path>) -> Result<Loaded, ConfigErrors> {
    let parsed: ConfigFile = match toml::from_str(text) {
        Ok(parsed) => parsed,
        Err(error) => {
            let position = error.span().map(|span| position_of(text, span.start));
            return Err(ConfigErrors(vec![ConfigError {
                file: file.to_owned(),
                position,
                field: FieldPath::root(),
                message: error.message().trim().to_owned(),
            }]));
        }
    };
    let mut problems = Problems::default();
    let config = compile(parsed, &mut problems, base_dir);
    let to_errors = |items: Vec<(FieldPath, String)>| -> Vec<ConfigError> {
        items
            .into_iter()
            .map(|(field, message)| ConfigError { file: file.to_owned(), position: Some(locate(text, &field)), field, message })
            .collect()
    };
    let warnings = to_errors(problems.warnings);
    match config {
        Some(config) if problems.errors.is_empty() => Ok(Loaded { config, warnings }),
        _ => Err(ConfigErrors(to_errors(problems.errors))),
    }
}

fn compile(file: ConfigFile, problems: &mut Problems, base_dir: Option<&Path>) -> Option<Config> {
    let root = FieldPath::root();

    let workers = match file.workers {
        Some(0) => {
            problems.error(root.key("workers"), "must be at least 1");
            1
        }
        Some(n) if n > 1024 => {
            problems.error(root.key("workers"), format!("{n} is more than the maximum of 1024"));
            1
        }
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };

    let listeners = compile_listeners(&file.proxy, problems, base_dir);
    let api_listeners = match &file.api {
        Some(api) => parse_addresses(&api.listen, &root.key("api").key("listen"), problems),
        None => Vec::new(),
    };
    let limits = compile_limits(&file.limits, problems);
    let trusted_proxies = parse_cidrs(&file.proxy.trusted_proxies, &root.key("proxy").key("trusted_proxies"), problems);
    let router = compile_router(&file, &limits, problems);
    let access = compile_access(&file, problems);

    Some(Config { workers, listeners, api_listeners, limits, trusted_proxies, router, access: access? })
}

// ---------------------------------------------------------------------------------------------
// Listeners and limits

fn compile_listeners(proxy: &ProxySection, problems: &mut Problems, base_dir: Option<&Path>) -> Vec<ListenerSpec> {
    let path = FieldPath::root().key("proxy");
    let mut listeners: Vec<ListenerSpec> = parse_addresses(&proxy.listen, &path.key("listen"), problems)
        .into_iter()
        .map(|addr| ListenerSpec { addr, tls: None })
        .collect();
    if let Some(tls) = &proxy.tls {
        let tls_path = path.key("tls");
        let addresses = parse_addresses(&tls.listen, &tls_path.key("listen"), problems);
        match crate::tls::server_config(&resolve_file(&tls.certificate, base_dir), &resolve_file(&tls.key, base_dir)) {
            Ok(server_config) => {
                listeners.extend(addresses.into_iter().map(|addr| ListenerSpec { addr, tls: Some(server_config.clone()) }));
            }
            Err(message) => problems.error(tls_path, message),
        }
    }
    if listeners.is_empty() {
        problems.error(path.key("listen"), "no listener configured: add an address such as \"127.0.0.1:8000\"");
    }
    let mut seen = HashSet::new();
    for listener in &listeners {
        if !seen.insert(listener.addr) {
            problems.error(path.clone(), format!("address {} is listed twice", listener.addr));
        }
    }
    listeners
}

fn resolve_file(file: &str, base_dir: Option<&Path>) -> std::path::PathBuf {
    let path = Path::new(file);
    match base_dir {
        Some(dir) if path.is_relative() && !path.exists() => dir.join(path),
        _ => path.to_path_buf(),
    }
}

fn parse_addresses(items: &[String], path: &FieldPath, problems: &mut Problems) -> Vec<SocketAddr> {
    let mut addresses = Vec::new();
    for (index, item) in items.iter().enumerate() {
        match item.parse::<SocketAddr>() {
            Ok(addr) => addresses.push(addr),
            Err(_) => match item.to_socket_addrs().map(|mut found| found.next()) {
                Ok(Some(addr)) => addresses.push(addr),
                _ => problems.error(
                    path.index(index),
                    format!("invalid listen address {item:?}: expected host:port such as \"127.0.0.1:8000\" or \"[::1]:8000\""),
                ),
            },
        }
    }
    addresses
}

fn parse_cidrs(items: &[String], path: &FieldPath, problems: &mut Problems) -> Vec<Cidr> {
    let mut cidrs = Vec::new();
    for (index, item) in items.iter().enumerate() {
        match item.parse::<Cidr>() {
            Ok(cidr) => cidrs.push(cidr),
            Err(message) => problems.error(path.index(index), message),
        }
    }
    cidrs
}

fn compile_limits(section: &LimitsSection, problems: &mut Problems) -> Limits {
    let path = FieldPath::root().key("limits");
    let mut limits = Limits::default();
    let mut positive = |name: &str, value: Option<usize>, target: &mut usize| {
        if let Some(value) = value {
            if value == 0 {
                problems.error(path.key(name), "must be greater than 0");
            } else {
                *target = value;
            }
        }
    };
    positive("max_head_bytes", section.max_head_bytes, &mut limits.request.max_head_bytes);
    positive("max_request_line_bytes", section.max_request_line_bytes, &mut limits.request.max_request_line_bytes);
    positive("max_header_line_bytes", section.max_header_line_bytes, &mut limits.request.max_header_line_bytes);
    positive("max_headers", section.max_headers, &mut limits.request.max_headers);
    positive("max_chunk_extension_bytes", section.max_chunk_extension_bytes, &mut limits.chunked.max_extension_bytes);
    positive("max_trailer_bytes", section.max_trailer_bytes, &mut limits.chunked.max_trailer_bytes);
    positive("max_connections", section.max_connections, &mut limits.max_connections);
    if let Some(size) = section.upstream_keepalive_pool_size {
        limits.upstream_keepalive_pool_size = size;
    }
    limits.response.max_head_bytes = limits.request.max_head_bytes.max(limits.response.max_head_bytes);
    limits.response.max_headers = limits.request.max_headers.max(limits.response.max_headers);
    if let Some(max) = section.max_body_bytes {
        limits.max_body_bytes = (max > 0).then_some(max);
    }
    let mut duration = |name: &str, value: Option<super::duration::ConfigDuration>, target: &mut Duration| {
        if let Some(value) = value {
            if value.0.is_zero() {
                problems.error(path.key(name), "must be longer than 0s");
            } else {
                *target = value.0;
            }
        }
    };
    duration("head_timeout", section.head_timeout, &mut limits.head_timeout);
    duration("body_timeout", section.body_timeout, &mut limits.body_timeout);
    duration("send_timeout", section.send_timeout, &mut limits.send_timeout);
    duration("keepalive_timeout", section.keepalive_timeout, &mut limits.keepalive_timeout);
    duration("upstream_keepalive_timeout", section.upstream_keepalive_timeout, &mut limits.upstream_keepalive_timeout);
    if let Some(count) = section.max_requests_per_connection {
        if count == 0 {
            problems.error(path.key("max_requests_per_connection"), "must be at least 1");
        } else {
            limits.max_requests_per_connection = count;
        }
    }
    if let Some(count) = section.upstream_keepalive_requests {
        if count == 0 {
            problems.error(path.key("upstream_keepalive_requests"), "must be at least 1");
        } else {
            limits.upstream_keepalive_requests = count;
        }
    }
    limits
}

// ---------------------------------------------------------------------------------------------
// Kong: services, upstreams, routes

/// A parsed `http://host[:port][/path][?query]` URL.
struct HttpUrl {
    host: String,
    port: u16,
    /// Host as written plus `:port` when the port is not the scheme default.
    host_header: String,
    path: String,
    query: Option<String>,
}

fn parse_http_url(url: &str) -> Result<HttpUrl, String> {
    let invalid = |why: &str| format!("invalid URL {url:?}: {why}");
    let rest = if let Some(rest) = url.strip_prefix("http://") {
        rest
    } else if url.starts_with("https://") {
        return Err(invalid("https is not supported for upstreams and subrequests; use an http:// URL on a trusted network"));
    } else {
        return Err(invalid("expected an http:// URL"));
    };
    let (authority, path_and_query) = match rest.find(['/', '?']) {
        Some(index) => rest.split_at(index),
        None => (rest, ""),
    };
    if authority.is_empty() || authority.contains('@') {
        return Err(invalid("expected a host, without user information"));
    }
    let (host, port) = split_host_port(authority).ok_or_else(|| invalid("invalid host or port"))?;
    let port = port.unwrap_or(80);
    let (path, query) = match path_and_query.split_once('?') {
        Some((path, query)) => (path, Some(query.to_owned())),
        None => (path_and_query, None),
    };
    let path = if path.is_empty() { "/".to_owned() } else { path.to_owned() };
    let header_valid = |s: &str| s.bytes().all(|b| b > 0x20 && b < 0x7f && b != b'#');
    if !header_valid(&path) || query.as_deref().is_some_and(|q| !header_valid(q)) {
        return Err(invalid("the path and query may contain only visible ASCII characters"));
    }
    Ok(HttpUrl { host_header: authority.to_owned(), host, port, path, query })
}

/// Splits `host[:port]` (IPv6 in brackets). Returns None for an empty host or a bad port.
fn split_host_port(authority: &str) -> Option<(String, Option<u16>)> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':')?),
        };
        (host, port)
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() || !host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':')) {
        return None;
    }
    let port = match port {
        Some(port) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => Some(port.parse::<u16>().ok()?),
        Some(_) => return None,
        None => None,
    };
    Some((host.to_owned(), port))
}

/// Resolves a host at load time (the main thread may block; workers never resolve).
fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
    let mut addresses: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|error| format!("cannot resolve {host}: {error}"))?
        .collect();
    addresses.dedup();
    if addresses.is_empty() {
        return Err(format!("{host} resolved to no address"));
    }
    Ok(addresses)
}

fn compile_router(file: &ConfigFile, limits: &Limits, problems: &mut Problems) -> Router {
    let root = FieldPath::root();

    let mut upstreams: HashMap<&str, Vec<Target>> = HashMap::new();
    for (index, upstream) in file.upstreams.iter().enumerate() {
        let path = root.key("upstreams").index(index);
        if upstream.name.is_empty() {
            problems.error(path.key("name"), "must not be empty");
        }
        if let Some(algorithm) = &upstream.algorithm {
            if algorithm != "round-robin" {
                problems.error(path.key("algorithm"), format!("unsupported algorithm {algorithm:?}: only \"round-robin\" is available"));
            }
        }
        let mut targets = Vec::new();
        for (target_index, target) in upstream.targets.iter().enumerate() {
            let target_path = path.key("targets").index(target_index);
            let weight = target.weight.unwrap_or(100);
            if weight > 65_535 {
                problems.error(target_path.key("weight"), format!("{weight} is above the maximum of 65535"));
            }
            match split_host_port(&target.target) {
                Some((host, port)) => match resolve(&host, port.unwrap_or(8000)) {
                    Ok(addresses) => targets.extend(addresses.into_iter().map(|addr| Target { addr, weight })),
                    Err(message) => problems.error(target_path.key("target"), message),
                },
                None => problems.error(target_path.key("target"), format!("invalid target {:?}: expected host:port", target.target)),
            }
        }
        if targets.iter().all(|t| t.weight == 0) {
            problems.error(path.key("targets"), "needs at least one target with a weight above 0");
        }
        if upstreams.insert(upstream.name.as_str(), targets).is_some() {
            problems.error(path.key("name"), format!("upstream name {:?} is used twice", upstream.name));
        }
    }

    let mut services = Vec::new();
    let mut service_index: HashMap<&str, usize> = HashMap::new();
    for (index, section) in file.services.iter().enumerate() {
        let path = root.key("services").index(index);
        if section.name.is_empty() {
            problems.error(path.key("name"), "must not be empty");
        }
        if service_index.insert(section.name.as_str(), index).is_some() {
            problems.error(path.key("name"), format!("service name {:?} is used twice", section.name));
        }
        let url = match (&section.url, &section.host) {
            (Some(url), None) => parse_http_url(url).map_err(|m| problems.error(path.key("url"), m)).ok(),
            (None, Some(host)) => {
                let protocol = section.protocol.as_deref().unwrap_or("http");
                let port = section.port.unwrap_or(80);
                let text = format!("{protocol}://{host}:{port}{}", section.path.as_deref().unwrap_or(""));
                parse_http_url(&text).map_err(|m| problems.error(path.key("host"), m)).ok()
            }
            (Some(_), Some(_)) => {
                problems.error(path.key("url"), "set either url or host/port/protocol/path, not both");
                None
            }
            (None, None) => {
                problems.error(path.key("url"), "missing: set url = \"http://host:port/path\"");
                None
            }
        };
        let millis = |name: &str, value: Option<u64>, problems: &mut Problems| -> Duration {
            match value {
                Some(0) => {
                    problems.error(path.key(name), "must be at least 1 (milliseconds)");
                    Duration::from_secs(60)
                }
                Some(ms) => Duration::from_millis(ms),
                None => Duration::from_secs(60),
            }
        };
        let connect_timeout = millis("connect_timeout", section.connect_timeout, problems);
        let read_timeout = millis("read_timeout", section.read_timeout, problems);
        let write_timeout = millis("write_timeout", section.write_timeout, problems);
        let pipeline_depth = match section.pipeline_depth {
            None => 1,
            Some(depth @ 1..=router::MAX_PIPELINE_DEPTH) => depth as usize,
            Some(_) => {
                problems.error(path.key("pipeline_depth"), format!("must be between 1 and {}", router::MAX_PIPELINE_DEPTH));
                1
            }
        };
        let mut targets = Vec::new();
        let (host_header, service_path) = match &url {
            Some(url) => {
                if let Some(upstream) = upstreams.get(url.host.as_str()) {
                    targets = upstream.clone();
                } else {
                    match resolve(&url.host, url.port) {
                        Ok(addresses) => targets = addresses.into_iter().map(|addr| Target { addr, weight: 100 }).collect(),
                        Err(message) => problems.error(path.key("url"), message),
                    }
                }
                let service_path = if url.path == "/" { String::new() } else { url.path.clone() };
                (url.host_header.clone(), service_path)
            }
            None => (String::new(), String::new()),
        };
        let schedule = router::weighted_schedule(&targets);
        services.push(Service {
            name: section.name.clone(),
            host_header,
            path: service_path,
            targets,
            schedule,
            connect_timeout,
            read_timeout,
            write_timeout,
            retries: section.retries.unwrap_or(5),
            pipeline_depth,
        });
    }

    let mut routes = Vec::new();
    let mut route_paths = Vec::new();
    let mut route_names = HashSet::new();
    for (index, section) in file.routes.iter().enumerate() {
        let path = root.key("routes").index(index);
        if !route_names.insert(section.name.as_str()) {
            problems.error(path.key("name"), format!("route name {:?} is used twice", section.name));
        }
        let service = match service_index.get(section.service.as_str()) {
            Some(&service) => service,
            None => {
                problems.error(path.key("service"), format!("no service named {:?}", section.service));
                0
            }
        };
        if section.paths.is_empty() && section.methods.is_empty() && section.hosts.is_empty() && section.headers.is_empty() {
            problems.error(path.clone(), "a route needs at least one of paths, methods, hosts or headers");
        }
        let mut paths = Vec::new();
        for (path_index, route_path) in section.paths.iter().enumerate() {
            if let Some(pattern) = route_path.strip_prefix('~') {
                match regex::bytes::Regex::new(&format!("^(?:{pattern})")) {
                    Ok(regex) => paths.push(PathMatcher::Regex(regex)),
                    Err(error) => problems.error(path.key("paths").index(path_index), format!("invalid regex path: {error}")),
                }
            } else if route_path.starts_with('/') {
                paths.push(PathMatcher::Prefix(route_path.as_bytes().to_vec()));
            } else {
                problems.error(
                    path.key("paths").index(path_index),
                    format!("invalid path {route_path:?}: a path starts with \"/\", or with \"~\" for a regex"),
                );
            }
        }
        let methods: Vec<String> = section
            .methods
            .iter()
            .enumerate()
            .filter_map(|(method_index, method)| {
                if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
                    problems.error(path.key("methods").index(method_index), format!("invalid method {method:?}: use upper case, such as \"GET\""));
                    None
                } else {
                    Some(method.clone())
                }
            })
            .collect();
        let hosts = section
            .hosts
            .iter()
            .enumerate()
            .filter_map(|(host_index, host)| match compile_host(host) {
                Ok(matcher) => Some(matcher),
                Err(message) => {
                    problems.error(path.key("hosts").index(host_index), message);
                    None
                }
            })
            .collect();
        let mut headers = Vec::new();
        for (name, values) in &section.headers {
            if name.eq_ignore_ascii_case("host") {
                problems.error(path.key("headers").key(name), "use hosts to match on the Host header");
            } else if values.is_empty() {
                problems.error(path.key("headers").key(name), "needs at least one value");
            } else {
                headers.push((name.to_ascii_lowercase(), values.clone()));
            }
        }
        routes.push(Route {
            name: section.name.clone(),
            service,
            methods,
            hosts,
            headers,
            strip_path: section.strip_path.unwrap_or(true),
            preserve_host: section.preserve_host.unwrap_or(false),
            max_body_bytes: section.max_body_bytes.map_or(limits.max_body_bytes, |max| (max > 0).then_some(max)),
            allow_encoded_slashes: section.allow_encoded_slashes.unwrap_or(false),
        });
        route_paths.push(RoutePaths { paths, regex_priority: section.regex_priority.unwrap_or(0) });
    }
    Router::new(services, routes, route_paths)
}

fn compile_host(host: &str) -> Result<HostMatcher, String> {
    let lower = host.to_ascii_lowercase();
    let valid = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    if let Some(suffix) = lower.strip_prefix("*.") {
        if valid(suffix) {
            return Ok(HostMatcher::WildcardPrefix(format!(".{suffix}")));
        }
    } else if let Some(prefix) = lower.strip_suffix(".*") {
        if valid(prefix) {
            return Ok(HostMatcher::WildcardSuffix(format!("{prefix}.")));
        }
    } else if valid(&lower) {
        return Ok(HostMatcher::Exact(lower));
    }
    Err(format!("invalid host {host:?}: a wildcard may only be the leftmost or rightmost label (\"*.example.com\", \"example.*\")"))
}

// ---------------------------------------------------------------------------------------------
// Oathkeeper: handlers and rules

/// Merges `rule` over `global` (tables merge recursively, other values are replaced) and
/// deserialises the result.
fn merge_config<T: Serialize + DeserializeOwned + Default>(global: Option<&T>, rule: Option<&toml::Table>) -> Result<T, String> {
    let mut merged = match global {
        Some(global) => match toml::Value::try_from(global) {
            Ok(toml::Value::Table(table)) => table,
            Ok(_) | Err(_) => toml::Table::new(),
        },
        None => toml::Table::new(),
    };
    if let Some(rule) = rule {
        merge_tables(&mut merged, rule);
    }
    toml::Value::Table(merged).try_into::<T>().map_err(|error| error.to_string().trim().to_owned())
}

fn merge_tables(base: &mut toml::Table, over: &toml::Table) {
    for (key, value) in over {
        match (base.get_mut(key), value) {
            (Some(toml::Value::Table(base_table)), toml::Value::Table(over_table)) => merge_tables(base_table, over_table),
            _ => {
                base.insert(key.clone(), value.clone());
            }
        }
    }
}

fn is_enabled(enabled: Option<bool>) -> bool {
    enabled.unwrap_or(true)
}

fn compile_when(items: &[WhenCondition], path: &FieldPath, problems: &mut Problems) -> Vec<When> {
    let mut compiled = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let item_path = path.index(index);
        let mut when = When::default();
        for (error_index, name) in item.error.iter().flatten().enumerate() {
            match ErrorKind::from_name(name) {
                Some(kind) => when.errors.push(kind),
                None => problems.error(
                    item_path.key("error").index(error_index),
                    format!("unknown error {name:?}: use unauthorized, forbidden, not_found, internal_server_error, too_many_requests, bad_gateway or service_unavailable"),
                ),
            }
        }
        if let Some(request) = &item.request {
            if let Some(remote_ip) = &request.remote_ip {
                when.remote_ip = parse_cidrs(
                    remote_ip.cidrs.as_deref().unwrap_or(&[]),
                    &item_path.key("request").key("remote_ip").key("match"),
                    problems,
                );
                when.respect_forwarded_for_header = remote_ip.respect_forwarded_for_header.unwrap_or(false);
            }
            if let Some(header) = &request.header {
                when.accept = header.accept.iter().flatten().map(|v| v.to_ascii_lowercase()).collect();
                when.content_type = header.content_type.iter().flatten().map(|v| v.to_ascii_lowercase()).collect();
            }
        }
        compiled.push(when);
    }
    compiled
}

fn compile_error_handler(
    name: &str,
    rule_config: Option<&toml::Table>,
    errors: &ErrorsSection,
    path: &FieldPath,
    problems: &mut Problems,
) -> Option<ErrorHandler> {
    let handlers = &errors.handlers;
    match name {
        "json" => {
            let config: JsonErrorConfig = merge_config(handlers.json.as_ref(), rule_config).map_err(|m| problems.error(path.clone(), m)).ok()?;
            if !is_enabled(config.enabled) {
                problems.error(path.clone(), "error handler json is disabled");
                return None;
            }
            let when = compile_when(config.when.as_deref().unwrap_or(&[]), &path.key("when"), problems);
            Some(ErrorHandler::Json { verbose: config.verbose.unwrap_or(false), when })
        }
        "redirect" => {
            let config: RedirectErrorConfig =
                merge_config(handlers.redirect.as_ref(), rule_config).map_err(|m| problems.error(path.clone(), m)).ok()?;
            if !is_enabled(config.enabled) {
                problems.error(path.clone(), "error handler redirect is disabled");
                return None;
            }
            let Some(to) = config.to.clone() else {
                problems.error(path.key("to"), "missing: the redirect handler needs `to`, the URL to send browsers to");
                return None;
            };
            if !(to.starts_with("http://") || to.starts_with("https://") || to.starts_with('/'))
                || to.bytes().any(|b| b <= 0x20 || b == 0x7f)
            {
                problems.error(path.key("to"), format!("invalid redirect target {to:?}: expected an absolute http(s) URL or a path"));
            }
            let code = config.code.unwrap_or(302);
            if code != 301 && code != 302 {
                problems.error(path.key("code"), format!("invalid redirect code {code}: use 301 or 302"));
            }
            let when = compile_when(config.when.as_deref().unwrap_or(&[]), &path.key("when"), problems);
            let return_to_query_param = config.return_to_query_param.clone().filter(|p| !p.is_empty());
            Some(ErrorHandler::Redirect { to, code, return_to_query_param, when })
        }
        "www_authenticate" => {
            let config: WwwAuthenticateConfig =
                merge_config(handlers.www_authenticate.as_ref(), rule_config).map_err(|m| problems.error(path.clone(), m)).ok()?;
            if !is_enabled(config.enabled) {
                problems.error(path.clone(), "error handler www_authenticate is disabled");
                return None;
            }
            let when = compile_when(config.when.as_deref().unwrap_or(&[]), &path.key("when"), problems);
            let realm = config.realm.clone().unwrap_or_else(|| "Please authenticate.".to_owned());
            Some(ErrorHandler::WwwAuthenticate { realm, when })
        }
        other => {
            problems.error(path.key("handler"), format!("unknown error handler {other:?}: use json, redirect or www_authenticate"));
            None
        }
    }
}

fn compile_endpoint(url: &str, path: &FieldPath, problems: &mut Problems) -> Option<RemoteEndpoint> {
    let parsed = parse_http_url(url).map_err(|m| problems.error(path.clone(), m)).ok()?;
    let addresses = resolve(&parsed.host, parsed.port).map_err(|m| problems.error(path.clone(), m)).ok()?;
    Some(RemoteEndpoint { addr: addresses[0], host_header: parsed.host_header, path: parsed.path, query: parsed.query })
}

fn compile_json_path(text: &str, path: &FieldPath, problems: &mut Problems) -> Option<JsonPath> {
    JsonPath::parse(text).map_err(|error| problems.error(path.clone(), format!("invalid path {text:?}: {error}"))).ok()
}

fn compile_session_check(
    kind: &str,
    global: Option<&SessionCheckConfig>,
    rule_config: Option<&toml::Table>,
    path: &FieldPath,
    problems: &mut Problems,
) -> Option<Arc<SessionCheck>> {
    let config: SessionCheckConfig = merge_config(global, rule_config).map_err(|m| problems.error(path.clone(), m)).ok()?;
    if !is_enabled(config.enabled) {
        problems.error(path.key("handler"), format!("authenticator {kind} is disabled"));
        return None;
    }
    let Some(url) = config.check_session_url.as_deref() else {
        problems.error(
            path.key("check_session_url"),
            format!("missing: set check_session_url in [authenticators.{kind}] or in the rule's config"),
        );
        return None;
    };
    let endpoint = compile_endpoint(url, &path.key("check_session_url"), problems);
    let is_bearer = kind == "bearer_token";
    let default_subject = if is_bearer { "sub" } else { "subject" };
    let subject_from = compile_json_path(config.subject_from.as_deref().unwrap_or(default_subject), &path.key("subject_from"), problems);
    let extra_from = compile_json_path(config.extra_from.as_deref().unwrap_or("extra"), &path.key("extra_from"), problems);
    let token_source = compile_token_source(&config.token_from, &path.key("token_from"), problems);
    if !is_bearer && (config.token_from.is_some() || config.prefix.is_some()) {
        problems.error(path.clone(), "token_from and prefix apply to bearer_token only");
    }
    if is_bearer && config.only.is_some() {
        problems.error(path.key("only"), "only applies to cookie_session");
    }
    let mut additional_headers = Vec::new();
    for (name, value) in config.additional_headers.iter().flatten() {
        if !is_token(name) {
            problems.error(path.key("additional_headers").key(name), "invalid header name");
        } else if value.bytes().any(|b| b < 0x20 && b != b'\t' || b == 0x7f) {
            problems.error(path.key("additional_headers").key(name), "header value contains control characters");
        } else {
            additional_headers.push((name.clone(), value.clone()));
        }
    }
    let force_method = config.force_method.clone().filter(|m| !m.is_empty());
    if let Some(method) = &force_method {
        if !method.bytes().all(|b| b.is_ascii_uppercase()) {
            problems.error(path.key("force_method"), format!("invalid method {method:?}: use upper case, such as \"GET\""));
        }
    }
    let timeout = config.timeout.map_or(DEFAULT_SUBREQUEST_TIMEOUT, |t| t.0);
    if timeout.is_zero() {
        problems.error(path.key("timeout"), "must be longer than 0s");
    }
    let cache = match &config.cache {
        Some(cache) if cache.enabled.unwrap_or(false) => {
            let ttl = cache.ttl.map_or(Duration::from_secs(10), |t| t.0);
            let max_entries = cache.max_entries.unwrap_or(10_000);
            if ttl.is_zero() || max_entries == 0 {
                problems.error(path.key("cache"), "ttl and max_entries must be above 0 when the cache is enabled");
            }
            Some(SessionCacheSettings { ttl, max_entries })
        }
        _ => None,
    };
    for (index, header) in config.forward_http_headers.iter().flatten().enumerate() {
        if !is_token(header) {
            problems.error(path.key("forward_http_headers").index(index), format!("invalid header name {header:?}"));
        }
    }
    Some(Arc::new(SessionCheck {
        endpoint: endpoint?,
        only: config.only.clone().unwrap_or_default(),
        token_source,
        prefix: config.prefix.clone().unwrap_or_default(),
        preserve_path: config.preserve_path.unwrap_or(false),
        preserve_query: config.preserve_query.unwrap_or(true),
        preserve_host: config.preserve_host.unwrap_or(false),
        forward_http_headers: config.forward_http_headers.clone().unwrap_or_default(),
        additional_headers,
        force_method,
        subject_from: subject_from?,
        extra_from: extra_from?,
        timeout,
        cache,
    }))
}

/// RFC 9110 token characters, for header names.
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn compile_template(source: &str, path: &FieldPath, problems: &mut Problems) -> Option<Template> {
    Template::parse(source).map_err(|error| problems.error(path.clone(), format!("invalid template: {error}"))).ok()
}

fn handler_config(handler: &HandlerRef) -> Option<&toml::Table> {
    handler.config.as_ref().map(|spanned| spanned.get_ref())
}

fn compile_access(file: &ConfigFile, problems: &mut Problems) -> Option<AccessPolicy> {
    let root = FieldPath::root();
    let strategy = match file.access_rules.matching_strategy.as_deref() {
        None | Some("") | Some("regexp") => MatchingStrategy::Regexp,
        Some("glob") => MatchingStrategy::Glob,
        Some(other) => {
            problems.error(
                root.key("access_rules").key("matching_strategy"),
                format!("unknown matching strategy {other:?}: use \"regexp\" or \"glob\""),
            );
            MatchingStrategy::Regexp
        }
    };

    // Global error handlers and the fallback list.
    let errors_path = root.key("errors");
    let fallback_names = file.errors.fallback.clone().unwrap_or_else(|| vec!["json".to_owned()]);
    let mut fallback = Vec::new();
    for (index, name) in fallback_names.iter().enumerate() {
        let path = errors_path.key("fallback").index(index);
        let handler_path = errors_path.key("handlers").key(name);
        if let Some(handler) = compile_error_handler(name, None, &file.errors, &handler_path, problems) {
            fallback.push(handler);
        } else if !matches!(name.as_str(), "json" | "redirect" | "www_authenticate") {
            problems.error(path, format!("unknown error handler {name:?}"));
        }
    }

    let mut rules = Vec::new();
    let mut ids = HashSet::new();
    let mut key_sets: HashMap<String, Arc<JwksSource>> = HashMap::new();
    let mut signing_sets: HashMap<String, Arc<KeySet>> = HashMap::new();
    let mut specs_methods: Vec<Vec<String>> = Vec::new();
    for (index, section) in file.rules.iter().enumerate() {
        let path = root.key("rules").index(index);
        if section.id.is_empty() {
            problems.error(path.key("id"), "must not be empty");
        } else if !ids.insert(section.id.as_str()) {
            problems.error(path.key("id"), format!("rule id {:?} is used twice", section.id));
        }
        if section.matcher.url.is_empty() {
            problems.error(path.key("match").key("url"), "must not be empty");
        }
        if section.matcher.methods.is_empty() {
            problems.error(path.key("match").key("methods"), "lists no method, so the rule can never match: add methods such as [\"GET\"]");
        }
        let methods: Vec<String> = section.matcher.methods.iter().map(|m| m.to_ascii_uppercase()).collect();
        specs_methods.push(methods);

        let mut authenticators = Vec::new();
        if section.authenticators.is_empty() {
            problems.error(path.key("authenticators"), "at least one authenticator is required, such as [{ handler = \"noop\" }]");
        }
        for (handler_index, handler) in section.authenticators.iter().enumerate() {
            let handler_path = path.key("authenticators").index(handler_index);
            let config_path = handler_path.key("config");
            let rule_config = handler_config(handler);
            let globals = &file.authenticators;
            let compiled = match handler.handler.as_str() {
                "anonymous" => merge_config(globals.anonymous.as_ref(), rule_config)
                    .map_err(|m| problems.error(config_path.clone(), m))
                    .ok()
                    .filter(|c: &AnonymousConfig| enabled_or_report(c.enabled, "anonymous", &handler_path, problems))
                    .map(|c| Authenticator::Anonymous { subject: c.subject.as_deref().unwrap_or("anonymous").into() }),
                "noop" => merge_config(globals.noop.as_ref(), rule_config)
                    .map_err(|m| problems.error(config_path.clone(), m))
                    .ok()
                    .filter(|c: &EnabledOnly| enabled_or_report(c.enabled, "noop", &handler_path, problems))
                    .map(|_| Authenticator::Noop),
                "unauthorized" => merge_config(globals.unauthorized.as_ref(), rule_config)
                    .map_err(|m| problems.error(config_path.clone(), m))
                    .ok()
                    .filter(|c: &EnabledOnly| enabled_or_report(c.enabled, "unauthorized", &handler_path, problems))
                    .map(|_| Authenticator::Unauthorized),
                "cookie_session" => compile_session_check("cookie_session", globals.cookie_session.as_ref(), rule_config, &config_path, problems)
                    .map(Authenticator::CookieSession),
                "bearer_token" => compile_session_check("bearer_token", globals.bearer_token.as_ref(), rule_config, &config_path, problems)
                    .map(Authenticator::BearerToken),
                "jwt" => compile_jwt(globals.jwt.as_ref(), rule_config, &config_path, &mut key_sets, problems).map(Authenticator::Jwt),
                other => {
                    problems.error(
                        handler_path.key("handler"),
                        format!("unknown authenticator {other:?}: use anonymous, noop, unauthorized, cookie_session, bearer_token or jwt"),
                    );
                    None
                }
            };
            authenticators.extend(compiled);
        }

        let authorizer = match &section.authorizer {
            None => {
                problems.error(path.key("authorizer"), "missing: every rule needs an authorizer, such as { handler = \"allow\" }");
                None
            }
            Some(handler) => compile_authorizer(handler, &file.authorizers, &path.key("authorizer"), problems),
        };

        let mut mutators = Vec::new();
        let mut owned_headers = Vec::new();
        let mut uses_captures = false;
        if section.mutators.is_empty() {
            problems.error(path.key("mutators"), "at least one mutator is required, such as [{ handler = \"noop\" }]");
        }
        for (handler_index, handler) in section.mutators.iter().enumerate() {
            let handler_path = path.key("mutators").index(handler_index);
            let config_path = handler_path.key("config");
            let rule_config = handler_config(handler);
            match handler.handler.as_str() {
                "noop" => {
                    if let Ok(config) = merge_config::<EnabledOnly>(file.mutators.noop.as_ref(), rule_config).map_err(|m| problems.error(config_path.clone(), m)) {
                        if enabled_or_report(config.enabled, "noop", &handler_path, problems) {
                            mutators.push(Mutator::Noop);
                        }
                    }
                }
                "header" => {
                    let Ok(config) = merge_config::<HeaderMutatorConfig>(file.mutators.header.as_ref(), rule_config)
                        .map_err(|m| problems.error(config_path.clone(), m))
                    else {
                        continue;
                    };
                    if !enabled_or_report(config.enabled, "header", &handler_path, problems) {
                        continue;
                    }
                    let Some(headers) = config.headers.filter(|h| !h.is_empty()) else {
                        problems.error(config_path.key("headers"), "missing: the header mutator needs headers = { \"X-User\" = \"{{ print .Subject }}\" }");
                        continue;
                    };
                    let mut templates = Vec::new();
                    for (name, source) in &headers {
                        let header_path = config_path.key("headers").key(name);
                        if !is_token(name) {
                            problems.error(header_path, format!("invalid header name {name:?}"));
                            continue;
                        }
                        if is_framing_header(name) {
                            problems.error(header_path, format!("header {name} is managed by the gateway and cannot be set by a mutator"));
                            continue;
                        }
                        if let Some(template) = compile_template(source, &header_path, problems) {
                            uses_captures |= template.uses_captures();
                            owned_headers.push(owned_header_key(name.as_bytes()));
                            templates.push(HeaderTemplate { name: name.clone(), template });
                        }
                    }
                    mutators.push(Mutator::Header(templates));
                }
                "cookie" => {
                    let Ok(config) = merge_config::<CookieMutatorConfig>(file.mutators.cookie.as_ref(), rule_config)
                        .map_err(|m| problems.error(config_path.clone(), m))
                    else {
                        continue;
                    };
                    if !enabled_or_report(config.enabled, "cookie", &handler_path, problems) {
                        continue;
                    }
                    let Some(cookies) = config.cookies.filter(|c| !c.is_empty()) else {
                        problems.error(config_path.key("cookies"), "missing: the cookie mutator needs cookies = { name = \"{{ print .Subject }}\" }");
                        continue;
                    };
                    let mut templates = Vec::new();
                    for (name, source) in &cookies {
                        let cookie_path = config_path.key("cookies").key(name);
                        if !is_token(name) {
                            problems.error(cookie_path, format!("invalid cookie name {name:?}"));
                            continue;
                        }
                        if let Some(template) = compile_template(source, &cookie_path, problems) {
                            uses_captures |= template.uses_captures();
                            templates.push((name.clone(), template));
                        }
                    }
                    mutators.push(Mutator::Cookie(templates));
                }
                "id_token" => {
                    if let Some(mutator) = compile_id_token(file.mutators.id_token.as_ref(), rule_config, &config_path, &mut signing_sets, problems) {
                        uses_captures |= mutator.claims.as_ref().is_some_and(|t| t.uses_captures());
                        owned_headers.push(owned_header_key(b"authorization"));
                        mutators.push(Mutator::IdToken(mutator));
                    }
                }
                other => problems.error(handler_path.key("handler"), format!("unknown mutator {other:?}: use noop, header, cookie or id_token")),
            }
        }
        if let Some(Authorizer::RemoteJson(remote)) = &authorizer {
            uses_captures |= remote.payload.uses_captures() || remote.headers.iter().any(|(_, t)| t.uses_captures());
            for name in &remote.forward_response_headers_to_upstream {
                owned_headers.push(owned_header_key(name.as_bytes()));
            }
        }

        let mut rule_errors = Vec::new();
        for (handler_index, handler) in section.errors.iter().enumerate() {
            let handler_path = path.key("errors").index(handler_index);
            if let Some(compiled) = compile_error_handler(&handler.handler, handler_config(handler), &file.errors, &handler_path.key("config"), problems) {
                rule_errors.push(compiled);
            }
        }

        rules.push(Rule {
            id: section.id.clone(),
            authenticators,
            authorizer: authorizer.unwrap_or(Authorizer::Deny),
            mutators,
            errors: rule_errors,
            owned_headers,
            uses_captures,
        });
    }

    // A header that any rule's mutators set is the gateway's on every route: an upstream that
    // trusts X-User from the gateway must never get a client's copy through a rule that does
    // not set it (an anonymous or noop rule on the same service). `Authorization` and
    // `Cookie` stay per rule, because other routes legitimately carry the client's.
    let mut owned_everywhere: Vec<Vec<u8>> = Vec::new();
    for rule in &rules {
        for key in &rule.owned_headers {
            if key != b"authorization" && key != b"cookie" && !owned_everywhere.contains(key) {
                owned_everywhere.push(key.clone());
            }
        }
    }
    for rule in &mut rules {
        for key in &owned_everywhere {
            if !rule.owned_headers.contains(key) {
                rule.owned_headers.push(key.clone());
            }
        }
    }

    // Rules match the host without its port (see `pattern_without_port`), so a literal port
    // in a pattern is dropped before compiling.
    let urls: Vec<String> = file.rules.iter().map(|section| pattern_without_port(&section.matcher.url)).collect();
    let specs: Vec<RuleSpec<'_>> = urls
        .iter()
        .zip(&specs_methods)
        .zip(&file.rules)
        .map(|((url, methods), section)| RuleSpec { url, methods, priority: section.priority })
        .collect();
    let matcher = match RuleMatcher::compile(strategy, &specs) {
        Ok(matcher) => matcher,
        Err(errors) => {
            for (index, error) in errors {
                problems.error(root.key("rules").index(index).key("match").key("url"), format!("invalid pattern: {error}"));
            }
            return None;
        }
    };
    for (index, section) in file.rules.iter().enumerate() {
        if matcher.needs_backtracking(index) {
            problems.warning(
                root.key("rules").index(index).key("match").key("url"),
                format!(
                    "rule {:?} uses look-around, so it is matched with a backtracking engine after the others; a URL that takes it more than {} steps is denied with 500",
                    section.id, 10_000
                ),
            );
        }
    }
    let overlaps = matcher.overlapping_pairs();
    for possible in &overlaps.possibly_overlapping {
        let (Some(a), Some(b)) = (file.rules.get(possible.first), file.rules.get(possible.second)) else { continue };
        problems.warning(
            root.key("rules").index(possible.second).key("match").key("url"),
            format!(
                "rules {:?} and {:?} may match the same request ({:?}); a request matching both is answered 500 unless one has a higher priority",
                a.id, b.id, possible.reason
            ),
        );
    }
    for &(first, second) in &overlaps.overlapping {
        let (Some(a), Some(b)) = (file.rules.get(first), file.rules.get(second)) else { continue };
        problems.error(
            root.key("rules").index(second).key("match").key("url"),
            format!(
                "rules {:?} and {:?} can match the same request: make the patterns or methods disjoint, or give one a higher priority",
                a.id, b.id
            ),
        );
    }

    let own_origins = own_origins(file);
    let mut public_keys: Vec<serde_json::Value> = Vec::new();
    for set in signing_sets.values() {
        for key in &set.public_jwks {
            if !public_keys.contains(key) {
                public_keys.push(key.clone());
            }
        }
    }
    let public_jwks = serde_json::to_vec(&serde_json::json!({ "keys": public_keys })).unwrap_or_default();
    Some(AccessPolicy { strategy, matcher, rules, errors: ErrorHandlers { fallback }, own_origins, public_jwks })
}

fn enabled_or_report(enabled: Option<bool>, name: &str, path: &FieldPath, problems: &mut Problems) -> bool {
    if is_enabled(enabled) {
        true
    } else {
        problems.error(path.key("handler"), format!("handler {name} is disabled in its global section"));
        false
    }
}

/// Headers that carry framing or routing and are always computed by the gateway.
fn is_framing_header(name: &str) -> bool {
    ["host", "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te", "trailer", "proxy-connection"]
        .iter()
        .any(|reserved| reserved.eq_ignore_ascii_case(name))
}

fn compile_authorizer(handler: &HandlerRef, globals: &AuthorizersSection, path: &FieldPath, problems: &mut Problems) -> Option<Authorizer> {
    let rule_config = handler_config(handler);
    let config_path = path.key("config");
    match handler.handler.as_str() {
        "allow" => merge_config::<EnabledOnly>(globals.allow.as_ref(), rule_config)
            .map_err(|m| problems.error(config_path.clone(), m))
            .ok()
            .filter(|c| enabled_or_report(c.enabled, "allow", path, problems))
            .map(|_| Authorizer::Allow),
        "deny" => merge_config::<EnabledOnly>(globals.deny.as_ref(), rule_config)
            .map_err(|m| problems.error(config_path.clone(), m))
            .ok()
            .filter(|c| enabled_or_report(c.enabled, "deny", path, problems))
            .map(|_| Authorizer::Deny),
        "remote_json" => {
            let config: RemoteJsonConfig =
                merge_config(globals.remote_json.as_ref(), rule_config).map_err(|m| problems.error(config_path.clone(), m)).ok()?;
            if !enabled_or_report(config.enabled, "remote_json", path, problems) {
                return None;
            }
            let Some(remote) = config.remote.as_deref() else {
                problems.error(config_path.key("remote"), "missing: the URL of the authorization service");
                return None;
            };
            let endpoint = compile_endpoint(remote, &config_path.key("remote"), problems);
            let Some(payload) = config.payload.as_deref() else {
                problems.error(config_path.key("payload"), "missing: a JSON template such as \"{\\\"subject\\\": \\\"{{ print .Subject }}\\\"}\"");
                return None;
            };
            let payload = compile_template(payload, &config_path.key("payload"), problems);
            let mut headers = Vec::new();
            for (name, source) in config.headers.iter().flatten() {
                let header_path = config_path.key("headers").key(name);
                if !is_token(name) || is_framing_header(name) {
                    problems.error(header_path, format!("invalid or reserved header name {name:?}"));
                    continue;
                }
                if let Some(template) = compile_template(source, &header_path, problems) {
                    headers.push((name.clone(), template));
                }
            }
            let forward = config
                .forward_response_headers_to_upstream
                .clone()
                .unwrap_or_default()
                .into_iter()
                .map(|name| name.to_ascii_lowercase())
                .collect();
            let timeout = config.timeout.map_or(DEFAULT_SUBREQUEST_TIMEOUT, |t| t.0);
            Some(Authorizer::RemoteJson(Arc::new(RemoteJson {
                endpoint: endpoint?,
                payload: payload?,
                headers,
                forward_response_headers_to_upstream: forward,
                timeout,
            })))
        }
        other => {
            problems.error(path.key("handler"), format!("unknown authorizer {other:?}: use allow, deny or remote_json"));
            None
        }
    }
}

/// Removes a literal `:port` from the authority of a rule's `match.url`. The port of the Host
/// header is chosen by the client and says nothing about which listener took the request,
/// while routes match hosts without it (as Kong does); if rules kept it, a client could pick
/// a port spelling that a protected rule does not cover while the route still sends the
/// request to the protected service. A port written inside `<...>` is left alone; such a
/// pattern then matches nothing, which fails closed.
pub fn pattern_without_port(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else { return url.to_owned() };
    let authority_start = scheme_end + 3;
    let rest = &url[authority_start..];
    let authority_end = authority_start + rest.find('/').unwrap_or(rest.len());
    let authority = &url[authority_start..authority_end];
    if authority.contains('<') || authority.contains('>') {
        return url.to_owned();
    }
    let host_end = if authority.starts_with('[') {
        match authority.find(']') {
            Some(close) => close + 1,
            None => return url.to_owned(),
        }
    } else {
        match authority.rfind(':') {
            Some(colon) => colon,
            None => return url.to_owned(),
        }
    };
    let port = &authority[host_end..];
    let is_port = port.strip_prefix(':').is_some_and(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()));
    if !is_port {
        return url.to_owned();
    }
    format!("{}{}", &url[..authority_start + host_end], &url[authority_end..])
}

/// The `scheme://host` origins (without port) named literally by rule URLs, lower-case.
fn own_origins(file: &ConfigFile) -> Vec<String> {
    let mut origins: Vec<String> = Vec::new();
    for rule in &file.rules {
        let url = &pattern_without_port(&rule.matcher.url);
        let Some(scheme_end) = url.find("://") else { continue };
        let after = &url[scheme_end + 3..];
        let authority_end = after.find('/').unwrap_or(after.len());
        let origin = &url[..scheme_end + 3 + authority_end];
        if origin.contains('<') || origin.contains('>') {
            continue;
        }
        let origin = origin.to_ascii_lowercase();
        if !origins.contains(&origin) {
            origins.push(origin);
        }
    }
    origins
}

fn compile_token_source(from: &Option<TokenFromConfig>, path: &FieldPath, problems: &mut Problems) -> TokenSource {
    match from {
        None => TokenSource::Default,
        Some(from) => match (&from.header, &from.query_parameter, &from.cookie) {
            (Some(header), None, None) => TokenSource::Header(header.clone()),
            (None, Some(parameter), None) => TokenSource::QueryParameter(parameter.clone()),
            (None, None, Some(cookie)) => TokenSource::Cookie(cookie.clone()),
            _ => {
                problems.error(path.clone(), "set exactly one of header, query_parameter or cookie");
                TokenSource::Default
            }
        },
    }
}

fn compile_jwt(
    global: Option<&JwtConfig>,
    rule_config: Option<&toml::Table>,
    path: &FieldPath,
    key_sets: &mut HashMap<String, Arc<JwksSource>>,
    problems: &mut Problems,
) -> Option<Arc<JwtAuthenticator>> {
    let config: JwtConfig = merge_config(global, rule_config).map_err(|m| problems.error(path.clone(), m)).ok()?;
    if !is_enabled(config.enabled) {
        problems.error(path.key("handler"), "authenticator jwt is disabled");
        return None;
    }
    let urls = config.jwks_urls.clone().unwrap_or_default();
    if urls.is_empty() {
        problems.error(path.key("jwks_urls"), "missing: list at least one key set, such as [\"file:///etc/portcullis/jwks.json\"]");
        return None;
    }
    let ttl = config.jwks_ttl.map_or(Duration::from_secs(30), |t| t.0);
    let mut sources = Vec::new();
    for (index, url) in urls.iter().enumerate() {
        if let Some(source) = key_sets.get(url) {
            sources.push(Arc::clone(source));
            continue;
        }
        match JwksSource::open(url, ttl) {
            Ok(source) => {
                key_sets.insert(url.clone(), Arc::clone(&source));
                sources.push(source);
            }
            Err(message) => problems.error(path.key("jwks_urls").index(index), message),
        }
    }
    let mut allowed_algorithms = Vec::new();
    for (index, name) in config.allowed_algorithms.clone().unwrap_or_else(|| vec!["RS256".to_owned()]).iter().enumerate() {
        match Algorithm::from_name(name) {
            Some(algorithm) => allowed_algorithms.push(algorithm),
            None => problems.error(
                path.key("allowed_algorithms").index(index),
                format!("unsupported algorithm {name:?}: use RS256, ES256 or EdDSA"),
            ),
        }
    }
    let scope_strategy = match config.scope_strategy.as_deref() {
        None | Some("none") => ScopeStrategy::None,
        Some("exact") => ScopeStrategy::Exact,
        Some("hierarchic") => ScopeStrategy::Hierarchic,
        Some("wildcard") => ScopeStrategy::Wildcard,
        Some(other) => {
            problems.error(path.key("scope_strategy"), format!("unknown scope strategy {other:?}: use none, exact, hierarchic or wildcard"));
            ScopeStrategy::None
        }
    };
    let required_scope = config.required_scope.clone().unwrap_or_default();
    if !required_scope.is_empty() && scope_strategy == ScopeStrategy::None {
        problems.error(path.key("scope_strategy"), "required_scope is set but scope_strategy is none, so scopes would not be checked: use exact, hierarchic or wildcard");
    }
    let token_source = compile_token_source(&config.token_from, &path.key("token_from"), problems);
    Some(Arc::new(JwtAuthenticator {
        sources,
        allowed_algorithms,
        claims: ClaimRules {
            trusted_issuers: config.trusted_issuers.clone().unwrap_or_default(),
            target_audience: config.target_audience.clone().unwrap_or_default(),
            required_scope,
            scope_strategy,
            leeway: config.leeway.map_or(Duration::ZERO, |l| l.0),
        },
        token_source,
    }))
}

fn compile_id_token(
    global: Option<&IdTokenConfig>,
    rule_config: Option<&toml::Table>,
    path: &FieldPath,
    signing_sets: &mut HashMap<String, Arc<KeySet>>,
    problems: &mut Problems,
) -> Option<Arc<IdTokenMutator>> {
    let config: IdTokenConfig = merge_config(global, rule_config).map_err(|m| problems.error(path.clone(), m)).ok()?;
    if !is_enabled(config.enabled) {
        problems.error(path.key("handler"), "mutator id_token is disabled");
        return None;
    }
    let Some(url) = config.jwks_url.clone() else {
        problems.error(path.key("jwks_url"), "missing: the key set whose first private key signs the tokens");
        return None;
    };
    let Some(issuer_url) = config.issuer_url.clone() else {
        problems.error(path.key("issuer_url"), "missing: the iss claim of issued tokens, such as \"https://gateway.example.com/\"");
        return None;
    };
    let keys = match signing_sets.get(&url) {
        Some(keys) => Arc::clone(keys),
        None => match crate::access::jwks::load(&url) {
            Ok(keys) => {
                let keys = Arc::new(keys);
                signing_sets.insert(url.clone(), Arc::clone(&keys));
                keys
            }
            Err(message) => {
                problems.error(path.key("jwks_url"), message);
                return None;
            }
        },
    };
    if keys.signing.is_none() {
        problems.error(path.key("jwks_url"), format!("key set {url} has no RSA or P-256 private key to sign with"));
        return None;
    }
    let claims = match config.claims.as_deref() {
        Some(source) => Some(compile_template(source, &path.key("claims"), problems)?),
        None => None,
    };
    let ttl = config.ttl.map_or(Duration::from_secs(15 * 60), |t| t.0);
    if ttl.as_secs() == 0 {
        problems.error(path.key("ttl"), "must be at least 1s");
    }
    Some(Arc::new(IdTokenMutator { keys, issuer_url, claims, ttl, cache: std::sync::Mutex::new(HashMap::new()) }))
}

#[cfg(test)]
mod tests {
    use super::pattern_without_port;

    #[test]
    fn literal_ports_leave_rule_patterns() {
        assert_eq!(pattern_without_port("http://127.0.0.1:8000/hello"), "http://127.0.0.1/hello");
        assert_eq!(pattern_without_port("https://example.com:443"), "https://example.com");
        assert_eq!(pattern_without_port("http://[::1]:8000/<**>"), "http://[::1]/<**>");
        assert_eq!(pattern_without_port("http://example.com/a:1/<**>"), "http://example.com/a:1/<**>");
        assert_eq!(pattern_without_port("http://<**>:8000/x"), "http://<**>:8000/x");
        assert_eq!(pattern_without_port("http://example.com/x"), "http://example.com/x");
    }
}
