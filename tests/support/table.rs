//! Raw-byte conformance tables: a gateway with a fixed rule set in front of an echoing
//! upstream and a Kratos stand-in, the row format of `tests/conformance/*.tsv`, and the
//! runner that sends one row and compares what the client and the upstream saw.
//!
//! The rule set makes only `/public/<anything>` anonymous; every other path needs a Kratos
//! session (cookie `ory_kratos_session=valid-session`). Both rules set `X-User` to the
//! subject, so the upstream record shows which identity a request carried.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use super::client::{Client, ClientError, Response};
use super::gateway::Gateway;
use super::kratos::Kratos;
use super::request::RecordedRequest;
use super::upstream::{Reply, Upstream};
use super::free_port;

/// Identity of the session `valid-session` in the Kratos stand-in.
pub const IDENTITY: &str = "9d1e6a52-4b0c-4f87-8e3a-2b7c5d9f0a14";

/// Time allowed for each expected response and for the gateway to close a connection.
const ROW_TIMEOUT: Duration = Duration::from_secs(5);

/// Time the upstream stand-in is given to record the requests a row expects.
const RECORD_WAIT: Duration = Duration::from_secs(2);

/// Time given to a request that should not arrive at the upstream, after the gateway has
/// answered or closed. Every forwarded byte was sent before that, so this only covers the
/// stand-in's own recording.
const SETTLE_WAIT: Duration = Duration::from_millis(30);

/// The request sent after a row whose connection must stay open: it must get its own 200.
const PROBE: &[u8] = b"GET /public/probe HTTP/1.1\r\nHost: gw.test\r\n\r\n";

/// A gateway with the table rule set, its upstream and Kratos.
pub struct TableGateway {
    /// The gateway process.
    pub gateway: Gateway,
    /// The Kratos stand-in, with the session `valid-session`.
    pub kratos: Kratos,
    /// The upstream for every route; it echoes request bodies.
    pub upstream: Upstream,
}

impl TableGateway {
    /// Starts the gateway with the table rule set. `limits` is the body of its `[limits]`
    /// section, and `top` holds top-level keys such as `workers`.
    pub fn start(limits: &str, top: &str) -> TableGateway {
        TableGateway::start_with_rules(limits, TABLE_RULES, top)
    }

    /// Starts the gateway with `rules` (TOML `[[rules]]` tables) in place of the table
    /// rule set.
    pub fn start_with_rules(limits: &str, rules: &str, top: &str) -> TableGateway {
        let kratos = Kratos::start();
        kratos.add_session("valid-session", IDENTITY);
        let upstream = Upstream::start("echo");
        upstream.set_reply(Reply::Echo);
        let proxy: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let config = table_config(proxy, &kratos, &upstream, top, limits, rules);
        let gateway = Gateway::start(&config);
        TableGateway { gateway, kratos, upstream }
    }

    /// Returns the proxy address.
    pub fn addr(&self) -> SocketAddr {
        self.gateway.addr()
    }
}

/// The table rule set: `/public/<anything>` is anonymous, every other path needs a session.
pub const TABLE_RULES: &str = r#"
[[rules]]
id = "public"
match = { url = "http://<[^/]+>/public/<.*>", methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] }
authenticators = [{ handler = "anonymous" }]
authorizer = { handler = "allow" }
mutators = [{ handler = "header", config = { headers = { "X-User" = "{{ print .Subject }}" } } }]

[[rules]]
id = "protected"
match = { url = "http://<[^/]+>/<(?!public/).*>", methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] }
authenticators = [{ handler = "cookie_session" }]
authorizer = { handler = "allow" }
mutators = [{ handler = "header", config = { headers = { "X-User" = "{{ print .Subject }}" } } }]
"#;

/// Returns the table configuration: `top` holds top-level keys, `limits` the body of
/// `[limits]`, and `rules` the `[[rules]]` tables.
pub fn table_config(proxy: SocketAddr, kratos: &Kratos, upstream: &Upstream, top: &str, limits: &str, rules: &str) -> String {
    format!(
        r#"
{top}

[proxy]
listen = ["{proxy}"]

[limits]
{limits}

[access_rules]
matching_strategy = "regexp"

[authenticators.cookie_session]
check_session_url = "{whoami}"
preserve_path = true
only = ["ory_kratos_session"]
subject_from = "identity.id"

[errors]
fallback = ["json"]

[errors.handlers.json]
verbose = true

[[services]]
name = "echo"
url = "{upstream_url}"

[[routes]]
name = "all"
service = "echo"
paths = ["/"]
strip_path = false

[[routes]]
name = "encoded"
service = "echo"
paths = ["/public/enc/"]
strip_path = false
allow_encoded_slashes = true

[[routes]]
name = "small"
service = "echo"
paths = ["/public/small"]
strip_path = false
max_body_bytes = 16

{rules}
"#,
        whoami = kratos.whoami_url(),
        upstream_url = upstream.url(),
    )
}

