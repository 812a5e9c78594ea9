//! Decides the portcullis configuration for an Oathkeeper setup: listeners from `serve`, the
//! matching strategy, global handler sections, the error fallback, and for every rule its
//! service, route and access rule. Each decision that is not an exact translation adds a
//! [`Note`], which the command prints and the output repeats as a comment. This module contains
//! the global handler sections; `serve` converts the listeners, `rules` each rule's handlers,
//! and `routing` the services, routes and priorities.
//!
//! Oathkeeper handlers are disabled unless their section sets `enabled: true` (the `json`
//! error handler is the exception), while portcullis handlers are enabled unless their
//! section sets `enabled = false`. A rule that reaches a handler which is disabled, missing
//! from portcullis, or whose configuration does not load, is converted so that it rejects
//! what that handler would have decided:
//! - an authenticator: it and the ones after it become `unauthorized` (401);
//! - the authorizer, or a mutator: the authorizer becomes `deny` (403);
//! - an error handler: it is left out, so `errors.fallback` responds instead.

mod routing;
mod rules;
mod serve;

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use super::handlers::{self, Kind};
use super::read::{kind_of, Input, ReadError};
use super::write::{Document, HandlerSection};
use super::Note;
use crate::access::matcher::MatchingStrategy;

/// Oathkeeper's default proxy port.
const DEFAULT_PROXY_PORT: u16 = 4455;
/// Oathkeeper's default API port.
const DEFAULT_API_PORT: u16 = 4456;

/// Converts the input. Fails only when a setting the whole conversion depends on is invalid.
pub fn convert(input: &Input) -> Result<(Document, Vec<Note>), ReadError> {
    let strategy = matching_strategy(input)?;

    let mut converter = Converter {
        input,
        strategy,
        notes: Vec::new(),
        globals: HashMap::new(),
        replacements: HashSet::new(),
        checked: HashMap::new(),
    };
    let mut document = Document {
        matching_strategy: match strategy {
            MatchingStrategy::Glob => "glob",
            MatchingStrategy::Regexp => "regexp",
        },
        ..Document::default()
    };

    converter.convert_top_level_keys();
    converter.convert_serve(&mut document);
    converter.convert_globals(&mut document);
    converter.convert_fallback(&mut document);

    let mut ids = HashSet::new();
    for rule in &input.rules {
        converter.convert_rule(rule, &mut ids, &mut document);
    }

    let overlaps = converter.resolve_overlaps(&mut document);
    converter.order_routes(&mut document, &overlaps);
    converter.report_route_collisions(&document);
    converter.enable_replacements(&mut document);
    document.header = header(input, converter.notes.len());
    Ok((document, converter.notes))
}

fn matching_strategy(input: &Input) -> Result<MatchingStrategy, ReadError> {
    let value = input.config.get("access_rules").and_then(|rules| rules.get("matching_strategy"));
    match value {
        None | Some(Value::Null) => Ok(MatchingStrategy::Regexp),
        Some(Value::String(name)) if name.is_empty() || name == "regexp" => Ok(MatchingStrategy::Regexp),
        Some(Value::String(name)) if name == "glob" => Ok(MatchingStrategy::Glob),
        Some(other) => Err(ReadError::Invalid {
            file: input.config_file.clone(),
            field: "access_rules.matching_strategy".to_owned(),
            message: format!("invalid value {other}: expected \"regexp\" or \"glob\""),
        }),
    }
}

fn header(input: &Input, note_count: usize) -> Vec<String> {
    let mut lines = vec![
        "portcullis configuration converted from Ory Oathkeeper by `portcullis import oathkeeper`.".to_owned(),
        format!("Configuration: {}", input.config_file),
        format!("Access rules: {}", input.rule_sources.join(", ")),
    ];
    if note_count > 0 {
        lines.push(format!(
            "{note_count} item(s) were not converted exactly: see the comments below and the importer's warnings."
        ));
    }
    lines
}

/// A global handler section as Oathkeeper has it.
struct Global {
    enabled: bool,
    /// The configuration portcullis accepts, or None when the section was left out.
    config: Option<Map<String, Value>>,
}

/// A rule's use of a handler that loads in portcullis.
struct UsableHandler {
    config: Option<Map<String, Value>>,
    /// Configuration keys portcullis does not have, removed from the rule's configuration.
    removed_keys: Vec<String>,
}

