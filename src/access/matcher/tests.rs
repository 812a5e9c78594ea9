use super::*;
use crate::access::allocation_counter::count_allocations;

fn methods(list: &[&str]) -> Vec<String> {
    list.iter().map(|m| (*m).to_owned()).collect()
}

struct Rule {
    url: &'static str,
    methods: Vec<String>,
    priority: Option<i32>,
}

fn rule(url: &'static str) -> Rule {
    Rule {
        url,
        methods: methods(&["GET"]),
        priority: None,
    }
}

fn with_priority(url: &'static str, priority: i32) -> Rule {
    Rule {
        priority: Some(priority),
        ..rule(url)
    }
}

fn compile(strategy: MatchingStrategy, rules: &[Rule]) -> RuleMatcher {
    let specs: Vec<RuleSpec<'_>> = rules
        .iter()
        .map(|r| RuleSpec {
            url: r.url,
            methods: &r.methods,
            priority: r.priority,
        })
        .collect();
    RuleMatcher::compile(strategy, &specs).expect("rules compile")
}

fn compile_errors(strategy: MatchingStrategy, urls: &[&str]) -> Vec<(usize, PatternError)> {
    let get = methods(&["GET"]);
    let specs: Vec<RuleSpec<'_>> = urls
        .iter()
        .map(|url| RuleSpec {
            url,
            methods: &get,
            priority: None,
        })
        .collect();
    RuleMatcher::compile(strategy, &specs).expect_err("rules are rejected")
}

fn find(matcher: &RuleMatcher, method: &str, url: &str) -> MatchOutcome {
    let mut scratch = matcher.new_scratch();
    matcher.find(method.as_bytes(), url.as_bytes(), &mut scratch)
}

/// Checks one pattern against a table of URLs, each expected to match or not.
fn check_single(strategy: MatchingStrategy, pattern: &'static str, cases: &[(&str, bool)]) {
    let matcher = compile(strategy, &[rule(pattern)]);
    for (url, expected) in cases {
        let outcome = find(&matcher, "GET", url);
        let expected_outcome = if *expected {
            MatchOutcome::Matched(0)
        } else {
            MatchOutcome::NoMatch
        };
        assert_eq!(outcome, expected_outcome, "pattern {pattern:?} on {url:?}");
    }
}

#[test]
fn regexp_quotes_literal_text() {
    check_single(
        MatchingStrategy::Regexp,
        "https://example.com/api/v1.0/<.*>",
        &[
            ("https://example.com/api/v1.0/users", true),
            ("https://example.com/api/v1.0/", true),
            ("https://exampleXcom/api/v1.0/users", false),
            ("https://example.com/api/v1x0/users", false),
            ("http://example.com/api/v1.0/users", false),
            ("xhttps://example.com/api/v1.0/users", false),
        ],
    );
    check_single(
        MatchingStrategy::Regexp,
        "https://example.com/a+b(c)?",
        &[
            ("https://example.com/a+b(c)?", true),
            ("https://example.com/aab", false),
        ],
    );
}

#[test]
fn regexp_anchors_whole_url() {
    check_single(
        MatchingStrategy::Regexp,
        "https://example.com/<[0-9]+>",
        &[
            ("https://example.com/123", true),
            ("https://example.com/123/", false),
            ("https://example.com/12a", false),
            ("https://example.com/", false),
        ],
    );
}

#[test]
fn regexp_body_alternation_stays_in_group() {
    check_single(
        MatchingStrategy::Regexp,
        "https://example.com/<users|groups>/list",
        &[
            ("https://example.com/users/list", true),
            ("https://example.com/groups/list", true),
            ("https://example.com/users", false),
            ("groups/list", false),
        ],
    );
}

#[test]
fn regexp_allows_balanced_delimiters_in_body() {
    check_single(
        MatchingStrategy::Regexp,
        "https://example.com/<(?P<id>[^/<>]+)>/x",
        &[
            ("https://example.com/42/x", true),
            ("https://example.com/4/2/x", false),
        ],
    );
}