/// What one forwarded request must look like at the upstream.
#[derive(Debug, Clone, Default)]
pub struct Forwarded {
    /// Exact request target.
    pub target: Option<String>,
    /// Exact body bytes.
    pub body: Option<Vec<u8>>,
    /// Header fields that must be present once with this value.
    pub headers: Vec<(String, String)>,
    /// Header names that must be absent.
    pub absent: Vec<String>,
}

/// One row of a conformance table.
#[derive(Debug, Clone)]
pub struct Row {
    /// Line number in the file, for messages.
    pub line: usize,
    /// Short name of the case.
    pub name: String,
    /// Status of each response, in order (`100` for an interim 100 Continue).
    pub statuses: Vec<u16>,
    /// Whether the connection must stay open afterwards.
    pub open: bool,
    /// The requests the upstream must receive, in order; empty for none.
    pub forwarded: Vec<Forwarded>,
    /// The bytes sent.
    pub bytes: Vec<u8>,
}

/// Decodes the escapes of a table field: `\\`, `\r`, `\n`, `\t`, `\xHH`. Any other
/// backslash sequence is a table error.
pub fn unescape(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len());
    let bytes = text.as_bytes();
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        if byte != b'\\' {
            out.push(byte);
            index += 1;
            continue;
        }
        match bytes.get(index + 1) {
            Some(b'\\') => out.push(b'\\'),
            Some(b'r') => out.push(b'\r'),
            Some(b'n') => out.push(b'\n'),
            Some(b't') => out.push(b'\t'),
            Some(b'x') => {
                let hex = text.get(index + 2..index + 4).ok_or("truncated \\x escape")?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| format!("invalid \\x escape {hex:?}"))?);
                index += 2;
            }
            other => return Err(format!("unknown escape \\{}", other.map_or('?', |&b| b as char))),
        }
        index += 2;
    }
    Ok(out)
}

