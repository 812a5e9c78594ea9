//! Upstream pipelining end to end. A service with `pipeline_depth` above 1 sends bodiless
//! GET and OPTIONS requests that are ready at the same time on one keep-alive connection. Every response must still reach the client that sent its request.
//!
//! The upstream here is a stand-in written for this file. Unlike the shared one in
//! `support`, it records for each connection how many request heads arrived in one read
//! and how many requests were waiting for a response at once. Those counts show whether
//! the gateway pipelined.

mod support;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use support::{free_port, Client, Gateway, Response, TempDir};

/// Client connections that send at the same moment in the concurrent tests.
const CLIENTS: usize = 32;

/// Time allowed for each response to reach a test client.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);

/// How often a stand-in connection thread wakes up to check whether the stand-in stops.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Time after which a stand-in connection thread gives up on its connection.
const CONNECTION_LIFETIME: Duration = Duration::from_secs(30);

/// Time a stand-in waits for the gateway to close a connection that the stand-in closed.
const CLOSE_DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// Buffered request bytes after which a stand-in connection is dropped as broken.
const MAX_BUFFERED_BYTES: usize = 1024 * 1024;

/// Reads per call of `UpstreamConnection::read` that takes what has already arrived.
const MAX_READS_PER_CALL: usize = 256;

/// Time a stand-in may block writing a padded response to a gateway that is not reading it.
const LARGE_RESPONSE_WRITE_TIMEOUT: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------------------
// Upstream stand-in

/// Locks a mutex, ignoring poisoning, so that a panicking thread does not hide the records.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Whether the stand-in closes each connection after its first response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CloseAfterFirst {
    /// Keep every connection open.
    Never,
    /// Send `Connection: close` with the first response, then close.
    WithHeader,
    /// Close right after the first response, which has no `Connection: close`.
    WithoutNotice,
}

/// How the stand-in responds, fixed when it starts.
#[derive(Clone, Debug)]
struct Behaviour {
    close_after_first: CloseAfterFirst,
    /// Path prefixes whose responses are written only after the given delay.
    delays: Vec<(String, Duration)>,
    /// Path prefix whose responses carry this many bytes of padding in the JSON body.
    padding: Option<(String, usize)>,
}

impl Behaviour {
    fn normal() -> Behaviour {
        Behaviour { close_after_first: CloseAfterFirst::Never, delays: Vec::new(), padding: None }
    }

    fn closing(mode: CloseAfterFirst) -> Behaviour {
        Behaviour { close_after_first: mode, ..Behaviour::normal() }
    }

    fn delaying(prefix: &str, delay: Duration) -> Behaviour {
        Behaviour { delays: vec![(prefix.to_owned(), delay)], ..Behaviour::normal() }
    }

    fn padding(prefix: &str, bytes: usize) -> Behaviour {
        Behaviour { padding: Some((prefix.to_owned(), bytes)), ..Behaviour::normal() }
    }

    fn padding_for(&self, path: &str) -> usize {
        match &self.padding {
            Some((prefix, bytes)) if path.starts_with(prefix.as_str()) => *bytes,
            _ => 0,
        }
    }

    fn delay_for(&self, path: &str) -> Duration {
        self.delays
            .iter()
            .find(|(prefix, _)| path.starts_with(prefix.as_str()))
            .map_or(Duration::ZERO, |(_, delay)| *delay)
    }
}

/// One request as the stand-in received it.
#[derive(Clone, Debug)]
struct UpstreamRequest {
    connection: u64,
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Requests on the same connection that were received and still waiting for a response
    /// when this one arrived.
    earlier_waiting: usize,
    /// Requests received on the same connection after this one but before its response was
    /// written. Bytes of an incomplete request count as one.
    later_received: usize,
    /// Whether the stand-in wrote a response. It is false for requests that the stand-in
    /// dropped by closing the connection.
    responded: bool,
}

impl UpstreamRequest {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(field, _)| field.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Returns the number of requests in flight on the connection while this one was.
    fn in_flight(&self) -> usize {
        1 + self.earlier_waiting + self.later_received
    }
}

/// What one connection to the stand-in carried.
#[derive(Clone, Debug, Default)]
struct ConnectionStats {
    requests: usize,
    reads: usize,
    /// Reads after which more than one complete request was parsed.
    reads_with_several_requests: usize,
    max_requests_per_read: usize,
    max_in_flight: usize,
}

#[derive(Default)]
struct Records {
    requests: Vec<UpstreamRequest>,
    connections: BTreeMap<u64, ConnectionStats>,
    errors: Vec<String>,
}