#[test]
fn regexp_negative_lookahead_uses_backtracking() {
    let pattern = "https://example.com/<(?!protected).*>";
    let matcher = compile(MatchingStrategy::Regexp, &[rule(pattern)]);
    assert!(matcher.backtracking_rules.contains(&0));
    check_single(
        MatchingStrategy::Regexp,
        pattern,
        &[
            ("https://example.com/public", true),
            ("https://example.com/", true),
            ("https://example.com/protected", false),
            ("https://example.com/protected/deep", false),
            ("https://example.org/public", false),
        ],
    );
}

#[test]
fn regexp_positive_lookahead_uses_backtracking() {
    check_single(
        MatchingStrategy::Regexp,
        "https://example.com/<(?=.*\\.json$).*>",
        &[
            ("https://example.com/a/b.json", true),
            ("https://example.com/a/b.xml", false),
        ],
    );
}

#[test]
fn regexp_lookbehind_counts_as_delimiter() {
    // `(?<!` opens a delimiter level, as it does in Oathkeeper, so the body never closes.
    let errors = compile_errors(
        MatchingStrategy::Regexp,
        &["https://example.com/<.*(?<!\\.php)>"],
    );
    assert_eq!(
        errors,
        vec![(0, PatternError::UnbalancedDelimiters { offset: 20 })]
    );
}

#[test]
fn backtracking_and_set_rules_combine() {
    let matcher = compile(
        MatchingStrategy::Regexp,
        &[
            rule("https://example.com/<(?!admin).*>"),
            rule("https://example.com/admin/<.*>"),
            rule("https://example.com/public"),
        ],
    );
    assert_eq!(
        find(&matcher, "GET", "https://example.com/admin/x"),
        MatchOutcome::Matched(1)
    );
    assert_eq!(
        find(&matcher, "GET", "https://example.com/public"),
        MatchOutcome::Ambiguous {
            first: 0,
            second: 2
        }
    );
    assert_eq!(
        find(&matcher, "GET", "https://example.com/other"),
        MatchOutcome::Matched(0)
    );
}

