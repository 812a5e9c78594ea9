//! Serialising the heads the gateway sends: the request to the upstream and the response to
//! the client. Heads are always rebuilt from parsed fields, never copied as raw bytes, so the
//! peer sees exactly what the gateway validated: one framing, no hop-by-hop header, and no
//! client copy of a header the gateway owns.

use std::io::Write as _;
use std::net::IpAddr;

use bytes::{BufMut, BytesMut};

use crate::access::rules::is_owned_header;
use crate::http::{RequestHead, ResponseHead};

/// Hop-by-hop headers (RFC 9110 section 7.6.1) plus the framing headers the gateway
/// recomputes. `Expect` is answered by the gateway itself, and `Proxy-Authorization` is
/// meant for the proxy, so neither is forwarded.
const NOT_FORWARDED: &[&[u8]] = &[
    b"connection",
    b"keep-alive",
    b"proxy-connection",
    b"te",
    b"trailer",
    b"transfer-encoding",
    b"upgrade",
    b"content-length",
    b"host",
    b"expect",
    b"proxy-authorization",
    // Headers that some frameworks (IIS URL Rewrite, Symfony, Rails, Express middleware)
    // use to override the request line: the rules matched the real path and method, so the
    // upstream must not be told another one.
    b"x-original-url",
    b"x-rewrite-url",
    b"x-http-method-override",
    b"x-http-method",
    b"x-method-override",
];

/// Forwarding headers that are replaced unless the peer is a trusted proxy.
const FORWARDING: &[&[u8]] = &[
    b"x-forwarded-for",
    b"x-forwarded-proto",
    b"x-forwarded-host",
    b"x-forwarded-port",
    b"x-forwarded-prefix",
    b"x-real-ip",
    b"forwarded",
    b"true-client-ip",
    b"x-client-ip",
    b"x-cluster-client-ip",
];

/// Returns whether `name` is in `list` (lower-case names) or folds onto one of them when
/// `_` and `.` are read as `-`. Some backends (CGI, WSGI, nginx with
/// `underscores_in_headers`) fold such aliases onto the real name, so an alias of a framing,
/// hop-by-hop or forwarding header is dropped as the header itself would be.
fn listed(list: &[&[u8]], name: &[u8]) -> bool {
    list.iter().any(|item| {
        item.len() == name.len()
            && item.iter().zip(name).all(|(&expected, &byte)| {
                let folded = match byte {
                    b'_' | b'.' => b'-',
                    other => other.to_ascii_lowercase(),
                };
                expected == folded
            })
    })
}

/// How a body is framed on the wire the gateway writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutFraming {
    None,
    Length(u64),
    Chunked,
    /// Ends when the connection closes (HTTP/1.0 clients only).
    UntilClose,
}

/// What the upstream request is built from.
pub struct ForwardRequest<'a> {
    pub head: &'a RequestHead,
    pub path: &'a [u8],
    pub query: Option<&'a [u8]>,
    /// `Host` sent upstream.
    pub host: &'a [u8],
    /// The client's host, for `X-Forwarded-Host`.
    pub client_host: &'a [u8],
    pub scheme: &'a str,
    pub peer_ip: IpAddr,
    pub local_port: u16,
    /// The peer is a trusted proxy: keep and extend its `X-Forwarded-*` headers.
    pub trusted_peer: bool,
    /// Normalised names of headers that mutators own.
    pub owned: &'a [Vec<u8>],
    pub headers: &'a [(String, String)],
    pub cookies: &'a [(String, String)],
    pub framing: OutFraming,
}

