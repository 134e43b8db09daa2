//! A container's system profile as the runtime CLI reads and changes it,
//! with Nix's semantics (libstore profiles.cc): generations are
//! `PROFILE-N-link` beside the profile, the profile is a relative link to the
//! current one, changes happen under the profile lock (profile_lock.rs) and
//! swap the link atomically. The plugin itself uses libstore for this.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::generation::{link_name, parse_link_name};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Generation {
    pub number: u64,
    pub link: PathBuf,
    /// Where the generation link points (a store path).
    pub path: String,
    /// The link's mtime, as Nix takes it.
    pub creation_time: i64,
    pub current: bool,
}

fn profile_name(profile: &Path) -> Result<&str> {
    profile
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Error::io("read profile", profile, std::io::ErrorKind::InvalidInput))
}

/// The current generation: the number in the profile link's target, if any.
pub fn current(profile: &Path) -> Result<Option<u64>> {
    match std::fs::read_link(profile) {
        Ok(t) => Ok(t
            .to_str()
            .and_then(|t| parse_link_name(profile_name(profile).ok()?, t))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read profile link", profile, e)),
    }
}

/// Every generation, oldest first (an absent profile directory has none).
pub fn list(profile: &Path) -> Result<Vec<Generation>> {
    let name = profile_name(profile)?;
    let dir = profile.parent().unwrap_or(Path::new("/"));
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("read profile directory", dir, e)),
    };
    let cur = current(profile)?;
    let mut gens = Vec::new();
    for e in entries {
        let e = e.map_err(|e| Error::io("read profile directory", dir, e))?;
        let Some(number) = e
            .file_name()
            .to_str()
            .and_then(|f| parse_link_name(name, f))
        else {
            continue;
        };
        let link = e.path();
        let meta = std::fs::symlink_metadata(&link).map_err(|e| Error::io("stat", &link, e))?;
        let path = std::fs::read_link(&link)
            .map(|t| t.display().to_string())
            .unwrap_or_default();
        gens.push(Generation {
            number,
            link,
            path,
            creation_time: meta.mtime(),
            current: cur == Some(number),
        });
    }
    gens.sort_by_key(|g| g.number);
    Ok(gens)
}

/// Points the profile at generation `n` (caller holds the profile lock):
/// a temporary link beside it, renamed over it, as Nix's switchLink.
pub fn switch_to(profile: &Path, n: u64) -> Result<()> {
    let target = link_name(profile_name(profile)?, n);
    let dir = profile.parent().unwrap_or(Path::new("/"));
    let tmp = dir.join(format!(
        ".{}_{}",
        std::process::id(),
        profile_name(profile)?
    ));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(&target, &tmp).map_err(|e| Error::io("create link", &tmp, e))?;
    std::fs::rename(&tmp, profile).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io("replace link", profile, e)
    })
}

/// Removes generation `n`'s link (caller holds the lock, `n` is not current).
pub fn delete(profile: &Path, n: u64) -> Result<()> {
    let link = profile.with_file_name(link_name(profile_name(profile)?, n));
    std::fs::remove_file(&link).map_err(|e| Error::io("remove", &link, e))
}

/// Removes what a writer killed mid-change leaves in the profile directory
/// (the caller holds the profile lock, so no live writer owns them): Nix's
/// `PROFILE-N-link.tmp-PID-RAND` (which Nix itself would then count as
/// generation N, and even make current) and the `.N_PROFILE` temporary of a
/// link swap. Returns how many were removed.
pub fn remove_stale_temps(profile: &Path) -> Result<usize> {
    let name = profile_name(profile)?;
    let dir = profile.parent().unwrap_or(Path::new("/"));
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(Error::io("read profile directory", dir, e)),
    };
    let mut removed = 0;
    for e in entries.flatten() {
        let file = e.file_name();
        let Some(f) = file.to_str() else { continue };
        let nix_temp = parse_link_name(name, f).is_some() && f.contains("-link.tmp-");
        let swap_temp = f
            .strip_prefix('.')
            .and_then(|r| r.strip_suffix(name)?.strip_suffix('_'))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if (nix_temp || swap_temp) && e.file_type().is_ok_and(|t| t.is_symlink()) {
            std::fs::remove_file(e.path()).map_err(|err| Error::io("remove", e.path(), err))?;
            removed += 1;
        }
    }
    Ok(removed)
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
    OlderThanDays(u64),
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
                Ok(k) => Ok(DeleteSpec::KeepLast(k)),
                Err(_) => Err(format!("'{one}': {usage}")),
            },
            [one] if one.ends_with('d') => match one[..one.len() - 1].parse::<u64>() {
                Ok(n) if n >= 1 => Ok(DeleteSpec::OlderThanDays(n)),
                _ => Err(format!("'{one}': invalid number of days; {usage}")),
            },
            many => many
                .iter()
                .map(|a| {
                    a.parse::<u32>()
                        .map(u64::from)
                        .map_err(|_| format!("'{a}': {usage}"))
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
                .skip(*k as usize)
                .map(|g| g.number)
                .collect(),
            DeleteSpec::OlderThanDays(days) => {
                let t = now - (*days as i64) * 24 * 3600;
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

#[cfg(test)]
mod tests {
    use super::*;

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
    }

    #[test]
    fn refuses_bad_specs() {
        for bad in [&["+0"][..], &["x"], &["0d"], &["-1"], &[], &["1", "old"]] {
            let v: Vec<String> = bad.iter().map(|s| s.to_string()).collect();
            assert!(DeleteSpec::parse(&v).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn removes_only_stale_temporaries() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("system");
        let link = |n: &str| std::os::unix::fs::symlink("/nix/store/x", t.path().join(n)).unwrap();
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
        std::fs::write(t.path().join("system-3-link.tmp-1-2"), "").unwrap();
        assert_eq!(remove_stale_temps(&p).unwrap(), 2);
        let mut left: Vec<String> = std::fs::read_dir(t.path())
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
        let p = t.path().join("system");
        for n in [1, 2, 10] {
            std::os::unix::fs::symlink(
                format!("/nix/store/x-{n}"),
                t.path().join(link_name("system", n)),
            )
            .unwrap();
        }
        std::fs::write(t.path().join("system-x-link"), "").unwrap();
        switch_to(&p, 2).unwrap();
        assert_eq!(std::fs::read_link(&p).unwrap(), Path::new("system-2-link"));
        let l = list(&p).unwrap();
        assert_eq!(l.iter().map(|g| g.number).collect::<Vec<_>>(), [1, 2, 10]);
        assert!(l[1].current && !l[0].current);
        assert_eq!(l[2].path, "/nix/store/x-10");
        delete(&p, 1).unwrap();
        assert_eq!(list(&p).unwrap().len(), 2);
        assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 4);
    }
}
