//! Kong-style services and routes for Oathkeeper rules.
//!
//! Oathkeeper forwards a request to its rule's `upstream.url`. portcullis picks the upstream
//! with a route first and checks the rule afterwards, so each rule gets a route that selects
//! the requests its `match.url` matches. The literal host becomes `hosts`, and `match.methods`
//! becomes `methods`. The path part becomes an anchored `~` regex path, translated exactly as
//! the rule matcher translates it. Where a route cannot select exactly the rule's requests it
//! selects more of them, never fewer, and the reason is returned for the report: a request the
//! route selects but the rule does not match still gets the rule matcher's 404.

use regex_syntax::hir::{Class, Hir, HirKind};

use crate::access::matcher::{MatchingStrategy, RuleMatcher, RuleSpec};

/// A route path that selects every path. A regex rather than the prefix `/`, so that it can
/// carry a regex_priority.
const ANY_PATH: &str = "~^/";

/// The routing attributes derived for one rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DerivedRoute {
    /// Route hosts, in lower case; empty when the host is a pattern that no Kong host fits.
    pub hosts: Vec<String>,
    /// Route paths: one `~^...$` regex, or `~^` and the literal `strip_path` prefix.
    pub paths: Vec<String>,
    /// Kong's `strip_path`: removes the matched prefix before forwarding.
    pub strip_path: bool,
    /// The literal path prefix the route selects and strips, when `strip_path` is set.
    pub strip_prefix: Option<String>,
    /// Reasons the route selects more requests than the rule matches, one entry per reason.
    pub approximations: Vec<String>,
}

impl DerivedRoute {
    /// Returns whether the route selects exactly the requests the rule matches.
    pub fn is_exact(&self) -> bool {
        self.approximations.is_empty() && self.strip_prefix.is_none()
    }
}

/// Derives the route for a rule whose `match.url` already compiled with `strategy`.
/// `upstream_path` is the path of the rule's `upstream.url`; `strip_path` its `strip_path`.
pub fn derive_route(strategy: MatchingStrategy, url: &str, upstream_path: &str, strip_path: &str) -> DerivedRoute {
    let mut route =
        DerivedRoute { hosts: Vec::new(), paths: Vec::new(), strip_path: false, strip_prefix: None, approximations: Vec::new() };
    let Some(split) = split_url(url).filter(|split| !bodies(split.scheme).any(|body| can_match_slash(strategy, body))) else {
        route.paths.push(ANY_PATH.to_owned());
        route.approximations.push("match.url has no literal `://` followed by a literal `/`, so the route matches every host and path".to_owned());
        if !strip_path.trim_matches('/').is_empty() {
            route.approximations.push(format!("strip_path {strip_path:?} is not applied because the rule's path is not known"));
        }
        return route;
    };

    let host_may_contain_slash = bodies(split.authority).any(|body| can_match_slash(strategy, body));
    derive_hosts(split.authority, host_may_contain_slash, &mut route);

    let strip = format!("/{}", strip_path.trim_matches('/'));
    if strip != "/" {
        let literal_start = split.path.split('<').next().unwrap_or("");
        if host_may_contain_slash {
            route.approximations.push(format!(
                "strip_path {strip_path:?} is not applied because the host pattern can reach into the path, so the forwarded path keeps it"
            ));
        } else if literal_start.starts_with(&strip) {
            // Kong strips what a regex path matched, so a regex without `$` strips the prefix
            // and, unlike a plain prefix path, can carry a regex_priority.
            // NOTE: the prefix also selects paths the rule does not match (`/api` selects
            // `/apix`); the rule matcher responds to those with 404.
            route.paths.push(format!("~^{}", regex::escape(&strip)));
            route.strip_path = true;
            route.strip_prefix = Some(strip.clone());
            if upstream_path.contains(&strip) {
                route.approximations.push(format!(
                    "strip_path {strip_path:?} also occurs in the upstream URL path {upstream_path:?}; Oathkeeper removes that occurrence, portcullis removes the prefix of the request path"
                ));
            }
            return route;
        } else {
            route.approximations.push(format!(
                "strip_path {strip_path:?} is not applied because the rule's path does not start with it, so the forwarded path keeps it"
            ));
        }
    }

    let (fragment, replaced) = backtracking_free(strategy, split.path);
    if replaced {
        route.approximations.push(
            "a `<...>` in the path uses look-around, which route regexes do not support, so the route accepts any text there".to_owned(),
        );
    }
    match path_regex(strategy, &fragment) {
        Some(regex) => {
            let regex = if host_may_contain_slash {
                route.approximations.push(
                    "the host pattern can match a `/`, so the route accepts any path that ends like the rule's path".to_owned(),
                );
                format!("^(?s:/.*)?{}", regex.strip_prefix('^').unwrap_or(&regex))
            } else {
                regex
            };
            route.paths.push(format!("~{regex}"));
        }
        None => {
            route.paths.push(ANY_PATH.to_owned());
            route.approximations.push("the path part of match.url does not translate into a route regex, so the route matches every path".to_owned());
        }
    }
    route
}