/// Writes the request head sent upstream (always HTTP/1.1).
pub fn write_request_head(out: &mut BytesMut, request: &ForwardRequest<'_>) {
    let head = request.head;
    out.reserve(512);
    out.put_slice(head.method_bytes());
    out.put_u8(b' ');
    out.put_slice(request.path);
    if let Some(query) = request.query {
        out.put_u8(b'?');
        out.put_slice(query);
    }
    out.put_slice(b" HTTP/1.1\r\nHost: ");
    out.put_slice(request.host);
    out.put_slice(b"\r\n");

    let mut forwarded_for: Option<&[u8]> = None;
    let mut forwarded_proto: Option<&[u8]> = None;
    let mut forwarded_host: Option<&[u8]> = None;
    for (name, value) in head.headers() {
        if listed(NOT_FORWARDED, name) {
            continue;
        }
        if head.connection_tokens().any(|token| token.eq_ignore_ascii_case(name)) {
            continue;
        }
        if is_owned_header(request.owned, name) {
            continue;
        }
        if !request.cookies.is_empty() && name.eq_ignore_ascii_case(b"cookie") {
            continue;
        }
        if listed(FORWARDING, name) {
            // Only the exact names pass from a trusted proxy; aliases are always dropped.
            let exact = FORWARDING.iter().any(|item| item.eq_ignore_ascii_case(name));
            if request.trusted_peer && exact {
                if name.eq_ignore_ascii_case(b"x-forwarded-for") && forwarded_for.is_none() {
                    forwarded_for = Some(value);
                    continue;
                }
                if name.eq_ignore_ascii_case(b"x-forwarded-proto") && forwarded_proto.is_none() {
                    forwarded_proto = Some(value);
                    continue;
                }
                if name.eq_ignore_ascii_case(b"x-forwarded-host") && forwarded_host.is_none() {
                    forwarded_host = Some(value);
                    continue;
                }
                if name.eq_ignore_ascii_case(b"x-real-ip") {
                    continue;
                }
                put_header(out, name, value);
            }
            continue;
        }
        put_header(out, name, value);
    }

    out.put_slice(b"X-Forwarded-For: ");
    if let Some(previous) = forwarded_for {
        out.put_slice(previous);
        out.put_slice(b", ");
    }
    let _ = write!(out.writer_ref(), "{}", request.peer_ip);
    out.put_slice(b"\r\nX-Forwarded-Proto: ");
    out.put_slice(forwarded_proto.unwrap_or(request.scheme.as_bytes()));
    out.put_slice(b"\r\nX-Forwarded-Host: ");
    out.put_slice(forwarded_host.unwrap_or(request.client_host));
    let _ = write!(out.writer_ref(), "\r\nX-Forwarded-Port: {}\r\nX-Real-IP: {}\r\n", request.local_port, request.peer_ip);

    for (name, value) in request.headers {
        put_header(out, name.as_bytes(), value.as_bytes());
    }
    if !request.cookies.is_empty() {
        write_merged_cookie(out, head, request.cookies);
    }
    match request.framing {
        OutFraming::None => {}
        OutFraming::Length(length) => {
            let _ = write!(out.writer_ref(), "Content-Length: {length}\r\n");
        }
        OutFraming::Chunked | OutFraming::UntilClose => out.put_slice(b"Transfer-Encoding: chunked\r\n"),
    }
    out.put_slice(b"\r\n");
}

/// One `Cookie` header: the client's cookies minus those the mutator sets, then the
/// mutator's cookies.
fn write_merged_cookie(out: &mut BytesMut, head: &RequestHead, cookies: &[(String, String)]) {
    out.put_slice(b"Cookie: ");
    let mut first = true;
    for (name, value) in crate::access::pipeline::cookies(head) {
        // PHP and some other frameworks read `user.id`, `user id` and `user[id` as
        // `user_id`, so every spelling that folds onto a mutator's cookie is dropped.
        if cookies.iter().any(|(own, _)| same_cookie_name(own.as_bytes(), name)) {
            continue;
        }
        if !first {
            out.put_slice(b"; ");
        }
        first = false;
        out.put_slice(name);
        out.put_u8(b'=');
        out.put_slice(value);
    }
    for (name, value) in cookies {
        if !first {
            out.put_slice(b"; ");
        }
        first = false;
        out.put_slice(name.as_bytes());
        out.put_u8(b'=');
        out.put_slice(value.as_bytes());
    }
    out.put_slice(b"\r\n");
}

