//! Helpers for integration tests that run the real `portcullis` binary on loopback:
//! stand-ins for upstream services ([`Upstream`]) and Ory Kratos ([`Kratos`]), the gateway
//! process ([`Gateway`]), the `portcullis-stub` binary ([`Stub`]), a raw HTTP/1.1 client
//! ([`Client`]), and the real `curl`.
//!
//! Everything here uses std threads and blocking sockets on 127.0.0.1 only.

// Each test file uses a different part of these helpers.
#![allow(dead_code, unused_imports)]

pub mod client;
pub mod gateway;
pub mod kratos;
pub mod process;
pub mod request;
pub mod server;
pub mod stub;
pub mod table;
pub mod upstream;

/// Credential lookup and whoami bodies, shared with `portcullis-stub kratos` so that both
/// stand-ins respond alike.
#[path = "../../src/bin/portcullis-stub/whoami.rs"]
pub mod whoami;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub use client::{request, Client, ClientError, Response};
pub use gateway::{listen_addresses, tutorial_config, Gateway};
pub use kratos::{Kratos, KratosMode, KratosSession};
pub use process::{ChildProcess, StartError, TempDir};
pub use request::{BodyFraming, RecordedRequest};
pub use stub::Stub;
pub use upstream::{stream_byte, Reply, StreamFraming, Upstream};

/// Time after which a `curl` run is killed, in case its own `--max-time` is overridden.
const CURL_KILL_AFTER: Duration = Duration::from_secs(60);

/// Returns a TCP port that was free a moment ago on 127.0.0.1.
///
/// NOTE: another process can take the port before the caller binds it. Prefer binding port 0
/// where the server under test reports its address.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener
        .local_addr()
        .expect("read the bound address")
        .port()
}

/// Returns whether a `curl` binary runs on this machine.
pub fn curl_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        Command::new("curl")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    })
}

/// Runs `curl` with `args` and returns (exit code, stdout, stderr); -1 when it was killed.
///
/// The arguments are preceded by `-q` (no `.curlrc`), `--noproxy *`, `-sS` and
/// `--max-time 20`; later arguments override the last two.
///
/// # Panics
/// When curl cannot be started.
pub fn curl(args: &[&str]) -> (i32, String, String) {
    let directory = TempDir::new("portcullis-curl");
    let stdout_path = directory.path().join("stdout");
    let stderr_path = directory.path().join("stderr");
    let create = |path: &Path| {
        std::fs::File::create(path)
            .unwrap_or_else(|error| panic!("create {}: {error}", path.display()))
    };

    let mut child = Command::new("curl")
        .args(["-q", "--noproxy", "*", "-sS", "--max-time", "20"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(create(&stdout_path))
        .stderr(create(&stderr_path))
        .spawn()
        .unwrap_or_else(|error| panic!("start curl: {error}"));

    let deadline = Instant::now() + CURL_KILL_AFTER;
    let code = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status.code().unwrap_or(-1),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break -1;
            }
        }
    };
    let read = |path: &Path| {
        String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned()
    };
    (code, read(&stdout_path), read(&stderr_path))
}

/// Resident memory of a process in KiB, from /proc; 0 when it cannot be read.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|kib| kib.parse().ok())
        .unwrap_or(0)
}
