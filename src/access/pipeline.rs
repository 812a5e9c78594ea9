//! The per-request access pipeline, as a state machine without I/O: authenticators in order
//! (Oathkeeper's "not responsible, try the next one"), then the authorizer, then mutators.
//!
//! `advance` returns what the caller must do next. A `Step::Subrequest` asks the caller to
//! send the given bytes to a session or authorization endpoint and to call `advance` again
//! with the result; the event loop does that without blocking.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime};

use super::errors::{AccessError, ErrorKind};
use super::json;
use super::jwt::{self, JwtError};
use super::rules::{
    AccessPolicy, Authenticator, Authorizer, CachedToken, IdTokenMutator, JwtAuthenticator, Mutator, RemoteJson, SessionCacheSettings,
    SessionCheck, TokenSource,
};
use super::session::{session_from_response, Session, SubResult};
use super::template::TemplateContext;
use crate::http::RequestHead;

/// The request as the access rules see it. For the proxy these come from the request head;
/// for the decision API they are rebuilt from `X-Forwarded-*` headers.
pub struct AccessRequest<'a> {
    /// Source of header values (cookies, credentials, templates).
    pub head: &'a RequestHead,
    pub method: &'a [u8],
    pub scheme: &'a str,
    pub host: &'a [u8],
    pub path: &'a [u8],
    pub query: Option<&'a [u8]>,
    pub peer_ip: IpAddr,
}

/// What a subrequest is for; decides logging and caching.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    SessionCheck,
    Authorization,
}

/// A request to send to a session or authorization endpoint.
#[derive(Debug)]
pub struct Subrequest {
    pub addr: SocketAddr,
    /// The complete HTTP/1.1 request: head and body. Identical bytes may share one exchange.
    pub bytes: Vec<u8>,
    pub timeout: Duration,
    pub purpose: Purpose,
    pub cache: Option<SessionCacheSettings>,
}

/// Everything a granted request carries on to the upstream.
#[derive(Debug, Default)]
pub struct Grant {
    pub session: Session,
    /// Headers set by mutators and the authorizer, in order; they replace client copies.
    pub headers: Vec<(String, String)>,
    /// Cookies set by the cookie mutator, merged into the upstream `Cookie` header.
    pub cookies: Vec<(String, String)>,
}

pub enum Step {
    Subrequest(Subrequest),
    Granted(Grant),
    Denied(AccessError),
}

#[derive(Debug)]
enum Stage {
    Authenticate { next: usize },
    AwaitSession { authenticator: usize },
    Authorize,
    AwaitAuthorization,
    Finished,
}

/// Progress through one rule for one request.
#[derive(Debug)]
pub struct Pipeline {
    rule: usize,
    stage: Stage,
    session: Option<Session>,
    forwarded_from_authorizer: Vec<(String, String)>,
}

impl Pipeline {
    pub fn new(rule: usize) -> Pipeline {
        Pipeline { rule, stage: Stage::Authenticate { next: 0 }, session: None, forwarded_from_authorizer: Vec::new() }
    }

    pub fn rule(&self) -> usize {
        self.rule
    }

    /// The session, once an authenticator succeeded.
    pub fn session(&self) -> Option<&Session> {
        self.session.as_ref()
    }

