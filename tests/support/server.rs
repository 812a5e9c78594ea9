//! The threaded HTTP/1.1 server under the test stand-ins: one thread accepts, and one thread
//! per connection reads requests (keep-alive and pipelined), records each one, and hands it
//! to a [`Handler`] that writes the response. Blocking sockets, no async runtime.

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use super::request::{BodyFraming, RecordedRequest};
use super::request::{ReadError, RequestReader};

/// Requests kept by one server; later ones are only counted.
const MAX_RECORDED_REQUESTS: usize = 100_000;

/// What a connection does after a handler returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterResponse {
    /// Read the next request, unless the request asked to close.
    KeepAlive,
    /// Close the connection.
    Close,
}

/// Writes the response to one recorded request.
pub trait Handler: Send + Sync + 'static {
    /// Writes the response to `request` on `stream`, or nothing.
    fn handle(
        &self,
        request: &RecordedRequest,
        stream: &mut TcpStream,
    ) -> io::Result<AfterResponse>;
}

/// State shared between a server handle and its threads.
struct Shared {
    stopping: AtomicBool,
    requests: Mutex<Vec<RecordedRequest>>,
    request_count: AtomicUsize,
    connection_count: AtomicU64,
    /// Clones of open connections, so that stopping can shut them down.
    open: Mutex<HashMap<u64, TcpStream>>,
    protocol_errors: Mutex<Vec<String>>,
}

/// Locks a mutex, ignoring poisoning: a panicking test thread must not hide the records.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running server on `127.0.0.1:0`; stops on drop.
pub struct Server {
    address: SocketAddr,
    shared: Arc<Shared>,
    accept_thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Binds `127.0.0.1:0` and starts accepting; `name` labels the threads.
    pub fn start(name: &str, handler: Arc<dyn Handler>) -> Server {
        let listener =
            TcpListener::bind("127.0.0.1:0").expect("bind a loopback listener for a stand-in");
        let address = listener
            .local_addr()
            .expect("read the stand-in listener address");
        let shared = Arc::new(Shared {
            stopping: AtomicBool::new(false),
            requests: Mutex::new(Vec::new()),
            request_count: AtomicUsize::new(0),
            connection_count: AtomicU64::new(0),
            open: Mutex::new(HashMap::new()),
            protocol_errors: Mutex::new(Vec::new()),
        });
        let accept_shared = Arc::clone(&shared);
        let thread_name = format!("{name}-accept");
        let connection_name = name.to_owned();
        let accept_thread = std::thread::Builder::new()
            .name(thread_name)
            .spawn(move || accept_loop(listener, accept_shared, handler, connection_name))
            .expect("spawn the stand-in accept thread");
        Server {
            address,
            shared,
            accept_thread: Some(accept_thread),
        }
    }

    /// Returns the listening address.
    pub fn addr(&self) -> SocketAddr {
        self.address
    }

    /// Returns a copy of the recorded requests, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// Returns the number of requests received, including any past the recording limit.
    pub fn request_count(&self) -> usize {
        self.shared.request_count.load(Ordering::SeqCst)
    }

    /// Returns the number of TCP connections accepted.
    pub fn connection_count(&self) -> u64 {
        self.shared.connection_count.load(Ordering::SeqCst)
    }

    /// Returns a description of each request that could not be parsed.
    pub fn protocol_errors(&self) -> Vec<String> {
        lock(&self.shared.protocol_errors).clone()
    }

