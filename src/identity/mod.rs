//! The subrequest client: session checks (Kratos `/sessions/whoami`) and remote
//! authorization calls, sent from the worker's event loop over pooled keep-alive connections.
//!
//! - Identical requests in flight (same bytes, hence the same credential) share one exchange:
//!   later callers wait for the first one's answer.
//! - Requests queued during one loop iteration are written together, and several may be in
//!   flight on one connection (HTTP/1.1 pipelining); answers come back in order.
//! - Every subrequest has a deadline. A connection that fails takes its requests with it;
//!   a request that failed on a reused connection before any answer byte is retried once on
//!   a fresh connection, because a keep-alive connection may have been closed by the server
//!   just as it was reused.
//! - An optional cache (off unless configured) keeps answers for a bounded time.

mod cache;
mod connection;

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use std::sync::{Arc, Mutex, OnceLock};

use slab::Slab;
use tracing::{debug, warn};

use crate::access::pipeline::{Purpose, Subrequest};
use crate::access::rules::SessionCacheSettings;
use crate::access::session::{SubFailure, SubResult};
use crate::proxy::socket::Readiness;
use crate::reactor::buffers::BufferPool;
use crate::reactor::worker::{Io, Slot};

pub use cache::SessionCache;
pub use connection::SubConn;

/// Connections per endpoint and worker.
const MAX_CONNECTIONS_PER_ENDPOINT: usize = 8;
/// Requests in flight on one connection before another connection is opened.
const MAX_PIPELINE_DEPTH: usize = 16;
/// Subrequests waiting or in flight per worker; beyond this new ones fail at once.
const MAX_PENDING: usize = 16_384;
/// Clients that may wait on one shared subrequest.
const MAX_WAITERS: usize = 4096;

/// A subrequest's answer for one waiting client.
pub struct Delivery {
    pub client: usize,
    pub serial: u64,
    pub result: Arc<SubResult>,
}

/// Who waits for a subrequest: a client slot and its serial.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Waiter {
    pub client: usize,
    pub serial: u64,
}

struct Pending {
    serial: u64,
    hash: u64,
    /// This worker registered the request in the shared in-flight table.
    shared_owner: bool,
    bytes: Arc<[u8]>,
    addr: SocketAddr,
    purpose: Purpose,
    is_head: bool,
    waiters: Vec<Waiter>,
    /// The connection slot it was written to, once written.
    conn: Option<usize>,
    /// Retries used; a request is retried at most once.
    attempts: u8,
    cache: Option<SessionCacheSettings>,
}

#[derive(Default)]
struct Endpoint {
    connections: Vec<usize>,
    queue: VecDeque<usize>,
}

/// A subrequest in flight on some worker, which other workers may wait on.
struct SharedInflight {
    owner: usize,
    bytes: Arc<[u8]>,
    /// Waiters on other workers: (worker, waiter).
    remote: Vec<(usize, Waiter)>,
}

/// A worker's inbox for answers to subrequests that another worker sent.
pub struct Inbox {
    queue: Mutex<Vec<Delivery>>,
    waker: OnceLock<Arc<mio::Waker>>,
}

/// Subrequest state shared by all workers: in-flight requests (so that one credential is
/// checked once at a time across the whole gateway) and the session cache. Locks are held
/// only for map updates, never across I/O.
pub struct SharedIdentity {
    inflight: Mutex<HashMap<u64, SharedInflight>>,
    inboxes: Vec<Inbox>,
    cache: Mutex<SessionCache>,
}

impl SharedIdentity {
    pub fn new(workers: usize) -> SharedIdentity {
        SharedIdentity {
            inflight: Mutex::new(HashMap::new()),
            inboxes: (0..workers).map(|_| Inbox { queue: Mutex::new(Vec::new()), waker: OnceLock::new() }).collect(),
            cache: Mutex::new(SessionCache::default()),
        }
    }

