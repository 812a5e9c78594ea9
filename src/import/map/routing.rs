//! Services and routes for the converted rules, and the priorities that decide which rule
//! and which route handle a request that several of them select.

use std::cmp::Reverse;
use std::collections::HashMap;

use super::Converter;
use crate::access::matcher::{RuleMatcher, RuleSpec};
use crate::import::read::SourcedRule;
use crate::import::routes::{self, UpstreamUrl};
use crate::import::write::{Document, RouteEntry, RuleEntry, ServiceEntry};
use crate::import::Note;

impl Converter<'_> {
    pub(super) fn convert_upstream(
        &mut self,
        sourced: &SourcedRule,
        id: &str,
        url: &str,
        methods: &[String],
        comments: &mut Vec<String>,
        document: &mut Document,
    ) {
        let upstream = sourced.rule.upstream.as_ref().filter(|upstream| !upstream.url.is_empty());
        let Some(upstream) = upstream else {
            self.rule_note(
                comments,
                id,
                "has no upstream.url, so no route selects its requests and the proxy responds to them with 404; the decision API still uses the rule".to_owned(),
            );
            return;
        };
        for key in upstream.other.keys() {
            self.rule_note(comments, id, format!("upstream.{key} is not an upstream key and is ignored"));
        }
        let parsed = match routes::parse_upstream_url(&upstream.url) {
            Ok(parsed) => parsed,
            Err(reason) => {
                self.rule_note(comments, id, format!("{reason}; no route is created, so the proxy responds to the rule's requests with 404"));
                return;
            }
        };
        let service = service_for(&mut document.services, &upstream.url, &parsed, id);
        let derived = routes::derive_route(self.strategy, url, &parsed.path, &upstream.strip_path);
        let mut route_comments = Vec::new();
        for reason in &derived.approximations {
            let message = format!("its route selects more requests than the rule matches: {reason}");
            route_comments.push(message.clone());
            self.rule_note(comments, id, message);
        }
        let exact = derived.is_exact();
        document.routes.push(RouteEntry {
            rule: id.to_owned(),
            service,
            hosts: derived.hosts,
            paths: derived.paths,
            methods: methods.to_vec(),
            strip_path: derived.strip_path,
            preserve_host: upstream.preserve_host,
            regex_priority: 0,
            exact,
            strip_prefix: derived.strip_prefix,
            comments: route_comments,
        });
    }

    /// Gives rules that can match the same request a priority, so that one of them handles
    /// it, and returns the (winner, loser) index pairs. Oathkeeper responds to such requests
    /// with 500, which portcullis cannot express, because it does not load rules that overlap
    /// without a priority.
    ///
    /// The rule that needs credentials wins over one with a noop or anonymous authenticator,
    /// then the one with the longer literal text before its first `<...>`, then the one read
    /// first.
    pub(super) fn resolve_overlaps(&mut self, document: &mut Document) -> Vec<(usize, usize)> {
        let specs: Vec<RuleSpec<'_>> =
            document.rules.iter().map(|rule| RuleSpec { url: &rule.url, methods: &rule.methods, priority: None }).collect();
        let Ok(matcher) = RuleMatcher::compile(self.strategy, &specs) else { return Vec::new() };
        let pairs = matcher.overlapping_pairs().overlapping;
        let mut involved: Vec<usize> = pairs.iter().flat_map(|&(first, second)| [first, second]).collect();
        involved.sort_unstable();
        involved.dedup();
        involved.sort_by_key(|&index| document.rules.get(index).map(|rule| overlap_rank(rule, index)));
        for (position, &index) in involved.iter().enumerate() {
            if let Some(rule) = document.rules.get_mut(index) {
                rule.priority = Some(i32::try_from(position + 1).unwrap_or(i32::MAX));
            }
        }

        let mut decided = Vec::new();
        for (first, second) in pairs {
            let (Some(a), Some(b)) = (document.rules.get(first), document.rules.get(second)) else { continue };
            let (winner, loser) = if a.priority > b.priority { (first, second) } else { (second, first) };
            let (Some(winner_rule), Some(loser_rule)) = (document.rules.get(winner), document.rules.get(loser)) else { continue };
            let message = format!(
                "can match the same requests as rule {:?}, to which Oathkeeper responds with 500; portcullis needs one rule to handle them, so this one has the higher priority",
                loser_rule.id
            );
            let winner_id = winner_rule.id.clone();
            self.notes.push(Note { rule: Some(winner_id), message: message.clone() });
            if let Some(rule) = document.rules.get_mut(winner) {
                rule.comments.push(message);
            }
            decided.push((winner, loser));
        }
        decided
    }

    /// Orders routes by regex_priority, which Kong compares between regex routes with the same
    /// attributes. The route of an overlap winner comes before the loser's. Otherwise an exact
    /// route comes before a wider one (a strip_path prefix, an approximation), so that a wider
    /// route does not take the requests of rules it was not made for. Reports the cases this
    /// order does not settle.
    pub(super) fn order_routes(&mut self, document: &mut Document, overlaps: &[(usize, usize)]) {
        // Routes with the same regex_priority are tried in the order written: a longer
        // strip_path prefix first, as Kong orders plain prefixes.
        document.routes.sort_by_key(|route| Reverse(route.strip_prefix.as_ref().map_or(0, String::len)));
        for route in &mut document.routes {
            let rule_priority = document.rules.iter().find(|rule| rule.id == route.rule).and_then(|rule| rule.priority).unwrap_or(0);
            route.regex_priority = rule_priority.saturating_mul(2).saturating_add(i32::from(route.exact));
        }

        let route_of = |id: &str| document.routes.iter().enumerate().find(|(_, route)| route.rule == id);
        for &(winner, loser) in overlaps {
            let (Some(winner_rule), Some(loser_rule)) = (document.rules.get(winner), document.rules.get(loser)) else { continue };
            let (Some((winner_index, winner_route)), Some((loser_index, loser_route))) = (route_of(&winner_rule.id), route_of(&loser_rule.id))
            else {
                continue;
            };
            if route_order(loser_route, loser_index) < route_order(winner_route, winner_index) && winner_route.service != loser_route.service {
                self.notes.push(Note {
                    rule: Some(winner_rule.id.clone()),
                    message: format!(
                        "the route of rule {:?} has more attributes and is tried first, so requests both rules match go to its upstream",
                        loser_rule.id
                    ),
                });
            }
        }

        // A strip_path route selects every path under its prefix; report rules whose paths
        // start with that prefix and whose routes are tried after it.
        let mut shadowed = Vec::new();
        for (wide_index, wide) in document.routes.iter().enumerate() {
            let Some(prefix) = wide.strip_prefix.as_deref() else { continue };
            for (other_index, other) in document.routes.iter().enumerate().filter(|(_, other)| other.rule != wide.rule) {
                let Some(rule) = document.rules.iter().find(|rule| rule.id == other.rule) else { continue };
                let same_upstream = other.service == wide.service && other.strip_path == wide.strip_path;
                let hosts_meet = wide.hosts.is_empty() || other.hosts.is_empty() || wide.hosts.iter().any(|host| other.hosts.contains(host));
                let under_prefix = routes::literal_path_start(&rule.url).is_some_and(|path| path.starts_with(prefix));
                if !same_upstream && hosts_meet && under_prefix && route_order(wide, wide_index) < route_order(other, other_index) {
                    shadowed.push((other.rule.clone(), wide.rule.clone(), prefix.to_owned()));
                }
            }
        }
        for (rule, wide_rule, prefix) in shadowed {
            self.notes.push(Note {
                rule: Some(rule),
                message: format!(
                    "its paths start with {prefix:?}, which the strip_path route of rule {wide_rule:?} selects first, so its requests go to that rule's upstream: give this rule's route a higher regex_priority"
                ),
            });
        }
    }

    /// Reports routes with the same hosts, paths and methods that go to different services,
    /// because the first one defined receives the requests of both.
    pub(super) fn report_route_collisions(&mut self, document: &Document) {
        let mut seen: HashMap<RouteAttributes<'_>, &RouteEntry> = HashMap::new();
        for route in &document.routes {
            let key = (route.hosts.as_slice(), route.paths.as_slice(), route.methods.as_slice());
            match seen.get(&key) {
                Some(first) if first.service != route.service => {
                    let message = format!(
                        "its route selects the same requests as the route of rule {:?}, which goes to another upstream and is tried first",
                        first.rule
                    );
                    self.notes.push(Note { rule: Some(route.rule.clone()), message });
                }
                Some(_) => {}
                None => {
                    seen.insert(key, route);
                }
            }
        }
    }
}