struct Shared {
    stopping: AtomicBool,
    behaviour: Behaviour,
    records: Mutex<Records>,
    connection_count: AtomicU64,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

/// An upstream on 127.0.0.1 that responds to every request with 200 and a JSON body naming
/// the path, in order, with one thread per connection. It stops on drop.
struct PipelineUpstream {
    address: SocketAddr,
    shared: Arc<Shared>,
    accept_thread: Option<JoinHandle<()>>,
}

impl PipelineUpstream {
    fn start(behaviour: Behaviour) -> PipelineUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the upstream stand-in");
        let address = listener.local_addr().expect("read the upstream stand-in address");
        let shared = Arc::new(Shared {
            stopping: AtomicBool::new(false),
            behaviour,
            records: Mutex::new(Records::default()),
            connection_count: AtomicU64::new(0),
            threads: Mutex::new(Vec::new()),
        });
        let accept_shared = Arc::clone(&shared);
        let accept_thread = std::thread::Builder::new()
            .name("pipeline-upstream-accept".to_owned())
            .spawn(move || accept_loop(&listener, &accept_shared))
            .expect("spawn the upstream accept thread");
        PipelineUpstream { address, shared, accept_thread: Some(accept_thread) }
    }

    fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    fn requests(&self) -> Vec<UpstreamRequest> {
        lock(&self.shared.records).requests.clone()
    }

    fn connections(&self) -> BTreeMap<u64, ConnectionStats> {
        lock(&self.shared.records).connections.clone()
    }

    fn connection_count(&self) -> u64 {
        self.shared.connection_count.load(Ordering::SeqCst)
    }

    fn errors(&self) -> Vec<String> {
        lock(&self.shared.records).errors.clone()
    }
}

impl Drop for PipelineUpstream {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Wake the blocking accept, so that the thread checks the flag.
        let _ = TcpStream::connect_timeout(&self.address, Duration::from_secs(1));
        if let Some(thread) = self.accept_thread.take() {
            let _ = thread.join();
        }
        // Each connection thread checks the flag at least every POLL_INTERVAL.
        let threads = std::mem::take(&mut *lock(&self.shared.threads));
        for thread in threads {
            let _ = thread.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        let id = shared.connection_count.fetch_add(1, Ordering::SeqCst) + 1;
        lock(&shared.records).connections.insert(id, ConnectionStats::default());
        let connection_shared = Arc::clone(shared);
        let spawned = std::thread::Builder::new()
            .name(format!("pipeline-upstream-{id}"))
            .spawn(move || UpstreamConnection::new(stream, id, connection_shared).serve());
        match spawned {
            Ok(thread) => lock(&shared.threads).push(thread),
            Err(error) => lock(&shared.records).errors.push(format!("spawn a thread for connection {id}: {error}")),
        }
    }
}

/// A request parsed off the wire, before it is recorded.
struct ParsedRequest {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// Parses one request at the start of `bytes` and returns it with its length in bytes, or
/// `None` while it is incomplete. Bodies may be framed by `Content-Length` or chunked.
fn parse_request(bytes: &[u8]) -> Result<Option<(ParsedRequest, usize)>, String> {
    let mut fields = [httparse::EMPTY_HEADER; 128];
    let mut request = httparse::Request::new(&mut fields);
    let head_length = match request.parse(bytes) {
        Ok(httparse::Status::Complete(length)) => length,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(error) => {
            let preview: String = String::from_utf8_lossy(bytes).chars().take(200).collect();
            return Err(format!("invalid request head ({error}): {preview:?}"));
        }
    };
    let method = request.method.unwrap_or_default().to_owned();
    let path = request.path.unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|field| (field.name.to_owned(), String::from_utf8_lossy(field.value).into_owned()))
        .collect();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(field, _)| field.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.trim().to_owned())
    };

    let rest = &bytes[head_length..];
    let (body, body_length) = if header("transfer-encoding").is_some_and(|value| value.eq_ignore_ascii_case("chunked")) {
        match decode_chunked(rest)? {
            Some(decoded) => decoded,
            None => return Ok(None),
        }
    } else if let Some(value) = header("content-length") {
        let length: usize = value.parse().map_err(|_| format!("invalid Content-Length {value:?}"))?;
        if rest.len() < length {
            return Ok(None);
        }
        (rest[..length].to_vec(), length)
    } else {
        (Vec::new(), 0)
    };
    Ok(Some((ParsedRequest { method, path, headers, body }, head_length + body_length)))
}

/// Decodes a chunked body at the start of `bytes`. Returns the data and the length of the
/// encoding with its trailer section, or `None` while it is incomplete.
fn decode_chunked(bytes: &[u8]) -> Result<Option<(Vec<u8>, usize)>, String> {
    let line_end = |from: usize| bytes[from..].windows(2).position(|pair| pair == b"\r\n").map(|at| from + at);
    let mut body = Vec::new();
    let mut at = 0;
    loop {
        let Some(end) = line_end(at) else { return Ok(None) };
        let line = String::from_utf8_lossy(&bytes[at..end]);
        let size_text = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| format!("invalid chunk size line {line:?}"))?;
        at = end + 2;
        if size == 0 {
            // Trailer fields up to the empty line.
            loop {
                let Some(end) = line_end(at) else { return Ok(None) };
                let empty = end == at;
                at = end + 2;
                if empty {
                    return Ok(Some((body, at)));
                }
            }
        }
        if bytes.len() < at + size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&bytes[at..at + size]);
        if &bytes[at + size..at + size + 2] != b"\r\n" {
            return Err("chunk data not followed by CRLF".to_owned());
        }
        at += size + 2;
    }
}

