//! The host's files beside the conf files, and their one owner: what each
//! container was created from (NAME.source.json), its configuration module
//! (NAME.nix, for a configuration given as text or file; `update` evaluates
//! it again, and it may be edited), and the names `apply --declared` last
//! saw declared (`.nix-container-declared`, not a *.conf, so stock tools do
//! not list it). create and update write them, apply reads and writes the
//! declared list, destroy forgets a container's.
//!
//! nixos-container keeps the configuration in the container's own
//! /etc/nixos, where the container's root can change what host root then
//! evaluates; these files live in the host-owned config directory, which
//! the container never sees.

use std::collections::BTreeSet;
use std::path::PathBuf;

use ncp_core::args::Args;
use ncp_core::fsutil::{Contents, Dir};
use ncp_core::layout::Roots;
use ncp_core::name;
use serde::{Deserialize, Serialize};

use crate::error::{failed, Result};

/// What a container's system is built from, and the arguments of its
/// containerProfile call.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum Recipe {
    /// nixosConfigurations.ATTR of a flake.
    Flake {
        flake: String,
        attr: String,
        args: Args,
    },
    /// NAME.nix beside the conf, evaluated with eval-config.
    Config {
        nixos_path: Option<String>,
        args: Args,
    },
    /// A store path as it is.
    System { system: String, args: Args },
}

impl Recipe {
    pub fn args(&self) -> &Args {
        match self {
            Recipe::Flake { args, .. }
            | Recipe::Config { args, .. }
            | Recipe::System { args, .. } => args,
        }
    }
}

/// The most read of a recipe or the declared list.
const MAX_FILE: usize = 1 << 20;
const DECLARED: &str = ".nix-container-declared";

fn recipe_file(n: &str) -> String {
    format!("{n}.source.json")
}

fn module_file(n: &str) -> String {
    format!("{n}.nix")
}

/// The recipe files of the containers under `roots`.
pub struct Recipes<'a> {
    roots: &'a Roots,
}

impl<'a> Recipes<'a> {
    pub fn new(roots: &'a Roots) -> Self {
        Recipes { roots }
    }

    fn dir(&self) -> Result<Dir> {
        Ok(Dir::open_root(&self.roots.config_dir, 0o755)?)
    }

    fn existing(&self) -> Result<Option<Dir>> {
        Ok(Dir::open_existing_root(&self.roots.config_dir)?)
    }

    /// Container `n`'s recipe, if it has one.
    pub fn read(&self, n: &str) -> Result<Option<Recipe>> {
        let Some(d) = self.existing()? else {
            return Ok(None);
        };
        match d.read_bounded(&recipe_file(n), MAX_FILE)? {
            Contents::Data(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| failed(format!("{}: {e}", d.child_path(&recipe_file(n)).display()))),
            _ => Ok(None),
        }
    }

    pub fn save(&self, n: &str, r: &Recipe) -> Result<()> {
        let text = serde_json::to_vec_pretty(r).map_err(|e| failed(e.to_string()))?;
        self.dir()?.replace_file(&recipe_file(n), &text, 0o644)?;
        Ok(())
    }

    /// Writes container `n`'s configuration module (0600: it may hold
    /// secrets); its path.
    pub fn write_module(&self, n: &str, text: &str) -> Result<PathBuf> {
        let d = self.dir()?;
        d.replace_file(&module_file(n), text.as_bytes(), 0o600)?;
        Ok(d.child_path(&module_file(n)))
    }

    pub fn module_path(&self, n: &str) -> PathBuf {
        self.roots.config_dir.join(module_file(n))
    }

    /// Removes the module a failed create wrote.
    pub fn remove_module(&self, n: &str) -> Result<()> {
        if let Some(d) = self.existing()? {
            d.unlink(&module_file(n))?;
        }
        Ok(())
    }

    /// Removes everything of container `n`'s here (destroy).
    pub fn forget(&self, n: &str) -> Result<()> {
        if let Some(d) = self.existing()? {
            for f in [module_file(n), recipe_file(n)] {
                d.unlink(&f)?;
            }
        }
        Ok(())
    }

    /// The names `apply --declared` saw last.
    pub fn declared(&self) -> Result<BTreeSet<String>> {
        let Some(d) = self.existing()? else {
            return Ok(BTreeSet::new());
        };
        Ok(match d.read_bounded(DECLARED, MAX_FILE)? {
            Contents::Data(b) => String::from_utf8_lossy(&b)
                .lines()
                .filter(|n| name::validate(n).is_ok())
                .map(String::from)
                .collect(),
            _ => BTreeSet::new(),
        })
    }

    pub fn save_declared<'n>(&self, names: impl IntoIterator<Item = &'n String>) -> Result<()> {
        let text: String = names.into_iter().map(|n| format!("{n}\n")).collect();
        self.dir()?.replace_file(DECLARED, text.as_bytes(), 0o644)?;
        Ok(())
    }
}
