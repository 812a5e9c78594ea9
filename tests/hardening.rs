//! Hostile clients and faulty upstreams against the real gateway: slow heads and bodies,
//! idle keep-alive, per-connection request caps, the connection limit, file-descriptor
//! exhaustion, invalid and truncated upstream responses, early upstream answers, and 2,000
//! slowloris connections next to normal traffic.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::table::{table_config, TableGateway, TABLE_RULES};
use support::{free_port, rss_kib, Client, ClientError, Gateway, Kratos, Reply, Upstream};

const GET_PUBLIC: &[u8] = b"GET /public/a HTTP/1.1\r\nHost: gw.test\r\n\r\n";

/// Number of open file descriptors of a process, from /proc.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |entries| entries.count())
}

/// Returns whether the peer closes `client` within `within`, reading and dropping any
/// response bytes first.
fn closes_within(client: &mut Client, within: Duration) -> bool {
    client.set_timeout(within);
    loop {
        match client.try_read_response() {
            Ok(_) => continue,
            Err(ClientError::Closed) => return true,
            Err(ClientError::Io(error)) => return matches!(error.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe),
            Err(_) => return false,
        }
    }
}

#[test]
fn slow_head_gets_408_then_close() {
    let setup = TableGateway::start("head_timeout = \"1s\"", "");
    let mut client = Client::connect(setup.addr());
    client.set_timeout(Duration::from_secs(5));
    let started = Instant::now();
    client.send(b"GET /public/a HTTP/1.1\r\nHost: gw.test\r\nX-Slow: a");
    let response = client.read_response();
    let elapsed = started.elapsed();
    assert_eq!(response.status, 408);
    assert!(elapsed >= Duration::from_millis(900), "408 after only {elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "408 only after {elapsed:?}");
    assert!(closes_within(&mut client, Duration::from_secs(2)), "connection stayed open after 408");
    assert_eq!(setup.upstream.request_count(), 0);
}

#[test]
fn slow_body_times_out_and_upstream_not_reused() {
    let setup = TableGateway::start("body_timeout = \"1s\"", "");
    let mut warm = Client::connect(setup.addr());
    warm.send(GET_PUBLIC);
    assert_eq!(warm.read_response().status, 200);
    let connections_before = setup.upstream.connection_count();

    let mut client = Client::connect(setup.addr());
    client.set_timeout(Duration::from_secs(5));
    client.send(b"POST /public/echo HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 10\r\n\r\nhello");
    let started = Instant::now();
    let response = client.read_response();
    assert_eq!(response.status, 408);
    assert!(started.elapsed() < Duration::from_secs(3), "408 only after {:?}", started.elapsed());
    assert!(closes_within(&mut client, Duration::from_secs(7)), "connection stayed open after 408");

    // The upstream connection that carried half a body must not serve the next request.
    warm.send(GET_PUBLIC);
    assert_eq!(warm.read_response().status, 200);
    assert_eq!(setup.upstream.request_count(), 2, "the half-sent request must not be recorded");
    assert!(setup.upstream.connection_count() > connections_before, "the aborted upstream connection was reused");
}

#[test]
fn keepalive_idle_connection_closed() {
    let setup = TableGateway::start("keepalive_timeout = \"1s\"", "");
    let mut client = Client::connect(setup.addr());
    client.send(GET_PUBLIC);
    assert_eq!(client.read_response().status, 200);
    let started = Instant::now();
    assert!(closes_within(&mut client, Duration::from_secs(4)), "idle connection stayed open");
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(900), "closed after only {elapsed:?}");
}

#[test]
fn max_requests_per_connection_closes() {
    let setup = TableGateway::start("max_requests_per_connection = 3", "");
    let mut client = Client::connect(setup.addr());
    for index in 1..=3 {
        client.send(GET_PUBLIC);
        let response = client.read_response();
        assert_eq!(response.status, 200, "request {index}");
        let close = response.header("Connection").is_some_and(|value| value.eq_ignore_ascii_case("close"));
        assert_eq!(close, index == 3, "Connection: close on request {index}");
    }
    assert!(closes_within(&mut client, Duration::from_secs(2)), "connection stayed open after the last request");
}

