//! The malformed-call corpus (tests/fixtures/bad-calls.tsv), through the
//! real `nix`: every call is exit code 1 with an error naming the attribute
//! at the call's position, never a crash, and writes nothing.

use ncp_integration_tests::*;

#[test]
fn every_malformed_call_is_refused_naming_the_attribute() {
    let text = std::fs::read_to_string(repo().join("tests/fixtures/bad-calls.tsv")).unwrap();
    let sys = format!("\"{}/0123456789abcdfghijklmnpqrsvwxyz-sys\"", store_dir());
    let cases: Vec<(&str, &str, String)> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let mut f = l.splitn(3, '\t');
            let (needle, mode, body) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
            let body = body.replace("SYS", &sys);
            let arg = match mode {
                "attrs" => format!("{{ name = \"bad\"; system = {sys}; {body} }}"),
                "args" => format!("{{ {body} }}"),
                "expr" => body,
                m => panic!("unknown mode {m} in {l}"),
            };
            (needle, mode, arg)
        })
        .collect();
    assert!(cases.len() >= 100, "the corpus has {} calls", cases.len());
    let env = Env::new();
    let mut failures = Vec::new();
    for (needle, _, arg) in &cases {
        let expr = format!("builtins.containerProfile {arg}");
        let out = env.nix_eval(&["--impure"], &expr);
        let err = String::from_utf8_lossy(&out.stderr);
        let ok = out.status.code() == Some(1)
            && err.contains(needle)
            && err.contains("«string»:1:")
            && !err.contains("panicked")
            && !err.contains("internal error");
        if !ok {
            failures.push(format!(
                "{expr}\n  expected exit 1 and {needle:?}, got {:?}:\n{err}",
                out.status.code()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} calls misbehaved:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert!(env.tree().is_empty(), "the corpus wrote {:?}", env.tree());
}
