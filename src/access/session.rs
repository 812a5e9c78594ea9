//! The authenticated session handed to authorizers and mutators, and how a session endpoint's
//! answer (Ory Kratos `/sessions/whoami` shape) becomes one.
//!
//! Kratos answers 200 with the session, 401 when there is no valid session, 403 when the
//! session's assurance level is too low (`session_aal2_required` with `redirect_browser_to`)
//! and 429 when rate limited. Everything else, and any body that is not the expected JSON,
//! denies the request: the gateway fails closed.

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;

use super::errors::{AccessError, ErrorKind};
use super::json::{self, JsonKind, JsonPath};

/// Maximum nesting accepted in a session body; Kratos sessions are about 5 levels deep.
const MAX_SESSION_DEPTH: usize = 64;

/// Who the request is from, as established by an authenticator.
#[derive(Clone, Debug, Default)]
pub struct Session {
    /// Shared, so that a rule with a fixed subject (`anonymous`) lends it without copying.
    pub subject: Arc<str>,
    /// A JSON document (`{}` when the authenticator provides none), navigated by templates.
    pub extra: Bytes,
    /// `Set-Cookie` values from the session endpoint (a refreshed session cookie) that are
    /// passed on to the client's response.
    pub set_cookies: Vec<String>,
    /// When the session stops being valid, if the endpoint said.
    pub expires_at: Option<SystemTime>,
}

impl Session {
    pub fn anonymous(subject: &Arc<str>) -> Session {
        Session { subject: Arc::clone(subject), extra: Bytes::from_static(b"{}"), ..Session::default() }
    }
}

/// The parts of a subrequest's response that decisions need.
#[derive(Clone, Debug, Default)]
pub struct SubResponse {
    pub status: u16,
    pub set_cookies: Vec<String>,
    pub retry_after: Option<String>,
    /// Other headers kept for `forward_response_headers_to_upstream`, names lower-case.
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    /// The session read from this answer, kept so that the requests sharing one answer
    /// (identical checks in flight, or a cached answer) read the body once.
    pub parsed: std::sync::OnceLock<ParsedSession>,
}

/// A session read from a 200 answer with particular `subject_from` and `extra_from` paths.
#[derive(Clone, Debug)]
pub struct ParsedSession {
    subject_from: Arc<str>,
    extra_from: Arc<str>,
    result: Result<Session, AccessError>,
}

/// Why a subrequest produced no response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubFailure {
    /// Connection refused, reset or closed before a complete response.
    Unreachable,
    TimedOut,
    /// The response was not valid HTTP or its body exceeded the size limit.
    InvalidResponse,
}

impl SubFailure {
    pub fn describe(self) -> &'static str {
        match self {
            SubFailure::Unreachable => "connection failed",
            SubFailure::TimedOut => "timed out",
            SubFailure::InvalidResponse => "returned an invalid HTTP response",
        }
    }
}

pub type SubResult = Result<SubResponse, SubFailure>;

/// Turns a session endpoint's answer into a session or a denial.
pub fn session_from_response(
    result: &SubResult,
    subject_from: &JsonPath,
    extra_from: &JsonPath,
    now: SystemTime,
) -> Result<Session, AccessError> {
    let response = match result {
        Ok(response) => response,
        Err(failure) => {
            // No answer at all is 503; an answer that is not valid HTTP is a bad gateway.
            let kind = match failure {
                SubFailure::InvalidResponse => ErrorKind::BadGateway,
                SubFailure::Unreachable | SubFailure::TimedOut => ErrorKind::ServiceUnavailable,
            };
            return Err(AccessError::new(kind, format!("session check {}", failure.describe())));
        }
    };
    match response.status {
        200 => {
            if let Some(parsed) = response.parsed.get() {
                if *parsed.subject_from == *subject_from.source() && *parsed.extra_from == *extra_from.source() {
                    return match &parsed.result {
                        // The answer may come from the cache: check the expiry again.
                        Ok(session) if session.expires_at.is_some_and(|expiry| expiry <= now) => {
                            Err(AccessError::new(ErrorKind::Unauthorized, "the session has expired"))
                        }
                        other => other.clone(),
                    };
                }
            }
            let result = parse_session(response, subject_from, extra_from, now);
            let _ = response.parsed.set(ParsedSession {
                subject_from: Arc::clone(subject_from.shared_source()),
                extra_from: Arc::clone(extra_from.shared_source()),
                result: result.clone(),
            });
            result
        }
        401 => Err(AccessError::new(ErrorKind::Unauthorized, "no valid session credentials found in the request")),
        403 => Err(forbidden_from_body(&response.body)),
        429 => {
            let mut error = AccessError::new(ErrorKind::TooManyRequests, "the session check was rate limited");
            error.retry_after = response.retry_after.clone();
            Err(error)
        }
        status => Err(AccessError::new(
            ErrorKind::BadGateway,
            format!("session check answered with unexpected status {status}"),
        )),
    }
}

