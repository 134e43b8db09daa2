//! The rules for what may go into a conf file and onto nspawn's command
//! line: never a panic; a path that passes is absolute and in normal form
//! (no empty, `.` or `..` component), so what the host binds is what it
//! names; an interface name that passes is one the kernel takes; anything
//! that passes holds only characters that no reader of the conf (systemd,
//! a shell sourcing it, nixos-container, the start script's word
//! splitting) changes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ncp_core::conf::{check_word, SAFE_PUNCTUATION};
use ncp_core::spec::{check_interface, check_path};

fn plain(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_ascii_alphanumeric() || SAFE_PUNCTUATION.contains(c))
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if check_word("x", s).is_ok() {
        assert!(!s.is_empty() && plain(s), "{s:?}");
    }
    if check_path("x", s).is_ok() {
        assert!(plain(s) && s.starts_with('/'), "{s:?}");
        if s != "/" {
            assert!(
                s[1..]
                    .split('/')
                    .all(|c| !c.is_empty() && c != "." && c != ".."),
                "{s:?}"
            );
        }
        let normal: std::path::PathBuf = std::path::Path::new(s).components().collect();
        assert_eq!(normal.to_str(), Some(s), "{s:?}");
    }
    if check_interface("x", s).is_ok() {
        assert!(
            plain(s) && !s.is_empty() && s.len() <= 15 && s != "." && s != "..",
            "{s:?}"
        );
        assert!(!s.contains('/') && !s.contains(':'), "{s:?}");
    }
});
