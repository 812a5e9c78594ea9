use super::*;
#[derive(Clone, Debug)]
pub struct RequestLimits { pub max_head_bytes: usize, pub max_request_line_bytes: usize, pub max_header_line_bytes: usize, pub max_headers: usize }
impl Default for RequestLimits { fn default() -> Self { RequestLimits { max_head_bytes: 32768, max_request_line_bytes: 8192, max_header_line_bytes: 8192, max_headers: 100 } } }
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RequestError { #[error("x")] Invalid }
impl RequestError { pub fn status(&self) -> u16 { 400 } pub fn reason(&self) -> &'static str { "" } }
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestBody { None, Length(u64), Chunked }
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetForm { Origin, Absolute, Authority, Asterisk }
#[derive(Default)]
pub struct RequestHead;
impl RequestHead {
    pub fn new() -> Self { RequestHead }
    pub fn parse(&mut self, input: &[u8], limits: &RequestLimits) -> Result<Option<usize>, RequestError> { todo!() }
    pub fn method(&self) -> Method { todo!() }
    pub fn method_bytes(&self) -> &[u8] { todo!() }
    pub fn version(&self) -> Version { todo!() }
    pub fn target_form(&self) -> TargetForm { todo!() }
    pub fn raw_target(&self) -> &[u8] { todo!() }
    pub fn path(&self) -> &[u8] { todo!() }
    pub fn path_info(&self) -> PathInfo { todo!() }
    pub fn query(&self) -> Option<&[u8]> { todo!() }
    pub fn host(&self) -> Option<&[u8]> { todo!() }
    pub fn headers(&self) -> impl Iterator<Item = (&[u8], &[u8])> { std::iter::empty() }
    pub fn header(&self, name: &[u8]) -> Option<&[u8]> { todo!() }
    pub fn header_count(&self) -> usize { todo!() }
    pub fn body(&self) -> RequestBody { todo!() }
    pub fn keep_alive(&self) -> bool { todo!() }
    pub fn expect_continue(&self) -> bool { todo!() }
    pub fn upgrade(&self) -> Option<&[u8]> { todo!() }
    pub fn connection_tokens(&self) -> impl Iterator<Item = &[u8]> { std::iter::empty() }
}
