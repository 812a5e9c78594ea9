//! PLACEHOLDER
#![allow(dead_code, unused_variables)]
use std::borrow::Cow;
pub struct JsonPath;
#[derive(Debug)]
pub struct JsonPathError;
impl std::fmt::Display for JsonPathError { fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("x") } }
#[derive(Debug)]
pub struct JsonError;
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JsonKind { Null, Bool, Number, String, Array, Object }
impl JsonPath {
    pub fn parse(path: &str) -> Result<JsonPath, JsonPathError> { todo!() }
    pub fn find<'a>(&self, document: &'a [u8]) -> Option<RawJson<'a>> { todo!() }
}
pub fn validate(document: &[u8], max_depth: usize) -> Result<(), JsonError> { todo!() }
#[derive(Clone, Copy)]
pub struct RawJson<'a>(&'a [u8]);
impl<'a> RawJson<'a> {
    pub fn kind(&self) -> JsonKind { todo!() }
    pub fn raw(&self) -> &'a [u8] { self.0 }
    pub fn get(&self, key: &str) -> Option<RawJson<'a>> { todo!() }
    pub fn index(&self, i: usize) -> Option<RawJson<'a>> { todo!() }
    pub fn as_str(&self) -> Option<Cow<'a, str>> { todo!() }
    pub fn write_text(&self, out: &mut String) { todo!() }
}
pub fn root(document: &[u8]) -> Option<RawJson<'_>> { todo!() }
impl std::fmt::Display for JsonPath { fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("x") } }
