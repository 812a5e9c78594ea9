//! The llhttp test corpus, converted by `tests/corpus/convert_llhttp.py`: every request case
//! is sent to the real gateway and every response case goes through `ResponseHead::parse`
//! and the chunked decoder. The verdict (accept, reject, incomplete) must equal the one
//! the table expects, which is llhttp's strict verdict except for the deliberate
//! differences that the script lists with their reasons.

mod support;

use std::net::Shutdown;
use std::time::Duration;

use portcullis::http::{ChunkedDecoder, ChunkedLimits, Method, ResponseBody, ResponseHead, ResponseLimits};
use support::table::{unescape, TableGateway};
use support::{Client, ClientError};

/// Statuses the gateway sends when it rejects the bytes of a request rather than the
/// request's meaning: syntax, framing, limits, CONNECT, versions and codings.
const REJECT_STATUSES: &[u16] = &[400, 405, 413, 414, 417, 431, 501, 505];

/// Every URL is anonymous, so that a request body is always read and checked.
const OPEN_RULES: &str = r#"
[[rules]]
id = "everything"
match = { url = "<.*>", methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "PURGE", "SEARCH", "LINK", "UNLINK", "REPORT", "MKCOL", "PROPFIND", "QUERY"] }
authenticators = [{ handler = "anonymous" }]
authorizer = { handler = "allow" }
mutators = [{ handler = "noop" }]
"#;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Accept,
    Reject,
    Incomplete,
    /// No error in the bytes given, but no complete answer either: the gateway closed
    /// without a response after the client's half-close, or the parser needs more bytes.
    /// It agrees with both `Accept` (llhttp also accepts a prefix without error) and
    /// `Incomplete`.
    Pending,
}

impl Verdict {
    fn agrees_with(self, expected: Verdict) -> bool {
        self == expected || (self == Verdict::Pending && matches!(expected, Verdict::Accept | Verdict::Incomplete))
    }
}

impl Verdict {
    fn parse(text: &str) -> Verdict {
        match text {
            "accept" => Verdict::Accept,
            "reject" => Verdict::Reject,
            "incomplete" => Verdict::Incomplete,
            other => panic!("unknown verdict {other:?}"),
        }
    }
}

struct Case {
    id: String,
    expected: Verdict,
    reason: String,
    method: Method,
    bytes: Vec<u8>,
}

fn load(text: &str) -> Vec<Case> {
    text.lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            let [id, _llhttp, expected, reason, method, bytes] = fields[..] else {
                panic!("malformed row: {line}");
            };
            Case {
                id: id.to_owned(),
                expected: Verdict::parse(expected),
                reason: reason.to_owned(),
                method: Method::from_bytes(method.as_bytes()),
                bytes: unescape(bytes).unwrap_or_else(|error| panic!("{id}: {error}")),
            }
        })
        .collect()
}

/// Adds `Host` after every request line whose head has none: llhttp does not require it,
/// the gateway does (RFC 9112 section 3.2), and without it every HTTP/1.1 case would only
/// test that rule. The value is the authority of an absolute-form target, else a fixed
/// name. A request line is any line of three space-separated parts that ends in
/// `HTTP/x.y`; body lines that look like one get a Host too, which changes nothing that
/// matters here.
fn with_host(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 64);
    let mut pos = 0;
    while pos < bytes.len() {
        let Some(length) = bytes[pos..].windows(2).position(|pair| pair == b"\r\n") else {
            out.extend_from_slice(&bytes[pos..]);
            break;
        };
        let line = &bytes[pos..pos + length];
        out.extend_from_slice(&bytes[pos..pos + length + 2]);
        pos += length + 2;
        if let Some(authority) = request_line_authority(line) {
            let head_end = bytes[pos..].windows(4).position(|quad| quad == b"\r\n\r\n").map_or(bytes.len(), |end| pos + end + 2);
            let head = String::from_utf8_lossy(&bytes[pos.min(head_end)..head_end]).to_ascii_lowercase();
            if !head.starts_with("host:") && !head.contains("\r\nhost:") {
                out.extend_from_slice(format!("Host: {authority}\r\n").as_bytes());
            }
        }
    }
    out
}

/// Returns the Host value to add after `line` when it is a request line.
fn request_line_authority(line: &[u8]) -> Option<String> {
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || method.is_empty() || !version.starts_with("HTTP/") {
        return None;
    }
    let lower = target.to_ascii_lowercase();
    let authority = ["http://", "https://"]
        .iter()
        .find(|scheme| lower.starts_with(*scheme))
        .and_then(|scheme| target[scheme.len()..].split(['/', '?']).next())
        .filter(|authority| !authority.is_empty())
        .unwrap_or("llhttp.test");
    Some(authority.to_owned())
}

