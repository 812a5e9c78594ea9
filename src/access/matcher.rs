//! PLACEHOLDER
#![allow(dead_code, unused_variables)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchingStrategy { Regexp, Glob }
pub struct RuleSpec<'a> { pub url: &'a str, pub methods: &'a [String], pub priority: Option<i32> }
pub struct RuleMatcher;
pub struct MatchScratch;
#[derive(Debug)]
pub struct PatternError;
impl std::fmt::Display for PatternError { fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("x") } }
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchOutcome { NoMatch, Matched(usize), Ambiguous { first: usize, second: usize } }
impl RuleMatcher {
    pub fn compile(strategy: MatchingStrategy, rules: &[RuleSpec<'_>]) -> Result<Self, Vec<(usize, PatternError)>> { todo!() }
    pub fn new_scratch(&self) -> MatchScratch { MatchScratch }
    pub fn find(&self, method: &[u8], url: &[u8], scratch: &mut MatchScratch) -> MatchOutcome { todo!() }
    pub fn captures(&self, index: usize, url: &str) -> Vec<String> { todo!() }
    pub fn overlapping_pairs(&self) -> Vec<(usize, usize)> { todo!() }
    pub fn len(&self) -> usize { 0 }
}
