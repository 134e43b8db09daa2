//! The container name rule: one strict rule, checked in one place.

use crate::error::{Error, Result};

/// Longest name: the host side of a private network is the interface
/// `ve-NAME`, and interface names hold at most 15 bytes on kernels without
/// altnames, so NAME gets 11.
pub const MAX_LEN: usize = 11;

/// The rule as users read it in every name error and in the documentation.
pub const RULE: &str = "A container name is 1 to 11 characters from a-z, 0-9 and '-', \
starting with a letter and not ending with '-' (it becomes the host name, the machine \
name and the network interface ve-NAME, which holds at most 15 bytes)";

/// Checks `name` against [`RULE`], naming the first problem found.
pub fn validate(name: &str) -> Result<()> {
    let problem = |p: &str| {
        Err(Error::Name {
            name: name.to_owned(),
            problem: p.to_owned(),
            rule: RULE,
        })
    };
    if name.is_empty() {
        return problem("it is empty");
    }
    if name.contains('\0') {
        return problem("it contains a NUL byte");
    }
    if !name.is_ascii() {
        return problem("it contains non-ASCII characters");
    }
    if name.contains('/') {
        return problem("it contains '/'");
    }
    if name.len() > MAX_LEN {
        return problem(&format!(
            "it is {} bytes long, more than {MAX_LEN}",
            name.len()
        ));
    }
    if name.starts_with('-') {
        return problem("it starts with '-'");
    }
    if name.ends_with('-') {
        return problem("it ends with '-'");
    }
    if let Some(c) = name.chars().find(|c| c.is_ascii_uppercase()) {
        return problem(&format!("it contains the upper-case letter '{c}'"));
    }
    if name.contains('_') {
        return problem("it contains '_'");
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return problem(&format!("it contains the character {c:?}"));
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return problem("it does not start with a letter");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(name: &str) -> String {
        match validate(name) {
            Err(Error::Name { problem, .. }) => problem,
            other => panic!("{name:?} should be refused, got {other:?}"),
        }
    }

    #[test]
    fn accepts_good_names() {
        for n in ["a", "web", "db-1", "a1b2c3d4e5f", "x-y"] {
            validate(n).unwrap();
        }
    }

    #[test]
    fn names_each_violation() {
        assert_eq!(problem(""), "it is empty");
        assert_eq!(problem("a\0b"), "it contains a NUL byte");
        assert_eq!(problem("café"), "it contains non-ASCII characters");
        assert_eq!(problem(".."), "it contains the character '.'");
        assert_eq!(problem("."), "it contains the character '.'");
        assert_eq!(problem("a..b"), "it contains the character '.'");
        assert_eq!(problem("a/b"), "it contains '/'");
        assert_eq!(problem("abcdefghijkl"), "it is 12 bytes long, more than 11");
        assert_eq!(problem("-a"), "it starts with '-'");
        assert_eq!(problem("a-"), "it ends with '-'");
        assert_eq!(problem("Web"), "it contains the upper-case letter 'W'");
        assert_eq!(problem("a_b"), "it contains '_'");
        assert_eq!(problem("a b"), "it contains the character ' '");
        assert_eq!(problem("1a"), "it does not start with a letter");
    }

    #[test]
    fn error_message_states_the_rule() {
        let msg = validate("A").unwrap_err().to_string();
        assert!(msg.contains(RULE), "{msg}");
        assert!(msg.starts_with("invalid container name \"A\""), "{msg}");
    }
}
