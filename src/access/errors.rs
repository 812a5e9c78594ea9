//! Error handlers (Oathkeeper's `errors`): what a denied request gets back.
//!
//! A rule's own `errors` list is walked in order and the first handler whose `when` matches
//! answers. When none does, the global `errors.fallback` list (default `["json"]`) is walked
//! the same way, and when nothing matches at all the request gets the JSON answer.

use std::fmt::Write as _;
use std::net::IpAddr;

use super::cidr::Cidr;

/// Why the access pipeline denied a request. The names follow Oathkeeper's `when.error`
/// values: the lower-case status text with `_` between words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    Unauthorized,
    Forbidden,
    NotFound,
    InternalServerError,
    TooManyRequests,
    BadGateway,
    ServiceUnavailable,
}

impl ErrorKind {
    pub fn status(self) -> u16 {
        match self {
            ErrorKind::Unauthorized => 401,
            ErrorKind::Forbidden => 403,
            ErrorKind::NotFound => 404,
            ErrorKind::InternalServerError => 500,
            ErrorKind::TooManyRequests => 429,
            ErrorKind::BadGateway => 502,
            ErrorKind::ServiceUnavailable => 503,
        }
    }

    /// The name used in `when.error` lists.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::NotFound => "not_found",
            ErrorKind::InternalServerError => "internal_server_error",
            ErrorKind::TooManyRequests => "too_many_requests",
            ErrorKind::BadGateway => "bad_gateway",
            ErrorKind::ServiceUnavailable => "service_unavailable",
        }
    }

    pub fn from_name(name: &str) -> Option<ErrorKind> {
        [
            ErrorKind::Unauthorized,
            ErrorKind::Forbidden,
            ErrorKind::NotFound,
            ErrorKind::InternalServerError,
            ErrorKind::TooManyRequests,
            ErrorKind::BadGateway,
            ErrorKind::ServiceUnavailable,
        ]
        .into_iter()
        .find(|kind| kind.name() == name)
    }

    /// The generic message Oathkeeper's json handler shows when `verbose` is off.
    pub fn generic_message(self) -> &'static str {
        match self {
            ErrorKind::Unauthorized => "The request could not be authorized",
            ErrorKind::Forbidden => "The requested action was forbidden",
            ErrorKind::NotFound => "The requested resource could not be found",
            ErrorKind::InternalServerError => "An internal server error occurred, please contact the system administrator",
            ErrorKind::TooManyRequests => "Too many requests",
            ErrorKind::BadGateway => "The identity or authorization server returned an invalid response",
            ErrorKind::ServiceUnavailable => "The identity or authorization server is unavailable",
        }
    }
}

/// A denial with the details that handlers may show.
#[derive(Clone, Debug)]
pub struct AccessError {
    pub kind: ErrorKind,
    /// Shown by the json handler only with `verbose = true`.
    pub reason: String,
    /// Machine-readable id, e.g. Kratos's `session_aal2_required`; always shown.
    pub id: Option<String>,
    /// Where a browser should go instead (Kratos's `redirect_browser_to`).
    pub redirect_browser_to: Option<String>,
    /// `Retry-After` to pass on with a 429.
    pub retry_after: Option<String>,
}

impl AccessError {
    pub fn new(kind: ErrorKind, reason: impl Into<String>) -> AccessError {
        AccessError { kind, reason: reason.into(), id: None, redirect_browser_to: None, retry_after: None }
    }
}

/// One `when` item; its parts are AND'ed and the values of each list OR'ed.
#[derive(Clone, Debug, Default)]
pub struct When {
    pub errors: Vec<ErrorKind>,
    pub remote_ip: Vec<Cidr>,
    pub respect_forwarded_for_header: bool,
    /// Lower-case media ranges accepted in the request's `Accept`.
    pub accept: Vec<String>,
    /// Lower-case media ranges accepted for the request's `Content-Type`.
    pub content_type: Vec<String>,
}

/// What the conditions are evaluated against.
pub struct ErrorRequest<'a> {
    pub accept: Option<&'a [u8]>,
    pub content_type: Option<&'a [u8]>,
    pub peer_ip: IpAddr,
    pub forwarded_for: Option<&'a [u8]>,
    /// `scheme://host/path?query` of the request, used for `return_to`.
    pub url: &'a str,
    /// Whether `url` names one of the gateway's own origins; only then may it be sent back.
    pub url_is_own_origin: bool,
}

impl When {
    fn matches(&self, error: &AccessError, request: &ErrorRequest<'_>) -> bool {
        if !self.errors.is_empty() && !self.errors.contains(&error.kind) {
            return false;
        }
        if !self.remote_ip.is_empty() {
            let forwarded = if self.respect_forwarded_for_header {
                request
                    .forwarded_for
                    .and_then(|value| std::str::from_utf8(value).ok())
                    .and_then(|value| value.split(',').next())
                    .and_then(|first| first.trim().parse::<IpAddr>().ok())
            } else {
                None
            };
            let ip = forwarded.unwrap_or(request.peer_ip);
            if !self.remote_ip.iter().any(|cidr| cidr.contains(ip)) {
                return false;
            }
        }
        if !self.accept.is_empty() && !media_list_matches(&self.accept, request.accept) {
            return false;
        }
        if !self.content_type.is_empty() && !media_list_matches(&self.content_type, request.content_type) {
            return false;
        }
        true
    }
}

