//! The `portcullis` command: run the gateway, check a configuration file, or convert an
//! Oathkeeper setup.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(name = "portcullis", version, about = "Identity-aware API gateway: Kong routes and Oathkeeper access rules in one process")]
struct Cli {
    /// Configuration file (TOML).
    #[arg(long, short, global = true, default_value = "config/gateway.toml")]
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
    Check,
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
        Some(Command::Check) => match portcullis::config::load(&cli.config) {
            Ok(loaded) => {
                for warning in &loaded.warnings {
                    eprintln!("warning: {warning}");
                }
                println!("{}: configuration is valid", cli.config.display());
                ExitCode::SUCCESS
            }
            Err(errors) => {
                eprintln!("{errors}");
                eprintln!("{}: {} problem(s) found", cli.config.display(), errors.0.len());
                ExitCode::FAILURE
            }
        },
        None => match portcullis::server::run(&cli.config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("portcullis: {message}");
                ExitCode::FAILURE
            }
        },
    }
}
