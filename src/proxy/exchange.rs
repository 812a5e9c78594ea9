//! One proxied request: the upstream connection, the request body streamed out and the
//! response streamed back, both with bounded buffers. When the upstream cannot take more, the
//! client is not read; when the client cannot take more, the upstream is not read.
//!
//! Bodies are re-framed, never copied with their framing: a chunked body is decoded and
//! encoded again (extensions and trailers dropped), and a close-delimited response is sent
//! to HTTP/1.1 clients as chunked so their connection can stay open.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut};
use tracing::{debug, warn};

use super::client::{ClientConn, Flow, State};
use super::forward::{self, ForwardRequest, OutFraming};
use super::local;
use super::router::{upstream_path, RouteMatch, Service};
use super::socket::Readiness;
use super::upstream::{UpstreamConn, UpstreamPool, Waiting};
use crate::access::errors::ErrorResponse;
use crate::access::pipeline::Grant;
use crate::http::{write_chunk_size, CHUNK_END, LAST_CHUNK};
use crate::http::{ChunkedDecoder, Method, RequestBody, ResponseBody, Version};
use crate::reactor::buffers::{BufferPool, BUFFER_BYTES};
use crate::reactor::worker::{Ctx, Io, Slot};

/// Maximum time a request waits on a shared upstream connection for the responses ahead of
/// it, unless the service's `read_timeout` is shorter. Then the request is sent again on a
/// connection of its own, so a slow response or a slow client delays the queue by no more.
const MAX_QUEUE_WAIT: Duration = Duration::from_secs(1);

/// Bytes queued for the upstream before the client is no longer read.
const UPSTREAM_WRITE_LIMIT: usize = 64 * 1024;
/// Bytes read from the upstream and not yet moved to the client.
const UPSTREAM_READ_LIMIT: usize = BUFFER_BYTES;
/// Bytes queued for the client before the upstream is no longer read.
const CLIENT_WRITE_LIMIT: usize = 64 * 1024;

enum RequestBodyState {
    Done,
    Length(u64),
    Chunked(ChunkedDecoder),
}

enum Incoming {
    Length(u64),
    Chunked(ChunkedDecoder),
    UntilClose,
}

enum ResponsePhase {
    Head,
    Body { incoming: Incoming, out: OutFraming },
    Done,
}

/// Why an upstream exchange failed.
enum UpstreamFailure {
    Connect(io::Error),
    TimedOut,
    Io(io::Error),
    Closed,
    InvalidResponse(String),
}

pub struct Exchange {
    service: usize,
    target: SocketAddr,
    upstream: Option<Box<UpstreamConn>>,
    method: Method,
    http10: bool,
    request_body: RequestBodyState,
    body_limit: Option<u64>,
    body_bytes: u64,
    response: ResponsePhase,
    /// Close the client connection once this exchange ends.
    close_client: bool,
    /// The client has received at least the response head.
    response_started: bool,
    /// Any byte of a response arrived from the current upstream connection.
    response_bytes_received: bool,
    /// Head bytes kept for one resend when a reused connection fails before the response, if
    /// `replayable`. The vector keeps its storage when the exchange's box is recycled.
    replay: Vec<u8>,
    replayable: bool,
    /// Waiting for a turn on a shared connection that another exchange owns: its slot and
    /// serial. The request head is already in that connection's write buffer.
    queued_on: Option<(usize, u64)>,
    attempts: u32,
    set_cookies: Vec<String>,
    connect_started: Instant,
    last_upstream_io: Instant,
    last_client_read: Instant,
}