/// Orders rules for [`Converter::resolve_overlaps`]: the last one wins.
fn overlap_rank(rule: &RuleEntry, index: usize) -> (bool, usize, Reverse<usize>) {
    let needs_credentials = !rule.authenticators.iter().any(|use_| matches!(use_.handler.as_str(), "noop" | "anonymous"));
    let literal_len = rule.url.find('<').unwrap_or(rule.url.len());
    (needs_credentials, literal_len, Reverse(index))
}

/// A route's hosts, paths and methods.
type RouteAttributes<'a> = (&'a [String], &'a [String], &'a [String]);

/// A route's place in the order `proxy::router` tries routes: attribute kinds, plain hosts,
/// regex path, regex_priority (each more first), then the definition index.
type RouteOrder = (Reverse<usize>, Reverse<bool>, Reverse<bool>, Reverse<i32>, usize);

/// Returns where the router tries a route: the smaller is tried first.
fn route_order(route: &RouteEntry, index: usize) -> RouteOrder {
    let kinds = 2 + usize::from(!route.hosts.is_empty());
    let plain_hosts = route.hosts.iter().all(|host| !host.contains('*'));
    let is_regex = route.paths.iter().all(|path| path.starts_with('~'));
    (Reverse(kinds), Reverse(plain_hosts), Reverse(is_regex), Reverse(route.regex_priority), index)
}

/// Returns the name of the service for `url`, adding it when it is new.
fn service_for(services: &mut Vec<ServiceEntry>, url: &str, parsed: &UpstreamUrl, rule: &str) -> String {
    if let Some(service) = services.iter_mut().find(|service| service.url == url) {
        service.rules.push(rule.to_owned());
        return service.name.clone();
    }
    let base = routes::service_name(parsed);
    let mut name = base.clone();
    let mut suffix = 2;
    while services.iter().any(|service| service.name == name) {
        name = format!("{base}-{suffix}");
        suffix += 1;
    }
    services.push(ServiceEntry { name: name.clone(), url: url.to_owned(), rules: vec![rule.to_owned()] });
    name
}