/// Result of reading from a stand-in connection.
enum ReadOutcome {
    /// New bytes arrived.
    Data,
    /// Nothing arrived before the poll interval ended or the socket would block.
    Nothing,
    /// The gateway closed the connection, or the socket failed.
    Closed,
}

/// The server side of one connection from the gateway.
struct UpstreamConnection {
    stream: TcpStream,
    id: u64,
    shared: Arc<Shared>,
    buffer: Vec<u8>,
    /// Indexes into `Records::requests` of the requests still waiting for a response, in order.
    waiting: VecDeque<usize>,
    responses_written: usize,
}

impl UpstreamConnection {
    fn new(stream: TcpStream, id: u64, shared: Arc<Shared>) -> UpstreamConnection {
        UpstreamConnection { stream, id, shared, buffer: Vec::new(), waiting: VecDeque::new(), responses_written: 0 }
    }

    fn error(&self, message: String) {
        lock(&self.shared.records).errors.push(format!("connection {}: {message}", self.id));
    }

    fn serve(mut self) {
        let _ = self.stream.set_nodelay(true);
        let configured = self.stream.set_read_timeout(Some(POLL_INTERVAL)).and_then(|()| self.stream.set_write_timeout(Some(RESPONSE_TIMEOUT)));
        if let Err(error) = configured {
            self.error(format!("configure the socket: {error}"));
            return;
        }
        let deadline = Instant::now() + CONNECTION_LIFETIME;
        while !self.shared.stopping.load(Ordering::SeqCst) && Instant::now() < deadline {
            if self.waiting.is_empty() {
                match self.read(false) {
                    ReadOutcome::Closed => return,
                    ReadOutcome::Data | ReadOutcome::Nothing => continue,
                }
            }
            if !self.respond_to_first() {
                return;
            }
        }
    }

    /// Reads what the gateway sent, waiting up to POLL_INTERVAL, or only what has already
    /// arrived when `already_arrived` is set, and records each complete request.
    fn read(&mut self, already_arrived: bool) -> ReadOutcome {
        if already_arrived && self.stream.set_nonblocking(true).is_err() {
            return ReadOutcome::Closed;
        }
        let mut outcome = ReadOutcome::Nothing;
        let mut chunk = [0u8; 64 * 1024];
        for _ in 0..MAX_READS_PER_CALL {
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    outcome = ReadOutcome::Closed;
                    break;
                }
                Ok(read) => {
                    self.buffer.extend_from_slice(&chunk[..read]);
                    if let Err(message) = self.take_complete_requests() {
                        self.error(message);
                        outcome = ReadOutcome::Closed;
                        break;
                    }
                    if self.buffer.len() > MAX_BUFFERED_BYTES {
                        self.error(format!("more than {MAX_BUFFERED_BYTES} bytes without a complete request"));
                        outcome = ReadOutcome::Closed;
                        break;
                    }
                    outcome = ReadOutcome::Data;
                    if !already_arrived {
                        break;
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) if matches!(error.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => break,
                Err(_) => {
                    outcome = ReadOutcome::Closed;
                    break;
                }
            }
        }
        if already_arrived && self.stream.set_nonblocking(false).is_err() {
            return ReadOutcome::Closed;
        }
        outcome
    }

    /// Parses and records every complete request in the buffer. Called once per read.
    fn take_complete_requests(&mut self) -> Result<(), String> {
        let mut parsed_count = 0;
        while let Some((parsed, length)) = parse_request(&self.buffer)? {
            self.buffer.drain(..length);
            parsed_count += 1;
            let request = UpstreamRequest {
                connection: self.id,
                method: parsed.method,
                path: parsed.path,
                headers: parsed.headers,
                body: parsed.body,
                earlier_waiting: self.waiting.len(),
                later_received: 0,
                responded: false,
            };
            let mut records = lock(&self.shared.records);
            let in_flight = request.in_flight();
            records.requests.push(request);
            let index = records.requests.len() - 1;
            let stats = records.connections.entry(self.id).or_default();
            stats.requests += 1;
            stats.max_in_flight = stats.max_in_flight.max(in_flight);
            drop(records);
            self.waiting.push_back(index);
        }
        let mut records = lock(&self.shared.records);
        let stats = records.connections.entry(self.id).or_default();
        stats.reads += 1;
        stats.max_requests_per_read = stats.max_requests_per_read.max(parsed_count);
        if parsed_count > 1 {
            stats.reads_with_several_requests += 1;
        }
        Ok(())
    }

