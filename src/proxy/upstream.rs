//! Connections to upstream services and the per-worker keep-alive pool.
//!
//! A connection goes back to the pool only after a complete exchange: the whole request
//! body was sent and the whole response was read, with no byte left over in either
//! direction. Anything else closes it, so a pooled connection never carries bytes of one
//! request into another.
//!
//! A service with `pipeline_depth` above 1 lets bodiless GET and OPTIONS requests that
//! become ready in the same loop iteration share one connection. The first request opens
//! the connection (or takes it from the pool). The others append their heads to its write
//! buffer and wait in its `waiters` queue, and the worker writes the lot with one call at the
//! end of the iteration. The exchange that owns the connection reads its own response and
//! then hands the connection, with whatever bytes of the next response it already holds,
//! to the first waiter. When the connection fails or cannot be handed on, every waiter is
//! woken, finds its connection gone and sends its request again on another one.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use mio::net::TcpStream;
use mio::{Interest, Token};
use tracing::debug;

use super::socket::Stream;
use crate::reactor::buffers::BufferPool;
use crate::reactor::timer::Timers;
use crate::reactor::worker::{Io, Slot};

pub struct UpstreamConn {
    pub serial: u64,
    pub slot: usize,
    pub stream: Stream,
    pub addr: SocketAddr,
    pub connected: bool,
    pub rbuf: BytesMut,
    pub wbuf: BytesMut,
    /// Requests completed on this connection.
    pub requests: u32,
    pub idle_since: Instant,
    pub idle_timeout: Duration,
    pub timer_queued: Option<Instant>,
    /// Exchanges whose requests follow the owner's on this connection, in order.
    pub waiters: VecDeque<Waiting>,
    /// The write buffer is sent by the worker at the end of this loop iteration, so that
    /// requests joining in the same iteration go out in one write.
    pub flush_pending: bool,
}

/// A client whose request waits for its turn on a shared upstream connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Waiting {
    pub client: usize,
    pub serial: u64,
}

impl UpstreamConn {
    /// Starts a non-blocking connect and registers the socket as owned by `client`.
    pub fn connect(io: &mut Io, addr: SocketAddr, client: usize) -> io::Result<Box<UpstreamConn>> {
        let mut tcp = TcpStream::connect(addr)?;
        let _ = tcp.set_nodelay(true);
        let serial = io.serial();
        let entry = io.slab.vacant_entry();
        let slot = entry.key();
        io.registry.register(&mut tcp, Token(slot), Interest::READABLE | Interest::WRITABLE)?;
        entry.insert(Slot::Upstream { client });
        Ok(Box::new(UpstreamConn {
            serial,
            slot,
            stream: Stream::plain(tcp),
            addr,
            connected: false,
            rbuf: BytesMut::new(),
            wbuf: BytesMut::new(),
            requests: 0,
            idle_since: io.now,
            idle_timeout: Duration::from_secs(60),
            timer_queued: None,
            waiters: VecDeque::new(),
            flush_pending: false,
        }))
    }

    /// Finishes a pending connect once the socket reports writable. Ok(false): still
    /// connecting.
    pub fn check_connected(&mut self) -> io::Result<bool> {
        if self.connected {
            return Ok(true);
        }
        if !self.stream.writable {
            return Ok(false);
        }
        if let Some(error) = self.stream.tcp().take_error()? {
            return Err(error);
        }
        match self.stream.tcp().peer_addr() {
            Ok(_) => {
                self.connected = true;
                Ok(true)
            }
            Err(error) if error.kind() == io::ErrorKind::NotConnected => Ok(false),
            Err(error) => Err(error),
        }
    }

    pub fn idle_expired(&self, now: Instant) -> bool {
        now.duration_since(self.idle_since) >= self.idle_timeout
    }

    pub fn rearm(&mut self, timers: &mut Timers, slot: usize) {
        self.timer_queued = timers.arm_slot(slot, self.serial, self.idle_since + self.idle_timeout, None);
    }

    /// Deregisters the socket, frees the slot and returns the buffers. Waiting exchanges are
    /// woken to find that their connection is gone.
    pub fn close(mut self: Box<Self>, io: &mut Io, buffers: &mut BufferPool) {
        io.wake.extend(self.waiters.drain(..));
        let _ = io.registry.deregister(self.stream.tcp_mut());
        if io.slab.contains(self.slot) {
            io.slab.remove(self.slot);
        }
        self.rbuf.clear();
        self.wbuf.clear();
        buffers.give(&mut self.rbuf);
        buffers.give(&mut self.wbuf);
    }
}

/// Idle connections per upstream address, most recently used last, and the shared
/// connections of this loop iteration.
#[derive(Default)]
pub struct UpstreamPool {
    idle: HashMap<SocketAddr, Vec<usize>>,
    /// Connections that requests may still join in this iteration: address, slot, serial.
    pub open: Vec<(SocketAddr, usize, u64)>,
    /// Connections whose write waits for the end of this iteration: slot, serial.
    pub unflushed: Vec<(usize, u64)>,
}

impl UpstreamPool {
    /// Takes an idle connection to `addr` for `client`, if one is pooled.
    pub fn checkout(&mut self, io: &mut Io, addr: SocketAddr, client: usize) -> Option<Box<UpstreamConn>> {
        let slots = self.idle.get_mut(&addr)?;
        while let Some(slot) = slots.pop() {
            let Some(entry) = io.slab.get_mut(slot) else { continue };
            if !matches!(entry, Slot::Pooled(_)) {
                continue;
            }
            if let Slot::Pooled(conn) = std::mem::replace(entry, Slot::Upstream { client }) {
                return Some(conn);
            }
        }
        None
    }

    /// Pools `conn` if there is room, else closes it.
    pub fn checkin(&mut self, io: &mut Io, buffers: &mut BufferPool, mut conn: Box<UpstreamConn>, max_idle: usize, idle_timeout: Duration) {
        let slots = self.idle.entry(conn.addr).or_default();
        if slots.len() >= max_idle || !conn.rbuf.is_empty() || !conn.wbuf.is_empty() || !conn.waiters.is_empty() {
            debug!(upstream = %conn.addr, "upstream connection closed instead of pooled");
            conn.close(io, buffers);
            return;
        }
        buffers.give(&mut conn.rbuf);
        buffers.give(&mut conn.wbuf);
        conn.idle_since = io.now;
        conn.idle_timeout = idle_timeout;
        conn.stream.readable = false;
        let slot = conn.slot;
        // At most one queued entry per connection, however many requests it serves: arming
        // without the queued instant pushed an entry per request, which piled up for the
        // whole idle timeout.
        conn.timer_queued = io.arm_slot(slot, conn.serial, io.now + idle_timeout, conn.timer_queued);
        slots.push(slot);
        if let Some(entry) = io.slab.get_mut(slot) {
            *entry = Slot::Pooled(conn);
        }
    }

    pub fn remove(&mut self, slot: usize, addr: SocketAddr) {
        if let Some(slots) = self.idle.get_mut(&addr) {
            slots.retain(|&s| s != slot);
        }
    }
}