fn put_header(out: &mut BytesMut, name: &[u8], value: &[u8]) {
    out.put_slice(name);
    out.put_slice(b": ");
    out.put_slice(value);
    out.put_slice(b"\r\n");
}

/// Writes the response head sent to the client.
pub fn write_response_head(
    out: &mut BytesMut,
    response: &ResponseHead,
    framing: OutFraming,
    close: bool,
    announce_keep_alive: bool,
    set_cookies: &[String],
) {
    out.reserve(512);
    let _ = write!(out.writer_ref(), "HTTP/1.1 {} ", response.status());
    out.put_slice(response.reason());
    out.put_slice(b"\r\n");
    // A response to HEAD and a 304 keep the Content-Length that describes the representation.
    // A 204 must not carry one (RFC 9110, section 8.6), and other framing is recomputed below.
    let keeps_length = framing == OutFraming::None && response.status() != 204;
    for (name, value) in response.headers() {
        let framing_header = name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"transfer-encoding");
        if framing_header && !(keeps_length && name.eq_ignore_ascii_case(b"content-length")) {
            continue;
        }
        if !framing_header && listed(NOT_FORWARDED, name) {
            continue;
        }
        if response.connection_tokens().any(|token| token.eq_ignore_ascii_case(name)) {
            continue;
        }
        put_header(out, name, value);
    }
    for cookie in set_cookies {
        put_header(out, b"Set-Cookie", cookie.as_bytes());
    }
    match framing {
        OutFraming::None | OutFraming::UntilClose => {}
        OutFraming::Length(length) => {
            let _ = write!(out.writer_ref(), "Content-Length: {length}\r\n");
        }
        OutFraming::Chunked => out.put_slice(b"Transfer-Encoding: chunked\r\n"),
    }
    if close {
        out.put_slice(b"Connection: close\r\n");
    } else if announce_keep_alive {
        out.put_slice(b"Connection: keep-alive\r\n");
    }
    out.put_slice(b"\r\n");
}

/// Writes an interim (1xx) response head for the client: its status line and end-to-end
/// fields, without framing or connection-specific ones.
pub fn write_interim_head(out: &mut BytesMut, response: &ResponseHead) {
    out.reserve(256);
    let _ = write!(out.writer_ref(), "HTTP/1.1 {} ", response.status());
    out.put_slice(response.reason());
    out.put_slice(b"\r\n");
    for (name, value) in response.headers() {
        let framing_header = name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"transfer-encoding");
        if framing_header || listed(NOT_FORWARDED, name) {
            continue;
        }
        if response.connection_tokens().any(|token| token.eq_ignore_ascii_case(name)) {
            continue;
        }
        put_header(out, name, value);
    }
    out.put_slice(b"\r\n");
}

/// `BytesMut` as an `io::Write`, for `write!` of numbers without a temporary string.
trait WriterRef {
    fn writer_ref(&mut self) -> BytesWriter<'_>;
}

impl WriterRef for BytesMut {
    fn writer_ref(&mut self) -> BytesWriter<'_> {
        BytesWriter(self)
    }
}

struct BytesWriter<'a>(&'a mut BytesMut);

impl std::io::Write for BytesWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.put_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Compares cookie names case-insensitively, reading `.`, space and `[` as `_`.
fn same_cookie_name(a: &[u8], b: &[u8]) -> bool {
    let fold = |byte: u8| match byte {
        b'.' | b' ' | b'[' => b'_',
        other => other.to_ascii_lowercase(),
    };
    a.len() == b.len() && a.iter().zip(b).all(|(&x, &y)| fold(x) == fold(y))
}
