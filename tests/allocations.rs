//! Checks that the per-request pieces of the plain-proxy path allocate nothing once their
//! reused storage has grown: request-head parse, route plus rule match, and serialising the
//! upstream request head. A counting global allocator records every allocation of this
//! test binary. It counts per thread, so tests running in parallel do not disturb each other.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use bytes::BytesMut;

use portcullis::access::matcher::{MatchOutcome, MatchScratch};
use portcullis::config::compile::compile_text;
use portcullis::config::Config;
use portcullis::http::RequestHead;
use portcullis::proxy::forward::{write_request_head, ForwardRequest, OutFraming};
use portcullis::proxy::router::{upstream_path, RouteMatch, RouteRequest};

// The library's counting allocator, installed as this binary's global allocator.
#[path = "../src/access/allocation_counter.rs"]
mod allocation_counter;

use allocation_counter::count_allocations;

/// Requests run before counting, so that every reused buffer has reached its size.
const WARM_UP_REQUESTS: usize = 3;

/// Requests counted after warm-up.
const COUNTED_REQUESTS: usize = 100;

/// A configuration with the shape of the load benchmark's: an anonymous rule in front of
/// one service, and a session-checked rule with the tutorial's X-User header mutator.
const CONFIG: &str = r#"
workers = 1

[proxy]
listen = ["127.0.0.1:8000"]

[access_rules]
matching_strategy = "glob"

[authenticators.cookie_session]
check_session_url = "http://127.0.0.1:4433/sessions/whoami"
preserve_path = true
only = ["ory_kratos_session"]
subject_from = "identity.id"
extra_from = "@this"

[[services]]
name = "hello"
url = "http://127.0.0.1:8090"

[[routes]]
name = "public"
service = "hello"
paths = ["/public"]
strip_path = false

[[routes]]
name = "hello"
service = "hello"
paths = ["/hello"]
strip_path = false

[[rules]]
id = "public"
match = { url = "http://127.0.0.1:8000/public<**>", methods = ["GET"] }
authenticators = [{ handler = "anonymous" }]
authorizer = { handler = "allow" }
mutators = [{ handler = "noop" }]

[[rules]]
id = "hello:protected"
match = { url = "http://127.0.0.1:8000/hello<**>", methods = ["GET"] }
authenticators = [{ handler = "cookie_session" }]
authorizer = { handler = "allow" }
mutators = [{ handler = "header", config = { headers = { "X-User" = "{{ print .Subject }}" } } }]
"#;

/// What wrk sends in the load benchmark, plus the headers of a browser.
const PUBLIC_REQUEST: &[u8] = b"GET /public/index.html?lang=en HTTP/1.1\r\n\
Host: 127.0.0.1:8000\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n\
Accept-Language: en-GB,en;q=0.7\r\n\
Accept-Encoding: gzip, deflate, br\r\n\
Connection: keep-alive\r\n\
X-Forwarded-For: 198.51.100.7\r\n\
\r\n";

const PROTECTED_REQUEST: &[u8] = b"GET /hello HTTP/1.1\r\n\
Host: 127.0.0.1:8000\r\n\
Cookie: ory_kratos_session=valid; theme=dark\r\n\
X-User: forged-by-the-client\r\n\
\r\n";

fn config() -> Arc<Config> {
    match compile_text(CONFIG, "allocations.toml", None) {
        Ok(loaded) => Arc::new(loaded.config),
        Err(errors) => panic!("invalid test configuration: {errors}"),
    }
}

/// Storage that a worker and a client connection reuse from one request to the next.
struct Warm {
    head: RequestHead,
    url: Vec<u8>,
    scratch: MatchScratch,
    upstream_path: Vec<u8>,
    out: BytesMut,
}

impl Warm {
    fn new(config: &Config) -> Warm {
        Warm {
            head: RequestHead::new(),
            url: Vec::new(),
            scratch: config.access.matcher.new_scratch(),
            upstream_path: Vec::new(),
            out: BytesMut::with_capacity(16 * 1024),
        }
    }
}

fn parse(warm: &mut Warm, config: &Config, input: &[u8]) {
    let parsed = warm.head.parse(input, &config.limits.request);
    assert_eq!(parsed, Ok(Some(input.len())));
}

