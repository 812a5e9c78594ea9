//! Measures the HTTP/1.1 parsers on the request path: request-head parse and validation
//! (a browser GET with cookies, a minimal GET, a POST with 20 headers), response-head parse,
//! chunked decoding with small and large chunks, and path normalisation. Throughput is in
//! bytes of input, so the cases compare per byte as well as per message.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

use portcullis::http::{
    normalize_path, ChunkedDecoder, ChunkedLimits, Method, RequestHead, RequestLimits,
    ResponseHead, ResponseLimits,
};

/// A Firefox navigation with a Kratos session cookie and analytics cookies, about 900 bytes.
const BROWSER_GET: &[u8] = b"GET /hello/dashboard?tab=recent&page=2 HTTP/1.1\r\n\
Host: app.example.com\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8\r\n\
Accept-Language: en-GB,en;q=0.7,fr;q=0.3\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Referer: https://app.example.com/hello/dashboard\r\n\
Connection: keep-alive\r\n\
Cookie: ory_kratos_session=MTcxNzY4NjQ4MHxEdi1CQkFFQ180SUFBUkFCRUFBQVJfLUNBQUVHYzNSeWFXNW5EQThBRFhObGMzTnBiMjVmZEc5clpXNEdjM1J5YVc1bkRDSUFJRVZHUW5kWWJETjBRVTVYT0hCUVVrSjNZMnBvWkdWNlUwbEhjblV4|3f2a1c0d9e8b7a6f5e4d3c2b1a0f9e8d; _ga=GA1.1.1234567890.1717686480; theme=dark\r\n\
Upgrade-Insecure-Requests: 1\r\n\
Sec-Fetch-Dest: document\r\n\
Sec-Fetch-Mode: navigate\r\n\
Sec-Fetch-Site: same-origin\r\n\
Sec-Fetch-User: ?1\r\n\
Priority: u=0, i\r\n\
\r\n";

/// The smallest valid HTTP/1.1 request.
const MINIMAL_GET: &[u8] = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";

/// An upstream response as a typical JSON API sends it.
const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\n\
Server: nginx/1.22.1\r\n\
Date: Tue, 04 Jun 2024 12:00:00 GMT\r\n\
Content-Type: application/json; charset=utf-8\r\n\
Content-Length: 1432\r\n\
Connection: keep-alive\r\n\
Cache-Control: private, no-cache, no-store, must-revalidate\r\n\
Vary: Accept-Encoding, Cookie\r\n\
X-Request-Id: 6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b\r\n\
Strict-Transport-Security: max-age=31536000; includeSubDomains\r\n\
\r\n";

/// Builds the head of a JSON POST with exactly 20 header fields.
fn post_with_20_headers() -> Vec<u8> {
    let mut head = b"POST /api/v1/orders HTTP/1.1\r\nHost: api.example.com\r\n\
Content-Type: application/json\r\nContent-Length: 512\r\n\
Authorization: Bearer eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJl\r\n\
Accept: application/json\r\nUser-Agent: orders-client/2.4.1\r\n"
        .to_vec();
    for i in 0..14 {
        head.extend_from_slice(format!("X-Trace-Attribute-{i}: value-{i}-0123456789abcdef\r\n").as_bytes());
    }
    head.extend_from_slice(b"\r\n");
    head
}

/// Encodes `payload_len` bytes of payload as chunks of `chunk_len` bytes, then the last
/// chunk.
fn chunked_body(payload_len: usize, chunk_len: usize) -> Vec<u8> {
    let mut body = Vec::with_capacity(payload_len + payload_len / chunk_len * 8 + 8);
    let mut left = payload_len;
    while left > 0 {
        let len = left.min(chunk_len);
        body.extend_from_slice(format!("{len:x}\r\n").as_bytes());
        body.extend(std::iter::repeat_n(b'x', len));
        body.extend_from_slice(b"\r\n");
        left -= len;
    }
    body.extend_from_slice(b"0\r\n\r\n");
    body
}

