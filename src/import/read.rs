//! Reads Oathkeeper's configuration file and access-rule files, YAML or JSON, into plain
//! values and [`Rule`]s. Syntax and structure errors name the file, the field and the problem.
//!
//! A file whose first non-blank character is `[` or `{` is read as JSON, any other as YAML.
//! Rule files hold a list of rules, as Oathkeeper requires. Without `--rules`, the files listed
//! in the configuration's `access_rules.repositories` are read: `file://` URLs (a relative
//! path is taken from the configuration file's directory) and `inline://` URLs (base64).

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use base64::Engine;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use super::Options;

/// Maximum size of one input file. Real rule sets are far smaller; the bound keeps a wrong
/// path (a disk image, a log) from being read into memory.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// The two syntaxes Oathkeeper reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Yaml,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Json => "JSON",
            Format::Yaml => "YAML",
        })
    }
}

/// Reasons the input cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{file}: cannot read the file: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: the file is larger than the maximum of {max_bytes} bytes")]
    TooLarge { file: String, max_bytes: u64 },
    #[error("{file}: the file is not valid UTF-8 (first invalid byte at offset {offset})")]
    NotUtf8 { file: String, offset: usize },
    #[error("{file}: invalid {format}: {message}")]
    Syntax { file: String, format: Format, message: String },
    /// Well-formed text with the wrong structure, such as a rule without `id`.
    #[error("{file}: {field}: {message}")]
    Invalid { file: String, field: String, message: String },
}

/// Everything read from the input files.
#[derive(Debug)]
pub struct Input {
    /// The configuration file's path as given.
    pub config_file: String,
    /// The configuration, an empty map for an empty file.
    pub config: Map<String, Value>,
    /// The rule files and URLs read, in reading order, for the output's header comment.
    pub rule_sources: Vec<String>,
    pub rules: Vec<SourcedRule>,
}

/// A rule and the file it was read from.
#[derive(Debug)]
pub struct SourcedRule {
    pub source: String,
    pub rule: Rule,
}

/// One Oathkeeper access rule. Unknown keys are collected in `other` so that the converter
/// can report them; `null` counts as absent, as it does for Oathkeeper's Go decoder.
#[derive(Debug, Deserialize)]
pub struct Rule {
    pub id: String,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(rename = "match", default)]
    pub matcher: Option<RuleMatch>,
    #[serde(default)]
    pub upstream: Option<RuleUpstream>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub authenticators: Vec<RuleHandler>,
    #[serde(default)]
    pub authorizer: Option<RuleHandler>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub mutators: Vec<RuleHandler>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub errors: Vec<RuleHandler>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// A rule's `match`.
