//! Property: parsing any bytes never panics. An accepted head is accepted by httparse with
//! the same tokens, and its canonical re-serialisation parses to the same method, target,
//! path, version, headers and body framing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::http::{RequestHead, RequestLimits};

fuzz_target!(|data: &[u8]| {
    let limits = RequestLimits::default();
    let mut head = RequestHead::new();
    let Ok(Some(head_len)) = head.parse(data, &limits) else {
        return;
    };
    assert!(head_len <= data.len());
    assert!(head_len <= limits.max_head_bytes);
    check_httparse_agrees(&data[..head_len], &head);

    let canonical = serialize(&head);
    // "name:value" becomes "name: value", so the canonical head can be a little longer.
    let relaxed = RequestLimits {
        max_head_bytes: limits.max_head_bytes * 2,
        max_header_line_bytes: limits.max_header_line_bytes * 2,
        ..limits
    };
    let mut again = RequestHead::new();
    assert_eq!(again.parse(&canonical, &relaxed), Ok(Some(canonical.len())));
    assert_eq!(again.method(), head.method());
    assert_eq!(again.method_bytes(), head.method_bytes());
    assert_eq!(again.raw_target(), head.raw_target());
    assert_eq!(again.target_form(), head.target_form());
    assert_eq!(again.path(), head.path());
    assert_eq!(again.path_info(), head.path_info());
    assert_eq!(again.query(), head.query());
    assert_eq!(again.version(), head.version());
    assert_eq!(again.host(), head.host());
    assert!(again.headers().eq(head.headers()));
    assert_eq!(again.body(), head.body());
    assert_eq!(again.keep_alive(), head.keep_alive());
    assert_eq!(again.expect_continue(), head.expect_continue());
    assert_eq!(again.upgrade(), head.upgrade());
});

/// Writes `method SP target SP version CRLF`, each header as `name: value CRLF`, and CRLF.
fn serialize(head: &RequestHead) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(head.method_bytes());
    out.push(b' ');
    out.extend_from_slice(head.raw_target());
    out.push(b' ');
    out.extend_from_slice(head.version().as_bytes());
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

fn check_httparse_agrees(bytes: &[u8], head: &RequestHead) {
    let mut headers = [httparse::EMPTY_HEADER; 100];
    let mut request = httparse::Request::new(&mut headers);
    let status = request.parse(bytes);
    assert_eq!(status, Ok(httparse::Status::Complete(bytes.len())));
    assert_eq!(request.method.map(str::as_bytes), Some(head.method_bytes()));
    assert_eq!(request.path.map(str::as_bytes), Some(head.raw_target()));
    assert_eq!(request.version, Some(head.version().as_bytes()[7] - b'0'));
    let theirs = request
        .headers
        .iter()
        .map(|header| (header.name.as_bytes(), header.value));
    assert!(theirs.eq(head.headers()));
}
