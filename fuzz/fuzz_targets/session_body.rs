//! Property: turning any whoami answer into a session never panics, and an accepted
//! session always has a non-empty subject. The input is a JSON path for the subject, a
//! newline, then the body of a 200 answer; an invalid path falls back to `identity.id`.
#![no_main]

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use portcullis::access::json::JsonPath;
use portcullis::access::session::{session_from_response, SubResponse};

fuzz_target!(|data: &[u8]| {
    let (path, body) = match data.iter().position(|&b| b == b'\n') {
        Some(newline) => (&data[..newline], &data[newline + 1..]),
        None => (&b""[..], data),
    };
    let fallback = || JsonPath::parse("identity.id").expect("identity.id is a valid path");
    let subject_from = std::str::from_utf8(path)
        .ok()
        .and_then(|text| JsonPath::parse(text).ok())
        .unwrap_or_else(fallback);
    let extra_from = JsonPath::parse("@this").expect("@this is a valid path");
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);

    let answer = Ok(SubResponse { status: 200, body: Bytes::copy_from_slice(body), ..SubResponse::default() });
    if let Ok(session) = session_from_response(&answer, &subject_from, &extra_from, now) {
        assert!(!session.subject.is_empty(), "accepted session without a subject");
        if let Some(expiry) = session.expires_at {
            assert!(expiry > now, "accepted an expired session");
        }
    }
});