impl Exchange {
    /// Builds the upstream request for a granted request and gets a connection for it.
    pub(super) fn start(client: &mut ClientConn, route_match: RouteMatch, _rule: usize, grant: Grant, ctx: &mut Ctx<'_>) -> Result<Box<Exchange>, ErrorResponse> {
        let config = Arc::clone(&client.config);
        let now = ctx.io.now;
        let route = config.router.routes.get(route_match.route).ok_or_else(|| local::error_response(500, "route table changed"))?;
        let service = config.router.services.get(route.service).ok_or_else(|| local::error_response(500, "service table changed"))?;
        let target = next_target(service, route.service, ctx.round_robin)
            .ok_or_else(|| local::error_response(503, "failure to get a peer from the ring-balancer"))?;

        let head = &client.head;
        let request_body = match head.body() {
            RequestBody::None | RequestBody::Length(0) => RequestBodyState::Done,
            RequestBody::Length(length) => RequestBodyState::Length(length),
            RequestBody::Chunked => RequestBodyState::Chunked(ChunkedDecoder::new(config.limits.chunked)),
        };
        let framing = match head.body() {
            RequestBody::None => OutFraming::None,
            RequestBody::Length(length) => OutFraming::Length(length),
            RequestBody::Chunked => OutFraming::Chunked,
        };
        upstream_path(&service.path, head.path(), route_match.matched_len, route.strip_path, &mut ctx.scratch.upstream_path);
        let client_host = head.host().unwrap_or(b"");
        let upstream_host: &[u8] = if route.preserve_host { client_host } else { service.host_header.as_bytes() };
        let trusted_peer = config.trusted_proxies.iter().any(|cidr| cidr.contains(client.peer.ip()));
        let owned = config.access.rules.get(_rule).map_or(&[][..], |rule| &rule.owned_headers[..]);
        let forward = ForwardRequest {
            head,
            path: &ctx.scratch.upstream_path,
            query: head.query(),
            host: upstream_host,
            client_host,
            scheme: if client.stream.is_tls() { "https" } else { "http" },
            peer_ip: client.peer.ip(),
            local_port: client.local.port(),
            trusted_peer,
            owned,
            headers: &grant.headers,
            cookies: &grant.cookies,
            framing,
        };

        let mut recycled = ctx.scratch.recycled.take_exchange();
        let mut replay = recycled.as_mut().map(|old| std::mem::take(&mut old.replay)).unwrap_or_default();
        replay.clear();
        // Bodiless requests whose method is idempotent may share a connection: if one fails
        // before its response, sending it again is safe. HEAD is left out because servers
        // that wrongly send a body with a HEAD response would shift every later response on
        // the connection to the wrong request.
        let shareable = service.pipeline_depth > 1
            && matches!(head.method(), Method::Get | Method::Options)
            && matches!(request_body, RequestBodyState::Done)
            && !head.expect_continue();
        let waiting = Waiting { client: client.slot, serial: client.serial };
        let keepalive_requests = config.limits.upstream_keepalive_requests;
        let queued_on = if shareable {
            join_shared(ctx.io, ctx.pool, ctx.buffers, target, service.pipeline_depth, keepalive_requests, &forward, &mut replay, waiting)
        } else {
            None
        };
        let (upstream, replayable) = match queued_on {
            Some(_) => (None, true),
            None => {
                let mut upstream = match ctx.pool.checkout(ctx.io, target, client.slot) {
                    Some(conn) => conn,
                    None => UpstreamConn::connect(ctx.io, target, client.slot).map_err(|error| {
                        warn!(upstream = %target, %error, "cannot connect to upstream");
                        local::error_response(502, "An invalid response was received from the upstream server")
                    })?,
                };
                ctx.buffers.ensure(&mut upstream.wbuf);
                forward::write_request_head(&mut upstream.wbuf, &forward);
                let replayable = upstream.requests > 0 && matches!(request_body, RequestBodyState::Done);
                // A shared connection's buffer will hold other requests too, so a resend after a
                // failed connect takes this request's head from `replay`.
                if replayable || shareable {
                    replay.extend_from_slice(&upstream.wbuf);
                }
                if shareable {
                    upstream.flush_pending = true;
                    ctx.pool.unflushed.push((upstream.slot, upstream.serial));
                    ctx.pool.open.push((target, upstream.slot, upstream.serial));
                }
                (Some(upstream), replayable)
            }
        };

        // The access decision is made, so a client waiting for 100 Continue may send its body.
        if head.expect_continue() && !matches!(request_body, RequestBodyState::Done) {
            if client.wbuf.capacity() == 0 {
                client.wbuf = ctx.buffers.take();
            }
            client.wbuf.put_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        client.unread_body = !matches!(request_body, RequestBodyState::Done);
        if !client.response_head.has_storage() {
            client.response_head = ctx.buffers.take_response_head();
        }

        let exchange = Exchange {
            service: route.service,
            target,
            upstream,
            method: head.method(),
            http10: head.version() == Version::Http10,
            request_body,
            body_limit: route.max_body_bytes,
            body_bytes: 0,
            response: ResponsePhase::Head,
            close_client: !head.keep_alive() || client.draining,
            response_started: false,
            response_bytes_received: false,
            replay,
            replayable,
            queued_on,
            attempts: 0,
            set_cookies: grant.session.set_cookies,
            connect_started: now,
            last_upstream_io: now,
            last_client_read: now,
        };
        Ok(match recycled {
            Some(mut boxed) => {
                *boxed = exchange;
                boxed
            }
            None => Box::new(exchange),
        })
    }

    /// Returns whether the exchange owns no upstream connection (any it had was pooled or
    /// closed).
    pub(super) fn is_detached(&self) -> bool {
        self.upstream.is_none()
    }

    pub(super) fn on_upstream_event(&mut self, readiness: Readiness) {
        if let Some(upstream) = &mut self.upstream {
            upstream.stream.on_event(readiness);
        }
    }

    /// Closes the upstream connection without pooling it.
    pub(super) fn abort(mut self: Box<Self>, io: &mut Io, buffers: &mut BufferPool) {
        if let Some(upstream) = self.upstream.take() {
            upstream.close(io, buffers);
        }
    }

    /// The next instant at which this exchange times out.
    pub(super) fn deadline(&self, client: &ClientConn) -> Option<Instant> {
        let config = &client.config;
        let service = config.router.services.get(self.service)?;
        if self.queued_on.is_some() {
            return Some(self.last_upstream_io + service.read_timeout.min(MAX_QUEUE_WAIT));
        }
        let upstream = self.upstream.as_ref()?;
        if !upstream.connected {
            return Some(self.connect_started + service.connect_timeout);
        }
        if !client.wbuf.is_empty() && !client.stream.writable {
            return Some(client.last_write + config.limits.send_timeout);
        }
        let waiting_for_body = !matches!(self.request_body, RequestBodyState::Done) && client.rbuf.is_empty();
        if waiting_for_body && matches!(self.response, ResponsePhase::Head) {
            return Some(self.last_client_read + config.limits.body_timeout);
        }
        Some(self.last_upstream_io + service.read_timeout)
    }
}

/// Appends the request to a shared connection opened in this loop iteration for `target`,
/// if one has room, and queues `waiting` for its turn. Returns the connection's slot and serial.
#[allow(clippy::too_many_arguments)]
fn join_shared(
    io: &mut Io,
    pool: &mut UpstreamPool,
    buffers: &mut BufferPool,
    target: SocketAddr,
    depth: usize,
    keepalive_requests: u32,
    forward: &ForwardRequest<'_>,
    replay: &mut Vec<u8>,
    waiting: Waiting,
) -> Option<(usize, u64)> {
    for &(addr, slot, serial) in &pool.open {
        if addr != target {
            continue;
        }
        let Some(conn) = owned_upstream_mut(io, slot) else { continue };
        let in_flight = 1 + conn.waiters.len();
        let full = in_flight >= depth
            || conn.requests as usize + in_flight >= keepalive_requests as usize
            || conn.wbuf.len() >= UPSTREAM_WRITE_LIMIT
            || conn.stream.peer_closed();
        if conn.serial != serial || full {
            continue;
        }
        buffers.ensure(&mut conn.wbuf);
        let start = conn.wbuf.len();
        forward::write_request_head(&mut conn.wbuf, forward);
        replay.extend_from_slice(&conn.wbuf[start..]);
        conn.waiters.push_back(waiting);
        if !conn.flush_pending {
            conn.flush_pending = true;
            pool.unflushed.push((slot, serial));
        }
        return Some((slot, serial));
    }
    None
}

/// Returns the upstream connection in `slot`, which the exchange of its client owns.
fn owned_upstream_mut(io: &mut Io, slot: usize) -> Option<&mut UpstreamConn> {
    let Some(Slot::Upstream { client: owner }) = io.slab.get(slot) else { return None };
    let Some(Slot::Client(owner)) = io.slab.get_mut(*owner) else { return None };
    owner.exchange_mut()?.upstream.as_deref_mut()
}

/// Returns whether the shared connection `slot`/`serial` is still open and owned by an
/// exchange.
fn shared_alive(io: &mut Io, slot: usize, serial: u64) -> bool {
    owned_upstream_mut(io, slot).is_some_and(|conn| conn.serial == serial)
}

/// Gives a shared connection whose owner is done to the first waiter, or closes it (waking
/// every waiter) when that waiter has gone.
fn pass_turn(io: &mut Io, buffers: &mut BufferPool, mut conn: Box<UpstreamConn>) {
    let Some(next) = conn.waiters.pop_front() else {
        conn.close(io, buffers);
        return;
    };
    let slot = conn.slot;
    let conn = match io.slab.get_mut(next.client) {
        Some(Slot::Client(client)) if client.serial == next.serial => match client.take_turn(conn, io.now) {
            Ok(()) => {
                if let Some(entry) = io.slab.get_mut(slot) {
                    *entry = Slot::Upstream { client: next.client };
                }
                io.wake.push(next);
                return;
            }
            Err(conn) => conn,
        },
        _ => conn,
    };
    // The next response belongs to a request that no exchange waits for any more.
    conn.close(io, buffers);
}

impl ClientConn {
    /// Lets the exchange write its shared connection `serial`, whose write was held for the
    /// end of the loop iteration. Returns whether the client has to run for that.
    pub fn release_upstream_write(&mut self, serial: u64) -> bool {
        let Some(conn) = self.exchange_mut().and_then(|exchange| exchange.upstream.as_mut()) else { return false };
        if conn.serial != serial || !conn.flush_pending {
            return false;
        }
        conn.flush_pending = false;
        true
    }