#[test]
fn connection_limit_pauses_accept() {
    let setup = TableGateway::start("max_connections = 3\nhead_timeout = \"30s\"", "workers = 1");
    let idle: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(setup.addr()).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(300));

    // The kernel completes the handshake, but the gateway does not accept the fourth
    // connection, so its request waits.
    let mut waiting = Client::connect(setup.addr());
    waiting.set_timeout(Duration::from_millis(700));
    waiting.send(GET_PUBLIC);
    assert!(matches!(waiting.try_read_response(), Err(ClientError::TimedOut { .. })), "fourth connection was served over the limit");

    drop(idle);
    waiting.set_timeout(Duration::from_secs(5));
    let response = waiting.read_response();
    assert_eq!(response.status, 200);
    assert!(setup.gateway.stderr().contains("connection limit reached"));
}

/// Sets the soft open-file limit of another process and returns the previous soft limit.
/// The hard limit stays, so the soft limit can be raised again without privileges.
fn set_fd_soft_limit(pid: u32, soft: u64) -> u64 {
    let mut old = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: a null new limit makes prlimit only write the current one into `old`.
    let result = unsafe { libc::prlimit(pid as libc::pid_t, libc::RLIMIT_NOFILE, std::ptr::null(), &mut old) };
    assert_eq!(result, 0, "prlimit read failed: {}", std::io::Error::last_os_error());
    let new = libc::rlimit { rlim_cur: soft.min(old.rlim_max), rlim_max: old.rlim_max };
    // SAFETY: prlimit reads `new` and writes nothing when the old-limit pointer is null.
    let result = unsafe { libc::prlimit(pid as libc::pid_t, libc::RLIMIT_NOFILE, &new, std::ptr::null_mut()) };
    assert_eq!(result, 0, "prlimit write failed: {}", std::io::Error::last_os_error());
    old.rlim_cur
}

#[test]
fn fd_exhaustion_pauses_accept_without_killing_workers() {
    let mut setup = TableGateway::start("head_timeout = \"30s\"", "workers = 2");
    let mut probe = Client::connect(setup.addr());
    probe.send(GET_PUBLIC);
    assert_eq!(probe.read_response().status, 200);
    drop(probe);

    let pid = setup.gateway.pid();
    let limit = open_fds(pid) as u64 + 16;
    let previous = set_fd_soft_limit(pid, limit);
    let clients: Vec<TcpStream> = (0..64).map(|_| TcpStream::connect(setup.addr()).unwrap()).collect();
    assert!(
        setup.gateway.wait_for_log("out of file descriptors; accepting paused", Duration::from_secs(5)),
        "the gateway never hit the descriptor limit"
    );
    assert!(setup.gateway.is_running(), "the gateway exited at the descriptor limit");

    drop(clients);
    set_fd_soft_limit(pid, previous);
    let mut client = Client::connect(setup.addr());
    client.set_timeout(Duration::from_secs(5));
    client.send(GET_PUBLIC);
    assert_eq!(client.read_response().status, 200);
    assert!(setup.gateway.is_running());
    let log = setup.gateway.stderr();
    assert!(!log.contains("worker stopped"), "a worker stopped:\n{log}");
    assert!(!log.contains("panicked"), "the gateway panicked:\n{log}");
}