    /// Waits for the configured delay, then responds to the oldest waiting request. Returns
    /// whether the connection stays open.
    fn respond_to_first(&mut self) -> bool {
        let Some(&index) = self.waiting.front() else { return true };
        let request = lock(&self.shared.records).requests[index].clone();

        let delay_end = Instant::now() + self.shared.behaviour.delay_for(&request.path);
        while Instant::now() < delay_end {
            if self.shared.stopping.load(Ordering::SeqCst) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10).min(delay_end.saturating_duration_since(Instant::now())));
        }

        // Whatever the gateway sent while this request waited was in flight with it.
        let peer_closed = matches!(self.read(true), ReadOutcome::Closed);
        let later_received = self.waiting.len() - 1 + usize::from(!self.buffer.is_empty());
        {
            let mut records = lock(&self.shared.records);
            records.requests[index].later_received = later_received;
            let in_flight = records.requests[index].in_flight();
            let stats = records.connections.entry(self.id).or_default();
            stats.max_in_flight = stats.max_in_flight.max(in_flight);
        }

        let mode = self.shared.behaviour.close_after_first;
        let close_requested = request.header("connection").is_some_and(|value| value.eq_ignore_ascii_case("close"));
        let close = close_requested || (self.responses_written == 0 && mode != CloseAfterFirst::Never);
        let announce_close = close_requested || mode == CloseAfterFirst::WithHeader;
        let padding = self.shared.behaviour.padding_for(&request.path);
        if padding > 0 && self.stream.set_write_timeout(Some(LARGE_RESPONSE_WRITE_TIMEOUT)).is_err() {
            return false;
        }
        if write_response(&mut self.stream, &request, self.id, close && announce_close, padding).is_err() {
            return false;
        }
        lock(&self.shared.records).requests[index].responded = true;
        self.waiting.pop_front();
        self.responses_written += 1;

        if close {
            self.close_gracefully();
            return false;
        }
        !peer_closed
    }

    /// Sends FIN and discards what arrives until the gateway closes too. Closing a socket with
    /// unread bytes sends a reset instead, which might make the gateway lose the response.
    fn close_gracefully(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Write);
        let deadline = Instant::now() + CLOSE_DRAIN_TIMEOUT;
        let mut chunk = [0u8; 16 * 1024];
        while Instant::now() < deadline && !self.shared.stopping.load(Ordering::SeqCst) {
            match self.stream.read(&mut chunk) {
                Ok(0) => return,
                Ok(_) => {}
                Err(error) if matches!(error.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted) => {}
                Err(_) => return,
            }
        }
    }
}

/// Writes 200 with `{"path", "method", "body", "connection", "padding"}` as JSON, or no body
/// for HEAD. `padding` is the length of the string in the `padding` member.
fn write_response(stream: &mut TcpStream, request: &UpstreamRequest, connection: u64, announce_close: bool, padding: usize) -> io::Result<()> {
    let body = serde_json::json!({
        "path": request.path,
        "method": request.method,
        "body": String::from_utf8_lossy(&request.body),
        "connection": connection,
        "padding": "p".repeat(padding),
    })
    .to_string();
    let mut response = format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n", body.len());
    if announce_close {
        response.push_str("Connection: close\r\n");
    }
    response.push_str("\r\n");
    if request.method != "HEAD" {
        response.push_str(&body);
    }
    stream.write_all(response.as_bytes())?;
    stream.flush()
}

// ---------------------------------------------------------------------------------------
// Gateway and clients

/// Returns a configuration with one service `app` (with `service_settings` added) behind a
/// catch-all route and an open rule (`anonymous`, `allow`, `noop`).
fn gateway_config(proxy: SocketAddr, upstream_url: &str, service_settings: &str) -> String {
    format!(
        r#"
workers = 2

[proxy]
listen = ["{proxy}"]

[access_rules]
matching_strategy = "glob"

[[services]]
name = "app"
url = "{upstream_url}"
{service_settings}

[[routes]]
name = "all"
service = "app"
paths = ["/"]
strip_path = false

[[rules]]
id = "open"
match = {{ url = "http://{proxy}/<**>", methods = ["GET", "HEAD", "OPTIONS", "POST"] }}
authenticators = [{{ handler = "anonymous" }}]
authorizer = {{ handler = "allow" }}
mutators = [{{ handler = "noop" }}]
"#
    )
}

/// A gateway in front of a [`PipelineUpstream`].
struct Setup {
    // Dropped first, so that the gateway stops before the upstream it talks to.
    gateway: Gateway,
    upstream: PipelineUpstream,
}

impl Setup {
    fn start(service_settings: &str, behaviour: Behaviour) -> Setup {
        let upstream = PipelineUpstream::start(behaviour);
        let proxy: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("a loopback address");
        let gateway = Gateway::start(&gateway_config(proxy, &upstream.url(), service_settings));
        Setup { gateway, upstream }
    }

    fn addr(&self) -> SocketAddr {
        self.gateway.addr()
    }

    /// Returns the last `count` lines of the gateway's stderr, for failure messages.
    fn log_tail(&self, count: usize) -> String {
        let log = self.gateway.stderr();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(count)..].join("\n")
    }
}