    /// Takes over a shared connection on which this exchange's request was queued.
    fn take_turn(&mut self, conn: Box<UpstreamConn>, now: Instant) -> Result<(), Box<UpstreamConn>> {
        let Some(exchange) = self.exchange_mut() else { return Err(conn) };
        if exchange.queued_on != Some((conn.slot, conn.serial)) {
            return Err(conn);
        }
        exchange.queued_on = None;
        exchange.response_bytes_received = !conn.rbuf.is_empty();
        exchange.last_upstream_io = now;
        exchange.replayable = true;
        exchange.upstream = Some(conn);
        Ok(())
    }

    /// Waits for a turn on a shared connection, or sends the request again elsewhere if the
    /// connection is gone.
    fn wait_for_turn(&mut self, exchange: Box<Exchange>, ctx: &mut Ctx<'_>) -> Flow {
        let Some((slot, serial)) = exchange.queued_on else { return Flow::Close };
        if !shared_alive(ctx.io, slot, serial) {
            return self.upstream_failed(exchange, UpstreamFailure::Closed, ctx);
        }
        if self.timed_out() && exchange.deadline(self).is_some_and(|deadline| ctx.io.now >= deadline) {
            return self.upstream_failed(exchange, UpstreamFailure::TimedOut, ctx);
        }
        self.set_state(State::Proxy(exchange));
        Flow::Wait
    }

