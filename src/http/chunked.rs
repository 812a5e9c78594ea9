#[derive(Clone, Copy, Debug)]
pub struct ChunkedLimits { pub max_extension_bytes: usize, pub max_trailer_bytes: usize }
impl Default for ChunkedLimits { fn default() -> Self { ChunkedLimits { max_extension_bytes: 16384, max_trailer_bytes: 16384 } } }
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChunkedError { #[error("x")] Invalid }
pub struct ChunkStep { pub consumed: usize, pub data: Option<core::ops::Range<usize>>, pub done: bool }
#[derive(Clone, Copy, Debug)]
pub struct ChunkedDecoder;
impl ChunkedDecoder {
    pub fn new(limits: ChunkedLimits) -> Self { ChunkedDecoder }
    pub fn decode(&mut self, input: &[u8]) -> Result<ChunkStep, ChunkedError> { todo!() }
    pub fn is_done(&self) -> bool { todo!() }
}
pub fn write_chunk_size(out: &mut impl bytes::BufMut, len: usize) { todo!() }
pub const CHUNK_END: &[u8] = b"\r\n";
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";
