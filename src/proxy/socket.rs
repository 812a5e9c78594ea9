//! One non-blocking stream socket (plain TCP, or TLS over TCP) with its edge-triggered
//! readiness tracked by hand.
//!
//! Sockets are registered once for both directions in edge-triggered mode. An event only
//! sets `readable`/`writable`; a write clears `writable` when it is short or returns
//! `WouldBlock`, and a read clears `readable` when it returns `WouldBlock`, end of stream, or
//! fewer bytes than asked. A short read on a stream socket means the receive queue was
//! emptied, so no second read is made just to see `WouldBlock`: the next edge comes with new
//! data. The exception is a peer that closed its side (EPOLLRDHUP in the event): its FIN may
//! have arrived with the last data, no later edge reports it, so reading goes on until 0.

use std::io::{self, BufRead, Write};
use std::os::fd::AsRawFd;

use bytes::{Buf, BufMut, BytesMut};
use mio::net::TcpStream;

/// TLS plaintext is read in pieces of at most this many bytes.
const TLS_READ_CHUNK: usize = 16 * 1024;

/// What one readiness event said about a socket.
#[derive(Clone, Copy, Debug, Default)]
pub struct Readiness {
    pub readable: bool,
    pub writable: bool,
    /// The peer closed its sending side (EPOLLRDHUP) or the socket failed. A short read
    /// does not prove the socket is drained then: the end of stream is still to be read,
    /// and no further edge will announce it.
    pub read_closed: bool,
}

pub struct Stream {
    io: Io,
    /// The peer's FIN has arrived; read until a read returns 0.
    peer_closed: bool,
    /// The last event said data may be readable and no read has drained it since.
    pub readable: bool,
    /// The socket can take more bytes without blocking.
    pub writable: bool,
    /// The peer closed its sending side; buffered bytes may remain.
    pub read_closed: bool,
}

enum Io {
    Plain(TcpStream),
    Tls(Box<TlsIo>),
}

struct TlsIo {
    tcp: TcpStream,
    session: rustls::ServerConnection,
    /// The TCP socket has unread bytes (the plaintext flag is `Stream::readable`).
    tcp_readable: bool,
}

impl Stream {
    pub fn plain(tcp: TcpStream) -> Stream {
        Stream { io: Io::Plain(tcp), peer_closed: false, readable: false, writable: false, read_closed: false }
    }

    pub fn tls(tcp: TcpStream, session: rustls::ServerConnection) -> Stream {
        Stream {
            io: Io::Tls(Box::new(TlsIo { tcp, session, tcp_readable: false })),
            peer_closed: false,
            readable: false,
            writable: false,
            read_closed: false,
        }
    }

    pub fn tcp(&self) -> &TcpStream {
        match &self.io {
            Io::Plain(tcp) => tcp,
            Io::Tls(tls) => &tls.tcp,
        }
    }

    pub fn tcp_mut(&mut self) -> &mut TcpStream {
        match &mut self.io {
            Io::Plain(tcp) => tcp,
            Io::Tls(tls) => &mut tls.tcp,
        }
    }

    pub fn is_tls(&self) -> bool {
        matches!(self.io, Io::Tls(_))
    }

    /// Returns whether the peer has closed its sending side: read to the end, or announced
    /// by an event with bytes before the end still unread. A connection in this state can
    /// finish what it is receiving but cannot take another request.
    pub fn peer_closed(&self) -> bool {
        self.peer_closed || self.read_closed
    }

    /// Records a readiness event.
    pub fn on_event(&mut self, readiness: Readiness) {
        let Readiness { readable, writable, read_closed } = readiness;
        let readable = readable || read_closed;
        self.peer_closed |= read_closed;
        match &mut self.io {
            Io::Plain(_) => {
                self.readable |= readable;
            }
            Io::Tls(tls) => {
                tls.tcp_readable |= readable;
                // Plaintext may now be decryptable; `read` finds out.
                self.readable |= readable;
            }
        }
        self.writable |= writable;
    }

    /// Reads once into `buf` while it holds fewer than `limit` bytes. Returns the number of
    /// bytes appended; 0 means nothing was available now (or `buf` is full, or EOF, which
    /// sets `read_closed`).
    pub fn read(&mut self, buf: &mut BytesMut, limit: usize) -> io::Result<usize> {
        if !self.readable || self.read_closed || buf.len() >= limit {
            return Ok(0);
        }
        let room = limit - buf.len();
        match &mut self.io {
            Io::Plain(tcp) => {
                let (n, asked) = read_plain(tcp, buf, room).inspect_err(|_| self.readable = false)?;
                match n {
                    None => self.readable = false,
                    Some(0) => {
                        self.readable = false;
                        self.read_closed = true;
                    }
                    // A short read drained the socket, unless the FIN is still to be read.
                    Some(n) if n < asked && !self.peer_closed => self.readable = false,
                    Some(_) => {}
                }
                Ok(n.unwrap_or(0))
            }
            Io::Tls(tls) => {
                let result = tls.read(buf, room.min(TLS_READ_CHUNK));
                // Handshake records and alerts produced while reading must go out now.
                let flush = tls.flush();
                match result {
                    Ok(TlsRead::Data(n)) => {
                        flush?;
                        Ok(n)
                    }
                    Ok(TlsRead::Blocked) => {
                        self.readable = false;
                        flush?;
                        Ok(0)
                    }
                    Ok(TlsRead::Closed) => {
                        self.readable = false;
                        self.read_closed = true;
                        Ok(0)
                    }
                    Err(error) => {
                        self.readable = false;
                        Err(error)
                    }
                }
            }
        }
    }

