//! End-to-end tests of the tutorial setup: the real `portcullis` binary on loopback in front
//! of stand-in upstreams and a Kratos stand-in that answers with Kratos's response shapes.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use support::{free_port, rss_kib, tutorial_config, Client, Gateway, Kratos, KratosMode, Reply, StreamFraming, Upstream};

const IDENTITY: &str = "9d1e6a52-4b0c-4f87-8e3a-2b7c5d9f0a14";

/// A gateway with the tutorial configuration, its two upstreams and Kratos.
struct Tutorial {
    gateway: Gateway,
    kratos: Kratos,
    hello: Upstream,
    world: Upstream,
}

impl Tutorial {
    fn start() -> Tutorial {
        Tutorial::start_with(|config| config)
    }

    fn start_with(edit: impl FnOnce(String) -> String) -> Tutorial {
        let kratos = Kratos::start();
        kratos.add_session("valid-session", IDENTITY);
        let hello = Upstream::start("hello");
        let world = Upstream::start("world");
        let proxy: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let config = edit(tutorial_config(proxy, &kratos, &hello, &world));
        let gateway = Gateway::start(&config);
        Tutorial { gateway, kratos, hello, world }
    }

    fn addr(&self) -> SocketAddr {
        self.gateway.addr()
    }

    fn get(&self, path: &str, extra_headers: &str) -> support::Response {
        let raw = format!("GET {path} HTTP/1.1\r\nHost: {}\r\n{extra_headers}Connection: close\r\n\r\n", self.addr());
        support::request(self.addr(), raw.as_bytes())
    }
}

const SESSION_COOKIE: &str = "Cookie: ory_kratos_session=valid-session\r\n";

#[test]
fn valid_session_reaches_upstream_with_identity() {
    let setup = Tutorial::start();
    let response = setup.get("/hello", SESSION_COOKIE);
    assert_eq!(response.status, 200, "body: {}", response.text());
    assert_eq!(response.json()["service"], "hello");

    let received = setup.hello.last_request().expect("upstream received the request");
    assert_eq!(received.target, "/hello");
    assert_eq!(received.header("X-User"), Some(IDENTITY));
    assert_eq!(received.header("X-Forwarded-For"), Some("127.0.0.1"));
    assert_eq!(received.header("X-Forwarded-Proto"), Some("http"));
    assert_eq!(received.header("X-Forwarded-Host").map(str::to_owned), Some(setup.addr().to_string()));
    assert!(received.header("Connection").is_none(), "hop-by-hop header forwarded");

    let whoami = setup.kratos.requests();
    assert_eq!(whoami.len(), 1);
    assert_eq!(whoami[0].target, "/sessions/whoami");
    assert_eq!(whoami[0].header("Cookie"), Some("ory_kratos_session=valid-session"));
}

#[test]
fn world_route_goes_to_world_service() {
    let setup = Tutorial::start();
    let response = setup.get("/world", SESSION_COOKIE);
    assert_eq!(response.status, 200);
    assert_eq!(response.json()["service"], "world");
    assert_eq!(setup.world.request_count(), 1);
    assert_eq!(setup.hello.request_count(), 0);
}

#[test]
fn browser_without_session_is_redirected_to_login() {
    let setup = Tutorial::start();
    let response = setup.get("/hello", "Accept: text/html,application/xhtml+xml\r\n");
    assert_eq!(response.status, 302);
    assert_eq!(response.header("Location"), Some("http://127.0.0.1:4455/login"));
    assert_eq!(setup.hello.request_count(), 0);
}

#[test]
fn api_client_without_session_gets_json_401() {
    let setup = Tutorial::start();
    let response = setup.get("/hello", "Accept: application/json\r\n");
    assert_eq!(response.status, 401);
    assert_eq!(response.header("Content-Type"), Some("application/json"));
    let body = response.json();
    assert_eq!(body["error"]["code"], 401);
    assert_eq!(body["error"]["status"], "Unauthorized");
    assert_eq!(setup.hello.request_count(), 0);
    assert_eq!(setup.kratos.request_count(), 0, "no cookie means cookie_session is not responsible");
}

