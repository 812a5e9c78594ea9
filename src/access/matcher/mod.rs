//! Oathkeeper access-rule URL matching: which rule a request belongs to.
//!
//! Every rule's `match.url` is compiled at load time into one multi-pattern automaton, so a
//! request costs one scan no matter how many rules there are. The `pattern` submodule
//! contains the `regexp` and `glob` translations. Rules whose bodies need look-around are
//! matched one by one with `fancy_regex` after the scan. The caller passes the URL as `scheme://host/path`
//! (host with the port if the `Host` header had one, no query), the path already cleaned.
//! Matching is byte-exact, as in Oathkeeper: the caller decides whether to lower-case the
//! scheme and host first.

mod overlap;
mod pattern;

#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use regex_automata::meta;
use regex_automata::{Anchored, Input, MatchKind, PatternSet};

pub use overlap::{OverlapReport, PossibleOverlap, UndecidedReason};
pub use pattern::{GlobError, PatternError};

/// Maximum size in bytes of the Thompson NFA compiled from all rules together.
const SET_NFA_SIZE_LIMIT_BYTES: usize = 64 << 20;

/// Maximum size in bytes of the NFA for one rule's capture-group regex.
const RULE_NFA_SIZE_LIMIT_BYTES: usize = 10 << 20;

/// The syntax of `<...>` bodies in `match.url` (Oathkeeper's `access_rules.matching_strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MatchingStrategy {
    /// `<...>` bodies are regular expressions (Oathkeeper's default).
    #[default]
    Regexp,
    /// `<...>` bodies are gobwas/glob patterns with `.` and `/` as separators.
    Glob,
}

/// The matching part of one access rule, borrowed from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct RuleSpec<'a> {
    /// `match.url`, with `<...>` parts.
    pub url: &'a str,
    /// `match.methods`, compared case-insensitively. An empty list matches no request.
    pub methods: &'a [String],
    /// Explicit priority. When several rules match, the highest priority wins and any
    /// priority beats none.
    pub priority: Option<i32>,
}

/// The result of [`RuleMatcher::find`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOutcome {
    /// No rule matches (Oathkeeper responds with 404).
    NoMatch,
    /// Exactly one rule wins. Carries its index into the rules given to
    /// [`RuleMatcher::compile`].
    Matched(usize),
    /// A rule that needs backtracking (look-around) ran out of its step budget on this URL,
    /// so whether it matches is unknown. The gateway answers 500 rather than guess, because
    /// guessing "no match" could let a weaker overlapping rule apply.
    Undecided {
        /// The rule whose pattern could not be decided.
        rule: usize,
    },
    /// Several rules match and priority does not separate the best ones (Oathkeeper responds
    /// with 500). Carries the two lowest indexes among the tied rules, `first < second`.
    Ambiguous {
        /// The lowest tied index.
        first: usize,
        /// The second lowest tied index.
        second: usize,
    },
}

#[derive(Debug)]
struct CompiledRule {
    pattern: pattern::CompiledPattern,
    /// Methods in upper case.
    methods: Box<[Box<[u8]>]>,
    priority: Option<i32>,
    /// Present for rules whose regex needs look-around or backreferences.
    backtracking: Option<fancy_regex::Regex>,
    /// Leftmost-first regex for capture groups, built on first use.
    captures: OnceLock<Option<regex::Regex>>,
}

impl CompiledRule {
    fn allows_method(&self, method: &[u8]) -> bool {
        self.methods.iter().any(|m| m.eq_ignore_ascii_case(method))
    }
}

/// All access rules compiled for matching. Shared read-only by the worker threads.
#[derive(Debug)]
pub struct RuleMatcher {
    id: u64,
    strategy: MatchingStrategy,
    rules: Vec<CompiledRule>,
    /// One automaton for every rule that the regex crate supports.
    set: Option<meta::Regex>,
    /// Rule index of each pattern in `set`.
    set_rules: Vec<usize>,
    /// Rules matched one by one with the backtracking engine.
    backtracking_rules: Vec<usize>,
}

/// Per-thread search state for [`RuleMatcher::find`], reused across requests.
#[derive(Debug)]
pub struct MatchScratch {
    owner: u64,
    cache: Option<meta::Cache>,
    matched: PatternSet,
}

static NEXT_MATCHER_ID: AtomicU64 = AtomicU64::new(0);

