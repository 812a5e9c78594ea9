//! Process lifecycle: binding listeners, starting one worker thread per configured worker,
//! reloading the configuration on SIGHUP and draining on SIGTERM or SIGINT.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::Waker;
use tracing::{error, info, warn};

use crate::config::{self, Config};
use crate::reactor::listener::bind_group;
use crate::reactor::worker::Worker;
use crate::reactor::{BoundListener, ListenerRole, Shared};

/// How long a drain may take before the process exits anyway.
const DRAIN_DEADLINE: Duration = Duration::from_secs(30);

/// A running gateway.
pub struct Server {
    shared: Arc<Shared>,
    wakers: Vec<Arc<Waker>>,
    threads: Vec<JoinHandle<()>>,
    /// Proxy listener addresses as bound (port 0 replaced by the real port).
    pub proxy_addrs: Vec<SocketAddr>,
    pub api_addrs: Vec<SocketAddr>,
}

impl Server {
    /// Binds every listener once per worker and starts the workers.
    pub fn start(config: Config) -> io::Result<Server> {
        let workers = config.workers.max(1);
        let mut per_worker: Vec<Vec<BoundListener>> = (0..workers).map(|_| Vec::new()).collect();
        let mut proxy_addrs = Vec::new();
        let mut api_addrs = Vec::new();
        let specs = config
            .listeners
            .iter()
            .map(|l| (l.addr, ListenerRole::Proxy, l.tls.clone()))
            .chain(config.api_listeners.iter().map(|&addr| (addr, ListenerRole::Api, None)));
        for (addr, role, tls) in specs {
            let (actual, sockets) =
                bind_group(addr, workers).map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
            match role {
                ListenerRole::Proxy => proxy_addrs.push(actual),
                ListenerRole::Api => api_addrs.push(actual),
            }
            for (index, socket) in sockets.into_iter().enumerate() {
                per_worker[index].push(BoundListener { socket, addr: actual, role, tls: tls.clone() });
            }
        }

        let shared = Arc::new(Shared::new(Arc::new(config), workers));
        let mut wakers = Vec::new();
        let mut threads = Vec::new();
        for (id, listeners) in per_worker.into_iter().enumerate() {
            let (poll, waker) = Worker::poll_with_waker()?;
            shared.identity.set_waker(id, Arc::clone(&waker));
            wakers.push(waker);
            let worker_shared = Arc::clone(&shared);
            let thread = std::thread::Builder::new().name(format!("portcullis-worker-{id}")).spawn(move || {
                match Worker::new(id, poll, worker_shared, listeners) {
                    Ok(worker) => worker.run(),
                    Err(error) => error!(worker = id, %error, "worker failed to start"),
                }
            })?;
            threads.push(thread);
        }
        for addr in &proxy_addrs {
            info!(%addr, workers, "proxy listening");
        }
        for addr in &api_addrs {
            info!(%addr, "decision API listening");
        }
        Ok(Server { shared, wakers, threads, proxy_addrs, api_addrs })
    }

    /// Replaces the configuration that new requests use.
    pub fn reload(&self, config: Config) {
        let current = self.shared.config.load();
        let same_listeners = current.listeners.iter().map(|l| l.addr).eq(config.listeners.iter().map(|l| l.addr))
            && current.api_listeners == config.api_listeners
            && current.workers == config.workers;
        if !same_listeners {
            warn!("listen addresses and workers only change on restart; the other settings were reloaded");
        }
        self.shared.config.store(Arc::new(config));
        self.wake_all();
    }

    /// Stops accepting and lets open connections finish their current request.
    pub fn drain(&self) {
        self.shared.draining.store(true, Ordering::Release);
        self.wake_all();
    }

    fn wake_all(&self) {
        for waker in &self.wakers {
            if let Err(error) = waker.wake() {
                error!(%error, "cannot wake a worker");
            }
        }
    }

    /// Waits for the workers to finish, at most `deadline`.
    pub fn join(self, deadline: Duration) {
        let until = Instant::now() + deadline;
        for thread in self.threads {
            while !thread.is_finished() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(20));
            }
            if thread.is_finished() {
                let _ = thread.join();
            } else {
                warn!("drain deadline passed with connections still open; exiting");
                return;
            }
        }
    }
}

/// Runs the gateway with the configuration at `path` until SIGTERM or SIGINT.
pub fn run(path: &Path) -> Result<(), String> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

    // Handlers go in before the listeners open, so that a signal sent as soon as the port
    // answers is handled instead of killing the process.
    let mut signals = signal_hook::iterator::Signals::new([SIGHUP, SIGINT, SIGTERM])
        .map_err(|e| format!("cannot install signal handlers: {e}"))?;
    let loaded = config::load(path).map_err(|errors| errors.to_string())?;
    for warning in &loaded.warnings {
        warn!("{warning}");
    }
    let server = Server::start(loaded.config).map_err(|e| e.to_string())?;
    let path: PathBuf = path.to_path_buf();
    for signal in signals.forever() {
        match signal {
            SIGHUP => match config::load(&path) {
                Ok(loaded) => {
                    for warning in &loaded.warnings {
                        warn!("{warning}");
                    }
                    server.reload(loaded.config);
                    info!(config = %path.display(), "configuration reloaded");
                }
                Err(errors) => {
                    error!(config = %path.display(), "reload failed; keeping the running configuration:\n{errors}");
                }
            },
            _ => {
                info!("shutting down: draining open connections");
                server.drain();
                break;
            }
        }
    }
    server.join(DRAIN_DEADLINE);
    info!("stopped");
    Ok(())
}