fn derive_hosts(authority: &str, may_contain_slash: bool, route: &mut DerivedRoute) {
    let host = authority.to_ascii_lowercase();
    if !host.contains('<') {
        if is_route_host(&host) {
            route.hosts.push(host);
        } else {
            route.approximations.push(format!("host {authority:?} cannot be a route host, so the route matches any host"));
        }
        return;
    }
    if !may_contain_slash {
        if let Some(wildcard) = wildcard_host(&host) {
            route.approximations.push(format!("the host in match.url is a pattern; the route matches the wider host {wildcard:?}"));
            route.hosts.push(wildcard);
            return;
        }
    }
    route.approximations.push("the host in match.url is a pattern, so the route matches any host".to_owned());
}

/// Turns `<body>.example.com[:port]` into `*.example.com` and `api.<body>` into `api.*`,
/// Kong's two wildcard forms. Both select every host the pattern matches, and more.
fn wildcard_host(authority: &str) -> Option<String> {
    let pieces = pieces(authority);
    match pieces.as_slice() {
        [Piece::Body(_), Piece::Literal(suffix)] if suffix.starts_with('.') => {
            let without_port = suffix.split(':').next().unwrap_or(suffix);
            let domain = without_port.trim_start_matches('.');
            (!domain.is_empty() && is_route_host(domain)).then(|| format!("*.{domain}"))
        }
        [Piece::Literal(prefix), Piece::Body(_)] if prefix.ends_with('.') => {
            let name = prefix.trim_end_matches('.');
            (!name.is_empty() && !name.contains(':') && is_route_host(name)).then(|| format!("{name}.*"))
        }
        _ => None,
    }
}

/// Characters portcullis accepts in a plain route host (a name or address, with a port).
fn is_route_host(host: &str) -> bool {
    !host.is_empty() && host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}

/// Returns the literal text at the start of a `match.url`'s path, up to its first `<...>`, or
/// None when the URL has no literal path start.
pub fn literal_path_start(url: &str) -> Option<&str> {
    let split = split_url(url)?;
    split.path.split('<').next()
}

/// A `match.url` cut into scheme, authority and path at the first `://` and the first `/` after
/// it that lie outside `<...>`.
struct SplitUrl<'a> {
    scheme: &'a str,
    authority: &'a str,
    /// Starts with `/`.
    path: &'a str,
}

fn split_url(url: &str) -> Option<SplitUrl<'_>> {
    let scheme_end = find_outside_delimiters(url, "://", 0)?;
    let authority_start = scheme_end + 3;
    let path_start = find_outside_delimiters(url, "/", authority_start)?;
    Some(SplitUrl {
        scheme: url.get(..scheme_end)?,
        authority: url.get(authority_start..path_start)?,
        path: url.get(path_start..)?,
    })
}

/// Returns the byte offset of the first `needle` at or after `from` that is outside `<...>`.
fn find_outside_delimiters(pattern: &str, needle: &str, from: usize) -> Option<usize> {
    let mut level = 0usize;
    for (offset, c) in pattern.char_indices() {
        match c {
            '<' => level += 1,
            '>' => level = level.saturating_sub(1),
            _ if level == 0 && offset >= from && pattern.get(offset..).is_some_and(|rest| rest.starts_with(needle)) => {
                return Some(offset)
            }
            _ => {}
        }
    }
    None
}

