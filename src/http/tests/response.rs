use crate::http::{
    FramingError, Method, ResponseBody, ResponseError, ResponseHead, ResponseLimits, SyntaxError,
    Version, MAX_HEADERS_CAP,
};

fn parse(input: &[u8], method: Method) -> Result<Option<usize>, ResponseError> {
    ResponseHead::new().parse(input, method, &ResponseLimits::default())
}

fn parse_ok(input: &[u8], method: Method) -> ResponseHead {
    let mut head = ResponseHead::new();
    let result = head.parse(input, method, &ResponseLimits::default());
    assert_eq!(
        result,
        Ok(Some(input.len())),
        "input: {:?}",
        String::from_utf8_lossy(input)
    );
    head
}

/// (name, input, request method, body framing, keep-alive)
#[rustfmt::skip]
fn accepted_cases() -> Vec<(&'static str, &'static [u8], Method, ResponseBody, bool)> {
    use Method as M;
    use ResponseBody as B;
    vec![
        ("content-length", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", M::Get, B::Length(5), true),
        ("zero content-length", b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", M::Get, B::Length(0), true),
        ("chunked", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", M::Get, B::Chunked, true),
        ("gzip then chunked", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", M::Get, B::Chunked, true),
        ("gzip alone", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", M::Get, B::CloseDelimited, false),
        ("chunked then gzip", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", M::Get, B::CloseDelimited, false),
        ("no framing", b"HTTP/1.1 200 OK\r\n\r\n", M::Get, B::CloseDelimited, false),
        ("204", b"HTTP/1.1 204 No Content\r\n\r\n", M::Get, B::None, true),
        ("204 with framing ignored", b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", M::Get, B::None, true),
        ("304 with content-length", b"HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n", M::Get, B::None, true),
        ("100 continue", b"HTTP/1.1 100 Continue\r\n\r\n", M::Post, B::None, true),
        ("101 switching", b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", M::Get, B::None, true),
        ("head with content-length", b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n", M::Head, B::None, true),
        ("head with invalid content-length", b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n", M::Head, B::None, true),
        ("connect 200", b"HTTP/1.1 200 Connection Established\r\n\r\n", M::Connect, B::None, true),
        ("connect 407", b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 2\r\n\r\n", M::Connect, B::Length(2), true),
        ("close", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\n", M::Get, B::Length(5), false),
        ("http/1.0", b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\n", M::Get, B::Length(5), false),
        ("http/1.0 keep-alive", b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\n", M::Get, B::Length(5), true),
        ("empty reason", b"HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n", M::Get, B::Length(0), true),
        ("no reason", b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", M::Get, B::Length(0), true),
        ("status 999", b"HTTP/1.1 999 Odd\r\nContent-Length: 0\r\n\r\n", M::Get, B::Length(0), true),
        ("reason obs-text", b"HTTP/1.1 200 O\xc3\x89\tK\r\nContent-Length: 0\r\n\r\n", M::Get, B::Length(0), true),
        ("leading empty line", b"\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", M::Get, B::Length(0), true),
    ]
}

#[test]
fn accepted_responses_table() {
    for (name, input, method, body, keep_alive) in accepted_cases() {
        let head = parse_ok(input, method);
        assert_eq!(head.body(), body, "case: {name}");
        assert_eq!(head.keep_alive(), keep_alive, "case: {name}");
    }
}

#[test]
fn accepted_response_prefixes_need_more() {
    for (name, input, method, _, _) in accepted_cases() {
        for end in 0..input.len() {
            assert_eq!(
                parse(&input[..end], method),
                Ok(None),
                "case: {name}, prefix {end}"
            );
        }
    }
}

#[test]
fn accepted_responses_agree_with_httparse() {
    for (name, input, method, _, _) in accepted_cases() {
        let head = parse_ok(input, method);
        let mut headers = [httparse::EMPTY_HEADER; 128];
        let mut response = httparse::Response::new(&mut headers);
        let status = response
            .parse(input)
            .expect("httparse rejected an accepted head");
        assert_eq!(
            status,
            httparse::Status::Complete(input.len()),
            "case: {name}"
        );
        assert_eq!(response.code, Some(head.status()), "case: {name}");
        let minor = match head.version() {
            Version::Http10 => 0,
            Version::Http11 => 1,
        };
        assert_eq!(response.version, Some(minor), "case: {name}");
        let theirs: Vec<(&[u8], &[u8])> = response
            .headers
            .iter()
            .map(|header| (header.name.as_bytes(), header.value))
            .collect();
        let ours: Vec<(&[u8], &[u8])> = head.headers().collect();
        assert_eq!(ours, theirs, "case: {name}");
    }
}

/// (name, input, error)
#[rustfmt::skip]
fn rejected_cases() -> Vec<(&'static str, &'static [u8], ResponseError)> {
    use FramingError as F;
    use ResponseError as R;
    use SyntaxError as S;
    vec![
        ("cl and te", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", R::Framing(F::ContentLengthWithTransferEncoding)),
        ("te and cl", b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 5\r\n\r\n", R::Framing(F::ContentLengthWithTransferEncoding)),
        ("two cl", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", R::Framing(F::DuplicateContentLength)),
        ("cl list", b"HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n", R::Framing(F::DuplicateContentLength)),
        ("cl invalid", b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n", R::Framing(F::InvalidContentLength)),
        ("cl plus", b"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n", R::Framing(F::InvalidContentLength)),
        ("te in http/1.0", b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", R::Framing(F::TransferEncodingInHttp10)),
        ("chunked twice", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", R::Framing(F::ChunkedRepeated)),
        ("te empty element", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip,,chunked\r\n\r\n", R::Framing(F::InvalidTransferEncoding)),
        ("status two digits", b"HTTP/1.1 99 OK\r\n\r\n", R::InvalidStatusCode),
        ("status leading zero", b"HTTP/1.1 099 OK\r\n\r\n", R::InvalidStatusCode),
        ("status four digits", b"HTTP/1.1 1000 OK\r\n\r\n", R::InvalidStatusCode),
        ("status letters", b"HTTP/1.1 abc OK\r\n\r\n", R::InvalidStatusCode),
        ("status double space", b"HTTP/1.1  200 OK\r\n\r\n", R::InvalidStatusCode),
        ("status tab", b"HTTP/1.1 200\tOK\r\n\r\n", R::InvalidStatusCode),
        ("version 2.0", b"HTTP/2.0 200 OK\r\n\r\n", R::UnsupportedVersion { major: 2, minor: 0 }),
        ("version lower-case", b"http/1.1 200 OK\r\n\r\n", R::InvalidVersion),
        ("version only", b"HTTP/1.1\r\n\r\n", R::InvalidStatusLine),
        ("reason nul", b"HTTP/1.1 200 O\x00K\r\n\r\n", R::InvalidReason { byte: 0 }),
        ("reason del", b"HTTP/1.1 200 O\x7fK\r\n\r\n", R::InvalidReason { byte: 0x7f }),
        ("bare lf status line", b"HTTP/1.1 200 OK\n\r\n", R::Syntax(S::BareLf)),
        ("bare lf final line", b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\n", R::Syntax(S::BareLf)),
        ("bare cr in value", b"HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n", R::Syntax(S::BareCr)),
        ("nul in value", b"HTTP/1.1 200 OK\r\nX: a\x00b\r\n\r\n", R::Syntax(S::InvalidHeaderValue { byte: 0 })),
        ("obs-fold", b"HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", R::Syntax(S::ObsFold)),
        ("space before colon", b"HTTP/1.1 200 OK\r\nX : a\r\n\r\n", R::Syntax(S::InvalidHeaderName { byte: b' ' })),
        ("empty name", b"HTTP/1.1 200 OK\r\n: a\r\n\r\n", R::Syntax(S::EmptyHeaderName)),
        ("connection non-token", b"HTTP/1.1 200 OK\r\nConnection: a b\r\n\r\n", R::InvalidConnection),
    ]
}

#[test]
fn rejected_responses_table() {
    for (name, input, expected) in rejected_cases() {
        assert_eq!(parse(input, Method::Get), Err(expected), "case: {name}");
    }
}

#[test]
fn rejected_response_prefixes_need_more_or_same_error() {
    for (name, input, expected) in rejected_cases() {
        for end in 0..input.len() {
            let result = parse(&input[..end], Method::Get);
            assert!(
                result == Ok(None) || result == Err(expected),
                "case: {name}, prefix of {end} bytes: {result:?}"
            );
        }
    }
}

#[test]
fn status_line_fields() {
    let head = parse_ok(
        b"HTTP/1.0 404 Not Found\r\nX-A: 1\r\nx-a: 2\r\n\r\n",
        Method::Get,
    );
    assert_eq!(head.status(), 404);
    assert_eq!(head.reason(), b"Not Found");
    assert_eq!(head.version(), Version::Http10);
    assert_eq!(head.header(b"X-a"), Some(&b"1"[..]));
    let headers: Vec<(&[u8], &[u8])> = head.headers().collect();
    let expected: Vec<(&[u8], &[u8])> = vec![(b"X-A", b"1"), (b"x-a", b"2")];
    assert_eq!(headers, expected);
}

#[test]
fn empty_reasons() {
    let head = parse_ok(b"HTTP/1.1 200\r\n\r\n", Method::Get);
    assert_eq!(head.reason(), b"");
    let head = parse_ok(b"HTTP/1.1 200 \r\n\r\n", Method::Get);
    assert_eq!(head.reason(), b"");
}

#[test]
fn body_follows_head() {
    let input = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
    let mut head = ResponseHead::new();
    let result = head.parse(input, Method::Get, &ResponseLimits::default());
    assert_eq!(result, Ok(Some(input.len() - 5)));
}

#[test]
fn connection_tokens_listed() {
    let head = parse_ok(
        b"HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Hop\r\nContent-Length: 0\r\n\r\n",
        Method::Get,
    );
    let tokens: Vec<&[u8]> = head.connection_tokens().collect();
    let expected: Vec<&[u8]> = vec![b"X-Hop"];
    assert_eq!(tokens, expected);
}

#[test]
fn response_limits() {
    let limits = ResponseLimits {
        max_head_bytes: 40,
        max_headers: 2,
    };
    let mut head = ResponseHead::new();
    let at_limit = b"HTTP/1.1 200 OK\r\nA: 1\r\nB: 1234567890\r\n\r\n";
    assert_eq!(at_limit.len(), 40);
    assert_eq!(head.parse(at_limit, Method::Get, &limits), Ok(Some(40)));

    let over = b"HTTP/1.1 200 OK\r\nA: 1\r\nB: 12345678901\r\n\r\n";
    assert_eq!(
        head.parse(over, Method::Get, &limits),
        Err(ResponseError::HeadTooLarge { limit: 40 })
    );
    assert_eq!(
        head.parse(&over[..40], Method::Get, &limits),
        Err(ResponseError::HeadTooLarge { limit: 40 })
    );
    assert_eq!(
        head.parse(
            b"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n",
            Method::Get,
            &limits
        ),
        Err(ResponseError::TooManyHeaders { limit: 2 })
    );
}

#[test]
fn obs_text_reason_kept() {
    // httparse returns an empty reason when it holds obs-text; the scanner's span is kept.
    let head = parse_ok(b"HTTP/1.1 200 \xc3\x89t\xc3\xa9\r\n\r\n", Method::Get);
    assert_eq!(head.reason(), "\u{c9}t\u{e9}".as_bytes());
}

#[test]
fn header_count_capped_by_tokenizer_array() {
    let limits = ResponseLimits {
        max_head_bytes: 64 * 1024,
        max_headers: 1000,
    };
    let head_with = |count: usize| -> Vec<u8> {
        let fields: String = (0..count).map(|i| format!("X-{i}: v\r\n")).collect();
        format!("HTTP/1.1 204 No Content\r\n{fields}\r\n").into_bytes()
    };
    let mut head = ResponseHead::new();
    let at_cap = head_with(MAX_HEADERS_CAP);
    assert_eq!(
        head.parse(&at_cap, Method::Get, &limits),
        Ok(Some(at_cap.len()))
    );
    assert_eq!(head.headers().count(), MAX_HEADERS_CAP);
    let over_cap = head_with(MAX_HEADERS_CAP + 1);
    assert_eq!(
        head.parse(&over_cap, Method::Get, &limits),
        Err(ResponseError::TooManyHeaders {
            limit: MAX_HEADERS_CAP
        })
    );
}

#[test]
fn failed_parse_clears_head() {
    let mut head = ResponseHead::new();
    let limits = ResponseLimits::default();
    let first = head.parse(b"HTTP/1.1 200 OK\r\nX: 1\r\n\r\n", Method::Get, &limits);
    assert_eq!(first, Ok(Some(25)));
    let second = head.parse(
        b"HTTP/1.1 500 Oops\r\nX: \x00\r\n\r\n",
        Method::Get,
        &limits,
    );
    assert!(second.is_err());
    assert_eq!(head.status(), 0);
    assert_eq!(head.reason(), b"");
    assert_eq!(head.header(b"x"), None);
}
