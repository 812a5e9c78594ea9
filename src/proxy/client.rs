//! A client connection: reading request heads, running the access pipeline, and handing
//! granted requests to an upstream exchange (`exchange.rs`), one request at a time and in
//! order. Pipelined requests wait in the read buffer until the one before them is answered,
//! so a later request never rides on an earlier request's identity.
//!
//! States, by what the connection is waiting for:
//! - `Head`: the next request head (keep-alive idle until its first byte);
//! - `Access`: a session check or remote authorization subrequest;
//! - `Proxy`: the upstream exchange (request body out, response in);
//! - `Respond`: a local answer being written;
//! - `Closing`: the last bytes being flushed before the socket closes.

use std::net::SocketAddr;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::{Buf, BytesMut};
use tracing::{debug, warn};

use super::exchange::Exchange;
use super::local;
use super::router::{strip_port, RouteMatch, RouteRequest};
use super::socket::{Readiness, Stream};
use super::upstream::UpstreamPool;
use crate::access::errors::{AccessError, ErrorKind, ErrorRequest, ErrorResponse};
use crate::access::matcher::MatchOutcome;
use crate::access::pipeline::{AccessRequest, Pipeline, Step};
use crate::access::session::SubResult;
use crate::config::Config;
use crate::http::{RequestBody, RequestHead, TargetForm};
use crate::identity::Waiter;
use crate::reactor::buffers::{BufferPool, BUFFER_BYTES};
use crate::reactor::timer::Timers;
use crate::reactor::worker::{Ctx, Io};
use crate::reactor::ListenerRole;

/// How long a closing connection keeps reading (and discarding) what the client still sends,
/// so that the client receives the response instead of a reset.
const LINGER: Duration = Duration::from_secs(5);

/// Safety net for a request waiting on subrequests, which carry their own deadlines.
const ACCESS_DEADLINE: Duration = Duration::from_secs(120);

/// Bytes discarded while lingering before the connection is closed anyway.
const MAX_LINGER_BYTES: usize = 1024 * 1024;

/// Queued response bytes above which no further pipelined request is started, so a client
/// that sends requests without reading responses cannot grow the write buffer.
const WRITE_HIGH_WATER: usize = 64 * 1024;

/// An incomplete head is parsed again only when its end may have arrived or at least this
/// many bytes came since the last attempt, so a head sent in tiny pieces costs linear time.
const HEAD_REPARSE_BYTES: usize = 1024;

/// What the worker does with the connection after `drive`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    Continue,
    Close,
}

/// Whether a state made progress.
pub(super) enum Flow {
    /// Something changed; run the state machine again.
    Again,
    /// Nothing more can happen until an event, a timer or a subrequest result.
    Wait,
    /// Close the connection now.
    Close,
}

pub(super) enum State {
    Head { started: Option<Instant> },
    Access(Box<AccessState>),
    Proxy(Box<Exchange>),
    Respond { close: bool },
    Closing { linger_until: Option<Instant> },
}

pub(super) struct AccessState {
    pub route: RouteMatch,
    pub pipeline: Pipeline,
    pub captures: Vec<String>,
    pub waiting: bool,
    /// Set for decision API requests: the request being decided about, rebuilt from
    /// `X-Forwarded-*` headers. A decision ends in a local answer, never an exchange.
    pub decision: Option<Box<DecisionTarget>>,
}

/// Boxes of per-request state that a worker keeps between requests, so that a request
/// reuses the allocations of an earlier one: the boxes themselves, and the vectors inside.
#[derive(Default)]
pub struct Recycled {
    access: Vec<Box<AccessState>>,
    exchanges: Vec<Box<Exchange>>,
}

/// Boxes kept of each kind per worker: more than the requests one loop iteration usually
/// finishes, few enough to be noise next to the connections' buffers.
const MAX_RECYCLED: usize = 64;

impl Recycled {
    /// Boxes `access`, in a recycled box when there is one.
    fn access(&mut self, access: AccessState) -> Box<AccessState> {
        match self.access.pop() {
            Some(mut boxed) => {
                *boxed = access;
                boxed
            }
            None => Box::new(access),
        }
    }

    /// Keeps the box of a finished access check. What it refers to (a session, captures) is
    /// dropped now rather than when the box is reused.
    fn give_access(&mut self, mut access: Box<AccessState>) {
        if self.access.len() < MAX_RECYCLED {
            access.pipeline = Pipeline::new(0);
            access.captures.clear();
            access.decision = None;
            self.access.push(access);
        }
    }

    /// Takes a box for an exchange, if one is kept.
    pub(super) fn take_exchange(&mut self) -> Option<Box<Exchange>> {
        self.exchanges.pop()
    }

    /// Keeps the box of a finished exchange. One that still owns an upstream connection is
    /// dropped instead, so that a kept box never keeps a socket open.
    pub(super) fn give_exchange(&mut self, exchange: Box<Exchange>) {
        if self.exchanges.len() < MAX_RECYCLED && exchange.is_detached() {
            self.exchanges.push(exchange);
        }
    }
}

