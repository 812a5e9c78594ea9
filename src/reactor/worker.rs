//! One event loop: poll, dispatch readiness to the owner of each socket, fire due timers,
//! then send the subrequests queued during this iteration together.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Registry, Token, Waker};
use slab::Slab;
use tracing::{debug, error, info, warn};

use super::buffers::BufferPool;
use super::timer::{TimerKey, TimerKind, Timers};
use super::{BoundListener, ListenerRole, Shared};
use crate::access::matcher::MatchScratch;
use crate::config::Config;
use crate::identity::{SubConn, Subrequests};
use crate::proxy::client::{ClientConn, Next, Recycled};
use crate::proxy::socket::Readiness;
use crate::proxy::upstream::{UpstreamConn, UpstreamPool, Waiting};

/// Token of the waker that the main thread uses to signal reloads and shutdown.
pub const WAKER_TOKEN: Token = Token(usize::MAX - 1);

/// How long accepting pauses after the process ran out of file descriptors.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Connections the API listener accepts at once, across workers.
const API_MAX_CONNECTIONS: usize = 1024;

/// Longest wait in `poll`, so that a reload or drain is noticed even without events.
const MAX_POLL_WAIT: Duration = Duration::from_secs(1);

/// What lives in a slab slot. Every socket has its own slot; its token is the slot key.
pub enum Slot {
    Listener(Listener),
    Client(Box<ClientConn>),
    /// The upstream socket of an exchange; the connection is owned by this client slot.
    Upstream { client: usize },
    /// An idle upstream connection waiting in the pool.
    Pooled(Box<UpstreamConn>),
    /// A connection to a session or authorization endpoint.
    Subrequest(Box<SubConn>),
    /// Temporarily moved out while its owner is being driven.
    Taken,
}

pub struct Listener {
    pub socket: TcpListener,
    pub addr: SocketAddr,
    pub role: ListenerRole,
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// Reactor resources that connection code needs while it runs: registration, slots, timers.
pub struct Io {
    pub registry: Registry,
    pub slab: Slab<Slot>,
    pub timers: Timers,
    next_serial: u64,
    /// Time at the start of this loop iteration.
    pub now: Instant,
    /// Clients to run again before the next poll, because something changed for them
    /// without an event of their own (a shared upstream connection was handed over or lost).
    pub wake: Vec<Waiting>,
}

impl Io {
    /// A new serial number, unique within this worker.
    pub fn serial(&mut self) -> u64 {
        self.next_serial += 1;
        self.next_serial
    }

    pub fn arm_slot(&mut self, slot: usize, serial: u64, at: Instant, queued: Option<Instant>) -> Option<Instant> {
        self.timers.arm_slot(slot, serial, at, queued)
    }
}

/// Per-request scratch space reused across requests, so the hot path does not allocate.
pub struct Scratch {
    pub matcher: Option<MatchScratch>,
    /// `scheme://host/path` of the request, as rules see it.
    pub url: Vec<u8>,
    /// The path sent upstream.
    pub upstream_path: Vec<u8>,
    /// The generation of `config` that `matcher` was built for.
    pub matcher_config: usize,
    /// Per-request state boxes kept for the next request, with the storage inside them.
    pub recycled: Recycled,
}

/// Everything a connection handler may use besides its own state.
pub struct Ctx<'a> {
    pub io: &'a mut Io,
    pub config: &'a Arc<Config>,
    pub pool: &'a mut UpstreamPool,
    pub identity: &'a mut Subrequests,
    pub buffers: &'a mut BufferPool,
    pub scratch: &'a mut Scratch,
    pub round_robin: &'a mut HashMap<usize, usize>,
    pub shared: &'a Shared,
    pub worker: usize,
}

