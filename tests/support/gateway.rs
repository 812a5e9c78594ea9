//! The real `portcullis` binary under test: written configuration, started with
//! `RUST_LOG=debug`, awaited until its proxy listeners accept TCP, and killed on drop.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use super::kratos::Kratos;
use super::process::{ChildProcess, StartError, TempDir};
use super::upstream::Upstream;

/// Time allowed for the gateway to listen on every proxy address.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A running gateway.
pub struct Gateway {
    process: ChildProcess,
    listen: Vec<SocketAddr>,
    config_path: PathBuf,
}

impl Gateway {
    /// Starts the gateway with `config_toml` and waits until every `[proxy] listen` address
    /// accepts TCP.
    ///
    /// # Panics
    /// When the configuration has no readable `[proxy] listen`, or the gateway exits or does
    /// not listen within [`START_TIMEOUT`]; the message contains its stderr.
    pub fn start(config_toml: &str) -> Gateway {
        Gateway::try_start(config_toml)
            .unwrap_or_else(|error| panic!("portcullis failed to start: {error}"))
    }

    /// Starts the gateway as [`Gateway::start`] does and returns why it failed instead of
    /// panicking, for tests of invalid configuration.
    ///
    /// # Panics
    /// When the configuration has no readable `[proxy] listen`.
    pub fn try_start(config_toml: &str) -> Result<Gateway, StartError> {
        let listen = listen_addresses(config_toml).unwrap_or_else(|error| panic!("{error}"));
        Gateway::try_start_with_addresses(config_toml, &listen)
    }

    /// Starts the gateway and waits for `addresses` rather than the ones in the configuration,
    /// for example to include an admin or TLS listener.
    pub fn try_start_with_addresses(
        config_toml: &str,
        addresses: &[SocketAddr],
    ) -> Result<Gateway, StartError> {
        let directory = TempDir::new("portcullis-test");
        let config_path = directory.path().join("gateway.toml");
        std::fs::write(&config_path, config_toml)
            .unwrap_or_else(|error| panic!("write {}: {error}", config_path.display()));

        let program = Path::new(env!("CARGO_BIN_EXE_portcullis"));
        let args = [Path::new("--config").as_os_str(), config_path.as_os_str()];
        let env = [
            ("RUST_LOG", "debug"),
            ("NO_COLOR", "1"),
            ("RUST_BACKTRACE", "1"),
        ];
        let mut process = ChildProcess::spawn(program, args, &env, directory);
        process.wait_until_listening(addresses, START_TIMEOUT)?;
        Ok(Gateway {
            process,
            listen: addresses.to_vec(),
            config_path,
        })
    }

    /// Returns the first proxy address.
    pub fn addr(&self) -> SocketAddr {
        *self
            .listen
            .first()
            .expect("a started gateway has a listen address")
    }

    /// Returns every address waited for at start.
    pub fn listen_addrs(&self) -> &[SocketAddr] {
        &self.listen
    }

    /// Returns `http://<first proxy address><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr())
    }

    /// Returns the process id.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Returns whether the gateway process has not exited.
    pub fn is_running(&mut self) -> bool {
        self.process.try_wait().is_none()
    }

    /// Returns everything the gateway logged to stderr so far.
    pub fn stderr(&self) -> String {
        self.process.stderr()
    }

    /// Waits up to `timeout` until stderr contains `needle`; returns whether it did.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.stderr().contains(needle) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Returns the path of the configuration file.
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// Replaces the configuration file in one rename, so that a reload never reads half a file.
    pub fn rewrite_config(&self, config_toml: &str) {
        let staging = self.config_path.with_extension("toml.new");
        std::fs::write(&staging, config_toml)
            .unwrap_or_else(|error| panic!("write {}: {error}", staging.display()));
        std::fs::rename(&staging, &self.config_path)
            .unwrap_or_else(|error| panic!("rename to {}: {error}", self.config_path.display()));
    }

    /// Sends `signal` (for example `libc::SIGHUP` or `libc::SIGTERM`) to the gateway.
    pub fn signal(&self, signal: i32) {
        self.process.signal(signal);
    }

    /// Waits up to `timeout` for the gateway to exit and returns its status.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        self.process.wait_exit(timeout)
    }
}

/// Reads `[proxy] listen` (an array of addresses or one address) from a configuration.
pub fn listen_addresses(config_toml: &str) -> Result<Vec<SocketAddr>, String> {
    let config: toml::Table = config_toml
        .parse()
        .map_err(|error| format!("test configuration is not valid TOML: {error}"))?;
    let listen = config
        .get("proxy")
        .and_then(|proxy| proxy.get("listen"))
        .ok_or("test configuration has no [proxy] listen; pass the addresses explicitly")?;
    let values: Vec<&toml::Value> = match listen {
        toml::Value::Array(values) => values.iter().collect(),
        single => vec![single],
    };
    values
        .into_iter()
        .map(|value| {
            value
                .as_str()
                .and_then(|text| text.parse().ok())
                .ok_or_else(|| format!("[proxy] listen entry {value} is not an IP:port address"))
        })
        .collect()
}

/// Returns the tutorial configuration (two services behind a Kratos session check, as in
/// `config/gateway.toml`) pointed at test stand-ins, with the proxy on `proxy`.
pub fn tutorial_config(
    proxy: SocketAddr,
    kratos: &Kratos,
    hello: &Upstream,
    world: &Upstream,
) -> String {
    format!(
        r#"
[proxy]
listen = ["{proxy}"]

[access_rules]
matching_strategy = "glob"

[authenticators.cookie_session]
check_session_url = "{whoami}"
preserve_path = true
only = ["ory_kratos_session"]
subject_from = "identity.id"
extra_from = "@this"

[errors]
fallback = ["json"]

[errors.handlers.json]
verbose = true

[errors.handlers.redirect]
to = "http://127.0.0.1:4455/login"
when = [
  {{ error = ["unauthorized", "forbidden"], request = {{ header = {{ accept = ["text/html"] }} }} }},
]

[[services]]
name = "hello"
url = "{hello_url}"

[[services]]
name = "world"
url = "{world_url}"

[[routes]]
name = "hello"
service = "hello"
paths = ["/hello"]
strip_path = false

[[routes]]
name = "world"
service = "world"
paths = ["/world"]
strip_path = false

[[rules]]
id = "hello:protected"
match = {{ url = "http://{proxy}/hello", methods = ["GET"] }}
authenticators = [{{ handler = "cookie_session" }}]
authorizer = {{ handler = "allow" }}
mutators = [{{ handler = "header", config = {{ headers = {{ "X-User" = "{{{{ print .Subject }}}}" }} }} }}]
errors = [{{ handler = "redirect" }}]

[[rules]]
id = "world:protected"
match = {{ url = "http://{proxy}/world", methods = ["GET"] }}
authenticators = [{{ handler = "cookie_session" }}]
authorizer = {{ handler = "allow" }}
mutators = [{{ handler = "header", config = {{ headers = {{ "X-User" = "{{{{ print .Subject }}}}" }} }} }}]
errors = [{{ handler = "redirect" }}]
"#,
        whoami = kratos.whoami_url(),
        hello_url = hello.url(),
        world_url = world.url(),
    )
}
