//! The container conf file, `<config-dir>/NAME.conf`: the format NixOS's
//! container@.service reads with systemd's EnvironmentFile= parser and whose
//! EXTRA_NSPAWN_FLAGS, INTERFACES and MACVLANS its start script word-splits
//! (and glob-expands). Anything that could not survive that trip is refused
//! before it is written.

use crate::error::{Error, Result};

/// Keys in the order NixOS writes them.
pub const KEYS: &[&str] = &[
    "SYSTEM_PATH",
    "COPY_RESOLV_CONF",
    "PRIVATE_NETWORK",
    "HOST_BRIDGE",
    "HOST_PORT",
    "HOST_ADDRESS",
    "HOST_ADDRESS6",
    "LOCAL_ADDRESS",
    "LOCAL_ADDRESS6",
    "LOCAL_MAC_ADDRESS",
    "NETWORK_NAMESPACE_PATH",
    "PRIVATE_USERS",
    "INTERFACES",
    "MACVLANS",
    "AUTO_START",
    "EXTRA_NSPAWN_FLAGS",
];

/// Values NixOS writes in double quotes; the start script word-splits them.
pub const WORD_LISTS: &[&str] = &["INTERFACES", "MACVLANS", "EXTRA_NSPAWN_FLAGS"];

pub const HEADER: &str = "# Written by nix-container-plugin (builtins.containerProfile); changes here are overwritten.\n";

/// The characters a conf value may hold, besides ASCII letters and digits:
/// none of them means anything to systemd's EnvironmentFile= parser, to
/// bash when it sources the file (`;&|<>()` would end the assignment and run
/// a command, `~` would expand), to nixos-container's `KEY=(.*)` reader, or to
/// the start script's word splitting and globbing of an unquoted `$KEY`.
pub const SAFE_PUNCTUATION: &str = "._/:,=+@%-";

/// Why a single word cannot go into the conf file, if it cannot.
fn word_problem(word: &str) -> Option<String> {
    if word.is_empty() {
        return Some("it is empty".into());
    }
    if word.contains('\u{FFFD}') {
        // The plugin turns bytes that are not UTF-8 into U+FFFD.
        return Some("it is not valid UTF-8 text".into());
    }
    let c = word
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || SAFE_PUNCTUATION.contains(*c)))?;
    Some(if c.is_control() {
        format!("it contains the control character {c:?} (e.g. a newline)")
    } else if c.is_whitespace() {
        format!("it contains white space {c:?}")
    } else {
        format!("it contains the character {c:?}")
    })
}

/// Whether a key's value is a list of words (written in double quotes): ours
/// by name; a key we do not know (a newer NixOS's) when it is quoted.
fn is_word_list(key: &str, quoted: bool) -> bool {
    WORD_LISTS.contains(&key) || (!KEYS.contains(&key) && quoted)
}

/// Checks that `word` can be written as one conf word for attribute `attr`.
pub fn check_word(attr: &str, word: &str) -> Result<()> {
    match word_problem(word) {
        None => Ok(()),
        Some(p) => Err(Error::attr(
            attr,
            format!(
                "{word:?} cannot be written to the container's conf file: {p}. \
                 Its values are read by systemd, sourced by shells and split at white space \
                 by NixOS's start script, so they hold only ASCII letters, digits and {SAFE_PUNCTUATION}"
            ),
        )),
    }
}

/// A conf file's contents: keys in NixOS's order, at most once each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conf {
    entries: Vec<(String, String)>,
}

