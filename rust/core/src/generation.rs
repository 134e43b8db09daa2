//! Profile generation link names (`system-42-link`), read as Nix reads them.

/// The generation number of the link `name` in profile `profile_name`, with
/// Nix's own rule (libstore profiles.cc parseName): `PROFILE-`, then a number
/// (64 bits, as Nix's GenerationNumber), then `-link` (anything after the
/// first `-link` is ignored).
pub fn parse_link_name(profile_name: &str, name: &str) -> Option<u64> {
    let rest = name.strip_prefix(profile_name)?.strip_prefix('-')?;
    let end = rest.find("-link")?;
    let digits = &rest[..end];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok()
}

/// The link name of generation `n`.
pub fn link_name(profile_name: &str, n: u64) -> String {
    format!("{profile_name}-{n}-link")
}

/// The generation a switch goes to: `to`, or (rollback) the newest one
/// older than `current`; as `nix-env --switch-generation` / `--rollback`.
pub fn switch_target(
    existing: &[u64],
    current: Option<u64>,
    to: Option<u64>,
) -> Result<u64, String> {
    match to {
        Some(n) if existing.contains(&n) => Ok(n),
        Some(n) => Err(format!("generation {n} does not exist")),
        None => existing
            .iter()
            .copied()
            .filter(|n| current.is_some_and(|c| *n < c))
            .max()
            .ok_or_else(|| {
                format!(
                    "no generation older than the current ({}) exists",
                    current.unwrap_or(0)
                )
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_nix() {
        assert_eq!(parse_link_name("system", "system-1-link"), Some(1));
        assert_eq!(parse_link_name("system", "system-42-link"), Some(42));
        assert_eq!(
            parse_link_name("system", link_name("system", 7).as_str()),
            Some(7)
        );
        assert_eq!(
            parse_link_name("system", "system-4294967295-link"),
            Some(4294967295)
        );
        assert_eq!(
            parse_link_name("system", "system-4294967296-link"),
            Some(4294967296)
        );
        assert_eq!(
            parse_link_name("system", "system-18446744073709551616-link"),
            None
        );
        assert_eq!(parse_link_name("system", "system--link"), None);
        assert_eq!(parse_link_name("system", "system-+1-link"), None);
        assert_eq!(parse_link_name("system", "system-1"), None);
        assert_eq!(parse_link_name("system", "other-1-link"), None);
        assert_eq!(parse_link_name("system", "system"), None);
    }

    #[test]
    fn switch_targets() {
        assert_eq!(switch_target(&[1, 2, 5], Some(5), None), Ok(2));
        assert_eq!(switch_target(&[1, 2, 5], Some(2), Some(5)), Ok(5));
        assert_eq!(
            switch_target(&[1, 2, 5], Some(5), Some(3)),
            Err("generation 3 does not exist".into())
        );
        assert_eq!(
            switch_target(&[1, 2], Some(1), None),
            Err("no generation older than the current (1) exists".into())
        );
        assert_eq!(
            switch_target(&[], None, None),
            Err("no generation older than the current (0) exists".into())
        );
    }
}
