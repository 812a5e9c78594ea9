//! Ory Kratos `/sessions/whoami` as the stand-ins serve it: the order in which the session
//! credential is read from a request, and the JSON bodies of the 200, 401, 403 and 404
//! responses. The field layout follows Kratos (master after v26.2.0). Only the session id,
//! identity id, e-mail address, timestamps and public URL vary; the other identifiers and the
//! name traits are fixed invented values.
//!
//! NOTE: the integration-test helpers in `tests/support/` compile this file too, through a
//! `#[path]` module, so it depends on `std` and `serde_json` only.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Path of the session check endpoint on the Kratos public port.
pub const WHOAMI_PATH: &str = "/sessions/whoami";

/// Request header that carries a session token, read first.
pub const SESSION_TOKEN_HEADER: &str = "X-Session-Token";

/// Name of the session cookie, read second (Kratos `session.cookie.name` default).
pub const SESSION_COOKIE: &str = "ory_kratos_session";

/// Response header that names the identity of a valid session.
pub const IDENTITY_ID_HEADER: &str = "X-Kratos-Authenticated-Identity-Id";

/// `Cache-Control` value that Kratos sends on its public whoami responses.
pub const CACHE_CONTROL: &str = "private, no-cache, no-store, must-revalidate";

/// Session token that gets the 403 `session_aal2_required` response.
pub const AAL2_TOKEN: &str = "aal2";

/// Token of the session that exists when none is configured.
pub const DEFAULT_TOKEN: &str = "valid";

/// Identity id of the default session.
pub const DEFAULT_IDENTITY_ID: &str = "9d1e6a52-4b0c-4f87-8e3a-2b7c5d9f0a14";

/// E-mail trait of the default session, and of sessions configured without one.
pub const DEFAULT_EMAIL: &str = "ada.lovelace@example.com";

/// Session lifetime, as Kratos `session.lifespan` defaults to (24 h).
pub const DEFAULT_LIFESPAN: Duration = Duration::from_secs(24 * 60 * 60);

/// Body of the 401 response to a request without a valid session.
pub const UNAUTHORIZED_BODY: &str = concat!(
    r#"{"error":{"code":401,"status":"Unauthorized","#,
    r#""reason":"No valid session credentials found in the request.","#,
    r#""message":"The request could not be authorized"}}"#
);

/// Body of the 404 response to a path that Kratos does not serve.
pub const NOT_FOUND_BODY: &str = r#"{"error":{"code":404,"status":"Not Found","message":"The requested resource could not be found"}}"#;

/// Body of the 200 response to `GET /health/alive` and `GET /health/ready`.
pub const HEALTH_BODY: &str = r#"{"status":"ok"}"#;

/// Values that vary between the session bodies that a stand-in serves.
#[derive(Debug, Clone, Copy)]
pub struct SessionFields<'a> {
    /// Session token; the session `id` is derived from it, so it is stable across restarts.
    pub token: &'a str,
    /// `identity.id`, the subject that the gateway forwards upstream.
    pub identity_id: &'a str,
    /// `identity.traits.email` and the value of both identity addresses.
    pub email: &'a str,
    /// `issued_at` and `authenticated_at`.
    pub issued_at: SystemTime,
    /// `expires_at`.
    pub expires_at: SystemTime,
    /// Kratos public base URL without a trailing slash, for `identity.schema_url`.
    pub public_url: &'a str,
}

/// Returns the session credential of a request, read as Kratos reads it.
///
/// The order is: the first `X-Session-Token` header if it is not empty, else the first
/// non-empty `ory_kratos_session` cookie in any `Cookie` header, else the token of an
/// `Authorization: Bearer <token>` header. Header names compare case-insensitively and the
/// cookie name case-sensitively. A cookie value in double quotes is unquoted.
pub fn session_credential<'a, I>(headers: I) -> Option<&'a [u8]>
where
    I: Iterator<Item = (&'a str, &'a [u8])> + Clone,
{
    let token_header = headers
        .clone()
        .find(|(name, _)| name.eq_ignore_ascii_case(SESSION_TOKEN_HEADER));
    if let Some((_, token)) = token_header {
        if !token.is_empty() {
            return Some(token);
        }
    }

    let cookie = headers
        .clone()
        .filter(|(name, _)| name.eq_ignore_ascii_case("cookie"))
        .find_map(|(_, value)| cookie_value(value, SESSION_COOKIE.as_bytes()));
    if cookie.is_some() {
        return cookie;
    }

    let authorization = headers
        .clone()
        .find(|(name, _)| name.eq_ignore_ascii_case("authorization"))?;
    bearer_token(authorization.1)
}

/// Finds the first non-empty cookie called `name` in one `Cookie` header value.
fn cookie_value<'a>(header_value: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    header_value.split(|&byte| byte == b';').find_map(|pair| {
        let pair = trim_whitespace(pair);
        let equals = pair.iter().position(|&byte| byte == b'=')?;
        let (pair_name, rest) = pair.split_at(equals);
        if pair_name != name {
            return None;
        }
        let value = rest.get(1..)?;
        let value = match value {
            [b'"', inner @ .., b'"'] => inner,
            _ => value,
        };
        (!value.is_empty()).then_some(value)
    })
}

/// Reads `Bearer <token>`: exactly two parts split on one space, the scheme in any case.
fn bearer_token(value: &[u8]) -> Option<&[u8]> {
    let mut parts = value.split(|&byte| byte == b' ');
    let scheme = parts.next()?;
    let token = parts.next()?;
    let valid = parts.next().is_none() && scheme.eq_ignore_ascii_case(b"bearer");
    (valid && !token.is_empty()).then_some(token)
}