    /// Tells the shared state how to wake `worker` when answers arrive for it.
    pub fn set_waker(&self, worker: usize, waker: Arc<mio::Waker>) {
        if let Some(inbox) = self.inboxes.get(worker) {
            let _ = inbox.waker.set(waker);
        }
    }

    /// Takes the answers other workers delivered to `worker`.
    pub fn take_inbox(&self, worker: usize) -> Vec<Delivery> {
        match self.inboxes.get(worker).map(|inbox| inbox.queue.lock()) {
            Some(Ok(mut queue)) => std::mem::take(&mut *queue),
            _ => Vec::new(),
        }
    }

    fn send(&self, worker: usize, delivery: Delivery) {
        let Some(inbox) = self.inboxes.get(worker) else { return };
        if let Ok(mut queue) = inbox.queue.lock() {
            queue.push(delivery);
        }
        if let Some(waker) = inbox.waker.get() {
            if let Err(error) = waker.wake() {
                warn!(worker, %error, "cannot wake a worker for a subrequest answer");
            }
        }
    }
}

pub struct Subrequests {
    worker: usize,
    shared: Arc<SharedIdentity>,
    pending: Slab<Pending>,
    by_hash: HashMap<u64, usize>,
    endpoints: HashMap<SocketAddr, Endpoint>,
    dirty: Vec<SocketAddr>,
    /// Results that are ready without I/O (cache hits, immediate failures), delivered on the
    /// next flush so that callers never re-enter themselves.
    ready: Vec<Delivery>,
    /// Deadlines of pending subrequests, one queue per timeout length. Within a queue the
    /// deadlines only grow, so the front is always the next to expire, and entries of
    /// subrequests that already finished are dropped as they reach the front. This costs O(1)
    /// per subrequest, where a heap entry per subrequest cost O(log n) and stayed queued for
    /// the whole timeout.
    deadlines: HashMap<Duration, VecDeque<(Instant, usize, u64)>>,
}

impl Subrequests {
    pub fn new(worker: usize, shared: Arc<SharedIdentity>) -> Subrequests {
        Subrequests {
            worker,
            shared,
            pending: Slab::new(),
            by_hash: HashMap::new(),
            endpoints: HashMap::new(),
            dirty: Vec::new(),
            ready: Vec::new(),
            deadlines: HashMap::new(),
        }
    }

    /// The earliest deadline of a pending subrequest, for the poll timeout.
    pub fn next_deadline(&mut self) -> Option<Instant> {
        let pending = &self.pending;
        let mut next: Option<Instant> = None;
        for queue in self.deadlines.values_mut() {
            while let Some(&(at, index, serial)) = queue.front() {
                if pending.get(index).is_some_and(|p| p.serial == serial) {
                    next = Some(next.map_or(at, |n| n.min(at)));
                    break;
                }
                queue.pop_front();
            }
        }
        next
    }

    /// Fails every pending subrequest whose deadline has passed.
    pub fn expire(&mut self, io: &mut Io, buffers: &mut BufferPool) -> Vec<Delivery> {
        let mut due = Vec::new();
        for queue in self.deadlines.values_mut() {
            while let Some(&(at, index, serial)) = queue.front() {
                let live = self.pending.get(index).is_some_and(|p| p.serial == serial);
                if live && at > io.now {
                    break;
                }
                queue.pop_front();
                if live {
                    due.push((index, serial));
                }
            }
        }
        let mut deliveries = Vec::new();
        for (index, serial) in due {
            deliveries.extend(self.on_subrequest_timeout(io, buffers, index, serial));
        }
        deliveries
    }