#[test]
fn glob_syntax_table() {
    let cases: &[(&'static str, &[(&str, bool)])] = &[
        (
            "https://example.com/<*>",
            &[
                ("https://example.com/users", true),
                ("https://example.com/", true),
                ("https://example.com/users/1", false),
                ("https://example.com/a.b", false),
            ],
        ),
        (
            "https://example.com/<**>",
            &[
                ("https://example.com/users/1/x.json", true),
                ("https://example.com/", true),
                ("https://example.org/", false),
            ],
        ),
        (
            "https://<*>.example.com/",
            &[
                ("https://api.example.com/", true),
                ("https://a.b.example.com/", false),
            ],
        ),
        (
            "https://example.com/v<?>/x",
            &[
                ("https://example.com/v1/x", true),
                ("https://example.com/v12/x", false),
                ("https://example.com/v/x", false),
                ("https://example.com/v//x", false),
                ("https://example.com/v./x", false),
                ("https://example.com/vé/x", true),
            ],
        ),
        (
            "https://example.com/<[abc]>",
            &[
                ("https://example.com/a", true),
                ("https://example.com/c", true),
                ("https://example.com/d", false),
                ("https://example.com/ab", false),
            ],
        ),
        (
            "https://example.com/<[a-c]>",
            &[
                ("https://example.com/b", true),
                ("https://example.com/d", false),
            ],
        ),
        (
            "https://example.com/<[!a-c]>",
            &[
                ("https://example.com/d", true),
                ("https://example.com/b", false),
                // gobwas/glob classes ignore separators.
                ("https://example.com//", true),
            ],
        ),
        (
            "https://example.com/<[!ab]>x",
            &[
                ("https://example.com/cx", true),
                ("https://example.com/ax", false),
            ],
        ),
        (
            "https://example.com/<{users,groups}>/<*>",
            &[
                ("https://example.com/users/1", true),
                ("https://example.com/groups/2", true),
                ("https://example.com/admins/3", false),
            ],
        ),
        (
            "https://example.com/<{a*,b?,c}>",
            &[
                ("https://example.com/abc", true),
                ("https://example.com/a", true),
                ("https://example.com/bx", true),
                ("https://example.com/bxy", false),
                ("https://example.com/c", true),
                ("https://example.com/a/b", false),
            ],
        ),
        (
            "https://example.com/<{a,{b,c}d}>",
            &[
                ("https://example.com/a", true),
                ("https://example.com/bd", true),
                ("https://example.com/cd", true),
                ("https://example.com/d", false),
            ],
        ),
        (
            "https://example.com/<{,x}>",
            &[
                ("https://example.com/", true),
                ("https://example.com/x", true),
            ],
        ),
        (
            "https://example.com/<\\*>",
            &[
                ("https://example.com/*", true),
                ("https://example.com/a", false),
            ],
        ),
        (
            "https://example.com/*?[x]{a}",
            &[
                ("https://example.com/*?[x]{a}", true),
                ("https://example.com/ab[x]{a}", false),
            ],
        ),
        (
            "https://example.com/<a,b>",
            &[
                ("https://example.com/a,b", true),
                ("https://example.com/a", false),
            ],
        ),
        (
            "https://example.com/<}]>",
            &[("https://example.com/}]", true)],
        ),
    ];
    for (pattern, urls) in cases {
        check_single(MatchingStrategy::Glob, pattern, urls);
    }
}

#[test]
fn glob_alternatives_can_span_delimiters() {
    // Oathkeeper joins the pieces before compiling, so a literal between two bodies can sit
    // inside one alternatives group, and its comma then separates alternatives.
    check_single(
        MatchingStrategy::Glob,
        "https://example.com/<{a,>b,c<}>",
        &[
            ("https://example.com/a", true),
            ("https://example.com/b", true),
            ("https://example.com/c", true),
            ("https://example.com/b,c", false),
        ],
    );
}

#[test]
fn glob_errors_point_into_match_url() {
    let cases: &[(&str, PatternError)] = &[
        (
            "https://x/<[abc>",
            PatternError::InvalidGlob {
                offset: 11,
                reason: GlobError::UnclosedClass,
            },
        ),
        (
            "https://x/<{a,b>",
            PatternError::InvalidGlob {
                offset: 11,
                reason: GlobError::UnclosedAlternatives,
            },
        ),
        (
            "https://x/<[]>",
            PatternError::InvalidGlob {
                offset: 11,
                reason: GlobError::EmptyClass,
            },
        ),
        (
            "https://x/<[!]>",
            PatternError::InvalidGlob {
                offset: 11,
                reason: GlobError::EmptyClass,
            },
        ),
        (
            "https://x/<[z-a]>",
            PatternError::InvalidGlob {
                offset: 11,
                reason: GlobError::ReversedRange,
            },
        ),
        (
            "https://x/<[a-bc]>",
            PatternError::InvalidGlob {
                offset: 11,
                reason: GlobError::ExpectedClassEnd,
            },
        ),
        (
            "https://x/<ab\\>",
            PatternError::InvalidGlob {
                offset: 13,
                reason: GlobError::TrailingBackslash,
            },
        ),
        (
            "https://x/<a",
            PatternError::UnbalancedDelimiters { offset: 10 },
        ),
        (
            "https://x/a>",
            PatternError::UnbalancedDelimiters { offset: 11 },
        ),
    ];
    for (url, expected) in cases {
        let errors = compile_errors(MatchingStrategy::Glob, &[url]);
        assert_eq!(errors, vec![(0, expected.clone())], "{url}");
    }
}

#[test]
fn regexp_errors_name_body_offset() {
    let errors = compile_errors(
        MatchingStrategy::Regexp,
        &[
            "https://ok/<.*>",
            "https://x/<(unclosed>",
            "https://y/<<a>",
            "https://z/<a)|(b>",
        ],
    );
    assert_eq!(errors.len(), 3);
    assert!(matches!(
        errors[0],
        (1, PatternError::InvalidRegex { offset: 10, .. })
    ));
    assert_eq!(
        errors[1],
        (2, PatternError::UnbalancedDelimiters { offset: 10 })
    );
    assert!(matches!(
        errors[2],
        (3, PatternError::InvalidRegex { offset: 10, .. })
    ));
    let message = errors[0].1.to_string();
    assert!(
        message.starts_with("invalid regular expression in the `<...>` at byte 10"),
        "{message}"
    );
}

#[test]
fn methods_compare_case_insensitively() {
    let matcher = compile(
        MatchingStrategy::Regexp,
        &[Rule {
            url: "https://example.com/<.*>",
            methods: methods(&["get", "Post"]),
            priority: None,
        }],
    );
    assert_eq!(
        find(&matcher, "GET", "https://example.com/a"),
        MatchOutcome::Matched(0)
    );
    assert_eq!(
        find(&matcher, "post", "https://example.com/a"),
        MatchOutcome::Matched(0)
    );
    assert_eq!(
        find(&matcher, "PUT", "https://example.com/a"),
        MatchOutcome::NoMatch
    );
    assert_eq!(
        find(&matcher, "", "https://example.com/a"),
        MatchOutcome::NoMatch
    );
}

#[test]
fn empty_methods_match_nothing() {
    let matcher = compile(
        MatchingStrategy::Regexp,
        &[
            Rule {
                url: "https://example.com/<.*>",
                methods: Vec::new(),
                priority: None,
            },
            rule("https://example.com/a"),
        ],
    );
    assert!(matcher.methods_is_empty(0));
    assert!(!matcher.methods_is_empty(1));
    assert!(!matcher.methods_is_empty(7));
    assert_eq!(
        find(&matcher, "GET", "https://example.com/b"),
        MatchOutcome::NoMatch
    );
    assert_eq!(
        find(&matcher, "GET", "https://example.com/a"),
        MatchOutcome::Matched(1)
    );
}

#[test]
fn priority_resolution_table() {
    let url = "https://example.com/x";
    let all = "https://example.com/<.*>";
    let cases: &[(&[Option<i32>], MatchOutcome)] = &[
        (&[None], MatchOutcome::Matched(0)),
        (
            &[None, None],
            MatchOutcome::Ambiguous {
                first: 0,
                second: 1,
            },
        ),
        (&[None, Some(0)], MatchOutcome::Matched(1)),
        (&[Some(-5), None], MatchOutcome::Matched(0)),
        (&[Some(1), Some(2)], MatchOutcome::Matched(1)),
        (&[Some(2), Some(1)], MatchOutcome::Matched(0)),
        (
            &[Some(2), Some(2)],
            MatchOutcome::Ambiguous {
                first: 0,
                second: 1,
            },
        ),
        (
            &[Some(1), Some(2), Some(2)],
            MatchOutcome::Ambiguous {
                first: 1,
                second: 2,
            },
        ),
        (&[Some(3), Some(2), Some(2)], MatchOutcome::Matched(0)),
        (&[None, None, None, Some(1)], MatchOutcome::Matched(3)),
        (
            &[None, Some(1), None, Some(1), Some(1)],
            MatchOutcome::Ambiguous {
                first: 1,
                second: 3,
            },
        ),
    ];
    for (priorities, expected) in cases {
        let rules: Vec<Rule> = priorities
            .iter()
            .map(|p| Rule {
                priority: *p,
                ..rule(all)
            })
            .collect();
        let matcher = compile(MatchingStrategy::Regexp, &rules);
        assert_eq!(find(&matcher, "GET", url), *expected, "{priorities:?}");
    }
}

#[test]
fn priority_applies_only_among_matching_rules() {
    let matcher = compile(
        MatchingStrategy::Glob,
        &[
            with_priority("https://example.com/admin/<**>", 10),
            rule("https://example.com/<**>"),
            rule("https://example.com/public/<*>"),
        ],
    );
    assert_eq!(
        find(&matcher, "GET", "https://example.com/admin/a/b"),
        MatchOutcome::Matched(0)
    );
    assert_eq!(
        find(&matcher, "GET", "https://example.com/public/a"),
        MatchOutcome::Ambiguous {
            first: 1,
            second: 2
        }
    );
    assert_eq!(
        find(&matcher, "GET", "https://example.com/x"),
        MatchOutcome::Matched(1)
    );
    assert_eq!(
        find(&matcher, "GET", "https://example.org/x"),
        MatchOutcome::NoMatch
    );
}

#[test]
fn best_tracks_two_lowest_tied_indexes() {
    let mut best = Best::default();
    for index in [7, 3, 9, 5, 1] {
        best.offer(index, Some(4));
    }
    assert_eq!(
        best.outcome(),
        MatchOutcome::Ambiguous {
            first: 1,
            second: 3
        }
    );
}

#[test]
fn compile_reports_every_error() {
    let errors = compile_errors(
        MatchingStrategy::Glob,
        &[
            "https://x/<[>",
            "https://ok/<*>",
            "https://x/<{a>",
            "https://x/>",
        ],
    );
    let indexes: Vec<usize> = errors.iter().map(|(index, _)| *index).collect();
    assert_eq!(indexes, [0, 2, 3]);
}

#[test]
fn captures_return_regexp_groups() {
    let matcher = compile(
        MatchingStrategy::Regexp,
        &[
            rule("https://<[^/]+>/users/<[0-9]+>/<(x)?y>"),
            rule("https://example.com/<(?!admin)([a-z]+)>"),
        ],
    );
    assert_eq!(
        matcher.captures(0, "https://example.com/users/42/y"),
        ["example.com", "42", "y", ""]
    );
    assert_eq!(
        matcher.captures(0, "https://example.com/users/42/xy"),
        ["example.com", "42", "xy", "x"]
    );
    assert!(matcher
        .captures(0, "https://example.com/users/x/y")
        .is_empty());
    assert_eq!(
        matcher.captures(1, "https://example.com/users"),
        ["users", "users"]
    );
    assert!(matcher.captures(1, "https://example.com/admin").is_empty());
    assert!(matcher.captures(9, "https://example.com/users").is_empty());
}

#[test]
fn captures_are_empty_in_glob_mode() {
    let matcher = compile(MatchingStrategy::Glob, &[rule("https://example.com/<*>")]);
    assert_eq!(
        find(&matcher, "GET", "https://example.com/a"),
        MatchOutcome::Matched(0)
    );
    assert!(matcher.captures(0, "https://example.com/a").is_empty());
}

#[test]
fn scratch_from_other_matcher_is_replaced() {
    let small = compile(MatchingStrategy::Regexp, &[rule("https://a/<.*>")]);
    let large = compile(
        MatchingStrategy::Regexp,
        &[
            rule("https://b/1"),
            rule("https://b/2"),
            rule("https://b/<.*>"),
        ],
    );
    let mut scratch = small.new_scratch();
    assert_eq!(
        large.find(b"GET", b"https://b/1", &mut scratch),
        MatchOutcome::Ambiguous {
            first: 0,
            second: 2
        }
    );
    assert_eq!(
        small.find(b"GET", b"https://a/x", &mut scratch),
        MatchOutcome::Matched(0)
    );
}

#[test]
fn find_handles_non_utf8_and_empty_urls() {
    let matcher = compile(
        MatchingStrategy::Regexp,
        &[
            rule("https://a/<.*>"),
            rule("https://a/<(?!x).*>"),
            rule("<.*>"),
        ],
    );
    let mut scratch = matcher.new_scratch();
    assert_eq!(
        matcher.find(b"GET", b"https://a/\xff", &mut scratch),
        MatchOutcome::NoMatch
    );
    assert_eq!(
        matcher.find(b"GET", b"", &mut scratch),
        MatchOutcome::Matched(2)
    );
    assert_eq!(
        matcher.find(b"\xff", b"https://a/b", &mut scratch),
        MatchOutcome::NoMatch
    );
}

#[test]
fn no_rules_never_match() {
    let matcher = compile(MatchingStrategy::Regexp, &[]);
    assert!(matcher.is_empty());
    assert_eq!(find(&matcher, "GET", "https://a/"), MatchOutcome::NoMatch);
    assert_eq!(matcher.overlapping_pairs(), OverlapReport::default());
}

#[test]
fn thousand_rules_find_the_right_one() {
    let urls: Vec<&'static str> = (0..1000)
        .map(|i| {
            &*Box::leak(format!("https://api.example.com/service{i}/<[a-z0-9/]*>").into_boxed_str())
        })
        .collect();
    let rules: Vec<Rule> = urls.iter().map(|url| rule(url)).collect();
    let matcher = compile(MatchingStrategy::Regexp, &rules);
    assert_eq!(matcher.len(), 1000);
    let mut scratch = matcher.new_scratch();
    for i in [0usize, 1, 10, 100, 999] {
        let url = format!("https://api.example.com/service{i}/users/42");
        assert_eq!(
            matcher.find(b"GET", url.as_bytes(), &mut scratch),
            MatchOutcome::Matched(i)
        );
    }
    assert_eq!(
        matcher.find(
            b"GET",
            b"https://api.example.com/service1000/x",
            &mut scratch
        ),
        MatchOutcome::NoMatch
    );
    let report = matcher.overlapping_pairs();
    assert!(report.overlapping.is_empty());
    assert!(report.possibly_overlapping.is_empty());
}

fn overlaps(strategy: MatchingStrategy, rules: &[Rule]) -> OverlapReport {
    compile(strategy, rules).overlapping_pairs()
}

#[test]
fn overlap_detects_shared_urls() {
    let report = overlaps(
        MatchingStrategy::Regexp,
        &[
            rule("https://a.com/<.*>"),
            rule("https://a.com/users/<[0-9]+>"),
            rule("https://a.com/users/<[a-z]+>"),
            rule("https://b.com/<.*>"),
        ],
    );
    assert_eq!(report.overlapping, [(0, 1), (0, 2)]);
    assert!(report.possibly_overlapping.is_empty());
}

#[test]
fn overlap_rejects_disjoint_languages() {
    let report = overlaps(
        MatchingStrategy::Regexp,
        &[
            rule("https://a.com/users/<[0-9]+>"),
            rule("https://a.com/users/<[a-z]+>"),
            rule("https://a.com/<[0-9]+>/x"),
            rule("https://a.com/<[A-Z]+>/9"),
        ],
    );
    assert!(report.overlapping.is_empty());
    assert!(report.possibly_overlapping.is_empty());
}

#[test]
fn overlap_respects_methods_and_priority() {
    let report = overlaps(
        MatchingStrategy::Glob,
        &[
            Rule {
                methods: methods(&["GET"]),
                ..rule("https://a.com/<**>")
            },
            Rule {
                methods: methods(&["post"]),
                ..rule("https://a.com/<**>")
            },
            Rule {
                methods: methods(&["POST", "get"]),
                ..with_priority("https://a.com/<**>", 1)
            },
            Rule {
                methods: methods(&["Get"]),
                ..with_priority("https://a.com/<**>", 1)
            },
            Rule {
                methods: Vec::new(),
                ..rule("https://a.com/<**>")
            },
        ],
    );
    assert_eq!(report.overlapping, [(2, 3)]);
}

#[test]
fn overlap_finds_glob_intersections() {
    let report = overlaps(
        MatchingStrategy::Glob,
        &[
            rule("https://a.com/<{users,groups}>/<*>"),
            rule("https://a.com/users/<[0-9]>"),
            rule("https://a.com/admins/<*>"),
        ],
    );
    assert_eq!(report.overlapping, [(0, 1)]);
}

#[test]
fn overlap_with_backtracking_rule_is_undecided() {
    let report = overlaps(
        MatchingStrategy::Regexp,
        &[
            rule("https://a.com/<(?!admin).*>"),
            rule("https://a.com/admin"),
            rule("https://b.com/<.*>"),
        ],
    );
    assert!(report.overlapping.is_empty());
    assert_eq!(
        report.possibly_overlapping,
        [PossibleOverlap {
            first: 0,
            second: 1,
            reason: UndecidedReason::Backtracking
        }]
    );
}

#[test]
fn overlap_search_limit_is_undecided() {
    // The first DFA remembers the last 15 bytes and the second counts modulo 4, so the
    // product has more reachable states than the limit while the languages are disjoint.
    let report = overlaps(
        MatchingStrategy::Regexp,
        &[
            rule("https://a.com/<[ab]*a[ab]{14}>"),
            rule("https://a.com/<(?:[ab][ab][ab][ab])*c>"),
        ],
    );
    assert!(report.overlapping.is_empty());
    assert_eq!(
        report.possibly_overlapping,
        [PossibleOverlap {
            first: 0,
            second: 1,
            reason: UndecidedReason::SearchLimit
        }]
    );
}

#[test]
fn overlap_unicode_word_boundary_is_undecided() {
    let report = overlaps(
        MatchingStrategy::Regexp,
        &[rule("https://a.com/<\\b.+>"), rule("https://a.com/<é>")],
    );
    assert!(report.overlapping.is_empty());
    assert_eq!(
        report.possibly_overlapping,
        [PossibleOverlap {
            first: 0,
            second: 1,
            reason: UndecidedReason::DfaUnavailable
        }]
    );
}

#[test]
fn overlap_prefix_and_suffix_filter() {
    let a = compile_rule(
        MatchingStrategy::Regexp,
        &RuleSpec {
            url: "https://a.com/x<.*>.json",
            methods: &methods(&["GET"]),
            priority: None,
        },
    )
    .expect("compiles");
    let b = compile_rule(
        MatchingStrategy::Regexp,
        &RuleSpec {
            url: "https://a.com/<.*>.xml",
            methods: &methods(&["GET"]),
            priority: None,
        },
    )
    .expect("compiles");
    let c = compile_rule(
        MatchingStrategy::Regexp,
        &RuleSpec {
            url: "https://a.com/y<.*>",
            methods: &methods(&["GET"]),
            priority: None,
        },
    )
    .expect("compiles");
    assert!(!overlap::candidates(&a, &b));
    assert!(!overlap::candidates(&a, &c));
    assert!(overlap::candidates(&b, &c));
}

#[test]
fn oversized_rule_is_reported_by_index() {
    let errors = compile_errors(
        MatchingStrategy::Regexp,
        &["https://ok/<.*>", "https://big/<\\w{1000}{1000}>"],
    );
    assert_eq!(errors.len(), 1);
    assert!(
        matches!(errors[0], (1, PatternError::TooLarge { .. })),
        "{errors:?}"
    );
}

#[test]
fn find_does_not_allocate_after_warm_up() {
    for strategy in [MatchingStrategy::Regexp, MatchingStrategy::Glob] {
        let urls: Vec<&'static str> = (0..1000)
            .map(|i| {
                let url = match strategy {
                    MatchingStrategy::Regexp => {
                        format!("https://api.example.com/service{i}/<[^/]+>/<.*>")
                    }
                    MatchingStrategy::Glob => {
                        format!("https://api.example.com/service{i}/<*>/<**>")
                    }
                };
                &*Box::leak(url.into_boxed_str())
            })
            .collect();
        let rules: Vec<Rule> = urls.iter().map(|url| rule(url)).collect();
        let matcher = compile(strategy, &rules);
        let mut scratch = matcher.new_scratch();
        let requests: Vec<String> = (0..1000)
            .step_by(37)
            .map(|i| format!("https://api.example.com/service{i}/users/42/x"))
            .collect();
        for request in &requests {
            matcher.find(b"GET", request.as_bytes(), &mut scratch);
        }
        let (allocations, ()) = count_allocations(|| {
            for request in &requests {
                let outcome = matcher.find(b"GET", request.as_bytes(), &mut scratch);
                assert!(matches!(outcome, MatchOutcome::Matched(_)));
            }
        });
        assert_eq!(allocations, 0, "{strategy:?}");
    }
}

#[test]
fn matcher_is_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    fn assert_send<T: Send>() {}
    assert_send_sync::<RuleMatcher>();
    assert_send::<MatchScratch>();
    let matcher = std::sync::Arc::new(compile(MatchingStrategy::Regexp, &[rule("https://a/<.*>")]));
    let worker = {
        let matcher = std::sync::Arc::clone(&matcher);
        std::thread::spawn(move || {
            let mut scratch = matcher.new_scratch();
            matcher.find(b"GET", b"https://a/x", &mut scratch)
        })
    };
    assert_eq!(worker.join().ok(), Some(MatchOutcome::Matched(0)));
}