    /// Moves bytes both ways until nothing more can move now.
    pub(super) fn run_exchange(&mut self, mut exchange: Box<Exchange>, ctx: &mut Ctx<'_>) -> Flow {
        let now = ctx.io.now;
        loop {
            let mut progress = false;
            let Some(mut upstream) = exchange.upstream.take() else {
                if exchange.queued_on.is_some() {
                    return self.wait_for_turn(exchange, ctx);
                }
                return Flow::Close;
            };

            if !upstream.connected {
                match upstream.check_connected() {
                    Ok(true) => {
                        exchange.last_upstream_io = now;
                        progress = true;
                    }
                    Ok(false) => {}
                    Err(error) => {
                        exchange.upstream = Some(upstream);
                        return self.upstream_failed(exchange, UpstreamFailure::Connect(error), ctx);
                    }
                }
            }

            if upstream.connected {
                match self.move_request_body(&mut exchange, &mut upstream, ctx.buffers) {
                    Ok(moved) => progress |= moved,
                    Err(response) => {
                        exchange.upstream = Some(upstream);
                        return self.fail_request_body(exchange, response, ctx);
                    }
                }
                if !upstream.wbuf.is_empty() && upstream.stream.writable && !upstream.flush_pending {
                    let before = upstream.wbuf.len();
                    if let Err(error) = upstream.stream.write(&mut upstream.wbuf) {
                        exchange.upstream = Some(upstream);
                        return self.upstream_failed(exchange, UpstreamFailure::Io(error), ctx);
                    }
                    if upstream.wbuf.len() < before {
                        exchange.last_upstream_io = now;
                        progress = true;
                    }
                }
                let response_open = !matches!(exchange.response, ResponsePhase::Done);
                if response_open && self.wbuf.len() < CLIENT_WRITE_LIMIT {
                    ctx.buffers.ensure(&mut upstream.rbuf);
                    // A response head may be larger than one body read; it must fit, so that an
                    // oversized head is rejected at once instead of stalling.
                    let limit = match exchange.response {
                        ResponsePhase::Head => UPSTREAM_READ_LIMIT.max(self.config.limits.response.max_head_bytes + 1),
                        _ => UPSTREAM_READ_LIMIT,
                    };
                    match upstream.stream.read(&mut upstream.rbuf, limit) {
                        Ok(0) => {}
                        Ok(_) => {
                            exchange.last_upstream_io = now;
                            exchange.response_bytes_received = true;
                            progress = true;
                        }
                        Err(error) => {
                            exchange.upstream = Some(upstream);
                            return self.upstream_failed(exchange, UpstreamFailure::Io(error), ctx);
                        }
                    }
                }
                match self.move_response(&mut exchange, &mut upstream, ctx.buffers) {
                    Ok(moved) => progress |= moved,
                    Err(failure) => {
                        exchange.upstream = Some(upstream);
                        return self.upstream_failed(exchange, failure, ctx);
                    }
                }
                if upstream.stream.read_closed && !matches!(exchange.response, ResponsePhase::Done) && upstream.rbuf.is_empty() {
                    exchange.upstream = Some(upstream);
                    return self.upstream_failed(exchange, UpstreamFailure::Closed, ctx);
                }
            }
            exchange.upstream = Some(upstream);

            match self.read_client(ctx.buffers) {
                Ok(0) => {}
                Ok(_) => {
                    exchange.last_client_read = now;
                    progress = true;
                }
                Err(()) => return self.abort_exchange(exchange, ctx),
            }
            match self.write_client(now) {
                Ok(wrote) => progress |= wrote,
                Err(()) => return self.abort_exchange(exchange, ctx),
            }

            if self.stream.read_closed && !matches!(exchange.request_body, RequestBodyState::Done) && self.rbuf.is_empty() {
                debug!(peer = %self.peer, "client closed the connection before sending the whole request body");
                return self.abort_exchange(exchange, ctx);
            }
            if matches!(exchange.response, ResponsePhase::Done) {
                return self.finish_exchange(exchange, ctx);
            }
            if self.timed_out() {
                if let Some(deadline) = exchange.deadline(self) {
                    if now >= deadline {
                        return self.exchange_timed_out(exchange, ctx);
                    }
                }
            }
            if !progress {
                if let Some(up) = &exchange.upstream {
                    tracing::trace!(
                        phase = match exchange.response { ResponsePhase::Head => "head", ResponsePhase::Body { .. } => "body", ResponsePhase::Done => "done" },
                        up_slot = up.slot, up_connected = up.connected, up_readable = up.stream.readable, up_writable = up.stream.writable, up_closed = up.stream.read_closed,
                        up_rbuf = up.rbuf.len(), up_wbuf = up.wbuf.len(), client_wbuf = self.wbuf.len(), client_writable = self.stream.writable,
                        "exchange waits"
                    );
                }
                self.set_state(State::Proxy(exchange));
                return Flow::Wait;
            }
        }
    }