#[test]
fn unknown_session_gets_401_after_whoami() {
    let setup = Tutorial::start();
    let response = setup.get("/hello", "Cookie: ory_kratos_session=forged\r\n");
    assert_eq!(response.status, 401);
    assert_eq!(setup.kratos.request_count(), 1);
    assert_eq!(setup.hello.request_count(), 0);
}

#[test]
fn client_identity_header_never_reaches_upstream() {
    let setup = Tutorial::start();
    let spoofed = "X-User: admin\r\nx-user: admin2\r\nX_User: admin3\r\nX.User: admin4\r\n";
    let response = setup.get("/hello", &format!("{SESSION_COOKIE}{spoofed}"));
    assert_eq!(response.status, 200);
    let received = setup.hello.last_request().unwrap();
    let values = received.header_all("X-User");
    assert_eq!(values, vec![IDENTITY], "only the gateway's X-User may arrive");
    assert!(received.header("X_User").is_none());
    assert!(received.header("X.User").is_none());
}

#[test]
fn anonymous_rule_still_strips_owned_header() {
    let setup = Tutorial::start_with(|config| {
        config.replace(
            "authenticators = [{ handler = \"cookie_session\" }]\nauthorizer = { handler = \"allow\" }\nmutators = [{ handler = \"header\", config = { headers = { \"X-User\" = \"{{ print .Subject }}\" } } }]\nerrors = [{ handler = \"redirect\" }]\n\n[[rules]]\nid = \"world:protected\"",
            "authenticators = [{ handler = \"anonymous\" }]\nauthorizer = { handler = \"allow\" }\nmutators = [{ handler = \"header\", config = { headers = { \"X-User\" = \"{{ print .Subject }}\" } } }]\nerrors = [{ handler = \"redirect\" }]\n\n[[rules]]\nid = \"world:protected\"",
        )
    });
    let response = setup.get("/hello", "X-User: admin\r\n");
    assert_eq!(response.status, 200);
    let received = setup.hello.last_request().unwrap();
    assert_eq!(received.header_all("X-User"), vec!["anonymous"]);
    assert_eq!(setup.kratos.request_count(), 0);
}

#[test]
fn kratos_down_denies_and_upstream_sees_nothing() {
    let mut setup = Tutorial::start();
    setup.kratos.stop();
    let response = setup.get("/hello", SESSION_COOKIE);
    assert!(response.status == 502 || response.status == 503, "status {}", response.status);
    assert_eq!(response.json()["error"]["code"], response.status);
    assert_eq!(setup.hello.request_count(), 0);
}

#[test]
fn kratos_timeout_denies_with_503() {
    let setup = Tutorial::start_with(|config| config.replace("extra_from = \"@this\"", "extra_from = \"@this\"\ntimeout = \"300ms\""));
    setup.kratos.set_mode(KratosMode::Hang);
    let started = std::time::Instant::now();
    let response = setup.get("/hello", SESSION_COOKIE);
    assert_eq!(response.status, 503);
    assert!(started.elapsed() < Duration::from_secs(5), "timed out after {:?}", started.elapsed());
    assert_eq!(setup.hello.request_count(), 0);
}

#[test]
fn kratos_wrong_answers_deny() {
    let setup = Tutorial::start();
    for mode in [KratosMode::Status(500, "{}".into()), KratosMode::InvalidJson, KratosMode::Status(200, "[]".into())] {
        setup.kratos.set_mode(mode.clone());
        let response = setup.get("/hello", SESSION_COOKIE);
        assert_eq!(response.status, 502, "mode {mode:?}");
    }
    setup.kratos.set_mode(KratosMode::Aal2Required);
    let response = setup.get("/hello", SESSION_COOKIE);
    assert_eq!(response.status, 403);
    assert_eq!(setup.hello.request_count(), 0);
}