/// One part of a pattern cut at its outermost `<...>` pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Piece<'a> {
    Literal(&'a str),
    /// The text between `<` and its matching `>`.
    Body(&'a str),
}

/// Cuts a pattern whose delimiters balance (the rule matcher has compiled it) into pieces.
fn pieces(pattern: &str) -> Vec<Piece<'_>> {
    let mut pieces = Vec::new();
    let mut level = 0usize;
    let mut start = 0;
    for (offset, c) in pattern.char_indices() {
        match c {
            '<' => {
                if level == 0 {
                    if let Some(text) = pattern.get(start..offset).filter(|text| !text.is_empty()) {
                        pieces.push(Piece::Literal(text));
                    }
                    start = offset + 1;
                }
                level += 1;
            }
            '>' if level > 0 => {
                level -= 1;
                if level == 0 {
                    pieces.push(Piece::Body(pattern.get(start..offset).unwrap_or("")));
                    start = offset + 1;
                }
            }
            _ => {}
        }
    }
    if let Some(text) = pattern.get(start..).filter(|text| !text.is_empty()) {
        pieces.push(Piece::Literal(text));
    }
    pieces
}

fn bodies(pattern: &str) -> impl Iterator<Item = &str> {
    pieces(pattern).into_iter().filter_map(|piece| match piece {
        Piece::Body(body) => Some(body),
        Piece::Literal(_) => None,
    })
}

/// Returns whether a `<...>` body may match text containing `/`. Errs towards yes.
fn can_match_slash(strategy: MatchingStrategy, body: &str) -> bool {
    match strategy {
        // `*` and `?` stop at `/`; `**`, character classes and literal text can cross it.
        MatchingStrategy::Glob => body.contains("**") || body.contains('[') || body.contains('/'),
        MatchingStrategy::Regexp => match regex_syntax::parse(body) {
            Ok(hir) => hir_can_match_slash(&hir),
            Err(_) => true,
        },
    }
}

fn hir_can_match_slash(hir: &Hir) -> bool {
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => false,
        HirKind::Literal(literal) => literal.0.contains(&b'/'),
        HirKind::Class(Class::Unicode(class)) => class.ranges().iter().any(|range| range.start() <= '/' && '/' <= range.end()),
        HirKind::Class(Class::Bytes(class)) => class.ranges().iter().any(|range| range.start() <= b'/' && b'/' <= range.end()),
        HirKind::Repetition(repetition) => repetition.max != Some(0) && hir_can_match_slash(&repetition.sub),
        HirKind::Capture(capture) => hir_can_match_slash(&capture.sub),
        HirKind::Concat(items) | HirKind::Alternation(items) => items.iter().any(hir_can_match_slash),
    }
}

/// Replaces regexp bodies that only the backtracking engine accepts (look-around) with
/// `(?s:.*)`, which matches a superset. Returns the new pattern and whether anything changed.
fn backtracking_free(strategy: MatchingStrategy, pattern: &str) -> (String, bool) {
    if strategy == MatchingStrategy::Glob {
        return (pattern.to_owned(), false);
    }
    let mut out = String::with_capacity(pattern.len());
    let mut replaced = false;
    for piece in pieces(pattern) {
        match piece {
            Piece::Literal(text) => out.push_str(text),
            Piece::Body(body) if regex_syntax::parse(body).is_err() => {
                replaced = true;
                out.push_str("<(?s:.*)>");
            }
            Piece::Body(body) => {
                out.push('<');
                out.push_str(body);
                out.push('>');
            }
        }
    }
    (out, replaced)
}

/// Translates a path pattern as the rule matcher does, and checks that the router accepts it.
fn path_regex(strategy: MatchingStrategy, fragment: &str) -> Option<String> {
    let spec = RuleSpec { url: fragment, methods: &[], priority: None };
    let matcher = RuleMatcher::compile(strategy, &[spec]).ok()?;
    let source = matcher.regex_source(0)?;
    // Only the glob translation writes `\x{..}` escapes, and its classes are plain.
    let source = match strategy {
        MatchingStrategy::Glob => readable_regex(source),
        MatchingStrategy::Regexp => source.to_owned(),
    };
    // The router compiles `~` paths as `^(?:<path>)`.
    regex::bytes::Regex::new(&format!("^(?:{source})")).ok()?;
    Some(source)
}

