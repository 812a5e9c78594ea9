//! A raw HTTP/1.1 client for integration tests: sends bytes exactly as given and parses the
//! responses that come back, with a bounded wait for each. Keeps unread bytes between calls,
//! so pipelined responses are read one by one.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Default time allowed for one response to arrive completely.
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long [`Client::is_closed`] waits for the peer to close.
pub const CLOSE_WAIT: Duration = Duration::from_millis(500);

/// Maximum response head size.
const MAX_HEAD_BYTES: usize = 1024 * 1024;

/// Maximum body that [`Client::read_response`] stores; use [`Client::read_response_with`] for
/// larger bodies.
pub const MAX_STORED_BODY_BYTES: usize = 256 * 1024 * 1024;

/// A parsed response.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Reason phrase.
    pub reason: String,
    /// HTTP minor version of the status line.
    pub version: u8,
    /// Header fields in order, names in their original case, values decoded lossily.
    pub headers: Vec<(String, String)>,
    /// Body with any chunk framing removed; empty when read with a body callback.
    pub body: Vec<u8>,
    /// Trailer fields of a chunked body.
    pub trailers: Vec<(String, String)>,
}

impl Response {
    /// Returns the value of the first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(field, _)| field.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Returns the values of every header called `name` (case-insensitive), in order.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(field, _)| field.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
            .collect()
    }

    /// Returns the body as text, with invalid UTF-8 replaced.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Parses the body as JSON.
    ///
    /// # Panics
    /// When the body is not JSON; the message shows the status and the body.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| {
            panic!(
                "response {} body is not JSON ({error}): {:?}",
                self.status,
                self.text()
            )
        })
    }
}

/// Why reading a response failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The peer closed the connection before sending any byte of a response.
    #[error("connection closed before a response")]
    Closed,
    /// The peer closed the connection inside a response.
    #[error("connection closed inside a response after {received_bytes} bytes")]
    Truncated {
        /// Bytes of the response received.
        received_bytes: usize,
    },
    /// The response did not complete within the timeout.
    #[error("response timed out after {timeout:?}")]
    TimedOut {
        /// The timeout that expired.
        timeout: Duration,
    },
    /// The bytes are not an HTTP/1.1 response.
    #[error("invalid response: {0}")]
    Invalid(String),
    /// The body is larger than [`MAX_STORED_BODY_BYTES`].
    #[error("response body larger than {MAX_STORED_BODY_BYTES} bytes; read it with a callback")]
    BodyTooLarge,
    /// The socket failed.
    #[error("socket error: {0}")]
    Io(#[from] io::Error),
}

/// How the body of a response is delimited (RFC 9112 section 6.3).
enum ResponseBody {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

/// Receives body pieces in [`Client::read_response_with`].
type BodyCallback<'a> = &'a mut dyn FnMut(&[u8]);

/// Stores or forwards one body piece of the response being read.
type BodySink<'a> = dyn FnMut(&[u8], &mut Response) -> Result<(), ClientError> + 'a;

/// A client connection.
pub struct Client {
    stream: TcpStream,
    /// Received bytes not yet consumed by a response.
    buffer: Vec<u8>,
    timeout: Duration,
}

impl Client {
    /// Connects to `address`.
    ///
    /// # Panics
    /// When the connection fails within 5 seconds.
    pub fn connect(address: SocketAddr) -> Client {
        let stream = TcpStream::connect_timeout(&address, Duration::from_secs(5))
            .unwrap_or_else(|error| panic!("connect to {address}: {error}"));
        let _ = stream.set_nodelay(true);
        Client {
            stream,
            buffer: Vec::new(),
            timeout: DEFAULT_RESPONSE_TIMEOUT,
        }
    }

    /// Sets the time allowed for each later response.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Returns the socket, for shutting down one direction or reading addresses.
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Sends `bytes` as they are.
    ///
    /// # Panics
    /// When the write fails.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream
            .write_all(bytes)
            .unwrap_or_else(|error| panic!("send {} bytes: {error}", bytes.len()));
    }

    /// Sends `bytes` and returns the write error, for tests where the peer may have closed.
    pub fn try_send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Closes the sending direction, so the peer reads end of stream.
    pub fn shutdown_write(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }

    /// Reads the next response, including 1xx interim responses, which come back one by one.
    ///
    /// # Panics
    /// When no complete response arrives within the timeout, or it is malformed.
    pub fn read_response(&mut self) -> Response {
        self.try_read_response()
            .unwrap_or_else(|error| panic!("read response: {error}"))
    }

    /// Reads the response to a HEAD request: the head only, whatever its framing headers declare.
    ///
    /// # Panics
    /// As [`Client::read_response`].
    pub fn read_response_to_head(&mut self) -> Response {
        self.read(true, None)
            .unwrap_or_else(|error| panic!("read response to HEAD: {error}"))
    }