/// True when one of the configured media ranges covers one of the request's media types.
/// The request's value is taken literally, as Oathkeeper does: a client's `*/*` does not
/// match a configured `text/html`, but a configured `text/*` matches a client's `text/html`.
fn media_list_matches(configured: &[String], header: Option<&[u8]>) -> bool {
    let Some(header) = header.and_then(|h| std::str::from_utf8(h).ok()) else {
        return false;
    };
    header.split(',').any(|item| {
        let media = item.split(';').next().unwrap_or("").trim();
        configured.iter().any(|range| media_range_covers(range, media))
    })
}

fn media_range_covers(range: &str, media: &str) -> bool {
    if range == "*/*" {
        return !media.is_empty();
    }
    if let Some(kind) = range.strip_suffix("/*") {
        return media.len() > kind.len()
            && media[..kind.len()].eq_ignore_ascii_case(kind)
            && media.as_bytes()[kind.len()] == b'/';
    }
    range.eq_ignore_ascii_case(media)
}

/// A configured handler with its merged settings.
#[derive(Clone, Debug)]
pub enum ErrorHandler {
    Json { verbose: bool, when: Vec<When> },
    Redirect { to: String, code: u16, return_to_query_param: Option<String>, when: Vec<When> },
    WwwAuthenticate { realm: String, when: Vec<When> },
}

impl ErrorHandler {
    fn when(&self) -> &[When] {
        match self {
            ErrorHandler::Json { when, .. }
            | ErrorHandler::Redirect { when, .. }
            | ErrorHandler::WwwAuthenticate { when, .. } => when,
        }
    }

    fn matches(&self, error: &AccessError, request: &ErrorRequest<'_>) -> bool {
        let when = self.when();
        when.is_empty() || when.iter().any(|item| item.matches(error, request))
    }
}

/// A locally generated answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorResponse {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub content_type: Option<&'static str>,
    pub body: Vec<u8>,
}

/// The global handlers and the fallback order.
#[derive(Clone, Debug)]
pub struct ErrorHandlers {
    pub fallback: Vec<ErrorHandler>,
}

impl ErrorHandlers {
    /// Picks the handler for `error` and renders its response.
    pub fn respond(&self, rule_handlers: &[ErrorHandler], error: &AccessError, request: &ErrorRequest<'_>) -> ErrorResponse {
        let chosen = rule_handlers
            .iter()
            .chain(self.fallback.iter())
            .find(|handler| handler.matches(error, request));
        match chosen {
            Some(handler) => render(handler, error, request),
            None => json_response(error, false),
        }
    }
}

fn render(handler: &ErrorHandler, error: &AccessError, request: &ErrorRequest<'_>) -> ErrorResponse {
    match handler {
        ErrorHandler::Json { verbose, .. } => json_response(error, *verbose),
        ErrorHandler::Redirect { to, code, return_to_query_param, .. } => {
            // Kratos names a better target for an AAL step-up; send browsers there.
            let mut location = error.redirect_browser_to.clone().unwrap_or_else(|| to.clone());
            if let Some(param) = return_to_query_param {
                if request.url_is_own_origin {
                    location.push(if location.contains('?') { '&' } else { '?' });
                    percent_encode_into(param, &mut location);
                    location.push('=');
                    percent_encode_into(request.url, &mut location);
                }
            }
            ErrorResponse {
                status: *code,
                headers: vec![("Location", location)],
                content_type: None,
                body: Vec::new(),
            }
        }
        ErrorHandler::WwwAuthenticate { realm, .. } => {
            let mut response = json_response(&AccessError { kind: ErrorKind::Unauthorized, ..error.clone() }, false);
            let escaped = realm.replace('\\', "\\\\").replace('"', "\\\"");
            response.headers.push(("WWW-Authenticate", format!("Basic realm=\"{escaped}\"")));
            response
        }
    }
}

/// Renders Oathkeeper's JSON envelope: `{"error":{"code":..,"status":..,"message":..}}`.
pub fn json_response(error: &AccessError, verbose: bool) -> ErrorResponse {
    let status = error.kind.status();
    let mut body = serde_json::Map::new();
    body.insert("code".into(), status.into());
    body.insert("status".into(), crate::proxy::local::reason_phrase(status).into());
    if let Some(id) = &error.id {
        body.insert("id".into(), id.clone().into());
    }
    body.insert("message".into(), error.kind.generic_message().into());
    if verbose && !error.reason.is_empty() {
        body.insert("reason".into(), error.reason.clone().into());
    }
    if let Some(target) = &error.redirect_browser_to {
        body.insert("redirect_browser_to".into(), target.clone().into());
    }
    let envelope = serde_json::json!({ "error": body });
    let mut headers = Vec::new();
    if let Some(retry_after) = &error.retry_after {
        headers.push(("Retry-After", retry_after.clone()));
    }
    ErrorResponse {
        status,
        headers,
        content_type: Some("application/json"),
        body: serde_json::to_vec(&envelope).unwrap_or_default(),
    }
}

