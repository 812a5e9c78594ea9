//! One access rule: its id and match, and its handlers, each converted or replaced by one
//! that rejects what it would have decided.

use std::collections::HashSet;

use super::Converter;
use crate::access::matcher::{RuleMatcher, RuleSpec};
use crate::import::handlers::Kind;
use crate::import::read::{RuleHandler, SourcedRule};
use crate::import::write::{Document, HandlerUse, RuleEntry};

impl Converter<'_> {
    pub(super) fn convert_rule(&mut self, sourced: &SourcedRule, ids: &mut HashSet<String>, document: &mut Document) {
        let rule = &sourced.rule;
        if rule.id.is_empty() {
            self.note(format!("{}: a rule with an empty id is left out", sourced.source));
            return;
        }
        let mut comments = Vec::new();
        let mut id = rule.id.clone();
        let mut suffix = 2;
        while ids.contains(&id) {
            id = format!("{}#{suffix}", rule.id);
            suffix += 1;
        }
        if id != rule.id {
            self.rule_note(&mut comments, &rule.id, format!("the id is used by an earlier rule; this one is renamed to {id:?}"));
        }
        for key in rule.other.keys() {
            self.rule_note(&mut comments, &id, format!("{key} is not an access rule key and is ignored"));
        }

        let Some((url, methods)) = self.convert_match(sourced, &id, &mut comments) else { return };
        ids.insert(id.clone());

        let authenticators = self.convert_authenticators(&rule.authenticators, &id, &mut comments);
        let (mut authorizer, authorizer_usable) = self.convert_authorizer(rule.authorizer.as_ref(), &id, &mut comments);
        let (mutators, mutators_usable) = self.convert_mutators(&rule.mutators, &id, &mut comments);
        if !mutators_usable && authorizer_usable {
            authorizer = HandlerUse::named("deny");
            self.replacements.insert((Kind::Authorizer, "deny"));
        }
        let errors = self.convert_error_handlers(&rule.errors, &id, &mut comments);

        self.convert_upstream(sourced, &id, &url, &methods, &mut comments, document);

        document.rules.push(RuleEntry {
            id,
            source: sourced.source.clone(),
            version: rule.version.clone(),
            description: rule.description.clone(),
            url,
            methods,
            priority: None,
            authenticators,
            authorizer,
            mutators,
            errors,
            comments,
        });
    }

    /// Returns the rule's URL pattern and upper-case methods, or None when the rule is left out.
    fn convert_match(&mut self, sourced: &SourcedRule, id: &str, comments: &mut Vec<String>) -> Option<(String, Vec<String>)> {
        let grpc_keys = ["authority", "full_method", "allow_http_get"];
        if sourced.rule.matcher.as_ref().is_some_and(|matcher| grpc_keys.iter().any(|key| matcher.other.contains_key(*key))) {
            self.note(format!("rule {id:?} in {} is a gRPC rule (match.authority, match.full_method), which portcullis does not support; left out", sourced.source));
            return None;
        }
        let Some(matcher) = sourced.rule.matcher.as_ref().filter(|matcher| !matcher.url.is_empty()) else {
            self.note(format!("rule {id:?} in {} has no match.url and is left out", sourced.source));
            return None;
        };
        for key in matcher.other.keys() {
            let message = if key == "headers" {
                "match.headers is ignored: Oathkeeper does not implement it either".to_owned()
            } else {
                format!("match.{key} is not a match key and is ignored")
            };
            self.rule_note(comments, id, message);
        }
        if matcher.methods.is_empty() {
            self.note(format!("rule {id:?} in {} lists no match.methods, so it matches no request; left out", sourced.source));
            return None;
        }
        let methods: Vec<String> = matcher.methods.iter().map(|method| method.to_ascii_uppercase()).collect();
        if let Some(method) = methods.iter().find(|method| method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase())) {
            self.note(format!("rule {id:?} in {}: method {method:?} is not a method name; the rule is left out", sourced.source));
            return None;
        }
        let spec = RuleSpec { url: &matcher.url, methods: &methods, priority: None };
        if let Err(errors) = RuleMatcher::compile(self.strategy, &[spec]) {
            let reasons: Vec<String> = errors.iter().map(|(_, error)| error.to_string()).collect();
            self.note(format!(
                "rule {id:?} in {}: match.url {:?} does not compile ({}); Oathkeeper never matches such a rule, so it is left out",
                sourced.source,
                matcher.url,
                reasons.join("; ")
            ));
            return None;
        }
        Some((matcher.url.clone(), methods))
    }

    /// Converts one handler of a rule: reports its unknown keys and returns the use to write,
    /// or why it cannot be converted.
    fn convert_use(&mut self, kind: Kind, handler: &RuleHandler, id: &str, comments: &mut Vec<String>) -> Result<HandlerUse, String> {
        let name = &handler.handler;
        for key in handler.other.keys() {
            self.rule_note(comments, id, format!("{} {name}: {key} is not a handler key and is ignored", kind.noun()));
        }
        let usable = self.check_use(kind, name, handler.config.as_ref())?;
        for key in &usable.removed_keys {
            self.rule_note(comments, id, format!("{} {name}: {key} is not supported by portcullis and is left out", kind.noun()));
        }
        Ok(HandlerUse { handler: name.clone(), config: usable.config })
    }

    fn convert_authenticators(&mut self, handlers: &[RuleHandler], id: &str, comments: &mut Vec<String>) -> Vec<HandlerUse> {
        let mut converted = Vec::new();
        if handlers.is_empty() {
            self.rule_note(
                comments,
                id,
                "lists no authenticators, which Oathkeeper rejects at request time; converted with the unauthorized authenticator (401)".to_owned(),
            );
            self.replacements.insert((Kind::Authenticator, "unauthorized"));
            return vec![HandlerUse::named("unauthorized")];
        }
        for (index, handler) in handlers.iter().enumerate() {
            match self.convert_use(Kind::Authenticator, handler, id, comments) {
                Ok(converted_use) => converted.push(converted_use),
                Err(reason) => {
                    let later: Vec<&str> = handlers.iter().skip(index + 1).map(|later| later.handler.as_str()).collect();
                    let replaced = if later.is_empty() {
                        "it is replaced".to_owned()
                    } else {
                        format!("it and the authenticators after it ({}) are replaced", later.join(", "))
                    };
                    self.rule_note(
                        comments,
                        id,
                        format!(
                            "authenticator {}: {reason}; {replaced} by the unauthorized authenticator, so requests they would have accepted get 401",
                            handler.handler
                        ),
                    );
                    self.replacements.insert((Kind::Authenticator, "unauthorized"));
                    converted.push(HandlerUse::named("unauthorized"));
                    break;
                }
            }
        }
        converted
    }

    /// Returns the authorizer and whether it is the rule's own.
    fn convert_authorizer(&mut self, handler: Option<&RuleHandler>, id: &str, comments: &mut Vec<String>) -> (HandlerUse, bool) {
        let Some(handler) = handler else {
            self.rule_note(
                comments,
                id,
                "lists no authorizer, which Oathkeeper rejects at request time; converted with the deny authorizer (403)".to_owned(),
            );
            self.replacements.insert((Kind::Authorizer, "deny"));
            return (HandlerUse::named("deny"), false);
        };
        match self.convert_use(Kind::Authorizer, handler, id, comments) {
            Ok(converted_use) => (converted_use, true),
            Err(reason) => {
                self.rule_note(
                    comments,
                    id,
                    format!("authorizer {}: {reason}; replaced by deny, so every request the rule matches gets 403", handler.handler),
                );
                self.replacements.insert((Kind::Authorizer, "deny"));
                (HandlerUse::named("deny"), false)
            }
        }
    }

    /// Returns the mutators and whether all of the rule's mutators were converted.
    fn convert_mutators(&mut self, handlers: &[RuleHandler], id: &str, comments: &mut Vec<String>) -> (Vec<HandlerUse>, bool) {
        let mut converted = Vec::new();
        let mut all_usable = true;
        if handlers.is_empty() {
            self.rule_note(
                comments,
                id,
                "lists no mutators, which Oathkeeper rejects at request time; converted with a noop mutator and the deny authorizer (403)".to_owned(),
            );
            all_usable = false;
        }
        for handler in handlers {
            match self.convert_use(Kind::Mutator, handler, id, comments) {
                Ok(converted_use) => converted.push(converted_use),
                Err(reason) => {
                    self.rule_note(
                        comments,
                        id,
                        format!(
                            "mutator {}: {reason}; the rule's authorizer is set to deny, so every request it matches gets 403 until the mutator is replaced",
                            handler.handler
                        ),
                    );
                    all_usable = false;
                }
            }
        }
        if converted.is_empty() {
            self.replacements.insert((Kind::Mutator, "noop"));
            converted.push(HandlerUse::named("noop"));
        }
        (converted, all_usable)
    }

    fn convert_error_handlers(&mut self, handlers: &[RuleHandler], id: &str, comments: &mut Vec<String>) -> Vec<HandlerUse> {
        let mut converted = Vec::new();
        for handler in handlers {
            match self.convert_use(Kind::ErrorHandler, handler, id, comments) {
                Ok(converted_use) => converted.push(converted_use),
                Err(reason) => self.rule_note(
                    comments,
                    id,
                    format!("error handler {}: {reason}; left out, so errors.fallback responds instead", handler.handler),
                ),
            }
        }
        converted
    }
}