/// Writes the `\x{..}` escapes of a glob translation outside character classes as plain
/// characters where that means the same (`\x{2f}` as `/`, `\x{2e}` as `\.`), so route paths
/// read like the rule's path.
fn readable_regex(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut class_depth = 0usize;
    let mut rest = source;
    while let Some(c) = rest.chars().next() {
        if c == '\\' {
            let escape = escape_at(rest);
            let plain = escape
                .strip_prefix("\\x{")
                .and_then(|hex| hex.strip_suffix('}'))
                .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                .and_then(char::from_u32)
                .filter(|_| class_depth == 0);
            match plain {
                Some(c @ ('/' | ':' | '_' | '-' | '@' | '~' | '=' | ',' | ';' | '!' | '%' | '&' | '\'')) => out.push(c),
                Some('.') => out.push_str("\\."),
                _ => out.push_str(escape),
            }
            rest = rest.get(escape.len()..).unwrap_or("");
            continue;
        }
        match c {
            '[' => class_depth += 1,
            ']' => class_depth = class_depth.saturating_sub(1),
            _ => {}
        }
        out.push(c);
        rest = rest.get(c.len_utf8()..).unwrap_or("");
    }
    out
}

/// Returns the escape sequence at the start of `text`, which starts with `\`: `\x{..}` or a
/// backslash and one character.
fn escape_at(text: &str) -> &str {
    if text.starts_with("\\x{") {
        if let Some(end) = text.find('}') {
            return text.get(..=end).unwrap_or(text);
        }
    }
    let length = text.chars().take(2).map(char::len_utf8).sum();
    text.get(..length).unwrap_or(text)
}

/// An `upstream.url` that portcullis can forward to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamUrl {
    /// `host[:port]` as written.
    pub authority: String,
    /// The path, empty or starting with `/`.
    pub path: String,
}

