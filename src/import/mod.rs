//! `portcullis import oathkeeper`: converts an Ory Oathkeeper setup (its `oathkeeper.yml` and
//! access-rule files) into a portcullis configuration file.
//!
//! `read` loads the YAML or JSON input, `handlers` lists which Oathkeeper handlers and
//! options portcullis has, `routes` turns each rule's `upstream` and `match.url` into a Kong
//! service and route, `map` decides everything else and collects a [`Note`] for each thing
//! that is not converted exactly, and `write` prints the result as commented TOML.
//!
//! Conversion fails closed: a rule that uses a handler portcullis lacks is converted into one
//! that rejects what the missing handler would have decided, never into one that lets more
//! requests through.

pub mod handlers;
pub mod map;
pub mod read;
pub mod routes;
pub mod write;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::PathBuf;

pub use read::ReadError;

/// The input files of a conversion.
#[derive(Debug, Clone)]
pub struct Options {
    /// Oathkeeper's configuration file (`oathkeeper.yml`, YAML or JSON).
    pub config: PathBuf,
    /// Access-rule files. When empty, the files named by the configuration's
    /// `access_rules.repositories` are read instead.
    pub rules: Vec<PathBuf>,
}

/// The converted configuration and what could not be converted exactly.
#[derive(Debug)]
pub struct Conversion {
    /// The portcullis configuration file.
    pub toml: String,
    /// One entry per handler, option or match that has no exact equivalent.
    pub notes: Vec<Note>,
}

/// Something in the input that portcullis cannot express exactly, and what was done instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The id of the rule concerned, or None for the configuration file.
    pub rule: Option<String>,
    pub message: String,
}

/// Prints the note on one line: control characters from the input are escaped.
impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(rule) = &self.rule {
            write!(f, "rule {rule:?}: ")?;
        }
        for c in self.message.chars() {
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

/// Reasons `portcullis import` produces no output.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The generated text does not parse as a portcullis configuration: a bug in the importer.
    #[error("the converted configuration does not parse ({0}); please report this with the input files")]
    InvalidOutput(String),
}

/// Reads an Oathkeeper setup and converts it.
pub fn oathkeeper(options: &Options) -> Result<Conversion, ImportError> {
    let input = read::read_input(options)?;
    let (document, notes) = map::convert(&input)?;
    let toml = write::render(&document);
    if let Err(error) = toml::from_str::<crate::config::schema::ConfigFile>(&toml) {
        return Err(ImportError::InvalidOutput(error.message().trim().to_owned()));
    }
    Ok(Conversion { toml, notes })
}