impl Conf {
    /// Sets `key`; `attr` names the Nix attribute the value came from.
    pub fn set(&mut self, attr: &str, key: &str, value: String) -> Result<()> {
        let word_list = WORD_LISTS.contains(&key);
        if !KEYS.contains(&key) {
            return Err(Error::attr(
                attr,
                format!("internal: unknown conf key {key}"),
            ));
        }
        if word_list {
            // Single spaces separate words; anything else must pass as a word.
            for w in value.split(' ').filter(|w| !w.is_empty()) {
                check_word(attr, w)?;
            }
        } else if !value.is_empty() {
            check_word(attr, &value)?;
        }
        self.entries.retain(|(k, _)| k != key);
        self.entries.push((key.to_owned(), value));
        let order = |k: &str| KEYS.iter().position(|x| *x == k).unwrap_or(usize::MAX);
        self.entries.sort_by_key(|(k, _)| order(k));
        Ok(())
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The value, or "" when unset (as `${KEY-}` in the start script).
    pub fn value(&self, key: &str) -> &str {
        self.get(key).unwrap_or("")
    }

    /// The words of a word-list value, as the start script's splitting sees them.
    pub fn words(&self, key: &str) -> Vec<&str> {
        self.value(key).split_ascii_whitespace().collect()
    }

    pub fn entries(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn render(&self) -> String {
        let mut out = String::from(HEADER);
        for (k, v) in &self.entries {
            if is_word_list(k, v.contains(' ')) {
                out.push_str(&format!("{k}=\"{v}\"\n"));
            } else {
                out.push_str(&format!("{k}={v}\n"));
            }
        }
        out
    }

    /// Reads a conf file as NixOS writes it (and as we do): `KEY=VALUE` lines,
    /// optional double quotes around the value, blank and `#` lines ignored.
    /// Quoted values with escapes are not something either writer produces
    /// and are refused rather than guessed at.
    pub fn parse(text: &str) -> Result<Conf, String> {
        let mut conf = Conf::default();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            let bad = |why: &str| format!("line {}: {why}", i + 1);
            let (key, raw) = line.split_once('=').ok_or_else(|| bad("no '='"))?;
            if key.is_empty()
                || !key
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            {
                return Err(bad("the key is not of the form [A-Z0-9_]+"));
            }
            let value = match raw.strip_prefix('"') {
                Some(r) => r
                    .strip_suffix('"')
                    .ok_or_else(|| bad("unterminated quote"))?,
                None => raw,
            };
            if value.contains(|c: char| "\"\\".contains(c)) {
                return Err(bad("escapes and embedded quotes are not supported"));
            }
            // What we read must be what we could have written: the same
            // word rules (so a read conf renders back identically).
            let words = is_word_list(key, raw.starts_with('"'));
            let problem = if words {
                value
                    .split(' ')
                    .filter(|w| !w.is_empty())
                    .find_map(word_problem)
            } else if value.is_empty() {
                None
            } else {
                word_problem(value)
            };
            if let Some(p) = problem {
                return Err(bad(&format!("the value of {key}: {p}")));
            }
            conf.entries.retain(|(k, _)| k != key);
            conf.entries.push((key.to_owned(), value.to_owned()));
        }
        Ok(conf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_what_it_could_have_written() {
        // Found by the conf_parse fuzz target: control characters and
        // trailing blanks in a quoted value of an unknown key.
        let text = "INTESFACES=\"eth1 eth2\t\t  \0       \"\n";
        assert!(Conf::parse(text).unwrap_err().contains("control character"));
        for bad in ["HOST_ADDRESS=a\tb", "INTERFACES=\"a *\"", "X=a$b"] {
            assert!(Conf::parse(bad).is_err(), "{bad}");
        }
        let c = Conf::parse("FUTURE_KEY=\"a b\"\nOTHER=\"x\"\n").unwrap();
        assert_eq!(Conf::parse(&c.render()).unwrap(), c);
    }

    #[test]
    fn renders_in_nixos_order_with_nixos_quoting() {
        let mut c = Conf::default();
        c.set(
            "extraFlags",
            "EXTRA_NSPAWN_FLAGS",
            " --bind-ro=/a:/b".into(),
        )
        .unwrap();
        c.set("privateUsers", "PRIVATE_USERS", "no".into()).unwrap();
        c.set("copyResolvConf", "COPY_RESOLV_CONF", "1".into())
            .unwrap();
        c.set("interfaces", "INTERFACES", "".into()).unwrap();
        assert_eq!(
            c.render(),
            format!("{HEADER}COPY_RESOLV_CONF=1\nPRIVATE_USERS=no\nINTERFACES=\"\"\nEXTRA_NSPAWN_FLAGS=\" --bind-ro=/a:/b\"\n")
        );
    }

    #[test]
    fn parse_round_trips() {
        let mut c = Conf::default();
        c.set("a", "HOST_PORT", "tcp:80:8080,udp:53:53".into())
            .unwrap();
        c.set("a", "MACVLANS", "eth1 eth2".into()).unwrap();
        c.set(
            "a",
            "EXTRA_NSPAWN_FLAGS",
            " --ephemeral --tmpfs=/var".into(),
        )
        .unwrap();
        assert_eq!(Conf::parse(&c.render()).unwrap(), c);
        assert_eq!(
            Conf::parse(&c.render())
                .unwrap()
                .words("EXTRA_NSPAWN_FLAGS"),
            ["--ephemeral", "--tmpfs=/var"]
        );
    }

    #[test]
    fn refuses_what_cannot_be_represented() {
        for (key, v) in [
            ("HOST_ADDRESS", "10.0.0.1\nPRIVATE_NETWORK=0"),
            ("HOST_ADDRESS", "a b"),
            ("HOST_BRIDGE", "br\"0"),
            ("EXTRA_NSPAWN_FLAGS", " --bind=/a:/$HOME"),
            ("EXTRA_NSPAWN_FLAGS", " --bind=/a*"),
            ("EXTRA_NSPAWN_FLAGS", " --x=`id`"),
            ("EXTRA_NSPAWN_FLAGS", " --x=a\\b"),
            ("EXTRA_NSPAWN_FLAGS", " --x\t--y"),
            ("HOST_BRIDGE", "br0;reboot"),
            ("NETWORK_NAMESPACE_PATH", "/run/netns/x&&id"),
            ("HOST_BRIDGE", "a|b"),
            ("HOST_BRIDGE", "$(id)"),
            ("NETWORK_NAMESPACE_PATH", "/a>b"),
            ("NETWORK_NAMESPACE_PATH", "~root"),
        ] {
            let e = Conf::default()
                .set("attr", key, v.into())
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("attribute 'attr': "), "{e}");
            assert!(e.contains("cannot be written"), "{e}");
        }
    }

    #[test]
    fn parse_refuses_garbage() {
        assert!(Conf::parse("novalue\n").is_err());
        assert!(Conf::parse("lower=1\n").is_err());
        assert!(Conf::parse("A=\"x\n").is_err());
        assert!(Conf::parse("A=\"x\\\"y\"\n").is_err());
    }
}