    /// Queues `request` for `waiter`. The answer arrives later as a `Delivery`, possibly
    /// within the same loop iteration (from the cache) or from another worker that is already
    /// sending the same request.
    pub fn submit(&mut self, io: &mut Io, request: Subrequest, waiter: Waiter) {
        let hash = hash_bytes(&request.bytes);
        if request.cache.is_some() {
            let cached = self.shared.cache.lock().ok().and_then(|mut cache| cache.get(&request.bytes, io.now));
            if let Some(result) = cached {
                self.ready.push(Delivery { client: waiter.client, serial: waiter.serial, result });
                return;
            }
        }
        if let Some(&index) = self.by_hash.get(&hash) {
            if let Some(pending) = self.pending.get_mut(index) {
                if *pending.bytes == *request.bytes && pending.waiters.len() < MAX_WAITERS {
                    pending.waiters.push(waiter);
                    return;
                }
            }
        }
        let bytes: Arc<[u8]> = Arc::from(request.bytes);
        let mut shared_owner = false;
        if let Ok(mut inflight) = self.shared.inflight.lock() {
            match inflight.get_mut(&hash) {
                Some(entry) if entry.owner != self.worker && *entry.bytes == *bytes && entry.remote.len() < MAX_WAITERS => {
                    entry.remote.push((self.worker, waiter));
                    return;
                }
                Some(_) => {}
                None => {
                    inflight.insert(hash, SharedInflight { owner: self.worker, bytes: Arc::clone(&bytes), remote: Vec::new() });
                    shared_owner = true;
                }
            }
        }
        if self.pending.len() >= MAX_PENDING {
            warn!(pending = self.pending.len(), "too many subrequests in flight; failing a new one");
            self.ready.push(Delivery { client: waiter.client, serial: waiter.serial, result: Arc::new(Err(SubFailure::Unreachable)) });
            return;
        }
        let serial = io.serial();
        let is_head = bytes.starts_with(b"HEAD ");
        let index = self.pending.insert(Pending {
            serial,
            hash,
            shared_owner,
            bytes,
            addr: request.addr,
            purpose: request.purpose,
            is_head,
            waiters: vec![waiter],
            conn: None,
            attempts: 0,
            cache: request.cache,
        });
        self.by_hash.entry(hash).or_insert(index);
        self.deadlines.entry(request.timeout).or_default().push_back((io.now + request.timeout, index, serial));
        self.enqueue(request.addr, index);
    }

    fn enqueue(&mut self, addr: SocketAddr, index: usize) {
        self.endpoints.entry(addr).or_default().queue.push_back(index);
        if !self.dirty.contains(&addr) {
            self.dirty.push(addr);
        }
    }

    /// Returns whether requests or results are waiting for the next `flush`.
    pub fn has_unsent(&self) -> bool {
        !self.dirty.is_empty() || !self.ready.is_empty()
    }

    /// Writes everything queued this iteration and returns results that are ready, including
    /// answers other workers delivered.
    pub fn flush(&mut self, io: &mut Io, buffers: &mut BufferPool) -> Vec<Delivery> {
        let mut deliveries = std::mem::take(&mut self.ready);
        deliveries.extend(self.shared.take_inbox(self.worker));
        while let Some(addr) = self.dirty.pop() {
            self.assign(io, buffers, addr, &mut deliveries);
        }
        deliveries
    }

