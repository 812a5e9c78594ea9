//! The `portcullis-stub` binary as a child process, on ports chosen by the system: it is
//! started with `--listen 127.0.0.1:0`, and the bound addresses are read from its
//! `listening on …` line.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use super::process::{ChildProcess, TempDir};

/// Time allowed for the stub to print its addresses.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A running `portcullis-stub`; killed on drop.
pub struct Stub {
    process: ChildProcess,
    addresses: Vec<SocketAddr>,
}

impl Stub {
    /// Starts `portcullis-stub upstream --name <name>` on one free port.
    pub fn upstream(name: &str) -> Stub {
        Stub::start(&["upstream", "--name", name, "--listen", "127.0.0.1:0"])
    }

    /// Starts `portcullis-stub kratos` with its default session on one free port.
    pub fn kratos() -> Stub {
        Stub::start(&["kratos", "--listen", "127.0.0.1:0"])
    }

    /// Starts `portcullis-stub` with `args` and waits for its `listening on` line.
    ///
    /// # Panics
    /// When the stub exits or prints no addresses within 10 seconds; the message contains its
    /// stderr.
    pub fn start(args: &[&str]) -> Stub {
        let program = Path::new(env!("CARGO_BIN_EXE_portcullis-stub"));
        let directory = TempDir::new("portcullis-stub");
        let mut process = ChildProcess::spawn(program, args, &[("NO_COLOR", "1")], directory);
        let line = process
            .wait_for_stdout_line("listening on ", START_TIMEOUT)
            .unwrap_or_else(|error| panic!("portcullis-stub {args:?} failed to start: {error}"));
        let addresses = line
            .split_whitespace()
            .map(|address| {
                address.parse().unwrap_or_else(|error| {
                    panic!("portcullis-stub printed address {address:?}: {error}")
                })
            })
            .collect();
        Stub { process, addresses }
    }

    /// Returns the first bound address.
    pub fn addr(&self) -> SocketAddr {
        *self
            .addresses
            .first()
            .expect("portcullis-stub printed at least one address")
    }

    /// Returns every bound address, in `--listen` order.
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addresses
    }

    /// Returns `http://<first address>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// Returns the process id.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Returns everything the stub logged to stderr so far.
    pub fn stderr(&self) -> String {
        self.process.stderr()
    }
}
