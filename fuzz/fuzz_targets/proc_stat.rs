//! /proc/PID/stat and /proc/PID/status as the CLI reads them: never a
//! panic, and a command name (which any user chooses, spaces and
//! parentheses included) never shifts the fields read after it.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ncp_core::procfs::{cap_mask, parse_stat, uids};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse_stat(s);
    let _ = uids(s);
    let _ = cap_mask(s, "CapBnd");
    // Any name, between the kernel's parentheses, leaves the fields alone.
    let comm: String = s.chars().filter(|c| *c != '\n').take(64).collect();
    let line =
        format!("4242 ({comm}) S 17 4242 4242 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 987654 1 2");
    let st = parse_stat(&line).expect("a kernel-shaped line parses");
    assert_eq!(
        (st.state, st.ppid, st.start_time),
        ('S', 17, 987654),
        "{line:?}"
    );
});
