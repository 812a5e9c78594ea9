//! One keep-alive connection to a session or authorization endpoint, carrying pipelined
//! subrequests and parsing their answers in order.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use mio::net::TcpStream;
use mio::{Interest, Token};

use crate::access::pipeline::Purpose;
use crate::access::session::{SubFailure, SubResponse};
use crate::http::{ChunkedDecoder, ChunkedLimits, Method, ResponseBody, ResponseHead, ResponseLimits};
use crate::proxy::socket::{Readiness, Stream};
use crate::reactor::buffers::BufferPool;
use crate::reactor::timer::Timers;
use crate::reactor::worker::{Io, Slot};

/// Largest answer body accepted; a Kratos session is a few KiB.
const MAX_ANSWER_BODY_BYTES: usize = 1024 * 1024;
/// Read buffer bound.
const READ_BUFFER_BYTES: usize = 64 * 1024;
/// How long an idle connection stays open.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

struct InFlight {
    index: usize,
    is_head: bool,
    purpose: Purpose,
    /// The waiter gave up (timeout); the answer is read and dropped.
    abandoned: bool,
}

enum Phase {
    Head,
    Body { body: BodyKind, collected: BytesMut, response: SubResponse },
}

enum BodyKind {
    Length(u64),
    Chunked(ChunkedDecoder),
    UntilClose,
}

/// What one `run` produced.
pub struct RunOutcome {
    /// Subrequest indexes with their answers, in order.
    pub answered: Vec<(usize, SubResponse)>,
    /// Set when the connection is unusable; the caller fails or retries what is in flight.
    pub failed: Option<SubFailure>,
}

pub struct SubConn {
    pub serial: u64,
    stream: Stream,
    addr: SocketAddr,
    connected: bool,
    rbuf: BytesMut,
    wbuf: BytesMut,
    in_flight: VecDeque<InFlight>,
    served: u32,
    head: ResponseHead,
    phase: Phase,
    /// Bytes of the answer to the front request have arrived.
    answer_started: bool,
    failed: Option<SubFailure>,
    /// The server announced it closes after the current answer.
    closing: bool,
    idle_since: Instant,
    timer_queued: Option<Instant>,
}