    /// Moves request body bytes from the client buffer to the upstream buffer, re-framed.
    fn move_request_body(&mut self, exchange: &mut Exchange, upstream: &mut UpstreamConn, buffers: &mut BufferPool) -> Result<bool, ErrorResponse> {
        let mut moved = false;
        loop {
            if self.rbuf.is_empty() || upstream.wbuf.len() >= UPSTREAM_WRITE_LIMIT {
                return Ok(moved);
            }
            buffers.ensure(&mut upstream.wbuf);
            match &mut exchange.request_body {
                RequestBodyState::Done => return Ok(moved),
                RequestBodyState::Length(remaining) => {
                    let room = UPSTREAM_WRITE_LIMIT - upstream.wbuf.len();
                    let take = (*remaining).min(self.rbuf.len() as u64).min(room as u64) as usize;
                    upstream.wbuf.put_slice(&self.rbuf[..take]);
                    self.rbuf.advance(take);
                    *remaining -= take as u64;
                    exchange.body_bytes += take as u64;
                    moved |= take > 0;
                    if *remaining == 0 {
                        exchange.request_body = RequestBodyState::Done;
                        self.unread_body = false;
                    }
                }
                RequestBodyState::Chunked(decoder) => {
                    let step = decoder
                        .decode(&self.rbuf)
                        .map_err(|error| local::error_response(400, &format!("invalid chunked request body: {error}")))?;
                    if let Some(range) = step.data.clone() {
                        let data = self.rbuf.get(range).unwrap_or(&[]);
                        exchange.body_bytes += data.len() as u64;
                        if exchange.body_limit.is_some_and(|max| exchange.body_bytes > max) {
                            return Err(local::error_response(413, "the request body is larger than the limit for this route"));
                        }
                        if !data.is_empty() {
                            write_chunk_size(&mut upstream.wbuf, data.len());
                            upstream.wbuf.put_slice(data);
                            upstream.wbuf.put_slice(CHUNK_END);
                        }
                    }
                    self.rbuf.advance(step.consumed);
                    if step.done {
                        upstream.wbuf.put_slice(LAST_CHUNK);
                        exchange.request_body = RequestBodyState::Done;
                        self.unread_body = false;
                    }
                    if step.consumed == 0 && step.data.is_none() && !step.done {
                        return Ok(moved);
                    }
                    moved = true;
                }
            }
        }
    }

