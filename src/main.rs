//! The `portcullis` command: run the gateway, check a configuration file, or convert an
//! Oathkeeper setup.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(name = "portcullis", version, about = "Identity-aware API gateway: Kong routes and Oathkeeper access rules in one process")]
struct Cli {
    /// Configuration file (TOML).
    #[arg(long, short, default_value = "config/gateway.toml")]
    config: PathBuf,

    /// Log level or filter (error, warn, info, debug, trace, or a tracing filter such as
    /// "portcullis=debug"); RUST_LOG takes precedence when set.
    #[arg(long, global = true, default_value = "info")]
    log_level: String,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Validate the configuration file and exit: 0 when valid, 1 with every problem listed.
    Check {
        /// Configuration file (TOML); overrides the --config given before `check`.
        #[arg(long, short, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Convert another gateway's configuration into a portcullis configuration file.
    Import {
        #[command(subcommand)]
        source: ImportSource,
    },
}

#[derive(Subcommand)]
enum ImportSource {
    /// Convert an Ory Oathkeeper configuration and its access rules.
    ///
    /// Prints the TOML on stdout and one warning line on stderr for each thing not converted
    /// exactly. Exits 0, or 1 when an input file cannot be read or parsed.
    Oathkeeper(OathkeeperArgs),
}

#[derive(clap::Args)]
struct OathkeeperArgs {
    /// Oathkeeper's configuration file (oathkeeper.yml), YAML or JSON.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,

    /// Access-rule file, a YAML or JSON list of rules; repeat for several files. Without it,
    /// the file:// and inline:// URLs in the configuration's access_rules.repositories are read
    /// (a relative file:// path from the configuration file's directory).
    #[arg(long = "rules", value_name = "FILE")]
    rules: Vec<PathBuf>,

    /// Write the configuration to FILE instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_default_env().or_else(|_| EnvFilter::try_new(&cli.log_level));
    let filter = match filter {
        Ok(filter) => filter,
        Err(error) => {
            eprintln!("invalid --log-level {:?}: {error}", cli.log_level);
            return ExitCode::from(2);
        }
    };
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt().with_writer(std::io::stderr).with_ansi(ansi).with_env_filter(filter).init();

    match cli.command {
        Some(Command::Check { config }) => {
            let config = config.unwrap_or(cli.config);
            match portcullis::config::load(&config) {
                Ok(loaded) => {
                    for warning in &loaded.warnings {
                        eprintln!("warning: {warning}");
                    }
                    println!("{}: configuration is valid", config.display());
                    ExitCode::SUCCESS
                }
                Err(errors) => {
                    eprintln!("{errors}");
                    eprintln!("{}: {} problem(s) found", config.display(), errors.0.len());
                    ExitCode::FAILURE
                }
            }
        }
        Some(Command::Import { source: ImportSource::Oathkeeper(args) }) => import_oathkeeper(&args),
        None => match portcullis::server::run(&cli.config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("portcullis: {message}");
                ExitCode::FAILURE
            }
        },
    }
}

fn import_oathkeeper(args: &OathkeeperArgs) -> ExitCode {
    let options = portcullis::import::Options { config: args.config.clone(), rules: args.rules.clone() };
    let conversion = match portcullis::import::oathkeeper(&options) {
        Ok(conversion) => conversion,
        Err(error) => {
            eprintln!("portcullis import oathkeeper: {error}");
            return ExitCode::FAILURE;
        }
    };
    for note in &conversion.notes {
        eprintln!("warning: {note}");
    }
    let written = match &args.output {
        Some(path) => std::fs::write(path, &conversion.toml).map_err(|error| format!("cannot write {}: {error}", path.display())),
        None => std::io::stdout()
            .write_all(conversion.toml.as_bytes())
            .and_then(|()| std::io::stdout().flush())
            .map_err(|error| format!("cannot write to stdout: {error}")),
    };
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("portcullis import oathkeeper: {message}");
            ExitCode::FAILURE
        }
    }
}
