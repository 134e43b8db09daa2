//! A container's system profile, read and changed with Nix's on-disk rules
//! (libstore profiles.cc): generations are `PROFILE-N-link` beside the
//! profile, the profile is a relative link to the current one, changes
//! happen under the profile lock (profile_lock.rs) and swap the link
//! atomically.
//!
//! The profile directory is bound read-write into the container, so its root
//! owns everything in it. All access goes through a descriptor of the
//! directory, opened without following a link from the host-owned profiles
//! root: links in it are read (readlinkat), never followed; names are
//! created, renamed and removed (symlinkat, renameat, unlinkat) in it only.
//! The plugin adds generations with libstore's createGeneration (which also
//! registers the GC root); everything else about profiles is here, shared by
//! the plugin and the CLI.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::fsutil::{Chmod, Dir, Kind};
use crate::generation::{link_name, parse_link_name};
use crate::layout::{Layout, Roots, PROFILE_NAME};
use crate::profile_lock::ProfileLock;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Generation {
    pub number: u64,
    pub link: PathBuf,
    /// Where the generation link points (a store path, as Nix writes it).
    pub path: String,
    /// The link's mtime, as Nix takes it.
    pub creation_time: i64,
    pub current: bool,
}

/// A container's profile directory, held open.
pub struct ProfileDir {
    pub dir: Dir,
    /// The profile's file name (`system`).
    pub name: String,
}

impl ProfileDir {
    /// Opens `<profiles>/NAME` of an existing container; None if it has none.
    /// A symlink (or anything but a directory) there is refused.
    pub fn open(roots: &Roots, layout: &Layout) -> Result<Option<ProfileDir>> {
        let Some(profiles) = Dir::open_existing_root(&roots.profiles_dir)? else {
            return Ok(None);
        };
        Ok(profiles
            .open_dir_if_exists(&layout.name)?
            .map(|dir| ProfileDir {
                dir,
                name: PROFILE_NAME.into(),
            }))
    }

    /// Creates `<profiles>/NAME` (0755, the profiles root 0700) as NixOS does.
    pub fn create(roots: &Roots, layout: &Layout) -> Result<ProfileDir> {
        let dir = Dir::open_root(&roots.profiles_dir, 0o700)?.ensure_dir(
            &layout.name,
            0o755,
            Chmod::Always,
        )?;
        Ok(ProfileDir {
            dir,
            name: PROFILE_NAME.into(),
        })
    }

    pub fn profile_path(&self) -> PathBuf {
        self.dir.child_path(&self.name)
    }

    /// The profile lock, waited for at most `timeout` (asking `interrupted`
    /// between attempts), then the sweep: under the lock no live writer
    /// owns a temporary, so every leftover (is_leftover) was left by one
    /// that was killed, and goes. Every change to a profile starts here.
    pub fn lock(
        &self,
        timeout: Duration,
        interrupted: &mut dyn FnMut() -> bool,
    ) -> Result<ProfileLock> {
        let lock = ProfileLock::acquire(&self.dir, &self.name, timeout, interrupted)?;
        self.remove_stale_temps()?;
        Ok(lock)
    }

    /// The lock before removing the whole profile directory: a lock file
    /// that is not a regular file with one link (planted) is removed first
    /// instead of refused, as the directory goes anyway.
    pub fn lock_for_removal(&self, timeout: Duration) -> Result<ProfileLock> {
        let name = crate::profile_lock::lock_name(&self.name);
        let planted = match self.dir.stat(&name)? {
            None => false,
            Some(st) => {
                use nix::sys::stat::SFlag;
                SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG
                    || st.st_nlink > 1
            }
        };
        if planted {
            self.dir.unlink(&name)?;
        }
        self.lock(timeout, &mut || false)
    }

    /// The generation link the profile points at, as a name in this
    /// directory, and its number (None: no profile, or not a generation).
    pub fn current_link(&self) -> Result<Option<(String, u64)>> {
        let Some(target) = self.dir.read_link(&self.name)? else {
            return Ok(None);
        };
        let target = PathBuf::from(target);
        // Nix writes a relative name; an absolute link into this directory
        // (older tools) names the same file.
        let name = if target.is_absolute() {
            if target.parent() != Some(self.dir.path.as_path()) {
                return Ok(None);
            }
            target.file_name().map(PathBuf::from)
        } else if target.components().count() == 1 {
            Some(target)
        } else {
            None
        };
        let Some(name) = name.and_then(|n| n.to_str().map(String::from)) else {
            return Ok(None);
        };
        Ok(parse_link_name(&self.name, &name).map(|n| (name, n)))
    }

    /// The current generation: the number of the link the profile points at.
    pub fn current(&self) -> Result<Option<u64>> {
        Ok(self.current_link()?.map(|(_, n)| n))
    }