    /// Parses the response head if needed and moves body bytes to the client, re-framed.
    fn move_response(&mut self, exchange: &mut Exchange, upstream: &mut UpstreamConn, buffers: &mut BufferPool) -> Result<bool, UpstreamFailure> {
        let mut moved = false;
        loop {
            match &mut exchange.response {
                ResponsePhase::Done => return Ok(moved),
                ResponsePhase::Head => {
                    // The head may be written to the client, and interim responses can come
                    // one after another, so a full client buffer stops parsing.
                    if upstream.rbuf.is_empty() || self.wbuf.len() >= CLIENT_WRITE_LIMIT {
                        return Ok(moved);
                    }
                    let limits = &self.config.limits.response;
                    let consumed = match self.response_head.parse(&upstream.rbuf, exchange.method, limits) {
                        Ok(Some(consumed)) => consumed,
                        Ok(None) => return Ok(moved),
                        Err(error) => return Err(UpstreamFailure::InvalidResponse(error.to_string())),
                    };
                    upstream.rbuf.advance(consumed);
                    moved = true;
                    let status = self.response_head.status();
                    if status == 101 {
                        return Err(UpstreamFailure::InvalidResponse("switching protocols was not requested".into()));
                    }
                    if (100..200).contains(&status) {
                        // Other interim responses, such as 103 Early Hints, are forwarded
                        // (RFC 9110, section 15.2), except to HTTP/1.0 clients, which must not
                        // receive them. A 100 Continue is dropped, because the gateway handles
                        // Expect itself and does not send it upstream.
                        if status != 100 && !exchange.http10 {
                            buffers.ensure(&mut self.wbuf);
                            forward::write_interim_head(&mut self.wbuf, &self.response_head);
                        }
                        continue;
                    }
                    let (incoming, out) = match self.response_head.body() {
                        ResponseBody::None => (None, OutFraming::None),
                        ResponseBody::Length(length) => (Some(Incoming::Length(length)), OutFraming::Length(length)),
                        ResponseBody::Chunked => (
                            Some(Incoming::Chunked(ChunkedDecoder::new(self.config.limits.chunked))),
                            if exchange.http10 { OutFraming::UntilClose } else { OutFraming::Chunked },
                        ),
                        ResponseBody::CloseDelimited => {
                            (Some(Incoming::UntilClose), if exchange.http10 { OutFraming::UntilClose } else { OutFraming::Chunked })
                        }
                    };
                    let request_done = matches!(exchange.request_body, RequestBodyState::Done);
                    let close = exchange.close_client
                        || !request_done
                        || out == OutFraming::UntilClose
                        || self.served >= self.config.limits.max_requests_per_connection
                        || self.draining
                        // After a half-close, requests already buffered are still answered.
                        || (self.stream.read_closed && self.rbuf.is_empty());
                    exchange.close_client = close;
                    buffers.ensure(&mut self.wbuf);
                    forward::write_response_head(&mut self.wbuf, &self.response_head, out, close, exchange.http10 && !close, &exchange.set_cookies);
                    exchange.response_started = true;
                    exchange.response = match incoming {
                        None | Some(Incoming::Length(0)) => ResponsePhase::Done,
                        Some(incoming) => ResponsePhase::Body { incoming, out },
                    };
                }
                ResponsePhase::Body { incoming, out } => {
                    if self.wbuf.len() >= CLIENT_WRITE_LIMIT {
                        return Ok(moved);
                    }
                    let chunked_out = *out == OutFraming::Chunked;
                    match incoming {
                        Incoming::Length(remaining) => {
                            let room = CLIENT_WRITE_LIMIT - self.wbuf.len();
                            let take = (*remaining).min(upstream.rbuf.len() as u64).min(room as u64) as usize;
                            if take == 0 {
                                return Ok(moved);
                            }
                            self.wbuf.put_slice(&upstream.rbuf[..take]);
                            upstream.rbuf.advance(take);
                            *remaining -= take as u64;
                            moved = true;
                            if *remaining == 0 {
                                exchange.response = ResponsePhase::Done;
                            }
                        }
                        Incoming::Chunked(decoder) => {
                            let step = decoder
                                .decode(&upstream.rbuf)
                                .map_err(|error| UpstreamFailure::InvalidResponse(format!("invalid chunked response body: {error}")))?;
                            if let Some(range) = step.data.clone() {
                                let data = upstream.rbuf.get(range).unwrap_or(&[]);
                                if !data.is_empty() {
                                    if chunked_out {
                                        write_chunk_size(&mut self.wbuf, data.len());
                                        self.wbuf.put_slice(data);
                                        self.wbuf.put_slice(CHUNK_END);
                                    } else {
                                        self.wbuf.put_slice(data);
                                    }
                                }
                            }
                            upstream.rbuf.advance(step.consumed);
                            if step.done {
                                if chunked_out {
                                    self.wbuf.put_slice(LAST_CHUNK);
                                }
                                exchange.response = ResponsePhase::Done;
                            } else if step.consumed == 0 && step.data.is_none() {
                                return Ok(moved);
                            }
                            moved = true;
                        }
                        Incoming::UntilClose => {
                            if !upstream.rbuf.is_empty() {
                                let room = CLIENT_WRITE_LIMIT - self.wbuf.len();
                                let take = upstream.rbuf.len().min(room);
                                let data = &upstream.rbuf[..take];
                                if chunked_out {
                                    write_chunk_size(&mut self.wbuf, data.len());
                                    self.wbuf.put_slice(data);
                                    self.wbuf.put_slice(CHUNK_END);
                                } else {
                                    self.wbuf.put_slice(data);
                                }
                                upstream.rbuf.advance(take);
                                moved = true;
                                continue;
                            }
                            if upstream.stream.read_closed {
                                if chunked_out {
                                    self.wbuf.put_slice(LAST_CHUNK);
                                }
                                exchange.response = ResponsePhase::Done;
                                moved = true;
                                continue;
                            }
                            return Ok(moved);
                        }
                    }
                }
            }
        }
    }

