//! A scriptable Ory Kratos `/sessions/whoami` for integration tests. It reads the
//! credential and renders bodies with the same code as `portcullis-stub kratos`, and each
//! test can switch it to a failure mode with [`Kratos::set_mode`].

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use super::server::{lock, write_response, AfterResponse, Handler, RecordedRequest, Server};
use super::whoami;

/// Response behaviour of the stand-in for whoami requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KratosMode {
    /// 200 with the session of a known token, 403 for the token `aal2`, 401 otherwise.
    Normal,
    /// 401 for every request.
    Unauthorized,
    /// 403 `session_aal2_required` for every request.
    Aal2Required,
    /// Waits this long, then responds as in [`KratosMode::Normal`].
    Delay(Duration),
    /// This status with this body as `application/json`.
    Status(u16, String),
    /// 200 with the headers of a valid session and the first half of its body, which is not
    /// valid JSON.
    InvalidJson,
    /// 429 with `Retry-After`.
    RateLimited {
        /// Value of `Retry-After`, in seconds.
        retry_after: u32,
    },
    /// As [`KratosMode::Normal`], with this `Set-Cookie` value on every 200.
    SetCookieOnSuccess(String),
    /// Reads and records requests but never responds.
    Hang,
}

/// A session known to the stand-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KratosSession {
    /// `identity.id`.
    pub identity_id: String,
    /// `identity.traits.email`.
    pub email: String,
    /// `issued_at` and `authenticated_at`.
    pub issued_at: SystemTime,
    /// `expires_at`.
    pub expires_at: SystemTime,
}

impl KratosSession {
    /// Returns a session for `identity_id`, issued now, expiring in 24 hours, with the default
    /// e-mail address.
    pub fn new(identity_id: &str) -> KratosSession {
        let issued_at = SystemTime::now();
        KratosSession {
            identity_id: identity_id.to_owned(),
            email: whoami::DEFAULT_EMAIL.to_owned(),
            issued_at,
            expires_at: issued_at + whoami::DEFAULT_LIFESPAN,
        }
    }
}

struct KratosState {
    mode: Mutex<KratosMode>,
    sessions: Mutex<HashMap<String, KratosSession>>,
    public_url: Mutex<String>,
}

struct KratosHandler {
    state: Arc<KratosState>,
}

impl Handler for KratosHandler {
    fn handle(
        &self,
        request: &RecordedRequest,
        stream: &mut TcpStream,
    ) -> io::Result<AfterResponse> {
        let mode = lock(&self.state.mode).clone();
        let close = request.wants_close();
        let json = || ("Content-Type".to_owned(), "application/json".to_owned());
        let no_store = || ("Cache-Control".to_owned(), whoami::CACHE_CONTROL.to_owned());
        let public_url = lock(&self.state.public_url).clone();

        match mode {
            KratosMode::Normal => self.respond_normally(request, stream, None),
            KratosMode::SetCookieOnSuccess(cookie) => {
                self.respond_normally(request, stream, Some(&cookie))
            }
            KratosMode::Delay(delay) => {
                std::thread::sleep(delay);
                self.respond_normally(request, stream, None)
            }
            KratosMode::Unauthorized => {
                let headers = [json(), no_store()];
                write_response(
                    stream,
                    request,
                    401,
                    &headers,
                    whoami::UNAUTHORIZED_BODY.as_bytes(),
                    close,
                )?;
                Ok(AfterResponse::KeepAlive)
            }
            KratosMode::Aal2Required => {
                let headers = [json(), no_store()];
                let body = whoami::aal2_required_body(&public_url);
                write_response(stream, request, 403, &headers, body.as_bytes(), close)?;
                Ok(AfterResponse::KeepAlive)
            }
            KratosMode::Status(status, body) => {
                write_response(stream, request, status, &[json()], body.as_bytes(), close)?;
                Ok(AfterResponse::KeepAlive)
            }
            KratosMode::InvalidJson => {
                let session = KratosSession::new(whoami::DEFAULT_IDENTITY_ID);
                let body = render_session(whoami::DEFAULT_TOKEN, &session, &public_url);
                let truncated = body.as_bytes().get(..body.len() / 2).unwrap_or_default();
                let headers = [
                    json(),
                    no_store(),
                    (
                        whoami::IDENTITY_ID_HEADER.to_owned(),
                        session.identity_id.clone(),
                    ),
                ];
                write_response(stream, request, 200, &headers, truncated, close)?;
                Ok(AfterResponse::KeepAlive)
            }
            KratosMode::RateLimited { retry_after } => {
                let headers = [json(), ("Retry-After".to_owned(), retry_after.to_string())];
                write_response(
                    stream,
                    request,
                    429,
                    &headers,
                    RATE_LIMITED_BODY.as_bytes(),
                    close,
                )?;
                Ok(AfterResponse::KeepAlive)
            }
            KratosMode::Hang => {
                stream.flush()?;
                Ok(AfterResponse::KeepAlive)
            }
        }
    }
}

/// Body of a 429 response.
const RATE_LIMITED_BODY: &str = r#"{"error":{"code":429,"status":"Too Many Requests","message":"The request was rate limited"}}"#;