fn parse_session(
    response: &SubResponse,
    subject_from: &JsonPath,
    extra_from: &JsonPath,
    now: SystemTime,
) -> Result<Session, AccessError> {
    let body = &response.body;
    if json::validate(body, MAX_SESSION_DEPTH).is_err() {
        return Err(AccessError::new(ErrorKind::BadGateway, "session check returned a body that is not valid JSON"));
    }
    let Some(document) = json::RawJson::parse_prefix(body) else {
        return Err(AccessError::new(ErrorKind::BadGateway, "session check returned an empty body"));
    };
    if document.kind() == JsonKind::Object {
        // whoami never answers 200 for an inactive or expired session, but a stale cache or
        // a proxy in between might; never let such a session through.
        if let Some(active) = document.get("active") {
            if active.raw() == b"false" {
                return Err(AccessError::new(ErrorKind::Unauthorized, "the session is not active"));
            }
        }
    }
    let expires_at = document
        .get("expires_at")
        .and_then(|value| value.as_str())
        .and_then(|text| parse_rfc3339(text.as_ref()));
    if let Some(expiry) = expires_at {
        if expiry <= now {
            return Err(AccessError::new(ErrorKind::Unauthorized, "the session has expired"));
        }
    }

    // A string without escapes is copied from the body into the Arc<str> directly, with one
    // allocation instead of two.
    let subject: Arc<str> = match subject_from.find(body) {
        Some(value) if value.kind() == JsonKind::String => value.as_str().map_or_else(|| Arc::from(""), |text| Arc::from(&*text)),
        Some(value) if value.kind() == JsonKind::Number => {
            let mut text = String::new();
            value.write_text(&mut text);
            text.into()
        }
        _ => Arc::from(""),
    };
    if subject.is_empty() {
        return Err(AccessError::new(
            ErrorKind::BadGateway,
            format!("session check returned no subject at {subject_from}"),
        ));
    }
    let extra = match extra_from.find(body) {
        Some(value) if value.kind() == JsonKind::Object => {
            if value.raw().len() == body.len() {
                body.clone()
            } else {
                slice_of(body, value.raw())
            }
        }
        Some(_) => {
            return Err(AccessError::new(
                ErrorKind::BadGateway,
                format!("session check returned a non-object at {extra_from}"),
            ))
        }
        None => Bytes::from_static(b"{}"),
    };
    Ok(Session { subject, extra, set_cookies: response.set_cookies.clone(), expires_at })
}

/// Returns `inner` (a subslice of `outer`'s bytes) as a `Bytes` sharing `outer`'s storage.
fn slice_of(outer: &Bytes, inner: &[u8]) -> Bytes {
    let start = (inner.as_ptr() as usize).wrapping_sub(outer.as_ptr() as usize);
    if start <= outer.len() && start + inner.len() <= outer.len() {
        outer.slice(start..start + inner.len())
    } else {
        Bytes::copy_from_slice(inner)
    }
}

/// Reads Kratos's 403 body: `error.id` and `redirect_browser_to` (top level or in details).
fn forbidden_from_body(body: &[u8]) -> AccessError {
    let mut error = AccessError::new(ErrorKind::Forbidden, "the session does not grant access");
    if json::validate(body, MAX_SESSION_DEPTH).is_err() {
        return error;
    }
    let Some(document) = json::RawJson::parse_prefix(body) else { return error };
    let inner = document.get("error");
    if let Some(id) = inner.and_then(|e| e.get("id")).and_then(|id| id.as_str()) {
        error.id = Some(id.into_owned());
    }
    if let Some(reason) = inner.and_then(|e| e.get("reason")).and_then(|r| r.as_str()) {
        error.reason = reason.into_owned();
    }
    let target = document
        .get("redirect_browser_to")
        .or_else(|| inner.and_then(|e| e.get("details")).and_then(|d| d.get("redirect_browser_to")))
        .and_then(|t| t.as_str());
    if let Some(target) = target {
        // Only absolute http(s) URLs are followed; anything else could be a script URL.
        if target.starts_with("http://") || target.starts_with("https://") {
            error.redirect_browser_to = Some(target.into_owned());
        }
    }
    error
}

