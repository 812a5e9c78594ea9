//! Checks that the test stand-ins, the raw client and `portcullis-stub` behave as the
//! integration tests assume, so that a gateway test failure points at the gateway.

mod support;

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use support::process::ChildProcess;
use support::whoami::{DEFAULT_IDENTITY_ID, UNAUTHORIZED_BODY};
use support::{
    free_port, listen_addresses, request, stream_byte, tutorial_config, BodyFraming, Client,
    ClientError, Gateway, Kratos, KratosMode, KratosSession, Reply, StreamFraming, Stub, TempDir,
    Upstream,
};

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").into_bytes()
}

fn whoami_with(header: &str) -> Vec<u8> {
    format!("GET /sessions/whoami HTTP/1.1\r\nHost: kratos\r\n{header}\r\n\r\n").into_bytes()
}

// ---------------------------------------------------------------------------------------
// Upstream stand-in

#[test]
fn upstream_records_content_length_body() {
    let upstream = Upstream::start("hello");
    let sent = b"POST /submit?x=1 HTTP/1.1\r\nHost: test\r\nX-Mixed-Case: Value\r\nContent-Length: 5\r\n\r\nhello";
    let response = request(upstream.addr(), sent);

    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some("application/json"));
    let body = response.json();
    assert_eq!(body["service"], "hello");
    assert_eq!(body["path"], "/submit?x=1");

    let requests = upstream.requests();
    assert_eq!(requests.len(), 1);
    let recorded = &requests[0];
    assert_eq!(recorded.method, "POST");
    assert_eq!(recorded.target, "/submit?x=1");
    assert_eq!(recorded.version, 1);
    let names: Vec<&str> = recorded
        .headers
        .iter()
        .map(|(name, _)| name.as_str())
        .collect();
    assert_eq!(names, ["Host", "X-Mixed-Case", "Content-Length"]);
    assert_eq!(recorded.header("x-mixed-case"), Some("Value"));
    assert_eq!(recorded.body, b"hello");
    assert_eq!(recorded.body_length, 5);
    assert_eq!(
        recorded.framing,
        BodyFraming::ContentLength { length_bytes: 5 }
    );
    assert_eq!(recorded.raw, sent);
}

#[test]
fn upstream_records_chunked_body() {
    let upstream = Upstream::start("hello");
    let sent = concat!(
        "POST /upload HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n",
        "5;name=value\r\nhello\r\n",
        "6\r\n world\r\n",
        "0\r\nX-Checksum: abc\r\n\r\n"
    )
    .as_bytes();
    let response = request(upstream.addr(), sent);
    assert_eq!(response.status, 200);

    let recorded = upstream.last_request().expect("one request recorded");
    assert_eq!(recorded.body, b"hello world");
    assert_eq!(recorded.body_length, 11);
    assert_eq!(recorded.framing, BodyFraming::Chunked);
    assert_eq!(
        recorded.trailers,
        [("X-Checksum".to_owned(), "abc".to_owned())]
    );
    assert_eq!(recorded.raw, sent);
}

#[test]
fn upstream_pipelined_requests_in_order() {
    let upstream = Upstream::start("hello");
    let mut client = Client::connect(upstream.addr());
    let mut pipelined = get("/a");
    pipelined.extend_from_slice(b"POST /b HTTP/1.1\r\nHost: test\r\nContent-Length: 3\r\n\r\nabc");
    pipelined.extend_from_slice(
        b"POST /c HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\n\r\n",
    );
    pipelined.extend_from_slice(&get("/d"));
    client.send(&pipelined);

    for path in ["/a", "/b", "/c", "/d"] {
        let response = client.read_response();
        assert_eq!(response.status, 200, "response for {path}");
        assert_eq!(response.json()["path"], path);
    }
    let bodies: Vec<Vec<u8>> = upstream
        .requests()
        .into_iter()
        .map(|request| request.body)
        .collect();
    assert_eq!(
        bodies,
        [b"".to_vec(), b"abc".to_vec(), b"z".to_vec(), b"".to_vec()]
    );
    assert_eq!(upstream.connection_count(), 1);
    assert!(!client.is_closed(), "keep-alive connection stays open");
}

