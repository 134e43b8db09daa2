//! Running Nix for create and update: finding the plugin and the library
//! (nix-plugin/), the `nix` command line (the user's Nix flags, the plugin's
//! settings from the one table), building a flake's system, and the
//! containerProfile call from typed arguments (core args.rs). Nix's build
//! progress and errors are shown (its stderr is ours). Named so because the
//! `nix` crate (syscalls) has the name `nix`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use ncp_core::settings::Settings;

use crate::cli::NixFlags;
use crate::error::{failed, CliError, Result};
use crate::recipe::Recipe;

/// The plugin file to load (None: Nix's own configuration loads it):
/// `--plugin` (or NCP_PLUGIN), nix.conf's plugin-files naming it, the one
/// installed beside this program (package.nix's layout). When there is none,
/// one line says so before Nix runs (Nix would warn about every setting it
/// does not know, then fail on the missing builtin).
fn plugin_file(flags: &NixFlags) -> Result<Option<PathBuf>> {
    if let Some(p) = &flags.plugin {
        if !p.is_file() {
            return Err(failed(format!("--plugin {}: no such file", p.display())));
        }
        return Ok(Some(p.clone()));
    }
    let configured = ncp_core::nixconf::read(&["plugin-files"], &|k| std::env::var(k).ok());
    let configured = configured
        .get("plugin-files")
        .map(String::as_str)
        .unwrap_or("");
    if configured.contains("nix-container-plugin") {
        return Ok(None);
    }
    let exe = std::env::current_exe().ok();
    let prefix = exe.as_deref().and_then(|e| e.parent()?.parent());
    if let Some(p) = prefix.map(|d| d.join("lib/nix/plugins/nix-container-plugin.so")) {
        if p.exists() {
            return Ok(Some(p));
        }
    }
    // Some other plugin-files: perhaps ours under another name; Nix says.
    if !configured.trim().is_empty() {
        return Ok(None);
    }
    Err(failed(format!(
        "no nix-container-plugin to load: nix.conf's plugin-files does not name it, none is \
         installed beside this program ({}/lib/nix/plugins), and neither --plugin nor \
         NCP_PLUGIN gives one",
        prefix.map_or_else(|| "PREFIX".into(), |p| p.display().to_string())
    )))
}

/// nix-plugin/ (the library with the routes).
fn library_dir() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("NCP_LIBRARY") {
        return Ok(PathBuf::from(p));
    }
    let installed = std::env::current_exe().ok().and_then(|e| {
        Some(
            e.parent()?
                .parent()?
                .join("share/nix-container-plugin/nix-plugin"),
        )
    });
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../nix-plugin");
    installed
        .filter(|p| p.join("default.nix").exists())
        .or_else(|| source.join("default.nix").exists().then_some(source))
        .ok_or_else(|| failed("cannot find nix-plugin/ (the library): set NCP_LIBRARY"))
}

/// The plugin's settings are this tool's flags: it passes them to Nix
/// itself, and Nix would not take a second value alike on every version
/// (2.35 keeps the first of a plugin's setting given twice, 2.8 the last).
pub fn check_flags(flags: &NixFlags) -> Result<()> {
    for kv in flags.option.chunks(2) {
        if ncp_core::settings::find(&kv[0]).is_some() {
            return Err(CliError::Usage(format!(
                "--option {}: give it as nix-container's --{} (or in nix.conf)",
                kv[0], kv[0]
            )));
        }
    }
    Ok(())
}

