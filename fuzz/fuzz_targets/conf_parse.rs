//! Conf files as found on disk (the CLI reads them; the plugin reads them
//! for rollbacks): never a panic; what parses renders and parses back equal.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ncp_core::conf::Conf;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(conf) = Conf::parse(text) else { return };
    let again = Conf::parse(&conf.render()).expect("a rendered conf parses");
    let a: Vec<_> = conf.entries().collect();
    let b: Vec<_> = again.entries().collect();
    assert_eq!(a, b);
});
