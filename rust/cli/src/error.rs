//! The CLI's errors and the exit codes scripts can rely on.

use std::process::ExitCode;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Core(#[from] ncp_core::Error),

    #[error("{0}")]
    Usage(String),

    #[error("unknown container '{name}': no conf file, profile or root under the configured roots ({config}); create it with `nix-container create {name} …` or builtins.containerProfile, or give the roots it is under (--container-state-dir …, or nix.conf)")]
    Unknown { name: String, config: String },

    #[error("container '{0}' is not running; start it with `nix-container start {0}`")]
    NotRunning(String),

    #[error("{0}")]
    Failed(String),

    #[error("cannot run {what}: {source}")]
    Spawn {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = CliError> = std::result::Result<T, E>;

/// Exit codes (README "The runtime CLI").
pub mod code {
    pub const OK: u8 = 0;
    pub const FAILED: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const UNKNOWN: u8 = 3;
    pub const NOT_RUNNING: u8 = 4;
}

impl CliError {
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            CliError::Usage(_) => code::USAGE,
            CliError::Unknown { .. } => code::UNKNOWN,
            CliError::NotRunning(_) => code::NOT_RUNNING,
            // A bad name is bad input.
            CliError::Core(ncp_core::Error::Name { .. }) => code::USAGE,
            _ => code::FAILED,
        })
    }
}

pub fn failed(msg: impl Into<String>) -> CliError {
    CliError::Failed(msg.into())
}

/// The error of a program that could not be started, for `map_err`.
pub fn spawn_failed(what: &str) -> impl FnOnce(std::io::Error) -> CliError + '_ {
    move |source| CliError::Spawn {
        what: what.into(),
        source,
    }
}
