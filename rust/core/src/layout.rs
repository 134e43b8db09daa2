//! Where everything lives: the roots (plugin settings with NixOS defaults) and
//! the paths of one container below them. The one place for these facts.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};

/// Container roots and conf files, NixOS stateVersion >= 22.05.
pub const MODERN_STATE_DIR: &str = "/var/lib/nixos-containers";
pub const MODERN_CONFIG_DIR: &str = "/etc/nixos-containers";
/// The layout before 22.05 (no `nixos-` prefix).
pub const LEGACY_STATE_DIR: &str = "/var/lib/containers";
pub const LEGACY_CONFIG_DIR: &str = "/etc/containers";
/// Below Nix's state directory (`/nix/var/nix`).
pub const PROFILES_SUBDIR: &str = "profiles/per-container";
pub const GCROOTS_SUBDIR: &str = "gcroots/per-container";
/// The container's system profile is `<profiles>/NAME/system`.
pub const PROFILE_NAME: &str = "system";
/// Runtime records of the CLI, facts the host recorded itself and so can
/// trust (unlike anything inside the container): gone after a reboot, as
/// the containers are. What is in `<run-dir>/NAME`: the CLI's records.rs.
pub const DEFAULT_RUN_DIR: &str = "/run/nix-container";
/// The host's resolver configuration, copied in when COPY_RESOLV_CONF=1.
pub const HOST_RESOLV_CONF: &str = "/etc/resolv.conf";

pub use crate::settings::{Settings, DEFAULT_LOCK_TIMEOUT_SECS};

/// The resolved roots: every write of the plugin stays below one of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roots {
    pub store_dir: PathBuf,
    pub nix_state_dir: PathBuf,
    pub state_dir: PathBuf,
    pub config_dir: PathBuf,
    pub profiles_dir: PathBuf,
    pub gcroots_dir: PathBuf,
    pub run_dir: PathBuf,
}

fn absolute(
    setting: &'static str,
    value: &str,
    default: impl FnOnce() -> String,
) -> Result<PathBuf> {
    let v = if value.is_empty() {
        default()
    } else {
        value.to_owned()
    };
    let p = PathBuf::from(&v);
    if !p.is_absolute() {
        return Err(Error::Setting {
            setting,
            msg: format!("'{v}' is not an absolute path"),
        });
    }
    if p.components()
        .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(Error::Setting {
            setting,
            msg: format!("'{v}' contains '..'"),
        });
    }
    if v.contains(|c: char| c.is_whitespace() || c == ':' || c == '"' || c == '\\' || c == '$') {
        // These paths end up in nspawn arguments such as --bind=A:B.
        return Err(Error::Setting {
            setting,
            msg: format!("'{v}' contains white space, ':', '\"', '\\' or '$'"),
        });
    }
    Ok(p)
}

impl Roots {
    pub fn resolve(s: &Settings) -> Result<Roots> {
        let store_dir = absolute("store", &s.store_dir, || "/nix/store".into())?;
        let nix_state_dir = absolute("state", &s.nix_state_dir, || "/nix/var/nix".into())?;
        let state = nix_state_dir.display().to_string();
        let (sd, cd) = if s.legacy_layout {
            (LEGACY_STATE_DIR, LEGACY_CONFIG_DIR)
        } else {
            (MODERN_STATE_DIR, MODERN_CONFIG_DIR)
        };
        Ok(Roots {
            state_dir: absolute("container-state-dir", &s.state_dir, || sd.into())?,
            config_dir: absolute("container-config-dir", &s.config_dir, || cd.into())?,
            profiles_dir: absolute("container-profiles-dir", &s.profiles_dir, || {
                format!("{state}/{PROFILES_SUBDIR}")
            })?,
            gcroots_dir: absolute("container-gcroots-dir", &s.gcroots_dir, || {
                format!("{state}/{GCROOTS_SUBDIR}")
            })?,
            run_dir: absolute("container-run-dir", &s.run_dir, || DEFAULT_RUN_DIR.into())?,
            store_dir,
            nix_state_dir,
        })
    }

    /// The container roots by the name of the plugin setting that gives
    /// each (also the CLI's flag without its dashes).
    pub fn by_setting(&self) -> [(&'static str, &Path); 5] {
        [
            ("container-state-dir", &self.state_dir),
            ("container-config-dir", &self.config_dir),
            ("container-profiles-dir", &self.profiles_dir),
            ("container-gcroots-dir", &self.gcroots_dir),
            ("container-run-dir", &self.run_dir),
        ]
    }

    pub fn store_dir_str(&self) -> String {
        self.store_dir.display().to_string()
    }

    /// The paths of container `name`, which must already satisfy the name rule.
    pub fn container(&self, name: &str) -> Layout {
        let profile_dir = self.profiles_dir.join(name);
        Layout {
            name: name.to_owned(),
            root: self.state_dir.join(name),
            config_file: self.config_dir.join(format!("{name}.conf")),
            profile: profile_dir.join(PROFILE_NAME),
            profile_dir,
            gcroots_dir: self.gcroots_dir.join(name),
            unit: format!("container@{name}.service"),
        }
    }

    /// Paths as the container sees them: the host's store and Nix state
    /// directory appear at the same place inside.
    pub fn inner_profiles(&self) -> PathBuf {
        self.nix_state_dir.join("profiles")
    }
    pub fn inner_gcroots(&self) -> PathBuf {
        self.nix_state_dir.join("gcroots")
    }
    /// The init the container boots: whatever its system profile points at.
    pub fn inner_init(&self) -> PathBuf {
        self.inner_profiles().join(PROFILE_NAME).join("init")
    }
}

/// The paths of one container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Layout {
    pub name: String,
    pub root: PathBuf,
    pub config_file: PathBuf,
    pub profile_dir: PathBuf,
    pub profile: PathBuf,
    pub gcroots_dir: PathBuf,
    pub unit: String,
}

impl Layout {
    pub fn config_file_name(&self) -> String {
        format!("{}.conf", self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn defaults_are_the_nixos_layout() {
        let r = Roots::resolve(&Settings::default()).unwrap();
        let l = r.container("web");
        assert_eq!(l.root, Path::new("/var/lib/nixos-containers/web"));
        assert_eq!(l.config_file, Path::new("/etc/nixos-containers/web.conf"));
        assert_eq!(
            l.profile,
            Path::new("/nix/var/nix/profiles/per-container/web/system")
        );
        assert_eq!(
            l.gcroots_dir,
            Path::new("/nix/var/nix/gcroots/per-container/web")
        );
        assert_eq!(l.unit, "container@web.service");
        assert_eq!(
            r.inner_init(),
            Path::new("/nix/var/nix/profiles/system/init")
        );
    }

    #[test]
    fn legacy_layout_and_overrides() {
        let s = Settings {
            legacy_layout: true,
            profiles_dir: "/tmp/p".into(),
            ..Default::default()
        };
        let r = Roots::resolve(&s).unwrap();
        assert_eq!(r.state_dir, Path::new("/var/lib/containers"));
        assert_eq!(r.config_dir, Path::new("/etc/containers"));
        assert_eq!(r.container("a").profile, Path::new("/tmp/p/a/system"));
        assert!(r.container("a").profile.starts_with(&r.profiles_dir));
    }

    #[test]
    fn refuses_relative_or_odd_roots() {
        for bad in ["relative", "/a/../b", "/a b", "/a:b"] {
            let s = Settings {
                state_dir: bad.into(),
                ..Default::default()
            };
            let e = Roots::resolve(&s).unwrap_err().to_string();
            assert!(e.starts_with("setting 'container-state-dir'"), "{e}");
        }
    }
}