/// Expands the shorthand `{N*text}` into `text` repeated N times, so that long targets
/// and values stay readable. A `{` not followed by digits and `*` is literal.
fn expand_repeats(text: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let repeat = after.find('}').and_then(|close| {
            let (count, repeated) = after[..close].split_once('*')?;
            let count: usize = count.parse().ok()?;
            Some((count, repeated, close))
        });
        match repeat {
            Some((count, repeated, close)) => {
                out.push_str(&repeated.repeat(count));
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Parses the `upstream` column: `-` for nothing, else requests separated by ` | `, each a
/// space-separated list of `target=T`, `body=B`, `h:Name=value` and `no:Name`.
fn parse_forwarded(column: &str) -> Result<Vec<Forwarded>, String> {
    if column == "-" {
        return Ok(Vec::new());
    }
    column
        .split(" | ")
        .map(|request| {
            let mut forwarded = Forwarded::default();
            for item in request.split(' ').filter(|item| !item.is_empty()) {
                if let Some(target) = item.strip_prefix("target=") {
                    forwarded.target = Some(target.to_owned());
                } else if let Some(body) = item.strip_prefix("body=") {
                    forwarded.body = Some(unescape(body)?);
                } else if let Some(header) = item.strip_prefix("h:") {
                    let (name, value) = header.split_once('=').ok_or_else(|| format!("invalid {item}"))?;
                    let value = String::from_utf8_lossy(&unescape(value)?).into_owned();
                    forwarded.headers.push((name.to_owned(), value));
                } else if let Some(name) = item.strip_prefix("no:") {
                    forwarded.absent.push(name.to_owned());
                } else {
                    return Err(format!("unknown upstream item {item:?}"));
                }
            }
            Ok(forwarded)
        })
        .collect()
}

/// Parses a table: one row per line, `name TAB statuses TAB open|close TAB upstream TAB
/// bytes`. Lines starting with `#` and empty lines are skipped. `$ID` in the upstream
/// column stands for [`IDENTITY`].
///
/// # Panics
/// On a malformed row, naming its line.
pub fn parse_table(text: &str) -> Vec<Row> {
    let mut rows = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line_number = index + 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        let [name, statuses, open, upstream, bytes] = fields[..] else {
            panic!("line {line_number}: expected 5 tab-separated fields, found {}", fields.len());
        };
        let statuses = statuses
            .split(',')
            .map(|status| status.parse().unwrap_or_else(|_| panic!("line {line_number}: invalid status {status:?}")))
            .collect();
        let open = match open {
            "open" => true,
            "close" => false,
            other => panic!("line {line_number}: expected open or close, found {other:?}"),
        };
        let upstream = upstream.replace("$ID", IDENTITY);
        let forwarded = parse_forwarded(&upstream).unwrap_or_else(|error| panic!("line {line_number}: {error}"));
        let bytes = expand_repeats(bytes)
            .and_then(|expanded| unescape(&expanded))
            .unwrap_or_else(|error| panic!("line {line_number}: {error}"));
        rows.push(Row { line: line_number, name: name.to_owned(), statuses, open, forwarded, bytes });
    }
    rows
}

/// Sends one row on a fresh connection and returns every way the outcome differs from the
/// row, one message per difference.
pub fn run_row(setup: &TableGateway, row: &Row) -> Vec<String> {
    let mut failures = Vec::new();
    let mut fail = |message: String| failures.push(format!("line {} {}: {message}", row.line, row.name));
    let before = setup.upstream.request_count();
    let errors_before = setup.upstream.protocol_errors().len();

    let mut client = Client::connect(setup.addr());
    client.set_timeout(ROW_TIMEOUT);
    if let Err(error) = client.try_send(&row.bytes) {
        fail(format!("send failed: {error}"));
    }
    let head_only = row.bytes.starts_with(b"HEAD ");
    for (index, &expected) in row.statuses.iter().enumerate() {
        let result = if head_only { client_read_head(&mut client) } else { client.try_read_response() };
        match result {
            Ok(response) if response.status == expected => {
                if expected >= 400 && !response.text().contains("\"error\"") {
                    fail(format!("response {index}: status {expected} without a JSON error body: {}", response.text()));
                }
            }
            Ok(response) => fail(format!("response {index}: expected status {expected}, got {} ({})", response.status, response.text())),
            Err(error) => {
                fail(format!("response {index}: expected status {expected}, got {error}"));
                return failures;
            }
        }
    }

    if row.open {
        client.send(PROBE);
        match client.try_read_response() {
            Ok(response) if response.status == 200 => {}
            Ok(response) => fail(format!("probe after the row got {} instead of 200", response.status)),
            Err(error) => fail(format!("connection was expected to stay open, probe failed: {error}")),
        }
    } else {
        match read_until_closed(&mut client) {
            Ok(()) => {}
            Err(message) => fail(message),
        }
    }

    let expected_count = before + row.forwarded.len() + usize::from(row.open);
    let wait = if expected_count > before { RECORD_WAIT } else { SETTLE_WAIT };
    setup.upstream.wait_for_request_count(expected_count, wait);
    std::thread::sleep(SETTLE_WAIT);
    let all = setup.upstream.requests();
    let received: Vec<&RecordedRequest> = all.iter().skip(before).collect();
    let forwarded: Vec<&RecordedRequest> = if row.open {
        received.iter().copied().filter(|request| request.target != "/public/probe").collect()
    } else {
        received.clone()
    };
    if forwarded.len() != row.forwarded.len() {
        let targets: Vec<&str> = forwarded.iter().map(|request| request.target.as_str()).collect();
        fail(format!("upstream received {} requests {targets:?}, expected {}", forwarded.len(), row.forwarded.len()));
    }
    for (index, (request, expected)) in forwarded.iter().zip(&row.forwarded).enumerate() {
        check_forwarded(index, request, expected, &mut fail);
    }
    let errors = setup.upstream.protocol_errors();
    if errors.len() > errors_before && !row.forwarded.is_empty() {
        fail(format!("upstream saw protocol errors: {:?}", &errors[errors_before..]));
    }
    failures
}

fn check_forwarded(index: usize, request: &RecordedRequest, expected: &Forwarded, fail: &mut impl FnMut(String)) {
    if let Some(target) = &expected.target {
        if &request.target != target {
            fail(format!("upstream request {index}: target {:?}, expected {target:?}", request.target));
        }
    }
    if let Some(body) = &expected.body {
        if &request.body != body {
            fail(format!(
                "upstream request {index}: body {:?}, expected {:?}",
                String::from_utf8_lossy(&request.body),
                String::from_utf8_lossy(body)
            ));
        }
    }
    for (name, value) in &expected.headers {
        let values = request.header_all(name);
        if values != [value.as_str()] {
            fail(format!("upstream request {index}: header {name} is {values:?}, expected [{value:?}]"));
        }
    }
    for name in &expected.absent {
        if request.header(name).is_some() {
            fail(format!("upstream request {index}: header {name} must not be forwarded"));
        }
    }
}

fn client_read_head(client: &mut Client) -> Result<Response, ClientError> {
    let response = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| client.read_response_to_head()));
    response.map_err(|_| ClientError::Invalid("no complete response to HEAD".into()))
}

/// Reads until the gateway closes the connection. A response that arrives instead is a
/// failure, because it answers bytes that should have been discarded.
fn read_until_closed(client: &mut Client) -> Result<(), String> {
    match client.try_read_response() {
        Err(ClientError::Closed) => Ok(()),
        Err(ClientError::Io(error)) if matches!(error.kind(), io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe) => Ok(()),
        Err(ClientError::TimedOut { .. }) => Err("connection was expected to close but stayed open".into()),
        Err(error) => Err(format!("bytes after the expected responses: {error}")),
        Ok(response) => Err(format!("unexpected extra response {} ({})", response.status, response.text())),
    }
}