/// Returns a keep-alive GET for `path` with `Host: host`.
fn get_request(host: SocketAddr, path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n")
}

/// Reads the next final response, skipping 1xx interim responses.
fn read_final_response(client: &mut Client) -> Result<Response, String> {
    for _ in 0..4 {
        let response = client.try_read_response().map_err(|error| error.to_string())?;
        if response.status >= 200 {
            return Ok(response);
        }
    }
    Err("more than 3 interim responses".to_owned())
}

/// Checks that `response` is the stand-in's 200 for `path`.
fn check_echo(response: &Response, path: &str) -> Result<(), String> {
    if response.status != 200 {
        return Err(format!("{path}: status {} with body {}", response.status, response.text()));
    }
    let body: serde_json::Value = serde_json::from_slice(&response.body).map_err(|error| format!("{path}: body is not JSON ({error}): {}", response.text()))?;
    if body["path"] != path {
        return Err(format!("{path}: response names path {} (body {body})", body["path"]));
    }
    Ok(())
}

/// Sends a GET for `path` on `client` and checks that the response is the one for `path`.
fn get_and_check(client: &mut Client, host: SocketAddr, path: &str) -> Result<(), String> {
    client.try_send(get_request(host, path).as_bytes()).map_err(|error| format!("{path}: send failed: {error}"))?;
    let response = read_final_response(client).map_err(|error| format!("{path}: {error}"))?;
    check_echo(&response, path)
}

/// Runs `count` client threads, each with its own connection to `address`. The threads
/// connect, wait for each other, and then run `act` at the same moment. Returns one message
/// per client that failed.
fn run_clients<F>(address: SocketAddr, count: usize, act: F) -> Vec<String>
where
    F: Fn(usize, &mut Client) -> Result<(), String> + Send + Sync + 'static,
{
    let barrier = Arc::new(Barrier::new(count));
    let act = Arc::new(act);
    let threads: Vec<JoinHandle<Result<(), String>>> = (0..count)
        .map(|index| {
            let barrier = Arc::clone(&barrier);
            let act = Arc::clone(&act);
            std::thread::spawn(move || {
                // Every thread reaches the barrier, even when its connect fails, so none waits forever.
                let connected = std::panic::catch_unwind(|| Client::connect(address));
                barrier.wait();
                let mut client = connected.map_err(|_| format!("connect to {address} failed"))?;
                client.set_timeout(RESPONSE_TIMEOUT);
                act(index, &mut client)
            })
        })
        .collect();
    threads
        .into_iter()
        .enumerate()
        .filter_map(|(index, thread)| match thread.join() {
            Ok(Ok(())) => None,
            Ok(Err(message)) => Some(format!("client {index}: {message}")),
            Err(_) => Some(format!("client {index}: thread panicked")),
        })
        .collect()
}

/// Formats failures for an assertion message: the count and the first few.
fn summary(failures: &[String]) -> String {
    let first: Vec<&str> = failures.iter().take(10).map(String::as_str).collect();
    format!("{} failures, first ones:\n{}", failures.len(), first.join("\n"))
}

/// Returns how many upstream requests with a response name each path.
fn responses_per_path(requests: &[UpstreamRequest]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for request in requests.iter().filter(|request| request.responded) {
        *counts.entry(request.path.clone()).or_insert(0) += 1;
    }
    counts
}

/// Runs `rounds` bursts of [`CLIENTS`] new connections that each send one GET at the same
/// moment. Returns the failures and the number of upstream connections after the first burst.
fn run_bursts(setup: &Setup, rounds: usize) -> (Vec<String>, u64) {
    let mut failures = Vec::new();
    let mut connections_after_first = 0;
    for round in 0..rounds {
        let host = setup.addr();
        failures.extend(run_clients(host, CLIENTS, move |index, client| get_and_check(client, host, &format!("/burst/{round}/{index}"))));
        if round == 0 {
            connections_after_first = setup.upstream.connection_count();
        }
    }
    (failures, connections_after_first)
}

// ---------------------------------------------------------------------------------------
// Tests

#[test]
fn concurrent_gets_get_own_responses() {
    const REQUESTS_PER_CLIENT: usize = 50;
    let setup = Setup::start("pipeline_depth = 16", Behaviour::normal());
    let host = setup.addr();

    let failures = run_clients(host, CLIENTS, move |index, client| {
        for sequence in 0..REQUESTS_PER_CLIENT {
            get_and_check(client, host, &format!("/p/{index}/{sequence}"))?;
        }
        Ok(())
    });

    assert!(failures.is_empty(), "{}\n--- gateway log tail ---\n{}", summary(&failures), setup.log_tail(40));
    let requests = setup.upstream.requests();
    let counts = responses_per_path(&requests);
    assert_eq!(counts.len(), CLIENTS * REQUESTS_PER_CLIENT, "distinct paths that the upstream responded to");
    let repeated: Vec<(&String, &usize)> = counts.iter().filter(|(_, count)| **count > 1).collect();
    assert!(repeated.is_empty(), "paths that the upstream responded to more than once: {repeated:?}");
    assert!(setup.upstream.errors().is_empty(), "upstream errors: {:?}", setup.upstream.errors());
}