    /// Reads the response to a HEAD request and returns the error instead of panicking.
    pub fn try_read_response_to_head(&mut self) -> Result<Response, ClientError> {
        self.read(true, None)
    }

    /// Reads the next response and returns the error instead of panicking.
    pub fn try_read_response(&mut self) -> Result<Response, ClientError> {
        self.read(false, None)
    }

    /// Reads the next response and passes its body to `on_body` piece by piece instead of
    /// storing it, for bodies of any size.
    pub fn read_response_with(
        &mut self,
        on_body: &mut dyn FnMut(&[u8]),
    ) -> Result<Response, ClientError> {
        self.read(false, Some(on_body))
    }

    /// Returns whether the peer closed the connection: a read returns end of stream, or the
    /// connection was reset, within [`CLOSE_WAIT`]. Bytes that arrive instead are kept for the
    /// next response.
    pub fn is_closed(&mut self) -> bool {
        let deadline = Instant::now() + CLOSE_WAIT;
        match self.read_more(deadline) {
            Ok(read) => read == 0,
            Err(ClientError::Io(error)) => matches!(
                error.kind(),
                io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::BrokenPipe
            ),
            Err(_) => false,
        }
    }

    /// Reads once into the buffer, waiting at most until `deadline`; returns 0 at end of
    /// stream.
    fn read_more(&mut self, deadline: Instant) -> Result<usize, ClientError> {
        let now = Instant::now();
        if now >= deadline {
            return Err(ClientError::TimedOut {
                timeout: self.timeout,
            });
        }
        self.stream.set_read_timeout(Some(deadline - now))?;
        let mut chunk = [0u8; 64 * 1024];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(read) => {
                    self.buffer.extend_from_slice(&chunk[..read]);
                    return Ok(read);
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error)
                    if matches!(
                        error.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(ClientError::TimedOut {
                        timeout: self.timeout,
                    });
                }
                Err(error) => return Err(ClientError::Io(error)),
            }
        }
    }

    fn read(
        &mut self,
        head_request: bool,
        mut on_body: Option<BodyCallback<'_>>,
    ) -> Result<Response, ClientError> {
        let deadline = Instant::now() + self.timeout;
        let mut response = self.read_head(deadline)?;

        let body = response_body(&response, head_request)?;
        let mut sink = |bytes: &[u8], response: &mut Response| -> Result<(), ClientError> {
            match on_body.as_mut() {
                Some(callback) => callback(bytes),
                None => {
                    if response.body.len() + bytes.len() > MAX_STORED_BODY_BYTES {
                        return Err(ClientError::BodyTooLarge);
                    }
                    response.body.extend_from_slice(bytes);
                }
            }
            Ok(())
        };

        match body {
            ResponseBody::None => {}
            ResponseBody::Length(length) => {
                let mut remaining = length;
                while remaining > 0 {
                    if self.buffer.is_empty() && self.read_more(deadline)? == 0 {
                        return Err(ClientError::Truncated {
                            received_bytes: usize::try_from(length - remaining)
                                .unwrap_or(usize::MAX),
                        });
                    }
                    let taken = usize::try_from(remaining)
                        .map_or(self.buffer.len(), |left| left.min(self.buffer.len()));
                    let piece: Vec<u8> = self.buffer.drain(..taken).collect();
                    sink(&piece, &mut response)?;
                    remaining -= taken as u64;
                }
            }
            ResponseBody::Chunked => self.read_chunked(deadline, &mut response, &mut sink)?,
            ResponseBody::UntilClose => loop {
                if !self.buffer.is_empty() {
                    let piece = std::mem::take(&mut self.buffer);
                    sink(&piece, &mut response)?;
                }
                if self.read_more(deadline)? == 0 {
                    break;
                }
            },
        }
        Ok(response)
    }

    fn read_head(&mut self, deadline: Instant) -> Result<Response, ClientError> {
        loop {
            if !self.buffer.is_empty() {
                let mut headers = [httparse::EMPTY_HEADER; 256];
                let mut parsed = httparse::Response::new(&mut headers);
                match parsed.parse(&self.buffer) {
                    Ok(httparse::Status::Complete(head_length)) => {
                        let response = Response {
                            status: parsed.code.unwrap_or_default(),
                            reason: parsed.reason.unwrap_or_default().to_owned(),
                            version: parsed.version.unwrap_or_default(),
                            headers: parsed
                                .headers
                                .iter()
                                .map(|header| {
                                    (
                                        header.name.to_owned(),
                                        String::from_utf8_lossy(header.value).into_owned(),
                                    )
                                })
                                .collect(),
                            body: Vec::new(),
                            trailers: Vec::new(),
                        };
                        self.buffer.drain(..head_length);
                        return Ok(response);
                    }
                    Ok(httparse::Status::Partial) if self.buffer.len() > MAX_HEAD_BYTES => {
                        return Err(ClientError::Invalid(format!(
                            "response head over {MAX_HEAD_BYTES} bytes"
                        )));
                    }
                    Ok(httparse::Status::Partial) => {}
                    Err(error) => {
                        let shown: String = String::from_utf8_lossy(&self.buffer)
                            .chars()
                            .take(200)
                            .collect();
                        return Err(ClientError::Invalid(format!("{error}: {shown:?}")));
                    }
                }
            }
            let before = self.buffer.len();
            if self.read_more(deadline)? == 0 {
                return Err(if before == 0 {
                    ClientError::Closed
                } else {
                    ClientError::Truncated {
                        received_bytes: before,
                    }
                });
            }
        }
    }

    fn read_chunked(
        &mut self,
        deadline: Instant,
        response: &mut Response,
        sink: &mut BodySink<'_>,
    ) -> Result<(), ClientError> {
        loop {
            let line = self.read_line(deadline)?;
            let size_text = line.split(';').next().unwrap_or_default().trim();
            let size = u64::from_str_radix(size_text, 16)
                .map_err(|_| ClientError::Invalid(format!("invalid chunk size line {line:?}")))?;
            if size == 0 {
                break;
            }
            let mut remaining = size;
            while remaining > 0 {
                if self.buffer.is_empty() && self.read_more(deadline)? == 0 {
                    return Err(ClientError::Truncated {
                        received_bytes: response.body.len(),
                    });
                }
                let taken = usize::try_from(remaining)
                    .map_or(self.buffer.len(), |left| left.min(self.buffer.len()));
                let piece: Vec<u8> = self.buffer.drain(..taken).collect();
                sink(&piece, response)?;
                remaining -= taken as u64;
            }
            if !self.read_line(deadline)?.is_empty() {
                return Err(ClientError::Invalid(
                    "chunk data not followed by CRLF".to_owned(),
                ));
            }
        }
        loop {
            let line = self.read_line(deadline)?;
            if line.is_empty() {
                return Ok(());
            }
            let Some((name, value)) = line.split_once(':') else {
                return Err(ClientError::Invalid(format!(
                    "invalid trailer field {line:?}"
                )));
            };
            response
                .trailers
                .push((name.to_owned(), value.trim().to_owned()));
        }
    }

    /// Reads one CRLF-terminated line and returns it without the line end.
    fn read_line(&mut self, deadline: Instant) -> Result<String, ClientError> {
        loop {
            if let Some(newline) = self.buffer.iter().position(|&byte| byte == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=newline).collect();
                let Some(line) = line.strip_suffix(b"\r\n") else {
                    return Err(ClientError::Invalid(
                        "bare LF in chunked framing".to_owned(),
                    ));
                };
                return Ok(String::from_utf8_lossy(line).into_owned());
            }
            if self.buffer.len() > MAX_HEAD_BYTES {
                return Err(ClientError::Invalid("chunk line too long".to_owned()));
            }
            if self.read_more(deadline)? == 0 {
                return Err(ClientError::Truncated {
                    received_bytes: self.buffer.len(),
                });
            }
        }
    }
}