    /// Waits until at least `count` requests arrived or `timeout` passed, and returns the
    /// number that arrived.
    pub fn wait_for_request_count(&self, count: usize, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            let received = self.request_count();
            if received >= count || Instant::now() >= deadline {
                return received;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Closes the listener, so that new connections are refused, and shuts down every open
    /// connection. Does nothing the second time.
    pub fn stop(&mut self) {
        let Some(accept_thread) = self.accept_thread.take() else {
            return;
        };
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Wake the blocking accept, so that the thread finds the flag set and drops the listener.
        let _ = TcpStream::connect_timeout(&self.address, Duration::from_secs(1));
        let _ = accept_thread.join();
        for stream in lock(&self.shared.open).values() {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    handler: Arc<dyn Handler>,
    name: String,
) {
    for stream in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else {
            // Out of descriptors or an aborted connection: try again shortly.
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        let _ = stream.set_nodelay(true);
        let connection_id = shared.connection_count.fetch_add(1, Ordering::SeqCst) + 1;
        if let Ok(clone) = stream.try_clone() {
            lock(&shared.open).insert(connection_id, clone);
        }
        let connection_shared = Arc::clone(&shared);
        let connection_handler = Arc::clone(&handler);
        let spawned = std::thread::Builder::new()
            .name(format!("{name}-conn-{connection_id}"))
            .spawn(move || {
                serve_connection(
                    stream,
                    connection_id,
                    &connection_shared,
                    connection_handler.as_ref(),
                );
                lock(&connection_shared.open).remove(&connection_id);
            });
        if spawned.is_err() {
            lock(&shared.open).remove(&connection_id);
        }
    }
}

fn serve_connection(stream: TcpStream, connection_id: u64, shared: &Shared, handler: &dyn Handler) {
    let Ok(peer) = stream.peer_addr() else {
        return;
    };
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = RequestReader::new(stream);
    loop {
        let request = match reader.next_request(connection_id, peer) {
            Ok(Some(request)) => request,
            Ok(None) => break,
            Err(ReadError::Io(_)) => break,
            Err(ReadError::Malformed(reason)) => {
                lock(&shared.protocol_errors).push(reason);
                let _ = write_simple(&mut writer, 400, "malformed request", true);
                break;
            }
        };

        let invalid_framing = matches!(request.framing, BodyFraming::Invalid { .. });
        let wants_close = request.wants_close();
        record(shared, request.clone());
        if invalid_framing {
            let _ = write_simple(&mut writer, 400, "invalid framing", true);
            break;
        }

        match handler.handle(&request, &mut writer) {
            Ok(AfterResponse::KeepAlive) if !wants_close => {}
            _ => break,
        }
    }
    let _ = writer.shutdown(Shutdown::Both);
}

fn record(shared: &Shared, request: RecordedRequest) {
    let mut requests = lock(&shared.requests);
    if requests.len() < MAX_RECORDED_REQUESTS {
        requests.push(request);
    }
    shared.request_count.fetch_add(1, Ordering::SeqCst);
}

/// Returns the usual reason phrase of `status`.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// Returns whether a response with `status` to a request has no body (RFC 9110 section 6.4.1).
pub fn response_has_no_body(request: &RecordedRequest, status: u16) -> bool {
    request.is_head() || status < 200 || status == 204 || status == 304
}

/// Writes a status line and header fields, then the blank line.
pub fn write_head(
    stream: &mut TcpStream,
    status: u16,
    headers: &[(String, String)],
) -> io::Result<()> {
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason_phrase(status));
    for (name, value) in headers {
        head.push_str(name);
        head.push_str(": ");
        head.push_str(value);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())
}

/// Writes a complete response: `headers`, a `Content-Length` unless `headers` frame the body
/// themselves, `Connection: close` when `close` is set, and `body` unless the request or
/// status forbid one.
pub fn write_response(
    stream: &mut TcpStream,
    request: &RecordedRequest,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
    close: bool,
) -> io::Result<()> {
    let mut all_headers = headers.to_vec();
    let framed = headers.iter().any(|(name, _)| {
        name.eq_ignore_ascii_case("content-length")
            || name.eq_ignore_ascii_case("transfer-encoding")
    });
    let bodyless_status = status < 200 || status == 204 || status == 304;
    if !framed && !bodyless_status {
        all_headers.push(("Content-Length".to_owned(), body.len().to_string()));
    }
    if close {
        all_headers.push(("Connection".to_owned(), "close".to_owned()));
    }
    write_head(stream, status, &all_headers)?;
    if !response_has_no_body(request, status) {
        stream.write_all(body)?;
    }
    stream.flush()
}

/// Writes a JSON error response that the server sends on its own, and closes after it.
fn write_simple(stream: &mut TcpStream, status: u16, message: &str, close: bool) -> io::Result<()> {
    let body = serde_json::json!({ "error": message }).to_string();
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        reason_phrase(status),
        body.len()
    );
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())
}
