//! `portcullis-stub`: fast stand-ins for an upstream service and for Ory Kratos
//! `/sessions/whoami`, for trying the gateway out and for putting the same backends behind
//! every proxy in a load benchmark.
//!
//! Each `--threads` worker runs its own `mio` event loop with its own `SO_REUSEPORT`
//! listener per address. Once every address is bound, the process prints one line,
//! `listening on ADDR [ADDR…]`, to stdout; logs go to stderr, filtered by `RUST_LOG`.

mod connection;
mod framing;
mod kratos;
mod response;
mod upstream;
mod whoami;
mod worker;

#[cfg(test)]
mod whoami_tests;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{mpsc, Arc};
use std::time::{Duration, SystemTime};

use clap::{Args, Parser, Subcommand};
use mio::net::TcpListener;

use crate::kratos::{KratosResponder, Lifetime, SessionSpec};
use crate::response::Responder;
use crate::upstream::UpstreamResponder;
use crate::worker::{bind_listener, Worker};

/// Maximum number of `--listen` addresses.
const MAX_LISTEN_ADDRESSES: usize = 64;

#[derive(Debug, Parser)]
#[command(
    name = "portcullis-stub",
    version,
    about = "Fast stand-ins for an upstream service and for Ory Kratos /sessions/whoami"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Respond to every request with 200 and {"service","method","path","user"} as JSON, where
    /// user is the X-User request header or null.
    Upstream(UpstreamArgs),
    /// Serve Ory Kratos /sessions/whoami: 200 with the session for a known token, 403 for
    /// the token `aal2`, 401 otherwise.
    Kratos(KratosArgs),
}

#[derive(Debug, Args)]
struct UpstreamArgs {
    /// Address to listen on; repeat for more. Port 0 picks a free port.
    #[arg(long = "listen", value_name = "ADDR", default_value = "127.0.0.1:8090")]
    listen: Vec<SocketAddr>,

    /// Service name reported in the "service" field.
    #[arg(long, default_value = "hello")]
    name: String,

    #[command(flatten)]
    runtime: RuntimeArgs,
}

#[derive(Debug, Args)]
struct KratosArgs {
    /// Address to listen on; repeat for more. Port 0 picks a free port.
    #[arg(long = "listen", value_name = "ADDR", default_value = "127.0.0.1:4433")]
    listen: Vec<SocketAddr>,

    /// A session as TOKEN=IDENTITY_ID or TOKEN=IDENTITY_ID,EMAIL; repeat for more.
    /// Without it, the one session is valid=9d1e6a52-4b0c-4f87-8e3a-2b7c5d9f0a14
    /// (ada.lovelace@example.com). The e-mail defaults to that address too.
    #[arg(long = "session", value_name = "TOKEN=IDENTITY_ID[,EMAIL]", value_parser = parse_session)]
    sessions: Vec<SessionSpec>,

    /// Kratos public base URL used inside response bodies [default: http://<first --listen>]
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,

    /// Seconds from start-up until the sessions' expires_at.
    #[arg(long, value_name = "SECONDS", default_value_t = whoami::DEFAULT_LIFESPAN.as_secs())]
    session_lifespan: u64,

    #[command(flatten)]
    runtime: RuntimeArgs,
}

#[derive(Debug, Args)]
struct RuntimeArgs {
    /// Event-loop threads, each with its own SO_REUSEPORT listener on every address.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    threads: u16,
}

