//! Kong's routing: which service a request goes to, and what path and Host it gets there.
//!
//! A route matches when every attribute it sets (methods, hosts, headers, paths) matches.
//! Among matching routes Kong picks by a fixed priority, reproduced here by sorting one entry
//! per (route, path) at load time, so that `find` returns the first entry that matches:
//! 1. more attribute kinds set wins;
//! 2. a route whose hosts are all plain beats one with a wildcard host or no hosts;
//! 3. more header names wins;
//! 4. a regex path (`~` prefix) beats a plain prefix, then higher `regex_priority` wins;
//! 5. a longer plain prefix wins;
//! 6. the route defined first wins.
//!
//! Plain paths are byte prefixes of the normalised path, exactly as in Kong: `/hello` also
//! matches `/hello-world`. Regex paths are anchored at the start of the path.

use std::cmp::Reverse;
use std::net::SocketAddr;
use std::time::Duration;

use regex::bytes::Regex;

/// Where a service's traffic goes.
#[derive(Debug)]
pub struct Service {
    pub name: String,
    /// `Host` header sent upstream when the route does not preserve the client's host.
    pub host_header: String,
    /// Path prefix from the service URL; empty or starting with `/`.
    pub path: String,
    pub targets: Vec<Target>,
    /// Target indexes in smooth weighted round-robin order; workers walk it with a counter.
    pub schedule: Vec<usize>,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub write_timeout: Duration,
    pub retries: u32,
    /// Requests allowed in flight on one upstream connection. Above 1, bodiless GET and
    /// OPTIONS requests that are ready in the same loop iteration share a connection.
    pub pipeline_depth: usize,
}

/// Largest `pipeline_depth` a service may set.
pub const MAX_PIPELINE_DEPTH: u32 = 64;

/// One upstream address with its round-robin weight.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub weight: u32,
}

/// How one route path is compared with the request path.
#[derive(Debug)]
pub enum PathMatcher {
    Any,
    Prefix(Vec<u8>),
    Regex(Regex),
}

/// How one route host is compared with the request host.
#[derive(Debug)]
pub enum HostMatcher {
    Exact(String),
    /// `*.example.com`: the stored suffix is `.example.com`.
    WildcardPrefix(String),
    /// `example.*`: the stored prefix is `example.`.
    WildcardSuffix(String),
}

#[derive(Debug)]
pub struct Route {
    pub name: String,
    pub service: usize,
    /// Upper-case method names; empty means any method.
    pub methods: Vec<String>,
    pub hosts: Vec<HostMatcher>,
    /// Lower-case header name and accepted values (compared case-insensitively).
    pub headers: Vec<(String, Vec<String>)>,
    pub strip_path: bool,
    pub preserve_host: bool,
    /// None: no limit.
    pub max_body_bytes: Option<u64>,
    pub allow_encoded_slashes: bool,
}

/// One path of one route, in priority order.
#[derive(Debug)]
struct Entry {
    route: usize,
    path: PathMatcher,
}

/// The result of routing: the route and how many path bytes its path matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteMatch {
    pub route: usize,
    pub matched_len: usize,
}

/// What a request looks like to the router.
pub struct RouteRequest<'a> {
    pub method: &'a [u8],
    /// Host without port unless the client sent one; already validated.
    pub host: &'a [u8],
    pub path: &'a [u8],
    pub header: &'a dyn Fn(&[u8]) -> Option<&'a [u8]>,
}

#[derive(Debug, Default)]
pub struct Router {
    pub services: Vec<Service>,
    pub routes: Vec<Route>,
    entries: Vec<Entry>,
}

/// Inputs for ordering a route path, gathered before the entry is built.
pub struct RoutePaths {
    pub paths: Vec<PathMatcher>,
    pub regex_priority: i32,
}