/// Routes the parsed request and matches its rule, as the proxy does before the access
/// pipeline runs. Returns the route match and the rule index.
fn route_and_rule(warm: &mut Warm, config: &Config) -> (RouteMatch, usize) {
    let head = &warm.head;
    let host = head.host().unwrap_or(b"");
    let header = |name: &[u8]| head.header(name);
    let request = RouteRequest { method: head.method_bytes(), host, path: head.path(), header: &header };
    let Some(route) = config.router.find(&request) else {
        panic!("request matched no route");
    };

    warm.url.clear();
    warm.url.extend_from_slice(b"http://");
    // Rules see the host without its port, as the client connection builds it.
    warm.url.extend(portcullis::proxy::router::strip_port(host).iter().map(u8::to_ascii_lowercase));
    warm.url.extend_from_slice(head.path());
    match config.access.matcher.find(head.method_bytes(), &warm.url, &mut warm.scratch) {
        MatchOutcome::Matched(rule) => (route, rule),
        other => panic!("request matches one rule, got {other:?}"),
    }
}

/// Serialises the upstream request head, as the exchange does for a granted request.
fn write_upstream_head(warm: &mut Warm, config: &Config, route: RouteMatch, rule: usize, grant_headers: &[(String, String)]) {
    let Some(route_config) = config.router.routes.get(route.route) else {
        panic!("route {} not found", route.route);
    };
    let Some(service) = config.router.services.get(route_config.service) else {
        panic!("service {} not found", route_config.service);
    };
    let owned = config.access.rules.get(rule).map_or(&[][..], |rule| &rule.owned_headers[..]);
    upstream_path(&service.path, warm.head.path(), route.matched_len, route_config.strip_path, &mut warm.upstream_path);
    warm.out.clear();
    let forward = ForwardRequest {
        head: &warm.head,
        path: &warm.upstream_path,
        query: warm.head.query(),
        host: service.host_header.as_bytes(),
        client_host: warm.head.host().unwrap_or(b""),
        scheme: "http",
        peer_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        local_port: 8000,
        trusted_peer: false,
        owned,
        headers: grant_headers,
        cookies: &[],
        framing: OutFraming::None,
    };
    write_request_head(&mut warm.out, &forward);
}

/// Runs all three pieces for one request.
fn handle(warm: &mut Warm, config: &Config, input: &[u8], grant_headers: &[(String, String)]) {
    parse(warm, config, input);
    let (route, rule) = route_and_rule(warm, config);
    write_upstream_head(warm, config, route, rule, grant_headers);
}

fn x_user() -> Vec<(String, String)> {
    vec![("X-User".to_owned(), "9d1e6a52-4b0c-4f87-8e3a-2b7c5d9f0a14".to_owned())]
}

#[test]
fn head_parse_warm_allocates_nothing() {
    let config = config();
    let mut warm = Warm::new(&config);
    for input in [PUBLIC_REQUEST, PROTECTED_REQUEST] {
        for _ in 0..WARM_UP_REQUESTS {
            parse(&mut warm, &config, input);
        }
    }
    let (count, ()) = count_allocations(|| {
        for _ in 0..COUNTED_REQUESTS {
            parse(&mut warm, &config, PUBLIC_REQUEST);
            parse(&mut warm, &config, PROTECTED_REQUEST);
        }
    });
    assert_eq!(count, 0, "allocations in {} head parses", 2 * COUNTED_REQUESTS);
}

#[test]
fn head_parse_cold_allocates() {
    let config = config();
    let mut warm = Warm::new(&config);
    let (count, ()) = count_allocations(|| parse(&mut warm, &config, PUBLIC_REQUEST));
    assert!(count > 0, "a new head grows its storage on the first parse");
}

#[test]
fn route_and_rule_warm_allocates_nothing() {
    let config = config();
    let mut warm = Warm::new(&config);
    for _ in 0..WARM_UP_REQUESTS {
        for input in [PUBLIC_REQUEST, PROTECTED_REQUEST] {
            parse(&mut warm, &config, input);
            route_and_rule(&mut warm, &config);
        }
    }
    let mut counted = 0;
    for input in [PUBLIC_REQUEST, PROTECTED_REQUEST] {
        parse(&mut warm, &config, input);
        let (count, ()) = count_allocations(|| {
            for _ in 0..COUNTED_REQUESTS {
                route_and_rule(&mut warm, &config);
            }
        });
        counted += count;
    }
    assert_eq!(counted, 0, "allocations in {} route and rule matches", 2 * COUNTED_REQUESTS);
}

