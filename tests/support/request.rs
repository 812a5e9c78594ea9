//! Requests as the test stand-ins receive them: [`RecordedRequest`], and the reader that
//! takes requests one after another off a blocking socket, keeping the bytes of pipelined
//! requests for the next call.
//!
//! The reader is written independently of the gateway's parser, and strictly, because it
//! is the witness of what the gateway sent.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};

/// Maximum size of a request head that the stand-ins read.
const MAX_HEAD_BYTES: usize = 256 * 1024;

/// Maximum number of header fields in one request head.
const MAX_HEADERS: usize = 256;

/// Body bytes kept per recorded request; longer bodies are counted in
/// [`RecordedRequest::body_length`] but not stored, so multi-gigabyte uploads fit in memory.
pub const MAX_RECORDED_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Maximum length of one chunk-size or trailer line.
const MAX_CHUNK_LINE_BYTES: usize = 8 * 1024;

/// How a recorded request framed its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyFraming {
    /// Neither `Content-Length` nor `Transfer-Encoding`.
    None,
    /// `Content-Length` with this value.
    ContentLength {
        /// The declared length.
        length_bytes: u64,
    },
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Framing that a server must reject (RFC 9112 section 6.3). The stand-in responded with
    /// 400 and closed the connection.
    Invalid {
        /// What was wrong.
        reason: String,
    },
}

/// One request as a stand-in received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// Method, as sent.
    pub method: String,
    /// Request target, as sent.
    pub target: String,
    /// HTTP minor version: 1 for HTTP/1.1, 0 for HTTP/1.0.
    pub version: u8,
    /// Header fields in order, names in their original case, values decoded lossily as UTF-8.
    pub headers: Vec<(String, String)>,
    /// Decoded body (chunk framing removed), at most [`MAX_RECORDED_BODY_BYTES`].
    pub body: Vec<u8>,
    /// Length of the whole decoded body, stored or not.
    pub body_length: u64,
    /// How the body was framed.
    pub framing: BodyFraming,
    /// Trailer fields of a chunked body.
    pub trailers: Vec<(String, String)>,
    /// The bytes of this request as received: head, then body with its framing, cut at
    /// [`MAX_RECORDED_BODY_BYTES`] past the head.
    pub raw: Vec<u8>,
    /// Sequence number of the connection it arrived on, from 1 in accept order.
    pub connection_id: u64,
    /// Address of the client, which is the gateway in integration tests.
    pub peer: SocketAddr,
}

impl RecordedRequest {
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

    /// Returns the stored body as text, with invalid UTF-8 replaced.
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Returns whether the request requests a close of the connection after the response.
    pub fn wants_close(&self) -> bool {
        let connection_options = self.header_all("connection");
        let has = |wanted: &str| {
            connection_options
                .iter()
                .flat_map(|value| value.split(','))
                .any(|option| option.trim().eq_ignore_ascii_case(wanted))
        };
        has("close") || (self.version == 0 && !has("keep-alive"))
    }

    /// Returns whether the request is HEAD, whose response has no body.
    pub fn is_head(&self) -> bool {
        self.method == "HEAD"
    }
}

/// Why reading a request failed.
#[derive(Debug)]
pub enum ReadError {
    /// The socket failed, or closed in the middle of a request.
    Io(io::Error),
    /// The bytes are not an HTTP/1.1 request.
    Malformed(String),
}

impl From<io::Error> for ReadError {
    fn from(error: io::Error) -> Self {
        ReadError::Io(error)
    }
}

/// Reads requests one after another from a blocking socket, keeping bytes of pipelined
/// requests for the next call.
pub struct RequestReader {
    stream: TcpStream,
    buffer: Vec<u8>,
    /// Start of the unconsumed bytes in `buffer`.
    start: usize,
    /// Bytes of the current request, for [`RecordedRequest::raw`].
    raw: Vec<u8>,
}

impl RequestReader {
    /// Creates a reader on `stream`.
    pub fn new(stream: TcpStream) -> Self {
        RequestReader {
            stream,
            buffer: Vec::with_capacity(16 * 1024),
            start: 0,
            raw: Vec::new(),
        }
    }

    fn buffered(&self) -> &[u8] {
        self.buffer.get(self.start..).unwrap_or_default()
    }

