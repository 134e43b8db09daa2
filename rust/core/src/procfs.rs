//! Parsers of /proc files the CLI reads about processes. The command name
//! in /proc/PID/stat is chosen by whoever runs the process (spaces and
//! parentheses included), so fields are taken after its last ')'.

/// Fields of /proc/PID/stat after the command name (numbered from 3,
/// state, as in proc(5)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub state: char,
    pub ppid: i32,
    /// Field 22: clock ticks after boot.
    pub start_time: u64,
}

pub fn parse_stat(s: &str) -> Option<Stat> {
    let rest = &s[s.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_ascii_whitespace().collect();
    Some(Stat {
        state: f.first()?.chars().next()?,
        ppid: f.get(1)?.parse().ok()?,
        start_time: f.get(19)?.parse().ok()?,
    })
}

/// A line `FIELD:\tVALUE…` of /proc/PID/status.
pub fn status_field<'a>(status: &'a str, field: &str) -> Option<&'a str> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .map(str::trim)
}

/// A capability mask (`CapBnd`, …) of /proc/PID/status.
pub fn cap_mask(status: &str, field: &str) -> Option<u64> {
    u64::from_str_radix(status_field(status, field)?, 16).ok()
}

/// The real and effective uid of /proc/PID/status.
pub fn uids(status: &str) -> Option<(u32, u32)> {
    let mut f = status_field(status, "Uid")?.split_ascii_whitespace();
    Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_names() {
        let s = "42 (a) b (c)) S 7 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 12345 1000 10";
        assert_eq!(
            parse_stat(s),
            Some(Stat {
                state: 'S',
                ppid: 7,
                start_time: 12345
            })
        );
        assert!(parse_stat("garbage").is_none());
        assert!(parse_stat("1 (x) S").is_none());
    }

    #[test]
    fn reads_status_fields() {
        let s = "Name:\tsh\nUid:\t0\t0\t0\t0\nCapBnd:\t000001ffffffffff\nCapBndX:\t1\n";
        assert_eq!(uids(s), Some((0, 0)));
        assert_eq!(cap_mask(s, "CapBnd"), Some(0x1ff_ffff_ffff));
        assert_eq!(cap_mask(s, "CapEff"), None);
    }
}