impl RuleMatcher {
    /// Compiles every rule. Returns all pattern errors (index and error), not just the first.
    pub fn compile(
        strategy: MatchingStrategy,
        rules: &[RuleSpec<'_>],
    ) -> Result<Self, Vec<(usize, PatternError)>> {
        let mut errors = Vec::new();
        let mut compiled = Vec::with_capacity(rules.len());
        for (index, spec) in rules.iter().enumerate() {
            match compile_rule(strategy, spec) {
                Ok(rule) => compiled.push(rule),
                Err(error) => errors.push((index, error)),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }

        let mut set_rules = Vec::new();
        let mut backtracking_rules = Vec::new();
        for (index, rule) in compiled.iter().enumerate() {
            if rule.backtracking.is_some() {
                backtracking_rules.push(index);
            } else {
                set_rules.push(index);
            }
        }
        let set = if set_rules.is_empty() {
            None
        } else {
            let sources: Vec<&str> = set_rules
                .iter()
                .filter_map(|&index| compiled.get(index))
                .map(|rule| rule.pattern.regex.as_str())
                .collect();
            let built = meta::Builder::new()
                .configure(set_config(sources.len()))
                .build_many(&sources);
            Some(built.map_err(|error| attribute_set_error(&compiled, &set_rules, error))?)
        };

        Ok(RuleMatcher {
            id: NEXT_MATCHER_ID.fetch_add(1, Ordering::Relaxed),
            strategy,
            rules: compiled,
            set,
            set_rules,
            backtracking_rules,
        })
    }

    /// Creates the per-thread search state for [`RuleMatcher::find`].
    pub fn new_scratch(&self) -> MatchScratch {
        MatchScratch {
            owner: self.id,
            cache: self.set.as_ref().map(meta::Regex::create_cache),
            matched: PatternSet::new(self.set_rules.len()),
        }
    }

    /// Finds the one rule for a request. Zero-allocation once `scratch` has warmed up, except
    /// for rules that need the backtracking engine, which allocates per attempt and is tried
    /// only when the URL starts and ends with the rule's literal text and the method fits.
    ///
    /// A scratch made by another matcher is replaced first, which allocates once.
    pub fn find(&self, method: &[u8], url: &[u8], scratch: &mut MatchScratch) -> MatchOutcome {
        if scratch.owner != self.id {
            *scratch = self.new_scratch();
        }
        let mut best = Best::default();

        if let (Some(set), Some(cache)) = (&self.set, scratch.cache.as_mut()) {
            scratch.matched.clear();
            let input = Input::new(url).anchored(Anchored::Yes);
            set.which_overlapping_matches_with(cache, &input, &mut scratch.matched);
            for pattern in scratch.matched.iter() {
                let Some(&index) = self.set_rules.get(pattern.as_usize()) else {
                    continue;
                };
                if let Some(rule) = self.rules.get(index) {
                    if rule.allows_method(method) {
                        best.offer(index, rule.priority);
                    }
                }
            }
        }

        if !self.backtracking_rules.is_empty() {
            if let Ok(text) = std::str::from_utf8(url) {
                for &index in &self.backtracking_rules {
                    let Some(rule) = self.rules.get(index) else {
                        continue;
                    };
                    let Some(regex) = &rule.backtracking else {
                        continue;
                    };
                    let plausible = url.starts_with(&rule.pattern.prefix)
                        && url.ends_with(&rule.pattern.suffix)
                        && rule.allows_method(method);
                    if !plausible {
                        continue;
                    }
                    match regex.is_match(text) {
                        Ok(true) => best.offer(index, rule.priority),
                        Ok(false) => {}
                        Err(_) => return MatchOutcome::Undecided { rule: index },
                    }
                }
            }
        }

        best.outcome()
    }

    /// True when rule `index` needs the backtracking engine (look-around), which is slower
    /// and may deny a request whose URL exhausts the step budget.
    pub fn needs_backtracking(&self, index: usize) -> bool {
        self.backtracking_rules.contains(&index)
    }

    /// Returns the regexp capture groups of rule `index` on `url`, group 1 first, with `""`
    /// for a group that did not take part. Empty in glob mode, for an unknown index or when
    /// the rule does not match.
    pub fn captures(&self, index: usize, url: &str) -> Vec<String> {
        if self.strategy == MatchingStrategy::Glob {
            return Vec::new();
        }
        let Some(rule) = self.rules.get(index) else {
            return Vec::new();
        };
        if let Some(regex) = &rule.backtracking {
            return match regex.captures(url) {
                Ok(Some(groups)) => (1..groups.len())
                    .map(|i| {
                        groups
                            .get(i)
                            .map_or_else(String::new, |m| m.as_str().to_owned())
                    })
                    .collect(),
                _ => Vec::new(),
            };
        }
        let regex = rule.captures.get_or_init(|| {
            regex::RegexBuilder::new(&rule.pattern.regex)
                .size_limit(RULE_NFA_SIZE_LIMIT_BYTES)
                .build()
                .ok()
        });
        match regex.as_ref().and_then(|regex| regex.captures(url)) {
            Some(groups) => groups
                .iter()
                .skip(1)
                .map(|group| group.map_or_else(String::new, |m| m.as_str().to_owned()))
                .collect(),
            None => Vec::new(),
        }
    }

    /// Returns the pairs of rules that some request (method and URL) matches at the same time
    /// and that priority does not separate: `overlapping` for pairs proven to overlap,
    /// `possibly_overlapping` for pairs the analysis could not decide. Used at load time and
    /// by `portcullis check`.
    pub fn overlapping_pairs(&self) -> OverlapReport {
        overlap::find_overlaps(&self.rules)
    }

    /// Returns the number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Returns true when there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Returns true when rule `index` lists no methods and so can never match.
    pub fn methods_is_empty(&self, index: usize) -> bool {
        self.rules
            .get(index)
            .is_some_and(|rule| rule.methods.is_empty())
    }

    /// Returns the anchored regex source that rule `index` compiled to, for diagnostics.
    pub fn regex_source(&self, index: usize) -> Option<&str> {
        self.rules
            .get(index)
            .map(|rule| rule.pattern.regex.as_str())
    }

    /// Returns the matching strategy the rules were compiled with.
    pub fn strategy(&self) -> MatchingStrategy {
        self.strategy
    }
}

/// Backtracking steps one look-around rule may take per URL. fancy_regex's default of a
/// million let one crafted URL hold an event loop for tens of milliseconds; this bound keeps
/// it well under a millisecond, and running out denies the request (`Undecided`).
const BACKTRACK_LIMIT: usize = 10_000;

fn compile_rule(
    strategy: MatchingStrategy,
    spec: &RuleSpec<'_>,
) -> Result<CompiledRule, PatternError> {
    let pattern = pattern::compile_pattern(strategy, spec.url)?;
    let backtracking = if pattern.needs_backtracking {
        let regex = fancy_regex::RegexBuilder::new(&pattern.regex).backtrack_limit(BACKTRACK_LIMIT).build().map_err(|error| {
            PatternError::InvalidRegex {
                offset: 0,
                message: error.to_string(),
            }
        })?;
        Some(regex)
    } else {
        None
    };
    Ok(CompiledRule {
        pattern,
        methods: spec
            .methods
            .iter()
            .map(|method| method.to_ascii_uppercase().into_bytes().into_boxed_slice())
            .collect(),
        priority: spec.priority,
        backtracking,
        captures: OnceLock::new(),
    })
}

fn set_config(pattern_count: usize) -> meta::Config {
    meta::Config::new()
        .match_kind(MatchKind::All)
        .nfa_size_limit(Some(SET_NFA_SIZE_LIMIT_BYTES))
        .hybrid_cache_capacity(lazy_dfa_cache_bytes(pattern_count))
}

/// Upper bound in bytes of one scratch's lazy DFA cache, which grows as states are built.
///
/// The lazy DFA keeps a start state per pattern, and below a minimum capacity that grows with
/// the pattern count it refuses to build, leaving the slow PikeVM. With 1,000 rules of the
/// `https://host/prefix<...>` shape the default 2 MiB is below that minimum and 4 MiB is
/// above it; 8 KiB per rule leaves headroom for longer patterns.
fn lazy_dfa_cache_bytes(pattern_count: usize) -> usize {
    const MINIMUM_BYTES: usize = 2 << 20;
    const BYTES_PER_RULE: usize = 8 << 10;
    pattern_count
        .saturating_mul(BYTES_PER_RULE)
        .max(MINIMUM_BYTES)
}

/// Finds which rules make the combined automaton fail to build by compiling each alone.
fn attribute_set_error(
    rules: &[CompiledRule],
    set_rules: &[usize],
    error: meta::BuildError,
) -> Vec<(usize, PatternError)> {
    let mut errors: Vec<(usize, PatternError)> = set_rules
        .iter()
        .filter_map(|&index| {
            let rule = rules.get(index)?;
            let single = meta::Builder::new()
                .configure(set_config(1).nfa_size_limit(Some(RULE_NFA_SIZE_LIMIT_BYTES)))
                .build(&rule.pattern.regex);
            single.err().map(|error| (index, build_error(error)))
        })
        .collect();
    if errors.is_empty() {
        // Every rule compiles alone, so only their sum is too large. Blame the last rule.
        let last = set_rules.last().copied().unwrap_or(0);
        errors.push((last, build_error(error)));
    }
    errors
}

fn build_error(error: meta::BuildError) -> PatternError {
    if error.size_limit().is_some() {
        PatternError::TooLarge {
            message: error.to_string(),
        }
    } else {
        PatternError::InvalidRegex {
            offset: 0,
            message: error.to_string(),
        }
    }
}

/// The best rule so far under the priority order, and the runner-up when they tie.
#[derive(Debug, Default)]
struct Best {
    top: Option<(usize, Option<i32>)>,
    tied: Option<usize>,
}

impl Best {
    fn offer(&mut self, index: usize, priority: Option<i32>) {
        // `Option` orders `None` below every `Some`, which is the precedence rules need.
        match self.top {
            None => self.top = Some((index, priority)),
            Some((_, best)) if priority > best => {
                self.top = Some((index, priority));
                self.tied = None;
            }
            Some((first, best)) if priority == best => {
                if index < first {
                    self.top = Some((index, priority));
                    self.tied = Some(first);
                } else if self.tied.is_none_or(|second| index < second) {
                    self.tied = Some(index);
                }
            }
            Some(_) => {}
        }
    }

    fn outcome(&self) -> MatchOutcome {
        match (self.top, self.tied) {
            (None, _) => MatchOutcome::NoMatch,
            (Some((first, _)), Some(second)) => MatchOutcome::Ambiguous { first, second },
            (Some((index, _)), None) => MatchOutcome::Matched(index),
        }
    }
}