    /// Reads more bytes into the buffer; returns 0 at end of stream.
    fn fill(&mut self) -> io::Result<usize> {
        if self.start > 0 {
            self.buffer.drain(..self.start);
            self.start = 0;
        }
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(read) => {
                    self.buffer
                        .extend_from_slice(chunk.get(..read).unwrap_or_default());
                    return Ok(read);
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error),
            }
        }
    }

    /// Consumes `count` buffered bytes into the raw record.
    fn consume(&mut self, count: usize) {
        let end = (self.start + count).min(self.buffer.len());
        if self.raw.len() < MAX_RECORDED_BODY_BYTES + MAX_HEAD_BYTES {
            self.raw
                .extend_from_slice(self.buffer.get(self.start..end).unwrap_or_default());
        }
        self.start = end;
    }

    /// Ensures at least one byte is buffered; fails at end of stream.
    fn need_bytes(&mut self) -> Result<(), ReadError> {
        if self.buffered().is_empty() && self.fill()? == 0 {
            return Err(ReadError::Io(io::ErrorKind::UnexpectedEof.into()));
        }
        Ok(())
    }

    /// Reads the next request; `None` when the client closed between requests.
    pub fn next_request(
        &mut self,
        connection_id: u64,
        peer: SocketAddr,
    ) -> Result<Option<RecordedRequest>, ReadError> {
        self.raw.clear();
        let head = loop {
            if !self.buffered().is_empty() {
                let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
                let mut parsed = httparse::Request::new(&mut headers);
                match parsed.parse(self.buffered()) {
                    Ok(httparse::Status::Complete(head_length)) => {
                        let head = Head::from_request(&parsed)?;
                        self.consume(head_length);
                        break head;
                    }
                    Ok(httparse::Status::Partial) if self.buffered().len() > MAX_HEAD_BYTES => {
                        return Err(ReadError::Malformed(format!(
                            "request head larger than {MAX_HEAD_BYTES} bytes"
                        )));
                    }
                    Ok(httparse::Status::Partial) => {}
                    Err(error) => {
                        let shown = String::from_utf8_lossy(self.buffered())
                            .chars()
                            .take(200)
                            .collect::<String>();
                        return Err(ReadError::Malformed(format!(
                            "invalid request head ({error}): {shown:?}"
                        )));
                    }
                }
            }
            let had_bytes = !self.buffered().is_empty();
            if self.fill()? == 0 {
                if had_bytes {
                    return Err(ReadError::Io(io::ErrorKind::UnexpectedEof.into()));
                }
                return Ok(None);
            }
        };

        let mut request = RecordedRequest {
            method: head.method,
            target: head.target,
            version: head.version,
            headers: head.headers,
            body: Vec::new(),
            body_length: 0,
            framing: BodyFraming::None,
            trailers: Vec::new(),
            raw: Vec::new(),
            connection_id,
            peer,
        };
        request.framing = request_framing(&request);
        let has_body = matches!(
            request.framing,
            BodyFraming::ContentLength { .. } | BodyFraming::Chunked
        );
        let expects_continue = request
            .header("expect")
            .is_some_and(|value| value.trim().eq_ignore_ascii_case("100-continue"));
        if has_body && expects_continue && request.version == 1 {
            // RFC 9110 section 10.1.1: the client may hold the body back until it receives 100.
            (&self.stream).write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        }
        match request.framing.clone() {
            BodyFraming::None | BodyFraming::Invalid { .. } => {}
            BodyFraming::ContentLength { length_bytes } => {
                self.read_fixed_body(&mut request, length_bytes)?
            }
            BodyFraming::Chunked => self.read_chunked_body(&mut request)?,
        }
        request.raw = std::mem::take(&mut self.raw);
        Ok(Some(request))
    }

    fn read_fixed_body(
        &mut self,
        request: &mut RecordedRequest,
        length_bytes: u64,
    ) -> Result<(), ReadError> {
        let mut remaining = length_bytes;
        while remaining > 0 {
            self.need_bytes()?;
            let available = self.buffered().len();
            let taken =
                usize::try_from(remaining).map_or(available, |remaining| remaining.min(available));
            store_body(request, self.buffered().get(..taken).unwrap_or_default());
            self.consume(taken);
            remaining -= taken as u64;
        }
        Ok(())
    }

    /// Reads a chunked body strictly (RFC 9112 section 7.1): CRLF line endings only.
    fn read_chunked_body(&mut self, request: &mut RecordedRequest) -> Result<(), ReadError> {
        loop {
            let line = self.read_line()?;
            let size_text = line.split(|&byte| byte == b';').next().unwrap_or_default();
            let size_text = trim_trailing_whitespace(size_text);
            let size = std::str::from_utf8(size_text)
                .ok()
                .filter(|text| {
                    !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_hexdigit())
                })
                .and_then(|text| u64::from_str_radix(text, 16).ok())
                .ok_or_else(|| {
                    ReadError::Malformed(format!(
                        "invalid chunk size line {:?}",
                        String::from_utf8_lossy(&line)
                    ))
                })?;
            if size == 0 {
                break;
            }
            self.read_fixed_body(request, size)?;
            let line_end = self.read_line()?;
            if !line_end.is_empty() {
                return Err(ReadError::Malformed(
                    "chunk data not followed by CRLF".to_owned(),
                ));
            }
        }
        loop {
            let line = self.read_line()?;
            if line.is_empty() {
                return Ok(());
            }
            let text = String::from_utf8_lossy(&line);
            let Some((name, value)) = text.split_once(':') else {
                return Err(ReadError::Malformed(format!(
                    "invalid trailer field {text:?}"
                )));
            };
            request
                .trailers
                .push((name.to_owned(), value.trim().to_owned()));
        }
    }

    /// Reads one CRLF-terminated line and returns it without the CRLF; a bare LF is an error.
    fn read_line(&mut self) -> Result<Vec<u8>, ReadError> {
        loop {
            if let Some(newline) = self.buffered().iter().position(|&byte| byte == b'\n') {
                let line = self.buffered().get(..newline).unwrap_or_default().to_vec();
                self.consume(newline + 1);
                let Some(line) = line.strip_suffix(b"\r") else {
                    return Err(ReadError::Malformed(
                        "bare LF in chunked framing".to_owned(),
                    ));
                };
                return Ok(line.to_vec());
            }
            if self.buffered().len() > MAX_CHUNK_LINE_BYTES {
                return Err(ReadError::Malformed(format!(
                    "chunk line longer than {MAX_CHUNK_LINE_BYTES} bytes"
                )));
            }
            if self.fill()? == 0 {
                return Err(ReadError::Io(io::ErrorKind::UnexpectedEof.into()));
            }
        }
    }
}