#[test]
fn simultaneous_gets_share_connections() {
    const ROUNDS: usize = 3;
    let setup = Setup::start("pipeline_depth = 16", Behaviour::normal());

    let (failures, connections_after_first) = run_bursts(&setup, ROUNDS);

    assert!(failures.is_empty(), "{}\n--- gateway log tail ---\n{}", summary(&failures), setup.log_tail(40));
    assert!(
        connections_after_first < CLIENTS as u64,
        "the upstream got {connections_after_first} connections for {CLIENTS} simultaneous requests, so none were shared"
    );
    let connections = setup.upstream.connections();
    let several_per_read: usize = connections.values().map(|stats| stats.reads_with_several_requests).sum();
    assert!(several_per_read >= 1, "no upstream read contained more than one request: {connections:?}");
    let max_in_flight = connections.values().map(|stats| stats.max_in_flight).max().unwrap_or(0);
    assert!(max_in_flight <= 16, "{max_in_flight} requests in flight on one connection, above pipeline_depth 16: {connections:?}");
    assert!(setup.upstream.errors().is_empty(), "upstream errors: {:?}", setup.upstream.errors());
}

#[test]
fn default_depth_never_pipelines() {
    const ROUNDS: usize = 3;
    let setup = Setup::start("", Behaviour::normal());

    let (failures, _) = run_bursts(&setup, ROUNDS);

    assert!(failures.is_empty(), "{}\n--- gateway log tail ---\n{}", summary(&failures), setup.log_tail(40));
    let connections = setup.upstream.connections();
    let pipelined: Vec<(&u64, &ConnectionStats)> =
        connections.iter().filter(|(_, stats)| stats.max_requests_per_read > 1).collect();
    assert!(pipelined.is_empty(), "connections with several requests in one read: {pipelined:?}");
    let overlapping: Vec<(&u64, &ConnectionStats)> = connections.iter().filter(|(_, stats)| stats.max_in_flight > 1).collect();
    assert!(overlapping.is_empty(), "connections with more than one request in flight: {overlapping:?}");
    let requests: usize = connections.values().map(|stats| stats.requests).sum();
    assert_eq!(requests, ROUNDS * CLIENTS, "requests the upstream received");
}

#[test]
fn head_and_body_requests_not_pipelined() {
    const ROUNDS: usize = 3;
    const PLAIN_GETS: usize = 12;
    let setup = Setup::start("pipeline_depth = 16", Behaviour::normal());
    let host = setup.addr();

    // Requests that must not be pipelined: the path suffix, the method, the header lines
    // after Host, and the body.
    let specials: [(&str, &str, &str, &str); 8] = [
        ("head-1", "HEAD", "", ""),
        ("head-2", "HEAD", "", ""),
        ("head-3", "HEAD", "", ""),
        ("head-4", "HEAD", "", ""),
        ("post", "POST", "Content-Length: 9\r\n", "post body"),
        ("get-with-body", "GET", "Content-Length: 8\r\n", "get body"),
        ("get-expect-with-body", "GET", "Expect: 100-continue\r\nContent-Length: 8\r\n", "expected"),
        ("get-expect-no-body", "GET", "Expect: 100-continue\r\n", ""),
    ];
    let mut failures = Vec::new();
    for round in 0..ROUNDS {
        failures.extend(run_clients(host, PLAIN_GETS + specials.len(), move |index, client| {
            let Some(&(name, method, headers, body)) = specials.get(index) else {
                return get_and_check(client, host, &format!("/c/{round}/get/{index}"));
            };
            let path = format!("/c/{round}/{name}");
            let raw = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\n{headers}\r\n{body}");
            client.try_send(raw.as_bytes()).map_err(|error| format!("{path}: send failed: {error}"))?;
            if method == "HEAD" {
                let response = client.try_read_response_to_head().map_err(|error| format!("{path}: {error}"))?;
                if response.status != 200 || !response.body.is_empty() {
                    return Err(format!("{path}: HEAD got status {} with body {}", response.status, response.text()));
                }
                return Ok(());
            }
            let response = read_final_response(client).map_err(|error| format!("{path}: {error}"))?;
            check_echo(&response, &path)?;
            let echoed = response.json()["body"].clone();
            if echoed != body {
                return Err(format!("{path}: upstream received body {echoed}, expected {body:?}"));
            }
            Ok(())
        }));
    }
    assert!(failures.is_empty(), "{}\n--- gateway log tail ---\n{}", summary(&failures), setup.log_tail(40));

    let requests = setup.upstream.requests();
    for round in 0..ROUNDS {
        for (name, ..) in specials {
            let path = format!("/c/{round}/{name}");
            let received: Vec<&UpstreamRequest> = requests.iter().filter(|request| request.path == path).collect();
            assert_eq!(received.len(), 1, "{path} received by the upstream: {received:?}");
            let request = received[0];
            assert_eq!(request.earlier_waiting, 0, "{path} was sent behind another request on connection {}", request.connection);
            assert_eq!(request.later_received, 0, "another request was sent behind {path} on connection {}", request.connection);
        }
    }
}

