//! Load-time detection of rules that can match the same request.
//!
//! Two rules overlap when their method sets intersect, priority does not separate them, and
//! some URL is in both patterns' languages. The last question is decided exactly by walking
//! the product of the two patterns' anchored DFAs until both accept (overlap) or every
//! reachable pair of states has been seen (disjoint). Pairs whose literal prefixes or
//! suffixes already disagree are rejected before any DFA is built, which keeps large rule sets
//! with distinct URL prefixes cheap.

use std::collections::{HashSet, VecDeque};

use regex_automata::dfa::{dense, Automaton, StartKind};
use regex_automata::util::primitives::StateID;
use regex_automata::util::start;
use regex_automata::{Anchored, MatchKind};

use super::CompiledRule;

/// Maximum number of product states visited for one pair before giving up.
const PRODUCT_STATE_LIMIT: usize = 100_000;

/// Maximum size in bytes of one rule's DFA, and of the determinizer's working memory.
const DFA_SIZE_LIMIT_BYTES: usize = 8 << 20;

/// The reason a pair of rules could not be decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UndecidedReason {
    /// One of the rules needs the backtracking engine (look-around, backreferences), for
    /// which no DFA exists.
    Backtracking,
    /// A rule's DFA exceeds the size limit, or the pattern has a feature the DFA cannot
    /// represent (such as a Unicode word boundary on non-ASCII input).
    DfaUnavailable,
    /// The product walk reached its state limit without finding a common URL.
    SearchLimit,
}

/// A pair of rules that may match the same request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PossibleOverlap {
    /// The lower rule index.
    pub first: usize,
    /// The higher rule index.
    pub second: usize,
    /// The reason the analysis could not decide.
    pub reason: UndecidedReason,
}

/// The result of [`super::RuleMatcher::overlapping_pairs`]. Pairs are ordered by index with
/// `first < second`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OverlapReport {
    /// Pairs for which a common request exists.
    pub overlapping: Vec<(usize, usize)>,
    /// Pairs the analysis could not decide; treat them as a warning.
    pub possibly_overlapping: Vec<PossibleOverlap>,
}

enum Verdict {
    Disjoint,
    Overlap,
    Undecided(UndecidedReason),
}

pub(super) fn find_overlaps(rules: &[CompiledRule]) -> OverlapReport {
    let mut pairs = Vec::new();
    for (first, rule_a) in rules.iter().enumerate() {
        for (offset, rule_b) in rules
            .get(first + 1..)
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            if candidates(rule_a, rule_b) {
                pairs.push((first, first + 1 + offset));
            }
        }
    }

    // Build a DFA only for the rules that some surviving pair needs.
    let mut needs_dfa = vec![false; rules.len()];
    for &(first, second) in &pairs {
        for index in [first, second] {
            if let Some(flag) = needs_dfa.get_mut(index) {
                *flag = true;
            }
        }
    }
    let dfas: Vec<Option<dense::DFA<Vec<u32>>>> = rules
        .iter()
        .zip(&needs_dfa)
        .map(|(rule, &needed)| {
            let supported = needed && rule.backtracking.is_none();
            supported.then(|| build_dfa(&rule.pattern.regex)).flatten()
        })
        .collect();

    let mut report = OverlapReport::default();
    for (first, second) in pairs {
        let (Some(rule_a), Some(rule_b)) = (rules.get(first), rules.get(second)) else {
            continue;
        };
        let verdict = if rule_a.backtracking.is_some() || rule_b.backtracking.is_some() {
            Verdict::Undecided(UndecidedReason::Backtracking)
        } else {
            match (
                dfas.get(first).and_then(Option::as_ref),
                dfas.get(second).and_then(Option::as_ref),
            ) {
                (Some(a), Some(b)) => intersect(a, b),
                _ => Verdict::Undecided(UndecidedReason::DfaUnavailable),
            }
        };
        match verdict {
            Verdict::Disjoint => {}
            Verdict::Overlap => report.overlapping.push((first, second)),
            Verdict::Undecided(reason) => report.possibly_overlapping.push(PossibleOverlap {
                first,
                second,
                reason,
            }),
        }
    }
    report
}