/// Decodes a whole chunked body and returns the payload length, or `None` when the body
/// is invalid or incomplete.
fn decode_all(input: &[u8]) -> Option<usize> {
    let mut decoder = ChunkedDecoder::new(ChunkedLimits::default());
    let mut pos = 0;
    let mut payload = 0;
    loop {
        let step = decoder.decode(input.get(pos..)?).ok()?;
        if let Some(data) = step.data {
            payload += data.len();
        }
        pos += step.consumed;
        if step.done {
            return Some(payload);
        }
        if step.consumed == 0 {
            return None;
        }
    }
}

fn bench_request_head(c: &mut Criterion) {
    let limits = RequestLimits::default();
    let post = post_with_20_headers();
    let cases: [(&str, &[u8]); 3] = [
        ("browser_get_cookies", BROWSER_GET),
        ("minimal_get", MINIMAL_GET),
        ("post_20_headers", &post),
    ];
    let mut group = c.benchmark_group("request_head_parse");
    for (name, input) in cases {
        // One head reused across iterations, as a keep-alive connection reuses it.
        let mut head = RequestHead::new();
        assert_eq!(head.parse(input, &limits), Ok(Some(input.len())), "{name} parses");
        group.throughput(Throughput::Bytes(input.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), input, |b, input| {
            b.iter(|| head.parse(black_box(input), &limits))
        });
    }
    group.finish();
}

fn bench_response_head(c: &mut Criterion) {
    let limits = ResponseLimits::default();
    let mut head = ResponseHead::new();
    assert_eq!(head.parse(RESPONSE, Method::Get, &limits), Ok(Some(RESPONSE.len())));
    let mut group = c.benchmark_group("response_head_parse");
    group.throughput(Throughput::Bytes(RESPONSE.len() as u64));
    group.bench_function("json_api_200", |b| {
        b.iter(|| head.parse(black_box(RESPONSE), Method::Get, &limits))
    });
    group.finish();
}

fn bench_chunked(c: &mut Criterion) {
    let mut group = c.benchmark_group("chunked_decode");
    // 64 KiB of payload either way: 16-byte chunks are framing-bound, 16 KiB chunks are
    // bound by the payload slices.
    for (name, chunk_len) in [("small_chunks_16B", 16usize), ("large_chunks_16KiB", 16 * 1024)] {
        let body = chunked_body(64 * 1024, chunk_len);
        assert_eq!(decode_all(&body), Some(64 * 1024), "{name} decodes");
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), &body, |b, body| {
            b.iter(|| decode_all(black_box(body)))
        });
    }
    group.finish();
}

fn bench_path(c: &mut Criterion) {
    let cases: [(&str, &[u8], &[u8]); 3] = [
        ("clean", b"/api/v1/users/42/orders/2024-06", b"/api/v1/users/42/orders/2024-06"),
        ("dot_segments_slashes", b"/api//v1/./users/../users/42/orders/", b"/api/v1/users/42/orders/"),
        ("percent_encoded", b"/files/%7Euser/%2e%2e/report%20final%2Fv2.pdf", b"/files/report%20final%2Fv2.pdf"),
    ];
    let mut out = Vec::with_capacity(256);
    let mut group = c.benchmark_group("path_normalize");
    for (name, raw, expected) in cases {
        assert!(normalize_path(raw, &mut out).is_ok(), "{name} normalises");
        assert_eq!(out.as_slice(), expected, "{name} result");
        group.throughput(Throughput::Bytes(raw.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), raw, |b, raw| {
            b.iter(|| normalize_path(black_box(raw), &mut out))
        });
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .measurement_time(std::time::Duration::from_secs(2))
        .warm_up_time(std::time::Duration::from_millis(500))
        .sample_size(50)
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_request_head, bench_response_head, bench_chunked, bench_path
}
criterion_main!(benches);