fn trim_whitespace(mut bytes: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = bytes {
        bytes = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = bytes {
        bytes = rest;
    }
    bytes
}

/// Renders the body of a 200 whoami response for an active `aal1` session.
pub fn session_body(fields: &SessionFields<'_>) -> String {
    let session_id = json_string(&uuid_from_seed(fields.token.as_bytes()));
    let identity_id = json_string(fields.identity_id);
    let email = json_string(fields.email);
    let schema_url = json_string(&format!("{}/schemas/ZGVmYXVsdA", fields.public_url));
    let issued_at = json_string(&rfc3339_micros(fields.issued_at));
    let expires_at = json_string(&rfc3339_micros(fields.expires_at));

    let mut body = String::with_capacity(2048);
    body.push_str(&format!(
        r#"{{"id":{session_id},"active":true,"expires_at":{expires_at},"authenticated_at":{issued_at},"#
    ));
    body.push_str(&format!(
        r#""authenticator_assurance_level":"aal1","authentication_methods":[{{"method":"password","aal":"aal1","completed_at":{issued_at}}}],"#
    ));
    body.push_str(&format!(r#""issued_at":{issued_at},"#));
    body.push_str(&format!(
        r#""identity":{{"id":{identity_id},"schema_id":"default","schema_url":{schema_url},"state":"active","state_changed_at":"2025-02-01T17:03:11.208114Z","#
    ));
    body.push_str(&format!(
        r#""traits":{{"email":{email},"name":{{"first":"Ada","last":"Lovelace"}}}},"#
    ));
    body.push_str(&format!(
        r#""verifiable_addresses":[{{"id":"c47e1b90-2d3f-4a6b-8c5e-1f9a7d3b2e60","value":{email},"verified":true,"via":"email","status":"completed","verified_at":"2025-02-01T17:05:42.950311Z","created_at":"2025-02-01T17:03:11.214502Z","updated_at":"2025-02-01T17:05:42.951007Z"}}],"#
    ));
    body.push_str(&format!(
        r#""recovery_addresses":[{{"id":"5a8f3c21-9e4b-47d0-b6a2-8e1c4f7d9b35","value":{email},"via":"email","created_at":"2025-02-01T17:03:11.216830Z","updated_at":"2025-02-01T17:03:11.216830Z"}}],"#
    ));
    body.push_str(concat!(
        r#""metadata_public":{"plan":"team","roles":["editor"]},"#,
        r#""created_at":"2025-02-01T17:03:11.208114Z","updated_at":"2025-02-01T17:03:11.208114Z","organization_id":null},"#,
        r#""devices":[{"id":"e6b2d9f4-1c7a-4e38-a5f1-3d9b8c2e7a06","ip_address":"203.0.113.42","#,
        r#""user_agent":"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0","location":""}]}"#
    ));
    body
}

/// Renders the body of the 403 response to a session that needs a second factor.
pub fn aal2_required_body(public_url: &str) -> String {
    let redirect = json_string(&format!("{public_url}/self-service/login/browser?aal=aal2"));
    format!(
        concat!(
            r#"{{"error":{{"id":"session_aal2_required","code":403,"status":"Forbidden","#,
            r#""reason":"An active session was found but it does not fulfill the requested Authenticator Assurance Level. Please verify yourself with a second factor to resolve this issue.","#,
            r#""details":{{"redirect_browser_to":{redirect}}},"#,
            r#""message":"Session does not fulfill the requested Authenticator Assurance Level"}},"#,
            r#""redirect_browser_to":{redirect}}}"#
        ),
        redirect = redirect
    )
}

/// Quotes and escapes `value` as a JSON string.
fn json_string(value: &str) -> String {
    serde_json::Value::String(value.to_owned()).to_string()
}

/// Derives a UUID-shaped id (version 4 and variant bits set) from `seed` with FNV-1a, so
/// that the same token always yields the same session id.
pub fn uuid_from_seed(seed: &[u8]) -> String {
    let high = fnv1a(seed, 0xcbf2_9ce4_8422_2325);
    let low = fnv1a(seed, 0x8422_2325_cbf2_9ce4);
    let high = (high & !0xf000) | 0x4000;
    let low = (low & !(0b11 << 62)) | (0b10 << 62);
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        high >> 32,
        (high >> 16) & 0xffff,
        high & 0xffff,
        low >> 48,
        low & 0xffff_ffff_ffff
    )
}

fn fnv1a(bytes: &[u8], offset_basis: u64) -> u64 {
    bytes.iter().fold(offset_basis, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Formats `time` in UTC as RFC 3339 with microseconds, as Kratos does
/// (`2025-03-14T09:26:53.412358Z`). Times before 1970 are clamped to the epoch.
pub fn rfc3339_micros(time: SystemTime) -> String {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let seconds = since_epoch.as_secs();
    let days = seconds / 86_400;
    let second_of_day = seconds % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60,
        since_epoch.subsec_micros()
    )
}

/// Converts days since 1970-01-01 to a proleptic Gregorian (year, month, day) by counting
/// 400-year eras of 146 097 days from 0000-03-01.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Shift the epoch to 0000-03-01 so that leap days fall at the end of a year.
    let shifted = days + 719_468;
    let era = shifted / 146_097;
    let day_of_era = shifted % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}