#[derive(Debug, Deserialize)]
pub struct RuleMatch {
    #[serde(default, deserialize_with = "null_as_default")]
    pub url: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub methods: Vec<String>,
    /// `headers` (documented but not implemented by Oathkeeper) and the gRPC keys.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// A rule's `upstream`.
#[derive(Debug, Default, Deserialize)]
pub struct RuleUpstream {
    #[serde(default, deserialize_with = "null_as_default")]
    pub url: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub preserve_host: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    pub strip_path: String,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// `{ handler, config }` inside a rule.
#[derive(Debug, Deserialize)]
pub struct RuleHandler {
    pub handler: String,
    #[serde(default)]
    pub config: Option<Value>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Reads the configuration and every rule file named by `options` or by the configuration.
pub fn read_input(options: &Options) -> Result<Input, ReadError> {
    let config_file = options.config.display().to_string();
    let config = match parse_file(&options.config)? {
        Value::Null => Map::new(),
        Value::Object(map) => map,
        other => {
            return Err(ReadError::Invalid {
                file: config_file,
                field: "(top level)".to_owned(),
                message: format!("expected a mapping of configuration keys, found {}", kind_of(&other)),
            })
        }
    };

    let sources = if options.rules.is_empty() {
        repository_sources(&config, &options.config)?
    } else {
        options.rules.iter().cloned().map(RuleSource::File).collect()
    };
    if sources.is_empty() {
        return Err(ReadError::Invalid {
            file: config_file,
            field: "access_rules.repositories".to_owned(),
            message: "lists no rule files: pass them with --rules FILE".to_owned(),
        });
    }

    let mut rule_sources = Vec::new();
    let mut rules = Vec::new();
    for source in sources {
        let (label, value) = match source {
            RuleSource::File(path) => (path.display().to_string(), parse_file(&path)?),
            RuleSource::Inline { label, text } => {
                let value = parse_text(&text, &label)?;
                (label, value)
            }
        };
        rules.extend(parse_rules(value, &label)?);
        rule_sources.push(label);
    }
    Ok(Input { config_file, config, rule_sources, rules })
}

/// The origin of one rule file.
enum RuleSource {
    File(PathBuf),
    /// An `inline://` repository, already decoded.
    Inline { label: String, text: String },
}

fn repository_sources(config: &Map<String, Value>, config_path: &Path) -> Result<Vec<RuleSource>, ReadError> {
    let file = config_path.display().to_string();
    let invalid = |field: String, message: String| ReadError::Invalid { file: file.clone(), field, message };
    let repositories = match config.get("access_rules").and_then(|rules| rules.get("repositories")) {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(invalid(
                "access_rules.repositories".to_owned(),
                format!("expected a list of URLs, found {}", kind_of(other)),
            ))
        }
    };
    let base = config_path.parent().unwrap_or(Path::new(""));
    let mut sources = Vec::new();
    for (index, item) in repositories.iter().enumerate() {
        let field = format!("access_rules.repositories[{index}]");
        let Some(url) = item.as_str() else {
            return Err(invalid(field, format!("expected a URL string, found {}", kind_of(item))));
        };
        if let Some(path) = url.strip_prefix("file://") {
            let path = Path::new(path);
            sources.push(RuleSource::File(if path.is_absolute() { path.to_path_buf() } else { base.join(path) }));
        } else if let Some(encoded) = url.strip_prefix("inline://") {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .map_err(|error| invalid(field.clone(), format!("invalid base64 in the inline:// URL: {error}")))?;
            let text = String::from_utf8(bytes)
                .map_err(|_| invalid(field.clone(), "the inline:// rules are not valid UTF-8".to_owned()))?;
            sources.push(RuleSource::Inline { label: format!("{file} {field}"), text });
        } else {
            return Err(invalid(
                field,
                format!("cannot read {url:?}: only file:// and inline:// repositories are read; download the rules and pass the file with --rules"),
            ));
        }
    }
    Ok(sources)
}

/// Reads a file of at most [`MAX_FILE_BYTES`] and parses it as JSON or YAML.
fn parse_file(path: &Path) -> Result<Value, ReadError> {
    let file = path.display().to_string();
    let io_error = |source| ReadError::Io { file: file.clone(), source };
    let handle = std::fs::File::open(path).map_err(io_error)?;
    let mut bytes = Vec::new();
    handle.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes).map_err(io_error)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(ReadError::TooLarge { file, max_bytes: MAX_FILE_BYTES });
    }
    let text = String::from_utf8(bytes)
        .map_err(|error| ReadError::NotUtf8 { file: file.clone(), offset: error.utf8_error().valid_up_to() })?;
    parse_text(&text, &file)
}

/// Parses text as JSON when it starts with `[` or `{`, else as YAML. Empty text is `null`.
pub fn parse_text(text: &str, file: &str) -> Result<Value, ReadError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let first = text.trim_start().chars().next();
    if matches!(first, Some('[' | '{')) {
        return serde_json::from_str(text).map_err(|error| ReadError::Syntax {
            file: file.to_owned(),
            format: Format::Json,
            message: error.to_string(),
        });
    }
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_yaml_ng::from_str(text).map_err(|error| ReadError::Syntax {
        file: file.to_owned(),
        format: Format::Yaml,
        message: error.to_string(),
    })
}

/// Reads a rule file's value: a list of rules, or nothing for an empty file.
pub(super) fn parse_rules(value: Value, file: &str) -> Result<Vec<SourcedRule>, ReadError> {
    let items = match value {
        Value::Null => return Ok(Vec::new()),
        Value::Array(items) => items,
        other => {
            return Err(ReadError::Invalid {
                file: file.to_owned(),
                field: "(top level)".to_owned(),
                message: format!("expected a list of rules, found {}", kind_of(&other)),
            })
        }
    };
    let mut rules = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        let id = item.get("id").and_then(Value::as_str).map(str::to_owned);
        let rule: Rule = serde_json::from_value(item).map_err(|error| ReadError::Invalid {
            file: file.to_owned(),
            field: match &id {
                Some(id) => format!("rule {index} ({id:?})"),
                None => format!("rule {index}"),
            },
            message: error.to_string(),
        })?;
        rules.push(SourcedRule { source: file.to_owned(), rule });
    }
    Ok(rules)
}