    /// Runs the pipeline until it needs a subrequest or reaches a decision. `result` is the
    /// answer to the previous `Step::Subrequest`, and must be None otherwise.
    pub fn advance(
        &mut self,
        policy: &AccessPolicy,
        request: &AccessRequest<'_>,
        captures: &[String],
        result: Option<&SubResult>,
        now: SystemTime,
    ) -> Step {
        let Some(rule) = policy.rules.get(self.rule) else {
            return Step::Denied(AccessError::new(ErrorKind::InternalServerError, "matched rule no longer exists"));
        };
        loop {
            match std::mem::replace(&mut self.stage, Stage::Finished) {
                Stage::Authenticate { next } => {
                    let Some(authenticator) = rule.authenticators.get(next) else {
                        return Step::Denied(AccessError::new(
                            ErrorKind::Unauthorized,
                            "no authenticator was responsible for the request",
                        ));
                    };
                    match authenticate(authenticator, request) {
                        Authentication::NotResponsible => self.stage = Stage::Authenticate { next: next + 1 },
                        Authentication::Session(session) => {
                            self.session = Some(session);
                            self.stage = Stage::Authorize;
                        }
                        Authentication::Denied(error) => return Step::Denied(error),
                        Authentication::Subrequest(subrequest) => {
                            self.stage = Stage::AwaitSession { authenticator: next };
                            return Step::Subrequest(subrequest);
                        }
                    }
                }
                Stage::AwaitSession { authenticator } => {
                    let check = match rule.authenticators.get(authenticator) {
                        Some(Authenticator::CookieSession(check) | Authenticator::BearerToken(check)) => check,
                        _ => return Step::Denied(AccessError::new(ErrorKind::InternalServerError, "authenticator state lost")),
                    };
                    let Some(result) = result else {
                        return Step::Denied(AccessError::new(ErrorKind::InternalServerError, "session check result missing"));
                    };
                    match session_from_response(result, &check.subject_from, &check.extra_from, now) {
                        Ok(session) => {
                            self.session = Some(session);
                            self.stage = Stage::Authorize;
                        }
                        // An authenticator that was responsible and failed ends the pipeline;
                        // later authenticators are not tried (Oathkeeper's semantics).
                        Err(error) => return Step::Denied(error),
                    }
                }
                Stage::Authorize => match &rule.authorizer {
                    Authorizer::Allow => self.stage = Stage::Finished,
                    Authorizer::Deny => {
                        return Step::Denied(AccessError::new(
                            ErrorKind::Forbidden,
                            "access credentials are not sufficient to access this resource",
                        ))
                    }
                    Authorizer::RemoteJson(remote) => {
                        let session = self.session.as_ref().cloned().unwrap_or_default();
                        return match remote_json_request(remote, request, &session, captures) {
                            Ok(subrequest) => {
                                self.stage = Stage::AwaitAuthorization;
                                Step::Subrequest(subrequest)
                            }
                            Err(error) => Step::Denied(error),
                        };
                    }
                },
                Stage::AwaitAuthorization => {
                    let Authorizer::RemoteJson(remote) = &rule.authorizer else {
                        return Step::Denied(AccessError::new(ErrorKind::InternalServerError, "authorizer state lost"));
                    };
                    match authorization_outcome(remote, result) {
                        Ok(headers) => {
                            self.forwarded_from_authorizer = headers;
                            self.stage = Stage::Finished;
                        }
                        Err(error) => return Step::Denied(error),
                    }
                }
                Stage::Finished => {
                    let session = self.session.take().unwrap_or_default();
                    return match mutate(rule, request, session, captures) {
                        Ok(mut grant) => {
                            grant.headers.append(&mut self.forwarded_from_authorizer);
                            Step::Granted(grant)
                        }
                        Err(error) => Step::Denied(error),
                    };
                }
            }
        }
    }
}

enum Authentication {
    NotResponsible,
    Session(Session),
    Denied(AccessError),
    Subrequest(Subrequest),
}

fn authenticate(authenticator: &Authenticator, request: &AccessRequest<'_>) -> Authentication {
    match authenticator {
        Authenticator::Noop => Authentication::Session(Session::anonymous(&std::sync::Arc::default())),
        Authenticator::Anonymous { subject } => {
            if request.head.header(b"authorization").is_some() {
                Authentication::NotResponsible
            } else {
                Authentication::Session(Session::anonymous(subject))
            }
        }
        Authenticator::Unauthorized => Authentication::Denied(AccessError::new(
            ErrorKind::Unauthorized,
            "the unauthorized authenticator denies every request",
        )),
        Authenticator::CookieSession(check) => match forwarded_cookies(check, request.head) {
            Some(cookie) => Authentication::Subrequest(session_subrequest(check, request, Credential::Cookie(&cookie))),
            None => Authentication::NotResponsible,
        },
        Authenticator::BearerToken(check) => match bearer_token(check, request) {
            Some(token) => Authentication::Subrequest(session_subrequest(check, request, Credential::Bearer(&token))),
            None => Authentication::NotResponsible,
        },
        Authenticator::Jwt(jwt) => match token_from(&jwt.token_source, request) {
            Some(token) => match verify_jwt(jwt, &token, SystemTime::now()) {
                Ok(session) => Authentication::Session(session),
                Err(error) => Authentication::Denied(AccessError::new(ErrorKind::Unauthorized, format!("invalid JWT: {error}"))),
            },
            None => Authentication::NotResponsible,
        },
    }
}