/// Runs concurrent keep-alive GETs against an upstream that closes each connection after
/// its first response, and checks that every client gets its own 200.
fn check_resend_after_close(mode: CloseAfterFirst) {
    const REQUESTS_PER_CLIENT: usize = 2;
    let setup = Setup::start("pipeline_depth = 16", Behaviour::closing(mode));
    let host = setup.addr();

    let failures = run_clients(host, CLIENTS, move |index, client| {
        for sequence in 0..REQUESTS_PER_CLIENT {
            get_and_check(client, host, &format!("/d/{index}/{sequence}"))?;
        }
        Ok(())
    });

    let requests = setup.upstream.requests();
    let dropped = requests.iter().filter(|request| !request.responded).count();
    let upstream_summary = format!(
        "the upstream accepted {} connections, received {} requests and dropped {dropped} of them by closing",
        setup.upstream.connection_count(),
        requests.len()
    );
    // Printed for `--nocapture` runs: a dropped request shows that the resend path ran.
    eprintln!("{mode:?}: {upstream_summary}");
    assert!(failures.is_empty(), "{}\n{upstream_summary}\n--- gateway log tail ---\n{}", summary(&failures), setup.log_tail(60));
    let counts = responses_per_path(&requests);
    assert_eq!(counts.len(), CLIENTS * REQUESTS_PER_CLIENT, "distinct paths that the upstream responded to");
    assert!(setup.upstream.errors().is_empty(), "upstream errors: {:?}", setup.upstream.errors());
}

#[test]
fn upstream_close_with_header_resends() {
    check_resend_after_close(CloseAfterFirst::WithHeader);
}

#[test]
fn upstream_close_without_notice_resends() {
    check_resend_after_close(CloseAfterFirst::WithoutNotice);
}

#[test]
fn client_disconnect_spares_other_clients() {
    const ROUNDS: usize = 2;
    // The delay keeps the abandoned requests in flight, with others queued behind them,
    // when their clients close.
    let mut setup = Setup::start("pipeline_depth = 16", Behaviour::delaying("/e/gone/", Duration::from_millis(200)));
    let host = setup.addr();

    let mut failures = Vec::new();
    for round in 0..ROUNDS {
        failures.extend(run_clients(host, CLIENTS, move |index, client| {
            if index % 2 == 0 {
                let path = format!("/e/gone/{round}/{index}");
                // The client closes its socket without reading when the thread returns.
                return client.try_send(get_request(host, &path).as_bytes()).map_err(|error| format!("{path}: send failed: {error}"));
            }
            get_and_check(client, host, &format!("/e/stay/{round}/{index}"))
        }));
    }
    assert!(failures.is_empty(), "{}\n--- gateway log tail ---\n{}", summary(&failures), setup.log_tail(60));

    let mut client = Client::connect(host);
    client.set_timeout(RESPONSE_TIMEOUT);
    let after = get_and_check(&mut client, host, "/e/after");
    assert_eq!(after, Ok(()), "a new request after the disconnects\n--- gateway log tail ---\n{}", setup.log_tail(60));
    assert!(setup.gateway.is_running(), "the gateway exited:\n{}", setup.log_tail(60));
    assert!(!setup.gateway.stderr().contains("panicked"), "the gateway panicked:\n{}", setup.log_tail(60));
}

#[test]
fn slow_response_times_out_alone() {
    const ROUNDS: usize = 3;
    const FAST_CLIENTS: usize = 8;
    let setup = Setup::start("pipeline_depth = 16\nread_timeout = 300", Behaviour::delaying("/slow", Duration::from_millis(1500)));
    let host = setup.addr();

    let mut failures = Vec::new();
    for round in 0..ROUNDS {
        failures.extend(run_clients(host, FAST_CLIENTS + 1, move |index, client| {
            if index > 0 {
                return get_and_check(client, host, &format!("/fast/{round}/{index}"));
            }
            let path = format!("/slow/{round}");
            client.try_send(get_request(host, &path).as_bytes()).map_err(|error| format!("{path}: send failed: {error}"))?;
            let response = read_final_response(client).map_err(|error| format!("{path}: {error}"))?;
            if response.status != 504 {
                return Err(format!("{path}: status {} with body {}, expected 504", response.status, response.text()));
            }
            if response.header("Content-Type") != Some("application/json") {
                return Err(format!("{path}: 504 with Content-Type {:?}", response.header("Content-Type")));
            }
            let body: serde_json::Value = serde_json::from_slice(&response.body).map_err(|error| format!("{path}: 504 body is not JSON ({error}): {}", response.text()))?;
            if body["error"]["code"] != 504 {
                return Err(format!("{path}: 504 body {body}"));
            }
            Ok(())
        }));
    }

    // Printed for `--nocapture` runs: a fast request that the upstream never responded to was
    // queued behind a slow one, so its success shows that the resend path ran.
    let requests = setup.upstream.requests();
    let fast_without_response: Vec<&str> = requests
        .iter()
        .filter(|request| request.path.starts_with("/fast/") && !request.responded)
        .map(|request| request.path.as_str())
        .collect();
    eprintln!("fast requests left without a response on a connection: {fast_without_response:?}");
    assert!(failures.is_empty(), "{}\n--- gateway log tail ---\n{}", summary(&failures), setup.log_tail(60));
}

