#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PathInfo { pub encoded_slash: bool }
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PathError { #[error("x")] Invalid }
pub fn normalize_path(raw: &[u8], out: &mut Vec<u8>) -> Result<PathInfo, PathError> { todo!() }