/// Names a JSON value's type for error messages.
pub fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_and_yaml_are_detected_by_content() {
        let json = parse_text("  [{\"id\": \"a\"}]", "rules.json").unwrap();
        let yaml = parse_text("- id: a\n", "rules.yml").unwrap();
        assert_eq!(json, yaml);
    }

    #[test]
    fn invalid_yaml_names_file_and_line() {
        let error = parse_text("- id: a\n  match: [\n", "rules.yml").unwrap_err().to_string();
        assert!(error.starts_with("rules.yml: invalid YAML:"), "{error}");
        assert!(error.contains("line"), "{error}");
    }

    #[test]
    fn invalid_json_names_file_and_line() {
        let error = parse_text("[{\"id\": }]", "rules.json").unwrap_err().to_string();
        assert!(error.starts_with("rules.json: invalid JSON:"), "{error}");
        assert!(error.contains("line 1"), "{error}");
    }

    #[test]
    fn rule_without_handler_name_is_invalid() {
        let value = parse_text("- id: a\n  authenticators: [{config: {}}]\n", "rules.yml").unwrap();
        let error = parse_rules(value, "rules.yml").unwrap_err().to_string();
        assert!(error.contains("rule 0 (\"a\")"), "{error}");
        assert!(error.contains("handler"), "{error}");
    }

    #[test]
    fn non_utf8_file_is_reported() {
        let path = std::env::temp_dir().join(format!("portcullis-import-{}-latin1.yml", std::process::id()));
        std::fs::write(&path, b"- id: caf\xe9\n").unwrap();
        let error = parse_file(&path).unwrap_err().to_string();
        let _ = std::fs::remove_file(&path);
        assert!(error.ends_with(": the file is not valid UTF-8 (first invalid byte at offset 9)"), "{error}");
    }

    #[test]
    fn rules_file_must_be_a_list() {
        let value = parse_text("id: a\n", "rules.yml").unwrap();
        let error = parse_rules(value, "rules.yml").unwrap_err().to_string();
        assert!(error.contains("expected a list of rules"), "{error}");
    }

    #[test]
    fn null_lists_count_as_empty() {
        let value = parse_text("- id: a\n  mutators: null\n  match: {url: 'http://x/', methods: null}\n", "r.yml").unwrap();
        let rules = parse_rules(value, "r.yml").unwrap();
        assert!(rules[0].rule.mutators.is_empty());
        assert!(rules[0].rule.matcher.as_ref().unwrap().methods.is_empty());
    }

    #[test]
    fn unknown_rule_keys_are_kept_for_reporting() {
        let value = parse_text("- id: a\n  priority: 3\n", "r.yml").unwrap();
        let rules = parse_rules(value, "r.yml").unwrap();
        assert!(rules[0].rule.other.contains_key("priority"));
    }

    #[test]
    fn inline_repository_is_decoded() {
        let encoded = base64::engine::general_purpose::STANDARD.encode("- id: inline\n");
        let mut config = Map::new();
        config.insert("access_rules".to_owned(), serde_json::json!({ "repositories": [format!("inline://{encoded}")] }));
        let sources = repository_sources(&config, Path::new("/etc/oathkeeper.yml")).unwrap();
        let [RuleSource::Inline { text, .. }] = sources.as_slice() else { panic!("expected one inline source") };
        assert_eq!(text, "- id: inline\n");
    }

    #[test]
    fn relative_file_repository_is_taken_from_config_directory() {
        let mut config = Map::new();
        config.insert("access_rules".to_owned(), serde_json::json!({ "repositories": ["file://rules.yml", "file:///abs/rules.yml"] }));
        let sources = repository_sources(&config, Path::new("/etc/oathkeeper/oathkeeper.yml")).unwrap();
        let paths: Vec<&Path> = sources
            .iter()
            .map(|source| match source {
                RuleSource::File(path) => path.as_path(),
                RuleSource::Inline { .. } => panic!("expected files"),
            })
            .collect();
        assert_eq!(paths, [Path::new("/etc/oathkeeper/rules.yml"), Path::new("/abs/rules.yml")]);
    }

    #[test]
    fn remote_repository_is_rejected_with_advice() {
        let mut config = Map::new();
        config.insert("access_rules".to_owned(), serde_json::json!({ "repositories": ["https://example.com/rules.json"] }));
        let Err(error) = repository_sources(&config, Path::new("oathkeeper.yml")) else { panic!("expected an error") };
        let message = error.to_string();
        assert!(message.contains("access_rules.repositories[0]"), "{message}");
        assert!(message.contains("--rules"), "{message}");
    }
}