/// Verifies a bearer JWT against every configured key set, then checks its claims.
fn verify_jwt(authenticator: &JwtAuthenticator, token: &[u8], now: SystemTime) -> Result<Session, JwtError> {
    let token = std::str::from_utf8(token).map_err(|_| JwtError::Malformed("token is not ASCII"))?;
    let mut last_error = JwtError::UnknownKey;
    let mut payload = None;
    for source in &authenticator.sources {
        match jwt::verify(token, &source.keys(), &authenticator.allowed_algorithms) {
            Ok(claims) => {
                payload = Some(claims);
                break;
            }
            Err(JwtError::UnknownKey) => continue,
            Err(error) => {
                last_error = error;
                break;
            }
        }
    }
    let Some(payload) = payload else {
        if last_error == JwtError::UnknownKey {
            // Maybe the issuer rotated its keys: fetch the sets again, off the request path.
            for source in &authenticator.sources {
                source.request_refresh();
            }
        }
        return Err(last_error);
    };
    let subject = jwt::check_claims(&payload, &authenticator.claims, now)?;
    Ok(Session { subject: subject.into(), extra: payload, set_cookies: Vec::new(), expires_at: None })
}

/// Iterates over the `name=value` pairs of every `Cookie` header.
pub fn cookies(head: &RequestHead) -> impl Iterator<Item = (&[u8], &[u8])> {
    head.headers()
        .filter(|(name, _)| name.eq_ignore_ascii_case(b"cookie"))
        .flat_map(|(_, value)| value.split(|&b| b == b';'))
        .filter_map(|pair| {
            let pair = trim(pair);
            let equals = pair.iter().position(|&b| b == b'=')?;
            Some((trim(&pair[..equals]), trim(&pair[equals + 1..])))
        })
        .filter(|(name, _)| !name.is_empty())
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(bytes.len());
    let end = bytes.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(start, |i| i + 1);
    &bytes[start..end.max(start)]
}

/// The `Cookie` value to forward, or None when cookie_session is not responsible: with `only`
/// set, just those cookies (and only if one is present); otherwise every cookie.
fn forwarded_cookies(check: &SessionCheck, head: &RequestHead) -> Option<Vec<u8>> {
    // The forwarded value is never longer than the request's Cookie headers together, so
    // one allocation of that size is enough.
    let capacity: usize = head.headers().filter(|(name, _)| name.eq_ignore_ascii_case(b"cookie")).map(|(_, value)| value.len() + 2).sum();
    let mut value = Vec::with_capacity(capacity);
    for (name, cookie_value) in cookies(head) {
        let wanted = check.only.is_empty() || check.only.iter().any(|only| only.as_bytes() == name);
        if !wanted {
            continue;
        }
        if !value.is_empty() {
            value.extend_from_slice(b"; ");
        }
        value.extend_from_slice(name);
        value.push(b'=');
        value.extend_from_slice(cookie_value);
    }
    (!value.is_empty()).then_some(value)
}

fn bearer_token(check: &SessionCheck, request: &AccessRequest<'_>) -> Option<Vec<u8>> {
    let token = token_from(&check.token_source, request)?;
    token.starts_with(check.prefix.as_bytes()).then_some(token)
}

/// Reads a token from where `source` says; None when it is absent or empty.
fn token_from(source: &TokenSource, request: &AccessRequest<'_>) -> Option<Vec<u8>> {
    let token: Option<Vec<u8>> = match source {
        TokenSource::Default => request
            .head
            .header(b"authorization")
            .and_then(strip_bearer)
            .or_else(|| request.head.header(b"x-session-token"))
            .map(<[u8]>::to_vec),
        TokenSource::Header(name) => {
            let value = request.head.header(name.as_bytes())?;
            Some(if name.eq_ignore_ascii_case("authorization") { strip_bearer(value)? } else { value }.to_vec())
        }
        TokenSource::QueryParameter(name) => query_parameter(request.query?, name.as_bytes()),
        TokenSource::Cookie(name) => cookies(request.head).find(|(n, _)| *n == name.as_bytes()).map(|(_, v)| v.to_vec()),
    };
    token.filter(|t| !t.is_empty())
}

fn strip_bearer(value: &[u8]) -> Option<&[u8]> {
    let scheme = value.get(..7)?;
    scheme.eq_ignore_ascii_case(b"bearer ").then(|| trim(&value[7..]))
}