impl KratosHandler {
    /// Routes the request as Kratos does and serves whoami from the session table.
    fn respond_normally(
        &self,
        request: &RecordedRequest,
        stream: &mut TcpStream,
        set_cookie: Option<&str>,
    ) -> io::Result<AfterResponse> {
        let close = request.wants_close();
        let json = ("Content-Type".to_owned(), "application/json".to_owned());
        let no_store = ("Cache-Control".to_owned(), whoami::CACHE_CONTROL.to_owned());
        let path = request.target.split('?').next().unwrap_or_default();
        let public_url = lock(&self.state.public_url).clone();

        if path == "/health/alive" || path == "/health/ready" {
            write_response(
                stream,
                request,
                200,
                &[json],
                whoami::HEALTH_BODY.as_bytes(),
                close,
            )?;
            return Ok(AfterResponse::KeepAlive);
        }
        if path != whoami::WHOAMI_PATH {
            write_response(
                stream,
                request,
                404,
                &[json],
                whoami::NOT_FOUND_BODY.as_bytes(),
                close,
            )?;
            return Ok(AfterResponse::KeepAlive);
        }

        let headers = request
            .headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_bytes()));
        let token = whoami::session_credential(headers)
            .map(|token| String::from_utf8_lossy(token).into_owned());
        let session = token
            .as_ref()
            .and_then(|token| lock(&self.state.sessions).get(token).cloned());

        match (token, session) {
            (Some(token), Some(session)) => {
                let body = render_session(&token, &session, &public_url);
                let mut headers = vec![
                    json,
                    no_store,
                    (
                        whoami::IDENTITY_ID_HEADER.to_owned(),
                        session.identity_id.clone(),
                    ),
                ];
                if let Some(cookie) = set_cookie {
                    headers.push(("Set-Cookie".to_owned(), cookie.to_owned()));
                }
                write_response(stream, request, 200, &headers, body.as_bytes(), close)?;
            }
            (Some(token), None) if token == whoami::AAL2_TOKEN => {
                let body = whoami::aal2_required_body(&public_url);
                write_response(
                    stream,
                    request,
                    403,
                    &[json, no_store],
                    body.as_bytes(),
                    close,
                )?;
            }
            _ => {
                let body = whoami::UNAUTHORIZED_BODY.as_bytes();
                write_response(stream, request, 401, &[json, no_store], body, close)?;
            }
        }
        Ok(AfterResponse::KeepAlive)
    }
}

fn render_session(token: &str, session: &KratosSession, public_url: &str) -> String {
    whoami::session_body(&whoami::SessionFields {
        token,
        identity_id: &session.identity_id,
        email: &session.email,
        issued_at: session.issued_at,
        expires_at: session.expires_at,
        public_url,
    })
}

/// A running Kratos stand-in on `127.0.0.1:<free port>`; stops on drop.
pub struct Kratos {
    state: Arc<KratosState>,
    server: Server,
}

impl Kratos {
    /// Starts the stand-in in [`KratosMode::Normal`] with one session: token `valid` for
    /// identity `9d1e6a52-4b0c-4f87-8e3a-2b7c5d9f0a14`.
    pub fn start() -> Kratos {
        let mut sessions = HashMap::new();
        sessions.insert(
            whoami::DEFAULT_TOKEN.to_owned(),
            KratosSession::new(whoami::DEFAULT_IDENTITY_ID),
        );
        let state = Arc::new(KratosState {
            mode: Mutex::new(KratosMode::Normal),
            sessions: Mutex::new(sessions),
            public_url: Mutex::new(String::new()),
        });
        let handler = Arc::new(KratosHandler {
            state: Arc::clone(&state),
        });
        let server = Server::start("kratos", handler);
        *lock(&state.public_url) = format!("http://{}", server.addr());
        Kratos { state, server }
    }

    /// Sets the response behaviour for later requests.
    pub fn set_mode(&self, mode: KratosMode) {
        *lock(&self.state.mode) = mode;
    }

    /// Adds or replaces the session for `token`, valid for 24 hours from now.
    pub fn add_session(&self, token: &str, identity_id: &str) {
        self.insert_session(token, KratosSession::new(identity_id));
    }

    /// Adds or replaces the session for `token`.
    pub fn insert_session(&self, token: &str, session: KratosSession) {
        lock(&self.state.sessions).insert(token.to_owned(), session);
    }

    /// Removes the session for `token`, as a logout does; later checks get 401.
    pub fn remove_session(&self, token: &str) {
        lock(&self.state.sessions).remove(token);
    }

    /// Returns a copy of every request received, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.server.requests()
    }

    /// Returns the number of requests received: the number of session checks.
    pub fn request_count(&self) -> usize {
        self.server.request_count()
    }

    /// Waits up to `timeout` for `count` requests; returns the number received.
    pub fn wait_for_request_count(&self, count: usize, timeout: Duration) -> usize {
        self.server.wait_for_request_count(count, timeout)
    }

    /// Returns the number of TCP connections accepted.
    pub fn connection_count(&self) -> u64 {
        self.server.connection_count()
    }

    /// Returns the listening address.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// Returns the listening port.
    pub fn port(&self) -> u16 {
        self.server.addr().port()
    }

    /// Returns `http://127.0.0.1:<port>/sessions/whoami`, for `check_session_url`.
    pub fn whoami_url(&self) -> String {
        format!("http://{}{}", self.server.addr(), whoami::WHOAMI_PATH)
    }

    /// Closes the listener, so that connections are refused, and shuts down every open
    /// connection, as a stopped Kratos process would.
    pub fn stop(&mut self) {
        self.server.stop();
    }
}
