//! Helpers for the integration tests: a temporary set of container roots and
//! the real `nix` with the built plugin loaded and pointed at them.
//!
//! The plugin is `$NCP_PLUGIN`, or `build/nix-container-plugin.so` as
//! `scripts/setup.sh` builds it. The tests need root and Debian's nix-bin.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_owned()
}

/// Cargo's target directory: `$CARGO_TARGET_DIR` (scripts/test.sh keeps one
/// between runs) or the workspace's own.
pub fn cargo_target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target"))
}

pub fn plugin() -> PathBuf {
    let p = std::env::var_os("NCP_PLUGIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("build/nix-container-plugin.so"));
    assert!(
        p.exists(),
        "{} is missing: run scripts/setup.sh (or set NCP_PLUGIN)",
        p.display()
    );
    p
}

/// Nix settings every test uses: no binary cache to wait for (no network
/// here), the `nix` command enabled, no sandbox (the test system's builder
/// is the host's busybox).
pub const NIX_CONFIG: &str =
    "experimental-features = nix-command flakes\nsubstituters =\nsandbox = false\n";

/// The Nix under test is the first `nix` on PATH; scripts/test.sh runs the
/// suite once per Nix version, with its own store and state directories
/// (NIX_STORE_DIR, NIX_STATE_DIR) for all but the machine's own Nix.
pub fn store_dir() -> String {
    std::env::var("NIX_STORE_DIR").unwrap_or_else(|_| "/nix/store".into())
}

pub fn nix_state_dir() -> PathBuf {
    std::env::var_os("NIX_STATE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/nix/var/nix".into())
}

/// Nix expression of the test system with `label`.
pub fn system_expr(label: &str) -> String {
    format!(
        "(import {}/tests/fixtures/test-system.nix {{ label = \"{label}\"; }})",
        repo().display()
    )
}

/// Builds the test system `label` and returns its store path.
pub fn build_system(label: &str) -> String {
    build_systems(&[label.to_owned()]).remove(0)
}

/// Builds the test systems `labels` in one nix-build (in parallel) and
/// returns their store paths in the same order.
pub fn build_systems(labels: &[String]) -> Vec<String> {
    let list: Vec<String> = labels.iter().map(|l| system_expr(l)).collect();
    let out = Command::new("nix-build")
        .env("NIX_CONFIG", NIX_CONFIG)
        .args(["--no-out-link", "-j", "4", "-E"])
        .arg(format!("[ {} ]", list.join(" ")))
        .output()
        .expect("run nix-build");
    assert!(
        out.status.success(),
        "nix-build failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let paths: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(paths.len(), labels.len());
    paths
}

/// One test's container roots, below a temporary directory.
pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Default for Env {
    fn default() -> Self {
        Self::new()
    }
}

impl Env {
    pub fn new() -> Env {
        assert_eq!(
            unsafe { libc::geteuid() },
            0,
            "the integration tests run as root"
        );
        Env {
            dir: tempfile::Builder::new()
                .prefix("ncp-test-")
                .tempdir()
                .expect("temp dir"),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
    pub fn state_dir(&self) -> PathBuf {
        self.path("state")
    }
    pub fn config_dir(&self) -> PathBuf {
        self.path("etc")
    }
    pub fn profiles_dir(&self) -> PathBuf {
        self.path("profiles")
    }
    pub fn gcroots_dir(&self) -> PathBuf {
        self.path("gcroots")
    }
    pub fn profile(&self, name: &str) -> PathBuf {
        self.profiles_dir().join(name).join("system")
    }

    /// `--option` pairs that point the plugin at this test's roots.
    pub fn options(&self) -> Vec<String> {
        self.options_with(&[])
    }

    /// The same, with some roots given elsewhere: each setting once (a
    /// plugin's setting given twice is taken first by Nix 2.35, last by 2.8).
    pub fn options_with(&self, over: &[(&str, &Path)]) -> Vec<String> {
        let mut v = Vec::new();
        for (k, p) in [
            ("container-state-dir", self.state_dir()),
            ("container-config-dir", self.config_dir()),
            ("container-profiles-dir", self.profiles_dir()),
            ("container-gcroots-dir", self.gcroots_dir()),
        ] {
            let p = over
                .iter()
                .find(|(o, _)| *o == k)
                .map(|(_, p)| p.to_path_buf())
                .unwrap_or(p);
            v.extend(["--option".to_owned(), k.to_owned(), p.display().to_string()]);
        }
        v
    }

    /// `nix --plugin-files PLUGIN --option … eval EXTRA… --expr EXPR`.
    pub fn nix_eval_cmd(&self, extra: &[&str], expr: &str) -> Command {
        self.nix_eval_cmd_with(&[], extra, expr)
    }

    /// The same with some roots elsewhere (options_with).
    pub fn nix_eval_cmd_with(&self, over: &[(&str, &Path)], extra: &[&str], expr: &str) -> Command {
        let mut c = Command::new("nix");
        c.env("NIX_CONFIG", NIX_CONFIG)
            .arg("--plugin-files")
            .arg(plugin())
            .args(self.options_with(over))
            .arg("eval")
            .args(extra)
            .args(["--expr", expr])
            .stdin(Stdio::null());
        c
    }

    pub fn nix_eval(&self, extra: &[&str], expr: &str) -> Output {
        self.nix_eval_cmd(extra, expr).output().expect("run nix")
    }

    /// Evaluates `expr` impurely and returns its JSON value; fails the test otherwise.
    pub fn eval_json(&self, expr: &str) -> serde_json::Value {
        let out = self.nix_eval(&["--impure", "--json"], expr);
        assert!(
            out.status.success(),
            "nix eval failed for {expr}:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("nix eval --json prints JSON")
    }

    /// Evaluates `expr` impurely, expects exit code 1, returns stderr.
    pub fn eval_err(&self, expr: &str) -> String {
        self.eval_err_with(&["--impure"], expr)
    }

    pub fn eval_err_with(&self, extra: &[&str], expr: &str) -> String {
        let out = self.nix_eval(extra, expr);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(
            out.status.code(),
            Some(1),
            "expected exit code 1 for {expr}, got {:?}:\n{stderr}",
            out.status
        );
        stderr
    }

    /// `builtins.containerProfile { name = NAME; system = …label…; EXTRA }`.
    pub fn profile_expr(name: &str, label: &str, extra: &str) -> String {
        format!(
            "builtins.containerProfile {{ name = \"{name}\"; system = {}; {extra} }}",
            system_expr(label)
        )
    }

    /// Every path below this test's roots, sorted (to check nothing was written).
    pub fn tree(&self) -> Vec<PathBuf> {
        fn walk(p: &Path, out: &mut Vec<PathBuf>) {
            if let Ok(rd) = std::fs::read_dir(p) {
                for e in rd.flatten() {
                    out.push(e.path());
                    if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                        walk(&e.path(), out);
                    }
                }
            }
        }
        let mut v = Vec::new();
        walk(self.dir.path(), &mut v);
        v.sort();
        v
    }
}

/// Runs `c`, fails the test unless it succeeds (saying what it printed).
pub fn succeeded(c: &mut Command) -> Output {
    let out = c
        .output()
        .unwrap_or_else(|e| panic!("cannot run {c:?}: {e}"));
    assert!(
        out.status.success(),
        "{c:?} failed ({:?}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The runtime CLI: `$NCP_CLI`, or the workspace's debug build.
pub fn cli_bin() -> PathBuf {
    let p = std::env::var_os("NCP_CLI")
        .map(PathBuf::from)
        .unwrap_or_else(|| cargo_target_dir().join("debug/nix-container"));
    assert!(
        p.exists(),
        "{} is missing: cargo build -p nix-container (or set NCP_CLI)",
        p.display()
    );
    p
}

impl Env {
    pub fn run_dir(&self) -> PathBuf {
        self.path("run")
    }

    /// The CLI's flags that point it at this test's roots.
    pub fn root_flags(&self) -> Vec<std::ffi::OsString> {
        [
            ("--container-state-dir", self.state_dir()),
            ("--container-config-dir", self.config_dir()),
            ("--container-profiles-dir", self.profiles_dir()),
            ("--container-gcroots-dir", self.gcroots_dir()),
            ("--container-run-dir", self.run_dir()),
        ]
        .into_iter()
        .flat_map(|(k, p)| [k.into(), p.into_os_string()])
        .collect()
    }

    /// `nix-container` pointed at this test's roots, running nspawn itself.
    pub fn cli_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(cli_bin());
        c.args(self.root_flags())
            .args(["--runner", "direct", "--timeout", "20"])
            .args(args)
            .stdin(Stdio::null());
        c
    }

    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_cmd(args).output().expect("run nix-container")
    }

    /// Runs the CLI, expects success, returns stdout.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let out = succeeded(&mut self.cli_cmd(args));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs the CLI, expects exit code `code`, returns stderr.
    pub fn cli_fails(&self, code: i32, args: &[&str]) -> String {
        let out = self.cli(args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(
            out.status.code(),
            Some(code),
            "nix-container {args:?}: expected exit {code}:\n{stderr}"
        );
        stderr
    }

    pub fn cli_json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.cli(args);
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "nix-container {args:?} printed no JSON ({e}):\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
    }

    /// A mark the test system wrote inside container `name`.
    pub fn mark(&self, name: &str, mark: &str) -> String {
        std::fs::read_to_string(
            self.state_dir()
                .join(name)
                .join("var/lib/ncp-test")
                .join(mark),
        )
        .unwrap_or_default()
        .trim()
        .to_owned()
    }

    pub fn wait_for_mark(&self, name: &str, mark: &str, value: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while self.mark(name, mark) != value {
            assert!(
                std::time::Instant::now() < deadline,
                "mark {mark} of {name} never became {value:?} (is {:?})",
                self.mark(name, mark)
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

/// Stops every container of a test when it ends, failed or not.
pub struct StopOnDrop<'a>(pub &'a Env, pub &'a [&'a str]);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        for n in self.1 {
            let _ = self.0.cli(&["stop", n]);
        }
    }
}

/// `nix-env -p PROFILE --list-generations` as (number, current) pairs.
pub fn nix_env_generations(profile: &Path) -> Vec<(u64, bool)> {
    let out = Command::new("nix-env")
        .env("NIX_CONFIG", NIX_CONFIG)
        .arg("-p")
        .arg(profile)
        .arg("--list-generations")
        .output()
        .expect("run nix-env");
    assert!(
        out.status.success(),
        "nix-env failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let n = w.next()?.parse().ok()?;
            Some((n, l.contains("(current)")))
        })
        .collect()
}

/// Where a symlink chain ends.
pub fn resolve(p: &Path) -> String {
    std::fs::canonicalize(p)
        .unwrap_or_else(|e| panic!("resolve {}: {e}", p.display()))
        .display()
        .to_string()
}

/// A container booted by systemd-nspawn with the argv the plugin rendered.
pub struct Booted {
    pub child: std::process::Child,
    pub marks: PathBuf,
    pub log: PathBuf,
}

/// Boots the container described by a containerProfile result. Adds
/// `--register=no` (no systemd as PID 1 and no machined here) and waits until
/// the test system's init reports that it runs.
pub fn boot(env: &Env, result: &serde_json::Value) -> Booted {
    let argv: Vec<String> = result["nspawnArgs"]
        .as_array()
        .expect("nspawnArgs")
        .iter()
        .map(|a| a.as_str().expect("string").to_owned())
        .collect();
    // The rendered argv binds Nix's daemon socket directory read-only, as
    // NixOS does; a Debian host without nix-daemon may not have it yet.
    std::fs::create_dir_all(nix_state_dir().join("daemon-socket"))
        .expect("create daemon-socket dir");
    let log = env.path("nspawn.log");
    let logf = std::fs::File::create(&log).expect("log file");
    let mut cmd = Command::new(&argv[0]);
    cmd.arg("--register=no")
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(logf.try_clone().expect("dup"))
        .stderr(logf);
    for (k, v) in result["nspawnEnv"].as_object().expect("nspawnEnv") {
        cmd.env(k, v.as_str().expect("string"));
    }
    let child = cmd.spawn().expect("run systemd-nspawn");
    let marks = Path::new(result["root"].as_str().expect("root")).join("var/lib/ncp-test");
    let booted = Booted { child, marks, log };
    booted.wait_for("state", "running");
    booted
}

impl Booted {
    pub fn mark(&self, name: &str) -> String {
        std::fs::read_to_string(self.marks.join(name))
            .unwrap_or_default()
            .trim()
            .to_owned()
    }

    pub fn wait_for(&self, name: &str, value: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while self.mark(name) != value {
            assert!(
                std::time::Instant::now() < deadline,
                "container mark {name} never became {value:?}; nspawn log:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Stops it as systemd stops container@.service (SIGTERM to nspawn, which
    /// sends SIGRTMIN+3 to the container's init) and waits for nspawn to exit.
    pub fn stop(mut self) -> std::process::ExitStatus {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            if std::time::Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "systemd-nspawn did not stop; log:\n{}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

impl Env {
    /// Prepares container `name` (system `label`, `extra` attributes) and
    /// starts it with the CLI; waits until its init runs.
    pub fn booted(&self, name: &str, label: &str, extra: &str) -> serde_json::Value {
        let r = self.eval_json(&Env::profile_expr(name, label, extra));
        self.cli_ok(&["start", name]);
        self.wait_for_mark(name, "state", "running");
        r
    }

    /// Runs `sh -c SCRIPT` inside container `name` as its root (the CLI's
    /// `run`); returns stdout; fails the test if it fails.
    pub fn inside(&self, name: &str, script: &str) -> String {
        self.cli_ok(&["run", name, "--", "sh", "-c", script])
    }

    /// The container's init (host pid), from `status --json`.
    pub fn leader(&self, name: &str) -> i64 {
        let s = self.cli_json(&["status", "--json", name]);
        s["leader"]
            .as_i64()
            .unwrap_or_else(|| panic!("{name} has no leader: {s}"))
    }
}

/// Runs `cmd`, killing it after `limit`; returns its output, or None if it
/// had to be killed (it blocked).
pub fn output_within(mut cmd: Command, limit: std::time::Duration) -> Option<Output> {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = std::time::Instant::now() + limit;
    loop {
        if child.try_wait().expect("wait").is_some() {
            return Some(child.wait_with_output().expect("output"));
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The nixpkgs lib snapshot (a directory with lib/), NCP_NIXPKGS_LIB, which
/// scripts/test.sh sets (scripts/nixpkgs-lib.sh).
pub fn nixpkgs_lib() -> PathBuf {
    let d = std::env::var_os("NCP_NIXPKGS_LIB")
        .map(PathBuf::from)
        .expect("NCP_NIXPKGS_LIB (a nixpkgs lib snapshot; scripts/test.sh sets it)");
    assert!(d.join("lib/default.nix").exists(), "{}", d.display());
    d
}

impl Env {
    /// A stand-in for nixpkgs' nixos/ directory, below this test's
    /// directory: its lib/eval-config.nix is the fixture's, on nixpkgs'
    /// real lib.
    pub fn nixos_dir(&self) -> PathBuf {
        let d = self.path("nixpkgs/nixos");
        std::fs::create_dir_all(d.join("lib")).expect("create nixos/lib");
        std::fs::write(
            d.join("lib/eval-config.nix"),
            format!(
                "import {}/tests/fixtures/nixos/eval-config.nix {{ lib = import {}/lib; }}\n",
                repo().display(),
                nixpkgs_lib().display()
            ),
        )
        .expect("write eval-config.nix");
        d
    }
}

/// The host's busybox-static binary (merged /usr has it in /usr/bin).
pub fn host_busybox() -> &'static Path {
    ["/usr/bin/busybox", "/bin/busybox"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.exists())
        .expect("busybox-static (scripts/setup.sh installs it)")
}

/// Whether this process may create user namespaces. The kernel refuses
/// them to a chrooted process (e.g. under ../shared/tools/clean-room), and
/// so does a systemd-nspawn with privateUsers there. None: allowed; Some:
/// why not.
pub fn user_namespaces_refused() -> Option<String> {
    let out = Command::new("unshare")
        .args(["--user", "--map-root-user", "true"])
        .output()
        .expect("run unshare (util-linux)");
    (!out.status.success()).then(|| String::from_utf8_lossy(&out.stderr).trim().to_owned())
}

/// Whether entering this process's own mount namespace (what nsenter does)
/// lands on another root than this process's: true in a chroot such as
/// ../shared/tools/clean-room, where setns(CLONE_NEWNS) puts the caller at
/// the namespace's root mount, outside the chroot.
pub fn nsenter_lands_outside() -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(own) = std::fs::metadata("/") else {
        return false;
    };
    let out = Command::new("nsenter")
        .arg(format!("--mount=/proc/{}/ns/mnt", std::process::id()))
        .args(["--", "stat", "-c", "%d:%i", "/"])
        .output();
    match out {
        Ok(o) if o.status.success() => {
            String::from_utf8_lossy(&o.stdout).trim() != format!("{}:{}", own.dev(), own.ino())
        }
        _ => false,
    }
}

/// Records that `test` could not run here and why: on stderr, and in the
/// file NCP_SKIP_LOG (scripts/test.sh prints it at the end), so that a
/// skip is never silent.
pub fn skipped(test: &str, why: &str) {
    let line = format!("{test}: not run here: {why}\n");
    eprint!("{line}");
    if let Some(f) = std::env::var_os("NCP_SKIP_LOG") {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(f)
        {
            let _ = f.write_all(line.as_bytes());
        }
    }
}

/// Runs the CLI with ARGS on a terminal of its own (util-linux script) and
/// converses: for each (PROMPT, INPUT), waits until the terminal shows
/// PROMPT, then types INPUT (typed ahead, a login program would flush it).
/// What the terminal showed.
pub fn on_terminal(env: &Env, args: &[&str], steps: &[(&str, &str)]) -> String {
    use std::io::{Read, Write};
    use std::sync::{Arc, Mutex};
    // The CLI's command line as env.cli_cmd has it, for script's shell.
    let c = env.cli_cmd(args);
    let argv: Vec<String> = std::iter::once(c.get_program())
        .chain(c.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut child = Command::new("script")
        .args(["-qec", &argv.join(" "), "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run script (util-linux)");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut out = child.stdout.take().unwrap();
    let reader = {
        let seen = seen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                seen.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        })
    };
    let text =
        |seen: &Arc<Mutex<Vec<u8>>>| String::from_utf8_lossy(&seen.lock().unwrap()).into_owned();
    let mut stdin = child.stdin.take().unwrap();
    let mut from = 0;
    for (prompt, input) in steps {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let t = text(&seen);
            if let Some(at) = t.get(from..).and_then(|rest| rest.find(prompt)) {
                from += at + prompt.len();
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no {prompt:?} on the terminal:\n{t}"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        stdin.write_all(input.as_bytes()).unwrap();
    }
    // The session ends by itself; script would end it at EOF.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    drop(stdin);
    let _ = child.wait();
    let _ = reader.join();
    text(&seen)
}

/// Debian 12's systemd as one path in the store under test
/// (scripts/systemd-system.sh add: its cached root, added once per store):
/// `$NCP_SYSTEMD_BASE`, which scripts/test.sh sets, or added here.
pub fn systemd_base() -> String {
    static BASE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BASE.get_or_init(|| {
        if let Ok(b) = std::env::var("NCP_SYSTEMD_BASE") {
            return b;
        }
        let out = Command::new(repo().join("scripts/systemd-system.sh"))
            .arg("add")
            .stderr(Stdio::inherit())
            .output()
            .expect("run scripts/systemd-system.sh");
        assert!(out.status.success(), "scripts/systemd-system.sh add failed");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .expect("a store path")
            .to_owned()
    })
    .clone()
}

/// `s` as a Nix string literal.
pub fn nix_string(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '$' => o.push_str("\\$"),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// Nix expression of the test system whose PID 1 is a real systemd
/// (tests/fixtures/systemd-system.nix) with `label` and extra `units`
/// (name, unit text), each wanted by multi-user.target.
pub fn systemd_system_expr(label: &str, units: &[(&str, &str)]) -> String {
    let units: String = units
        .iter()
        .map(|(n, t)| format!("{} = {}; ", nix_string(n), nix_string(t)))
        .collect();
    format!(
        "(import {}/tests/fixtures/systemd-system.nix {{ base = \"{}\"; label = \"{label}\"; units = {{ {units}}}; }})",
        repo().display(),
        systemd_base()
    )
}

/// `nix-build --no-out-link -E EXPR`: the paths it printed; fails the test
/// unless it succeeds.
pub fn nix_build(expr: &str) -> Vec<String> {
    let out = Command::new("nix-build")
        .env("NIX_CONFIG", NIX_CONFIG)
        .args(["--no-out-link", "-E", expr])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{expr}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect()
}

/// "Lix" or "Nix": which implementation the `nix` under test is (Lix says
/// "nix (Lix, like Nix) 2.95.3").
pub fn nix_name() -> &'static str {
    static NAME: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();
    NAME.get_or_init(|| {
        let out = Command::new("nix")
            .arg("--version")
            .output()
            .expect("nix --version");
        if String::from_utf8_lossy(&out.stdout).contains("(Lix") {
            "Lix"
        } else {
            "Nix"
        }
    })
}
