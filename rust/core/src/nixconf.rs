//! The plugin's settings as Nix reads them, for the CLI: nix.conf files and
//! NIX_CONFIG, so that the plugin (which Nix configures) and the CLI agree
//! without flags. Nix's order: the system file ($NIX_CONF_DIR/nix.conf,
//! default /etc/nix/nix.conf), then the user files ($NIX_USER_CONF_FILES,
//! or $XDG_CONFIG_DIRS/nix/nix.conf and $XDG_CONFIG_HOME/nix/nix.conf),
//! then $NIX_CONFIG; a later value replaces an earlier one. `include PATH`
//! and `!include PATH` (no error if missing) are followed, relative to the
//! including file. Only the keys asked for are kept.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// How deep includes may nest (Nix has no limit; a loop must end).
const MAX_DEPTH: usize = 16;
/// The most read of one configuration file.
const MAX_FILE: u64 = 1 << 20;

/// Where Nix looks, in order, given the environment `env`.
pub fn files(env: &dyn Fn(&str) -> Option<String>) -> Vec<PathBuf> {
    let mut out = vec![
        PathBuf::from(env("NIX_CONF_DIR").unwrap_or_else(|| "/etc/nix".into())).join("nix.conf"),
    ];
    if let Some(list) = env("NIX_USER_CONF_FILES") {
        out.extend(list.split(':').filter(|s| !s.is_empty()).map(PathBuf::from));
    } else {
        let dirs = env("XDG_CONFIG_DIRS").unwrap_or_else(|| "/etc/xdg".into());
        let mut xdg: Vec<PathBuf> = dirs
            .split(':')
            .filter(|s| !s.is_empty())
            .map(|d| Path::new(d).join("nix/nix.conf"))
            .collect();
        // Earlier XDG directories are more important: read them last.
        xdg.reverse();
        out.extend(xdg);
        let home = env("XDG_CONFIG_HOME").or_else(|| env("HOME").map(|h| format!("{h}/.config")));
        if let Some(h) = home {
            out.push(Path::new(&h).join("nix/nix.conf"));
        }
    }
    out
}

/// Applies one configuration text (`origin` names its directory for
/// includes) to `into`, keeping only `keys`.
fn apply(
    text: &str,
    dir: Option<&Path>,
    keys: &[&str],
    into: &mut BTreeMap<String, String>,
    depth: usize,
) {
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or("");
        if first == "include" || first == "!include" {
            if let (Some(p), Some(d)) = (words.next(), dir) {
                if depth < MAX_DEPTH {
                    read_file(&d.join(p), keys, into, depth + 1);
                }
            }
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let k = k.trim();
        if keys.contains(&k) {
            into.insert(k.to_owned(), v.trim().to_owned());
        }
    }
}

fn read_file(path: &Path, keys: &[&str], into: &mut BTreeMap<String, String>, depth: usize) {
    use std::io::Read;
    let Ok(f) = std::fs::File::open(path) else {
        return;
    };
    if !f.metadata().is_ok_and(|m| m.is_file()) {
        return;
    }
    let mut text = String::new();
    if f.take(MAX_FILE).read_to_string(&mut text).is_err() {
        return;
    }
    apply(&text, path.parent(), keys, into, depth);
}

/// The values of `keys` that Nix's configuration sets.
pub fn read(keys: &[&str], env: &dyn Fn(&str) -> Option<String>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for f in files(env) {
        read_file(&f, keys, &mut out, 0);
    }
    if let Some(text) = env("NIX_CONFIG") {
        apply(&text, None, keys, &mut out, 0);
    }
    out
}

/// A boolean as Nix reads one.
pub fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "true" | "yes" | "1" => Some(true),
        "false" | "no" | "0" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_nix_order_and_includes() {
        let t = tempfile::tempdir().unwrap();
        let sys = t.path().join("etc");
        std::fs::create_dir(&sys).unwrap();
        std::fs::write(
            sys.join("nix.conf"),
            "plugin-files = /x.so # a comment\ncontainer-state-dir = /a\ninclude more.conf\n!include missing.conf\n",
        )
        .unwrap();
        std::fs::write(
            sys.join("more.conf"),
            "container-config-dir = /b\ninclude more.conf\n",
        )
        .unwrap();
        let user = t.path().join("user.conf");
        std::fs::write(&user, "container-config-dir = /c\n").unwrap();
        let env = |k: &str| match k {
            "NIX_CONF_DIR" => Some(sys.display().to_string()),
            "NIX_USER_CONF_FILES" => Some(user.display().to_string()),
            "NIX_CONFIG" => Some("container-legacy-layout = true\ncontainer-state-dir=/d".into()),
            _ => None,
        };
        let got = read(
            &[
                "container-state-dir",
                "container-config-dir",
                "container-legacy-layout",
            ],
            &env,
        );
        assert_eq!(got["container-state-dir"], "/d");
        assert_eq!(got["container-config-dir"], "/c");
        assert_eq!(parse_bool(&got["container-legacy-layout"]), Some(true));
        assert!(!got.contains_key("plugin-files"));
    }

    #[test]
    fn xdg_order() {
        let env = |k: &str| match k {
            "XDG_CONFIG_DIRS" => Some("/x1:/x2".into()),
            "HOME" => Some("/root".into()),
            _ => None,
        };
        let f: Vec<String> = files(&env)
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        assert_eq!(
            f,
            [
                "/etc/nix/nix.conf",
                "/x2/nix/nix.conf",
                "/x1/nix/nix.conf",
                "/root/.config/nix/nix.conf"
            ]
        );
    }
}
