//! Compiled access rules (Oathkeeper's semantics): which handlers run for a request that
//! matched a rule, with their configuration already merged and validated.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::errors::{ErrorHandler, ErrorHandlers};
use super::jwks::JwksSource;
use super::json::JsonPath;
use super::jwt::{Algorithm, ClaimRules, KeySet};
use super::matcher::{MatchingStrategy, RuleMatcher};
use super::template::Template;

/// All rules plus what is needed to pick one and to answer a denial.
pub struct AccessPolicy {
    pub strategy: MatchingStrategy,
    pub matcher: RuleMatcher,
    pub rules: Vec<Rule>,
    pub errors: ErrorHandlers,
    /// `scheme://host[:port]` prefixes the gateway serves, lower-case; a redirect's
    /// `return_to` may only name one of these.
    pub own_origins: Vec<String>,
    /// `{"keys":[...]}` with the public keys of every `id_token` mutator, served at
    /// `/.well-known/jwks.json`.
    pub public_jwks: Vec<u8>,
}

pub struct Rule {
    pub id: String,
    pub authenticators: Vec<Authenticator>,
    pub authorizer: Authorizer,
    pub mutators: Vec<Mutator>,
    pub errors: Vec<ErrorHandler>,
    /// Header names (normalised by `owned_header_key`) that mutators set; client copies of
    /// them, and their `_`/`.` spellings, never reach the upstream.
    pub owned_headers: Vec<Vec<u8>>,
    /// True when a template reads regexp capture groups, so they are computed only then.
    pub uses_captures: bool,
}

pub enum Authenticator {
    Anonymous { subject: Arc<str> },
    Noop,
    Unauthorized,
    CookieSession(Arc<SessionCheck>),
    BearerToken(Arc<SessionCheck>),
    Jwt(Arc<JwtAuthenticator>),
}

impl Authenticator {
    pub fn name(&self) -> &'static str {
        match self {
            Authenticator::Anonymous { .. } => "anonymous",
            Authenticator::Noop => "noop",
            Authenticator::Unauthorized => "unauthorized",
            Authenticator::CookieSession(_) => "cookie_session",
            Authenticator::BearerToken(_) => "bearer_token",
            Authenticator::Jwt(_) => "jwt",
        }
    }
}

/// A resolved `http://host:port/path?query` that subrequests go to. The host was resolved
/// when the configuration was loaded, never on an event loop.
#[derive(Clone, Debug)]
pub struct RemoteEndpoint {
    pub addr: SocketAddr,
    /// `Host` header value: host and port as written in the URL.
    pub host_header: String,
    pub path: String,
    pub query: Option<String>,
}

/// Where `bearer_token` reads the token from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenSource {
    /// `Authorization: Bearer <token>`, else `X-Session-Token: <token>`.
    Default,
    Header(String),
    QueryParameter(String),
    Cookie(String),
}

/// `cookie_session` and `bearer_token` settings after merging rule config over global.
pub struct SessionCheck {
    pub endpoint: RemoteEndpoint,
    /// cookie_session: names that make it responsible and are the only cookies forwarded.
    pub only: Vec<String>,
    pub token_source: TokenSource,
    pub prefix: String,
    pub preserve_path: bool,
    pub preserve_query: bool,
    pub preserve_host: bool,
    /// Request headers copied to the subrequest (besides the credential).
    pub forward_http_headers: Vec<String>,
    pub additional_headers: Vec<(String, String)>,
    pub force_method: Option<String>,
    pub subject_from: JsonPath,
    pub extra_from: JsonPath,
    pub timeout: Duration,
    pub cache: Option<SessionCacheSettings>,
}

#[derive(Clone, Copy, Debug)]
pub struct SessionCacheSettings {
    pub ttl: Duration,
    pub max_entries: usize,
}

/// The `jwt` authenticator: a bearer JWT verified against key sets, then its claims checked.
pub struct JwtAuthenticator {
    pub sources: Vec<Arc<JwksSource>>,
    pub allowed_algorithms: Vec<Algorithm>,
    pub claims: ClaimRules,
    pub token_source: TokenSource,
}

pub enum Authorizer {
    Allow,
    Deny,
    RemoteJson(Arc<RemoteJson>),
}

pub struct RemoteJson {
    pub endpoint: RemoteEndpoint,
    pub payload: Template,
    pub headers: Vec<(String, Template)>,
    /// Lower-case names of authorizer response headers copied to the upstream request.
    pub forward_response_headers_to_upstream: Vec<String>,
    pub timeout: Duration,
}

pub enum Mutator {
    Noop,
    Header(Vec<HeaderTemplate>),
    Cookie(Vec<(String, Template)>),
    IdToken(Arc<IdTokenMutator>),
}

/// The `id_token` mutator: a JWT about the session, signed with the first private key of a
/// key set and sent upstream as `Authorization: Bearer <token>`.
pub struct IdTokenMutator {
    pub keys: Arc<KeySet>,
    pub issuer_url: String,
    /// Extra claims: a template that renders a JSON object.
    pub claims: Option<Template>,
    pub ttl: Duration,
    /// Issued tokens by subject and claims, reused until 10% of their lifetime is left.
    pub cache: std::sync::Mutex<std::collections::HashMap<u64, CachedToken>>,
}

#[derive(Clone, Debug)]
pub struct CachedToken {
    pub token: String,
    pub renew_after: std::time::SystemTime,
}

pub struct HeaderTemplate {
    pub name: String,
    pub template: Template,
}

/// Normalises a header name for ownership checks: lower case, with `_` and `.` read as `-`,
/// because CGI, WSGI and some proxies fold those spellings onto the same name.
pub fn owned_header_key(name: &[u8]) -> Vec<u8> {
    name.iter()
        .map(|&b| match b {
            b'_' | b'.' => b'-',
            other => other.to_ascii_lowercase(),
        })
        .collect()
}

/// True when `name` is one of `owned` (already normalised keys).
pub fn is_owned_header(owned: &[Vec<u8>], name: &[u8]) -> bool {
    owned.iter().any(|key| {
        key.len() == name.len()
            && key.iter().zip(name).all(|(&k, &n)| {
                let n = match n {
                    b'_' | b'.' => b'-',
                    other => other.to_ascii_lowercase(),
                };
                k == n
            })
    })
}