    /// The store path the profile resolves to (two links read, none followed).
    pub fn system(&self) -> Result<Option<String>> {
        let Some((link, _)) = self.current_link()? else {
            return Ok(None);
        };
        Ok(self
            .dir
            .read_link(&link)
            .ok()
            .flatten()
            .and_then(|t| t.into_string().ok()))
    }

    /// Every generation, oldest first.
    pub fn list(&self) -> Result<Vec<Generation>> {
        let cur = self.current()?;
        let mut gens = Vec::new();
        for (file, kind) in self.dir.entries()? {
            let Some(f) = file.to_str() else { continue };
            let Some(number) = parse_link_name(&self.name, f) else {
                continue;
            };
            // A killed writer's temporary is not one (Nix would count it;
            // remove_stale_temps removes it).
            if self.is_leftover(f, kind) || f.contains(".tmp-") {
                continue;
            }
            let Some(st) = self.dir.stat(f)? else {
                continue;
            };
            if kind.unwrap_or(Kind::Symlink) != Kind::Symlink {
                continue;
            }
            let path = self
                .dir
                .read_link(f)
                .ok()
                .flatten()
                .and_then(|t| t.into_string().ok())
                .unwrap_or_default();
            gens.push(Generation {
                number,
                link: self.dir.child_path(f),
                path,
                creation_time: st.st_mtime,
                current: cur == Some(number),
            });
        }
        gens.sort_by(|a, b| a.number.cmp(&b.number).then(a.link.cmp(&b.link)));
        Ok(gens)
    }

    /// The newest generation's number (0 when there is none).
    pub fn newest(&self) -> Result<u64> {
        Ok(self.list()?.last().map_or(0, |g| g.number))
    }

    /// The file name of generation `n`'s link (as found: a planted
    /// `system-007-link` is generation 7 to Nix as well).
    fn link_of(&self, n: u64) -> Result<String> {
        let canonical = link_name(&self.name, n);
        if self.dir.kind(&canonical)? == Some(Kind::Symlink) {
            return Ok(canonical);
        }
        self.list()?
            .into_iter()
            .find(|g| g.number == n)
            .and_then(|g| g.link.file_name()?.to_str().map(String::from))
            .ok_or_else(|| Error::Profile(format!("generation {n} does not exist")))
    }

    /// Points the profile at generation `n` (caller holds the profile lock):
    /// a temporary link beside it, renamed over it, as Nix's switchLink.
    pub fn switch_to(&self, n: u64) -> Result<()> {
        let target = self.link_of(n)?;
        let tmp = format!(".{}_{}", std::process::id(), self.name);
        self.dir.replace_link(&self.name, Path::new(&target), &tmp)
    }

    /// Removes generation `n`'s link (caller holds the lock, `n` is not current).
    pub fn delete(&self, n: u64) -> Result<()> {
        let link = self.link_of(n)?;
        self.dir.unlink(&link).map(|_| ())
    }

    /// Whether `f` (of kind `kind`) is what a writer killed mid-change
    /// leaves in the profile directory: Nix's `PROFILE-N-link.tmp-PID-RAND`
    /// (which Nix itself would then count as generation N, and even make
    /// current) or the `.N_PROFILE` temporary of a link swap, each a
    /// symlink. The one leftover rule: the no-op check (plan.rs), listing
    /// and the sweep all ask it, so nothing else a container's root plants
    /// there (it is bound read-write into the container) can keep every
    /// evaluation on the slow path.
    pub fn is_leftover(&self, f: &str, kind: Option<Kind>) -> bool {
        let nix_temp = parse_link_name(&self.name, f).is_some() && f.contains("-link.tmp-");
        let swap_temp = f
            .strip_prefix('.')
            .and_then(|r| r.strip_suffix(self.name.as_str())?.strip_suffix('_'))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        (nix_temp || swap_temp) && kind == Some(Kind::Symlink)
    }

