//! Counts the heap allocations of the whole plain-proxy path: a gateway started in this
//! process with one worker, a client and an upstream on loopback sockets, and a counting
//! global allocator that counts on every thread. The client and the upstream here use fixed
//! arrays and never allocate per request, so what the counter records during the measured
//! requests is the gateway's. This is its own test binary because the count covers the whole
//! process: another test running alongside would add its allocations.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use portcullis::config::compile::compile_text;
use portcullis::server::Server;

#[path = "../src/access/allocation_counter.rs"]
mod allocation_counter;

use allocation_counter::count_process_allocations;

/// Requests before counting: buffers, pools and maps reach their working size.
const WARM_UP_REQUESTS: usize = 200;
/// Requests counted.
const COUNTED_REQUESTS: usize = 2000;

const REQUEST: &[u8] = b"GET /plain/item HTTP/1.1\r\nHost: gateway.test\r\nUser-Agent: allocation-test\r\nAccept: */*\r\n\r\n";
const UPSTREAM_RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok";

fn config(upstream: SocketAddr) -> String {
    format!(
        r#"
workers = 1

[proxy]
listen = ["127.0.0.1:0"]

[limits]
max_requests_per_connection = 100000
upstream_keepalive_requests = 100000

[access_rules]
matching_strategy = "glob"

[[services]]
name = "app"
url = "http://{upstream}"

[[routes]]
name = "plain"
service = "app"
paths = ["/plain"]
strip_path = false

[[rules]]
id = "plain"
match = {{ url = "http://gateway.test/plain<**>", methods = ["GET"] }}
authenticators = [{{ handler = "anonymous" }}]
authorizer = {{ handler = "allow" }}
mutators = [{{ handler = "noop" }}]
"#
    )
}

/// Position just after the first blank line of `bytes`, if it contains one.
fn head_end(bytes: &[u8]) -> Option<usize> {
    bytes.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

/// Reads one message whose head ends with a blank line and that carries `body` more bytes
/// into `buffer`; returns false when the peer closed first.
fn read_message(stream: &mut TcpStream, buffer: &mut [u8; 4096], body: usize) -> bool {
    let mut filled = 0;
    loop {
        if let Some(end) = head_end(&buffer[..filled]) {
            if filled >= end + body {
                return true;
            }
        }
        match stream.read(&mut buffer[filled..]) {
            Ok(0) | Err(_) => return false,
            Ok(n) => filled += n,
        }
        if filled == buffer.len() {
            return false;
        }
    }
}

/// Starts an upstream that sends the same fixed response to every GET on every connection.
fn start_upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the upstream");
    let addr = listener.local_addr().expect("upstream address");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut buffer = [0u8; 4096];
                while read_message(&mut stream, &mut buffer, 0) {
                    if stream.write_all(UPSTREAM_RESPONSE).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[test]
fn plain_proxy_path_allocates_nothing_per_request() {
    let upstream = start_upstream();
    let loaded = match compile_text(&config(upstream), "proxy_allocations.toml", None) {
        Ok(loaded) => loaded,
        Err(errors) => panic!("invalid test configuration: {errors}"),
    };
    let server = Server::start(loaded.config).expect("start the gateway");
    let gateway = server.proxy_addrs[0];

    let mut client = TcpStream::connect(gateway).expect("connect to the gateway");
    client.set_read_timeout(Some(Duration::from_secs(10))).expect("read timeout");
    client.set_nodelay(true).expect("nodelay");
    let mut buffer = [0u8; 4096];
    let mut exchange = |client: &mut TcpStream| {
        client.write_all(REQUEST).expect("send a request to the gateway");
        assert!(read_message(client, &mut buffer, 2), "the gateway closed the connection or timed out");
        assert!(buffer.starts_with(b"HTTP/1.1 200 "), "the gateway did not respond with 200");
    };

    for _ in 0..WARM_UP_REQUESTS {
        exchange(&mut client);
    }
    let (count, ()) = count_process_allocations(|| {
        for _ in 0..COUNTED_REQUESTS {
            exchange(&mut client);
        }
    });

    // Timers and pools may allocate now and then; one allocation per request would show as
    // at least COUNTED_REQUESTS.
    assert!(
        count < COUNTED_REQUESTS / 20,
        "{count} allocations in {COUNTED_REQUESTS} proxied requests ({:.2} per request)",
        count as f64 / COUNTED_REQUESTS as f64
    );

    drop(client);
    server.drain();
    server.join(Duration::from_secs(5));
}