/// The request a decision is about.
pub(super) struct DecisionTarget {
    pub method: Vec<u8>,
    pub scheme: String,
    pub host: Vec<u8>,
    pub path: Vec<u8>,
    pub query: Option<Vec<u8>>,
}

pub struct ClientConn {
    pub slot: usize,
    pub serial: u64,
    pub stream: Stream,
    pub(super) peer: SocketAddr,
    pub(super) local: SocketAddr,
    role: ListenerRole,
    pub(super) rbuf: BytesMut,
    pub(super) wbuf: BytesMut,
    pub(super) head: RequestHead,
    pub(super) response_head: crate::http::ResponseHead,
    state: State,
    pub(super) served: u32,
    pub(super) config: Arc<Config>,
    /// Start of the current timed phase (idle wait, access check, local response).
    since: Instant,
    /// Last time bytes were written to the client.
    pub(super) last_write: Instant,
    timer_queued: Option<Instant>,
    timed_out: bool,
    pub(super) draining: bool,
    /// The request being handled has body bytes that were not read.
    pub(super) unread_body: bool,
    /// How far the read buffer was searched for the end of an incomplete head.
    head_scanned: usize,
    /// Read-buffer length at the last parse attempt that needed more bytes.
    head_parsed_len: usize,
    /// Bytes discarded while lingering.
    lingered_bytes: usize,
    /// `head` holds storage lent by the worker's pool (given back while idle).
    head_lent: bool,
    subresult: Option<Arc<SubResult>>,
}