/// Sends a case, closes the sending side and classifies what comes back.
fn gateway_verdict(setup: &TableGateway, bytes: &[u8]) -> (Verdict, Vec<u16>) {
    let mut client = Client::connect(setup.addr());
    client.set_timeout(Duration::from_secs(5));
    let _ = client.try_send(bytes);
    let _ = client.stream().shutdown(Shutdown::Write);
    let mut statuses = Vec::new();
    loop {
        match client.try_read_response() {
            Ok(response) => statuses.push(response.status),
            Err(ClientError::Closed) => break,
            Err(_) => break,
        }
    }
    let verdict = match statuses.iter().find(|status| REJECT_STATUSES.contains(status)) {
        Some(_) => Verdict::Reject,
        None if statuses.is_empty() => Verdict::Pending,
        None => Verdict::Accept,
    };
    (verdict, statuses)
}

#[test]
fn llhttp_request_cases() {
    let cases = load(include_str!("corpus/llhttp_requests.tsv"));
    assert!(cases.len() >= 150, "only {} request cases", cases.len());
    let setup = TableGateway::start_with_rules("", OPEN_RULES, "");

    let mut mismatches = Vec::new();
    let mut deviations = 0;
    for case in &cases {
        let (verdict, statuses) = gateway_verdict(&setup, &with_host(&case.bytes));
        if !case.reason.is_empty() {
            deviations += 1;
        }
        if !verdict.agrees_with(case.expected) {
            mismatches.push(format!("{}: expected {:?}, gateway {:?} (statuses {statuses:?})", case.id, case.expected, verdict));
        }
    }
    println!("{} request cases, {deviations} deliberate differences from llhttp", cases.len());
    assert!(mismatches.is_empty(), "{} mismatches:\n{}", mismatches.len(), mismatches.join("\n"));
}

/// Parses every response in `input` as an upstream connection would, with the chunked
/// decoder for chunked bodies.
fn response_verdict(input: &[u8], method: Method) -> Verdict {
    let limits = ResponseLimits::default();
    let mut head = ResponseHead::new();
    let mut pos = 0;
    let mut messages = 0;
    while pos < input.len() {
        let rest = &input[pos..];
        match head.parse(rest, method, &limits) {
            Err(_) => return Verdict::Reject,
            Ok(None) => return Verdict::Pending,
            Ok(Some(length)) => pos += length,
        }
        messages += 1;
        let keep_alive = head.keep_alive();
        // After 101 the connection carries another protocol.
        if head.status() == 101 {
            return Verdict::Accept;
        }
        match head.body() {
            ResponseBody::None => {}
            ResponseBody::Length(length) => {
                let Ok(length) = usize::try_from(length) else { return Verdict::Pending };
                if input.len() - pos < length {
                    return Verdict::Pending;
                }
                pos += length;
            }
            // The body ends when the connection closes, which the bytes cannot show.
            ResponseBody::CloseDelimited => return Verdict::Pending,
            ResponseBody::Chunked => {
                let mut decoder = ChunkedDecoder::new(ChunkedLimits::default());
                loop {
                    match decoder.decode(&input[pos..]) {
                        Err(_) => return Verdict::Reject,
                        Ok(step) if step.done => {
                            pos += step.consumed;
                            break;
                        }
                        Ok(step) if step.consumed == 0 && step.data.is_none() => return Verdict::Pending,
                        Ok(step) => pos += step.consumed,
                    }
                }
            }
        }
        // The gateway reads nothing more from an upstream connection that will not be
        // reused, so later bytes are never parsed.
        if !keep_alive {
            break;
        }
    }
    if messages == 0 {
        Verdict::Pending
    } else {
        Verdict::Accept
    }
}

#[test]
fn llhttp_response_cases() {
    let cases = load(include_str!("corpus/llhttp_responses.tsv"));
    assert!(cases.len() >= 80, "only {} response cases", cases.len());
    let mut mismatches = Vec::new();
    for case in &cases {
        let verdict = response_verdict(&case.bytes, case.method);
        if !verdict.agrees_with(case.expected) {
            mismatches.push(format!("{}: expected {:?}, parser {:?}", case.id, case.expected, verdict));
        }
    }
    assert!(mismatches.is_empty(), "{} mismatches:\n{}", mismatches.len(), mismatches.join("\n"));
}