    /// The response is complete: pool the upstream connection if it is clean, and get the
    /// client connection ready for its next request (or close it).
    fn finish_exchange(&mut self, mut exchange: Box<Exchange>, ctx: &mut Ctx<'_>) -> Flow {
        let now = ctx.io.now;
        let request_done = matches!(exchange.request_body, RequestBodyState::Done);
        if let Some(mut upstream) = exchange.upstream.take() {
            upstream.requests += 1;
            let limits = &self.config.limits;
            let clean_end = request_done
                && self.response_head.keep_alive()
                && !upstream.stream.peer_closed()
                && upstream.requests < limits.upstream_keepalive_requests;
            // An end announced by an event but not read yet counts too: pooled with its
            // readiness cleared, such a connection would never report it again.
            let reusable = clean_end && upstream.rbuf.is_empty() && upstream.wbuf.is_empty() && limits.upstream_keepalive_pool_size > 0;
            if !upstream.waiters.is_empty() {
                if clean_end {
                    pass_turn(ctx.io, ctx.buffers, upstream);
                } else {
                    upstream.close(ctx.io, ctx.buffers);
                }
            } else if reusable {
                ctx.pool.checkin(ctx.io, ctx.buffers, upstream, limits.upstream_keepalive_pool_size, limits.upstream_keepalive_timeout);
            } else {
                upstream.close(ctx.io, ctx.buffers);
            }
        }
        ctx.buffers.give_response_head(std::mem::take(&mut self.response_head));
        let close = exchange.close_client || !request_done;
        ctx.scratch.recycled.give_exchange(exchange);
        if close {
            self.set_state(State::Closing { linger_until: None });
            return Flow::Again;
        }
        self.keep_alive(now)
    }

    fn abort_exchange(&mut self, exchange: Box<Exchange>, ctx: &mut Ctx<'_>) -> Flow {
        exchange.abort(ctx.io, ctx.buffers);
        Flow::Close
    }

    fn fail_request_body(&mut self, exchange: Box<Exchange>, response: ErrorResponse, ctx: &mut Ctx<'_>) -> Flow {
        let started = exchange.response_started;
        exchange.abort(ctx.io, ctx.buffers);
        if started {
            return Flow::Close;
        }
        debug!(peer = %self.peer, status = response.status, "request body rejected");
        self.unread_body = true;
        let head_only = self.head.method_bytes() == b"HEAD";
        self.respond(response, true, head_only);
        Flow::Again
    }

    fn exchange_timed_out(&mut self, exchange: Box<Exchange>, ctx: &mut Ctx<'_>) -> Flow {
        let waiting_for_body = !matches!(exchange.request_body, RequestBodyState::Done) && matches!(exchange.response, ResponsePhase::Head);
        let client_stalled = !self.wbuf.is_empty() && !self.stream.writable;
        if client_stalled {
            debug!(peer = %self.peer, "client did not read the response in time");
            return self.abort_exchange(exchange, ctx);
        }
        if waiting_for_body && self.rbuf.is_empty() && exchange.upstream.as_ref().is_some_and(|u| u.connected) {
            let started = exchange.response_started;
            exchange.abort(ctx.io, ctx.buffers);
            if started {
                return Flow::Close;
            }
            self.unread_body = true;
            self.respond(local::error_response(408, "the request body was not received in time"), true, false);
            return Flow::Again;
        }
        self.upstream_failed(exchange, UpstreamFailure::TimedOut, ctx)
    }