#[test]
fn upstream_down_gives_502() {
    let mut setup = Tutorial::start();
    setup.hello.stop();
    let response = setup.get("/hello", SESSION_COOKIE);
    assert_eq!(response.status, 502);
    assert_eq!(response.header("Content-Type"), Some("application/json"));
}

#[test]
fn upstream_timeout_gives_504() {
    let setup = Tutorial::start_with(|config| config.replace("name = \"hello\"\nurl", "name = \"hello\"\nread_timeout = 300\nurl"));
    setup.hello.set_reply(Reply::delayed(Duration::from_secs(3), Reply::Default));
    let response = setup.get("/hello", SESSION_COOKIE);
    assert_eq!(response.status, 504);
}

#[test]
fn no_rule_matched_gives_404() {
    let setup = Tutorial::start();
    let response = setup.get("/hello/other", SESSION_COOKIE);
    assert_eq!(response.status, 404);
    assert_eq!(response.json()["error"]["code"], 404);
    let response = setup.get("/nowhere", SESSION_COOKIE);
    assert_eq!(response.status, 404);
    assert_eq!(setup.hello.request_count(), 0);
    assert_eq!(setup.kratos.request_count(), 0);
}

/// A configuration where every path under /up is anonymous and POST is allowed, for body
/// tests.
fn open_config(edit: &str) -> impl FnOnce(String) -> String + '_ {
    move |config: String| {
        let mut config = config.replace(
            "[[routes]]\nname = \"hello\"",
            &format!("[[routes]]\nname = \"up\"\nservice = \"hello\"\npaths = [\"/up\"]\nstrip_path = false\n{edit}\n\n[[routes]]\nname = \"hello\""),
        );
        config.push_str(
            "\n[[rules]]\nid = \"up:open\"\nmatch = { url = \"http://<**>/up<**>\", methods = [\"GET\", \"POST\", \"PUT\", \"HEAD\"] }\nauthenticators = [{ handler = \"anonymous\" }]\nauthorizer = { handler = \"allow\" }\nmutators = [{ handler = \"noop\" }]\n",
        );
        config
    }
}

#[test]
fn chunked_request_body_arrives_intact() {
    let setup = Tutorial::start_with(open_config(""));
    setup.hello.set_reply(Reply::Echo);
    let mut client = Client::connect(setup.addr());
    let head = format!("POST /up/echo HTTP/1.1\r\nHost: {}\r\nTransfer-Encoding: chunked\r\n\r\n", setup.addr());
    client.send(head.as_bytes());
    client.send(b"5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: dropped\r\n\r\n");
    let response = client.read_response();
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"hello, world");
    let received = setup.hello.last_request().unwrap();
    assert_eq!(received.body, b"hello, world");
    assert!(received.trailers.is_empty(), "trailers must not be forwarded");
}

#[test]
fn eight_mib_body_arrives_intact() {
    let setup = Tutorial::start_with(open_config("max_body_bytes = 16777216"));
    setup.hello.set_reply(Reply::Echo);
    let body: Vec<u8> = (0..8 * 1024 * 1024).map(|i: u32| (i % 251) as u8).collect();
    let mut client = Client::connect(setup.addr());
    let head = format!("PUT /up/big HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n\r\n", setup.addr(), body.len());
    client.send(head.as_bytes());
    client.send(&body);
    let response = client.read_response();
    assert_eq!(response.status, 200);
    assert_eq!(response.body.len(), body.len());
    assert!(response.body == body, "echoed body differs");
    let received = setup.hello.last_request().unwrap();
    assert_eq!(received.body_length, body.len() as u64);
}

