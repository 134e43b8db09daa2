//! The plugin's settings, defined once: name, kind, default and doc of each,
//! in [`TABLE`]. The plugin registers its Nix settings from it (through the
//! bridge, cpp/settings.cc), the CLI makes its flags and reads nix.conf by it
//! (cli/src/settings_args.rs), `create` passes it on to `nix` with
//! `--option`, and the NixOS module documents it from
//! nix-plugin/settings.json (a copy a test keeps equal). Adding a setting:
//! a row here and its field in [`Settings`] (this file), then whoever uses it.

use serde::Serialize;

use crate::error::{Error, Result};

/// How a setting's value is written and read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// An absolute directory; empty means the default.
    Path,
    /// `true` or `false`.
    Bool,
    /// A whole number of seconds.
    Seconds,
}

#[derive(Debug, Serialize)]
pub struct Setting {
    pub name: &'static str,
    pub kind: Kind,
    /// The value Nix registers ("" for a path: computed, see `default_doc`).
    pub default: &'static str,
    /// The default as the documentation states it.
    pub default_doc: &'static str,
    pub doc: &'static str,
    #[serde(skip)]
    field: fn(&mut Settings) -> Field<'_>,
}

enum Field<'a> {
    Path(&'a mut String),
    Bool(&'a mut bool),
    Seconds(&'a mut u64),
}

/// How long the plugin and the CLI wait for a profile lock by default.
pub const DEFAULT_LOCK_TIMEOUT_SECS: u64 = 60;

pub const TABLE: &[Setting] = &[
    Setting {
        name: "container-state-dir",
        kind: Kind::Path,
        default: "",
        default_doc:
            "/var/lib/nixos-containers, or /var/lib/containers with container-legacy-layout",
        doc: "Directory holding the containers' root file systems.",
        field: |s| Field::Path(&mut s.state_dir),
    },
    Setting {
        name: "container-config-dir",
        kind: Kind::Path,
        default: "",
        default_doc: "/etc/nixos-containers, or /etc/containers with container-legacy-layout",
        doc: "Directory of the containers' NAME.conf files.",
        field: |s| Field::Path(&mut s.config_dir),
    },
    Setting {
        name: "container-profiles-dir",
        kind: Kind::Path,
        default: "",
        default_doc: "NIX_STATE_DIR/profiles/per-container",
        doc: "Directory of the per-container system profiles.",
        field: |s| Field::Path(&mut s.profiles_dir),
    },
    Setting {
        name: "container-gcroots-dir",
        kind: Kind::Path,
        default: "",
        default_doc: "NIX_STATE_DIR/gcroots/per-container",
        doc: "Directory of the per-container GC root directories.",
        field: |s| Field::Path(&mut s.gcroots_dir),
    },
    Setting {
        name: "container-run-dir",
        kind: Kind::Path,
        default: "",
        default_doc: "/run/nix-container",
        doc:
            "The nix-container CLI's run directory (records of running containers, console logs). \
              The plugin does not use it; it is a setting so that nix.conf can hold it for the CLI.",
        field: |s| Field::Path(&mut s.run_dir),
    },
    Setting {
        name: "container-legacy-layout",
        kind: Kind::Bool,
        default: "false",
        default_doc: "false",
        doc:
            "Use the container layout of NixOS before 22.05 (/var/lib/containers, /etc/containers).",
        field: |s| Field::Bool(&mut s.legacy_layout),
    },
    Setting {
        name: "container-lock-timeout",
        kind: Kind::Seconds,
        default: "60",
        default_doc: "60",
        doc: "Seconds to wait for a container's profile lock (held by nix-env, nix-container or \
              another evaluation) before failing.",
        field: |s| Field::Seconds(&mut s.lock_timeout_secs),
    },
];

/// The setting of that name.
pub fn find(name: &str) -> Option<&'static Setting> {
    TABLE.iter().find(|s| s.name == name)
}

/// What the settings say (empty paths mean "the default"), and Nix's own
/// directories, which are Nix's settings, not ours.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub store_dir: String,
    pub nix_state_dir: String,
    pub state_dir: String,
    pub config_dir: String,
    pub profiles_dir: String,
    pub gcroots_dir: String,
    pub run_dir: String,
    pub legacy_layout: bool,
    /// How long to wait for a profile lock (0: the default).
    pub lock_timeout_secs: u64,
}

