//! nix-container-plugin core: everything about a container that does not need Nix.
//!
//! The C++ plugin hands us the call's arguments as JSON (its own walk of the
//! Nix value, cpp/value-json.cc), we validate them into a [`plan::Plan`]
//! (pure), and later prepare the container's directories, root file system
//! and conf file (side effects, all below the configured roots). Profiles are
//! read, locked, swept, switched and pruned here with Nix's on-disk rules
//! (`profile`, `profile_lock`); only the new generation itself is Nix's:
//! libstore's createGeneration, called by the C++ shim, which also
//! registers its GC root.

pub mod args;
pub mod conf;
pub mod conf_file;
pub mod decide;
pub mod error;
pub mod fsutil;
pub mod generation;
pub mod layout;
pub mod name;
pub mod nixconf;

pub mod nspawn;
pub mod plan;
pub mod procfs;

pub mod profile;
pub mod profile_lock;
pub mod rootfs;
pub mod spec;
pub mod store_path;

pub use error::{Error, Result};