/// Returns the percent-decoded value of the first `name` parameter of a query string.
fn query_parameter(query: &[u8], name: &[u8]) -> Option<Vec<u8>> {
    query.split(|&b| b == b'&').find_map(|pair| {
        let (key, value) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &pair[pair.len()..]),
        };
        (percent_decode(key)? == name).then(|| percent_decode(value)).flatten()
    })
}

fn percent_decode(input: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len());
    let mut index = 0;
    while index < input.len() {
        match input[index] {
            b'%' => {
                let hex = input.get(index + 1..index + 3)?;
                let text = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(text, 16).ok()?);
                index += 3;
            }
            b'+' => {
                out.push(b' ');
                index += 1;
            }
            byte => {
                out.push(byte);
                index += 1;
            }
        }
    }
    Some(out)
}

enum Credential<'a> {
    Cookie(&'a [u8]),
    Bearer(&'a [u8]),
}

/// True for bytes that may appear in a forwarded header value (no CR, LF, NUL or other
/// controls except HTAB). Query-string and cookie tokens from the request are re-checked here
/// because they are decoded or recombined before forwarding.
fn is_safe_header_value(value: &[u8]) -> bool {
    value.iter().all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

/// Serialises the subrequest to the session endpoint: only the credential, the configured
/// headers and never the request body.
fn session_subrequest(check: &SessionCheck, request: &AccessRequest<'_>, credential: Credential<'_>) -> Subrequest {
    let endpoint = &check.endpoint;
    // A HEAD check would come back without the session body, so HEAD requests are checked
    // with GET unless force_method says otherwise.
    let method = match check.force_method.as_deref() {
        Some(forced) => forced.as_bytes(),
        None if request.method == b"HEAD" => b"GET",
        None => request.method,
    };
    let mut bytes = Vec::with_capacity(256);
    bytes.extend_from_slice(method);
    bytes.push(b' ');
    if check.preserve_path {
        bytes.extend_from_slice(endpoint.path.as_bytes());
    } else {
        bytes.extend_from_slice(request.path);
    }
    let query = if check.preserve_query { endpoint.query.as_deref().map(str::as_bytes) } else { request.query };
    if let Some(query) = query {
        bytes.push(b'?');
        bytes.extend_from_slice(query);
    }
    bytes.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    bytes.extend_from_slice(endpoint.host_header.as_bytes());
    bytes.extend_from_slice(b"\r\nAccept: application/json\r\n");
    match credential {
        Credential::Cookie(cookie) => {
            push_header(&mut bytes, b"Cookie", cookie);
        }
        Credential::Bearer(token) => {
            let mut value = b"Bearer ".to_vec();
            value.extend_from_slice(token);
            push_header(&mut bytes, b"Authorization", &value);
        }
    }
    for name in &check.forward_http_headers {
        let name = name.as_bytes();
        let already = [b"cookie".as_slice(), b"authorization", b"host", b"content-length", b"transfer-encoding"]
            .iter()
            .any(|skip| skip.eq_ignore_ascii_case(name));
        if already {
            continue;
        }
        for (header_name, value) in request.head.headers() {
            if header_name.eq_ignore_ascii_case(name) {
                push_header(&mut bytes, name, value);
            }
        }
    }
    for (name, value) in &check.additional_headers {
        push_header(&mut bytes, name.as_bytes(), value.as_bytes());
    }
    if check.preserve_host {
        push_header(&mut bytes, b"X-Forwarded-Host", request.host);
    }
    if !matches!(method, b"GET" | b"HEAD") {
        bytes.extend_from_slice(b"Content-Length: 0\r\n");
    }
    bytes.extend_from_slice(b"\r\n");
    Subrequest { addr: endpoint.addr, bytes, timeout: check.timeout, purpose: Purpose::SessionCheck, cache: check.cache }
}

fn push_header(bytes: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    if !is_safe_header_value(value) {
        return;
    }
    bytes.extend_from_slice(name);
    bytes.extend_from_slice(b": ");
    bytes.extend_from_slice(value);
    bytes.extend_from_slice(b"\r\n");
}

/// Builds the data templates see.
fn with_template_context<R>(
    request: &AccessRequest<'_>,
    session: &Session,
    captures: &[String],
    f: impl FnOnce(&TemplateContext<'_>) -> R,
) -> R {
    let header = |name: &str| request.head.header(name.as_bytes()).and_then(|v| std::str::from_utf8(v).ok());
    let context = TemplateContext {
        subject: &session.subject,
        extra: &session.extra,
        method: std::str::from_utf8(request.method).unwrap_or(""),
        scheme: request.scheme,
        host: std::str::from_utf8(request.host).unwrap_or(""),
        path: std::str::from_utf8(request.path).unwrap_or(""),
        raw_query: request.query.and_then(|q| std::str::from_utf8(q).ok()).unwrap_or(""),
        captures,
        header: &header,
    };
    f(&context)
}

fn remote_json_request(
    remote: &RemoteJson,
    request: &AccessRequest<'_>,
    session: &Session,
    captures: &[String],
) -> Result<Subrequest, AccessError> {
    let internal = |reason: String| AccessError::new(ErrorKind::InternalServerError, reason);
    let mut payload = String::new();
    let mut headers = Vec::new();
    with_template_context(request, session, captures, |context| -> Result<(), AccessError> {
        remote
            .payload
            .render(context, &mut payload)
            .map_err(|e| internal(format!("remote_json payload template failed: {e}")))?;
        for (name, template) in &remote.headers {
            let mut value = String::new();
            template
                .render(context, &mut value)
                .map_err(|e| internal(format!("remote_json header {name} template failed: {e}")))?;
            headers.push((name.clone(), value));
        }
        Ok(())
    })?;
    if json::validate(payload.as_bytes(), 64).is_err() {
        return Err(internal("remote_json payload template did not produce valid JSON".into()));
    }

    let endpoint = &remote.endpoint;
    let mut bytes = Vec::with_capacity(256 + payload.len());
    bytes.extend_from_slice(b"POST ");
    bytes.extend_from_slice(endpoint.path.as_bytes());
    if let Some(query) = &endpoint.query {
        bytes.push(b'?');
        bytes.extend_from_slice(query.as_bytes());
    }
    bytes.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    bytes.extend_from_slice(endpoint.host_header.as_bytes());
    bytes.extend_from_slice(b"\r\nContent-Type: application/json\r\nAccept: application/json\r\n");
    if let Some(authorization) = request.head.header(b"authorization") {
        push_header(&mut bytes, b"Authorization", authorization);
    }
    for (name, value) in &headers {
        if value.is_empty() {
            continue;
        }
        if !is_safe_header_value(value.as_bytes()) {
            return Err(internal(format!("remote_json header {name} rendered an invalid value")));
        }
        push_header(&mut bytes, name.as_bytes(), value.as_bytes());
    }
    bytes.extend_from_slice(format!("Content-Length: {}\r\n\r\n", payload.len()).as_bytes());
    bytes.extend_from_slice(payload.as_bytes());
    Ok(Subrequest { addr: endpoint.addr, bytes, timeout: remote.timeout, purpose: Purpose::Authorization, cache: None })
}

/// Oathkeeper's mapping: 200 allows, 403 forbids, 429 is passed on, anything else (or no
/// answer at all) denies with an internal error.
fn authorization_outcome(remote: &RemoteJson, result: Option<&SubResult>) -> Result<Vec<(String, String)>, AccessError> {
    let response = match result {
        Some(Ok(response)) => response,
        Some(Err(failure)) => {
            return Err(AccessError::new(
                ErrorKind::ServiceUnavailable,
                format!("remote authorizer {}", failure.describe()),
            ))
        }
        None => return Err(AccessError::new(ErrorKind::InternalServerError, "authorization result missing")),
    };
    match response.status {
        200 => Ok(response
            .headers
            .iter()
            .filter(|(name, _)| remote.forward_response_headers_to_upstream.iter().any(|wanted| wanted == name))
            .cloned()
            .collect()),
        403 => Err(AccessError::new(ErrorKind::Forbidden, "the remote authorizer denied the request")),
        429 => {
            let mut error = AccessError::new(ErrorKind::TooManyRequests, "the remote authorizer was rate limited");
            error.retry_after = response.retry_after.clone();
            Err(error)
        }
        status => Err(AccessError::new(
            ErrorKind::InternalServerError,
            format!("remote authorizer answered with unexpected status {status}"),
        )),
    }
}

fn mutate(rule: &super::rules::Rule, request: &AccessRequest<'_>, session: Session, captures: &[String]) -> Result<Grant, AccessError> {
    let mut grant = Grant::default();
    let mut value = String::new();
    let result = with_template_context(request, &session, captures, |context| -> Result<(), AccessError> {
        for mutator in &rule.mutators {
            match mutator {
                Mutator::Noop => {}
                Mutator::Header(templates) => {
                    for header in templates {
                        value.clear();
                        header.template.render(context, &mut value).map_err(|e| {
                            AccessError::new(ErrorKind::InternalServerError, format!("header mutator {} failed: {e}", header.name))
                        })?;
                        if !is_safe_header_value(value.as_bytes()) {
                            return Err(AccessError::new(
                                ErrorKind::InternalServerError,
                                format!("header mutator {} produced a value with control characters", header.name),
                            ));
                        }
                        grant.headers.retain(|(name, _)| !name.eq_ignore_ascii_case(&header.name));
                        grant.headers.push((header.name.clone(), std::mem::take(&mut value)));
                    }
                }
                Mutator::Cookie(templates) => {
                    for (name, template) in templates {
                        value.clear();
                        template.render(context, &mut value).map_err(|e| {
                            AccessError::new(ErrorKind::InternalServerError, format!("cookie mutator {name} failed: {e}"))
                        })?;
                        let valid = value.bytes().all(|b| b > 0x20 && b < 0x7f && b != b';' && b != b',' && b != b'"' && b != b'\\');
                        if !valid {
                            return Err(AccessError::new(
                                ErrorKind::InternalServerError,
                                format!("cookie mutator {name} produced an invalid cookie value"),
                            ));
                        }
                        grant.cookies.retain(|(existing, _)| existing != name);
                        grant.cookies.push((name.clone(), std::mem::take(&mut value)));
                    }
                }
                Mutator::IdToken(id_token) => {
                    let token = issue_id_token(id_token, context, SystemTime::now())?;
                    grant.headers.retain(|(name, _)| !name.eq_ignore_ascii_case("authorization"));
                    grant.headers.push(("Authorization".to_owned(), format!("Bearer {token}")));
                }
            }
        }
        Ok(())
    });
    result?;
    grant.session = session;
    Ok(grant)
}

/// Largest number of cached id tokens per mutator; the cache is emptied when it is full.
const MAX_CACHED_TOKENS: usize = 10_000;

/// Returns a signed id token for the session, from the cache while it has more than 10% of
/// its lifetime left.
fn issue_id_token(mutator: &IdTokenMutator, context: &TemplateContext<'_>, now: SystemTime) -> Result<String, AccessError> {
    let internal = |reason: String| AccessError::new(ErrorKind::InternalServerError, reason);
    let Some(key) = mutator.keys.signing.as_ref() else {
        return Err(internal("id_token key set has no private key".into()));
    };
    let mut claims = serde_json::Map::new();
    let mut rendered = String::new();
    if let Some(template) = &mutator.claims {
        template.render(context, &mut rendered).map_err(|e| internal(format!("id_token claims template failed: {e}")))?;
        match serde_json::from_str::<serde_json::Value>(&rendered) {
            Ok(serde_json::Value::Object(map)) => claims = map,
            _ => return Err(internal("id_token claims template did not produce a JSON object".into())),
        }
    }
    let cache_key = {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        context.subject.hash(&mut hasher);
        rendered.hash(&mut hasher);
        hasher.finish()
    };
    if let Ok(cache) = mutator.cache.lock() {
        if let Some(cached) = cache.get(&cache_key) {
            if now < cached.renew_after {
                return Ok(cached.token.clone());
            }
        }
    }
    let issued = now.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    claims.insert("iss".into(), mutator.issuer_url.clone().into());
    claims.insert("sub".into(), context.subject.into());
    claims.insert("iat".into(), issued.into());
    claims.insert("nbf".into(), issued.into());
    claims.insert("exp".into(), (issued + mutator.ttl.as_secs()).into());
    claims.insert("jti".into(), jwt::random_uuid().into());
    let payload = serde_json::to_vec(&claims).map_err(|_| internal("id_token claims could not be serialised".into()))?;
    let token = jwt::sign(key, &payload).map_err(|e| internal(format!("id_token signing failed: {e}")))?;
    if let Ok(mut cache) = mutator.cache.lock() {
        if cache.len() >= MAX_CACHED_TOKENS {
            cache.clear();
        }
        let renew_after = now + mutator.ttl.mul_f64(0.9);
        cache.insert(cache_key, CachedToken { token: token.clone(), renew_after });
    }
    Ok(token)
}