/// Reason that the stand-in could not start.
#[derive(Debug, thiserror::Error)]
enum StartError {
    #[error("failed to listen on {address}: {source}")]
    Bind {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("too many --listen addresses: {count} given, at most {MAX_LISTEN_ADDRESSES} accepted")]
    TooManyAddresses { count: usize },
    #[error("invalid --session: token `{token}` is reserved for the 403 aal2 response; choose another token")]
    ReservedToken { token: String },
    #[error("invalid --session: token `{token}` is given twice")]
    DuplicateToken { token: String },
    #[error("invalid --session-lifespan {seconds}: too far in the future; use at most 100 years")]
    LifespanTooLong { seconds: u64 },
    #[error("failed to start worker thread: {0}")]
    Spawn(std::io::Error),
    #[error("worker {worker} stopped: polling failed: {source}")]
    WorkerFailed {
        worker: usize,
        source: std::io::Error,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("portcullis-stub: {error}");
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn run(cli: Cli) -> Result<(), StartError> {
    match cli.command {
        Command::Upstream(args) => {
            let (listeners, addresses) = bind_all(&args.listen, args.runtime.threads)?;
            let responder = UpstreamResponder::new(&args.name);
            tracing::info!(name = %args.name, threads = args.runtime.threads, ?addresses, "upstream stand-in started");
            serve(listeners, &addresses, responder)
        }
        Command::Kratos(args) => {
            let sessions = kratos_sessions(args.sessions)?;
            let lifetime = lifetime(args.session_lifespan)?;
            let (listeners, addresses) = bind_all(&args.listen, args.runtime.threads)?;
            let public_url = match args.public_url {
                Some(url) => url.trim_end_matches('/').to_owned(),
                None => addresses
                    .first()
                    .map(|address| format!("http://{address}"))
                    .unwrap_or_default(),
            };
            let responder =
                KratosResponder::new(&sessions, whoami::AAL2_TOKEN, lifetime, &public_url);
            tracing::info!(
                sessions = sessions.len(),
                threads = args.runtime.threads,
                ?addresses,
                "kratos stand-in started"
            );
            serve(listeners, &addresses, responder)
        }
    }
}

/// Applies the default session and rejects reserved or repeated tokens.
fn kratos_sessions(mut sessions: Vec<SessionSpec>) -> Result<Vec<SessionSpec>, StartError> {
    if sessions.is_empty() {
        sessions.push(SessionSpec {
            token: whoami::DEFAULT_TOKEN.to_owned(),
            identity_id: whoami::DEFAULT_IDENTITY_ID.to_owned(),
            email: whoami::DEFAULT_EMAIL.to_owned(),
        });
    }
    for (index, session) in sessions.iter().enumerate() {
        if session.token == whoami::AAL2_TOKEN {
            return Err(StartError::ReservedToken {
                token: session.token.clone(),
            });
        }
        if sessions
            .iter()
            .take(index)
            .any(|earlier| earlier.token == session.token)
        {
            return Err(StartError::DuplicateToken {
                token: session.token.clone(),
            });
        }
    }
    Ok(sessions)
}

fn lifetime(lifespan_seconds: u64) -> Result<Lifetime, StartError> {
    const MAX_LIFESPAN_SECONDS: u64 = 100 * 365 * 24 * 60 * 60;
    if lifespan_seconds > MAX_LIFESPAN_SECONDS {
        return Err(StartError::LifespanTooLong {
            seconds: lifespan_seconds,
        });
    }
    let issued_at = SystemTime::now();
    // NOTE: the bodies are rendered once, so a stand-in that runs longer than the lifespan
    // serves sessions whose expires_at lies in the past.
    Ok(Lifetime {
        issued_at,
        expires_at: issued_at + Duration::from_secs(lifespan_seconds),
    })
}

/// Parses `TOKEN=IDENTITY_ID[,EMAIL]`.
fn parse_session(value: &str) -> Result<SessionSpec, String> {
    let (token, rest) = value
        .split_once('=')
        .ok_or_else(|| format!("invalid session `{value}`: expected TOKEN=IDENTITY_ID[,EMAIL]"))?;
    let (identity_id, email) = match rest.split_once(',') {
        Some((identity_id, email)) => (identity_id, email),
        None => (rest, whoami::DEFAULT_EMAIL),
    };
    let header_safe =
        |text: &str| !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_graphic());
    if !header_safe(token) || token.contains([';', ',', '"']) {
        return Err(format!(
            "invalid session token `{token}`: use visible ASCII without `;`, `,` or `\"`"
        ));
    }
    if !header_safe(identity_id) {
        return Err(format!(
            "invalid identity id `{identity_id}`: use visible ASCII, for example a UUID"
        ));
    }
    if email.is_empty() {
        return Err(format!(
            "invalid session `{value}`: the e-mail after `,` is empty"
        ));
    }
    Ok(SessionSpec {
        token: token.to_owned(),
        identity_id: identity_id.to_owned(),
        email: email.to_owned(),
    })
}

/// Binds every address once per worker. Port 0 is resolved by the first bind, and the other
/// workers bind the port it got. Returns the listeners of each worker and the bound addresses.
fn bind_all(
    addresses: &[SocketAddr],
    threads: u16,
) -> Result<(Vec<Vec<TcpListener>>, Vec<SocketAddr>), StartError> {
    if addresses.len() > MAX_LISTEN_ADDRESSES {
        return Err(StartError::TooManyAddresses {
            count: addresses.len(),
        });
    }
    let bind = |address: SocketAddr| {
        bind_listener(address).map_err(|source| StartError::Bind { address, source })
    };

    let mut first_worker = Vec::with_capacity(addresses.len());
    let mut bound = Vec::with_capacity(addresses.len());
    for &address in addresses {
        let listener = bind(address)?;
        let local = listener
            .local_addr()
            .map_err(|source| StartError::Bind { address, source })?;
        first_worker.push(listener);
        bound.push(local);
    }

    let mut per_worker = vec![first_worker];
    for _ in 1..threads {
        let listeners = bound
            .iter()
            .map(|&address| bind(address))
            .collect::<Result<Vec<_>, _>>()?;
        per_worker.push(listeners);
    }
    Ok((per_worker, bound))
}

/// Starts one worker thread per listener set, announces the addresses, and returns when a
/// worker stops, which only happens on a polling error.
fn serve<R: Responder>(
    listeners: Vec<Vec<TcpListener>>,
    addresses: &[SocketAddr],
    responder: R,
) -> Result<(), StartError> {
    let responder = Arc::new(responder);
    let (exit_sender, exit_receiver) = mpsc::channel();
    for (index, worker_listeners) in listeners.into_iter().enumerate() {
        let worker =
            Worker::new(worker_listeners, Arc::clone(&responder)).map_err(StartError::Spawn)?;
        let exit_sender = exit_sender.clone();
        std::thread::Builder::new()
            .name(format!("stub-worker-{index}"))
            .spawn(move || {
                let error = worker.run();
                let _ = exit_sender.send((index, error));
            })
            .map_err(StartError::Spawn)?;
    }
    drop(exit_sender);

    let joined: Vec<String> = addresses.iter().map(ToString::to_string).collect();
    println!("listening on {}", joined.join(" "));

    match exit_receiver.recv() {
        Ok((worker, source)) => Err(StartError::WorkerFailed { worker, source }),
        Err(mpsc::RecvError) => Ok(()),
    }
}