#[test]
fn upstream_rejects_ambiguous_framing() {
    let upstream = Upstream::start("hello");
    let mut client = Client::connect(upstream.addr());
    client.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");

    let response = client.read_response();
    assert_eq!(response.status, 400);
    assert!(client.is_closed());
    let recorded = upstream
        .last_request()
        .expect("the rejected request is recorded");
    assert!(
        matches!(recorded.framing, BodyFraming::Invalid { .. }),
        "framing {:?}",
        recorded.framing
    );
}

#[test]
fn upstream_records_malformed_head_as_protocol_error() {
    let upstream = Upstream::start("hello");
    let mut client = Client::connect(upstream.addr());
    client.send(b"GET / HTTP/1.1\r\nBad Header\r\n\r\n");

    assert_eq!(client.read_response().status, 400);
    assert_eq!(upstream.request_count(), 0);
    assert_eq!(upstream.protocol_errors().len(), 1);
}

#[test]
fn upstream_head_response_has_no_body() {
    let upstream = Upstream::start("hello");
    let mut client = Client::connect(upstream.addr());
    client.send(b"HEAD /x HTTP/1.1\r\nHost: t\r\n\r\n");
    let head = client.read_response_to_head();
    assert_eq!(head.status, 200);
    let length: usize = head.header("content-length").unwrap().parse().unwrap();
    assert!(length > 0, "HEAD keeps the GET content-length");

    client.send(&get("/after"));
    let next = client.read_response();
    assert_eq!(
        next.json()["path"],
        "/after",
        "no body bytes were left on the connection"
    );
}

