//! Property: parsing any bytes never panics. An accepted head is accepted by httparse with
//! the same status, version and headers, and its canonical re-serialisation parses to the
//! same status, reason, headers and body framing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::http::{Method, ResponseHead, ResponseLimits};

fuzz_target!(|data: &[u8]| {
    // The first byte picks the request method, which decides bodiless responses.
    let Some((&selector, input)) = data.split_first() else {
        return;
    };
    let method = match selector % 3 {
        0 => Method::Get,
        1 => Method::Head,
        _ => Method::Connect,
    };

    let limits = ResponseLimits::default();
    let mut head = ResponseHead::new();
    let Ok(Some(head_len)) = head.parse(input, method, &limits) else {
        return;
    };
    assert!(head_len <= input.len());
    assert!((100..=999).contains(&head.status()));
    check_httparse_agrees(&input[..head_len], &head);

    let canonical = serialize(&head);
    let relaxed = ResponseLimits {
        max_head_bytes: limits.max_head_bytes * 2,
        ..limits
    };
    let mut again = ResponseHead::new();
    assert_eq!(
        again.parse(&canonical, method, &relaxed),
        Ok(Some(canonical.len()))
    );
    assert_eq!(again.status(), head.status());
    assert_eq!(again.reason(), head.reason());
    assert_eq!(again.version(), head.version());
    assert!(again.headers().eq(head.headers()));
    assert_eq!(again.body(), head.body());
    assert_eq!(again.keep_alive(), head.keep_alive());
});

/// Writes `version SP status SP reason CRLF`, each header as `name: value CRLF`, and CRLF.
fn serialize(head: &ResponseHead) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(head.version().as_bytes());
    out.extend_from_slice(format!(" {} ", head.status()).as_bytes());
    out.extend_from_slice(head.reason());
    out.extend_from_slice(b"\r\n");
    for (name, value) in head.headers() {
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

fn check_httparse_agrees(bytes: &[u8], head: &ResponseHead) {
    let mut headers = [httparse::EMPTY_HEADER; 100];
    let mut response = httparse::Response::new(&mut headers);
    let status = response.parse(bytes);
    assert_eq!(status, Ok(httparse::Status::Complete(bytes.len())));
    assert_eq!(response.code, Some(head.status()));
    assert_eq!(response.version, Some(head.version().as_bytes()[7] - b'0'));
    let theirs = response
        .headers
        .iter()
        .map(|header| (header.name.as_bytes(), header.value));
    assert!(theirs.eq(head.headers()));
}
