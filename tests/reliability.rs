//! Reliability under crashes, concurrency and bad input, through the real
//! `nix` and the real CLI: evaluations and CLI commands SIGKILLed at random
//! moments leave a profile Nix still reads and a conf file that is the old or
//! the new one; concurrent writers make contiguous, distinct generations; a
//! corpus of malformed calls is refused with the attribute named and nothing
//! written. Random delays come from NCP_TEST_SEED (printed on failure).

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ncp_integration_tests::*;

/// xorshift64*: enough randomness for kill delays, reproducible by seed.
struct Rng(u64);
impl Rng {
    fn new() -> Rng {
        let seed = std::env::var("NCP_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
            })
            | 1;
        eprintln!("NCP_TEST_SEED={seed}");
        Rng(seed)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545F4914F6CDD1D) % n
    }
}

fn kill_after(mut child: Child, delay: Duration) -> bool {
    std::thread::sleep(delay);
    let finished = matches!(child.try_wait(), Ok(Some(_)));
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();
    !finished
}

/// The profile of `name` is whole: it points at a generation link that
/// exists, every generation resolves to one of `systems`, and nix-env reads it.
fn assert_profile_whole(env: &Env, name: &str, systems: &[String], context: &str) {
    let profile = env.profile(name);
    if std::fs::symlink_metadata(&profile).is_err() {
        return; // killed before the first generation: nothing to check
    }
    let target = std::fs::read_link(&profile).expect("profile is a link");
    let link = profile.with_file_name(&target);
    assert!(
        link.exists(),
        "{context}: profile -> {target:?}, which does not exist"
    );
    assert!(
        systems.contains(&resolve(&profile)),
        "{context}: profile resolves to {}",
        resolve(&profile)
    );
    // Every entry Nix takes for a generation (a killed writer's temporary
    // link included, until the next writer removes it) resolves.
    for e in std::fs::read_dir(profile.parent().unwrap()).unwrap() {
        let e = e.unwrap();
        let f = e.file_name().into_string().unwrap();
        if f.starts_with("system-") && f.contains("-link") {
            assert!(
                systems.contains(&resolve(&e.path())),
                "{context}: {f} is {}",
                resolve(&e.path())
            );
        }
    }
    assert_eq!(
        nix_env_generations(&profile)
            .iter()
            .filter(|(_, c)| *c)
            .count(),
        1,
        "{context}: nix-env sees one current generation"
    );
}

/// After a writer ran: no temporary left in the profile directory.
fn assert_no_temporaries(env: &Env, name: &str, context: &str) {
    for e in std::fs::read_dir(env.profiles_dir().join(name)).unwrap() {
        let f = e.unwrap().file_name().into_string().unwrap();
        assert!(
            !f.contains(".tmp-") && !f.starts_with('.'),
            "{context}: {f} left behind"
        );
    }
}

#[test]
fn evaluations_killed_at_random_moments_leave_whole_profiles_and_confs() {
    const KILLS: usize = 200;
    let env = Env::new();
    let mut rng = Rng::new();
    let systems = build_systems(&["crash-a".into(), "crash-b".into()]);
    // The two conf files a call can write (privateNetwork false / true).
    let spec = |pn: bool| {
        env.eval_json(&format!(
            "(builtins.containerSpec {{ name = \"x\"; system = \"{}\"; privateNetwork = {pn}; }}).conf",
            systems[0]
        ))
        .as_str()
        .unwrap()
        .to_owned()
    };
    let confs = [spec(false), spec(true)];
    // Each evaluation alternates system and conf for 40 calls (~60 ms of
    // profile and conf writes after ~30 ms of start-up); the kill lands
    // anywhere from start-up to after the end.
    let expr = |name: &str| {
        format!(
            "builtins.foldl' (a: i: a + (builtins.containerProfile {{ name = \"{name}\"; \
             system = builtins.elemAt [ \"{}\" \"{}\" ] (i - i / 2 * 2); privateNetwork = i - i / 3 * 3 == 0; }}).generation) 0 \
             (builtins.genList (i: i) 40)",
            systems[0], systems[1]
        )
    };
    let mut interrupted = 0;
    for k in 0..KILLS {
        // A new container every 25 kills keeps each profile's generation count modest.
        let name = format!("crash{}", k / 25);
        let child = env
            .nix_eval_cmd(&["--impure"], &expr(&name))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        if kill_after(child, Duration::from_millis(15 + rng.below(90))) {
            interrupted += 1;
        }
        let context = format!("after kill {k}");
        assert_profile_whole(&env, &name, &systems, &context);
        if let Ok(text) = std::fs::read_to_string(env.config_dir().join(format!("{name}.conf"))) {
            assert!(
                confs.contains(&text),
                "{context}: partial conf file:\n{text}"
            );
        }
        // Nothing left behind blocks the next call.
        let r = env.eval_json(&format!(
            "builtins.containerProfile {{ name = \"{name}\"; system = \"{}\"; }}",
            systems[k % 2]
        ));
        assert_eq!(r["system"], systems[k % 2].as_str(), "{context}");
        assert_no_temporaries(&env, &name, &context);
    }
    // Most kills must have hit a running evaluation for the test to mean anything.
    assert!(
        interrupted >= KILLS / 2,
        "only {interrupted} of {KILLS} kills interrupted an evaluation"
    );
}

