//! Measures picking the route and the access rule for one request, as the proxy does per
//! request: Kong's router (`proxy::router`) over 10 and 1,000 routes, then building the rule
//! URL and matching it with `RuleMatcher` over as many rules, in the glob and regexp
//! strategies. The request always hits the route and rule tried last, so a linear scan is at
//! its worst. Throughput is in requests (elements).

use std::net::SocketAddr;
use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

use portcullis::access::matcher::{MatchOutcome, MatchingStrategy, RuleMatcher, RuleSpec};
use portcullis::proxy::router::{
    PathMatcher, Route, RoutePaths, RouteRequest, Router, Service, Target,
};

/// Route and rule counts compared.
const COUNTS: [usize; 2] = [10, 1000];

/// Host every route and rule is written for.
const HOST: &[u8] = b"api.example.com";

fn service(index: usize) -> Service {
    let addr = SocketAddr::from(([127, 0, 0, 1], 8090));
    Service {
        name: format!("service{index:04}"),
        host_header: "127.0.0.1:8090".to_owned(),
        path: String::new(),
        targets: vec![Target { addr, weight: 100 }],
        schedule: vec![0],
        connect_timeout: Duration::from_secs(60),
        read_timeout: Duration::from_secs(60),
        write_timeout: Duration::from_secs(60),
        retries: 5,
        pipeline_depth: 1,
    }
}

/// `count` routes with prefixes `/service0000` ... of equal length, so they are tried in
/// definition order and the last one is tried last.
fn router(count: usize, regex_paths: bool) -> Router {
    let services = (0..count).map(service).collect();
    let routes = (0..count)
        .map(|index| Route {
            name: format!("route{index:04}"),
            service: index,
            methods: vec!["GET".to_owned(), "POST".to_owned()],
            hosts: Vec::new(),
            headers: Vec::new(),
            strip_path: false,
            preserve_host: false,
            max_body_bytes: None,
            allow_encoded_slashes: false,
        })
        .collect();
    let paths = (0..count)
        .map(|index| {
            let path = if regex_paths {
                let Ok(regex) = regex::bytes::Regex::new(&format!(r"^/service{index:04}/users/\d+")) else {
                    panic!("invalid benchmark route regex");
                };
                PathMatcher::Regex(regex)
            } else {
                PathMatcher::Prefix(format!("/service{index:04}").into_bytes())
            };
            RoutePaths { paths: vec![path], regex_priority: 0 }
        })
        .collect();
    Router::new(services, routes, paths)
}

fn rule_urls(strategy: MatchingStrategy, count: usize) -> Vec<String> {
    (0..count)
        .map(|index| match strategy {
            MatchingStrategy::Regexp => {
                format!("http://api.example.com/service{index:04}/<[^/]+>/<.*>")
            }
            MatchingStrategy::Glob => format!("http://api.example.com/service{index:04}/<*>/<**>"),
        })
        .collect()
}

fn matcher(strategy: MatchingStrategy, count: usize, methods: &[String]) -> RuleMatcher {
    let urls = rule_urls(strategy, count);
    let specs: Vec<RuleSpec<'_>> = urls
        .iter()
        .map(|url| RuleSpec { url, methods, priority: None })
        .collect();
    let Ok(matcher) = RuleMatcher::compile(strategy, &specs) else {
        panic!("invalid benchmark rules");
    };
    matcher
}

/// Writes the URL that rules match, `scheme://host/path` with the host in lower case, into
/// a reused buffer, as the proxy does.
fn rule_url(url: &mut Vec<u8>, host: &[u8], path: &[u8]) {
    url.clear();
    url.extend_from_slice(b"http://");
    url.extend(host.iter().map(u8::to_ascii_lowercase));
    url.extend_from_slice(path);
}

fn bench_router(c: &mut Criterion) {
    let mut group = c.benchmark_group("route_find");
    group.throughput(Throughput::Elements(1));
    for (kind, regex_paths) in [("prefix", false), ("regex", true)] {
        for count in COUNTS {
            let router = router(count, regex_paths);
            let path = format!("/service{:04}/users/42/profile", count - 1);
            let no_header = |_: &[u8]| None;
            let request = RouteRequest {
                method: b"GET",
                host: HOST,
                path: path.as_bytes(),
                header: &no_header,
            };
            let found = router.find(&request).map(|found| found.route);
            assert_eq!(found, Some(count - 1), "{kind} {count} routes the last route");
            group.bench_with_input(BenchmarkId::new(kind, count), &request, |b, request| {
                b.iter(|| router.find(black_box(request)))
            });
        }
    }
    group.finish();
}

fn bench_route_and_rule(c: &mut Criterion) {
    let methods = vec!["GET".to_owned(), "POST".to_owned()];
    let mut group = c.benchmark_group("route_and_rule");
    group.throughput(Throughput::Elements(1));
    for strategy in [MatchingStrategy::Glob, MatchingStrategy::Regexp] {
        for count in COUNTS {
            let router = router(count, false);
            let matcher = matcher(strategy, count, &methods);
            let mut scratch = matcher.new_scratch();
            let mut url = Vec::with_capacity(256);
            let path = format!("/service{:04}/users/42/profile", count - 1);
            let no_header = |_: &[u8]| None;
            let request = RouteRequest {
                method: b"GET",
                host: HOST,
                path: path.as_bytes(),
                header: &no_header,
            };
            rule_url(&mut url, HOST, path.as_bytes());
            let routed = router.find(&request).map(|found| found.route);
            assert_eq!(routed, Some(count - 1), "{strategy:?} {count} routes the last route");
            assert_eq!(
                matcher.find(b"GET", &url, &mut scratch),
                MatchOutcome::Matched(count - 1),
                "{strategy:?} {count} matches the last rule"
            );

            let id = BenchmarkId::new(format!("{strategy:?}").to_lowercase(), count);
            group.bench_with_input(id, &request, |b, request| {
                b.iter(|| {
                    let route = router.find(black_box(request));
                    rule_url(&mut url, request.host, request.path);
                    (route, matcher.find(request.method, &url, &mut scratch))
                })
            });
        }
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(50)
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_router, bench_route_and_rule
}
criterion_main!(benches);