/// Parses an RFC 3339 timestamp such as `2025-03-15T09:26:53.412358Z` or with a `+02:00`
/// offset. Returns None for anything else.
pub fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let bytes = text.as_bytes();
    if bytes.len() < 20 {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        if !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let year = number(0..4)?;
    let month = number(5..7)?;
    let day = number(8..10)?;
    let hour = number(11..13)?;
    let minute = number(14..16)?;
    let second = number(17..19)?;
    if bytes[4] != b'-' || bytes[7] != b'-' || !matches!(bytes[10], b'T' | b't' | b' ') || bytes[13] != b':' || bytes[16] != b':' {
        return None;
    }
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut index = 19;
    let mut nanos: i64 = 0;
    if bytes.get(index) == Some(&b'.') {
        index += 1;
        let start = index;
        while index < bytes.len() && bytes[index].is_ascii_digit() {
            if index - start < 9 {
                nanos = nanos * 10 + i64::from(bytes[index] - b'0');
            }
            index += 1;
        }
        if index == start {
            return None;
        }
        for _ in (index - start).min(9)..9 {
            nanos *= 10;
        }
    }
    let offset_seconds = match bytes.get(index)? {
        b'Z' | b'z' if index + 1 == bytes.len() => 0,
        sign @ (b'+' | b'-') if index + 6 == bytes.len() && bytes[index + 3] == b':' => {
            let hours = number(index + 1..index + 3)?;
            let minutes = number(index + 4..index + 6)?;
            let total = hours * 3600 + minutes * 60;
            if *sign == b'+' { total } else { -total }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_seconds;
    let duration = std::time::Duration::new(u64::try_from(seconds).ok()?, u32::try_from(nanos).ok()?);
    SystemTime::UNIX_EPOCH.checked_add(duration)
}

/// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(body: &str) -> SubResult {
        Ok(SubResponse { status: 200, body: Bytes::copy_from_slice(body.as_bytes()), ..SubResponse::default() })
    }

    fn subject_of(body: &str, subject_from: &str) -> Result<String, ErrorKind> {
        let subject_from = JsonPath::parse(subject_from).expect("valid path");
        let extra_from = JsonPath::parse("@this").expect("valid path");
        session_from_response(&answer(body), &subject_from, &extra_from, SystemTime::now())
            .map(|session| session.subject.to_string())
            .map_err(|error| error.kind)
    }

    #[test]
    fn subject_from_plain_string() {
        let body = r#"{"active": true, "identity": {"id": "9d1e6a52-4b0c-4f87-8e3a-2b7c5d9f0a14"}}"#;
        assert_eq!(subject_of(body, "identity.id").as_deref(), Ok("9d1e6a52-4b0c-4f87-8e3a-2b7c5d9f0a14"));
    }

    #[test]
    fn subject_from_escaped_string_is_unescaped() {
        let body = r#"{"identity": {"id": "caf\u00e9 \"x\""}}"#;
        assert_eq!(subject_of(body, "identity.id").as_deref(), Ok("café \"x\""));
    }

    #[test]
    fn subject_from_number_is_its_text() {
        assert_eq!(subject_of(r#"{"identity": {"id": 42}}"#, "identity.id").as_deref(), Ok("42"));
    }

    #[test]
    fn subject_missing_or_not_scalar_is_bad_gateway() {
        assert_eq!(subject_of(r#"{"identity": {}}"#, "identity.id"), Err(ErrorKind::BadGateway));
        assert_eq!(subject_of(r#"{"identity": {"id": ""}}"#, "identity.id"), Err(ErrorKind::BadGateway));
        assert_eq!(subject_of(r#"{"identity": {"id": {"a": 1}}}"#, "identity.id"), Err(ErrorKind::BadGateway));
        assert_eq!(subject_of(r#"{"identity": {"id": true}}"#, "identity.id"), Err(ErrorKind::BadGateway));
    }

    #[test]
    fn inactive_or_expired_session_is_unauthorized() {
        let inactive = r#"{"active": false, "identity": {"id": "u"}}"#;
        assert_eq!(subject_of(inactive, "identity.id"), Err(ErrorKind::Unauthorized));
        let expired = r#"{"expires_at": "2001-01-01T00:00:00Z", "identity": {"id": "u"}}"#;
        assert_eq!(subject_of(expired, "identity.id"), Err(ErrorKind::Unauthorized));
    }
}