    /// Moves queued requests of `addr` onto connections, opening connections as needed.
    fn assign(&mut self, io: &mut Io, buffers: &mut BufferPool, addr: SocketAddr, deliveries: &mut Vec<Delivery>) {
        let mut touched = Vec::new();
        loop {
            let Some(endpoint) = self.endpoints.get_mut(&addr) else { return };
            let Some(&index) = endpoint.queue.front() else { break };
            // The connection this flush already writes to comes first while it has room, so
            // the subrequests of one loop iteration leave in as few writes as possible. Next
            // comes the least busy connection with room, then a new one.
            let mut best: Option<(usize, usize)> = None;
            if let Some(&last) = touched.last() {
                if let Some(Slot::Subrequest(conn)) = io.slab.get(last) {
                    if conn.accepts_more() && conn.in_flight() < MAX_PIPELINE_DEPTH {
                        best = Some((last, 0));
                    }
                }
            }
            let candidates = if best.is_none() { &endpoint.connections[..] } else { &[] };
            for &slot in candidates {
                if let Some(Slot::Subrequest(conn)) = io.slab.get(slot) {
                    let depth = conn.in_flight();
                    if conn.accepts_more() && depth < MAX_PIPELINE_DEPTH && best.is_none_or(|(_, d)| depth < d) {
                        best = Some((slot, depth));
                    }
                }
            }
            let slot = match best {
                Some((slot, depth)) if depth == 0 || endpoint.connections.len() >= MAX_CONNECTIONS_PER_ENDPOINT => slot,
                _ if endpoint.connections.len() < MAX_CONNECTIONS_PER_ENDPOINT => match SubConn::connect(io, addr) {
                    Ok(slot) => {
                        endpoint.connections.push(slot);
                        slot
                    }
                    Err(error) => {
                        warn!(endpoint = %addr, %error, "cannot open a connection for subrequests");
                        endpoint.queue.pop_front();
                        self.complete(index, Err(SubFailure::Unreachable), io, deliveries);
                        continue;
                    }
                },
                Some((slot, _)) => slot,
                None => break,
            };
            let Some(endpoint) = self.endpoints.get_mut(&addr) else { return };
            endpoint.queue.pop_front();
            let Some(pending) = self.pending.get_mut(index) else { continue };
            if let Some(Slot::Subrequest(conn)) = io.slab.get_mut(slot) {
                conn.queue_request(index, &pending.bytes, pending.is_head, pending.purpose, buffers);
                pending.conn = Some(slot);
                if !touched.contains(&slot) {
                    touched.push(slot);
                }
            }
        }
        for slot in touched {
            self.drive(io, buffers, slot, deliveries);
        }
    }

    /// Handles readiness of a subrequest connection.
    pub fn on_event(&mut self, io: &mut Io, buffers: &mut BufferPool, slot: usize, readiness: Readiness) -> Vec<Delivery> {
        let mut deliveries = Vec::new();
        if let Some(Slot::Subrequest(conn)) = io.slab.get_mut(slot) {
            conn.stream_event(readiness);
        }
        self.drive(io, buffers, slot, &mut deliveries);
        let dirty = std::mem::take(&mut self.dirty);
        for addr in dirty {
            self.assign(io, buffers, addr, &mut deliveries);
        }
        deliveries
    }

    /// Runs one connection: writes, reads, completes answered requests, and cleans up.
    fn drive(&mut self, io: &mut Io, buffers: &mut BufferPool, slot: usize, deliveries: &mut Vec<Delivery>) {
        let Some(entry) = io.slab.get_mut(slot) else { return };
        if !matches!(entry, Slot::Subrequest(_)) {
            return;
        }
        let Slot::Subrequest(mut conn) = std::mem::replace(entry, Slot::Taken) else { return };
        let outcome = conn.run(io.now, buffers);
        for (index, response) in outcome.answered {
            self.complete(index, Ok(response), io, deliveries);
        }
        if let Some(failure) = outcome.failed {
            let addr = conn.addr();
            let reused = conn.served() > 0;
            debug!(endpoint = %addr, failure = failure.describe(), in_flight = conn.in_flight(), "subrequest connection closed");
            for (index, answer_started) in conn.take_in_flight() {
                let retry = reused && !answer_started && self.pending.get(index).is_some_and(|p| p.attempts == 0);
                if retry {
                    if let Some(pending) = self.pending.get_mut(index) {
                        pending.attempts += 1;
                        pending.conn = None;
                    }
                    self.enqueue(addr, index);
                } else {
                    self.complete(index, Err(failure), io, deliveries);
                }
            }
            conn.close(io, buffers);
            io.slab.remove(slot);
            if let Some(endpoint) = self.endpoints.get_mut(&addr) {
                endpoint.connections.retain(|&s| s != slot);
                if !endpoint.queue.is_empty() && !self.dirty.contains(&addr) {
                    self.dirty.push(addr);
                }
            }
            return;
        }
        let addr = conn.addr();
        let has_room = conn.accepts_more() && conn.in_flight() < MAX_PIPELINE_DEPTH;
        conn.arm_idle_timer(&mut io.timers, slot);
        if let Some(entry) = io.slab.get_mut(slot) {
            *entry = Slot::Subrequest(conn);
        }
        if has_room && self.endpoints.get(&addr).is_some_and(|e| !e.queue.is_empty()) && !self.dirty.contains(&addr) {
            self.dirty.push(addr);
        }
    }