#[test]
fn upstream_sends_continue_before_reading_body() {
    let upstream = Upstream::start("hello");
    let mut client = Client::connect(upstream.addr());
    client
        .send(b"PUT /big HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
    assert_eq!(client.read_response().status, 100);

    client.send(b"data");
    assert_eq!(client.read_response().status, 200);
    assert_eq!(upstream.last_request().unwrap().body, b"data");
}

#[test]
fn upstream_fixed_and_echo_replies() {
    let upstream = Upstream::start("hello");
    upstream.set_reply(Reply::text(503, "down"));
    let response = request(upstream.addr(), &get("/"));
    assert_eq!(response.status, 503);
    assert_eq!(response.header("content-type"), Some("text/plain"));
    assert_eq!(response.body, b"down");

    upstream.set_reply(Reply::Echo);
    let echoed = request(
        upstream.addr(),
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Type: text/csv\r\nContent-Length: 3\r\n\r\na,b",
    );
    assert_eq!(echoed.status, 200);
    assert_eq!(echoed.header("content-type"), Some("text/csv"));
    assert_eq!(echoed.body, b"a,b");
}

#[test]
fn upstream_queued_replies_come_first() {
    let upstream = Upstream::start("hello");
    upstream.push_reply(Reply::json(201, "{}"));
    upstream.push_reply(Reply::Close);
    let mut first = Client::connect(upstream.addr());
    first.send(&get("/1"));
    assert_eq!(first.read_response().status, 201);

    first.send(&get("/2"));
    assert!(matches!(
        first.try_read_response(),
        Err(ClientError::Closed)
    ));

    assert_eq!(request(upstream.addr(), &get("/3")).status, 200);
}

#[test]
fn upstream_chunked_reply_with_trailers() {
    let upstream = Upstream::start("hello");
    upstream.set_reply(Reply::Chunked {
        status: 200,
        headers: vec![("Content-Type".to_owned(), "text/plain".to_owned())],
        chunks: vec![b"hel".to_vec(), Vec::new(), b"lo".to_vec()],
        trailers: vec![("X-Done".to_owned(), "yes".to_owned())],
    });
    let response = request(upstream.addr(), &get("/"));
    assert_eq!(response.header("transfer-encoding"), Some("chunked"));
    assert_eq!(response.body, b"hello");
    assert_eq!(response.trailers, [("X-Done".to_owned(), "yes".to_owned())]);
}

#[test]
fn upstream_streamed_replies() {
    let upstream = Upstream::start("hello");
    let length_bytes = 3 * 1024 * 1024 + 7;
    for framing in [
        StreamFraming::ContentLength,
        StreamFraming::Chunked,
        StreamFraming::CloseDelimited,
    ] {
        upstream.set_reply(Reply::Stream {
            length_bytes,
            framing,
        });
        let mut client = Client::connect(upstream.addr());
        client.send(&get("/download"));

        let mut received = 0u64;
        let mut mismatches = 0u64;
        let response = client
            .read_response_with(&mut |piece| {
                for byte in piece {
                    if *byte != stream_byte(received) {
                        mismatches += 1;
                    }
                    received += 1;
                }
            })
            .unwrap();
        assert_eq!(response.status, 200, "{framing:?}");
        assert_eq!(received, length_bytes, "{framing:?}");
        assert_eq!(mismatches, 0, "{framing:?}");
        if framing == StreamFraming::CloseDelimited {
            assert_eq!(response.header("content-length"), None);
        }
    }
}

#[test]
fn upstream_delay_close_and_raw_replies() {
    let upstream = Upstream::start("hello");

    upstream.set_reply(Reply::delayed(Duration::from_millis(300), Reply::Default));
    let started = Instant::now();
    assert_eq!(request(upstream.addr(), &get("/slow")).status, 200);
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "took {:?}",
        started.elapsed()
    );

    upstream.set_reply(Reply::Close);
    let mut client = Client::connect(upstream.addr());
    client.send(&get("/"));
    assert!(matches!(
        client.try_read_response(),
        Err(ClientError::Closed)
    ));

    upstream.set_reply(Reply::raw(b"HTTP/1.1 200 OK\r\n\r\nuntil close"));
    let raw = request(upstream.addr(), &get("/"));
    assert_eq!(raw.body, b"until close");

    upstream.set_reply(Reply::raw(
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
    ));
    let mut truncated = Client::connect(upstream.addr());
    truncated.send(&get("/"));
    assert!(matches!(
        truncated.try_read_response(),
        Err(ClientError::Truncated { .. })
    ));
}

#[test]
fn upstream_http10_closes_without_keep_alive() {
    let upstream = Upstream::start("hello");
    let mut client = Client::connect(upstream.addr());
    client.send(b"GET /old HTTP/1.0\r\n\r\n");
    let response = client.read_response();
    assert_eq!(response.status, 200);
    assert_eq!(response.header("connection"), Some("close"));
    assert!(client.is_closed());
}

#[test]
fn upstream_stop_refuses_connections() {
    let mut upstream = Upstream::start("hello");
    let address = upstream.addr();
    let mut idle = Client::connect(address);
    idle.send(&get("/"));
    idle.read_response();

    upstream.stop();
    assert!(TcpStream::connect_timeout(&address, Duration::from_secs(1)).is_err());
    assert!(idle.is_closed(), "open connections are shut down too");
}

// ---------------------------------------------------------------------------------------
// Kratos stand-in

fn assert_session_response(response: &support::Response, identity_id: &str) {
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert_eq!(
        response.header("cache-control"),
        Some("private, no-cache, no-store, must-revalidate")
    );
    assert_eq!(
        response.header("x-kratos-authenticated-identity-id"),
        Some(identity_id)
    );
    let session = response.json();
    assert_eq!(session["active"], true);
    assert_eq!(session["identity"]["id"], identity_id);
    assert_eq!(session["authenticator_assurance_level"], "aal1");
}

