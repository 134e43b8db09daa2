//! Generation link names and delete-generations arguments: never a panic;
//! a parsed number names the same link again.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ncp_core::generation::{link_name, parse_link_name};
use ncp_core::profile::DeleteSpec;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(n) = parse_link_name("system", s) {
        assert_eq!(parse_link_name("system", &link_name("system", n)), Some(n));
        assert!(s.starts_with(&format!("system-")));
    }
    let args: Vec<String> = s.split(' ').map(String::from).collect();
    let _ = DeleteSpec::parse(&args);
});
