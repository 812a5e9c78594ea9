use crate::http::{
    FramingError, Method, PathError, RequestBody, RequestError, RequestHead, RequestLimits,
    SyntaxError, TargetForm, TokenizerError, TokenizerMismatch, Version, MAX_HEADERS_CAP,
};

fn parse(input: &[u8]) -> Result<Option<usize>, RequestError> {
    RequestHead::new().parse(input, &RequestLimits::default())
}

fn parse_ok(input: &[u8]) -> RequestHead {
    let mut head = RequestHead::new();
    let result = head.parse(input, &RequestLimits::default());
    assert_eq!(
        result,
        Ok(Some(input.len())),
        "input: {:?}",
        String::from_utf8_lossy(input)
    );
    head
}

/// Builds `GET / HTTP/1.1` with Host and the given extra field lines.
fn get_with(fields: &str) -> Vec<u8> {
    format!("GET / HTTP/1.1\r\nHost: example.com\r\n{fields}\r\n").into_bytes()
}

/// Requests that must be rejected, with the error each must produce.
#[rustfmt::skip]
fn rejected_cases() -> Vec<(&'static str, Vec<u8>, RequestError)> {
    use FramingError as F;
    use RequestError as R;
    use SyntaxError as S;
    let raw = |bytes: &[u8]| bytes.to_vec();
    vec![
        // Line endings (RFC 9112 section 2.2).
        ("bare lf after request line", raw(b"GET / HTTP/1.1\nHost: a\r\n\r\n"), R::Syntax(S::BareLf)),
        ("bare lf after field line", raw(b"GET / HTTP/1.1\r\nHost: a\n\r\n"), R::Syntax(S::BareLf)),
        ("bare lf as final line", raw(b"GET / HTTP/1.1\r\nHost: a\r\n\n"), R::Syntax(S::BareLf)),
        ("bare lf inside value", raw(b"GET / HTTP/1.1\r\nHost: a\r\nX: a\nb\r\n\r\n"), R::Syntax(S::BareLf)),
        ("bare lf only line endings", raw(b"GET / HTTP/1.1\nHost: a\n\n"), R::Syntax(S::BareLf)),
        ("bare lf before request line", raw(b"\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), R::Syntax(S::BareLf)),
        ("bare lf in leading empty lines", raw(b"\r\n\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), R::Syntax(S::BareLf)),
        ("bare cr inside value", raw(b"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n"), R::Syntax(S::BareCr)),
        ("bare cr in request line", raw(b"GET /\r HTTP/1.1\r\nHost: a\r\n\r\n"), R::Syntax(S::BareCr)),
        ("bare cr before request line", raw(b"\r\rGET / HTTP/1.1\r\nHost: a\r\n\r\n"), R::Syntax(S::BareCr)),
        ("cr cr lf line ending", raw(b"GET / HTTP/1.1\r\r\nHost: a\r\n\r\n"), R::Syntax(S::BareCr)),
        ("five leading empty lines", raw(b"\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), R::Syntax(S::TooManyLeadingEmptyLines)),
        // Request line (RFC 9112 section 3).
        ("double space before target", raw(b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n"), R::InvalidRequestLine),
        ("double space before version", raw(b"GET /  HTTP/1.1\r\nHost: a\r\n\r\n"), R::InvalidVersion),
        ("trailing space after version", raw(b"GET / HTTP/1.1 \r\nHost: a\r\n\r\n"), R::InvalidVersion),
        ("tab as separator", raw(b"GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n"), R::InvalidRequestLine),
        ("tab before version", raw(b"GET /\tHTTP/1.1\r\nHost: a\r\n\r\n"), R::InvalidRequestLine),
        ("leading space", raw(b" GET / HTTP/1.1\r\nHost: a\r\n\r\n"), R::InvalidRequestLine),
        ("http/0.9 request line", raw(b"GET /\r\n\r\n"), R::InvalidRequestLine),
        ("version missing", raw(b"GET / \r\nHost: a\r\n\r\n"), R::InvalidVersion),
        ("method with at sign", raw(b"G@T / HTTP/1.1\r\nHost: a\r\n\r\n"), R::InvalidMethod { byte: b'@' }),
        ("method with high byte", raw(b"G\xc3\x89T / HTTP/1.1\r\nHost: a\r\n\r\n"), R::InvalidMethod { byte: 0xc3 }),
        ("version 1.2", raw(b"GET / HTTP/1.2\r\nHost: a\r\n\r\n"), R::UnsupportedVersion { major: 1, minor: 2 }),
        ("version 2.0", raw(b"GET / HTTP/2.0\r\nHost: a\r\n\r\n"), R::UnsupportedVersion { major: 2, minor: 0 }),
        ("version 0.9", raw(b"GET / HTTP/0.9\r\nHost: a\r\n\r\n"), R::UnsupportedVersion { major: 0, minor: 9 }),
        ("lower-case version", raw(b"GET / http/1.1\r\nHost: a\r\n\r\n"), R::InvalidVersion),
        ("version 1.10", raw(b"GET / HTTP/1.10\r\nHost: a\r\n\r\n"), R::InvalidVersion),
        ("version without minor", raw(b"GET / HTTP/1\r\nHost: a\r\n\r\n"), R::InvalidVersion),
        ("version garbage", raw(b"GET / HTTX/1.1\r\nHost: a\r\n\r\n"), R::InvalidVersion),
        // Target bytes (RFC 3986 section 2).
        ("fragment in target", raw(b"GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n"), R::InvalidTargetByte { byte: b'#' }),
        ("high byte in target", raw(b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n"), R::InvalidTargetByte { byte: 0xc3 }),
        ("backslash in target", raw(b"GET /a\\b HTTP/1.1\r\nHost: a\r\n\r\n"), R::InvalidTargetByte { byte: b'\\' }),
        ("quote in target", raw(b"GET /a\"b HTTP/1.1\r\nHost: a\r\n\r\n"), R::InvalidTargetByte { byte: b'"' }),
        ("angle in target", raw(b"GET /<a> HTTP/1.1\r\nHost: a\r\n\r\n"), R::InvalidTargetByte { byte: b'<' }),
        ("brace in target", raw(b"GET /{a HTTP/1.1\r\nHost: a\r\n\r\n"), R::InvalidTargetByte { byte: b'{' }),
        ("pipe in target", raw(b"GET /a|b HTTP/1.1\r\nHost: a\r\n\r\n"), R::InvalidTargetByte { byte: b'|' }),
        ("caret in target", raw(b"GET /a^b HTTP/1.1\r\nHost: a\r\n\r\n"), R::InvalidTargetByte { byte: b'^' }),
        ("backtick in target", raw(b"GET /a`b HTTP/1.1\r\nHost: a\r\n\r\n"), R::InvalidTargetByte { byte: b'`' }),
        ("del in target", raw(b"GET /a\x7fb HTTP/1.1\r\nHost: a\r\n\r\n"), R::InvalidTargetByte { byte: 0x7f }),
        ("ctl in target", raw(b"GET /a\x01b HTTP/1.1\r\nHost: a\r\n\r\n"), R::InvalidTargetByte { byte: 0x01 }),
        ("nul in target", raw(b"GET /a\x00b HTTP/1.1\r\nHost: a\r\n\r\n"), R::InvalidTargetByte { byte: 0x00 }),
        ("tab in target", raw(b"GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n"), R::InvalidTargetByte { byte: b'\t' }),
        // Target forms (RFC 9112 section 3.2).
        ("asterisk with get", raw(b"GET * HTTP/1.1\r\nHost: a\r\n\r\n"), R::AsteriskFormWithoutOptions),
        ("authority form with get", raw(b"GET example.com:80 HTTP/1.1\r\nHost: a\r\n\r\n"), R::AuthorityFormWithoutConnect),
        ("connect with origin form", raw(b"CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n"), R::ConnectWithoutAuthorityForm),
        ("connect without port", raw(b"CONNECT example.com HTTP/1.1\r\nHost: a\r\n\r\n"), R::ConnectWithoutAuthorityForm),
        ("connect with absolute form", raw(b"CONNECT http://a/ HTTP/1.1\r\nHost: a\r\n\r\n"), R::ConnectWithoutAuthorityForm),
        ("connect with asterisk", raw(b"CONNECT * HTTP/1.1\r\nHost: a\r\n\r\n"), R::ConnectWithoutAuthorityForm),
        ("ftp scheme", raw(b"GET ftp://a/ HTTP/1.1\r\nHost: a\r\n\r\n"), R::InvalidTarget),
        ("relative target", raw(b"GET foo HTTP/1.1\r\nHost: a\r\n\r\n"), R::InvalidTarget),
        ("asterisk with query", raw(b"OPTIONS *?a HTTP/1.1\r\nHost: a\r\n\r\n"), R::InvalidTarget),
        ("absolute with userinfo", raw(b"GET http://user@a/ HTTP/1.1\r\nHost: a\r\n\r\n"), R::InvalidAuthority),
        ("absolute with empty authority", raw(b"GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n"), R::InvalidAuthority),
        ("absolute with bad port", raw(b"GET http://a:99999/ HTTP/1.1\r\nHost: a\r\n\r\n"), R::InvalidAuthority),
        ("absolute host mismatch", raw(b"GET http://a/ HTTP/1.1\r\nHost: b\r\n\r\n"), R::HostMismatch),
        ("absolute port mismatch", raw(b"GET http://a:8080/ HTTP/1.1\r\nHost: a\r\n\r\n"), R::HostMismatch),
        ("absolute without host", raw(b"GET http://a/ HTTP/1.1\r\n\r\n"), R::MissingHost),
        // Paths rejected by the normaliser.
        ("path above root", raw(b"GET /a/../../b HTTP/1.1\r\nHost: a\r\n\r\n"), R::InvalidPath(PathError::AboveRoot)),
        ("path invalid escape", raw(b"GET /%zz HTTP/1.1\r\nHost: a\r\n\r\n"), R::InvalidPath(PathError::InvalidPercentEncoding)),
        ("path encoded nul", raw(b"GET /%00 HTTP/1.1\r\nHost: a\r\n\r\n"), R::InvalidPath(PathError::EncodedNul)),
        ("path encoded backslash", raw(b"GET /a%5cb HTTP/1.1\r\nHost: a\r\n\r\n"), R::InvalidPath(PathError::Backslash)),
        ("path dotdot parameter", raw(b"GET /public/..;/admin HTTP/1.1\r\nHost: a\r\n\r\n"), R::InvalidPath(PathError::ParameterOnDotSegment)),
        ("absolute path above root", raw(b"GET http://a/.. HTTP/1.1\r\nHost: a\r\n\r\n"), R::InvalidPath(PathError::AboveRoot)),
        // Field lines (RFC 9112 section 5).
        ("obs-fold", raw(b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n"), R::Syntax(S::ObsFold)),
        ("obs-fold with tab", raw(b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n\tb\r\n\r\n"), R::Syntax(S::ObsFold)),
        ("space before first header", raw(b"GET / HTTP/1.1\r\n Host: a\r\n\r\n"), R::Syntax(S::ObsFold)),
        ("space before colon", raw(b"GET / HTTP/1.1\r\nHost : a\r\n\r\n"), R::Syntax(S::InvalidHeaderName { byte: b' ' })),
        ("tab before colon", raw(b"GET / HTTP/1.1\r\nHost\t: a\r\n\r\n"), R::Syntax(S::InvalidHeaderName { byte: b'\t' })),
        ("empty header name", raw(b"GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n"), R::Syntax(S::EmptyHeaderName)),
        ("header without colon", raw(b"GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n"), R::Syntax(S::MissingColon)),
        ("header with space no colon", raw(b"GET / HTTP/1.1\r\nHost: a\r\nX b\r\n\r\n"), R::Syntax(S::InvalidHeaderName { byte: b' ' })),
        ("nul in header name", raw(b"GET / HTTP/1.1\r\nHost: a\r\nX\x00Y: b\r\n\r\n"), R::Syntax(S::InvalidHeaderName { byte: 0 })),
        ("paren in header name", raw(b"GET / HTTP/1.1\r\nHost: a\r\nX(Y): b\r\n\r\n"), R::Syntax(S::InvalidHeaderName { byte: b'(' })),
        ("high byte in header name", raw(b"GET / HTTP/1.1\r\nHost: a\r\nX\x80: b\r\n\r\n"), R::Syntax(S::InvalidHeaderName { byte: 0x80 })),
        ("nul in header value", raw(b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n"), R::Syntax(S::InvalidHeaderValue { byte: 0 })),
        ("del in header value", raw(b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x7fb\r\n\r\n"), R::Syntax(S::InvalidHeaderValue { byte: 0x7f })),
        ("vertical tab in header value", raw(b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x0bb\r\n\r\n"), R::Syntax(S::InvalidHeaderValue { byte: 0x0b })),
        ("escape in header value", raw(b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x1bb\r\n\r\n"), R::Syntax(S::InvalidHeaderValue { byte: 0x1b })),
        // Host (RFC 9112 section 3.2).
        ("missing host", raw(b"GET / HTTP/1.1\r\n\r\n"), R::MissingHost),
        ("two host headers", raw(b"GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n"), R::DuplicateHost),
        ("two host headers in http/1.0", raw(b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n"), R::DuplicateHost),
        ("host list", raw(b"GET / HTTP/1.1\r\nHost: a, b\r\n\r\n"), R::InvalidHost),
        ("empty host", raw(b"GET / HTTP/1.1\r\nHost:\r\n\r\n"), R::InvalidHost),
        ("host port too large", raw(b"GET / HTTP/1.1\r\nHost: a:65536\r\n\r\n"), R::InvalidHost),
        ("host port six digits", raw(b"GET / HTTP/1.1\r\nHost: a:000080\r\n\r\n"), R::InvalidHost),
        ("host empty port", raw(b"GET / HTTP/1.1\r\nHost: a:\r\n\r\n"), R::InvalidHost),
        ("host negative port", raw(b"GET / HTTP/1.1\r\nHost: a:-1\r\n\r\n"), R::InvalidHost),
        ("host two ports", raw(b"GET / HTTP/1.1\r\nHost: a:80:80\r\n\r\n"), R::InvalidHost),
        ("host only port", raw(b"GET / HTTP/1.1\r\nHost: :80\r\n\r\n"), R::InvalidHost),
        ("host unclosed ipv6", raw(b"GET / HTTP/1.1\r\nHost: [::1\r\n\r\n"), R::InvalidHost),
        ("host ipv6 with zone", raw(b"GET / HTTP/1.1\r\nHost: [fe80::1%25eth0]\r\n\r\n"), R::InvalidHost),
        ("host ipv6 garbage", raw(b"GET / HTTP/1.1\r\nHost: [not-ipv6]\r\n\r\n"), R::InvalidHost),
        ("host ipv6 trailing bytes", raw(b"GET / HTTP/1.1\r\nHost: [::1]x\r\n\r\n"), R::InvalidHost),
        ("host with space", raw(b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n"), R::InvalidHost),
        ("host with userinfo", raw(b"GET / HTTP/1.1\r\nHost: user@a\r\n\r\n"), R::InvalidHost),
        ("host with path", raw(b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"), R::InvalidHost),
        ("host percent-encoded", raw(b"GET / HTTP/1.1\r\nHost: %61\r\n\r\n"), R::InvalidHost),
        // Content-Length and Transfer-Encoding (RFC 9112 section 6).
        ("cl then te", raw(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"), R::Framing(F::ContentLengthWithTransferEncoding)),
        ("te then cl", raw(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"), R::Framing(F::ContentLengthWithTransferEncoding)),
        ("cl and te lower case", raw(b"POST / HTTP/1.1\r\nHost: a\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n"), R::Framing(F::ContentLengthWithTransferEncoding)),
        ("cl and te mixed case", raw(b"POST / HTTP/1.1\r\nHost: a\r\nCONTENT-LENGTH: 5\r\nTrAnSfEr-EnCoDiNg: CHUNKED\r\n\r\n"), R::Framing(F::ContentLengthWithTransferEncoding)),
        ("cl and te in http/1.0", raw(b"POST / HTTP/1.0\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"), R::Framing(F::ContentLengthWithTransferEncoding)),
        ("two different cl", raw(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"), R::Framing(F::DuplicateContentLength)),
        ("two identical cl", raw(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"), R::Framing(F::DuplicateContentLength)),
        ("cl list identical", raw(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n"), R::Framing(F::DuplicateContentLength)),
        ("cl list different", raw(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,6\r\n\r\n"), R::Framing(F::DuplicateContentLength)),
        ("cl trailing comma", raw(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,\r\n\r\n"), R::Framing(F::DuplicateContentLength)),
        ("cl plus sign", raw(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n"), R::Framing(F::InvalidContentLength)),
        ("cl negative", raw(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n"), R::Framing(F::InvalidContentLength)),
        ("cl hex", raw(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n"), R::Framing(F::InvalidContentLength)),
        ("cl inner space", raw(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5 5\r\n\r\n"), R::Framing(F::InvalidContentLength)),
        ("cl inner tab", raw(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\t5\r\n\r\n"), R::Framing(F::InvalidContentLength)),
        ("cl empty", raw(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n"), R::Framing(F::InvalidContentLength)),
        ("cl above 2^62", raw(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4611686018427387905\r\n\r\n"), R::Framing(F::InvalidContentLength)),
        ("cl above 2^64", raw(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551617\r\n\r\n"), R::Framing(F::InvalidContentLength)),
        ("cl decimal point", raw(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5.0\r\n\r\n"), R::Framing(F::InvalidContentLength)),
        ("te in http/1.0", raw(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), R::Framing(F::TransferEncodingInHttp10)),
        ("te chunked then identity", raw(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n"), R::Framing(F::ChunkedNotFinal)),
        ("te identity", raw(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n"), R::Framing(F::ChunkedNotFinal)),
        ("te gzip alone", raw(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n"), R::Framing(F::ChunkedNotFinal)),
        ("te xchunked", raw(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n"), R::Framing(F::ChunkedNotFinal)),
        ("te chunkedx", raw(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunkedx\r\n\r\n"), R::Framing(F::ChunkedNotFinal)),
        ("te chunked then gzip", raw(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"), R::Framing(F::ChunkedNotFinal)),
        ("te gzip then chunked", raw(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"), R::Framing(F::UnsupportedTransferCoding)),
        ("te gzip and chunked fields", raw(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"), R::Framing(F::UnsupportedTransferCoding)),
        ("te unknown then chunked", raw(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: foo, chunked\r\n\r\n"), R::Framing(F::UnsupportedTransferCoding)),
        ("te chunked twice", raw(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"), R::Framing(F::ChunkedRepeated)),
        ("te chunked in two fields", raw(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"), R::Framing(F::ChunkedRepeated)),
        ("te vertical tab", raw(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\x0b\r\n\r\n"), R::Syntax(S::InvalidHeaderValue { byte: 0x0b })),
        ("te form feed", raw(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \x0cchunked\r\n\r\n"), R::Syntax(S::InvalidHeaderValue { byte: 0x0c })),
        ("te high byte", raw(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\xff\r\n\r\n"), R::Framing(F::InvalidTransferEncoding)),
        ("te obs-fold", raw(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n"), R::Syntax(S::ObsFold)),
        ("te as folded first header", raw(b"POST / HTTP/1.1\r\n Transfer-Encoding: chunked\r\nHost: a\r\n\r\n"), R::Syntax(S::ObsFold)),
        ("te space before colon", raw(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n"), R::Syntax(S::InvalidHeaderName { byte: b' ' })),
        ("te empty", raw(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n"), R::Framing(F::InvalidTransferEncoding)),
        ("te leading comma", raw(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ,chunked\r\n\r\n"), R::Framing(F::InvalidTransferEncoding)),
        ("te trailing comma", raw(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked,\r\n\r\n"), R::Framing(F::InvalidTransferEncoding)),
        ("te with parameter", raw(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;q=1\r\n\r\n"), R::Framing(F::InvalidTransferEncoding)),
        ("te quoted", raw(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \"chunked\"\r\n\r\n"), R::Framing(F::InvalidTransferEncoding)),
        ("te inner space", raw(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chun ked\r\n\r\n"), R::Framing(F::InvalidTransferEncoding)),
        // Expect (RFC 9110 section 10.1.1).
        ("expect unknown", raw(b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n"), R::UnsupportedExpectation),
        ("expect continue suffix", raw(b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continuex\r\n\r\n"), R::UnsupportedExpectation),
        ("expect mixed list", raw(b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue, foo\r\n\r\n"), R::UnsupportedExpectation),
        // Connection (RFC 9110 section 7.6.1).
        ("connection lists content-length", raw(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close, Content-Length\r\n\r\n"), R::ProtectedConnectionOption),
        ("connection lists transfer-encoding", raw(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: transfer-encoding\r\n\r\n"), R::ProtectedConnectionOption),
        ("connection lists host", raw(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: HOST\r\n\r\n"), R::ProtectedConnectionOption),
        ("connection non-token", raw(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: a b\r\n\r\n"), R::InvalidConnection),
    ]
}

#[test]
fn rejected_requests_table() {
    for (name, input, expected) in rejected_cases() {
        assert_eq!(parse(&input), Err(expected), "case: {name}");
    }
}

#[test]
fn rejected_request_prefixes_need_more_or_same_error() {
    for (name, input, expected) in rejected_cases() {
        for end in 0..input.len() {
            let result = parse(&input[..end]);
            assert!(
                result == Ok(None) || result == Err(expected),
                "case: {name}, prefix of {end} bytes: {result:?}"
            );
        }
    }
}

#[test]
fn error_statuses() {
    let cases = [
        (RequestError::Syntax(SyntaxError::BareLf), 400),
        (RequestError::InvalidRequestLine, 400),
        (RequestError::HostMismatch, 400),
        (RequestError::UriTooLong { limit: 1 }, 414),
        (RequestError::HeaderLineTooLong { limit: 1 }, 431),
        (RequestError::HeadTooLarge { limit: 1 }, 431),
        (RequestError::TooManyHeaders { limit: 1 }, 431),
        (RequestError::UnsupportedVersion { major: 2, minor: 0 }, 505),
        (RequestError::UnsupportedExpectation, 417),
        (
            RequestError::Framing(FramingError::UnsupportedTransferCoding),
            501,
        ),
        (RequestError::Framing(FramingError::ChunkedNotFinal), 400),
        (
            RequestError::Framing(FramingError::ContentLengthWithTransferEncoding),
            400,
        ),
        (RequestError::InvalidPath(PathError::AboveRoot), 400),
    ];
    for (error, status) in cases {
        assert_eq!(error.status(), status, "error: {error:?}");
    }
}

#[test]
fn error_reasons_are_distinct() {
    use FramingError as F;
    use RequestError as R;
    use SyntaxError as S;
    // One value of every variant whose reason differs, nested variants included.
    let errors = [
        R::Syntax(S::BareLf),
        R::Syntax(S::BareCr),
        R::Syntax(S::TooManyLeadingEmptyLines),
        R::Syntax(S::ObsFold),
        R::Syntax(S::EmptyHeaderName),
        R::Syntax(S::InvalidHeaderName { byte: 0 }),
        R::Syntax(S::MissingColon),
        R::Syntax(S::InvalidHeaderValue { byte: 0 }),
        R::UriTooLong { limit: 1 },
        R::HeaderLineTooLong { limit: 1 },
        R::HeadTooLarge { limit: 1 },
        R::TooManyHeaders { limit: 1 },
        R::InvalidRequestLine,
        R::InvalidMethod { byte: 0 },
        R::InvalidTargetByte { byte: 0 },
        R::InvalidVersion,
        R::UnsupportedVersion { major: 2, minor: 0 },
        R::InvalidTarget,
        R::AsteriskFormWithoutOptions,
        R::AuthorityFormWithoutConnect,
        R::ConnectWithoutAuthorityForm,
        R::InvalidAuthority,
        R::InvalidPath(PathError::AboveRoot),
        R::MissingHost,
        R::DuplicateHost,
        R::InvalidHost,
        R::HostMismatch,
        R::Framing(F::ContentLengthWithTransferEncoding),
        R::Framing(F::DuplicateContentLength),
        R::Framing(F::InvalidContentLength),
        R::Framing(F::TransferEncodingInHttp10),
        R::Framing(F::InvalidTransferEncoding),
        R::Framing(F::ChunkedRepeated),
        R::Framing(F::ChunkedNotFinal),
        R::Framing(F::UnsupportedTransferCoding),
        R::UnsupportedExpectation,
        R::InvalidConnection,
        R::ProtectedConnectionOption,
        R::Tokenizer(TokenizerError::Mismatch(TokenizerMismatch::Fields)),
    ];
    let mut reasons: Vec<&str> = errors.iter().map(RequestError::reason).collect();
    reasons.sort_unstable();
    reasons.dedup();
    assert_eq!(reasons.len(), errors.len());
}

/// Requests that must be accepted; the differential and prefix tests run over them.
#[rustfmt::skip]
fn accepted_cases() -> Vec<Vec<u8>> {
    let raw = |bytes: &[u8]| bytes.to_vec();
    vec![
        raw(b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"),
        raw(b"\r\nGET / HTTP/1.1\r\nHost: example.com\r\n\r\n"),
        raw(b"\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: example.com\r\n\r\n"),
        raw(b"GET / HTTP/1.0\r\n\r\n"),
        raw(b"POST /a/b?x=1&y=%2 HTTP/1.1\r\nHost: a:8080\r\nContent-Length: 5\r\n\r\n"),
        raw(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"),
        raw(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:  CHUNKED \r\n\r\n"),
        raw(b"GET http://Example.com:8080/a/../b?x HTTP/1.1\r\nHost: example.COM:8080\r\n\r\n"),
        raw(b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"),
        raw(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"),
        raw(b"CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\n\r\n"),
        raw(b"PROPFIND /dav HTTP/1.1\r\nHost: a\r\nDepth: 1\r\n\r\n"),
        raw(b"GET / HTTP/1.1\r\nHost: a\r\nX-Obs: caf\xc3\xa9\xff\r\nX-Empty:\r\nX-Tab:\ta\tb\t\r\n\r\n"),
        raw(b"GET /a/%2e%2E/x?q=%2e HTTP/1.1\r\nHost: a\r\n\r\n"),
        raw(b"GET /a%2fb HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: 100-continue\r\n\r\n"),
        raw(b"GET /chat HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, X-Foo\r\nUpgrade: websocket\r\n\r\n"),
    ]
}

#[test]
fn accepted_requests_parse_whole() {
    for input in accepted_cases() {
        parse_ok(&input);
    }
}

#[test]
fn accepted_request_prefixes_need_more() {
    for input in accepted_cases() {
        for end in 0..input.len() {
            assert_eq!(
                parse(&input[..end]),
                Ok(None),
                "input: {:?}, prefix of {end} bytes",
                String::from_utf8_lossy(&input)
            );
        }
    }
}

/// Every head accepted here must be accepted by httparse with the same tokens, so the
/// strict checks only ever narrow what httparse reads.
#[test]
fn accepted_requests_agree_with_httparse() {
    for input in accepted_cases() {
        let head = parse_ok(&input);
        let mut headers = [httparse::EMPTY_HEADER; 128];
        let mut request = httparse::Request::new(&mut headers);
        let status = request
            .parse(&input)
            .expect("httparse rejected an accepted head");
        assert_eq!(status, httparse::Status::Complete(input.len()));
        assert_eq!(request.method.map(str::as_bytes), Some(head.method_bytes()));
        assert_eq!(request.path.map(str::as_bytes), Some(head.raw_target()));
        let minor = match head.version() {
            Version::Http10 => 0,
            Version::Http11 => 1,
        };
        assert_eq!(request.version, Some(minor));
        let theirs: Vec<(&[u8], &[u8])> = request
            .headers
            .iter()
            .map(|header| (header.name.as_bytes(), header.value))
            .collect();
        let ours: Vec<(&[u8], &[u8])> = head.headers().collect();
        assert_eq!(ours, theirs);
    }
}

#[test]
fn simple_get_fields() {
    let input = b"GET /a/b?c=d HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\nbody";
    let mut head = RequestHead::new();
    let result = head.parse(input, &RequestLimits::default());
    assert_eq!(result, Ok(Some(input.len() - 4)));
    assert_eq!(head.method(), Method::Get);
    assert_eq!(head.method_bytes(), b"GET");
    assert_eq!(head.version(), Version::Http11);
    assert_eq!(head.target_form(), TargetForm::Origin);
    assert_eq!(head.raw_target(), b"/a/b?c=d");
    assert_eq!(head.path(), b"/a/b");
    assert_eq!(head.query(), Some(&b"c=d"[..]));
    assert_eq!(head.host(), Some(&b"example.com"[..]));
    assert_eq!(head.header_count(), 2);
    assert_eq!(head.body(), RequestBody::None);
    assert!(head.keep_alive());
    assert!(!head.expect_continue());
    assert_eq!(head.upgrade(), None);
    assert_eq!(head.connection_tokens().count(), 0);
}

#[test]
fn leading_empty_lines_count_in_head_length() {
    let input = b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
    let head = parse_ok(input);
    assert_eq!(head.method_bytes(), b"GET");
    assert_eq!(head.raw_target(), b"/");
}

#[test]
fn headers_keep_order_and_names() {
    let input = b"GET / HTTP/1.1\r\nHost: a\r\nX-One: 1\r\nx-one: 2\r\nX-Two:  two words \t\r\nX-Empty:\r\n\r\n";
    let head = parse_ok(input);
    let headers: Vec<(&[u8], &[u8])> = head.headers().collect();
    let expected: Vec<(&[u8], &[u8])> = vec![
        (b"Host", b"a"),
        (b"X-One", b"1"),
        (b"x-one", b"2"),
        (b"X-Two", b"two words"),
        (b"X-Empty", b""),
    ];
    assert_eq!(headers, expected);
    assert_eq!(head.header(b"X-ONE"), Some(&b"1"[..]));
    assert_eq!(head.header(b"x-two"), Some(&b"two words"[..]));
    assert_eq!(head.header(b"missing"), None);
    assert_eq!(head.header_count(), 5);
}

#[test]
fn header_value_allows_obs_text_and_tab() {
    let head = parse_ok(&get_with("X-Name: caf\u{e9}\tau lait\r\n"));
    assert_eq!(
        head.header(b"x-name"),
        Some("caf\u{e9}\tau lait".as_bytes())
    );
}

#[test]
fn methods_map_to_variants() {
    let cases: [(&[u8], Method); 11] = [
        (b"GET", Method::Get),
        (b"HEAD", Method::Head),
        (b"POST", Method::Post),
        (b"PUT", Method::Put),
        (b"DELETE", Method::Delete),
        (b"PATCH", Method::Patch),
        (b"OPTIONS", Method::Options),
        (b"TRACE", Method::Trace),
        (b"PROPFIND", Method::Other),
        (b"get", Method::Other),
        (b"M-SEARCH", Method::Other),
    ];
    for (method, expected) in cases {
        let mut input = method.to_vec();
        input.extend_from_slice(b" / HTTP/1.1\r\nHost: a\r\n\r\n");
        let head = parse_ok(&input);
        assert_eq!(
            head.method(),
            expected,
            "method {:?}",
            String::from_utf8_lossy(method)
        );
        assert_eq!(head.method_bytes(), method);
    }
}

#[test]
fn absolute_form_uses_authority() {
    let input =
        b"GET http://Example.com:8080/a/../b?x=%2e HTTP/1.1\r\nHost: example.COM:8080\r\n\r\n";
    let head = parse_ok(input);
    assert_eq!(head.target_form(), TargetForm::Absolute);
    assert_eq!(head.path(), b"/b");
    assert_eq!(head.query(), Some(&b"x=%2e"[..]));
    assert_eq!(head.host(), Some(&b"Example.com:8080"[..]));
}

#[test]
fn absolute_form_empty_path_is_root() {
    let head = parse_ok(b"GET HTTPS://a?q HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(head.target_form(), TargetForm::Absolute);
    assert_eq!(head.path(), b"/");
    assert_eq!(head.query(), Some(&b"q"[..]));

    let head = parse_ok(b"GET http://a HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(head.path(), b"/");
    assert_eq!(head.query(), None);
}

#[test]
fn absolute_form_without_host_in_http10() {
    let head = parse_ok(b"GET http://a/x HTTP/1.0\r\n\r\n");
    assert_eq!(head.host(), Some(&b"a"[..]));
    assert_eq!(head.path(), b"/x");
}

#[test]
fn asterisk_form_with_options() {
    let head = parse_ok(b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(head.target_form(), TargetForm::Asterisk);
    assert_eq!(head.path(), b"*");
    assert_eq!(head.query(), None);
}

#[test]
fn authority_form_with_connect() {
    let head = parse_ok(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
    assert_eq!(head.method(), Method::Connect);
    assert_eq!(head.target_form(), TargetForm::Authority);
    assert_eq!(head.path(), b"");
    assert_eq!(head.raw_target(), b"example.com:443");
    assert_eq!(head.host(), Some(&b"example.com:443"[..]));
}

#[test]
fn valid_host_values() {
    let hosts = [
        "a",
        "example.com",
        "EXAMPLE.com.",
        "a-b.c_d~e",
        "a:0",
        "a:65535",
        "a:00080",
        "127.0.0.1",
        "127.0.0.1:8080",
        "999.1.1.1",
        "[::1]",
        "[::1]:8080",
        "[2001:db8::ff00:42:8329]",
        "[::ffff:192.0.2.1]:443",
    ];
    for host in hosts {
        let head = parse_ok(format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes());
        assert_eq!(head.host(), Some(host.as_bytes()), "host {host}");
    }
}

#[test]
fn http10_without_host() {
    let head = parse_ok(b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(head.version(), Version::Http10);
    assert_eq!(head.host(), None);
    assert!(!head.keep_alive());
}

#[test]
fn keep_alive_rules() {
    let cases: [(&[u8], bool); 9] = [
        (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", true),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
            false,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Close\r\n\r\n",
            false,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: x-foo, close\r\n\r\n",
            false,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: x-foo\r\nConnection: close\r\n\r\n",
            false,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n",
            true,
        ),
        (b"GET / HTTP/1.0\r\n\r\n", false),
        (b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true),
        (
            b"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n",
            false,
        ),
    ];
    for (input, expected) in cases {
        let head = parse_ok(input);
        assert_eq!(
            head.keep_alive(),
            expected,
            "input {:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn body_framing() {
    let cases: [(&[u8], RequestBody); 11] = [
        (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", RequestBody::None),
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n",
            RequestBody::Length(5),
        ),
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
            RequestBody::Length(0),
        ),
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 005\r\n\r\n",
            RequestBody::Length(5),
        ),
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length:  7 \t\r\n\r\n",
            RequestBody::Length(7),
        ),
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4611686018427387904\r\n\r\n",
            RequestBody::Length(1 << 62),
        ),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n",
            RequestBody::Length(3),
        ),
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
            RequestBody::Chunked,
        ),
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n",
            RequestBody::Chunked,
        ),
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:  chunked\t\r\n\r\n",
            RequestBody::Chunked,
        ),
        (
            b"POST / HTTP/1.0\r\nContent-Length: 2\r\n\r\n",
            RequestBody::Length(2),
        ),
    ];
    for (input, expected) in cases {
        let head = parse_ok(input);
        assert_eq!(
            head.body(),
            expected,
            "input {:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn expect_continue_rules() {
    let cases: [(&[u8], bool); 5] = [
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n",
            true,
        ),
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\n\r\n",
            true,
        ),
        (b"POST / HTTP/1.1\r\nHost: a\r\nExpect:\r\n\r\n", false),
        (b"POST / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n", false),
        (b"POST / HTTP/1.1\r\nHost: a\r\n\r\n", false),
    ];
    for (input, expected) in cases {
        let head = parse_ok(input);
        assert_eq!(
            head.expect_continue(),
            expected,
            "input {:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn upgrade_needs_connection_option() {
    let head = parse_ok(&get_with("Connection: Upgrade\r\nUpgrade: websocket\r\n"));
    assert_eq!(head.upgrade(), Some(&b"websocket"[..]));

    let head = parse_ok(&get_with("Upgrade: websocket\r\n"));
    assert_eq!(head.upgrade(), None);

    let head = parse_ok(&get_with("Connection: upgrade\r\n"));
    assert_eq!(head.upgrade(), None);

    let head = parse_ok(b"GET / HTTP/1.0\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n");
    assert_eq!(head.upgrade(), None);
}

#[test]
fn connection_tokens_skip_close_and_keep_alive() {
    let head = parse_ok(&get_with(
        "Connection: close, X-Foo, , keep-alive\r\nConnection: x-bar,Upgrade\r\n",
    ));
    let tokens: Vec<&[u8]> = head.connection_tokens().collect();
    let expected: Vec<&[u8]> = vec![b"X-Foo", b"x-bar", b"Upgrade"];
    assert_eq!(tokens, expected);
}

#[test]
fn path_normalised_and_query_raw() {
    let head = parse_ok(b"GET //a/./b/../c%2fd%7e?%2e%2E/../ HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(head.path(), b"/a/c%2Fd~");
    assert!(head.path_info().encoded_slash);
    assert_eq!(head.query(), Some(&b"%2e%2E/../"[..]));
    assert_eq!(head.raw_target(), b"//a/./b/../c%2fd%7e?%2e%2E/../");
}

#[test]
fn empty_query_is_some() {
    let head = parse_ok(b"GET /a? HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(head.query(), Some(&b""[..]));
    assert_eq!(head.path(), b"/a");
}

#[test]
fn request_line_limit() {
    let limits = RequestLimits::default();
    let target = "/".repeat(limits.max_request_line_bytes - "GET  HTTP/1.1".len());
    let at_limit = format!("GET {target} HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(parse(at_limit.as_bytes()), Ok(Some(at_limit.len())));

    let over = format!("GET {target}/ HTTP/1.1\r\nHost: a\r\n\r\n");
    let expected = Err(RequestError::UriTooLong {
        limit: limits.max_request_line_bytes,
    });
    assert_eq!(parse(over.as_bytes()), expected);
    assert_eq!(expected.map_err(|error| error.status()), Err(414));

    // A request line that has not ended yet is rejected once it is too long.
    let unfinished = format!("GET /{}", "a".repeat(9 * 1024));
    assert_eq!(parse(unfinished.as_bytes()), expected);
}

#[test]
fn header_line_limit() {
    let limits = RequestLimits::default();
    let value = "v".repeat(limits.max_header_line_bytes - "X: ".len());
    let at_limit = get_with(&format!("X: {value}\r\n"));
    assert_eq!(parse(&at_limit), Ok(Some(at_limit.len())));

    let expected = Err(RequestError::HeaderLineTooLong {
        limit: limits.max_header_line_bytes,
    });
    let over = get_with(&format!("X: {value}v\r\n"));
    assert_eq!(parse(&over), expected);

    let unfinished = format!("GET / HTTP/1.1\r\nHost: a\r\nX: {}", "v".repeat(9 * 1024));
    assert_eq!(parse(unfinished.as_bytes()), expected);
}

#[test]
fn head_size_limit() {
    let limits = RequestLimits::default();
    let start = "GET / HTTP/1.1\r\nHost: a\r\n";
    let filler_line = |len: usize| format!("X: {}\r\n", "v".repeat(len - "X: \r\n".len()));
    // Fill up to exactly max_head_bytes with 1000-byte lines and one shorter line.
    let mut head = start.to_string();
    while limits.max_head_bytes - head.len() - 2 > 1000 {
        head.push_str(&filler_line(1000));
    }
    let rest = limits.max_head_bytes - head.len() - 2;
    head.push_str(&filler_line(rest));
    head.push_str("\r\n");
    assert_eq!(head.len(), limits.max_head_bytes);
    assert_eq!(parse(head.as_bytes()), Ok(Some(head.len())));

    let expected = Err(RequestError::HeadTooLarge {
        limit: limits.max_head_bytes,
    });
    let over = head.replacen("X: v", "X: vv", 1);
    assert_eq!(parse(over.as_bytes()), expected);

    // 40 KiB of field lines without the final empty line is rejected before it ends.
    let unfinished = format!("{start}{}", filler_line(1000).repeat(40));
    assert_eq!(parse(unfinished.as_bytes()), expected);
    assert_eq!(expected.map_err(|error| error.status()), Err(431));
}

#[test]
fn header_count_limit() {
    let limits = RequestLimits::default();
    let fields = |count: usize| -> String { (1..count).map(|i| format!("X-{i}: v\r\n")).collect() };
    let at_limit = get_with(&fields(limits.max_headers));
    assert_eq!(parse(&at_limit), Ok(Some(at_limit.len())));

    let expected = Err(RequestError::TooManyHeaders {
        limit: limits.max_headers,
    });
    let over = get_with(&fields(limits.max_headers + 1));
    assert_eq!(parse(&over), expected);

    // The 101st field line is rejected as soon as its first byte arrives.
    let mut unfinished = format!(
        "GET / HTTP/1.1\r\nHost: a\r\n{}",
        fields(limits.max_headers)
    );
    assert_eq!(parse(unfinished.as_bytes()), Ok(None));
    unfinished.push('X');
    assert_eq!(parse(unfinished.as_bytes()), expected);
}

#[test]
fn header_count_capped_by_tokenizer_array() {
    let limits = RequestLimits {
        max_headers: 1000,
        max_head_bytes: 64 * 1024,
        ..RequestLimits::default()
    };
    let fields = |count: usize| -> String { (1..count).map(|i| format!("X-{i}: v\r\n")).collect() };
    let at_cap = get_with(&fields(MAX_HEADERS_CAP));
    let mut head = RequestHead::new();
    assert_eq!(head.parse(&at_cap, &limits), Ok(Some(at_cap.len())));
    assert_eq!(head.header_count(), MAX_HEADERS_CAP);

    let over_cap = get_with(&fields(MAX_HEADERS_CAP + 1));
    let result = head.parse(&over_cap, &limits);
    assert_eq!(
        result,
        Err(RequestError::TooManyHeaders {
            limit: MAX_HEADERS_CAP
        })
    );
    assert_eq!(result.map_err(|error| error.status()), Err(431));
}

#[test]
fn tokenizer_error_is_400() {
    let error = RequestError::Tokenizer(TokenizerError::Rejected(httparse::Error::Token));
    assert_eq!(error.status(), 400);
    assert_eq!(error.reason(), "tokenizer_rejected");
}

#[test]
fn custom_limits_apply() {
    let limits = RequestLimits {
        max_head_bytes: 64,
        max_request_line_bytes: 20,
        max_header_line_bytes: 10,
        max_headers: 2,
    };
    let mut head = RequestHead::new();
    assert_eq!(
        head.parse(b"GET /0123456789abcdef HTTP/1.1\r\n", &limits),
        Err(RequestError::UriTooLong { limit: 20 })
    );
    assert_eq!(
        head.parse(b"GET / HTTP/1.1\r\nHost: a\r\nX: 12345678\r\n", &limits),
        Err(RequestError::HeaderLineTooLong { limit: 10 })
    );
    assert_eq!(
        head.parse(
            b"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\nY: 2\r\n\r\n",
            &limits
        ),
        Err(RequestError::TooManyHeaders { limit: 2 })
    );
    let long_head = b"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n\r\n";
    assert_eq!(
        head.parse(
            long_head,
            &RequestLimits {
                max_head_bytes: long_head.len() - 1,
                ..limits
            }
        ),
        Err(RequestError::HeadTooLarge {
            limit: long_head.len() - 1
        })
    );
    assert_eq!(
        head.parse(
            long_head,
            &RequestLimits {
                max_head_bytes: long_head.len(),
                ..limits
            }
        ),
        Ok(Some(long_head.len()))
    );
}

#[test]
fn failed_parse_clears_head() {
    let mut head = RequestHead::new();
    let limits = RequestLimits::default();
    assert_eq!(
        head.parse(b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n", &limits),
        Ok(Some(28))
    );
    assert_eq!(
        head.parse(b"GET /y HTTP/1.1\r\nHost: a\r\n", &limits),
        Ok(None)
    );
    assert_eq!(head.raw_target(), b"");
    assert_eq!(head.path(), b"");
    assert_eq!(head.header_count(), 0);
    assert_eq!(head.host(), None);
    assert!(!head.keep_alive());
}

#[test]
fn pipelined_requests_parse_in_turn() {
    let input = b"GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: b\r\n\r\n";
    let mut head = RequestHead::new();
    let limits = RequestLimits::default();
    let first = head.parse(input, &limits);
    assert_eq!(first, Ok(Some(28)));
    assert_eq!(head.path(), b"/a");
    let second = head.parse(&input[28..], &limits);
    assert_eq!(second, Ok(Some(28)));
    assert_eq!(head.path(), b"/b");
    assert_eq!(head.host(), Some(&b"b"[..]));
}