#[test]
fn body_over_route_limit_gets_413() {
    let setup = Tutorial::start_with(open_config("max_body_bytes = 1000"));
    let mut client = Client::connect(setup.addr());
    let head = format!("POST /up/x HTTP/1.1\r\nHost: {}\r\nContent-Length: 5000\r\n\r\n", setup.addr());
    client.send(head.as_bytes());
    let response = client.read_response();
    assert_eq!(response.status, 413);
    assert_eq!(setup.hello.request_count(), 0);
}

#[test]
fn thousand_keepalive_requests_on_one_connection() {
    let setup = Tutorial::start();
    let mut client = Client::connect(setup.addr());
    for index in 0..1000 {
        let raw = format!("GET /hello HTTP/1.1\r\nHost: {}\r\n{SESSION_COOKIE}\r\n", setup.addr());
        client.send(raw.as_bytes());
        let response = client.read_response();
        assert_eq!(response.status, 200, "request {index}");
    }
    assert_eq!(setup.hello.request_count(), 1000);
    assert!(setup.hello.connection_count() <= 2, "upstream connections were not reused: {}", setup.hello.connection_count());
    assert!(setup.kratos.connection_count() <= 2, "whoami connections were not reused: {}", setup.kratos.connection_count());
}

#[test]
fn last_allowed_request_announces_close() {
    let setup = Tutorial::start_with(|config| format!("[limits]\nmax_requests_per_connection = 2\n\n{config}"));
    for (cookie, status) in [(SESSION_COOKIE, 200), ("", 401)] {
        let mut client = Client::connect(setup.addr());
        let raw = format!("GET /hello HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\n{cookie}\r\n", setup.addr());
        client.send(raw.as_bytes());
        let first = client.read_response();
        assert_eq!(first.status, status);
        assert_eq!(first.header("Connection"), None, "first response, status {status}");
        client.send(raw.as_bytes());
        let last = client.read_response();
        assert_eq!(last.status, status);
        assert_eq!(last.header("Connection"), Some("close"), "last allowed response, status {status}");
        assert!(client.is_closed(), "connection closes after the last allowed request, status {status}");
    }
}

#[test]
fn concurrent_connections_spread_over_workers() {
    let setup = Tutorial::start_with(|config| format!("workers = 2\n{config}"));
    let addr = setup.addr();
    let threads: Vec<_> = (0..200)
        .map(|_| {
            std::thread::spawn(move || {
                let mut stream = TcpStream::connect(addr).unwrap();
                stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                let raw = format!("GET /hello HTTP/1.1\r\nHost: {addr}\r\n{SESSION_COOKIE}Connection: close\r\n\r\n");
                stream.write_all(raw.as_bytes()).unwrap();
                let mut response = Vec::new();
                stream.read_to_end(&mut response).unwrap();
                String::from_utf8_lossy(&response).starts_with("HTTP/1.1 200")
            })
        })
        .collect();
    let ok = threads.into_iter().map(|t| t.join().unwrap()).filter(|&ok| ok).count();
    assert_eq!(ok, 200);
    let log = setup.gateway.stderr();
    assert!(log.contains("connection accepted worker=0"), "worker 0 accepted nothing");
    assert!(log.contains("connection accepted worker=1"), "worker 1 accepted nothing");
}

#[test]
fn http10_client_is_served_and_closed() {
    let setup = Tutorial::start();
    let raw = format!("GET /hello HTTP/1.0\r\nHost: {}\r\n{SESSION_COOKIE}\r\n", setup.addr());
    let response = support::request(setup.addr(), raw.as_bytes());
    assert_eq!(response.status, 200);
    assert_eq!(response.json()["service"], "hello");
}