impl Settings {
    /// The defaults of the table.
    pub fn new() -> Settings {
        let mut s = Settings::default();
        for row in TABLE {
            // The table's defaults parse (a unit test holds them to it).
            let _ = s.set(row.name, row.default);
        }
        s
    }

    /// Sets the setting `name` from its text (as nix.conf or a flag holds it).
    pub fn set(&mut self, name: &str, value: &str) -> Result<()> {
        let row = find(name).ok_or_else(|| Error::Args(format!("unknown setting '{name}'")))?;
        let bad = |what: &str| Error::Setting {
            setting: row.name,
            msg: format!("'{value}' is not {what}"),
        };
        match (row.field)(self) {
            Field::Path(f) => *f = value.to_owned(),
            Field::Bool(f) => {
                *f = crate::nixconf::parse_bool(value)
                    .ok_or_else(|| bad("a boolean (true or false)"))?
            }
            Field::Seconds(f) => {
                *f = value
                    .trim()
                    .parse()
                    .map_err(|_| bad("a whole number of seconds"))?
            }
        }
        Ok(())
    }

    /// The value of setting `name` as text.
    pub fn get(&self, name: &str) -> Option<String> {
        let row = find(name)?;
        let mut copy = self.clone();
        Some(match (row.field)(&mut copy) {
            Field::Path(f) => f.clone(),
            Field::Bool(f) => f.to_string(),
            Field::Seconds(f) => f.to_string(),
        })
    }

    /// Every setting of the table with its value, in the table's order.
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        TABLE
            .iter()
            .map(|r| (r.name, self.get(r.name).unwrap_or_default()))
            .collect()
    }

    pub fn lock_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(match self.lock_timeout_secs {
            0 => DEFAULT_LOCK_TIMEOUT_SECS,
            n => n,
        })
    }
}

/// The table as JSON, for the NixOS module's documentation (a copy lives
/// at nix-plugin/settings.json).
pub fn table_json() -> String {
    let mut s = serde_json::to_string_pretty(TABLE).unwrap_or_default();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_has_a_field_and_a_default_that_parses() {
        for row in TABLE {
            let mut s = Settings::default();
            s.set(row.name, row.default).unwrap();
            assert_eq!(s.get(row.name).unwrap(), row.default, "{}", row.name);
            assert!(row.name.starts_with("container-"), "{}", row.name);
            assert!(!row.doc.is_empty() && !row.default_doc.is_empty());
        }
        let mut names: Vec<_> = TABLE.iter().map(|r| r.name).collect();
        names.dedup();
        assert_eq!(names.len(), TABLE.len());
        // Each row writes its own field: setting one changes only its value.
        for row in TABLE {
            let mut s = Settings::new();
            let v = match row.kind {
                Kind::Path => "/x",
                Kind::Bool => "true",
                Kind::Seconds => "7",
            };
            s.set(row.name, v).unwrap();
            for other in TABLE {
                let want = if other.name == row.name {
                    v
                } else {
                    other.default
                };
                assert_eq!(
                    s.get(other.name).unwrap(),
                    want,
                    "{} set {}",
                    row.name,
                    other.name
                );
            }
        }
    }

    #[test]
    fn values_are_checked_by_kind() {
        let mut s = Settings::new();
        let e = s
            .set("container-legacy-layout", "maybe")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "setting 'container-legacy-layout': 'maybe' is not a boolean (true or false)"
        );
        assert!(s.set("container-lock-timeout", "-1").is_err());
        assert!(s.set("container-nope", "1").is_err());
        s.set("container-lock-timeout", "5").unwrap();
        assert_eq!(s.lock_timeout().as_secs(), 5);
    }

    /// The module documents the settings from this copy of the table.
    #[test]
    fn the_modules_copy_of_the_table_is_current() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../nix-plugin/settings.json"
        );
        if std::env::var_os("NCP_BLESS").is_some() {
            std::fs::write(path, table_json()).unwrap();
        }
        let copy = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            copy == table_json(),
            "nix-plugin/settings.json differs from settings::TABLE; run `NCP_BLESS=1 cargo test -p ncp-core settings`"
        );
    }
}
