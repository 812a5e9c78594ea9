//! Child processes for integration tests: a unique scratch directory, a child whose stdout
//! and stderr go to files in it, a bounded wait until its addresses accept TCP, and a kill on
//! drop.

use std::ffi::OsStr;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A directory under the system temporary directory, removed on drop unless the thread is
/// panicking, so that a failed test leaves its configuration and logs behind.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates a new directory named after `prefix`, the process id, a counter and the time.
    ///
    /// # Panics
    /// When no directory can be created.
    pub fn new(prefix: &str) -> TempDir {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.subsec_nanos());
        for _ in 0..100 {
            let sequence = COUNTER.fetch_add(1, Ordering::SeqCst);
            let name = format!("{prefix}-{}-{sequence}-{nanos}", std::process::id());
            let path = std::env::temp_dir().join(name);
            match std::fs::create_dir(&path) {
                Ok(()) => return TempDir { path },
                Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(error) => panic!("create a scratch directory {}: {error}", path.display()),
            }
        }
        panic!(
            "create a scratch directory: 100 names under {} were taken",
            std::env::temp_dir().display()
        );
    }

    /// Returns the directory path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "kept scratch directory of the failed test: {}",
                self.path.display()
            );
            return;
        }
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Why a child did not become ready.
#[derive(Debug)]
pub struct StartError {
    /// What went wrong.
    pub reason: String,
    /// Exit status, when the child exited.
    pub status: Option<ExitStatus>,
    /// Everything the child wrote to stderr.
    pub stderr: String,
}

impl std::fmt::Display for StartError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{}", self.reason)?;
        if let Some(status) = self.status {
            write!(formatter, " ({status})")?;
        }
        write!(formatter, "\n--- stderr ---\n{}", self.stderr)
    }
}

/// A running child process; killed and reaped on drop.
pub struct ChildProcess {
    child: Child,
    name: String,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
    // Dropped after the child is killed, because fields drop in order after `drop`.
    directory: TempDir,
}

impl ChildProcess {
    /// Starts `program` with `args` and extra `env` in `directory`, stdout and stderr going to
    /// `stdout.log` and `stderr.log` there.
    ///
    /// # Panics
    /// When the program cannot be started.
    pub fn spawn<I, S>(
        program: &Path,
        args: I,
        env: &[(&str, &str)],
        directory: TempDir,
    ) -> ChildProcess
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let stdout_path = directory.path().join("stdout.log");
        let stderr_path = directory.path().join("stderr.log");
        let create = |path: &Path| {
            std::fs::File::create(path)
                .unwrap_or_else(|error| panic!("create {}: {error}", path.display()))
        };
        let mut command = Command::new(program);
        command
            .args(args)
            .current_dir(directory.path())
            .stdin(Stdio::null())
            .stdout(create(&stdout_path))
            .stderr(create(&stderr_path));
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command
            .spawn()
            .unwrap_or_else(|error| panic!("start {}: {error}", program.display()));
        let name = program
            .file_name()
            .map_or_else(String::new, |name| name.to_string_lossy().into_owned());
        ChildProcess {
            child,
            name,
            stdout_path,
            stderr_path,
            directory,
        }
    }

    /// Returns the process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Returns the scratch directory of the child.
    pub fn directory(&self) -> &Path {
        self.directory.path()
    }

    /// Returns everything the child wrote to stdout so far.
    pub fn stdout(&self) -> String {
        std::fs::read(&self.stdout_path).map_or_else(
            |_| String::new(),
            |bytes| String::from_utf8_lossy(&bytes).into_owned(),
        )
    }

    /// Returns everything the child wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read(&self.stderr_path).map_or_else(
            |_| String::new(),
            |bytes| String::from_utf8_lossy(&bytes).into_owned(),
        )
    }

    /// Returns the exit status if the child has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Waits up to `timeout` for the child to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends `signal` (for example `libc::SIGHUP`) to the child.
    ///
    /// # Panics
    /// When the signal cannot be delivered.
    pub fn signal(&self, signal: i32) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("child pid fits in pid_t");
        // SAFETY: kill(2) takes plain integers and touches no memory of this process; the pid
        // is our own child, which is not reaped before `self` drops.
        let result = unsafe { libc::kill(pid, signal) };
        assert_eq!(
            result,
            0,
            "send signal {signal} to {} ({pid}): {}",
            self.name,
            std::io::Error::last_os_error()
        );
    }

    /// Waits up to `timeout` until every address accepts a TCP connection.
    pub fn wait_until_listening(
        &mut self,
        addresses: &[SocketAddr],
        timeout: Duration,
    ) -> Result<(), StartError> {
        let deadline = Instant::now() + timeout;
        for address in addresses {
            loop {
                if let Some(status) = self.try_wait() {
                    return Err(self.start_error(
                        format!("{} exited before listening on {address}", self.name),
                        Some(status),
                    ));
                }
                if TcpStream::connect_timeout(address, Duration::from_millis(100)).is_ok() {
                    break;
                }
                if Instant::now() >= deadline {
                    return Err(self.start_error(
                        format!(
                            "{} did not listen on {address} within {timeout:?}",
                            self.name
                        ),
                        None,
                    ));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Ok(())
    }

    /// Waits up to `timeout` for a stdout line that starts with `prefix` and returns the rest.
    pub fn wait_for_stdout_line(
        &mut self,
        prefix: &str,
        timeout: Duration,
    ) -> Result<String, StartError> {
        let deadline = Instant::now() + timeout;
        loop {
            let stdout = self.stdout();
            // Only whole lines count: the child may be in the middle of writing one.
            let line = stdout
                .split_inclusive('\n')
                .filter_map(|line| line.strip_suffix('\n'))
                .find_map(|line| line.strip_prefix(prefix));
            if let Some(rest) = line {
                return Ok(rest.trim_end().to_owned());
            }
            if let Some(status) = self.try_wait() {
                return Err(self.start_error(
                    format!("{} exited before printing {prefix:?}", self.name),
                    Some(status),
                ));
            }
            if Instant::now() >= deadline {
                return Err(self.start_error(
                    format!("{} did not print {prefix:?} within {timeout:?}", self.name),
                    None,
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn start_error(&self, reason: String, status: Option<ExitStatus>) -> StartError {
        StartError {
            reason,
            status,
            stderr: self.stderr(),
        }
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
