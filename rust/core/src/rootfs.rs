//! The container root file system, prepared as container@.service's start
//! script does it, in its order, but without following any symlink planted
//! inside the root.

use crate::error::Result;
use crate::fsutil::{Chmod, Dir};
use crate::layout::{Layout, Roots, HOST_RESOLV_CONF};
use crate::profile::ProfileDir;

/// Prepares `<state-dir>/NAME`.
pub fn prepare(roots: &Roots, layout: &Layout, copy_resolv_conf: bool) -> Result<()> {
    let state = Dir::open_root(&roots.state_dir, 0o755)?;
    let root = state.ensure_dir(&layout.name, 0o700, Chmod::IfCreated)?;
    // mkdir -p "$root/usr/bin"
    root.ensure_dir("usr", 0o755, Chmod::IfCreated)?
        .ensure_dir("bin", 0o755, Chmod::IfCreated)?;
    // mkdir -p etc var/lib; chmod 0755 etc var/lib
    let etc = root.ensure_dir("etc", 0o755, Chmod::Always)?;
    let var_lib = root
        .ensure_dir("var", 0o755, Chmod::IfCreated)?
        .ensure_dir("lib", 0o755, Chmod::Always)?;
    // mkdir -p var/lib/private root; chmod 0700 var/lib/private root
    var_lib.ensure_dir("private", 0o700, Chmod::Always)?;
    root.ensure_dir("root", 0o700, Chmod::Always)?;
    // os-release: not if it exists or is a symlink, even a dangling one (NixOS
    // makes it a link into /etc/static). machine-id: not if it exists; a
    // symlink counts as existing here, as following it would leave the root.
    // touch creates with O_EXCL|O_NOFOLLOW, which leaves anything of that
    // name alone, a dangling symlink included.
    for f in ["os-release", "machine-id"] {
        etc.touch(f, 0o644)?;
    }
    if copy_resolv_conf {
        // cp --remove-destination: replace whatever is there, link or not.
        if let Some(bytes) = host_resolv_conf() {
            etc.replace_file("resolv.conf", bytes, 0o644)?;
        }
    }
    Ok(())
}

/// The host's resolv.conf, read once per process: an evaluation preparing
/// many containers copies the same file (the start script copies it afresh
/// at every start).
fn host_resolv_conf() -> Option<&'static [u8]> {
    static CACHE: std::sync::OnceLock<Option<Vec<u8>>> = std::sync::OnceLock::new();
    CACHE
        .get_or_init(|| std::fs::read(HOST_RESOLV_CONF).ok())
        .as_deref()
}

/// The per-container profile and GC-root directories and the conf directory.
pub fn prepare_nix_dirs(roots: &Roots, layout: &Layout) -> Result<ProfileDir> {
    let profile = ProfileDir::create(roots, layout)?;
    Dir::open_root(&roots.gcroots_dir, 0o755)?.ensure_dir(&layout.name, 0o755, Chmod::Always)?;
    Dir::open_root(&roots.config_dir, 0o755)?;
    Ok(profile)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::layout::Settings;
    use std::os::unix::fs::{symlink, PermissionsExt};
    use std::path::Path;

    fn roots(t: &Path) -> Roots {
        let s = |d: &str| t.join(d).display().to_string();
        Roots::resolve(&Settings {
            state_dir: s("state"),
            config_dir: s("etc"),
            profiles_dir: s("profiles"),
            gcroots_dir: s("gcroots"),
            ..Default::default()
        })
        .unwrap()
    }

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn prepares_the_nixos_tree() {
        let t = tempfile::tempdir().unwrap();
        let r = roots(t.path());
        let l = r.container("web");
        prepare(&r, &l, false).unwrap();
        assert_eq!(mode(&l.root), 0o700);
        assert!(l.root.join("usr/bin").is_dir());
        assert_eq!(mode(&l.root.join("etc")), 0o755);
        assert_eq!(mode(&l.root.join("var/lib")), 0o755);
        assert_eq!(mode(&l.root.join("var/lib/private")), 0o700);
        assert_eq!(mode(&l.root.join("root")), 0o700);
        assert!(l.root.join("etc/os-release").is_file());
        assert!(l.root.join("etc/machine-id").is_file());
        assert!(!l.root.join("etc/resolv.conf").exists());
        // chmod is re-applied where the start script does it
        std::fs::set_permissions(l.root.join("etc"), std::fs::Permissions::from_mode(0o700))
            .unwrap();
        prepare(&r, &l, false).unwrap();
        assert_eq!(mode(&l.root.join("etc")), 0o755);
        prepare_nix_dirs(&r, &l).unwrap();
        assert_eq!(mode(&r.profiles_dir), 0o700);
        assert_eq!(mode(&l.profile_dir), 0o755);
        assert_eq!(mode(&l.gcroots_dir), 0o755);
    }

    #[test]
    fn keeps_a_dangling_os_release_link() {
        let t = tempfile::tempdir().unwrap();
        let r = roots(t.path());
        let l = r.container("a");
        std::fs::create_dir_all(l.root.join("etc")).unwrap();
        symlink("/etc/static/os-release", l.root.join("etc/os-release")).unwrap();
        prepare(&r, &l, false).unwrap();
        assert!(std::fs::symlink_metadata(l.root.join("etc/os-release"))
            .unwrap()
            .file_type()
            .is_symlink());
    }

    #[test]
    fn refuses_planted_links_and_touches_nothing_outside() {
        for planted in [
            "etc",
            "var",
            "var/lib",
            "root",
            "usr",
            "usr/bin",
            "var/lib/private",
        ] {
            let t = tempfile::tempdir().unwrap();
            let outside = t.path().join("outside");
            std::fs::create_dir(&outside).unwrap();
            std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o750)).unwrap();
            let r = roots(t.path());
            let l = r.container("a");
            let link = l.root.join(planted);
            std::fs::create_dir_all(link.parent().unwrap()).unwrap();
            symlink(&outside, &link).unwrap();
            let e = prepare(&r, &l, true).unwrap_err();
            assert!(matches!(e, Error::Planted { .. }), "{planted}: {e}");
            assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0, "{planted}");
            assert_eq!(mode(&outside), 0o750, "{planted}");
        }
    }

    #[test]
    fn refuses_a_symlinked_container_root() {
        let t = tempfile::tempdir().unwrap();
        let r = roots(t.path());
        std::fs::create_dir_all(&r.state_dir).unwrap();
        symlink(t.path(), r.state_dir.join("a")).unwrap();
        assert!(matches!(
            prepare(&r, &r.container("a"), false),
            Err(Error::Planted { .. })
        ));
    }
}