#[test]
fn eight_concurrent_evaluations_make_200_contiguous_distinct_generations() {
    const WRITERS: usize = 8;
    const EACH: usize = 25;
    let env = Env::new();
    let labels: Vec<String> = (0..WRITERS * EACH).map(|i| format!("conc-{i}")).collect();
    // Built first, so that the evaluations race on the profile only.
    let systems = build_systems(&labels);
    let children: Vec<_> = (0..WRITERS)
        .map(|w| {
            let list: Vec<String> = systems[w * EACH..(w + 1) * EACH].iter().map(|s| format!("\"{s}\"")).collect();
            let expr = format!(
                "map (s: (builtins.containerProfile {{ name = \"race\"; system = s; }}).generation) [ {} ]",
                list.join(" ")
            );
            env.nix_eval_cmd(&["--impure", "--json"], &expr)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut numbers = Vec::new();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        numbers.extend(serde_json::from_slice::<Vec<u64>>(&out.stdout).unwrap());
    }
    numbers.sort();
    let total = (WRITERS * EACH) as u64;
    assert_eq!(
        numbers,
        (1..=total).collect::<Vec<_>>(),
        "each call got its own generation"
    );
    let listed = nix_env_generations(&env.profile("race"));
    assert_eq!(
        listed.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        (1..=total).collect::<Vec<_>>()
    );
    let targets: BTreeSet<String> = listed
        .iter()
        .map(|(n, _)| resolve(&env.profiles_dir().join(format!("race/system-{n}-link"))))
        .collect();
    assert_eq!(targets.len(), WRITERS * EACH, "distinct generations");
    assert!(targets.iter().all(|t| systems.contains(t)));
    assert_profile_whole(&env, "race", &systems, "after the race");
    assert!(!env.profiles_dir().join("race/system.lock").exists());
}

/// N generations of `name` alternating between `systems`.
fn make_generations(env: &Env, name: &str, systems: &[String], n: usize) {
    let list: Vec<String> = (0..n)
        .map(|i| format!("\"{}\"", systems[i % systems.len()]))
        .collect();
    env.eval_json(&format!(
        "map (s: (builtins.containerProfile {{ name = \"{name}\"; system = s; }}).generation) [ {} ]",
        list.join(" ")
    ));
}

fn current_and_all(env: &Env, name: &str) -> (u64, Vec<u64>) {
    let g = nix_env_generations(&env.profile(name));
    (
        g.iter().find(|(_, c)| *c).unwrap().0,
        g.iter().map(|(n, _)| *n).collect(),
    )
}

#[test]
fn cli_rollbacks_and_deletions_killed_at_random_moments_leave_whole_profiles() {
    const KILLS: usize = 200;
    let env = Env::new();
    let mut rng = Rng::new();
    let systems = build_systems(&[
        "clicrash-a".into(),
        "clicrash-b".into(),
        "clicrash-c".into(),
    ]);
    let name = "clicrash";
    make_generations(&env, name, &systems, 12);
    let mut interrupted = 0;
    for k in 0..KILLS {
        let (current, all) = current_and_all(&env, name);
        let others: Vec<u64> = all.iter().copied().filter(|n| *n != current).collect();
        if others.len() < 3 {
            make_generations(&env, name, &systems, 8);
            continue;
        }
        let pick = others[rng.below(others.len() as u64) as usize].to_string();
        let args: Vec<&str> = if k % 2 == 0 {
            vec!["rollback", name, "--to", &pick]
        } else {
            vec!["delete-generations", name, &pick]
        };
        let child = env
            .cli_cmd(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        if kill_after(child, Duration::from_micros(rng.below(4000))) {
            interrupted += 1;
        }
        let context = format!("after kill {k} of {args:?}");
        assert_profile_whole(&env, name, &systems, &context);
        // Nothing left behind blocks the next command.
        env.cli_ok(&[
            "rollback",
            name,
            "--to",
            &current_and_all(&env, name).0.to_string(),
        ]);
        env.cli_ok(&["generations", name]);
        assert_no_temporaries(&env, name, &context);
    }
    assert!(
        interrupted >= KILLS / 4,
        "only {interrupted} of {KILLS} kills interrupted a command"
    );
}

#[test]
fn concurrent_cli_rollbacks_deletions_and_evaluations_keep_the_profile_whole() {
    let env = Env::new();
    let name = "cliconc";
    let systems = build_systems(&[
        "cliconc-a".into(),
        "cliconc-b".into(),
        "cliconc-c".into(),
        "cliconc-d".into(),
    ]);
    // Generations 1..=40: the odd ones are rolled back to, the even ones up
    // to 32 deleted. Not 40: while it is the newest, an evaluation compares
    // with it, and deleting it first would (by Nix's rule) let a call reuse
    // generation 39 or renumber from 40.
    make_generations(&env, name, &systems[..2], 40);
    env.cli_ok(&["rollback", name, "--to", "1"]);
    let mut children: Vec<Child> = Vec::new();
    for w in 0..4u64 {
        let cmds: Vec<Vec<String>> = (0..25u64)
            .map(|i| {
                let to = 1 + 2 * ((w * 25 + i * 7) % 20);
                vec![
                    "rollback".into(),
                    name.into(),
                    "--to".into(),
                    to.to_string(),
                ]
            })
            .collect();
        // One shell per writer runs its 25 commands back to back.
        let script: Vec<String> = cmds
            .iter()
            .map(|c| {
                let cmd = env.cli_cmd(&c.iter().map(String::as_str).collect::<Vec<_>>());
                shell_line(&cmd)
            })
            .collect();
        children.push(sh(&script.join(" && ")));
    }
    for w in 0..4u64 {
        let cmds: Vec<String> = (0..4u64)
            .map(|i| {
                let n = 2 + 2 * (w * 4 + i); // 2, 4, …, 32
                shell_line(&env.cli_cmd(&["delete-generations", name, &n.to_string()]))
            })
            .collect();
        children.push(sh(&cmds.join(" && ")));
    }
    // And two evaluations adding generations meanwhile, each alternating
    // between systems of its own, so that every call adds one.
    let evals: Vec<Child> = (0..2)
        .map(|e| {
            let list: Vec<String> = (0..10).map(|i| format!("\"{}\"", systems[2 * e + i % 2])).collect();
            env.nix_eval_cmd(
                &["--impure"],
                &format!(
                    "builtins.foldl' (a: s: a + (builtins.containerProfile {{ name = \"{name}\"; system = s; }}).generation) 0 [ {} ]",
                    list.join(" ")
                ),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    for c in children.into_iter().chain(evals) {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let (current, all) = current_and_all(&env, name);
    let expected: Vec<u64> = (1..=60).filter(|n| n % 2 == 1 || *n > 32).collect();
    assert_eq!(
        all, expected,
        "the even generations up to 32 deleted, the rest kept, new ones contiguous"
    );
    assert!(expected.contains(&current));
    assert_profile_whole(&env, name, &systems, "after the race");
    assert!(!env
        .profiles_dir()
        .join(format!("{name}/system.lock"))
        .exists());
}

fn shell_line(cmd: &Command) -> String {
    let q = |s: &std::ffi::OsStr| format!("'{}'", s.to_string_lossy().replace('\'', "'\\''"));
    std::iter::once(q(cmd.get_program()))
        .chain(cmd.get_args().map(q))
        .collect::<Vec<_>>()
        .join(" ")
        + " >/dev/null"
}

fn sh(script: &str) -> Child {
    Command::new("sh")
        .args(["-c", script])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}