    /// Writes as much of `buf` as the socket takes, advancing it.
    pub fn write(&mut self, buf: &mut BytesMut) -> io::Result<()> {
        match &mut self.io {
            Io::Plain(tcp) => {
                while buf.has_remaining() && self.writable {
                    match tcp.write(buf.chunk()) {
                        Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                        Ok(n) => {
                            let short = n < buf.len();
                            buf.advance(n);
                            if short {
                                // A short write means the send buffer is full.
                                self.writable = false;
                            }
                        }
                        Err(error) if error.kind() == io::ErrorKind::WouldBlock => self.writable = false,
                        Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                        Err(error) => return Err(error),
                    }
                }
                Ok(())
            }
            Io::Tls(tls) => {
                while buf.has_remaining() {
                    let n = tls.session.writer().write(buf.chunk())?;
                    if n == 0 {
                        break;
                    }
                    buf.advance(n);
                }
                tls.flush_while_writable(&mut self.writable)
            }
        }
    }

    /// True when bytes are queued inside the stream (TLS records not yet sent).
    pub fn has_pending_output(&self) -> bool {
        match &self.io {
            Io::Plain(_) => false,
            Io::Tls(tls) => tls.session.wants_write(),
        }
    }

    /// Sends queued TLS records, if any.
    pub fn flush(&mut self) -> io::Result<()> {
        match &mut self.io {
            Io::Plain(_) => Ok(()),
            Io::Tls(tls) => tls.flush_while_writable(&mut self.writable),
        }
    }

    /// Starts a clean close: TLS `close_notify`, then a FIN after what is queued.
    pub fn shutdown_write(&mut self) {
        if let Io::Tls(tls) = &mut self.io {
            tls.session.send_close_notify();
            let _ = tls.flush_while_writable(&mut self.writable);
        }
        let _ = self.tcp().shutdown(std::net::Shutdown::Write);
    }

    pub fn is_handshaking(&self) -> bool {
        match &self.io {
            Io::Plain(_) => false,
            Io::Tls(tls) => tls.session.is_handshaking(),
        }
    }
}

/// Spare capacity below which a read first makes the buffer larger.
const MIN_READ_SPACE: usize = 4 * 1024;
/// How much a read makes a nearly full buffer grow by, at most.
const READ_GROWTH: usize = 16 * 1024;

/// Returns how many bytes the next read into `buf` may request, at most `room`, growing the
/// buffer only when its spare capacity is nearly used up, and then by a bounded step.
/// Reserving all of `room` at once would make every read of a pooled buffer reallocate and
/// copy it whenever the caller's limit is larger than the pooled size.
fn read_space(buf: &mut BytesMut, room: usize) -> usize {
    let spare = buf.capacity() - buf.len();
    if spare < room.min(MIN_READ_SPACE) {
        buf.reserve(room.min(READ_GROWTH));
    }
    (buf.capacity() - buf.len()).min(room)
}

/// Reads into the spare capacity of `buf`, at most `room` bytes. Returns what read(2)
/// returned (None for `WouldBlock`) and how many bytes it was asked for: a read that returns
/// fewer than that drained the socket.
fn read_plain(tcp: &mut TcpStream, buf: &mut BytesMut, room: usize) -> io::Result<(Option<usize>, usize)> {
    let len = read_space(buf, room);
    let spare = buf.chunk_mut();
    let len = spare.len().min(len);
    loop {
        // SAFETY: `spare` is valid for writes of `len` bytes (spare capacity reserved above),
        // and read(2) only writes into it; it never reads the uninitialised bytes.
        let result = unsafe { libc::read(tcp.as_raw_fd(), spare.as_mut_ptr().cast(), len) };
        if result >= 0 {
            let n = result as usize;
            // SAFETY: read(2) initialised exactly `n` bytes of the spare capacity.
            unsafe { buf.advance_mut(n) };
            return Ok((Some(n), len));
        }
        let error = io::Error::last_os_error();
        match error.kind() {
            io::ErrorKind::WouldBlock => return Ok((None, len)),
            io::ErrorKind::Interrupted => continue,
            _ => return Err(error),
        }
    }
}

enum TlsRead {
    Data(usize),
    Blocked,
    Closed,
}

impl TlsIo {
    fn read(&mut self, buf: &mut BytesMut, room: usize) -> io::Result<TlsRead> {
        loop {
            // Plaintext already decrypted comes first, copied straight from rustls's buffer.
            let mut reader = self.session.reader();
            match reader.fill_buf() {
                Ok([]) => return Ok(TlsRead::Closed),
                Ok(chunk) => {
                    let n = chunk.len().min(read_space(buf, room));
                    buf.extend_from_slice(&chunk[..n]);
                    reader.consume(n);
                    return Ok(TlsRead::Data(n));
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                Err(error) => return Err(error),
            }
            if !self.tcp_readable {
                return Ok(TlsRead::Blocked);
            }
            match self.session.read_tls(&mut self.tcp) {
                Ok(0) => {
                    self.tcp_readable = false;
                    return Ok(TlsRead::Closed);
                }
                Ok(_) => {}
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    self.tcp_readable = false;
                    return Ok(TlsRead::Blocked);
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error),
            }
            if let Err(error) = self.session.process_new_packets() {
                // Send the alert rustls prepared, then fail.
                let _ = self.session.write_tls(&mut self.tcp);
                return Err(io::Error::new(io::ErrorKind::InvalidData, error));
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        let mut writable = true;
        self.flush_while_writable(&mut writable)
    }

    fn flush_while_writable(&mut self, writable: &mut bool) -> io::Result<()> {
        while self.session.wants_write() && *writable {
            match self.session.write_tls(&mut self.tcp) {
                Ok(_) => {}
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => *writable = false,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }
}