#[test]
fn slow_reader_releases_queued_requests() {
    const MAX_ROUNDS: usize = 5;
    const SLOW_READERS: usize = 4;
    const FAST_CLIENTS: usize = 12;
    // Longer than RESPONSE_TIMEOUT, so that a fast request that waits for a slow reader to
    // close fails. The default read_timeout (60 s) would keep it waiting that long.
    const HOLD: Duration = Duration::from_secs(6);
    let mut setup = Setup::start("pipeline_depth = 16", Behaviour::padding("/big/", 16 * 1024 * 1024));
    let host = setup.addr();

    // Each round, a few clients request 16 MiB and read nothing for HOLD while the others
    // send small GETs at the same moment. Rounds repeat until a small request has been
    // queued behind a large one at least once.
    let mut failures = Vec::new();
    let mut queued_behind_large = 0;
    for round in 0..MAX_ROUNDS {
        failures.extend(run_clients(host, SLOW_READERS + FAST_CLIENTS, move |index, client| {
            if index < SLOW_READERS {
                let path = format!("/big/{round}/{index}");
                client.try_send(get_request(host, &path).as_bytes()).map_err(|error| format!("{path}: send failed: {error}"))?;
                std::thread::sleep(HOLD);
                return Ok(());
            }
            get_and_check(client, host, &format!("/fast/{round}/{index}"))
        }));
        // A small request that the upstream never responded to was stuck behind a large
        // response on its connection, so its client got the response from another one.
        queued_behind_large = setup
            .upstream
            .requests()
            .iter()
            .filter(|request| request.path.starts_with("/fast/") && !request.responded)
            .count();
        if queued_behind_large > 0 || !failures.is_empty() {
            break;
        }
    }
    assert!(failures.is_empty(), "{}\n--- gateway log tail ---\n{}", summary(&failures), setup.log_tail(60));
    assert!(queued_behind_large > 0, "no small request was queued behind a large response in {MAX_ROUNDS} rounds");
    assert!(setup.gateway.is_running(), "the gateway exited:\n{}", setup.log_tail(60));
}

/// Runs `portcullis check` on `config` and returns (exit code, stderr).
fn check_config(config: &str) -> (i32, String) {
    let directory = TempDir::new("portcullis-pipelining-check");
    let path = directory.path().join("gateway.toml");
    std::fs::write(&path, config).unwrap_or_else(|error| panic!("write {}: {error}", path.display()));
    let output = Command::new(Path::new(env!("CARGO_BIN_EXE_portcullis")))
        .args(["check", "--config"])
        .arg(&path)
        .env_remove("RUST_LOG")
        .output()
        .expect("run portcullis check");
    (output.status.code().unwrap_or(-1), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn check_rejects_depth_out_of_range() {
    let proxy: SocketAddr = "127.0.0.1:8000".parse().expect("a loopback address");
    for depth in [0, 65] {
        let (code, stderr) = check_config(&gateway_config(proxy, "http://127.0.0.1:8090", &format!("pipeline_depth = {depth}")));
        assert_eq!(code, 1, "pipeline_depth = {depth}: stderr {stderr}");
        assert!(stderr.contains("pipeline_depth"), "pipeline_depth = {depth}: stderr {stderr}");
    }
    for depth in [1, 16, 64] {
        let (code, stderr) = check_config(&gateway_config(proxy, "http://127.0.0.1:8090", &format!("pipeline_depth = {depth}")));
        assert_eq!(code, 0, "pipeline_depth = {depth}: stderr {stderr}");
    }
}

#[test]
fn start_rejects_depth_out_of_range() {
    let proxy: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("a loopback address");
    for depth in [0, 65] {
        let started = Gateway::try_start(&gateway_config(proxy, "http://127.0.0.1:8090", &format!("pipeline_depth = {depth}")));
        let error = match started {
            Ok(_) => panic!("the gateway started with pipeline_depth = {depth}"),
            Err(error) => error,
        };
        assert!(error.status.is_some(), "pipeline_depth = {depth}: the gateway did not exit: {error}");
        assert!(error.stderr.contains("pipeline_depth"), "pipeline_depth = {depth}: {error}");
    }
}