    /// Handles an upstream that failed: retries when that is safe, else answers 502/504, or
    /// closes the client connection when the response had already started.
    fn upstream_failed(&mut self, mut exchange: Box<Exchange>, failure: UpstreamFailure, ctx: &mut Ctx<'_>) -> Flow {
        let target = exchange.target;
        let upstream = exchange.upstream.take();
        // Queued on a shared connection that closed, or stalled behind another response,
        // before this request's turn: it is sent once more regardless of `retries`, because
        // the failure was another request's.
        let lost = exchange.queued_on.take().is_some();
        if upstream.is_none() && !lost {
            return Flow::Close;
        }
        let reused = upstream.as_ref().is_none_or(|upstream| upstream.requests > 0);
        let connect_failure = matches!(failure, UpstreamFailure::Connect(_));
        // A shared connection's buffer contains other requests' heads as well, so such an
        // exchange always keeps its own in `replay`.
        let head_bytes = if connect_failure && exchange.replay.is_empty() {
            upstream.as_ref().map(|upstream| upstream.wbuf.to_vec())
        } else if connect_failure || exchange.replayable {
            exchange.replayable = false;
            Some(std::mem::take(&mut exchange.replay))
        } else {
            None
        };
        if let Some(upstream) = upstream {
            upstream.close(ctx.io, ctx.buffers);
        }

        let services = &self.config.router.services;
        let retries = services.get(exchange.service).map_or(0, |s| s.retries);
        let idempotent_replay = reused && !exchange.response_bytes_received && exchange.attempts == 0;
        let may_retry = !exchange.response_started && (lost || (exchange.attempts < retries && (connect_failure || idempotent_replay)));
        if let (true, Some(head_bytes)) = (may_retry, head_bytes) {
            // A resend after a loss is not an attempt of this request's own.
            if !lost {
                exchange.attempts += 1;
            }
            let next_target = match self.config.router.services.get(exchange.service) {
                Some(service) if connect_failure || lost => next_target(service, exchange.service, ctx.round_robin).unwrap_or(target),
                _ => target,
            };
            debug!(peer = %self.peer, upstream = %target, retry = %next_target, attempt = exchange.attempts, "retrying upstream request");
            // A resend after a reused connection failed goes out on a new connection: the
            // other pooled connections to this upstream may have gone stale the same way.
            let pooled = if connect_failure { ctx.pool.checkout(ctx.io, next_target, self.slot) } else { None };
            match pooled.map(Ok).unwrap_or_else(|| UpstreamConn::connect(ctx.io, next_target, self.slot)) {
                Ok(mut conn) => {
                    ctx.buffers.ensure(&mut conn.wbuf);
                    conn.wbuf.put_slice(&head_bytes);
                    exchange.replayable = conn.requests > 0;
                    exchange.replay.clear();
                    if exchange.replayable {
                        exchange.replay.extend_from_slice(&head_bytes);
                    }
                    exchange.target = next_target;
                    exchange.upstream = Some(conn);
                    exchange.connect_started = ctx.io.now;
                    exchange.last_upstream_io = ctx.io.now;
                    exchange.response_bytes_received = false;
                    self.set_state(State::Proxy(exchange));
                    return Flow::Again;
                }
                Err(error) => warn!(upstream = %next_target, %error, "cannot connect to upstream"),
            }
        }

        let (status, message) = match &failure {
            UpstreamFailure::TimedOut => (504, "The upstream server is timing out".to_owned()),
            UpstreamFailure::Connect(error) => {
                warn!(upstream = %target, %error, "upstream connection failed");
                (502, "An invalid response was received from the upstream server".to_owned())
            }
            UpstreamFailure::Io(error) => {
                warn!(upstream = %target, %error, "upstream connection failed");
                (502, "An invalid response was received from the upstream server".to_owned())
            }
            UpstreamFailure::Closed => {
                warn!(upstream = %target, "upstream closed the connection before the response was complete");
                (502, "An invalid response was received from the upstream server".to_owned())
            }
            UpstreamFailure::InvalidResponse(reason) => {
                warn!(upstream = %target, reason = %reason, "invalid response from upstream");
                (502, "An invalid response was received from the upstream server".to_owned())
            }
        };
        if matches!(failure, UpstreamFailure::TimedOut) {
            warn!(upstream = %target, "upstream timed out");
        }
        if exchange.response_started {
            // Part of the response is out: the only honest signal left is closing.
            self.set_state(State::Closing { linger_until: None });
            return Flow::Again;
        }
        let body_done = matches!(exchange.request_body, RequestBodyState::Done);
        let head_only = self.head.method_bytes() == b"HEAD";
        self.respond(local::error_response(status, &message), !body_done, head_only);
        Flow::Again
    }
}

/// Picks the service's next target in its weighted round-robin order; `counters` holds this
/// worker's position per service. None when no target has a weight above 0.
fn next_target(service: &Service, service_index: usize, counters: &mut HashMap<usize, usize>) -> Option<SocketAddr> {
    if service.schedule.is_empty() {
        return None;
    }
    let counter = counters.entry(service_index).or_insert(0);
    let index = service.schedule[*counter % service.schedule.len()];
    *counter = counter.wrapping_add(1);
    service.targets.get(index).map(|target| target.addr)
}