/// Upstream responses that must give the client 502, with the reason.
fn invalid_responses() -> Vec<(&'static str, &'static [u8])> {
    vec![
        ("content-length with transfer-encoding", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        ("two content-lengths", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok"),
        ("invalid content-length", b"HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nok"),
        ("bare lf", b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok"),
        ("cr in header value", b"HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 2\r\n\r\nok"),
        ("nul in header value", b"HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 2\r\n\r\nok"),
        ("obs-fold", b"HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 2\r\n\r\nok"),
        ("space before colon", b"HTTP/1.1 200 OK\r\nX-A : a\r\nContent-Length: 2\r\n\r\nok"),
        ("status not three digits", b"HTTP/1.1 20 OK\r\nContent-Length: 2\r\n\r\nok"),
        ("version 2.0", b"HTTP/2.0 200 OK\r\nContent-Length: 2\r\n\r\nok"),
        ("switching protocols not requested", b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: upgrade\r\n\r\n"),
        ("not http", b"SSH-2.0-OpenSSH_9.2\r\n"),
    ]
}

#[test]
fn invalid_upstream_responses_give_502_and_no_reuse() {
    let setup = TableGateway::start("", "");
    let mut client = Client::connect(setup.addr());
    client.send(GET_PUBLIC);
    assert_eq!(client.read_response().status, 200);

    for (name, bytes) in invalid_responses() {
        setup.upstream.set_reply(Reply::Raw { bytes: bytes.to_vec(), close: false });
        client.send(GET_PUBLIC);
        let response = client.read_response();
        assert_eq!(response.status, 502, "{name}");
        assert!(response.text().contains("\"error\""), "{name}: no JSON error body");

        setup.upstream.set_reply(Reply::Echo);
        let connections = setup.upstream.connection_count();
        client.send(GET_PUBLIC);
        assert_eq!(client.read_response().status, 200, "{name}: request after the 502");
        assert_eq!(setup.upstream.connection_count(), connections + 1, "{name}: the upstream connection was reused after an invalid response");
    }
}

#[test]
fn invalid_chunked_upstream_body_closes_client() {
    let setup = TableGateway::start("", "");
    let bodies: [(&str, &[u8]); 3] = [
        ("chunk size not hex", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n"),
        ("data not followed by crlf", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX"),
        ("bare lf after chunk size", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n"),
    ];
    for (name, bytes) in bodies {
        setup.upstream.set_reply(Reply::Raw { bytes: bytes.to_vec(), close: false });
        let mut client = Client::connect(setup.addr());
        client.set_timeout(Duration::from_secs(5));
        client.send(GET_PUBLIC);
        // The head was already forwarded, so the only signal left is an incomplete body.
        match client.try_read_response() {
            Err(ClientError::Truncated { .. }) | Err(ClientError::Closed) => {}
            other => panic!("{name}: expected a truncated response, got {other:?}"),
        }
    }
}

#[test]
fn truncated_upstream_response_closes_client() {
    let setup = TableGateway::start("", "");
    let truncated: [(&str, &[u8]); 2] = [
        ("content-length", b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort"),
        ("chunked", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"),
    ];
    for (name, bytes) in truncated {
        setup.upstream.set_reply(Reply::raw(bytes));
        let mut client = Client::connect(setup.addr());
        client.set_timeout(Duration::from_secs(5));
        client.send(GET_PUBLIC);
        match client.try_read_response() {
            Err(ClientError::Truncated { .. }) => {}
            other => panic!("{name}: expected a truncated response, got {other:?}"),
        }
    }
}

/// A raw upstream that answers each request as soon as its head has arrived, without
/// reading the body, and counts connections.
fn early_answer_upstream() -> (SocketAddr, Arc<AtomicUsize>, Arc<AtomicBool>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    listener.set_nonblocking(true).unwrap();
    let counter = Arc::clone(&connections);
    let stopped = Arc::clone(&stop);
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !stopped.load(Ordering::Relaxed) && Instant::now() < deadline {
            match listener.accept() {
                Ok((mut stream, _)) => {
                    counter.fetch_add(1, Ordering::SeqCst);
                    std::thread::spawn(move || {
                        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                        let mut seen = Vec::new();
                        let mut chunk = [0u8; 4096];
                        loop {
                            match stream.read(&mut chunk) {
                                Ok(0) | Err(_) => return,
                                Ok(read) => seen.extend_from_slice(&chunk[..read]),
                            }
                            while let Some(end) = seen.windows(4).position(|quad| quad == b"\r\n\r\n") {
                                seen.drain(..end + 4);
                                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
                            }
                        }
                    });
                }
                Err(error) if error.kind() == ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(5)),
                Err(_) => return,
            }
        }
    });
    (addr, connections, stop)
}

#[test]
fn early_upstream_answer_is_not_pooled() {
    let kratos = Kratos::start();
    let standin = Upstream::start("unused");
    let (upstream_addr, connections, stop) = early_answer_upstream();
    let proxy: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = table_config(proxy, &kratos, &standin, "", "", TABLE_RULES).replace(&standin.url(), &format!("http://{upstream_addr}"));
    let gateway = Gateway::start(&config);

    let mut client = Client::connect(gateway.addr());
    client.set_timeout(Duration::from_secs(5));
    client.send(b"POST /public/upload HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 100000\r\n\r\nfirst bytes");
    let response = client.read_response();
    assert_eq!(response.status, 200);
    assert_eq!(response.header("Connection"), Some("close"), "a client whose body was not read must be closed");

    let mut second = Client::connect(gateway.addr());
    second.set_timeout(Duration::from_secs(5));
    second.send(GET_PUBLIC);
    assert_eq!(second.read_response().status, 200);
    assert_eq!(connections.load(Ordering::SeqCst), 2, "the upstream connection owed a request body and was reused");
    stop.store(true, Ordering::Relaxed);
}

/// A connection that sends its head one byte at a time.
struct SlowClient {
    stream: TcpStream,
    sent: usize,
    closed: bool,
}

const SLOW_HEAD: &[u8] = b"GET /public/slow HTTP/1.1\r\nHost: gw.test\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";

#[test]
fn slowloris_2000_connections_bounded() {
    const SLOW_CLIENTS: usize = 2000;
    let setup = TableGateway::start("head_timeout = \"4s\"\nmax_connections = 5000", "workers = 2");
    let pid = setup.gateway.pid();
    let addr = setup.addr();

    // Warm up so that the baseline includes the buffers of a served request.
    let mut warm = Client::connect(addr);
    warm.send(GET_PUBLIC);
    assert_eq!(warm.read_response().status, 200);
    drop(warm);
    let rss_before = rss_kib(pid);

    let mut slow: Vec<SlowClient> = Vec::with_capacity(SLOW_CLIENTS);
    for _ in 0..SLOW_CLIENTS {
        let stream = TcpStream::connect(addr).expect("connect a slow client");
        stream.set_nonblocking(true).unwrap();
        slow.push(SlowClient { stream, sent: 0, closed: false });
    }

    let started = Instant::now();
    let mut latencies = Vec::new();
    let mut rss_peak = 0;
    let mut last_tick = Instant::now() - Duration::from_secs(1);
    while started.elapsed() < Duration::from_secs(8) {
        if last_tick.elapsed() >= Duration::from_secs(1) {
            last_tick = Instant::now();
            for client in slow.iter_mut().filter(|client| !client.closed) {
                let byte = SLOW_HEAD[client.sent % SLOW_HEAD.len()..][..1].to_vec();
                match client.stream.write(&byte) {
                    Ok(_) => client.sent += 1,
                    Err(error) if error.kind() == ErrorKind::WouldBlock => {}
                    Err(_) => client.closed = true,
                }
            }
            rss_peak = rss_peak.max(rss_kib(pid));
        }

        let request_started = Instant::now();
        let mut normal = Client::connect(addr);
        normal.set_timeout(Duration::from_secs(5));
        normal.send(GET_PUBLIC);
        assert_eq!(normal.read_response().status, 200, "a normal client was not served during the attack");
        latencies.push(request_started.elapsed());
        std::thread::sleep(Duration::from_millis(50));
    }

    // Every slow connection got 408 and was closed at the head deadline.
    let mut closed = 0;
    let mut timed_out = 0;
    for client in &mut slow {
        let _ = client.stream.set_nonblocking(false);
        let _ = client.stream.set_read_timeout(Some(Duration::from_millis(200)));
        let mut response = Vec::new();
        let _ = client.stream.read_to_end(&mut response);
        if response.starts_with(b"HTTP/1.1 408") {
            timed_out += 1;
        }
        let mut probe = [0u8; 1];
        if matches!(client.stream.read(&mut probe), Ok(0) | Err(_)) {
            closed += 1;
        }
    }
    let rss_after = rss_kib(pid);

    latencies.sort();
    let p50 = latencies[latencies.len() / 2];
    let p99 = latencies[latencies.len() * 99 / 100];
    let max = latencies[latencies.len() - 1];
    println!(
        "slowloris: {SLOW_CLIENTS} slow connections; gateway RSS before {rss_before} KiB, peak {rss_peak} KiB, after {rss_after} KiB; \
         {} normal requests, latency p50 {p50:?} p99 {p99:?} max {max:?}; {timed_out} got 408, {closed} closed",
        latencies.len()
    );
    assert_eq!(timed_out, SLOW_CLIENTS, "every slow connection must get 408");
    assert_eq!(closed, SLOW_CLIENTS, "every slow connection must be closed");
    assert!(rss_peak.saturating_sub(rss_before) < 64 * 1024, "RSS grew by {} KiB for {SLOW_CLIENTS} slow connections", rss_peak - rss_before);
    assert!(p99 < Duration::from_millis(500), "normal requests slowed down: p99 {p99:?}");
    assert_eq!(setup.upstream.protocol_errors().len(), 0);
}

#[test]
fn trusted_proxy_forwarding_headers_extended() {
    let kratos = Kratos::start();
    let upstream = Upstream::start("echo");
    let proxy: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = table_config(proxy, &kratos, &upstream, "", "", TABLE_RULES)
        .replace("[proxy]\n", "[proxy]\ntrusted_proxies = [\"127.0.0.0/8\"]\n");
    let gateway = Gateway::start(&config);

    let mut client = Client::connect(gateway.addr());
    client.send(b"GET /public/a HTTP/1.1\r\nHost: gw.test\r\nX-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: public.example\r\nX_Forwarded_For: 10.9.9.9\r\n\r\n");
    assert_eq!(client.read_response().status, 200);
    let received = upstream.last_request().expect("the upstream received the request");
    assert_eq!(received.header_all("X-Forwarded-For"), vec!["203.0.113.7, 127.0.0.1"]);
    assert_eq!(received.header_all("X-Forwarded-Proto"), vec!["https"]);
    assert_eq!(received.header_all("X-Forwarded-Host"), vec!["public.example"]);
    assert!(received.header("X_Forwarded_For").is_none(), "an alias passed from a trusted proxy");
}

#[test]
fn expect_continue_waits_for_decision() {
    let setup = TableGateway::start("", "");
    let mut client = Client::connect(setup.addr());
    client.set_timeout(Duration::from_secs(5));
    client.send(b"POST /public/echo HTTP/1.1\r\nHost: gw.test\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
    let interim = client.read_response();
    assert_eq!(interim.status, 100, "an allowed request gets 100 Continue before its body");
    client.send(b"hello");
    let response = client.read_response();
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"hello");
    assert_eq!(setup.upstream.last_request().expect("forwarded").body, b"hello");

    // A denied request gets its final status although no body byte was sent.
    let mut denied = Client::connect(setup.addr());
    denied.set_timeout(Duration::from_secs(5));
    denied.send(b"POST /admin HTTP/1.1\r\nHost: gw.test\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
    assert_eq!(denied.read_response().status, 401);
    assert_eq!(setup.upstream.request_count(), 1, "the denied request reached the upstream");
}
