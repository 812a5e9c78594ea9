//! One client connection of a stand-in: reads request heads into a bounded buffer, skips
//! request bodies, calls the [`Responder`] for each response, and writes the queued
//! responses back. Pipelined requests that arrive in one read get their responses in one write.
//!
//! The socket is registered edge-triggered, so every step runs until the socket would block
//! or a bound is reached, and [`Connection::drive`] returns whether to keep or close it.

use std::io::{self, Read as _, Write as _};

use httparse::Status;
use mio::net::TcpStream;

use crate::framing::{request_framing, BodyLength, ChunkedDecoder, ChunkedProgress};
use crate::response::{
    write_rejection, Rejection, RequestHead, Responder, ResponseWriter, CONTINUE,
};

/// Size of a new connection's read buffer. Typical heads through a gateway fit.
const INITIAL_READ_BUFFER_BYTES: usize = 8 * 1024;

/// Maximum size of one request head. The read buffer grows up to this to hold a large head;
/// a longer head gets a 431 response.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Maximum number of header fields in one request head; more get a 431 response.
const MAX_HEADERS: usize = 128;

/// Queued response bytes above which no further pipelined request is parsed until the
/// client has read some, so a client that never reads cannot grow the buffer without bound.
const OUTPUT_HIGH_WATER_BYTES: usize = 64 * 1024;

/// Action for the worker after it drove a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Keep it registered and wait for the next readiness event.
    Wait,
    /// Deregister and close it.
    Close,
}

/// Whether the socket may still hold bytes that have not been read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadSide {
    /// A readiness event arrived, or reading stopped before the socket was drained.
    MayHaveData,
    /// The last read drained the socket; the next readiness event reports more.
    Drained,
    /// The client closed its sending side.
    Closed,
}

/// Progress through the body of the current request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyState {
    /// Not inside a body: the next bytes are a request head.
    None,
    /// Inside a body of known length.
    Fixed { remaining_bytes: u64 },
    /// Inside a chunked body.
    Chunked(ChunkedDecoder),
}

/// Reason that input processing stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// Everything buffered is consumed, or only part of a head is buffered.
    NeedInput,
    /// The output buffer reached [`OUTPUT_HIGH_WATER_BYTES`].
    OutputFull,
    /// The connection closes once the output is flushed.
    Closing,
}

/// State of one client connection.
pub struct Connection {
    stream: TcpStream,
    /// Read buffer; `input[input_start..input_end]` is received and not yet consumed.
    input: Vec<u8>,
    input_start: usize,
    input_end: usize,
    body: BodyState,
    /// Responses not yet written; `output[output_written..]` is pending.
    output: Vec<u8>,
    output_written: usize,
    read_side: ReadSide,
    /// Set once an event reported that the client closed its sending side. The end of stream
    /// then still waits in the socket behind any data, and no later event reports it.
    peer_closed: bool,
    /// Set once a response with `Connection: close` or a rejection is queued.
    closing: bool,
}

impl Connection {
    /// Wraps an accepted socket.
    pub fn new(stream: TcpStream) -> Self {
        Self {
            stream,
            input: vec![0; INITIAL_READ_BUFFER_BYTES],
            input_start: 0,
            input_end: 0,
            body: BodyState::None,
            output: Vec::with_capacity(4096),
            output_written: 0,
            // Registration reports bytes that arrived before it as a readable event.
            read_side: ReadSide::Drained,
            peer_closed: false,
            closing: false,
        }
    }

