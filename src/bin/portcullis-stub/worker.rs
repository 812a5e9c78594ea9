//! One event-loop thread of a stand-in: its own `mio::Poll`, its own `SO_REUSEPORT`
//! listener on every address, and a slab of the connections it accepted. Workers share
//! nothing but the read-only responder.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};
use slab::Slab;
use socket2::{Domain, Protocol, Socket, Type};

use crate::connection::{Connection, Next};
use crate::response::Responder;

/// Maximum number of open connections per worker; accepting pauses above it.
///
/// NOTE: connections have no idle timeout, so a client that connects and sends nothing keeps
/// its slot until it closes.
const MAX_CONNECTIONS_PER_WORKER: usize = 10_000;

/// Open connections below which a paused worker accepts again.
const RESUME_ACCEPT_BELOW: usize = MAX_CONNECTIONS_PER_WORKER - 1000;

/// How often a worker that stopped accepting on an error (such as EMFILE) tries again.
const ACCEPT_RETRY_INTERVAL: Duration = Duration::from_millis(100);

/// Pending-connection queue length requested from `listen(2)`.
const LISTEN_BACKLOG: i32 = 1024;

/// Readiness events handled per `poll` call.
const EVENTS_PER_POLL: usize = 1024;

/// Opens a non-blocking TCP listener on `address` with `SO_REUSEADDR` and `SO_REUSEPORT`, so
/// that every worker can listen on the same address and the kernel spreads connections.
pub fn bind_listener(address: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(
        Domain::for_address(address),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    if address.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&address.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(TcpListener::from_std(socket.into()))
}

/// Whether a worker is accepting new connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Accepting {
    Open,
    /// At [`MAX_CONNECTIONS_PER_WORKER`]; resumes when connections close.
    PausedAtCapacity,
    /// `accept` failed with an error other than WouldBlock; retried on a timer.
    PausedOnError,
}

/// An event loop that serves `responder` on its listeners.
pub struct Worker<R> {
    poll: Poll,
    listeners: Vec<TcpListener>,
    connections: Slab<Connection>,
    responder: Arc<R>,
    /// Reused buffer for rendering dynamic response bodies.
    scratch: Vec<u8>,
    accepting: Accepting,
}

impl<R: Responder> Worker<R> {
    /// Creates a worker and registers its listeners.
    pub fn new(mut listeners: Vec<TcpListener>, responder: Arc<R>) -> io::Result<Self> {
        let poll = Poll::new()?;
        for (index, listener) in listeners.iter_mut().enumerate() {
            poll.registry()
                .register(listener, listener_token(index), Interest::READABLE)?;
        }
        Ok(Self {
            poll,
            listeners,
            connections: Slab::with_capacity(256),
            responder,
            scratch: Vec::with_capacity(4096),
            accepting: Accepting::Open,
        })
    }

    /// Runs the event loop. Returns only when polling itself fails, with that error.
    pub fn run(mut self) -> io::Error {
        let mut events = Events::with_capacity(EVENTS_PER_POLL);
        loop {
            let timeout =
                (self.accepting == Accepting::PausedOnError).then_some(ACCEPT_RETRY_INTERVAL);
            if let Err(error) = self.poll.poll(&mut events, timeout) {
                if error.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return error;
            }

            if self.accepting == Accepting::PausedOnError {
                self.accepting = Accepting::Open;
                self.accept_all();
            }

            for event in events.iter() {
                match token_target(event.token(), self.listeners.len()) {
                    TokenTarget::Listener(index) => {
                        if self.accepting == Accepting::Open {
                            self.accept(index);
                        }
                    }
                    TokenTarget::Connection(key) => {
                        // An error is read too, so that the read reports it.
                        let readable = event.is_readable() || event.is_error();
                        self.drive(key, readable, event.is_read_closed());
                    }
                }
            }
        }
    }

    fn drive(&mut self, key: usize, readable: bool, read_closed: bool) {
        let Some(connection) = self.connections.get_mut(key) else {
            return;
        };
        if connection.drive(
            readable,
            read_closed,
            self.responder.as_ref(),
            &mut self.scratch,
        ) == Next::Wait
        {
            return;
        }

        let mut connection = self.connections.remove(key);
        // Closing the socket also removes it from the poller, so a failure here is harmless.
        let _ = self.poll.registry().deregister(connection.stream_mut());
        drop(connection);

        if self.accepting == Accepting::PausedAtCapacity
            && self.connections.len() < RESUME_ACCEPT_BELOW
        {
            self.accepting = Accepting::Open;
            // Edge-triggered listeners do not report connections queued while paused.
            self.accept_all();
        }
    }

    fn accept_all(&mut self) {
        for index in 0..self.listeners.len() {
            if self.accepting != Accepting::Open {
                break;
            }
            self.accept(index);
        }
    }

    /// Accepts from one listener until it would block or the worker is full.
    fn accept(&mut self, index: usize) {
        loop {
            if self.connections.len() >= MAX_CONNECTIONS_PER_WORKER {
                tracing::warn!(
                    max_connections = MAX_CONNECTIONS_PER_WORKER,
                    "stub worker paused accepting at its connection limit"
                );
                self.accepting = Accepting::PausedAtCapacity;
                return;
            }
            let Some(listener) = self.listeners.get(index) else {
                return;
            };
            let stream = match listener.accept() {
                Ok((stream, _peer)) => stream,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) if is_connection_error(&error) => continue,
                Err(error) => {
                    tracing::warn!(%error, "stub worker failed to accept; retrying shortly");
                    self.accepting = Accepting::PausedOnError;
                    return;
                }
            };
            if let Err(error) = stream.set_nodelay(true) {
                tracing::debug!(%error, "stub could not set TCP_NODELAY");
            }

            let entry = self.connections.vacant_entry();
            let token = Token(entry.key());
            let mut connection = Connection::new(stream);
            match self.poll.registry().register(
                connection.stream_mut(),
                token,
                Interest::READABLE | Interest::WRITABLE,
            ) {
                Ok(()) => {
                    entry.insert(connection);
                }
                Err(error) => tracing::warn!(%error, "stub failed to register a connection"),
            }
        }
    }
}

/// Errors of one pending connection that `accept` reports; the listener itself is fine.
fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::PermissionDenied
    )
}

/// Owner of a poll token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TokenTarget {
    /// Index into the worker's listeners.
    Listener(usize),
    /// Key in the worker's connection slab.
    Connection(usize),
}

/// Listener tokens count down from `usize::MAX`; connection tokens are slab keys, which stay
/// below [`MAX_CONNECTIONS_PER_WORKER`], so the two ranges never meet.
fn listener_token(index: usize) -> Token {
    Token(usize::MAX - index)
}

fn token_target(token: Token, listener_count: usize) -> TokenTarget {
    let from_top = usize::MAX - token.0;
    if from_top < listener_count {
        TokenTarget::Listener(from_top)
    } else {
        TokenTarget::Connection(token.0)
    }
}