impl Router {
    /// Builds the router; `paths[i]` belongs to `routes[i]`.
    pub fn new(services: Vec<Service>, routes: Vec<Route>, paths: Vec<RoutePaths>) -> Router {
        let mut keyed: Vec<(PriorityKey, Entry)> = Vec::new();
        for (index, (route, route_paths)) in routes.iter().zip(paths).enumerate() {
            let has_paths = !route_paths.paths.is_empty();
            let kinds = usize::from(!route.methods.is_empty())
                + usize::from(!route.hosts.is_empty())
                + usize::from(!route.headers.is_empty())
                + usize::from(has_paths);
            // As in Kong, only a route that has hosts, all of them plain, gets this bit: a
            // route without hosts does not outrank one with a wildcard host by it.
            let plain_hosts = !route.hosts.is_empty() && route.hosts.iter().all(|host| matches!(host, HostMatcher::Exact(_)));
            let mut push = |path: PathMatcher| {
                let (is_regex, prefix_len) = match &path {
                    PathMatcher::Any => (false, 0),
                    PathMatcher::Prefix(prefix) => (false, prefix.len()),
                    PathMatcher::Regex(_) => (true, 0),
                };
                let key = PriorityKey {
                    kinds: Reverse(kinds),
                    plain_hosts: Reverse(plain_hosts),
                    header_count: Reverse(route.headers.len()),
                    is_regex: Reverse(is_regex),
                    regex_priority: Reverse(if is_regex { route_paths.regex_priority } else { 0 }),
                    prefix_len: Reverse(prefix_len),
                    order: index,
                };
                keyed.push((key, Entry { route: index, path }));
            };
            if has_paths {
                for path in route_paths.paths {
                    push(path);
                }
            } else {
                push(PathMatcher::Any);
            }
        }
        keyed.sort_by(|(a, _), (b, _)| a.cmp(b));
        Router { services, routes, entries: keyed.into_iter().map(|(_, entry)| entry).collect() }
    }

    /// Returns the highest-priority route that matches, if any.
    pub fn find(&self, request: &RouteRequest<'_>) -> Option<RouteMatch> {
        for entry in &self.entries {
            let Some(route) = self.routes.get(entry.route) else { continue };
            let Some(matched_len) = path_match(&entry.path, request.path) else { continue };
            if route.strip_path && !at_segment_boundary(request.path, matched_len) {
                continue;
            }
            // Case-insensitive, as rules compare methods, so that a route and a rule never
            // disagree on a method spelled in lower case.
            if !route.methods.is_empty() && !route.methods.iter().any(|m| m.as_bytes().eq_ignore_ascii_case(request.method)) {
                continue;
            }
            if !route.hosts.is_empty() && !route.hosts.iter().any(|host| host_match(host, request.host)) {
                continue;
            }
            let headers_match = route.headers.iter().all(|(name, values)| {
                (request.header)(name.as_bytes())
                    .is_some_and(|value| values.iter().any(|v| v.as_bytes().eq_ignore_ascii_case(value)))
            });
            if !headers_match {
                continue;
            }
            return Some(RouteMatch { route: entry.route, matched_len });
        }
        None
    }
}

/// Kong's priority order, as a sort key where "less" means "tried first".
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct PriorityKey {
    kinds: Reverse<usize>,
    plain_hosts: Reverse<bool>,
    header_count: Reverse<usize>,
    is_regex: Reverse<bool>,
    regex_priority: Reverse<i32>,
    prefix_len: Reverse<usize>,
    order: usize,
}

/// True when the first `matched_len` bytes of `path` end at a segment boundary. A stripping
/// route only matches there: with `/api` stripped, `/apiadmin/users` would reach the upstream
/// as `/admin/users`, a path the rules never saw. Kong strips any byte prefix; portcullis
/// does not.
fn at_segment_boundary(path: &[u8], matched_len: usize) -> bool {
    matched_len == 0
        || matched_len >= path.len()
        || path.get(matched_len - 1) == Some(&b'/')
        || path.get(matched_len) == Some(&b'/')
}

/// Returns how many bytes of `path` the matcher consumed, or None.
fn path_match(matcher: &PathMatcher, path: &[u8]) -> Option<usize> {
    match matcher {
        PathMatcher::Any => Some(0),
        PathMatcher::Prefix(prefix) => path.starts_with(prefix).then_some(prefix.len()),
        PathMatcher::Regex(regex) => regex.find(path).filter(|m| m.start() == 0).map(|m| m.end()),
    }
}