    /// Returns the socket, for registration with the poller.
    pub fn stream_mut(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// Reads, responds and writes until the socket would block, then returns the worker's next
    /// action. `readable` is set when the event reported new input, and `read_closed` when it
    /// reported the client's end of stream.
    pub fn drive<R: Responder>(
        &mut self,
        readable: bool,
        read_closed: bool,
        responder: &R,
        scratch: &mut Vec<u8>,
    ) -> Next {
        self.peer_closed |= read_closed;
        if (readable || read_closed) && self.read_side == ReadSide::Drained {
            self.read_side = ReadSide::MayHaveData;
        }
        loop {
            let stop = self.process_input(responder, scratch);

            match self.flush() {
                Ok(Flushed::All) => {}
                Ok(Flushed::Blocked) => return Next::Wait,
                Err(error) => {
                    tracing::debug!(%error, "stub connection write failed");
                    return Next::Close;
                }
            }

            match stop {
                Stop::Closing => return Next::Close,
                Stop::OutputFull => continue,
                Stop::NeedInput => {}
            }

            match self.read_side {
                ReadSide::Drained => return Next::Wait,
                ReadSide::Closed => return Next::Close,
                ReadSide::MayHaveData => {}
            }
            if let Err(error) = self.fill() {
                tracing::debug!(%error, "stub connection read failed");
                return Next::Close;
            }
        }
    }

    /// Reads once into the free end of the read buffer, compacting or growing it first.
    fn fill(&mut self) -> io::Result<()> {
        if self.input_start == self.input_end {
            self.input_start = 0;
            self.input_end = 0;
        } else if self.input_end == self.input.len() {
            if self.input_start > 0 {
                self.input.copy_within(self.input_start..self.input_end, 0);
                self.input_end -= self.input_start;
                self.input_start = 0;
            } else {
                // Only a partial head fills the whole buffer: `process_input` rejects a
                // head of MAX_HEAD_BYTES, so the buffer is still below that size here.
                let grown = (self.input.len() * 2).min(MAX_HEAD_BYTES);
                self.input.resize(grown, 0);
            }
        }

        let free = self.input.len() - self.input_end;
        let Some(buffer) = self
            .input
            .get_mut(self.input_end..)
            .filter(|buffer| !buffer.is_empty())
        else {
            // Unreachable while `process_input` rejects heads of MAX_HEAD_BYTES, but an
            // empty read would look like end of stream, so it is refused here too.
            return Err(io::Error::other("read buffer full"));
        };
        match self.stream.read(buffer) {
            Ok(0) => self.read_side = ReadSide::Closed,
            Ok(read) => {
                self.input_end += read;
                // A read shorter than the free space emptied the socket receive queue, and
                // bytes that arrive later raise a new edge-triggered readiness event. This
                // saves the read that would only return WouldBlock. An end of stream that
                // already arrived raises no new event, so then the reads go on until it.
                if read < free && !self.peer_closed {
                    self.read_side = ReadSide::Drained;
                }
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                self.read_side = ReadSide::Drained;
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
        Ok(())
    }

    /// Writes pending output until it is all written or the socket would block.
    fn flush(&mut self) -> io::Result<Flushed> {
        while self.output_written < self.output.len() {
            let Some(pending) = self.output.get(self.output_written..) else {
                break;
            };
            match self.stream.write(pending) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(written) => self.output_written += written,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    return Ok(Flushed::Blocked)
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
        self.output.clear();
        self.output_written = 0;
        Ok(Flushed::All)
    }

    /// Consumes buffered input: skips body bytes, parses request heads and queues their
    /// responses, until the input runs out, the output is full, or the connection closes.
    fn process_input<R: Responder>(&mut self, responder: &R, scratch: &mut Vec<u8>) -> Stop {
        loop {
            // The body of a request is read even when the connection closes after it, so
            // that the close does not find unread bytes and reset the connection.
            if !self.skip_body() {
                return Stop::NeedInput;
            }
            if self.closing {
                return Stop::Closing;
            }
            if self.output.len() - self.output_written >= OUTPUT_HIGH_WATER_BYTES {
                return Stop::OutputFull;
            }
            let Some(buffered) = self.input.get(self.input_start..self.input_end) else {
                return Stop::NeedInput;
            };
            if buffered.is_empty() {
                return Stop::NeedInput;
            }

            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut request = httparse::Request::new(&mut headers);
            let head_length = match request.parse(buffered) {
                Ok(Status::Complete(head_length)) => head_length,
                Ok(Status::Partial) if buffered.len() >= MAX_HEAD_BYTES => {
                    tracing::debug!(
                        buffered_bytes = buffered.len(),
                        "stub rejected oversized request head"
                    );
                    self.reject(Rejection::HeaderFieldsTooLarge);
                    continue;
                }
                Ok(Status::Partial) => return Stop::NeedInput,
                Err(httparse::Error::TooManyHeaders) => {
                    tracing::debug!(
                        max_headers = MAX_HEADERS,
                        "stub rejected request with too many headers"
                    );
                    self.reject(Rejection::HeaderFieldsTooLarge);
                    continue;
                }
                Err(error) => {
                    tracing::debug!(%error, "stub rejected malformed request head");
                    self.reject(Rejection::BadRequest);
                    continue;
                }
            };

            let (Some(method), Some(target), Some(version)) =
                (request.method, request.path, request.version)
            else {
                self.reject(Rejection::BadRequest);
                continue;
            };
            let framing = match request_framing(version, request.headers) {
                Ok(framing) => framing,
                Err(error) => {
                    tracing::debug!(%error, "stub rejected request framing");
                    self.reject(Rejection::BadRequest);
                    continue;
                }
            };

            if framing.expects_continue {
                self.output.extend_from_slice(CONTINUE);
            }
            let head = RequestHead {
                method,
                target,
                headers: request.headers,
            };
            let mut writer = ResponseWriter::new(
                &mut self.output,
                scratch,
                framing.connection,
                method == "HEAD",
            );
            responder.respond(&head, &mut writer);

            self.input_start += head_length;
            self.closing = !framing.connection.keeps_open();
            self.body = match framing.body {
                BodyLength::Empty => BodyState::None,
                BodyLength::Fixed { length_bytes } => BodyState::Fixed {
                    remaining_bytes: length_bytes,
                },
                BodyLength::Chunked => BodyState::Chunked(ChunkedDecoder::new()),
            };
            // NOTE: the response is queued before the body is read, so a body that later
            // turns out malformed closes the connection after that response, without a 400.
        }
    }

    /// Consumes buffered bytes of the current body. Returns whether the body is complete.
    fn skip_body(&mut self) -> bool {
        let buffered = self.input_end - self.input_start;
        match self.body {
            BodyState::None => true,
            BodyState::Fixed { remaining_bytes } => {
                let taken = usize::try_from(remaining_bytes)
                    .map_or(buffered, |remaining| remaining.min(buffered));
                self.input_start += taken;
                let left = remaining_bytes - taken as u64;
                if left == 0 {
                    self.body = BodyState::None;
                    true
                } else {
                    self.body = BodyState::Fixed {
                        remaining_bytes: left,
                    };
                    false
                }
            }
            BodyState::Chunked(mut decoder) => {
                let Some(buffered) = self.input.get(self.input_start..self.input_end) else {
                    return false;
                };
                match decoder.discard(buffered) {
                    Ok(ChunkedProgress::Done { consumed }) => {
                        self.input_start += consumed;
                        self.body = BodyState::None;
                        true
                    }
                    Ok(ChunkedProgress::NeedMore) => {
                        self.input_start = self.input_end;
                        self.body = BodyState::Chunked(decoder);
                        false
                    }
                    Err(error) => {
                        tracing::debug!(%error, "stub closed connection on malformed chunked body");
                        self.input_start = self.input_end;
                        self.body = BodyState::None;
                        self.closing = true;
                        true
                    }
                }
            }
        }
    }

    /// Queues a rejection and stops reading from the connection.
    fn reject(&mut self, rejection: Rejection) {
        write_rejection(&mut self.output, rejection);
        self.input_start = self.input_end;
        self.closing = true;
    }
}

/// Result of [`Connection::flush`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flushed {
    All,
    Blocked,
}