#[test]
fn head_and_bodiless_statuses_carry_no_body() {
    let setup = Tutorial::start_with(open_config(""));
    let mut client = Client::connect(setup.addr());
    client.send(format!("HEAD /up/x HTTP/1.1\r\nHost: {}\r\n\r\n", setup.addr()).as_bytes());
    let response = client.read_response_to_head();
    assert_eq!(response.status, 200);
    assert!(response.body.is_empty());
    for status in [204u16, 304] {
        setup.hello.set_reply(Reply::Fixed { status, headers: Vec::new(), body: Vec::new() });
        client.send(format!("GET /up/x HTTP/1.1\r\nHost: {}\r\n\r\n", setup.addr()).as_bytes());
        let response = client.read_response();
        assert_eq!(response.status, status);
        assert!(response.body.is_empty());
    }
    // An upstream 204 that wrongly declares a length is passed on without it, because a 204
    // must not carry Content-Length. A 304 keeps the length of the representation.
    for (status, keeps_length) in [(204u16, false), (304, true)] {
        let head = format!("HTTP/1.1 {status} X\r\nContent-Length: 10\r\nX-Case: {status}\r\n\r\n");
        setup.hello.set_reply(Reply::Raw { bytes: head.into_bytes(), close: false });
        client.send(format!("GET /up/x HTTP/1.1\r\nHost: {}\r\n\r\n", setup.addr()).as_bytes());
        let response = client.read_response_to_head();
        assert_eq!(response.status, status);
        assert_eq!(response.header("X-Case"), Some(status.to_string().as_str()));
        assert_eq!(response.header("Content-Length").is_some(), keeps_length, "{status}: Content-Length {:?}", response.header("Content-Length"));
        assert!(response.body.is_empty());
    }
    // The connection is still in step: one more normal request works.
    setup.hello.set_reply(Reply::Default);
    client.send(format!("GET /up/y HTTP/1.1\r\nHost: {}\r\n\r\n", setup.addr()).as_bytes());
    assert_eq!(client.read_response().status, 200);
}

#[test]
fn interim_responses_forwarded_except_100() {
    let setup = Tutorial::start_with(open_config(""));
    let interim_then_ok = b"HTTP/1.1 100 Continue\r\n\r\n\
        HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\nConnection: x-hop\r\nX-Hop: 1\r\n\r\n\
        HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    setup.hello.set_reply(Reply::Raw { bytes: interim_then_ok.to_vec(), close: false });

    let mut client = Client::connect(setup.addr());
    client.send(format!("GET /up/hints HTTP/1.1\r\nHost: {}\r\n\r\n", setup.addr()).as_bytes());
    let hints = client.read_response();
    assert_eq!(hints.status, 103);
    assert_eq!(hints.header("Link"), Some("</style.css>; rel=preload"));
    assert_eq!(hints.header("X-Hop"), None, "a field that Connection names is hop-by-hop");
    let response = client.read_response();
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"ok");

    // An HTTP/1.0 client must not receive interim responses.
    let raw = format!("GET /up/hints HTTP/1.0\r\nHost: {}\r\n\r\n", setup.addr());
    let response = support::request(setup.addr(), raw.as_bytes());
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"ok");
}

#[test]
fn chunked_and_close_delimited_responses_are_reframed() {
    let setup = Tutorial::start_with(open_config(""));
    setup.hello.set_reply(Reply::Chunked {
        status: 200,
        headers: Vec::new(),
        chunks: vec![b"abc".to_vec(), b"defg".to_vec()],
        trailers: vec![("X-Checksum".into(), "1".into())],
    });
    let mut client = Client::connect(setup.addr());
    client.send(format!("GET /up/c HTTP/1.1\r\nHost: {}\r\n\r\n", setup.addr()).as_bytes());
    let response = client.read_response();
    assert_eq!(response.body, b"abcdefg");
    assert!(response.trailers.is_empty());

    setup.hello.set_reply(Reply::Stream { length_bytes: 100_000, framing: StreamFraming::CloseDelimited });
    client.send(format!("GET /up/d HTTP/1.1\r\nHost: {}\r\n\r\n", setup.addr()).as_bytes());
    let response = client.read_response();
    assert_eq!(response.header("Transfer-Encoding"), Some("chunked"));
    assert_eq!(response.body.len(), 100_000);
    assert!(response.body.iter().enumerate().all(|(i, &b)| b == support::stream_byte(i as u64)));
    // Re-framed as chunked, the client connection stays usable.
    setup.hello.set_reply(Reply::Default);
    client.send(format!("GET /up/e HTTP/1.1\r\nHost: {}\r\n\r\n", setup.addr()).as_bytes());
    assert_eq!(client.read_response().status, 200);
}

