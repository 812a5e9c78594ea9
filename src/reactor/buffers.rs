//! Per-worker pool of I/O buffers. Idle keep-alive connections hold no buffer: a connection
//! takes one when it has bytes to keep and gives it back when it is empty again, so memory
//! grows with busy connections, not with open ones.

use bytes::BytesMut;

use crate::http::{RequestHead, ResponseHead};

/// Capacity of a pooled buffer. A whole request head must fit in a read buffer, so a
/// connection may grow its buffer up to the head limit; such grown buffers are not pooled.
pub const BUFFER_BYTES: usize = 16 * 1024;

/// Parsed heads kept for reuse per worker; beyond this, returned ones are freed.
const MAX_POOLED: usize = 64;

/// Buffers kept for reuse per worker while it is busy. With 64 busy connections a worker has
/// up to four buffers per connection out at once (client and upstream, read and write), and
/// a smaller pool freed buffers at one moment only to allocate them again the next.
const MAX_POOLED_BUFFERS: usize = 1024;

/// Buffers kept once the worker is idle: [`BufferPool::shrink`] frees the rest, so that a
/// burst does not hold its peak memory afterwards.
const IDLE_POOLED_BUFFERS: usize = 64;

#[derive(Default)]
pub struct BufferPool {
    free: Vec<BytesMut>,
    /// Parsed-head storage, lent to connections while they handle a request, so that idle
    /// keep-alive connections hold none and busy ones do not allocate.
    request_heads: Vec<RequestHead>,
    response_heads: Vec<ResponseHead>,
}

impl BufferPool {
    /// Returns an empty buffer with at least `BUFFER_BYTES` of capacity.
    pub fn take(&mut self) -> BytesMut {
        self.free.pop().unwrap_or_else(|| BytesMut::with_capacity(BUFFER_BYTES))
    }

    /// Gives `buffer` back if it is empty; a buffer that still holds bytes is left alone.
    pub fn give(&mut self, buffer: &mut BytesMut) {
        if !buffer.is_empty() || buffer.capacity() == 0 {
            return;
        }
        let mut buffer = std::mem::take(buffer);
        if self.free.len() >= MAX_POOLED_BUFFERS || buffer.capacity() > 4 * BUFFER_BYTES {
            return;
        }
        // An empty buffer that was read through has its start moved forward; reserving
        // rewinds it to the start of its allocation without allocating.
        buffer.reserve(BUFFER_BYTES);
        self.free.push(buffer);
    }

    /// Frees pooled buffers beyond [`IDLE_POOLED_BUFFERS`].
    pub fn shrink(&mut self) {
        self.free.truncate(IDLE_POOLED_BUFFERS);
        self.free.shrink_to(IDLE_POOLED_BUFFERS);
    }

    /// Returns whether [`BufferPool::shrink`] would free buffers.
    pub fn has_excess(&self) -> bool {
        self.free.len() > IDLE_POOLED_BUFFERS
    }

    pub fn take_request_head(&mut self) -> RequestHead {
        self.request_heads.pop().unwrap_or_default()
    }

    pub fn give_request_head(&mut self, head: RequestHead) {
        if self.request_heads.len() < MAX_POOLED {
            self.request_heads.push(head);
        }
    }

    pub fn take_response_head(&mut self) -> ResponseHead {
        self.response_heads.pop().unwrap_or_default()
    }

    /// Keeps `head` for reuse. A head without storage is not kept, because it would take the
    /// place of a head that has storage.
    pub fn give_response_head(&mut self, head: ResponseHead) {
        if head.has_storage() && self.response_heads.len() < MAX_POOLED {
            self.response_heads.push(head);
        }
    }

    /// Makes sure `buffer` has storage, taking a pooled one if it has none.
    pub fn ensure(&mut self, buffer: &mut BytesMut) {
        if buffer.capacity() == 0 {
            *buffer = self.take();
        }
    }
}
