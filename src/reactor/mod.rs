//! The event loops. Each worker thread owns a `mio::Poll`, a slab of sockets, its timers and
//! its connection pools; workers share only the configuration snapshot and a few counters.
//! `run` starts the workers and hands them their listeners.

pub mod buffers;
pub mod listener;
pub mod timer;
pub mod worker;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::config::Config;
use crate::identity::SharedIdentity;

/// State shared by all workers.
pub struct Shared {
    /// The configuration new requests start with; replaced atomically on reload.
    pub config: ArcSwap<Config>,
    /// Open proxy connections across workers, checked against `limits.max_connections`.
    pub open_connections: AtomicUsize,
    /// Open API connections across workers. They have their own limit, so that a flood of
    /// proxy clients cannot make health checks and decisions wait.
    pub api_connections: AtomicUsize,
    /// Set once on shutdown: stop accepting, finish in-flight requests, then exit.
    pub draining: AtomicBool,
    /// Subrequests in flight across workers, and the session cache.
    pub identity: Arc<SharedIdentity>,
}

impl Shared {
    pub fn new(config: Arc<Config>, workers: usize) -> Shared {
        Shared {
            config: ArcSwap::new(config),
            open_connections: AtomicUsize::new(0),
            api_connections: AtomicUsize::new(0),
            draining: AtomicBool::new(false),
            identity: Arc::new(SharedIdentity::new(workers)),
        }
    }

    /// The open-connection counter of a listener role.
    pub fn connections(&self, role: ListenerRole) -> &AtomicUsize {
        match role {
            ListenerRole::Proxy => &self.open_connections,
            ListenerRole::Api => &self.api_connections,
        }
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }
}

/// What a listener serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListenerRole {
    Proxy,
    /// The decision API and health endpoints.
    Api,
}

/// A bound listening socket handed to one worker.
pub struct BoundListener {
    pub socket: std::net::TcpListener,
    pub addr: SocketAddr,
    pub role: ListenerRole,
    pub tls: Option<Arc<rustls::ServerConfig>>,
}
