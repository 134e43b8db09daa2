//! The call's arguments as they cross the bridge (JSON from the plugin):
//! never a panic; whatever is accepted renders a conf that reads back as the
//! same keys and values (nothing injected) and an argv whose extra flags are
//! exactly the conf's words.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ncp_core::conf::Conf;
use ncp_core::layout::Settings;
use ncp_core::plan::Plan;

fuzz_target!(|data: &[u8]| {
    let Ok(json) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(plan) = Plan::new(json, &Settings::default()) else {
        return;
    };
    let back = Conf::parse(&plan.conf_text).expect("a rendered conf parses");
    let a: Vec<_> = plan.spec.conf.entries().collect();
    let b: Vec<_> = back.entries().collect();
    assert_eq!(a, b, "conf round trip");
    let flags = back.words("EXTRA_NSPAWN_FLAGS");
    let init = plan.argv.last().expect("argv has the init");
    assert!(init.ends_with("/init"));
    let tail = &plan.argv[plan.argv.len() - 1 - flags.len()..plan.argv.len() - 1];
    assert_eq!(tail, flags.as_slice(), "extra flags are the conf's words");
    let _ = plan.describe(plan.system(), None);
});