#[test]
fn kratos_accepts_each_credential_source() {
    let kratos = Kratos::start();
    let sources = [
        "Cookie: theme=dark; ory_kratos_session=valid",
        "X-Session-Token: valid",
        "Authorization: Bearer valid",
    ];
    for header in sources {
        let response = request(kratos.addr(), &whoami_with(header));
        assert_session_response(&response, DEFAULT_IDENTITY_ID);
    }
    assert_eq!(kratos.request_count(), 3);
    assert_eq!(
        kratos.requests()[0].header("cookie"),
        Some("theme=dark; ory_kratos_session=valid")
    );
}

#[test]
fn kratos_401_and_403_shapes() {
    let kratos = Kratos::start();

    let missing = request(kratos.addr(), &whoami_with("Accept: application/json"));
    assert_eq!(missing.status, 401);
    assert_eq!(missing.text(), UNAUTHORIZED_BODY);

    let unknown = request(
        kratos.addr(),
        &whoami_with("Cookie: ory_kratos_session=nope"),
    );
    assert_eq!(unknown.status, 401);
    assert_eq!(unknown.json()["error"]["code"], 401);

    let aal2 = request(kratos.addr(), &whoami_with("X-Session-Token: aal2"));
    assert_eq!(aal2.status, 403);
    let body = aal2.json();
    assert_eq!(body["error"]["id"], "session_aal2_required");
    let redirect = format!(
        "http://{}/self-service/login/browser?aal=aal2",
        kratos.addr()
    );
    assert_eq!(body["redirect_browser_to"], redirect.as_str());

    let other_path = request(kratos.addr(), &get("/self-service/login/browser"));
    assert_eq!(other_path.status, 404);
}

#[test]
fn kratos_sessions_can_be_added_and_removed() {
    let kratos = Kratos::start();
    let mut session = KratosSession::new("0c5a2d8e-0000-4000-8000-000000000001");
    session.email = "grace@example.org".to_owned();
    kratos.insert_session("grace-token", session);

    let response = request(kratos.addr(), &whoami_with("X-Session-Token: grace-token"));
    assert_session_response(&response, "0c5a2d8e-0000-4000-8000-000000000001");
    assert_eq!(
        response.json()["identity"]["traits"]["email"],
        "grace@example.org"
    );

    kratos.remove_session("grace-token");
    let after_logout = request(kratos.addr(), &whoami_with("X-Session-Token: grace-token"));
    assert_eq!(after_logout.status, 401);
}

