//! nix-container-plugin core: everything about a container that does not need Nix.
//!
//! The C++ plugin hands us the call's arguments as JSON (its own walk of the
//! Nix value, cpp/value-json.cc), we validate them into a [`plan::Plan`]
//! (pure), then run containerProfile's steps in their one order
//! ([`container_profile`]): the no-op check, the profile lock and sweep, the
//! root file system and conf file, the switch. The core asks Nix, through the
//! bridge, only for what needs libstore: the system's validity and real path,
//! and the new generation (createGeneration, which also registers its GC
//! root). Profiles are read, locked, swept, switched and pruned here with
//! Nix's on-disk rules (`profile`, `profile_lock`); the CLI uses the same
//! modules without Nix.

pub mod args;
pub mod conf;
pub mod conf_file;
pub mod container_profile;
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
pub mod settings;
pub mod spec;
pub mod store_path;

pub use error::{Error, Result};