/// Parses an `upstream.url`. portcullis forwards over plain HTTP only.
pub fn parse_upstream_url(url: &str) -> Result<UpstreamUrl, String> {
    let Some(rest) = url.strip_prefix("http://") else {
        return Err(if url.starts_with("https://") {
            format!("upstream {url:?} uses https, which portcullis does not forward to")
        } else {
            format!("upstream {url:?} is not an http:// URL")
        });
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    if authority.is_empty() || authority.contains('@') {
        return Err(format!("upstream {url:?} has no host, or has user information"));
    }
    let path = tail.split(['?', '#']).next().unwrap_or("");
    Ok(UpstreamUrl { authority: authority.to_owned(), path: path.to_owned() })
}

/// Returns a readable service name for an upstream: its authority and path.
pub fn service_name(upstream: &UpstreamUrl) -> String {
    format!("{}{}", upstream.authority, upstream.path.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use MatchingStrategy::{Glob, Regexp};

    fn route(strategy: MatchingStrategy, url: &str) -> DerivedRoute {
        derive_route(strategy, url, "", "")
    }

    /// Checks that the route's path regex selects a path exactly when the rule matches it.
    fn assert_same_paths(strategy: MatchingStrategy, url: &str, host: &str, cases: &[(&str, bool)]) {
        let derived = route(strategy, url);
        assert!(derived.approximations.is_empty(), "{url}: {:?}", derived.approximations);
        let path = derived.paths[0].strip_prefix('~').expect("a regex path");
        let router_regex = regex::bytes::Regex::new(&format!("^(?:{path})")).unwrap();
        let spec = RuleSpec { url, methods: &["GET".to_owned()], priority: None };
        let matcher = RuleMatcher::compile(strategy, &[spec]).unwrap();
        let mut scratch = matcher.new_scratch();
        for &(request_path, expected) in cases {
            let full = format!("http://{host}{request_path}");
            let rule_matches = matches!(matcher.find(b"GET", full.as_bytes(), &mut scratch), crate::access::matcher::MatchOutcome::Matched(0));
            assert_eq!(rule_matches, expected, "rule {url} on {request_path}");
            assert_eq!(router_regex.is_match(request_path.as_bytes()), expected, "route {path} on {request_path}");
        }
    }

    #[test]
    fn literal_url_gives_host_and_exact_path() {
        let derived = route(Glob, "http://127.0.0.1:4455/hello");
        assert_eq!(derived.hosts, ["127.0.0.1:4455"]);
        assert_eq!(derived.paths, ["~^/hello$"]);
        assert!(!derived.strip_path);
        assert!(derived.is_exact());
    }

    #[test]
    fn literal_path_start_stops_at_pattern() {
        assert_eq!(literal_path_start("http://h/api/<.*>"), Some("/api/"));
        assert_eq!(literal_path_start("http://<.*>/a"), Some("/a"));
        assert_eq!(literal_path_start("<.*>"), None);
    }

    #[test]
    fn glob_route_selects_same_paths_as_rule() {
        let url = "http://127.0.0.1:4455/<{registration,login,health/{alive,ready},**.css}>";
        assert_same_paths(
            Glob,
            url,
            "127.0.0.1:4455",
            &[
                ("/login", true),
                ("/registration", true),
                ("/health/alive", true),
                ("/health/dead", false),
                ("/assets/site.css", true),
                ("/login/x", false),
                ("/settings", false),
            ],
        );
    }

    #[test]
    fn glob_star_stops_at_separators() {
        assert_same_paths(Glob, "http://a.example/api/<*>", "a.example", &[("/api/users", true), ("/api/users/1", false), ("/api/a.b", false)]);
    }

    #[test]
    fn regexp_route_selects_same_paths_as_rule() {
        let url = "http://api.example.com/users/<[0-9]+>/posts/<.*>";
        assert_same_paths(
            Regexp,
            url,
            "api.example.com",
            &[("/users/42/posts/", true), ("/users/42/posts/7/comments", true), ("/users/x/posts/1", false), ("/users/42", false)],
        );
    }

    #[test]
    fn regexp_literal_dots_are_quoted() {
        assert_same_paths(Regexp, "http://h/file.json", "h", &[("/file.json", true), ("/fileXjson", false)]);
    }

    #[test]
    fn host_pattern_becomes_wildcard() {
        let derived = route(Glob, "http://<*>.example.com:8080/api");
        assert_eq!(derived.hosts, ["*.example.com"]);
        assert_eq!(derived.paths, ["~^/api$"]);
        assert_eq!(derived.approximations.len(), 1);
    }

    #[test]
    fn host_prefix_pattern_becomes_suffix_wildcard() {
        let derived = route(Regexp, "http://api.<[a-z]+>/v1");
        assert_eq!(derived.hosts, ["api.*"]);
        assert_eq!(derived.approximations.len(), 1);
    }

    #[test]
    fn host_pattern_without_slash_keeps_exact_path() {
        let derived = route(Regexp, "<https?>://<[^/]+>/users/<[0-9]+>");
        assert!(derived.hosts.is_empty());
        assert_eq!(derived.paths, ["~^/users/([0-9]+)$"]);
        assert_eq!(derived.approximations, ["the host in match.url is a pattern, so the route matches any host"]);
    }

    #[test]
    fn host_pattern_with_slash_widens_path() {
        let derived = route(Regexp, "http://<.*>/api");
        assert!(derived.hosts.is_empty());
        assert_eq!(derived.paths, ["~^(?s:/.*)?/api$"]);
        assert_eq!(derived.approximations.len(), 2);
        let regex = regex::Regex::new(&format!("^(?:{})", derived.paths[0].trim_start_matches('~'))).unwrap();
        assert!(regex.is_match("/api"));
        assert!(regex.is_match("/x/api"));
        assert!(!regex.is_match("/api/x"));
    }

    #[test]
    fn whole_url_pattern_matches_everything() {
        let derived = route(Regexp, "<.*>");
        assert!(derived.hosts.is_empty());
        assert_eq!(derived.paths, [ANY_PATH]);
        assert_eq!(derived.approximations.len(), 1);
    }

    #[test]
    fn scheme_pattern_crossing_slash_matches_everything() {
        let derived = route(Regexp, "<.*>://example.com/api");
        assert_eq!(derived.paths, [ANY_PATH]);
    }

    #[test]
    fn authority_ending_in_pattern_matches_every_path() {
        let derived = route(Glob, "http://example.com<**>");
        assert!(derived.hosts.is_empty());
        assert_eq!(derived.paths, [ANY_PATH]);
    }

    #[test]
    fn look_around_is_widened() {
        let derived = route(Regexp, "http://h/<(?!admin).*>");
        assert_eq!(derived.paths, ["~^/((?s:.*))$"]);
        assert_eq!(derived.approximations.len(), 1);
    }

    #[test]
    fn strip_path_uses_literal_prefix() {
        let derived = derive_route(Glob, "http://127.0.0.1:4455/.ory/kratos/public/<**>", "", "/.ory/kratos/public");
        assert_eq!(derived.hosts, ["127.0.0.1:4455"]);
        assert_eq!(derived.paths, [r"~^/\.ory/kratos/public"]);
        assert!(derived.strip_path);
        assert!(derived.approximations.is_empty());
        assert!(!derived.is_exact());
    }

    #[test]
    fn strip_path_slashes_are_trimmed() {
        let derived = derive_route(Regexp, "http://h/api/<.*>", "", "api/");
        assert_eq!(derived.paths, ["~^/api"]);
        assert!(derived.strip_path);
    }

    #[test]
    fn strip_path_not_at_start_is_reported() {
        let derived = derive_route(Glob, "http://h/<*>/api/<**>", "", "/api");
        assert!(!derived.strip_path);
        assert!(derived.paths[0].starts_with('~'));
        assert_eq!(derived.approximations.len(), 1);
        assert!(derived.approximations[0].contains("does not start with it"));
    }

    #[test]
    fn strip_path_inside_upstream_path_is_reported() {
        let derived = derive_route(Glob, "http://h/api/<**>", "/api/v1", "/api");
        assert!(derived.strip_path);
        assert_eq!(derived.approximations.len(), 1);
    }

    #[test]
    fn glob_escapes_are_made_readable() {
        assert_eq!(readable_regex(r"^\x{2f}a\x{2e}b\x{2d}c[\x{2d}\x{2f}]\x{2a}$"), r"^/a\.b-c[\x{2d}\x{2f}]\x{2a}$");
        assert_eq!(readable_regex(r"^(?:\x{2f}x|y)[^./]*$"), r"^(?:/x|y)[^./]*$");
    }

    #[test]
    fn uppercase_host_is_lowered() {
        assert_eq!(route(Glob, "http://API.Example.com/x").hosts, ["api.example.com"]);
    }

    #[test]
    fn invalid_route_host_is_dropped() {
        let derived = route(Glob, "http://my_host/x");
        assert!(derived.hosts.is_empty());
        assert_eq!(derived.approximations.len(), 1);
    }

    #[test]
    fn regex_slash_analysis() {
        let cases = [("[^/]+", false), ("[a-z0-9.-]+", false), (".*", true), ("\\S+", true), ("a|b/c", true), ("(?:x){0}/", true), ("\\d+", false)];
        for (body, expected) in cases {
            assert_eq!(can_match_slash(Regexp, body), expected, "{body}");
        }
        assert!(!can_match_slash(Glob, "*"));
        assert!(can_match_slash(Glob, "**"));
        assert!(can_match_slash(Glob, "[!a]"));
    }

    #[test]
    fn upstream_urls() {
        assert_eq!(
            parse_upstream_url("http://kratos:4433/base/?x=1"),
            Ok(UpstreamUrl { authority: "kratos:4433".to_owned(), path: "/base/".to_owned() })
        );
        assert_eq!(parse_upstream_url("http://hello:8090"), Ok(UpstreamUrl { authority: "hello:8090".to_owned(), path: String::new() }));
        assert!(parse_upstream_url("https://hello").unwrap_err().contains("https"));
        assert!(parse_upstream_url("http://user@hello").is_err());
        assert!(parse_upstream_url("hello:8090").is_err());
        assert_eq!(service_name(&parse_upstream_url("http://kratos:4433/base/").unwrap()), "kratos:4433/base");
    }
}