#[test]
fn upstream_head_warm_allocates_nothing() {
    let config = config();
    let grant_headers = x_user();
    let mut warm = Warm::new(&config);
    let mut routed = Vec::new();
    for (input, headers) in [(PUBLIC_REQUEST, &[][..]), (PROTECTED_REQUEST, &grant_headers[..])] {
        parse(&mut warm, &config, input);
        let (route, rule) = route_and_rule(&mut warm, &config);
        routed.push((route, rule));
        for _ in 0..WARM_UP_REQUESTS {
            write_upstream_head(&mut warm, &config, route, rule, headers);
        }
    }

    let mut counted = 0;
    for ((input, headers), (route, rule)) in [(PUBLIC_REQUEST, &[][..]), (PROTECTED_REQUEST, &grant_headers[..])].into_iter().zip(routed) {
        parse(&mut warm, &config, input);
        let (count, ()) = count_allocations(|| {
            for _ in 0..COUNTED_REQUESTS {
                write_upstream_head(&mut warm, &config, route, rule, headers);
            }
        });
        counted += count;
    }
    assert_eq!(counted, 0, "allocations in {} upstream head writes", 2 * COUNTED_REQUESTS);
}

#[test]
fn upstream_head_replaces_owned_headers() {
    let config = config();
    let grant_headers = x_user();
    let mut warm = Warm::new(&config);
    handle(&mut warm, &config, PROTECTED_REQUEST, &grant_headers);
    let written = String::from_utf8_lossy(&warm.out).into_owned();
    assert!(written.starts_with("GET /hello HTTP/1.1\r\nHost: 127.0.0.1:8090\r\n"), "{written}");
    assert!(written.contains("\r\nX-User: 9d1e6a52-4b0c-4f87-8e3a-2b7c5d9f0a14\r\n"), "{written}");
    assert!(!written.contains("forged-by-the-client"), "{written}");
}

#[test]
fn whole_plain_proxy_path_allocates_nothing() {
    let config = config();
    let grant_headers = x_user();
    let mut warm = Warm::new(&config);
    for _ in 0..WARM_UP_REQUESTS {
        handle(&mut warm, &config, PUBLIC_REQUEST, &[]);
        handle(&mut warm, &config, PROTECTED_REQUEST, &grant_headers);
    }
    let (count, ()) = count_allocations(|| {
        for _ in 0..COUNTED_REQUESTS {
            handle(&mut warm, &config, PUBLIC_REQUEST, &[]);
            handle(&mut warm, &config, PROTECTED_REQUEST, &grant_headers);
        }
    });
    assert_eq!(count, 0, "allocations in {} requests", 2 * COUNTED_REQUESTS);
}

#[test]
fn counter_sees_allocations() {
    let (count, boxed) = count_allocations(|| Box::new(7_u64));
    assert_eq!(count, 1);
    assert_eq!(*boxed, 7);
}

/// A read never grows a buffer that still has room, even when the caller's limit (a 64 KiB
/// whoami response, a head of up to `max_head_bytes`) is larger than the buffer. Growing a
/// pooled buffer to the limit on every read reallocates and copies it, and a grown buffer is
/// too large to go back to the pool.
#[test]
fn socket_reads_into_pooled_buffers_allocate_nothing() {
    use std::io::Write;

    use portcullis::proxy::socket::{Readiness, Stream};
    use portcullis::reactor::buffers::{BufferPool, BUFFER_BYTES};

    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback listener");
    let mut writer = std::net::TcpStream::connect(listener.local_addr().expect("local address")).expect("connect");
    let (accepted, _) = listener.accept().expect("accept");
    accepted.set_nonblocking(true).expect("non-blocking");
    let mut stream = Stream::plain(mio::net::TcpStream::from_std(accepted));
    let mut pool = BufferPool::default();
    let message = [b'x'; 1500];

    let mut allocations = 0;
    for limit in [BUFFER_BYTES, BUFFER_BYTES + 1, 4 * BUFFER_BYTES, 64 * BUFFER_BYTES] {
        for _ in 0..COUNTED_REQUESTS {
            writer.write_all(&message).expect("write to the loopback peer");
            // A fresh buffer from the pool each time, as every new connection gets one.
            let mut buffer = BytesMut::new();
            pool.ensure(&mut buffer);
            let (count, ()) = count_allocations(|| {
                // Loopback delivers a write before it returns, so a few reads see all of it;
                // the bound only keeps a broken read from spinning forever.
                for _ in 0..1000 {
                    if buffer.len() >= message.len() {
                        break;
                    }
                    stream.on_event(Readiness { readable: true, writable: false, read_closed: false });
                    stream.read(&mut buffer, limit).expect("read from the loopback peer");
                }
            });
            assert_eq!(buffer.len(), message.len());
            allocations += count;
        }
    }
    assert_eq!(allocations, 0, "allocations in {} reads", 4 * COUNTED_REQUESTS);
}