/// Compares a route host with the request host. The request's port is ignored unless the
/// route host names one.
fn host_match(matcher: &HostMatcher, request_host: &[u8]) -> bool {
    let without_port = strip_port(request_host);
    match matcher {
        HostMatcher::Exact(host) => {
            let candidate = if host.contains(':') && !host.starts_with('[') || host.contains("]:") {
                request_host
            } else {
                without_port
            };
            candidate.eq_ignore_ascii_case(host.as_bytes())
        }
        HostMatcher::WildcardPrefix(suffix) => {
            without_port.len() > suffix.len()
                && without_port[without_port.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
        }
        HostMatcher::WildcardSuffix(prefix) => {
            without_port.len() > prefix.len() && without_port[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
        }
    }
}

/// Removes a `:port` suffix from a host, leaving IPv6 literals in brackets intact.
pub fn strip_port(host: &[u8]) -> &[u8] {
    if host.first() == Some(&b'[') {
        return match host.iter().position(|&b| b == b']') {
            Some(end) => &host[..=end],
            None => host,
        };
    }
    match host.iter().rposition(|&b| b == b':') {
        Some(colon) => &host[..colon],
        None => host,
    }
}

/// Writes the path sent upstream: the service path joined with the request path, minus the
/// matched route prefix when `strip_path` is set (Kong's `path_handling = v0`).
pub fn upstream_path(service_path: &str, request_path: &[u8], matched_len: usize, strip: bool, out: &mut Vec<u8>) {
    out.clear();
    let remaining = if strip { request_path.get(matched_len..).unwrap_or(&[]) } else { request_path };
    let service = service_path.as_bytes();
    if service.is_empty() || service == b"/" {
        if !remaining.starts_with(b"/") {
            out.push(b'/');
        }
        out.extend_from_slice(remaining);
        return;
    }
    out.extend_from_slice(service);
    if service.ends_with(b"/") && remaining.starts_with(b"/") {
        out.extend_from_slice(&remaining[1..]);
    } else {
        out.extend_from_slice(remaining);
    }
}

/// Orders target indexes by smooth weighted round-robin (the algorithm nginx uses), so that
/// heavier targets are spread out instead of bunched. Targets with weight 0 never appear.
pub fn weighted_schedule(targets: &[Target]) -> Vec<usize> {
    let weights: Vec<i64> = targets.iter().map(|t| i64::from(t.weight)).collect();
    let divisor = weights.iter().copied().filter(|&w| w > 0).fold(0, gcd);
    if divisor == 0 {
        return Vec::new();
    }
    let reduced: Vec<i64> = weights.iter().map(|w| w / divisor).collect();
    let total: i64 = reduced.iter().sum();
    // Bounded: weights are at most 65535 each and targets are few; cap the cycle anyway.
    let length = total.min(10_000) as usize;
    let mut current = vec![0i64; reduced.len()];
    let mut schedule = Vec::with_capacity(length);
    for _ in 0..length {
        let mut best = 0;
        for (index, weight) in reduced.iter().enumerate() {
            current[index] += weight;
            if current[index] > current[best] {
                best = index;
            }
        }
        current[best] -= total;
        schedule.push(best);
    }
    schedule
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(name: &str) -> Route {
        Route {
            name: name.to_owned(),
            service: 0,
            methods: Vec::new(),
            hosts: Vec::new(),
            headers: Vec::new(),
            strip_path: true,
            preserve_host: false,
            max_body_bytes: None,
            allow_encoded_slashes: false,
        }
    }

    fn prefix(p: &str) -> PathMatcher {
        PathMatcher::Prefix(p.as_bytes().to_vec())
    }

    fn find(router: &Router, method: &str, host: &str, path: &str) -> Option<String> {
        let no_headers = |_: &[u8]| None;
        let request = RouteRequest { method: method.as_bytes(), host: host.as_bytes(), path: path.as_bytes(), header: &no_headers };
        router.find(&request).map(|m| router.routes[m.route].name.clone())
    }

    #[test]
    fn longest_prefix_wins() {
        let router = Router::new(
            Vec::new(),
            vec![route("short"), route("long")],
            vec![
                RoutePaths { paths: vec![prefix("/api")], regex_priority: 0 },
                RoutePaths { paths: vec![prefix("/api/v2")], regex_priority: 0 },
            ],
        );
        assert_eq!(find(&router, "GET", "x", "/api/v2/users").as_deref(), Some("long"));
        assert_eq!(find(&router, "GET", "x", "/api/v1").as_deref(), Some("short"));
        assert_eq!(find(&router, "GET", "x", "/apix").as_deref(), None, "a stripping route matches at segment boundaries only");
        assert_eq!(find(&router, "GET", "x", "/other"), None);
    }

    #[test]
    fn more_attributes_beat_longer_prefix() {
        let mut with_method = route("with-method");
        with_method.methods = vec!["POST".to_owned()];
        let router = Router::new(
            Vec::new(),
            vec![route("long"), with_method],
            vec![
                RoutePaths { paths: vec![prefix("/a/b/c")], regex_priority: 0 },
                RoutePaths { paths: vec![prefix("/a")], regex_priority: 0 },
            ],
        );
        assert_eq!(find(&router, "POST", "x", "/a/b/c").as_deref(), Some("with-method"));
        assert_eq!(find(&router, "GET", "x", "/a/b/c").as_deref(), Some("long"));
    }

    #[test]
    fn regex_beats_prefix_and_hosts_match() {
        let mut hosted = route("hosted");
        hosted.hosts = vec![HostMatcher::WildcardPrefix(".example.com".to_owned())];
        let router = Router::new(
            Vec::new(),
            vec![route("plain"), route("regex"), hosted],
            vec![
                RoutePaths { paths: vec![prefix("/users")], regex_priority: 0 },
                RoutePaths { paths: vec![PathMatcher::Regex(Regex::new(r"^/users/\d+").unwrap())], regex_priority: 0 },
                RoutePaths { paths: vec![prefix("/")], regex_priority: 0 },
            ],
        );
        assert_eq!(find(&router, "GET", "x", "/users/42").as_deref(), Some("regex"));
        assert_eq!(find(&router, "GET", "x", "/users/me").as_deref(), Some("plain"));
        assert_eq!(find(&router, "GET", "api.example.com:8000", "/users/42").as_deref(), Some("hosted"));
        assert_eq!(find(&router, "GET", "example.com", "/x"), None);
    }

    #[test]
    fn upstream_path_follows_kong_v0() {
        let cases: &[(&str, &str, usize, bool, &str)] = &[
            ("", "/hello", 6, false, "/hello"),
            ("", "/hello", 6, true, "/"),
            ("", "/hello/x", 6, true, "/x"),
            ("/s", "/fv0/req", 4, true, "/s/req"),
            ("/s", "/fv0/req", 4, false, "/s/fv0/req"),
            ("/s/", "/fv0/req", 4, true, "/s/req"),
            ("/s", "/fv0", 4, true, "/s"),
            ("/", "/a/", 2, true, "/"),
        ];
        for &(service, request, matched, strip, expected) in cases {
            let mut out = Vec::new();
            upstream_path(service, request.as_bytes(), matched, strip, &mut out);
            assert_eq!(String::from_utf8_lossy(&out), expected, "service {service:?} request {request:?} strip {strip}");
        }
    }

    #[test]
    fn weighted_schedule_spreads_targets() {
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let targets = vec![
            Target { addr, weight: 200 },
            Target { addr, weight: 100 },
            Target { addr, weight: 0 },
        ];
        let schedule = weighted_schedule(&targets);
        assert_eq!(schedule.len(), 3);
        assert_eq!(schedule.iter().filter(|&&i| i == 0).count(), 2);
        assert_eq!(schedule.iter().filter(|&&i| i == 1).count(), 1);
        assert!(!schedule.contains(&2));
    }

    #[test]
    fn strip_port_keeps_ipv6_literals() {
        assert_eq!(strip_port(b"example.com:8000"), b"example.com");
        assert_eq!(strip_port(b"[::1]:8000"), b"[::1]");
        assert_eq!(strip_port(b"[::1]"), b"[::1]");
        assert_eq!(strip_port(b"example.com"), b"example.com");
    }
}
