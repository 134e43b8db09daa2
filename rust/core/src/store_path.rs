//! Syntax of a store path (`STORE/HASH-NAME`), checked without touching the store.

use crate::error::{Error, Result};

const HASH_LEN: usize = 32;
/// Nix's base-32 alphabet (no e, o, u, t).
const HASH_CHARS: &str = "0123456789abcdfghijklmnpqrsvwxyz";

fn name_char_ok(c: char) -> bool {
    c.is_ascii_alphanumeric() || "+-._?=".contains(c)
}

/// Checks that `path` is a store path itself (not a path inside one) in `store_dir`.
pub fn check(store_dir: &str, attr: &str, path: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(Error::attr(
            attr,
            format!("'{path}' is not a store path ({why}); pass a derivation or a string such as \"${{drv}}\""),
        ))
    };
    let Some(base) = path
        .strip_prefix(store_dir)
        .and_then(|r| r.strip_prefix('/'))
    else {
        return bad(&format!("it is not in {store_dir}"));
    };
    if base.contains('/') {
        return bad("it names a file inside a store path");
    }
    let (hash, name) = match base.split_at_checked(HASH_LEN) {
        Some((h, rest)) => (h, rest.strip_prefix('-')),
        None => return bad("its hash part is too short"),
    };
    if !hash.chars().all(|c| HASH_CHARS.contains(c)) {
        return bad("its hash part is not Nix base-32");
    }
    match name {
        Some(n)
            if !n.is_empty()
                && n.len() <= 211
                && !n.starts_with('.')
                && n.chars().all(name_char_ok) =>
        {
            Ok(())
        }
        _ => bad("its name part is missing or has characters Nix does not allow"),
    }
}

#[cfg(test)]
mod tests {
    use super::check;
    const S: &str = "/nix/store";

    #[test]
    fn accepts_store_paths() {
        check(
            S,
            "system",
            "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-nixos-system-a-23.11",
        )
        .unwrap();
    }

    #[test]
    fn refuses_the_rest() {
        for p in [
            "",
            "relative/path",
            "/tmp/x",
            "/nix/store",
            "/nix/store/",
            "/nix/storex/0123456789abcdfghijklmnpqrsvwxyz-a",
            "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-a/init",
            "/nix/store/0123456789abcdfghijklmnpqrsvwxyz",
            "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-",
            "/nix/store/0123456789abcdfghijklmnpqrsvwxy",
            "/nix/store/eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee-a",
            "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-a b",
            "/nix/store/short-a",
        ] {
            let e = check(S, "system", p).unwrap_err().to_string();
            assert!(e.starts_with("attribute 'system': "), "{e}");
        }
    }
}
