//! PLACEHOLDER
#![allow(dead_code, unused_variables)]
pub struct Template;
#[derive(Debug)]
pub struct TemplateError;
impl std::fmt::Display for TemplateError { fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("x") } }
#[derive(Debug)]
pub struct RenderError;
impl std::fmt::Display for RenderError { fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("x") } }
pub struct TemplateContext<'a> {
    pub subject: &'a str,
    pub extra: &'a [u8],
    pub method: &'a str,
    pub scheme: &'a str, pub host: &'a str, pub path: &'a str, pub raw_query: &'a str,
    pub captures: &'a [String],
    pub header: &'a dyn Fn(&str) -> Option<&'a str>,
}
impl Template {
    pub fn parse(source: &str) -> Result<Template, TemplateError> { todo!() }
    pub fn render(&self, context: &TemplateContext<'_>, out: &mut String) -> Result<(), RenderError> { todo!() }
    pub fn uses_captures(&self) -> bool { false }
    pub fn is_literal(&self) -> bool { false }
}