struct Converter<'a> {
    input: &'a Input,
    strategy: MatchingStrategy,
    notes: Vec<Note>,
    globals: HashMap<(Kind, String), Global>,
    /// Handlers that converted rules use in place of handlers that cannot be converted.
    replacements: HashSet<(Kind, &'static str)>,
    /// Load results of merged handler configurations, by kind, name and configuration text.
    checked: HashMap<String, Result<(), String>>,
}

impl Converter<'_> {
    fn note(&mut self, message: String) {
        self.notes.push(Note { rule: None, message });
    }

    fn rule_note(&mut self, comments: &mut Vec<String>, rule: &str, message: String) {
        comments.push(message.clone());
        self.notes.push(Note { rule: Some(rule.to_owned()), message });
    }

    fn config_value(&self, path: &[&str]) -> Option<&Value> {
        let (first, rest) = path.split_first()?;
        let mut value = self.input.config.get(*first)?;
        for key in rest {
            value = value.get(key)?;
        }
        (!value.is_null()).then_some(value)
    }

    // -----------------------------------------------------------------------------------------
    // Global handlers

    fn convert_globals(&mut self, document: &mut Document) {
        for kind in [Kind::Authenticator, Kind::Authorizer, Kind::Mutator, Kind::ErrorHandler] {
            let path: &[&str] = match kind {
                Kind::ErrorHandler => &["errors", "handlers"],
                Kind::Authenticator => &["authenticators"],
                Kind::Authorizer => &["authorizers"],
                Kind::Mutator => &["mutators"],
            };
            let entries: Vec<(String, Value)> = match self.config_value(path) {
                None => Vec::new(),
                Some(Value::Object(section)) => section.iter().map(|(name, entry)| (name.clone(), entry.clone())).collect(),
                Some(other) => {
                    self.note(format!("{} is {}, not a mapping of handlers, and is not converted", kind.section(), kind_of(other)));
                    Vec::new()
                }
            };
            for (name, entry) in entries {
                self.convert_global(kind, &name, &entry, document);
            }
        }
        if let Some(Value::Object(errors)) = self.config_value(&["errors"]) {
            let unknown: Vec<String> = errors.keys().filter(|key| *key != "fallback" && *key != "handlers").cloned().collect();
            for key in unknown {
                self.note(format!("errors.{key} has no portcullis equivalent and is not converted"));
            }
        }
    }

    fn convert_global(&mut self, kind: Kind, name: &str, entry: &Value, document: &mut Document) {
        let field = format!("{}.{name}", kind.section());
        let empty = Value::Object(Map::new());
        // `noop:` with nothing after it is YAML for null: a section without settings.
        let entry = if entry.is_null() { &empty } else { entry };
        let Value::Object(entry) = entry else {
            self.note(format!("{field} is {}, not a mapping with enabled and config, and is not converted", kind_of(entry)));
            return;
        };
        let enabled = match entry.get("enabled") {
            Some(Value::Bool(enabled)) => *enabled,
            None | Some(Value::Null) => is_enabled_by_default(kind, name),
            Some(other) => {
                self.note(format!("{field}.enabled is {other}, not true or false; the handler is treated as disabled"));
                false
            }
        };
        for key in entry.keys().filter(|key| *key != "enabled" && *key != "config") {
            self.note(format!("{field}.{key} is not a handler setting and is ignored"));
        }
        let mut config = match entry.get("config") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(config)) => config.clone(),
            Some(other) => {
                self.note(format!("{field}.config is {}, not a mapping, and is ignored", kind_of(other)));
                Map::new()
            }
        };
        strip_nulls(&mut config);

        let Some(shape) = handlers::shape(kind, name) else {
            let consequence = match kind {
                Kind::Authenticator => "rules that use it respond with 401 where it would decide",
                Kind::Authorizer | Kind::Mutator => "rules that use it deny every request (403)",
                Kind::ErrorHandler => "rules that use it respond with errors.fallback instead",
            };
            self.note(format!("{field}: portcullis has no {name} {}; {consequence}", kind.noun()));
            self.globals.insert((kind, name.to_owned()), Global { enabled, config: None });
            return;
        };
        for key in shape.remove_unknown(&mut config, "") {
            self.note(format!("{field}.config.{key} is not supported by portcullis and is left out"));
        }
        let config = match handlers::check_types(kind, name, &config) {
            Ok(()) => {
                document.handler_sections.push(HandlerSection { kind, name: name.to_owned(), enabled, config: config.clone() });
                Some(config)
            }
            Err(error) => {
                self.note(format!("{field}.config is invalid ({error}) and is left out"));
                None
            }
        };
        self.globals.insert((kind, name.to_owned()), Global { enabled, config });
    }

    fn convert_fallback(&mut self, document: &mut Document) {
        let explicit = match self.config_value(&["errors", "fallback"]) {
            None => None,
            Some(Value::Array(items)) => Some(items.iter().filter_map(|item| item.as_str().map(str::to_owned)).collect::<Vec<_>>()),
            Some(other) => {
                self.note(format!("errors.fallback is {}, not a list of handler names; the default [\"json\"] is used", kind_of(other)));
                None
            }
        };
        let names = explicit.clone().unwrap_or_else(|| vec!["json".to_owned()]);
        let mut kept = Vec::new();
        for name in &names {
            match self.check_use(Kind::ErrorHandler, name, None) {
                Ok(_) => kept.push(name.clone()),
                Err(reason) => self.note(format!("errors.fallback: error handler {name}: {reason}; left out of the list")),
            }
        }
        if explicit.is_some() || kept != names {
            document.errors_fallback = Some(kept);
        }
    }

    /// Decides whether a rule's use of a handler loads in portcullis, and returns the rule's
    /// configuration to write, or why it cannot be converted.
    fn check_use(&mut self, kind: Kind, name: &str, rule_config: Option<&Value>) -> Result<UsableHandler, String> {
        if !handlers::is_supported(kind, name) {
            return Err(format!("portcullis has no {name} {}", kind.noun()));
        }
        let default_global = Global { enabled: is_enabled_by_default(kind, name), config: Some(Map::new()) };
        let global = self.globals.get(&(kind, name.to_owned())).unwrap_or(&default_global);
        if !global.enabled {
            return Err(format!(
                "{}.{name} is not enabled in {}, so Oathkeeper fails every request that reaches it",
                kind.section(),
                self.input.config_file
            ));
        }
        let Some(global_config) = global.config.clone() else {
            return Err(format!("its global configuration in {} was left out", self.input.config_file));
        };

        let mut config = match rule_config {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(config)) => config.clone(),
            Some(other) => return Err(format!("its config is {}, not a mapping", kind_of(other))),
        };
        strip_nulls(&mut config);
        let removed_keys = handlers::shape(kind, name).map(|shape| shape.remove_unknown(&mut config, "config")).unwrap_or_default();

        let merged = handlers::merge(Some(&global_config), Some(&config));
        handlers::check_types(kind, name, &merged).map_err(|error| format!("invalid configuration: {error}"))?;
        let cache_key = format!("{kind:?}/{name}/{}", Value::Object(merged.clone()));
        let loads = match self.checked.get(&cache_key) {
            Some(result) => result.clone(),
            None => {
                let result = handlers::check_loads(kind, name, &merged).map_err(|errors| errors.join("; "));
                self.checked.insert(cache_key, result.clone());
                result
            }
        };
        loads?;
        Ok(UsableHandler { config: (!config.is_empty()).then_some(config), removed_keys })
    }

    /// Enables the handlers that converted rules use to reject requests, where Oathkeeper's
    /// configuration disabled them.
    fn enable_replacements(&mut self, document: &mut Document) {
        let mut enabled = Vec::new();
        for section in &mut document.handler_sections {
            if !section.enabled && self.replacements.contains(&(section.kind, section.name.as_str())) {
                section.enabled = true;
                enabled.push(format!("{}.{}", section.kind.section(), section.name));
            }
        }
        for field in enabled {
            self.note(format!(
                "{field} is disabled in {} but enabled in the output, because converted rules use it to reject requests",
                self.input.config_file
            ));
        }
    }
}

/// Oathkeeper enables only the `json` error handler without `enabled: true`.
fn is_enabled_by_default(kind: Kind, name: &str) -> bool {
    kind == Kind::ErrorHandler && name == "json"
}

fn strip_nulls(config: &mut Map<String, Value>) {
    let mut value = Value::Object(std::mem::take(config));
    handlers::remove_nulls(&mut value);
    if let Value::Object(map) = value {
        *config = map;
    }
}