/// `nix` with the user's Nix flags; with `settings`, the plugin loaded and
/// given every setting of the table; with `flake`, the flake flags and
/// --impure (a flake is evaluated purely unless asked, as nixos-container
/// does).
fn command(
    settings: Option<&Settings>,
    program: &str,
    sub: &[&str],
    flags: &NixFlags,
    flake: bool,
) -> Result<Command> {
    let mut c = Command::new(program);
    if program == "nix" {
        c.args(["--extra-experimental-features", "nix-command flakes"]);
    }
    if let Some(settings) = settings {
        // Before the subcommand: the plugin declares the settings below.
        if let Some(p) = plugin_file(flags)? {
            c.arg("--plugin-files").arg(p);
        }
        for (name, value) in settings.pairs() {
            c.arg("--option").arg(name).arg(value);
        }
    }
    c.args(sub);
    for kv in flags.option.chunks(2) {
        c.arg("--option").args(kv);
    }
    if let Some(f) = &flags.log_format {
        c.args(["--log-format", f]);
    }
    if flake {
        if flags.impure {
            c.arg("--impure");
        }
        for i in &flags.update_input {
            c.args(["--update-input", i]);
        }
        for kv in flags.override_input.chunks(2) {
            c.arg("--override-input").args(kv);
        }
        for (set, f) in [
            (flags.commit_lock_file, "--commit-lock-file"),
            (flags.no_registries, "--no-registries"),
            (flags.no_update_lock_file, "--no-update-lock-file"),
            (flags.no_write_lock_file, "--no-write-lock-file"),
            (flags.no_allow_dirty, "--no-allow-dirty"),
            (flags.recreate_lock_file, "--recreate-lock-file"),
        ] {
            if set {
                c.arg(f);
            }
        }
    }
    // Nix's progress and errors are the user's to see.
    c.stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .stdout(Stdio::piped());
    Ok(c)
}

/// Runs `c`; its stdout.
fn output(mut c: Command, n: &str, what: &str) -> Result<Vec<u8>> {
    let out = c.output().map_err(|source| CliError::Spawn {
        what: what.into(),
        source,
    })?;
    if !out.status.success() {
        return Err(failed(format!(
            "container '{n}': {what} failed ({}); see its messages above",
            out.status
        )));
    }
    Ok(out.stdout)
}

/// `p` as a Nix path expression; only plain absolute paths are written into
/// Nix code (anything else crosses as data).
fn nix_path_literal(p: &Path) -> Result<String> {
    let s = p
        .canonicalize()
        .map_err(|e| failed(format!("{}: {e}", p.display())))?
        .to_str()
        .map(str::to_owned)
        .unwrap_or_default();
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+".contains(&b));
    if !plain {
        return Err(failed(format!(
            "the library path '{}' has characters Nix paths cannot hold; set NCP_LIBRARY",
            p.display()
        )));
    }
    Ok(s)
}

/// A flake's nixosConfigurations.ATTR, built: its system's store path.
/// Evaluated purely unless --impure (containerProfile, which writes, is
/// then called with the path). The check is the library's one
/// (nix-plugin/flake-system.nix), passed as text: pure evaluation could not
/// import it from its path.
pub fn flake_system(n: &str, flake: &str, attr: &str, flags: &NixFlags) -> Result<String> {
    let check_file = library_dir()?.join("flake-system.nix");
    let check = std::fs::read_to_string(&check_file)
        .map_err(|e| failed(format!("{}: {e}", check_file.display())))?;
    let mut eval = command(None, "nix", &["eval", "--raw"], flags, true)?;
    eval.arg(format!("{flake}#nixosConfigurations.\"{attr}\""));
    eval.arg("--apply").arg(format!(
        "c: (({check}) {attr} c).drvPath",
        attr = serde_json::to_string(attr)
            .unwrap_or_default()
            .replace("${", "\\${")
    ));
    let drv = String::from_utf8_lossy(&output(eval, n, "nix eval")?)
        .trim()
        .to_owned();
    realise(n, &drv, flags)
}

/// The library's configuration route `function` (fromConfig,
/// systemOfConfig) applied to the arguments, module and nixos directory
/// given as JSON in NCP_CREATE.
fn config_route(function: &str) -> Result<String> {
    Ok(format!(
        "let a = builtins.fromJSON (builtins.getEnv \"NCP_CREATE\"); \
         nixos = if a.nixos == null then <nixpkgs/nixos> else /. + a.nixos; in \
         (import {lib} {{ evalConfig = import (nixos + \"/lib/eval-config.nix\"); }}).{function} \
         (a.args // {{ modules = [ (/. + a.module) ]; }})",
        lib = nix_path_literal(&library_dir()?)?
    ))
}