/// Cheap tests that rule out a pair without looking at the URL languages in full.
pub(super) fn candidates(a: &CompiledRule, b: &CompiledRule) -> bool {
    if a.priority != b.priority {
        return false;
    }
    let shares_method = a.methods.iter().any(|method| {
        b.methods
            .iter()
            .any(|other| other.eq_ignore_ascii_case(method))
    });
    if !shares_method {
        return false;
    }
    // Every URL of a rule starts with its literal prefix and ends with its literal suffix,
    // so a common URL needs one prefix to extend the other, and likewise for suffixes.
    let (prefix_a, prefix_b) = (&a.pattern.prefix, &b.pattern.prefix);
    if !prefix_a.starts_with(prefix_b) && !prefix_b.starts_with(prefix_a) {
        return false;
    }
    let (suffix_a, suffix_b) = (&a.pattern.suffix, &b.pattern.suffix);
    suffix_a.ends_with(suffix_b) || suffix_b.ends_with(suffix_a)
}

fn build_dfa(source: &str) -> Option<dense::DFA<Vec<u32>>> {
    let config = dense::Config::new()
        .start_kind(StartKind::Anchored)
        .match_kind(MatchKind::All)
        .unicode_word_boundary(true)
        .dfa_size_limit(Some(DFA_SIZE_LIMIT_BYTES))
        .determinize_size_limit(Some(DFA_SIZE_LIMIT_BYTES));
    dense::Builder::new().configure(config).build(source).ok()
}

/// Decides whether two anchored DFAs accept a common string by breadth-first search over
/// pairs of states, stepping both with one representative byte per pair of byte classes.
fn intersect(a: &dense::DFA<Vec<u32>>, b: &dense::DFA<Vec<u32>>) -> Verdict {
    let start_config = start::Config::new().anchored(Anchored::Yes);
    let (Ok(start_a), Ok(start_b)) = (a.start_state(&start_config), b.start_state(&start_config))
    else {
        return Verdict::Undecided(UndecidedReason::DfaUnavailable);
    };

    // Bytes that both DFAs treat alike lead to the same pair of states, so one byte per
    // distinct (class in a, class in b) pair covers the whole alphabet.
    let mut seen_classes: HashSet<(u8, u8)> = HashSet::new();
    let representatives: Vec<u8> = (0..=u8::MAX)
        .filter(|&byte| {
            seen_classes.insert((a.byte_classes().get(byte), b.byte_classes().get(byte)))
        })
        .collect();

    let mut visited: HashSet<(StateID, StateID)> = HashSet::new();
    let mut queue: VecDeque<(StateID, StateID)> = VecDeque::new();
    visited.insert((start_a, start_b));
    queue.push_back((start_a, start_b));

    while let Some((state_a, state_b)) = queue.pop_front() {
        // A DFA reports a match one step late, so acceptance of the string read so far shows
        // in the state after the end-of-input transition.
        let accepts_a = a.is_match_state(a.next_eoi_state(state_a));
        let accepts_b = b.is_match_state(b.next_eoi_state(state_b));
        if accepts_a && accepts_b {
            return Verdict::Overlap;
        }
        for &byte in &representatives {
            let next_a = a.next_state(state_a, byte);
            let next_b = b.next_state(state_b, byte);
            if a.is_dead_state(next_a) || b.is_dead_state(next_b) {
                continue;
            }
            if a.is_quit_state(next_a) || b.is_quit_state(next_b) {
                return Verdict::Undecided(UndecidedReason::DfaUnavailable);
            }
            if visited.insert((next_a, next_b)) {
                if visited.len() > PRODUCT_STATE_LIMIT {
                    return Verdict::Undecided(UndecidedReason::SearchLimit);
                }
                queue.push_back((next_a, next_b));
            }
        }
    }
    Verdict::Disjoint
}
