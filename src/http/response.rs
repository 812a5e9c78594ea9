use super::*;
#[derive(Clone, Debug)]
pub struct ResponseLimits { pub max_head_bytes: usize, pub max_headers: usize }
impl Default for ResponseLimits { fn default() -> Self { ResponseLimits { max_head_bytes: 32768, max_headers: 100 } } }
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError { #[error("x")] Invalid }
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseBody { None, Length(u64), Chunked, CloseDelimited }
#[derive(Default)]
pub struct ResponseHead;
impl ResponseHead {
    pub fn new() -> Self { ResponseHead }
    pub fn parse(&mut self, input: &[u8], request_method: Method, limits: &ResponseLimits) -> Result<Option<usize>, ResponseError> { todo!() }
    pub fn status(&self) -> u16 { todo!() }
    pub fn reason(&self) -> &[u8] { todo!() }
    pub fn version(&self) -> Version { todo!() }
    pub fn headers(&self) -> impl Iterator<Item = (&[u8], &[u8])> { std::iter::empty() }
    pub fn header(&self, name: &[u8]) -> Option<&[u8]> { todo!() }
    pub fn body(&self) -> ResponseBody { todo!() }
    pub fn keep_alive(&self) -> bool { todo!() }
    pub fn connection_tokens(&self) -> impl Iterator<Item = &[u8]> { std::iter::empty() }
}