/// The system a configuration module gives container `n`, built here
/// without recording it anywhere (--target-host records it there): its
/// store path.
pub fn config_system(
    n: &str,
    module: &Path,
    nixos_path: Option<&str>,
    flags: &NixFlags,
) -> Result<String> {
    let mut eval = command(None, "nix", &["eval", "--raw", "--impure"], flags, false)?;
    eval.arg("--expr")
        .arg(format!("({}).drvPath", config_route("systemOfConfig")?));
    let input = serde_json::json!({ "args": { "name": n }, "module": module, "nixos": nixos_path });
    eval.env("NCP_CREATE", input.to_string());
    let drv = String::from_utf8_lossy(&output(eval, n, "nix eval")?)
        .trim()
        .to_owned();
    realise(n, &drv, flags)
}

/// `nix-store --realise DRV`: its output path.
fn realise(n: &str, drv: &str, flags: &NixFlags) -> Result<String> {
    // Flags only: the flake flags are not nix-store's.
    let mut realise = command(None, "nix-store", &["--realise"], flags, false)?;
    realise.arg(drv);
    let out = output(realise, n, "nix-store --realise")?;
    String::from_utf8_lossy(&out)
        .lines()
        .next()
        .map(str::to_owned)
        .ok_or_else(|| failed(format!("container '{n}': building {drv} gave no path")))
}

/// Copies `path`'s closure into the store of `dest` ([USER@]HOST) with
/// Nix's own copy over ssh (NIX_SSHOPTS honoured by Nix). Each path lands
/// whole or not at all, and nothing refers to the closure there until it
/// is complete. `quiet`: Nix's messages are returned instead of shown.
pub fn copy_closure(dest: &str, path: &str, quiet: bool) -> Result<(bool, String)> {
    let mut c = Command::new("nix");
    c.args(["--extra-experimental-features", "nix-command", "copy"])
        // Built here and unsigned; root there trusts root here.
        .arg("--no-check-sigs")
        .arg("--to")
        .arg(format!("ssh-ng://{dest}"))
        .arg(path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(if quiet {
            Stdio::piped()
        } else {
            Stdio::inherit()
        });
    let out = c.output().map_err(|source| CliError::Spawn {
        what: "nix copy".into(),
        source,
    })?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// Builds `recipe` and calls containerProfile for container `n` through the
/// plugin; its result. `module` is the configuration module of a Config
/// recipe.
pub fn container_profile(
    settings: &Settings,
    n: &str,
    recipe: &Recipe,
    module: &Path,
    flags: &NixFlags,
) -> Result<serde_json::Value> {
    let mut c = command(
        Some(settings),
        "nix",
        &["eval", "--impure", "--json"],
        flags,
        false,
    )?;
    // Arguments cross as JSON in the environment: no quoting of Nix code.
    let read = "builtins.fromJSON (builtins.getEnv \"NCP_CREATE\")";
    let profile = format!(
        "let a = {read}; in builtins.containerProfile (a.args // {{ system = a.system; }})"
    );
    let input = match recipe {
        Recipe::Flake { flake, attr, args } => {
            let system = flake_system(n, flake, attr, flags)?;
            c.arg("--expr").arg(profile);
            serde_json::json!({ "args": args, "system": system })
        }
        Recipe::Config { nixos_path, args } => {
            c.arg("--expr").arg(config_route("fromConfig")?);
            serde_json::json!({ "args": args, "module": module, "nixos": nixos_path })
        }
        Recipe::System { system, args } => {
            c.arg("--expr").arg(profile);
            serde_json::json!({ "args": args, "system": system })
        }
    };
    c.env("NCP_CREATE", input.to_string());
    let out = output(c, n, "nix eval")?;
    serde_json::from_slice(&out)
        .map_err(|e| failed(format!("container '{n}': nix printed no result ({e})")))
}