/// Decides how the body of `response` is delimited (RFC 9112 section 6.3).
fn response_body(response: &Response, head_request: bool) -> Result<ResponseBody, ClientError> {
    let status = response.status;
    if head_request || (100..200).contains(&status) || status == 204 || status == 304 {
        return Ok(ResponseBody::None);
    }
    let transfer_encoding = response.header_all("transfer-encoding").join(",");
    if !transfer_encoding.is_empty() {
        let last = transfer_encoding
            .rsplit(',')
            .next()
            .unwrap_or_default()
            .trim();
        if last.eq_ignore_ascii_case("chunked") {
            return Ok(ResponseBody::Chunked);
        }
        return Ok(ResponseBody::UntilClose);
    }
    let lengths = response.header_all("content-length");
    if let Some(first) = lengths.first() {
        let length: u64 = first
            .trim()
            .parse()
            .map_err(|_| ClientError::Invalid(format!("invalid content-length {first:?}")))?;
        if lengths.iter().any(|other| other.trim() != first.trim()) {
            return Err(ClientError::Invalid(format!(
                "conflicting content-length values {lengths:?}"
            )));
        }
        return Ok(ResponseBody::Length(length));
    }
    Ok(ResponseBody::UntilClose)
}

/// Connects to `address`, sends `raw`, and reads one response.
///
/// # Panics
/// When connecting, sending or reading fails.
pub fn request(address: SocketAddr, raw: &[u8]) -> Response {
    let mut client = Client::connect(address);
    client.send(raw);
    client.read_response()
}