impl SubConn {
    /// Starts a non-blocking connect to `addr` and registers the socket.
    pub fn connect(io: &mut Io, addr: SocketAddr) -> io::Result<usize> {
        let mut tcp = TcpStream::connect(addr)?;
        let _ = tcp.set_nodelay(true);
        let serial = io.serial();
        let entry = io.slab.vacant_entry();
        let slot = entry.key();
        io.registry.register(&mut tcp, Token(slot), Interest::READABLE | Interest::WRITABLE)?;
        entry.insert(Slot::Subrequest(Box::new(SubConn {
            serial,
            stream: Stream::plain(tcp),
            addr,
            connected: false,
            rbuf: BytesMut::new(),
            wbuf: BytesMut::new(),
            in_flight: VecDeque::new(),
            served: 0,
            head: ResponseHead::new(),
            phase: Phase::Head,
            answer_started: false,
            failed: None,
            closing: false,
            idle_since: io.now,
            timer_queued: None,
        })));
        Ok(slot)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn served(&self) -> u32 {
        self.served
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// False once the connection failed or the server said it will close.
    pub fn accepts_more(&self) -> bool {
        self.failed.is_none() && !self.closing
    }

    pub fn stream_event(&mut self, readiness: Readiness) {
        self.stream.on_event(readiness);
    }

    /// Appends a request to the write buffer; it is sent by the next `run`.
    pub fn queue_request(&mut self, index: usize, bytes: &[u8], is_head: bool, purpose: Purpose, buffers: &mut BufferPool) {
        buffers.ensure(&mut self.wbuf);
        self.wbuf.extend_from_slice(bytes);
        self.in_flight.push_back(InFlight { index, is_head, purpose, abandoned: false });
    }

    /// Marks a request as given up; its answer is still read, to keep the order.
    pub fn abandon(&mut self, index: usize) {
        for request in &mut self.in_flight {
            if request.index == index {
                request.abandoned = true;
            }
        }
    }

    pub fn fail(&mut self, failure: SubFailure) {
        self.failed.get_or_insert(failure);
    }

    /// Removes the requests still in flight, with whether their answer had started.
    pub fn take_in_flight(&mut self) -> Vec<(usize, bool)> {
        let started = self.answer_started;
        self.in_flight
            .drain(..)
            .enumerate()
            .filter(|(_, request)| !request.abandoned)
            .map(|(position, request)| (request.index, position == 0 && started))
            .collect()
    }

    pub fn idle_expired(&self, now: Instant) -> bool {
        self.in_flight.is_empty() && now.duration_since(self.idle_since) >= IDLE_TIMEOUT
    }

    pub fn arm_idle_timer(&mut self, timers: &mut Timers, slot: usize) {
        if self.in_flight.is_empty() {
            self.timer_queued = timers.arm_slot(slot, self.serial, self.idle_since + IDLE_TIMEOUT, self.timer_queued);
        }
    }

    pub fn close(&mut self, io: &mut Io, buffers: &mut BufferPool) {
        let _ = io.registry.deregister(self.stream.tcp_mut());
        self.rbuf.clear();
        self.wbuf.clear();
        buffers.give(&mut self.rbuf);
        buffers.give(&mut self.wbuf);
    }

    /// Makes all the progress possible without blocking.
    pub fn run(&mut self, now: Instant, buffers: &mut BufferPool) -> RunOutcome {
        let mut outcome = RunOutcome { answered: Vec::new(), failed: None };
        if self.failed.is_none() {
            self.exchange(&mut outcome, buffers);
        }
        if self.in_flight.is_empty() && outcome.failed.is_none() && self.failed.is_none() {
            if !outcome.answered.is_empty() {
                self.idle_since = now;
            }
            if self.closing {
                self.failed = Some(SubFailure::Unreachable);
            }
        }
        if self.rbuf.is_empty() {
            buffers.give(&mut self.rbuf);
        }
        if self.wbuf.is_empty() {
            buffers.give(&mut self.wbuf);
        }
        outcome.failed = outcome.failed.or(self.failed);
        outcome
    }

    fn exchange(&mut self, outcome: &mut RunOutcome, buffers: &mut BufferPool) {
        if !self.connected {
            if !self.stream.writable {
                return;
            }
            match self.stream.tcp().take_error() {
                Ok(None) => {}
                Ok(Some(_)) | Err(_) => return self.fail(SubFailure::Unreachable),
            }
            match self.stream.tcp().peer_addr() {
                Ok(_) => self.connected = true,
                Err(error) if error.kind() == io::ErrorKind::NotConnected => return,
                Err(_) => return self.fail(SubFailure::Unreachable),
            }
        }
        if !self.wbuf.is_empty() && self.stream.write(&mut self.wbuf).is_err() {
            return self.fail(SubFailure::Unreachable);
        }
        loop {
            if self.stream.readable {
                buffers.ensure(&mut self.rbuf);
                match self.stream.read(&mut self.rbuf, READ_BUFFER_BYTES) {
                    Ok(_) => {}
                    Err(_) => return self.fail(SubFailure::Unreachable),
                }
            }
            let before = self.rbuf.len();
            if let Err(failure) = self.parse(outcome) {
                return self.fail(failure);
            }
            if self.stream.read_closed {
                if let Phase::Body { body: BodyKind::UntilClose, .. } = self.phase {
                    self.finish_answer(outcome);
                }
                if !self.in_flight.is_empty() || !self.rbuf.is_empty() {
                    return self.fail(SubFailure::Unreachable);
                }
                self.failed = Some(SubFailure::Unreachable);
                return;
            }
            let consumed = self.rbuf.len() < before;
            if !self.stream.readable && !consumed {
                return;
            }
            if self.rbuf.len() >= READ_BUFFER_BYTES && !consumed {
                return self.fail(SubFailure::InvalidResponse);
            }
        }
    }

    /// Parses as many complete answers as the buffer holds.
    fn parse(&mut self, outcome: &mut RunOutcome) -> Result<(), SubFailure> {
        while !self.rbuf.is_empty() {
            let Some(front) = self.in_flight.front() else {
                // Bytes nobody asked for: the connection is out of step.
                return Err(SubFailure::InvalidResponse);
            };
            match &mut self.phase {
                Phase::Head => {
                    self.answer_started = true;
                    let method = if front.is_head { Method::Head } else { Method::Get };
                    let limits = ResponseLimits::default();
                    let consumed = match self.head.parse(&self.rbuf, method, &limits) {
                        Ok(Some(consumed)) => consumed,
                        Ok(None) => return Ok(()),
                        Err(_) => return Err(SubFailure::InvalidResponse),
                    };
                    self.rbuf.advance(consumed);
                    let status = self.head.status();
                    if (100..200).contains(&status) {
                        if status == 101 {
                            return Err(SubFailure::InvalidResponse);
                        }
                        continue;
                    }
                    let response = collect_headers(&self.head, front.purpose);
                    if !self.head.keep_alive() {
                        self.closing = true;
                    }
                    let body = match self.head.body() {
                        ResponseBody::None | ResponseBody::Length(0) => None,
                        ResponseBody::Length(length) if length > MAX_ANSWER_BODY_BYTES as u64 => {
                            return Err(SubFailure::InvalidResponse)
                        }
                        ResponseBody::Length(length) => Some(BodyKind::Length(length)),
                        ResponseBody::Chunked => Some(BodyKind::Chunked(ChunkedDecoder::new(ChunkedLimits::default()))),
                        ResponseBody::CloseDelimited => {
                            self.closing = true;
                            Some(BodyKind::UntilClose)
                        }
                    };
                    match body {
                        None => {
                            self.phase = Phase::Body { body: BodyKind::Length(0), collected: BytesMut::new(), response };
                            self.finish_answer(outcome);
                        }
                        Some(body) => self.phase = Phase::Body { body, collected: BytesMut::new(), response },
                    }
                }
                Phase::Body { body, collected, .. } => {
                    let done = match body {
                        BodyKind::Length(remaining) => {
                            let take = (*remaining).min(self.rbuf.len() as u64) as usize;
                            collected.extend_from_slice(&self.rbuf[..take]);
                            self.rbuf.advance(take);
                            *remaining -= take as u64;
                            *remaining == 0
                        }
                        BodyKind::Chunked(decoder) => {
                            let step = decoder.decode(&self.rbuf).map_err(|_| SubFailure::InvalidResponse)?;
                            if let Some(range) = step.data.clone() {
                                collected.extend_from_slice(self.rbuf.get(range).unwrap_or(&[]));
                            }
                            self.rbuf.advance(step.consumed);
                            if step.consumed == 0 && step.data.is_none() && !step.done {
                                return Ok(());
                            }
                            step.done
                        }
                        BodyKind::UntilClose => {
                            collected.extend_from_slice(&self.rbuf);
                            self.rbuf.clear();
                            false
                        }
                    };
                    if collected.len() > MAX_ANSWER_BODY_BYTES {
                        return Err(SubFailure::InvalidResponse);
                    }
                    if done {
                        self.finish_answer(outcome);
                    }
                }
            }
        }
        Ok(())
    }

    fn finish_answer(&mut self, outcome: &mut RunOutcome) {
        let Phase::Body { collected, mut response, .. } = std::mem::replace(&mut self.phase, Phase::Head) else {
            return;
        };
        response.body = collected.freeze();
        self.answer_started = false;
        self.served += 1;
        if let Some(request) = self.in_flight.pop_front() {
            if !request.abandoned {
                outcome.answered.push((request.index, response));
            }
        }
    }
}

/// Keeps the headers decisions use: `Set-Cookie`, `Retry-After`, and for authorization
/// answers every header (for `forward_response_headers_to_upstream`).
fn collect_headers(head: &ResponseHead, purpose: Purpose) -> SubResponse {
    let mut response = SubResponse { status: head.status(), ..SubResponse::default() };
    for (name, value) in head.headers() {
        let Ok(value) = std::str::from_utf8(value) else { continue };
        if name.eq_ignore_ascii_case(b"set-cookie") {
            response.set_cookies.push(value.to_owned());
        } else if name.eq_ignore_ascii_case(b"retry-after") {
            response.retry_after = Some(value.to_owned());
        } else if purpose == Purpose::Authorization {
            if let Ok(name) = std::str::from_utf8(name) {
                response.headers.push((name.to_ascii_lowercase(), value.to_owned()));
            }
        }
    }
    response
}