fn store_body(request: &mut RecordedRequest, bytes: &[u8]) {
    let room = MAX_RECORDED_BODY_BYTES.saturating_sub(request.body.len());
    request
        .body
        .extend_from_slice(bytes.get(..room.min(bytes.len())).unwrap_or_default());
    request.body_length += bytes.len() as u64;
}

fn trim_trailing_whitespace(mut bytes: &[u8]) -> &[u8] {
    while let [rest @ .., b' ' | b'\t'] = bytes {
        bytes = rest;
    }
    bytes
}

/// The owned parts of a parsed request head.
struct Head {
    method: String,
    target: String,
    version: u8,
    headers: Vec<(String, String)>,
}

impl Head {
    fn from_request(request: &httparse::Request<'_, '_>) -> Result<Head, ReadError> {
        let (Some(method), Some(target), Some(version)) =
            (request.method, request.path, request.version)
        else {
            return Err(ReadError::Malformed("incomplete request line".to_owned()));
        };
        let headers = request
            .headers
            .iter()
            .map(|header| {
                (
                    header.name.to_owned(),
                    String::from_utf8_lossy(header.value).into_owned(),
                )
            })
            .collect();
        Ok(Head {
            method: method.to_owned(),
            target: target.to_owned(),
            version,
            headers,
        })
    }
}

/// Decides the body framing of a request (RFC 9112 section 6.3), rejecting every ambiguity.
fn request_framing(request: &RecordedRequest) -> BodyFraming {
    let invalid = |reason: &str| BodyFraming::Invalid {
        reason: reason.to_owned(),
    };
    let transfer_encodings = request.header_all("transfer-encoding");
    let content_lengths = request.header_all("content-length");

    if !transfer_encodings.is_empty() {
        if !content_lengths.is_empty() {
            return invalid("both transfer-encoding and content-length");
        }
        if request.version == 0 {
            return invalid("transfer-encoding in an HTTP/1.0 request");
        }
        let codings: Vec<String> = transfer_encodings
            .iter()
            .flat_map(|value| value.split(','))
            .map(|coding| coding.trim().to_ascii_lowercase())
            .filter(|coding| !coding.is_empty())
            .collect();
        let chunked_count = codings.iter().filter(|coding| *coding == "chunked").count();
        if codings.last().map(String::as_str) != Some("chunked") || chunked_count != 1 {
            return invalid("transfer-encoding does not end in a single chunked");
        }
        return BodyFraming::Chunked;
    }

    let mut length: Option<u64> = None;
    for value in content_lengths {
        for element in value.split(',').map(str::trim) {
            let parsed = Some(element)
                .filter(|text| !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit()))
                .and_then(|text| text.parse::<u64>().ok());
            match (parsed, length) {
                (None, _) => return invalid("content-length is not a decimal number"),
                (Some(new), Some(old)) if new != old => {
                    return invalid("conflicting content-length values")
                }
                (Some(new), _) => length = Some(new),
            }
        }
    }
    match length {
        Some(length_bytes) => BodyFraming::ContentLength { length_bytes },
        None => BodyFraming::None,
    }
}
