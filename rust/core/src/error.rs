//! The one error type of the core. Messages are written for the person who
//! wrote the Nix expression: they name the attribute and the rule.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `rule`: the name rule (name.rs owns it).
    #[error("invalid container name {name:?}: {problem}. {rule}")]
    Name {
        name: String,
        problem: String,
        rule: &'static str,
    },

    #[error("attribute '{attr}': {msg}")]
    Attr { attr: String, msg: String },

    #[error("invalid arguments: {0}")]
    Args(String),

    #[error("setting '{setting}': {msg}")]
    Setting { setting: &'static str, msg: String },

    #[error("conf file '{}': {msg}", path.display())]
    Conf { path: PathBuf, msg: String },

    #[error("'{path}' does not look like a NixOS system: it has no 'init' ({why})")]
    NotASystem { path: String, why: String },

    #[error("refusing to use '{}': it is a symlink (or not a directory) inside the container root, and the plugin never follows links planted there", path.display())]
    Planted { path: PathBuf },

    #[error("refusing to use '{}': {why}; a directory the host trusts must be owned by root and writable by no one else (chown root and chmod go-w it, or choose another)", path.display())]
    Untrusted { path: PathBuf, why: String },

    #[error("refusing to open '{}': it is {kind}, not a regular file (the host never opens FIFOs, sockets, devices or links there; remove it)", path.display())]
    NotRegular { path: PathBuf, kind: &'static str },

    #[error("{0}")]
    Profile(String),

    /// A call into Nix failed (the plugin rethrows Nix's own error).
    #[error("{0}")]
    Nix(String),

    #[error("refusing to remove anything: something is mounted at {}; unmount it first (is the container still running?)", paths.iter().map(|p| format!("'{}'", p.display())).collect::<Vec<_>>().join(", "))]
    Mounted { paths: Vec<PathBuf> },

    #[error("cannot {op} '{}': {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub fn attr(attr: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::Attr {
            attr: attr.into(),
            msg: msg.into(),
        }
    }

    pub fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
        source: impl Into<std::io::Error>,
    ) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source: source.into(),
        }
    }
}