#[test]
fn gigabyte_transfers_keep_memory_flat() {
    const GIB: u64 = 1024 * 1024 * 1024;
    let setup = Tutorial::start_with(open_config("max_body_bytes = 0"));
    let pid = setup.gateway.pid();

    // Download: 1 GiB streamed from the upstream through the gateway.
    setup.hello.set_reply(Reply::Stream { length_bytes: GIB, framing: StreamFraming::ContentLength });
    let mut client = Client::connect(setup.addr());
    client.set_timeout(Duration::from_secs(120));
    client.send(format!("GET /up/download HTTP/1.1\r\nHost: {}\r\n\r\n", setup.addr()).as_bytes());
    let mut received = 0u64;
    let mut peak_rss = 0;
    let response = client.read_response_with(&mut |chunk| {
        received += chunk.len() as u64;
        if received % (64 * 1024 * 1024) < chunk.len() as u64 {
            peak_rss = peak_rss.max(rss_kib(pid));
        }
    });
    assert_eq!(response.expect("download response").status, 200);
    assert_eq!(received, GIB);

    // Upload: 1 GiB sent by the client, counted by the upstream.
    setup.hello.set_reply(Reply::Default);
    let mut client = Client::connect(setup.addr());
    client.set_timeout(Duration::from_secs(120));
    client.send(format!("PUT /up/upload HTTP/1.1\r\nHost: {}\r\nContent-Length: {GIB}\r\n\r\n", setup.addr()).as_bytes());
    let block = vec![7u8; 1024 * 1024];
    for index in 0..1024 {
        client.send(&block);
        if index % 64 == 0 {
            peak_rss = peak_rss.max(rss_kib(pid));
        }
    }
    let response = client.read_response();
    assert_eq!(response.status, 200);
    assert_eq!(setup.hello.last_request().unwrap().body_length, GIB);
    assert!(peak_rss < 64 * 1024, "gateway RSS reached {peak_rss} KiB while streaming 1 GiB");
}

#[test]
fn upstream_targets_share_load_and_skip_refusing_ones() {
    let first = Upstream::start("first");
    let second = Upstream::start("second");
    let mut down = Upstream::start("down");
    let down_addr = down.addr();
    down.stop();
    let proxy: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = format!(
        r#"
[proxy]
listen = ["{proxy}"]

[access_rules]
matching_strategy = "glob"

[[upstreams]]
name = "pool"
targets = [{{ target = "{first}", weight = 100 }}, {{ target = "{second}", weight = 100 }}, {{ target = "{down_addr}", weight = 100 }}]

[[services]]
name = "app"
url = "http://pool"

[[routes]]
name = "all"
service = "app"
paths = ["/"]

[[rules]]
id = "open"
match = {{ url = "http://<**>", methods = ["GET"] }}
authenticators = [{{ handler = "anonymous" }}]
authorizer = {{ handler = "allow" }}
mutators = [{{ handler = "noop" }}]
"#,
        first = first.addr(),
        second = second.addr(),
    );
    let gateway = Gateway::start(&config);
    for index in 0..30 {
        let raw = format!("GET /x HTTP/1.1\r\nHost: {proxy}\r\nConnection: close\r\n\r\n");
        let response = support::request(gateway.addr(), raw.as_bytes());
        assert_eq!(response.status, 200, "request {index}: a refused target is retried on the next one");
    }
    assert_eq!(first.request_count() + second.request_count(), 30);
    assert!(first.request_count() >= 10, "first target got {}", first.request_count());
    assert!(second.request_count() >= 10, "second target got {}", second.request_count());
}