#[test]
fn kratos_failure_modes() {
    let kratos = Kratos::start();
    let valid = whoami_with("Cookie: ory_kratos_session=valid");

    kratos.set_mode(KratosMode::Unauthorized);
    assert_eq!(request(kratos.addr(), &valid).status, 401);

    kratos.set_mode(KratosMode::Aal2Required);
    assert_eq!(request(kratos.addr(), &valid).status, 403);

    kratos.set_mode(KratosMode::RateLimited { retry_after: 7 });
    let limited = request(kratos.addr(), &valid);
    assert_eq!(limited.status, 429);
    assert_eq!(limited.header("retry-after"), Some("7"));
    assert_eq!(limited.json()["error"]["code"], 429);

    kratos.set_mode(KratosMode::Status(
        500,
        r#"{"error":{"code":500}}"#.to_owned(),
    ));
    let failed = request(kratos.addr(), &valid);
    assert_eq!(failed.status, 500);
    assert_eq!(failed.json()["error"]["code"], 500);

    kratos.set_mode(KratosMode::InvalidJson);
    let invalid = request(kratos.addr(), &valid);
    assert_eq!(invalid.status, 200);
    assert!(!invalid.body.is_empty());
    assert!(serde_json::from_slice::<serde_json::Value>(&invalid.body).is_err());

    kratos.set_mode(KratosMode::SetCookieOnSuccess(
        "ory_kratos_session=renewed; Path=/".to_owned(),
    ));
    let renewed = request(kratos.addr(), &valid);
    assert_session_response(&renewed, DEFAULT_IDENTITY_ID);
    assert_eq!(
        renewed.header("set-cookie"),
        Some("ory_kratos_session=renewed; Path=/")
    );
    let no_session = request(kratos.addr(), &whoami_with("Accept: */*"));
    assert_eq!(
        no_session.header("set-cookie"),
        None,
        "only successes set the cookie"
    );

    kratos.set_mode(KratosMode::Delay(Duration::from_millis(300)));
    let started = Instant::now();
    assert_eq!(request(kratos.addr(), &valid).status, 200);
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn kratos_hang_never_responds() {
    let kratos = Kratos::start();
    kratos.set_mode(KratosMode::Hang);
    let mut client = Client::connect(kratos.addr());
    client.set_timeout(Duration::from_millis(300));
    client.send(&whoami_with("Cookie: ory_kratos_session=valid"));

    assert!(matches!(
        client.try_read_response(),
        Err(ClientError::TimedOut { .. })
    ));
    assert_eq!(kratos.wait_for_request_count(1, Duration::from_secs(2)), 1);
}

#[test]
fn kratos_pipelined_whoami_in_order() {
    let kratos = Kratos::start();
    let mut client = Client::connect(kratos.addr());
    let mut pipelined = whoami_with("Cookie: ory_kratos_session=valid");
    pipelined.extend_from_slice(&whoami_with("Accept: application/json"));
    pipelined.extend_from_slice(&whoami_with("X-Session-Token: aal2"));
    pipelined
        .extend_from_slice(b"HEAD /sessions/whoami HTTP/1.1\r\nX-Session-Token: valid\r\n\r\n");
    pipelined.extend_from_slice(&whoami_with("Authorization: Bearer valid"));
    client.send(&pipelined);

    assert_session_response(&client.read_response(), DEFAULT_IDENTITY_ID);
    assert_eq!(client.read_response().status, 401);
    assert_eq!(client.read_response().status, 403);
    let head = client.read_response_to_head();
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_session_response(&client.read_response(), DEFAULT_IDENTITY_ID);
    assert_eq!(kratos.connection_count(), 1);
}

#[test]
fn kratos_stop_refuses_connections() {
    let mut kratos = Kratos::start();
    let address = kratos.addr();
    assert_eq!(request(address, &get("/health/ready")).status, 200);

    kratos.stop();
    assert!(TcpStream::connect_timeout(&address, Duration::from_secs(1)).is_err());
}

// ---------------------------------------------------------------------------------------
// portcullis-stub binary

#[test]
fn stub_upstream_reports_request_and_user() {
    let stub = Stub::upstream("hello");
    let with_user = request(
        stub.addr(),
        b"GET /hello?q=1 HTTP/1.1\r\nHost: t\r\nX-User: ada \"the\" \\first\\\r\n\r\n",
    );
    assert_eq!(with_user.status, 200);
    assert_eq!(with_user.header("content-type"), Some("application/json"));
    let body = with_user.json();
    assert_eq!(body["service"], "hello");
    assert_eq!(body["method"], "GET");
    assert_eq!(body["path"], "/hello?q=1");
    assert_eq!(body["user"], "ada \"the\" \\first\\");

    let anonymous = request(stub.addr(), b"DELETE /world HTTP/1.1\r\nHost: t\r\n\r\n");
    let body = anonymous.json();
    assert_eq!(body["method"], "DELETE");
    assert!(body["user"].is_null(), "user {:?}", body["user"]);
}

#[test]
fn stub_upstream_pipelines_past_request_bodies() {
    let stub = Stub::upstream("hello");
    let mut client = Client::connect(stub.addr());
    let mut pipelined = b"POST /a HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello".to_vec();
    pipelined.extend_from_slice(b"POST /b HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nT: v\r\n\r\n");
    pipelined.extend_from_slice(b"HEAD /c HTTP/1.1\r\nHost: t\r\n\r\n");
    pipelined.extend_from_slice(&get("/d"));
    client.send(&pipelined);

    assert_eq!(client.read_response().json()["path"], "/a");
    assert_eq!(client.read_response().json()["path"], "/b");
    let head = client.read_response_to_head();
    assert_eq!(head.status, 200);
    assert!(head.header("content-length").is_some());
    assert_eq!(client.read_response().json()["path"], "/d");
    assert!(!client.is_closed());
}

#[test]
fn stub_upstream_body_split_across_writes() {
    let stub = Stub::upstream("hello");
    let mut client = Client::connect(stub.addr());
    client.send(b"POST /split HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nab");
    std::thread::sleep(Duration::from_millis(50));
    client.send(b"cd\r\n0\r\n\r\nGET /next HTTP/1.1\r\nHost: t\r\n\r\n");

    assert_eq!(client.read_response().json()["path"], "/split");
    assert_eq!(client.read_response().json()["path"], "/next");
}

#[test]
fn stub_upstream_connection_handling() {
    let stub = Stub::upstream("hello");

    let mut old_keep_alive = Client::connect(stub.addr());
    old_keep_alive.send(b"GET /1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let response = old_keep_alive.read_response();
    assert_eq!(response.header("connection"), Some("keep-alive"));
    assert!(!old_keep_alive.is_closed());

    let mut old = Client::connect(stub.addr());
    old.send(b"GET /2 HTTP/1.0\r\n\r\n");
    assert_eq!(old.read_response().header("connection"), Some("close"));
    assert!(old.is_closed());

    let mut closing = Client::connect(stub.addr());
    closing.send(b"GET /3 HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert_eq!(closing.read_response().status, 200);
    assert!(closing.is_closed());

    let mut continued = Client::connect(stub.addr());
    continued
        .send(b"PUT /4 HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n");
    assert_eq!(continued.read_response().status, 100);
    assert_eq!(continued.read_response().status, 200);
    continued.send(b"ok");
    continued.send(&get("/5"));
    assert_eq!(continued.read_response().json()["path"], "/5");
}

#[test]
fn stub_upstream_half_closed_client() {
    let stub = Stub::upstream("hello");
    let mut client = Client::connect(stub.addr());
    let mut pipelined = get("/first");
    pipelined.extend_from_slice(&get("/second"));
    client.send(&pipelined);
    client.shutdown_write();

    assert_eq!(client.read_response().json()["path"], "/first");
    assert_eq!(client.read_response().json()["path"], "/second");
    assert!(client.is_closed(), "the stub closes once the client's end of stream is read");
}

#[test]
fn stub_upstream_rejects_bad_requests() {
    let stub = Stub::upstream("hello");
    let oversized_head =
        format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(70 * 1024)).into_bytes();
    let cases: [(&[u8], u16); 5] = [
        (b"GET / HTTP/1.1\r\nBad Header\r\n\r\n", 400),
        (
            b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            400,
        ),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n",
            400,
        ),
        (&oversized_head, 431),
    ];
    for (sent, status) in cases {
        let mut client = Client::connect(stub.addr());
        let _ = client.try_send(sent);
        let response = client.read_response();
        let shown = String::from_utf8_lossy(&sent[..sent.len().min(60)]).into_owned();
        assert_eq!(response.status, status, "{shown:?}");
        assert_eq!(response.header("connection"), Some("close"), "{shown:?}");
        assert!(client.is_closed(), "{shown:?}");
    }
}

#[test]
fn stub_upstream_malformed_chunk_closes_connection() {
    let stub = Stub::upstream("hello");
    let mut client = Client::connect(stub.addr());
    client.send(b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
    assert_eq!(
        client.read_response().status,
        200,
        "the response precedes the body"
    );
    assert!(client.is_closed());
}

#[test]
fn stub_upstream_threads_and_addresses() {
    let stub = Stub::start(&[
        "upstream",
        "--name",
        "multi",
        "--threads",
        "2",
        "--listen",
        "127.0.0.1:0",
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(stub.addrs().len(), 2);
    for &address in stub.addrs() {
        for _ in 0..4 {
            assert_eq!(request(address, &get("/")).json()["service"], "multi");
        }
    }
}

#[test]
fn stub_kratos_matches_test_kratos() {
    let stub = Stub::kratos();
    let kratos = Kratos::start();
    let valid = whoami_with("Cookie: ory_kratos_session=valid");

    let from_stub = request(stub.addr(), &valid);
    let from_test = request(kratos.addr(), &valid);
    assert_session_response(&from_stub, DEFAULT_IDENTITY_ID);
    let mut stub_body = from_stub.json();
    let mut test_body = from_test.json();
    for body in [&mut stub_body, &mut test_body] {
        for volatile in [
            "expires_at",
            "issued_at",
            "authenticated_at",
            "authentication_methods",
        ] {
            body[volatile] = serde_json::Value::Null;
        }
        body["identity"]["schema_url"] = serde_json::Value::Null;
    }
    assert_eq!(stub_body, test_body);

    let stub_names: Vec<String> = from_stub
        .headers
        .iter()
        .map(|(name, _)| name.to_ascii_lowercase())
        .collect();
    let test_names: Vec<String> = from_test
        .headers
        .iter()
        .map(|(name, _)| name.to_ascii_lowercase())
        .collect();
    assert_eq!(stub_names, test_names);
}

#[test]
fn stub_kratos_status_codes() {
    let stub = Stub::kratos();
    let cases = [
        (whoami_with("X-Session-Token: valid"), 200),
        (whoami_with("Authorization: Bearer valid"), 200),
        (whoami_with("Cookie: ory_kratos_session=wrong"), 401),
        (whoami_with("Accept: text/html"), 401),
        (whoami_with("X-Session-Token: aal2"), 403),
        (b"POST /sessions/whoami?tokenize_as=jwt HTTP/1.1\r\nX-Session-Token: valid\r\nContent-Length: 2\r\n\r\n{}".to_vec(), 200),
        (get("/sessions"), 404),
        (get("/health/alive"), 200),
    ];
    let mut client = Client::connect(stub.addr());
    for (sent, status) in &cases {
        client.send(sent);
        let response = client.read_response();
        let shown = String::from_utf8_lossy(sent).into_owned();
        assert_eq!(response.status, *status, "{shown:?}");
        assert_eq!(
            response.header("content-type"),
            Some("application/json"),
            "{shown:?}"
        );
    }

    client.send(b"HEAD /sessions/whoami HTTP/1.1\r\nX-Session-Token: aal2\r\n\r\n");
    let head = client.read_response_to_head();
    assert_eq!(head.status, 403);
    client.send(&get("/health/ready"));
    assert_eq!(
        client.read_response().json()["status"],
        "ok",
        "HEAD left no body behind"
    );
}

#[test]
fn stub_kratos_configured_sessions() {
    let stub = Stub::start(&[
        "kratos",
        "--listen",
        "127.0.0.1:0",
        "--session",
        "alpha=11111111-1111-4111-8111-111111111111,alpha@example.org",
        "--session",
        "beta=22222222-2222-4222-8222-222222222222",
    ]);
    let alpha = request(stub.addr(), &whoami_with("X-Session-Token: alpha"));
    assert_session_response(&alpha, "11111111-1111-4111-8111-111111111111");
    assert_eq!(
        alpha.json()["identity"]["traits"]["email"],
        "alpha@example.org"
    );

    let beta = request(stub.addr(), &whoami_with("X-Session-Token: beta"));
    assert_session_response(&beta, "22222222-2222-4222-8222-222222222222");

    let default_gone = request(stub.addr(), &whoami_with("X-Session-Token: valid"));
    assert_eq!(
        default_gone.status, 401,
        "--session replaces the default session"
    );
}

#[test]
fn stub_kratos_rejects_reserved_token() {
    let program = std::path::Path::new(env!("CARGO_BIN_EXE_portcullis-stub"));
    let args = [
        "kratos",
        "--listen",
        "127.0.0.1:0",
        "--session",
        "aal2=someone",
    ];
    let mut process = ChildProcess::spawn(
        program,
        args,
        &[("NO_COLOR", "1")],
        TempDir::new("stub-reserved"),
    );
    let status = process
        .wait_exit(Duration::from_secs(10))
        .expect("the stub exits");
    assert!(!status.success());
    assert!(
        process.stderr().contains("reserved"),
        "stderr: {}",
        process.stderr()
    );
}

// ---------------------------------------------------------------------------------------
// Gateway harness, client and curl

#[test]
fn listen_addresses_from_config() {
    assert_eq!(
        listen_addresses("[proxy]\nlisten = [\"127.0.0.1:8000\", \"[::1]:8001\"]\n").unwrap(),
        [
            "127.0.0.1:8000".parse::<SocketAddr>().unwrap(),
            "[::1]:8001".parse().unwrap()
        ]
    );
    assert_eq!(
        listen_addresses("[proxy]\nlisten = \"127.0.0.1:9\"\n").unwrap(),
        ["127.0.0.1:9".parse::<SocketAddr>().unwrap()]
    );
    assert!(listen_addresses("[proxy]\n").is_err());
    assert!(listen_addresses("[proxy]\nlisten = [\"localhost:80\"]\n").is_err());
    assert!(listen_addresses("not toml ===").is_err());
}

#[test]
fn tutorial_config_points_at_stand_ins() {
    let kratos = Kratos::start();
    let hello = Upstream::start("hello");
    let world = Upstream::start("world");
    let proxy: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = tutorial_config(proxy, &kratos, &hello, &world);

    let table: toml::Table = config.parse().expect("tutorial config is valid TOML");
    assert_eq!(listen_addresses(&config).unwrap(), [proxy]);
    assert_eq!(
        table["authenticators"]["cookie_session"]["check_session_url"].as_str(),
        Some(kratos.whoami_url().as_str())
    );
    assert_eq!(
        table["services"][0]["url"].as_str(),
        Some(hello.url().as_str())
    );
    assert_eq!(
        table["services"][1]["url"].as_str(),
        Some(world.url().as_str())
    );
    assert_eq!(
        table["rules"][0]["mutators"][0]["config"]["headers"]["X-User"].as_str(),
        Some("{{ print .Subject }}")
    );
}

#[test]
fn gateway_start_failure_reports_exit() {
    let proxy = format!("127.0.0.1:{}", free_port());
    let config = format!("[proxy]\nlisten = [\"{proxy}\"]\n\n[no_such_section]\nkey = 1\n");
    let error = match Gateway::try_start(&config) {
        Ok(_) => panic!("a configuration with an unknown section must not start"),
        Err(error) => error,
    };
    assert!(error.reason.contains("exited before listening"), "{error}");
    assert!(error.status.is_some(), "{error}");
}

#[test]
fn client_is_closed_waits_briefly() {
    let upstream = Upstream::start("hello");
    let mut client = Client::connect(upstream.addr());
    let started = Instant::now();
    assert!(!client.is_closed());
    assert!(started.elapsed() >= support::client::CLOSE_WAIT);
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[test]
fn scratch_directory_removed_on_drop() {
    let directory = TempDir::new("selftest");
    let path = directory.path().to_path_buf();
    std::fs::write(path.join("file"), b"x").unwrap();
    assert!(path.is_dir());
    drop(directory);
    assert!(!path.exists());
}

#[test]
fn curl_reaches_upstream() {
    if !support::curl_available() {
        eprintln!("curl is not installed; skipping");
        return;
    }
    let upstream = Upstream::start("hello");
    let url = format!("{}/via-curl", upstream.url());
    let (code, stdout, stderr) = support::curl(&["-H", "X-Test: 1", &url]);
    assert_eq!(code, 0, "stderr: {stderr}");
    let body: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(body["path"], "/via-curl");
    assert_eq!(upstream.last_request().unwrap().header("x-test"), Some("1"));
}