pub struct Worker {
    id: usize,
    poll: Poll,
    io: Io,
    shared: Arc<Shared>,
    config: Arc<Config>,
    pool: UpstreamPool,
    identity: Subrequests,
    buffers: BufferPool,
    scratch: Scratch,
    round_robin: HashMap<usize, usize>,
    listener_slots: Vec<usize>,
    /// Accepting paused per listener role (indexed by `ListenerRole as usize`) because its
    /// connection limit was reached.
    accept_paused: [bool; 2],
    /// Accepting paused because the process ran out of file descriptors.
    out_of_descriptors: bool,
    clients: usize,
    /// Connections opened or closed since memory was last handed back to the system.
    churn_since_trim: usize,
}

impl Worker {
    /// Creates a poll instance and its waker; the worker itself is built on its own thread
    /// by `new`, because its connection state is not `Send`.
    pub fn poll_with_waker() -> io::Result<(Poll, Arc<Waker>)> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER_TOKEN)?);
        Ok((poll, waker))
    }

    /// Creates a worker that will serve `listeners` with `poll`.
    pub fn new(id: usize, poll: Poll, shared: Arc<Shared>, listeners: Vec<BoundListener>) -> io::Result<Worker> {
        let registry = poll.registry().try_clone()?;
        let config = shared.config.load_full();
        let identity = Subrequests::new(id, Arc::clone(&shared.identity));
        let mut io = Io { registry, slab: Slab::with_capacity(1024), timers: Timers::default(), next_serial: 0, now: Instant::now(), wake: Vec::new() };
        let mut listener_slots = Vec::new();
        for bound in listeners {
            let mut socket = TcpListener::from_std(bound.socket);
            let entry = io.slab.vacant_entry();
            let slot = entry.key();
            io.registry.register(&mut socket, Token(slot), Interest::READABLE)?;
            entry.insert(Slot::Listener(Listener { socket, addr: bound.addr, role: bound.role, tls: bound.tls }));
            listener_slots.push(slot);
        }
        let worker = Worker {
            id,
            poll,
            io,
            shared,
            config,
            pool: UpstreamPool::default(),
            identity,
            buffers: BufferPool::default(),
            scratch: Scratch { matcher: None, url: Vec::new(), upstream_path: Vec::new(), matcher_config: 0, recycled: Recycled::default() },
            round_robin: HashMap::new(),
            listener_slots,
            accept_paused: [false; 2],
            out_of_descriptors: false,
            clients: 0,
            churn_since_trim: 0,
        };
        Ok(worker)
    }

    /// Runs the loop until a drain has finished.
    pub fn run(mut self) {
        info!(worker = self.id, "worker started");
        let mut events = Events::with_capacity(1024);
        let mut draining = false;
        loop {
            let next = match (self.io.timers.next(), self.identity.next_deadline()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let wait = next.map(|at| at.saturating_duration_since(Instant::now())).map_or(MAX_POLL_WAIT, |wait| wait.min(MAX_POLL_WAIT));
            if let Err(error) = self.poll.poll(&mut events, Some(wait)) {
                if error.kind() != io::ErrorKind::Interrupted {
                    error!(worker = self.id, %error, "poll failed; worker stops");
                    break;
                }
            }
            self.io.now = Instant::now();
            self.refresh_config();
            if events.is_empty() && (self.churn_since_trim > 0 || self.buffers.has_excess()) {
                self.trim_memory();
            }

            for event in events.iter() {
                let token = event.token();
                if token == WAKER_TOKEN {
                    continue;
                }
                let readiness = Readiness {
                    readable: event.is_readable(),
                    writable: event.is_writable() || event.is_error(),
                    read_closed: event.is_read_closed() || event.is_error(),
                };
                self.dispatch(token.0, readiness);
            }
            self.fire_timers();
            // Subrequest results start exchanges and shared connections start requests that
            // may need subrequests; both are sent before the next poll.
            loop {
                self.flush_subrequests();
                if self.pool.unflushed.is_empty() && !self.identity.has_unsent() {
                    break;
                }
                self.flush_upstreams();
            }

            if !draining && self.shared.is_draining() {
                draining = true;
                self.start_drain();
            }
            if draining && self.clients == 0 {
                break;
            }
        }
        info!(worker = self.id, "worker stopped");
    }

    /// Frees the pooled buffers a busy period left beyond the idle floor and returns freed
    /// heap memory to the system while the worker is idle. After a burst of connections,
    /// glibc keeps the freed buffers of those connections resident; without this the process
    /// stays as large as its busiest moment.
    fn trim_memory(&mut self) {
        self.churn_since_trim = 0;
        self.buffers.shrink();
        // SAFETY: malloc_trim only walks and releases glibc's free lists; it has no
        // preconditions and touches no memory the program owns.
        unsafe {
            libc::malloc_trim(0);
        }
    }

    fn refresh_config(&mut self) {
        let current = self.shared.config.load();
        if !Arc::ptr_eq(&current, &self.config) {
            self.config = Arc::clone(&current);
            self.scratch.matcher = None;
            self.round_robin.clear();
        }
    }

    fn dispatch(&mut self, slot: usize, readiness: Readiness) {
        match self.io.slab.get_mut(slot) {
            Some(Slot::Listener(_)) => self.accept(slot),
            Some(Slot::Client(client)) => {
                client.stream.on_event(readiness);
                self.drive_client(slot);
            }
            Some(Slot::Upstream { client }) => {
                let client = *client;
                if let Some(Slot::Client(conn)) = self.io.slab.get_mut(client) {
                    conn.on_upstream_event(readiness);
                }
                self.drive_client(client);
            }
            Some(Slot::Pooled(conn)) => {
                // An idle pooled connection has nothing to say: data or EOF means it is done.
                if readiness.readable || readiness.read_closed {
                    let addr = conn.addr;
                    debug!(worker = self.id, upstream = %addr, "pooled upstream connection closed or sent unexpected data");
                    self.pool.remove(slot, addr);
                    if let Slot::Pooled(mut conn) = self.io.slab.remove(slot) {
                        let _ = self.io.registry.deregister(conn.stream.tcp_mut());
                    }
                } else if readiness.writable {
                    conn.stream.on_event(Readiness { writable: true, ..Readiness::default() });
                }
            }
            Some(Slot::Subrequest(_)) => {
                let deliveries = self.identity.on_event(&mut self.io, &mut self.buffers, slot, readiness);
                self.deliver(deliveries);
            }
            Some(Slot::Taken) | None => {}
        }
    }

    /// Runs the client in `slot`, then every client that its run woke.
    fn drive_client(&mut self, slot: usize) {
        self.drive_one(slot);
        self.drive_woken();
    }

    /// Runs the clients woken without an event of their own, until none is left.
    fn drive_woken(&mut self) {
        while let Some(woken) = self.io.wake.pop() {
            if matches!(self.io.slab.get(woken.client), Some(Slot::Client(client)) if client.serial == woken.serial) {
                self.drive_one(woken.client);
            }
        }
    }

    /// Takes the client out of its slot, lets it run, and puts it back or closes it.
    fn drive_one(&mut self, slot: usize) {
        let Some(entry) = self.io.slab.get_mut(slot) else { return };
        if !matches!(entry, Slot::Client(_)) {
            return;
        }
        let Slot::Client(mut client) = std::mem::replace(entry, Slot::Taken) else { return };
        let next = {
            let mut ctx = Ctx {
                io: &mut self.io,
                config: &self.config,
                pool: &mut self.pool,
                identity: &mut self.identity,
                buffers: &mut self.buffers,
                scratch: &mut self.scratch,
                round_robin: &mut self.round_robin,
                shared: &self.shared,
                worker: self.id,
            };
            client.drive(&mut ctx)
        };
        self.finish_client(slot, client, next);
    }

    fn finish_client(&mut self, slot: usize, mut client: Box<ClientConn>, next: Next) {
        match next {
            Next::Continue => {
                if let Some(entry) = self.io.slab.get_mut(slot) {
                    *entry = Slot::Client(client);
                }
            }
            Next::Close => {
                client.close(&mut self.io, &mut self.pool, &mut self.buffers);
                self.io.slab.remove(slot);
                self.clients = self.clients.saturating_sub(1);
                self.churn_since_trim += 1;
                self.shared.connections(client.role()).fetch_sub(1, Ordering::AcqRel);
                if self.accept_paused[client.role() as usize] {
                    self.resume_accept();
                }
            }
        }
    }

    fn accept(&mut self, slot: usize) {
        if self.shared.is_draining() {
            return;
        }
        let Some(Slot::Listener(listener)) = self.io.slab.get(slot) else { return };
        let role = listener.role;
        if self.accept_paused[role as usize] || self.out_of_descriptors {
            return;
        }
        let max = match role {
            ListenerRole::Proxy => self.config.limits.max_connections,
            ListenerRole::Api => API_MAX_CONNECTIONS,
        };
        loop {
            let open = self.shared.connections(role).load(Ordering::Acquire);
            if open >= max {
                warn!(worker = self.id, ?role, open, max, "connection limit reached; accepting paused until connections close");
                self.accept_paused[role as usize] = true;
                self.arm_resume();
                return;
            }
            let Some(Slot::Listener(listener)) = self.io.slab.get_mut(slot) else { return };
            let (tcp, peer) = match listener.socket.accept() {
                Ok(accepted) => accepted,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) if is_fd_exhaustion(&error) => {
                    warn!(worker = self.id, %error, "out of file descriptors; accepting paused");
                    self.out_of_descriptors = true;
                    self.arm_resume();
                    return;
                }
                Err(error) => {
                    // ECONNABORTED and friends concern one connection, not the listener.
                    debug!(worker = self.id, %error, "accept failed");
                    continue;
                }
            };
            debug!(worker = self.id, peer = %peer, "connection accepted");
            let tls = listener.tls.clone();
            let local = listener.addr;
            let _ = tcp.set_nodelay(true);
            self.shared.connections(role).fetch_add(1, Ordering::AcqRel);
            self.clients += 1;
            self.churn_since_trim += 1;
            let serial = self.io.serial();
            let entry = self.io.slab.vacant_entry();
            let client_slot = entry.key();
            let client = ClientConn::new(client_slot, serial, tcp, peer, local, role, tls, Arc::clone(&self.config), self.io.now);
            let mut client = match client {
                Ok(client) => Box::new(client),
                Err(error) => {
                    warn!(worker = self.id, %error, "cannot set up TLS for a new connection");
                    self.clients -= 1;
                    self.shared.connections(role).fetch_sub(1, Ordering::AcqRel);
                    continue;
                }
            };
            if let Err(error) = self.io.registry.register(client.stream.tcp_mut(), Token(client_slot), Interest::READABLE | Interest::WRITABLE) {
                warn!(worker = self.id, %error, "cannot register a new connection");
                self.clients -= 1;
                self.shared.connections(role).fetch_sub(1, Ordering::AcqRel);
                continue;
            }
            client.arm_initial_timer(&mut self.io.timers);
            entry.insert(Slot::Client(client));
        }
    }

    /// Retries accepting after a pause, in case no connection closes to trigger it.
    fn arm_resume(&mut self) {
        let key = TimerKey { kind: TimerKind::ResumeAccept, index: 0, serial: 0 };
        self.io.timers.arm(key, self.io.now + ACCEPT_BACKOFF, None);
    }

    /// Accepts again after a pause. Edge-triggered listeners only announce new connections,
    /// so whatever queued meanwhile is drained now.
    fn resume_accept(&mut self) {
        let was_paused = self.accept_paused.iter().any(|&p| p) || self.out_of_descriptors;
        self.accept_paused = [false; 2];
        self.out_of_descriptors = false;
        for slot in self.listener_slots.clone() {
            self.accept(slot);
        }
        if was_paused && !self.accept_paused.iter().any(|&p| p) && !self.out_of_descriptors {
            info!(worker = self.id, "accepting connections again");
        }
    }

    fn fire_timers(&mut self) {
        while let Some((at, key)) = self.io.timers.pop_due(self.io.now) {
            match key.kind {
                TimerKind::ResumeAccept => self.resume_accept(),
                TimerKind::Slot => match self.io.slab.get_mut(key.index) {
                    Some(Slot::Client(client)) if client.serial == key.serial => {
                        client.timer_fired(at);
                        self.drive_client(key.index);
                    }
                    Some(Slot::Pooled(conn)) if conn.serial == key.serial => {
                        if conn.idle_expired(self.io.now) {
                            let addr = conn.addr;
                            self.pool.remove(key.index, addr);
                            if let Slot::Pooled(mut conn) = self.io.slab.remove(key.index) {
                                let _ = self.io.registry.deregister(conn.stream.tcp_mut());
                            }
                        } else {
                            conn.rearm(&mut self.io.timers, key.index);
                        }
                    }
                    Some(Slot::Subrequest(conn)) if conn.serial == key.serial => {
                        let deliveries = self.identity.on_connection_timer(&mut self.io, &mut self.buffers, key.index);
                        self.deliver(deliveries);
                    }
                    _ => {}
                },
            }
        }
    }

    /// Lets the owners of shared upstream connections write what this iteration queued on
    /// them: every request that joined a connection goes out in the same write.
    fn flush_upstreams(&mut self) {
        self.pool.open.clear();
        while !self.pool.unflushed.is_empty() {
            let unflushed = std::mem::take(&mut self.pool.unflushed);
            for (slot, serial) in unflushed {
                let owner = match self.io.slab.get(slot) {
                    Some(Slot::Upstream { client }) => *client,
                    _ => continue,
                };
                let released = match self.io.slab.get_mut(owner) {
                    Some(Slot::Client(client)) => client.release_upstream_write(serial),
                    _ => false,
                };
                if released {
                    self.drive_client(owner);
                }
            }
            // Requests started by these runs may not join anything opened before.
            self.pool.open.clear();
        }
    }

    fn flush_subrequests(&mut self) {
        let expired = self.identity.expire(&mut self.io, &mut self.buffers);
        self.deliver(expired);
        let deliveries = self.identity.flush(&mut self.io, &mut self.buffers);
        self.deliver(deliveries);
    }

    /// Hands subrequest results to the clients waiting for them.
    fn deliver(&mut self, deliveries: Vec<crate::identity::Delivery>) {
        for delivery in deliveries {
            match self.io.slab.get_mut(delivery.client) {
                Some(Slot::Client(client)) if client.serial == delivery.serial => {
                    client.on_subresult(delivery.result);
                    self.drive_client(delivery.client);
                }
                _ => {}
            }
        }
    }

    fn start_drain(&mut self) {
        info!(worker = self.id, "draining: no new connections; open connections finish their current request");
        for slot in self.listener_slots.clone() {
            if let Some(Slot::Listener(mut listener)) = self.io.slab.try_remove(slot) {
                let _ = self.io.registry.deregister(&mut listener.socket);
            }
        }
        let slots: Vec<usize> = self.io.slab.iter().filter(|(_, slot)| matches!(slot, Slot::Client(_))).map(|(key, _)| key).collect();
        for slot in slots {
            if let Some(Slot::Client(client)) = self.io.slab.get_mut(slot) {
                client.begin_drain();
            }
            self.drive_client(slot);
        }
    }
}

fn is_fd_exhaustion(error: &io::Error) -> bool {
    matches!(error.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE) | Some(libc::ENOBUFS) | Some(libc::ENOMEM))
}