    /// Fails a subrequest whose deadline passed. A request already written blocks the
    /// answers behind it on its connection, so that connection is closed too.
    pub fn on_subrequest_timeout(&mut self, io: &mut Io, buffers: &mut BufferPool, index: usize, serial: u64) -> Vec<Delivery> {
        let mut deliveries = Vec::new();
        let Some(pending) = self.pending.get(index) else { return deliveries };
        if pending.serial != serial {
            return deliveries;
        }
        let addr = pending.addr;
        warn!(endpoint = %addr, purpose = ?pending.purpose, "subrequest timed out");
        match pending.conn {
            None => {
                if let Some(endpoint) = self.endpoints.get_mut(&addr) {
                    endpoint.queue.retain(|&i| i != index);
                }
                self.complete(index, Err(SubFailure::TimedOut), io, &mut deliveries);
            }
            Some(slot) => {
                self.complete(index, Err(SubFailure::TimedOut), io, &mut deliveries);
                if let Some(Slot::Subrequest(conn)) = io.slab.get_mut(slot) {
                    conn.abandon(index);
                    conn.fail(SubFailure::TimedOut);
                }
                self.drive(io, buffers, slot, &mut deliveries);
            }
        }
        let dirty = std::mem::take(&mut self.dirty);
        for addr in dirty {
            self.assign(io, buffers, addr, &mut deliveries);
        }
        deliveries
    }

    /// Closes a connection that stayed idle past its keep-alive time.
    pub fn on_connection_timer(&mut self, io: &mut Io, buffers: &mut BufferPool, slot: usize) -> Vec<Delivery> {
        let mut deliveries = Vec::new();
        let now = io.now;
        let expired = match io.slab.get_mut(slot) {
            Some(Slot::Subrequest(conn)) => {
                if conn.idle_expired(now) {
                    conn.fail(SubFailure::Unreachable);
                    true
                } else {
                    conn.arm_idle_timer(&mut io.timers, slot);
                    false
                }
            }
            _ => false,
        };
        if expired {
            self.drive(io, buffers, slot, &mut deliveries);
        }
        deliveries
    }

    fn complete(&mut self, index: usize, result: SubResult, io: &mut Io, deliveries: &mut Vec<Delivery>) {
        let Some(pending) = self.pending.try_remove(index) else { return };
        if self.by_hash.get(&pending.hash) == Some(&index) {
            self.by_hash.remove(&pending.hash);
        }
        if let Some(settings) = pending.cache {
            if let Ok(mut cache) = self.shared.cache.lock() {
                cache.insert(&pending.bytes, &result, settings, io.now);
            }
        }
        let result = Arc::new(result);
        for waiter in pending.waiters {
            deliveries.push(Delivery { client: waiter.client, serial: waiter.serial, result: Arc::clone(&result) });
        }
        if pending.shared_owner {
            let remote = match self.shared.inflight.lock() {
                Ok(mut inflight) => match inflight.get(&pending.hash) {
                    Some(entry) if entry.owner == self.worker => inflight.remove(&pending.hash).map(|e| e.remote).unwrap_or_default(),
                    _ => Vec::new(),
                },
                Err(_) => Vec::new(),
            };
            for (worker, waiter) in remote {
                self.shared.send(worker, Delivery { client: waiter.client, serial: waiter.serial, result: Arc::clone(&result) });
            }
        }
    }

    /// Subrequests waiting or in flight.
    pub fn pending_count(&self) -> usize {
        self.pending.len()
    }
}

fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut hasher = DefaultHasher::new();
    bytes.hash(&mut hasher);
    hasher.finish()
}