/// Percent-encodes everything outside RFC 3986's unreserved set.
pub fn percent_encode_into(text: &str, out: &mut String) {
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request<'a>(accept: Option<&'a str>) -> ErrorRequest<'a> {
        ErrorRequest {
            accept: accept.map(str::as_bytes),
            content_type: None,
            peer_ip: "127.0.0.1".parse().unwrap(),
            forwarded_for: None,
            url: "http://127.0.0.1:8000/hello?x=1",
            url_is_own_origin: true,
        }
    }

    fn browser_redirect() -> ErrorHandler {
        ErrorHandler::Redirect {
            to: "http://127.0.0.1:4455/login".into(),
            code: 302,
            return_to_query_param: None,
            when: vec![When {
                errors: vec![ErrorKind::Unauthorized, ErrorKind::Forbidden],
                accept: vec!["text/html".into()],
                ..When::default()
            }],
        }
    }

    fn handlers() -> ErrorHandlers {
        ErrorHandlers { fallback: vec![ErrorHandler::Json { verbose: false, when: Vec::new() }] }
    }

    #[test]
    fn browser_gets_redirect_api_client_gets_json() {
        let error = AccessError::new(ErrorKind::Unauthorized, "no session");
        let rule = [browser_redirect()];
        let browser = handlers().respond(&rule, &error, &request(Some("text/html,application/xhtml+xml;q=0.9")));
        assert_eq!(browser.status, 302);
        assert_eq!(browser.headers, vec![("Location", "http://127.0.0.1:4455/login".to_owned())]);

        let api = handlers().respond(&rule, &error, &request(Some("application/json")));
        assert_eq!(api.status, 401);
        assert_eq!(api.content_type, Some("application/json"));
        let body: serde_json::Value = serde_json::from_slice(&api.body).unwrap();
        assert_eq!(body["error"]["code"], 401);
        assert_eq!(body["error"]["message"], "The request could not be authorized");
        assert!(body["error"].get("reason").is_none());
    }

    #[test]
    fn client_wildcard_accept_is_taken_literally() {
        let error = AccessError::new(ErrorKind::Unauthorized, "");
        let response = handlers().respond(&[browser_redirect()], &error, &request(Some("*/*")));
        assert_eq!(response.status, 401);
        assert!(media_range_covers("text/*", "text/html"));
        assert!(!media_range_covers("text/*", "texts/html"));
        assert!(media_range_covers("*/*", "application/json"));
    }

    #[test]
    fn redirect_appends_return_to_only_for_own_origin() {
        let handler = ErrorHandler::Redirect {
            to: "http://login.example/ui?flow=1".into(),
            code: 302,
            return_to_query_param: Some("return_to".into()),
            when: Vec::new(),
        };
        let error = AccessError::new(ErrorKind::Unauthorized, "");
        let own = handlers().respond(std::slice::from_ref(&handler), &error, &request(None));
        assert_eq!(
            own.headers[0].1,
            "http://login.example/ui?flow=1&return_to=http%3A%2F%2F127.0.0.1%3A8000%2Fhello%3Fx%3D1"
        );
        let mut foreign = request(None);
        foreign.url_is_own_origin = false;
        let response = handlers().respond(std::slice::from_ref(&handler), &error, &foreign);
        assert_eq!(response.headers[0].1, "http://login.example/ui?flow=1");
    }

    #[test]
    fn verbose_json_shows_reason_and_retry_after() {
        let mut error = AccessError::new(ErrorKind::TooManyRequests, "kratos rate limit");
        error.retry_after = Some("30".into());
        let response = json_response(&error, true);
        assert_eq!(response.status, 429);
        assert_eq!(response.headers, vec![("Retry-After", "30".to_owned())]);
        let body: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
        assert_eq!(body["error"]["reason"], "kratos rate limit");
    }

    #[test]
    fn remote_ip_condition_uses_cidrs() {
        let handler = ErrorHandler::WwwAuthenticate {
            realm: "internal".into(),
            when: vec![When { remote_ip: vec!["10.0.0.0/8".parse().unwrap()], ..When::default() }],
        };
        let error = AccessError::new(ErrorKind::Unauthorized, "");
        let outside = handlers().respond(std::slice::from_ref(&handler), &error, &request(None));
        assert!(outside.headers.is_empty());
        let mut inside = request(None);
        inside.peer_ip = "10.1.2.3".parse().unwrap();
        let response = handlers().respond(std::slice::from_ref(&handler), &error, &inside);
        assert_eq!(response.headers, vec![("WWW-Authenticate", "Basic realm=\"internal\"".to_owned())]);
    }
}