impl ClientConn {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        slot: usize,
        serial: u64,
        tcp: mio::net::TcpStream,
        peer: SocketAddr,
        local: SocketAddr,
        role: ListenerRole,
        tls: Option<Arc<rustls::ServerConfig>>,
        config: Arc<Config>,
        now: Instant,
    ) -> Result<ClientConn, rustls::Error> {
        let stream = match tls {
            Some(tls) => Stream::tls(tcp, rustls::ServerConnection::new(tls)?),
            None => Stream::plain(tcp),
        };
        Ok(ClientConn {
            slot,
            serial,
            stream,
            peer,
            local,
            role,
            rbuf: BytesMut::new(),
            wbuf: BytesMut::new(),
            head: RequestHead::new(),
            response_head: crate::http::ResponseHead::new(),
            state: State::Head { started: None },
            served: 0,
            config,
            since: now,
            last_write: now,
            timer_queued: None,
            timed_out: false,
            draining: false,
            unread_body: false,
            head_scanned: 0,
            head_parsed_len: 0,
            lingered_bytes: 0,
            head_lent: false,
            subresult: None,
        })
    }

    pub fn role(&self) -> ListenerRole {
        self.role
    }

    pub fn arm_initial_timer(&mut self, timers: &mut Timers) {
        self.arm_timer(timers);
    }

    pub fn on_upstream_event(&mut self, readiness: Readiness) {
        if let State::Proxy(exchange) = &mut self.state {
            exchange.on_upstream_event(readiness);
        }
    }

    /// Returns the exchange in progress, if the connection is proxying.
    pub(super) fn exchange_mut(&mut self) -> Option<&mut Exchange> {
        match &mut self.state {
            State::Proxy(exchange) => Some(exchange),
            _ => None,
        }
    }

    pub fn on_subresult(&mut self, result: Arc<SubResult>) {
        self.subresult = Some(result);
    }

    pub fn timer_fired(&mut self, _at: Instant) {
        self.timer_queued = None;
        self.timed_out = true;
    }

    pub fn begin_drain(&mut self) {
        self.draining = true;
    }

    /// Runs the connection until it has to wait. Never blocks.
    pub fn drive(&mut self, ctx: &mut Ctx<'_>) -> Next {
        loop {
            let flow = match std::mem::replace(&mut self.state, State::Closing { linger_until: None }) {
                State::Head { started } => self.on_head(started, ctx),
                State::Access(access) => self.on_access(access, ctx),
                State::Proxy(exchange) => self.on_proxy(exchange, ctx),
                State::Respond { close } => self.on_respond(close, ctx),
                State::Closing { linger_until } => self.on_closing(linger_until, ctx),
            };
            match flow {
                Flow::Again => continue,
                Flow::Wait => break,
                Flow::Close => return Next::Close,
            }
        }
        self.timed_out = false;
        if self.rbuf.is_empty() {
            ctx.buffers.give(&mut self.rbuf);
        }
        if self.wbuf.is_empty() {
            ctx.buffers.give(&mut self.wbuf);
        }
        self.arm_timer(&mut ctx.io.timers);
        Next::Continue
    }

    /// Releases everything the connection holds. Called once, when the worker drops it.
    pub fn close(&mut self, io: &mut Io, pool: &mut UpstreamPool, buffers: &mut BufferPool) {
        let _ = pool;
        if let State::Proxy(exchange) = std::mem::replace(&mut self.state, State::Closing { linger_until: None }) {
            exchange.abort(io, buffers);
        }
        let _ = io.registry.deregister(self.stream.tcp_mut());
        self.rbuf.clear();
        self.wbuf.clear();
        buffers.give(&mut self.rbuf);
        buffers.give(&mut self.wbuf);
        if self.head_lent {
            buffers.give_request_head(std::mem::take(&mut self.head));
        }
        buffers.give_response_head(std::mem::take(&mut self.response_head));
    }

    pub(super) fn read_limit(&self) -> usize {
        self.config.limits.request.max_head_bytes.max(BUFFER_BYTES)
    }

    /// Reads once from the client if there is room. Err(()) means the socket failed.
    pub(super) fn read_client(&mut self, buffers: &mut BufferPool) -> Result<usize, ()> {
        let limit = self.read_limit();
        if !self.stream.readable || self.stream.read_closed || self.rbuf.len() >= limit {
            return Ok(0);
        }
        buffers.ensure(&mut self.rbuf);
        self.stream.read(&mut self.rbuf, limit).map_err(|error| {
            debug!(peer = %self.peer, %error, "client read failed");
        })
    }

    /// Writes queued bytes to the client. Err(()) means the socket failed.
    pub(super) fn write_client(&mut self, now: Instant) -> Result<bool, ()> {
        if (self.wbuf.is_empty() && !self.stream.has_pending_output()) || !self.stream.writable {
            return Ok(false);
        }
        let before = self.wbuf.len();
        self.stream.write(&mut self.wbuf).map_err(|error| {
            debug!(peer = %self.peer, %error, "client write failed");
        })?;
        let progressed = self.wbuf.len() < before;
        if progressed {
            self.last_write = now;
        }
        Ok(progressed)
    }

    fn on_head(&mut self, started: Option<Instant>, ctx: &mut Ctx<'_>) -> Flow {
        let now = ctx.io.now;
        if self.draining && self.rbuf.is_empty() {
            self.state = State::Closing { linger_until: None };
            return Flow::Again;
        }
        if self.write_client(now).is_err() {
            return Flow::Close;
        }
        if self.wbuf.len() >= WRITE_HIGH_WATER {
            // The client is not reading its responses: take no new request until it does.
            if self.timed_out && now >= self.last_write + self.config.limits.send_timeout {
                return Flow::Close;
            }
            self.state = State::Head { started };
            return Flow::Wait;
        }
        let read = match self.read_client(ctx.buffers) {
            Ok(read) => read,
            Err(()) => return Flow::Close,
        };
        let started = match started {
            None if !self.rbuf.is_empty() => Some(now),
            other => other,
        };
        if self.rbuf.is_empty() {
            if self.head_lent {
                ctx.buffers.give_request_head(std::mem::take(&mut self.head));
                self.head_lent = false;
            }
            if self.stream.read_closed {
                return Flow::Close;
            }
            let limit = if self.served == 0 { self.config.limits.head_timeout } else { self.config.limits.keepalive_timeout };
            if self.timed_out && now >= self.since + limit {
                return Flow::Close;
            }
            self.state = State::Head { started };
            return Flow::Wait;
        }
        let parse_result = if self.head_worth_parsing() {
            if !self.head_lent {
                self.head = ctx.buffers.take_request_head();
                self.head_lent = true;
            }
            self.head.parse(&self.rbuf, &self.config.limits.request)
        } else {
            Ok(None)
        };
        match parse_result {
            Ok(Some(length)) => {
                self.rbuf.advance(length);
                self.head_scanned = 0;
                self.head_parsed_len = 0;
                self.since = now;
                self.start_request(ctx)
            }
            Ok(None) => {
                if self.stream.read_closed {
                    debug!(peer = %self.peer, "client closed the connection in the middle of a request head");
                    return Flow::Close;
                }
                let deadline = started.unwrap_or(now) + self.config.limits.head_timeout;
                if self.timed_out && now >= deadline {
                    debug!(peer = %self.peer, "request head not received in time");
                    self.respond(local::error_response(408, "the request head was not received in time"), true, false);
                    return Flow::Again;
                }
                self.state = State::Head { started };
                if read > 0 { Flow::Again } else { Flow::Wait }
            }
            Err(error) => {
                self.head_scanned = 0;
                self.head_parsed_len = 0;
                debug!(peer = %self.peer, %error, "invalid request head");
                self.unread_body = true;
                self.respond(local::error_response(error.status(), &error.to_string()), true, false);
                Flow::Again
            }
        }
    }

    /// True when parsing the buffered head could give a different answer than last time: its
    /// end (an empty line) may have arrived, enough bytes came to cross a limit, or it is new.
    fn head_worth_parsing(&mut self) -> bool {
        let length = self.rbuf.len();
        if length <= self.head_parsed_len && self.head_parsed_len != 0 {
            return false;
        }
        let from = self.head_scanned.saturating_sub(3).min(length);
        let tail = &self.rbuf[from..];
        let end_seen = tail.windows(2).any(|pair| pair == b"\n\n") || tail.windows(3).any(|triple| triple == b"\n\r\n");
        self.head_scanned = length;
        let limits = &self.config.limits.request;
        let crossed = |limit: usize| self.head_parsed_len < limit && length >= limit;
        let worth = self.head_parsed_len == 0
            || end_seen
            || length - self.head_parsed_len >= HEAD_REPARSE_BYTES
            || crossed(limits.max_request_line_bytes)
            || crossed(limits.max_header_line_bytes)
            || crossed(limits.max_head_bytes);
        if worth {
            self.head_parsed_len = length;
        }
        worth
    }

    /// Routes a freshly parsed request and starts its access check.
    fn start_request(&mut self, ctx: &mut Ctx<'_>) -> Flow {
        self.served += 1;
        if !Arc::ptr_eq(&self.config, ctx.config) {
            self.config = Arc::clone(ctx.config);
        }
        let config = Arc::clone(&self.config);
        let head_only = self.head.method_bytes() == b"HEAD";
        self.unread_body = !matches!(self.head.body(), RequestBody::None);

        if self.role == ListenerRole::Api {
            return self.serve_api(ctx, head_only);
        }
        match self.head.target_form() {
            TargetForm::Authority => {
                self.respond(local::error_response(405, "CONNECT is not supported"), true, head_only);
                return Flow::Again;
            }
            TargetForm::Asterisk => {
                let response = ErrorResponse { status: 200, headers: vec![("Allow", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS".into())], content_type: None, body: Vec::new() };
                self.respond(response, false, false);
                return Flow::Again;
            }
            TargetForm::Origin | TargetForm::Absolute => {}
        }
        let method = self.head.method_bytes();
        let standard = [b"GET".as_slice(), b"HEAD", b"POST", b"PUT", b"DELETE", b"CONNECT", b"OPTIONS", b"TRACE", b"PATCH"];
        if standard.iter().any(|known| known.eq_ignore_ascii_case(method) && *known != method) {
            // Methods are case-sensitive (RFC 9110 section 9.1): `get` is not GET, and some
            // upstreams treat it as GET anyway. Reject the ambiguous spelling.
            self.respond(local::error_response(400, "method names are case-sensitive: use the upper-case name"), true, head_only);
            return Flow::Again;
        }
        if self
            .head
            .connection_tokens()
            .any(|token| [b"content-length".as_slice(), b"transfer-encoding", b"host"].iter().any(|h| h.eq_ignore_ascii_case(token)))
        {
            self.respond(local::error_response(400, "the Connection header may not name Content-Length, Transfer-Encoding or Host"), true, head_only);
            return Flow::Again;
        }

        let host = self.head.host().unwrap_or(b"");
        let head = &self.head;
        let header = |name: &[u8]| head.header(name);
        let route_request = RouteRequest { method: head.method_bytes(), host, path: head.path(), header: &header };
        let Some(route) = config.router.find(&route_request) else {
            let response = local::error_response(404, "no Route matched with those values");
            self.respond(response, self.unread_body, head_only);
            return Flow::Again;
        };
        let Some(route_config) = config.router.routes.get(route.route) else {
            self.respond(local::error_response(500, "route table changed"), true, head_only);
            return Flow::Again;
        };
        if self.head.path_info().encoded_slash && !route_config.allow_encoded_slashes {
            self.respond(local::error_response(400, "encoded slashes (%2F) are not allowed in paths on this route"), true, head_only);
            return Flow::Again;
        }
        if let (RequestBody::Length(length), Some(max)) = (self.head.body(), route_config.max_body_bytes) {
            if length > max {
                let message = format!("the request body of {length} bytes is larger than the limit of {max} bytes");
                self.respond(local::error_response(413, &message), true, head_only);
                return Flow::Again;
            }
        }

        // The URL rules match: scheme://host/path, without the query, host in lower case.
        let scheme = if self.stream.is_tls() { "https" } else { "http" };
        let url = &mut ctx.scratch.url;
        url.clear();
        url.extend_from_slice(scheme.as_bytes());
        url.extend_from_slice(b"://");
        url.extend(strip_port(host).iter().map(u8::to_ascii_lowercase));
        url.extend_from_slice(self.head.path());
        if ctx.scratch.matcher.is_none() || ctx.scratch.matcher_config != Arc::as_ptr(&config) as usize {
            ctx.scratch.matcher = Some(config.access.matcher.new_scratch());
            ctx.scratch.matcher_config = Arc::as_ptr(&config) as usize;
        }
        let outcome = match ctx.scratch.matcher.as_mut() {
            Some(scratch) => config.access.matcher.find(self.head.method_bytes(), &ctx.scratch.url, scratch),
            None => MatchOutcome::NoMatch,
        };
        let rule = match outcome {
            MatchOutcome::Matched(rule) => rule,
            MatchOutcome::NoMatch => {
                let error = AccessError::new(ErrorKind::NotFound, "requested url does not match any rules");
                return self.deny(error, None, ctx);
            }
            MatchOutcome::Undecided { rule } => {
                let id = config.access.rules.get(rule).map_or("?", |r| r.id.as_str()).to_owned();
                warn!(rule = %id, "rule pattern ran out of backtracking steps; request denied");
                let error = AccessError::new(ErrorKind::InternalServerError, "the matching rule could not be decided");
                return self.deny(error, None, ctx);
            }
            MatchOutcome::Ambiguous { first, second } => {
                let ids = |index: usize| config.access.rules.get(index).map_or("?", |r| r.id.as_str()).to_owned();
                warn!(first = %ids(first), second = %ids(second), "request matched more than one rule");
                let error = AccessError::new(ErrorKind::InternalServerError, "expected exactly one rule but found multiple rules");
                return self.deny(error, None, ctx);
            }
        };
        let captures = match config.access.rules.get(rule) {
            Some(compiled) if compiled.uses_captures => {
                config.access.matcher.captures(rule, std::str::from_utf8(&ctx.scratch.url).unwrap_or(""))
            }
            _ => Vec::new(),
        };
        let access = AccessState { route, pipeline: Pipeline::new(rule), captures, waiting: false, decision: None };
        self.state = State::Access(ctx.scratch.recycled.access(access));
        Flow::Again
    }

    fn on_access(&mut self, mut access: Box<AccessState>, ctx: &mut Ctx<'_>) -> Flow {
        let now = ctx.io.now;
        if self.write_client(now).is_err() {
            return Flow::Close;
        }
        if access.waiting {
            let Some(result) = self.subresult.take() else {
                if self.timed_out && now >= self.since + ACCESS_DEADLINE {
                    warn!(peer = %self.peer, "access check did not finish in time");
                    return self.deny(AccessError::new(ErrorKind::ServiceUnavailable, "the access check timed out"), Some(access.pipeline.rule()), ctx);
                }
                self.state = State::Access(access);
                return Flow::Wait;
            };
            access.waiting = false;
            return self.advance_access(access, Some(result), ctx);
        }
        self.advance_access(access, None, ctx)
    }

    fn advance_access(&mut self, mut access: Box<AccessState>, result: Option<Arc<SubResult>>, ctx: &mut Ctx<'_>) -> Flow {
        let config = Arc::clone(&self.config);
        let scheme = if self.stream.is_tls() { "https" } else { "http" };
        let step = {
            let head = &self.head;
            let request = match &access.decision {
                Some(target) => AccessRequest {
                    head,
                    method: &target.method,
                    scheme: &target.scheme,
                    host: &target.host,
                    path: &target.path,
                    query: target.query.as_deref(),
                    peer_ip: self.peer.ip(),
                },
                None => AccessRequest {
                    head,
                    method: head.method_bytes(),
                    scheme,
                    host: head.host().unwrap_or(b""),
                    path: head.path(),
                    query: head.query(),
                    peer_ip: self.peer.ip(),
                },
            };
            access.pipeline.advance(&config.access, &request, &access.captures, result.as_deref(), SystemTime::now())
        };
        match step {
            Step::Subrequest(subrequest) => {
                access.waiting = true;
                self.since = ctx.io.now;
                ctx.identity.submit(ctx.io, subrequest, Waiter { client: self.slot, serial: self.serial });
                self.state = State::Access(access);
                Flow::Wait
            }
            Step::Denied(error) => {
                let rule = access.pipeline.rule();
                let set_cookies = access.pipeline.session().map(|s| s.set_cookies.clone()).unwrap_or_default();
                let flow = self.deny_with_cookies(error, Some(rule), &set_cookies, access.decision.as_deref(), ctx);
                ctx.scratch.recycled.give_access(access);
                flow
            }
            Step::Granted(grant) if access.decision.is_some() => {
                // Decision API: 200 with the headers the upstream would have received.
                let mut headers: Vec<String> = grant.headers.iter().map(|(name, value)| format!("{name}: {value}")).collect();
                if !grant.cookies.is_empty() {
                    let cookies: Vec<String> = grant.cookies.iter().map(|(name, value)| format!("{name}={value}")).collect();
                    headers.push(format!("Cookie: {}", cookies.join("; ")));
                }
                headers.extend(grant.session.set_cookies.iter().map(|cookie| format!("Set-Cookie: {cookie}")));
                let response = ErrorResponse { status: 200, headers: Vec::new(), content_type: None, body: Vec::new() };
                let close = self.unread_body || !self.head.keep_alive() || self.draining;
                self.write_local(&response, &headers, close, false);
                self.state = State::Respond { close };
                Flow::Again
            }
            Step::Granted(grant) => {
                let rule = access.pipeline.rule();
                let route = access.route;
                ctx.scratch.recycled.give_access(access);
                match Exchange::start(self, route, rule, grant, ctx) {
                    Ok(exchange) => {
                        self.state = State::Proxy(exchange);
                        Flow::Again
                    }
                    Err(response) => {
                        self.respond(response, self.unread_body, self.head.method_bytes() == b"HEAD");
                        Flow::Again
                    }
                }
            }
        }
    }

    fn on_proxy(&mut self, exchange: Box<Exchange>, ctx: &mut Ctx<'_>) -> Flow {
        self.run_exchange(exchange, ctx)
    }

    pub(super) fn set_state(&mut self, state: State) {
        self.state = state;
    }

    /// Answers a denied request through the rule's error handlers, then the fallback list.
    fn deny(&mut self, error: AccessError, rule: Option<usize>, ctx: &mut Ctx<'_>) -> Flow {
        self.deny_with_cookies(error, rule, &[], None, ctx)
    }

    fn deny_with_cookies(
        &mut self,
        error: AccessError,
        rule: Option<usize>,
        set_cookies: &[String],
        decision: Option<&DecisionTarget>,
        _ctx: &mut Ctx<'_>,
    ) -> Flow {
        let config = Arc::clone(&self.config);
        let own_scheme = if self.stream.is_tls() { "https" } else { "http" };
        let (scheme, host, path, query) = match decision {
            Some(target) => (target.scheme.as_str(), &target.host[..], &target.path[..], target.query.as_deref()),
            None => (own_scheme, self.head.host().unwrap_or(b""), self.head.path(), self.head.query()),
        };
        let mut url = String::with_capacity(64);
        url.push_str(scheme);
        url.push_str("://");
        url.push_str(&String::from_utf8_lossy(host));
        url.push_str(&String::from_utf8_lossy(path));
        if let Some(query) = query {
            url.push('?');
            url.push_str(&String::from_utf8_lossy(query));
        }
        let origin = format!("{scheme}://{}", String::from_utf8_lossy(strip_port(host))).to_ascii_lowercase();
        let url_is_own_origin = config.access.own_origins.iter().any(|own| *own == origin);
        let request = ErrorRequest {
            accept: self.head.header(b"accept"),
            content_type: self.head.header(b"content-type"),
            peer_ip: self.peer.ip(),
            forwarded_for: self.head.header(b"x-forwarded-for"),
            url: &url,
            url_is_own_origin,
        };
        let rule_handlers = rule.and_then(|index| config.access.rules.get(index)).map_or(&[][..], |rule| &rule.errors[..]);
        let response = config.access.errors.respond(rule_handlers, &error, &request);
        let level_is_warn = matches!(error.kind, ErrorKind::BadGateway | ErrorKind::ServiceUnavailable | ErrorKind::InternalServerError);
        let rule_id = rule.and_then(|index| config.access.rules.get(index)).map_or("", |r| r.id.as_str());
        if level_is_warn {
            warn!(peer = %self.peer, rule = rule_id, status = response.status, reason = %error.reason, "request denied");
        } else {
            debug!(peer = %self.peer, rule = rule_id, status = response.status, reason = %error.reason, "request denied");
        }
        let head_only = self.head.method_bytes() == b"HEAD";
        let extra: Vec<String> = set_cookies.iter().map(|cookie| format!("Set-Cookie: {cookie}")).collect();
        let close = self.closes_after_response();
        self.write_local(&response, &extra, close, head_only);
        self.state = State::Respond { close };
        Flow::Again
    }

    /// Queues a local response and moves to `Respond`.
    pub(super) fn respond(&mut self, response: ErrorResponse, close: bool, head_only: bool) {
        let close = close || self.closes_after_response();
        self.write_local(&response, &[], close, head_only);
        self.state = State::Respond { close };
    }

    /// Returns whether the connection closes after the local response to the current
    /// request, so that the response announces `Connection: close`. That includes the last
    /// request that `max_requests_per_connection` allows.
    fn closes_after_response(&self) -> bool {
        self.unread_body
            || !self.head.keep_alive()
            || self.draining
            || self.served >= self.config.limits.max_requests_per_connection
    }

    fn write_local(&mut self, response: &ErrorResponse, extra_headers: &[String], close: bool, head_only: bool) {
        if self.wbuf.capacity() == 0 {
            self.wbuf = BytesMut::with_capacity(512);
        }
        local::write_response(&mut self.wbuf, response, extra_headers, close, head_only);
    }

    fn on_respond(&mut self, close: bool, ctx: &mut Ctx<'_>) -> Flow {
        let now = ctx.io.now;
        if self.write_client(now).is_err() {
            return Flow::Close;
        }
        if !self.wbuf.is_empty() || self.stream.has_pending_output() {
            if self.timed_out && now >= self.last_write + self.config.limits.send_timeout {
                debug!(peer = %self.peer, "client did not read the response in time");
                return Flow::Close;
            }
            self.state = State::Respond { close };
            return Flow::Wait;
        }
        if close || self.served >= self.config.limits.max_requests_per_connection {
            self.state = State::Closing { linger_until: None };
            return Flow::Again;
        }
        self.keep_alive(now)
    }

    /// Gets ready for the next request on this connection.
    pub(super) fn keep_alive(&mut self, now: Instant) -> Flow {
        self.since = now;
        self.unread_body = false;
        self.state = State::Head { started: if self.rbuf.is_empty() { None } else { Some(now) } };
        Flow::Again
    }

    fn on_closing(&mut self, linger_until: Option<Instant>, ctx: &mut Ctx<'_>) -> Flow {
        let now = ctx.io.now;
        if self.write_client(now).is_err() {
            return Flow::Close;
        }
        if !self.wbuf.is_empty() || self.stream.has_pending_output() {
            if self.timed_out && now >= self.last_write + self.config.limits.send_timeout {
                return Flow::Close;
            }
            self.state = State::Closing { linger_until };
            return Flow::Wait;
        }
        let linger_until = match linger_until {
            Some(until) => until,
            None => {
                if !self.unread_body && self.rbuf.is_empty() {
                    self.stream.shutdown_write();
                    return Flow::Close;
                }
                // The client may still be sending a body we will not read. Closing now would
                // reset the connection and could destroy the response in the client's
                // buffers, so stop writing and discard input for a while first.
                self.stream.shutdown_write();
                now + LINGER
            }
        };
        loop {
            self.rbuf.clear();
            match self.read_client(ctx.buffers) {
                Ok(0) => break,
                Ok(read) => self.lingered_bytes += read,
                Err(()) => return Flow::Close,
            }
            if self.lingered_bytes > MAX_LINGER_BYTES {
                return Flow::Close;
            }
        }
        self.rbuf.clear();
        if self.stream.read_closed || now >= linger_until {
            return Flow::Close;
        }
        self.state = State::Closing { linger_until: Some(linger_until) };
        Flow::Wait
    }

    fn deadline(&self) -> Option<Instant> {
        let limits = &self.config.limits;
        match &self.state {
            State::Head { started: None } => {
                let limit = if self.served == 0 { limits.head_timeout } else { limits.keepalive_timeout };
                Some(self.since + limit)
            }
            State::Head { started: Some(started) } => Some(*started + limits.head_timeout),
            State::Access(_) => Some(self.since + ACCESS_DEADLINE),
            State::Proxy(exchange) => exchange.deadline(self),
            State::Respond { .. } => Some(self.last_write.max(self.since) + limits.send_timeout),
            State::Closing { linger_until } => Some(linger_until.unwrap_or(self.last_write.max(self.since) + limits.send_timeout)),
        }
    }

    fn arm_timer(&mut self, timers: &mut Timers) {
        if let Some(at) = self.deadline() {
            self.timer_queued = timers.arm_slot(self.slot, self.serial, at, self.timer_queued);
        }
    }

    pub(super) fn timed_out(&self) -> bool {
        self.timed_out
    }

    /// The API listener: health endpoints, the public keys of `id_token` mutators, and the
    /// decision API (`/decisions/<path>`), which runs the access rules for a request that
    /// another proxy (nginx `auth_request`, Envoy `ext_authz`, Traefik `forwardAuth`) holds.
    fn serve_api(&mut self, ctx: &mut Ctx<'_>, head_only: bool) -> Flow {
        let json = |status: u16, body: &[u8]| ErrorResponse { status, headers: Vec::new(), content_type: Some("application/json"), body: body.to_vec() };
        let path = self.head.path();
        let response = match path {
            b"/health/alive" => json(200, br#"{"status":"ok"}"#),
            b"/health/ready" if self.config.access.rules.is_empty() => json(503, br#"{"errors":{"rules":"no access rules are loaded"}}"#),
            b"/health/ready" => json(200, br#"{"status":"ok"}"#),
            b"/.well-known/jwks.json" => json(200, &self.config.access.public_jwks),
            _ if path == b"/decisions" || path.starts_with(b"/decisions/") => return self.start_decision(ctx),
            _ => local::error_response(404, "not found"),
        };
        self.respond(response, false, head_only);
        Flow::Again
    }

    /// Rebuilds the request to decide about, as Oathkeeper does: method from
    /// `X-Forwarded-Method`, scheme from `X-Forwarded-Proto`, host from `X-Forwarded-Host`,
    /// path and query from `X-Forwarded-Uri`; each falls back to this request's own value,
    /// the path to what follows `/decisions`. These headers are trusted, so the API listener
    /// must only be reachable by the proxy in front.
    fn start_decision(&mut self, ctx: &mut Ctx<'_>) -> Flow {
        let config = Arc::clone(&self.config);
        let head = &self.head;
        let forwarded = [b"x-forwarded-method".as_slice(), b"x-forwarded-proto", b"x-forwarded-host", b"x-forwarded-uri"];
        let repeated = forwarded.iter().any(|wanted| head.headers().filter(|(name, _)| name.eq_ignore_ascii_case(wanted)).count() > 1);
        if repeated {
            // A proxy in front that appends instead of replacing would let the client choose
            // which copy is decided about.
            self.respond(local::error_response(400, "X-Forwarded-Method, -Proto, -Host and -Uri may each appear once"), true, false);
            return Flow::Again;
        }
        let method = head.header(b"x-forwarded-method").unwrap_or(head.method_bytes()).to_ascii_uppercase();
        let scheme = match head.header(b"x-forwarded-proto") {
            Some(proto) if proto.eq_ignore_ascii_case(b"https") => "https",
            Some(proto) if proto.eq_ignore_ascii_case(b"http") => "http",
            Some(_) => {
                self.respond(local::error_response(400, "X-Forwarded-Proto must be http or https"), true, false);
                return Flow::Again;
            }
            None if self.stream.is_tls() => "https",
            None => "http",
        };
        let host = head.header(b"x-forwarded-host").or(head.host()).unwrap_or(b"").to_ascii_lowercase();
        let (raw_path, query): (Vec<u8>, Option<Vec<u8>>) = match head.header(b"x-forwarded-uri") {
            Some(uri) => match uri.iter().position(|&b| b == b'?') {
                Some(mark) => (uri[..mark].to_vec(), Some(uri[mark + 1..].to_vec())),
                None => (uri.to_vec(), None),
            },
            None => {
                let rest = head.path().get(b"/decisions".len()..).unwrap_or(b"");
                let rest = if rest.is_empty() { b"/".to_vec() } else { rest.to_vec() };
                (rest, head.query().map(<[u8]>::to_vec))
            }
        };
        let query_valid = query.as_deref().is_none_or(|q| q.iter().all(|&b| b > 0x20 && b < 0x7f && b != b'#'));
        if !query_valid {
            self.respond(local::error_response(400, "invalid query in X-Forwarded-Uri"), true, false);
            return Flow::Again;
        }
        let valid_token = !method.is_empty() && method.iter().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b));
        let valid_host = !host.is_empty() && host.iter().all(|&b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b));
        if !valid_token || !valid_host {
            self.respond(local::error_response(400, "invalid X-Forwarded-Method or X-Forwarded-Host"), true, false);
            return Flow::Again;
        }
        let mut path = Vec::with_capacity(raw_path.len());
        match crate::http::normalize_path(&raw_path, &mut path) {
            Ok(info) if !info.encoded_slash => {}
            Ok(_) => {
                self.respond(local::error_response(400, "encoded slashes (%2F) are not allowed in the decided path"), true, false);
                return Flow::Again;
            }
            Err(error) => {
                self.respond(local::error_response(400, &format!("invalid path to decide about: {error}")), true, false);
                return Flow::Again;
            }
        }

        let url = &mut ctx.scratch.url;
        url.clear();
        url.extend_from_slice(scheme.as_bytes());
        url.extend_from_slice(b"://");
        url.extend_from_slice(strip_port(&host));
        url.extend_from_slice(&path);
        let mut scratch = config.access.matcher.new_scratch();
        let target = Box::new(DecisionTarget { method, scheme: scheme.to_owned(), host, path, query });
        let outcome = config.access.matcher.find(&target.method, &ctx.scratch.url, &mut scratch);
        let rule = match outcome {
            MatchOutcome::Matched(rule) => rule,
            MatchOutcome::NoMatch => {
                let error = AccessError::new(ErrorKind::NotFound, "requested url does not match any rules");
                return self.deny_with_cookies(error, None, &[], Some(&target), ctx);
            }
            MatchOutcome::Ambiguous { .. } | MatchOutcome::Undecided { .. } => {
                let error = AccessError::new(ErrorKind::InternalServerError, "expected exactly one rule but found multiple rules");
                return self.deny_with_cookies(error, None, &[], Some(&target), ctx);
            }
        };
        let captures = match config.access.rules.get(rule) {
            Some(compiled) if compiled.uses_captures => config.access.matcher.captures(rule, std::str::from_utf8(&ctx.scratch.url).unwrap_or("")),
            _ => Vec::new(),
        };
        let access = AccessState {
            route: RouteMatch { route: 0, matched_len: 0 },
            pipeline: Pipeline::new(rule),
            captures,
            waiting: false,
            decision: Some(target),
        };
        self.state = State::Access(ctx.scratch.recycled.access(access));
        Flow::Again
    }
}