    /// Removes the leftovers (is_leftover) of writers killed mid-change
    /// (the caller holds the profile lock, so no live writer owns them).
    /// Returns how many were removed.
    fn remove_stale_temps(&self) -> Result<usize> {
        let mut removed = 0;
        for (file, kind) in self.dir.entries()? {
            let Some(f) = file.to_str() else { continue };
            if self.is_leftover(f, kind) && self.dir.unlink(f)? {
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// What `delete-generations` was asked to delete, in nix-env's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteSpec {
    /// `old`: every generation but the current one.
    Old,
    /// `+K`: keep the current generation, the K-1 before it and all newer.
    KeepLast(u64),
    /// `Nd`: those older than N days, except the newest of them (it was the
    /// one in use N days ago) and the current one.
    OlderThanDays(u32),
    /// `N M …`: exactly these (the current one refused).
    Numbers(Vec<u64>),
}

impl DeleteSpec {
    pub fn parse(args: &[String]) -> std::result::Result<DeleteSpec, String> {
        let usage = "expected `old`, `+K` (keep the last K), `Nd` (older than N days) or generation numbers";
        match args {
            [] => Err(format!("nothing to delete: {usage}")),
            [one] if one == "old" => Ok(DeleteSpec::Old),
            [one] if one.starts_with('+') => match one[1..].parse::<u64>() {
                Ok(0) => Err("+0 would delete the current generation: keep at least one".into()),
                Ok(k) if !one[1..].starts_with('+') => Ok(DeleteSpec::KeepLast(k)),
                _ => Err(format!("'{one}': {usage}")),
            },
            // nix-env reads the days as an int: anything larger is refused
            // there too (and would overflow the time arithmetic).
            [one] if one.ends_with('d') => match one[..one.len() - 1].parse::<i32>() {
                Ok(n) if n >= 1 && !one.starts_with('+') => Ok(DeleteSpec::OlderThanDays(n as u32)),
                _ => Err(format!("'{one}': invalid number of days; {usage}")),
            },
            many => many
                .iter()
                .map(|a| {
                    if a.bytes().all(|b| b.is_ascii_digit()) {
                        a.parse::<u64>().ok()
                    } else {
                        None
                    }
                    .ok_or_else(|| format!("'{a}': {usage}"))
                })
                .collect::<std::result::Result<Vec<_>, _>>()
                .map(DeleteSpec::Numbers),
        }
    }

    /// The generations to delete, newest first as Nix reports them; pure.
    pub fn select(&self, gens: &[Generation], now: i64) -> std::result::Result<Vec<u64>, String> {
        let cur = gens.iter().find(|g| g.current).map(|g| g.number);
        let newest_first = gens.iter().rev();
        let out: Vec<u64> = match self {
            DeleteSpec::Old => newest_first
                .filter(|g| !g.current)
                .map(|g| g.number)
                .collect(),
            DeleteSpec::KeepLast(k) => newest_first
                .skip_while(|g| Some(g.number) != cur)
                .skip(usize::try_from(*k).unwrap_or(usize::MAX))
                .map(|g| g.number)
                .collect(),
            DeleteSpec::OlderThanDays(days) => {
                let t = now.saturating_sub(i64::from(*days) * 24 * 3600);
                newest_first
                    .skip_while(|g| g.creation_time >= t)
                    .skip(1)
                    .filter(|g| !g.current)
                    .map(|g| g.number)
                    .collect()
            }
            DeleteSpec::Numbers(ns) => {
                if let Some(c) = cur.filter(|c| ns.contains(c)) {
                    return Err(format!("cannot delete the current generation ({c})"));
                }
                newest_first
                    .filter(|g| ns.contains(&g.number))
                    .map(|g| g.number)
                    .collect()
            }
        };
        Ok(out)
    }
}

/// `builtins.containerGenerations`: the generations of the container its
/// argument names (a JSON string, or an object with `name`), as JSON.
pub fn generations_json(arg_json: &str, roots: &Roots) -> Result<String> {
    let name = generations_name(arg_json)?;
    let gens = match ProfileDir::open(roots, &roots.container(&name))? {
        Some(p) => p.list()?,
        None => Vec::new(),
    };
    serde_json::to_string(&gens).map_err(|e| Error::Args(e.to_string()))
}

/// The container name a containerGenerations argument gives.
fn generations_name(arg_json: &str) -> Result<String> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct ByName {
        name: String,
    }
    let name = match serde_json::from_str::<String>(arg_json) {
        Ok(n) => n,
        Err(_) => {
            serde_json::from_str::<ByName>(arg_json)
                .map_err(|e| {
                    Error::Args(format!(
                        "expected a container name or {{ name = \"…\"; }}: {e}"
                    ))
                })?
                .name
        }
    };
    crate::name::validate(&name)?;
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::Settings;

    #[test]
    fn generations_take_a_name_or_a_set() {
        assert_eq!(generations_name("\"web\"").unwrap(), "web");
        assert_eq!(generations_name("{\"name\":\"web\"}").unwrap(), "web");
        assert!(generations_name("{\"name\":\"Web\"}")
            .unwrap_err()
            .to_string()
            .contains("upper-case"));
        assert!(generations_name("{\"nam\":\"web\"}").is_err());
    }

    fn gens(numbers: &[(u64, i64)], current: u64) -> Vec<Generation> {
        numbers
            .iter()
            .map(|&(number, creation_time)| Generation {
                number,
                link: PathBuf::new(),
                path: String::new(),
                creation_time,
                current: number == current,
            })
            .collect()
    }

    fn spec(args: &[&str]) -> DeleteSpec {
        DeleteSpec::parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn profile_dir(t: &tempfile::TempDir) -> ProfileDir {
        let roots = Roots::resolve(&Settings {
            profiles_dir: t.path().join("profiles").display().to_string(),
            ..Default::default()
        })
        .unwrap();
        ProfileDir::create(&roots, &roots.container("web")).unwrap()
    }

    #[test]
    fn selects_like_nix_env() {
        let g = gens(&[(1, 0), (2, 0), (3, 0), (4, 0), (5, 0)], 4);
        assert_eq!(spec(&["old"]).select(&g, 0), Ok(vec![5, 3, 2, 1]));
        // +2 keeps 5 (newer than current), 4 (current) and 3.
        assert_eq!(spec(&["+2"]).select(&g, 0), Ok(vec![2, 1]));
        assert_eq!(spec(&["1", "3", "9"]).select(&g, 0), Ok(vec![3, 1]));
        assert!(spec(&["4"]).select(&g, 0).unwrap_err().contains("current"));
        let day = 24 * 3600;
        let g = gens(&[(1, 0), (2, day), (3, 5 * day), (4, 9 * day)], 1);
        // Older than 3 days at day 9: 3 was in use then and stays; 2 goes;
        // 1 is current and stays.
        assert_eq!(spec(&["3d"]).select(&g, 9 * day), Ok(vec![2]));
        // The largest number of days nix-env takes deletes nothing here.
        assert_eq!(spec(&["2147483647d"]).select(&g, 9 * day), Ok(vec![]));
    }

    #[test]
    fn refuses_bad_specs() {
        for bad in [
            &["+0"][..],
            &["x"],
            &["0d"],
            &["-1"],
            &[],
            &["1", "old"],
            &["99999999999999999999d"],
            &["2147483648d"],
            &["++1"],
            &["+1d"],
        ] {
            let v: Vec<String> = bad.iter().map(|s| s.to_string()).collect();
            assert!(DeleteSpec::parse(&v).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn removes_only_stale_temporaries() {
        let t = tempfile::tempdir().unwrap();
        let p = profile_dir(&t);
        let link =
            |n: &str| std::os::unix::fs::symlink("/nix/store/x", p.dir.child_path(n)).unwrap();
        for n in [
            "system-1-link",
            "system-2-link.tmp-123-456",
            ".77_system",
            "other-1-link.tmp-1-2",
            ".x_system",
            "system",
        ] {
            link(n);
        }
        std::fs::write(p.dir.child_path("system-3-link.tmp-1-2"), "").unwrap();
        assert_eq!(p.remove_stale_temps().unwrap(), 2);
        let mut left: Vec<String> = std::fs::read_dir(&p.dir.path)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                ".x_system",
                "other-1-link.tmp-1-2",
                "system",
                "system-1-link",
                "system-3-link.tmp-1-2"
            ]
        );
    }

    #[test]
    fn lists_and_switches() {
        let t = tempfile::tempdir().unwrap();
        let p = profile_dir(&t);
        for n in [1, 2, 10] {
            std::os::unix::fs::symlink(
                format!("/nix/store/x-{n}"),
                p.dir.child_path(&link_name("system", n)),
            )
            .unwrap();
        }
        std::fs::write(p.dir.child_path("system-x-link"), "").unwrap();
        p.switch_to(2).unwrap();
        assert_eq!(
            std::fs::read_link(p.profile_path()).unwrap(),
            Path::new("system-2-link")
        );
        assert_eq!(p.system().unwrap().as_deref(), Some("/nix/store/x-2"));
        let l = p.list().unwrap();
        assert_eq!(l.iter().map(|g| g.number).collect::<Vec<_>>(), [1, 2, 10]);
        assert!(l[1].current && !l[0].current);
        assert_eq!(l[2].path, "/nix/store/x-10");
        p.delete(1).unwrap();
        assert_eq!(p.list().unwrap().len(), 2);
        assert!(p.switch_to(1).is_err());
        // 64-bit numbers, as Nix 2.26+ reads them.
        std::os::unix::fs::symlink("/nix/store/big", p.dir.child_path("system-4294967296-link"))
            .unwrap();
        assert_eq!(p.newest().unwrap(), 4294967296);
    }

    #[test]
    fn a_symlinked_profile_directory_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let roots = Roots::resolve(&Settings {
            profiles_dir: t.path().join("profiles").display().to_string(),
            ..Default::default()
        })
        .unwrap();
        let other = ProfileDir::create(&roots, &roots.container("other")).unwrap();
        std::os::unix::fs::symlink(&other.dir.path, roots.profiles_dir.join("web")).unwrap();
        let e = ProfileDir::open(&roots, &roots.container("web"))
            .err()
            .unwrap();
        assert!(matches!(e, Error::Planted { .. }), "{e}");
        assert!(ProfileDir::open(&roots, &roots.container("none"))
            .unwrap()
            .is_none());
    }
}
