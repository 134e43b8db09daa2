//! create and update: a container's system is recorded through the plugin,
//! by `nix` (with the plugin loaded) evaluating nix-plugin/'s config route
//! or, for a flake (built first, purely unless --impure, as nixos-container
//! does) and a store path, a call of builtins.containerProfile: one code
//! path writes container state, however it is reached. Nix's build progress
//! is shown (its stderr is ours).

//!
//! What a container was created from is kept beside its conf file, in the
//! host-owned config directory: NAME.source.json (and, for a configuration
//! given as text or file, the module NAME.nix, which `update` evaluates
//! again; it may be edited). nixos-container keeps the configuration in the
//! container's own /etc/nixos, where the container's root can change what
//! host root then evaluates; here the container never sees it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use ncp_core::fsutil::{Contents, Dir};
use ncp_core::name;
use serde::{Deserialize, Serialize};

use crate::cli::{CreateArgs, NixFlags, SourceArgs, UpdateArgs};
use crate::commands::apply::{apply_one, said};
use crate::container::Ctx;
use crate::error::{failed, CliError, Result};
use crate::output::print_json;
use crate::say;

/// nixos-container's default flake attribute.
const DEFAULT_ATTR: &str = "container";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", tag = "kind")]
enum Recipe {
    /// nixosConfigurations.ATTR of a flake.
    Flake {
        flake: String,
        attr: String,
        args: serde_json::Value,
    },
    /// NAME.nix beside the conf, evaluated with eval-config.
    Config {
        nixos_path: Option<String>,
        args: serde_json::Value,
    },
    /// A store path as it is.
    System {
        system: String,
        args: serde_json::Value,
    },
}

pub fn recipe_file(n: &str) -> String {
    format!("{n}.source.json")
}

pub fn module_file(n: &str) -> String {
    format!("{n}.nix")
}

fn read_recipe(ctx: &Ctx, n: &str) -> Result<Option<Recipe>> {
    let Some(d) = Dir::open_existing_root(&ctx.roots.config_dir)? else {
        return Ok(None);
    };
    match d.read_bounded(&recipe_file(n), 1 << 20)? {
        Contents::Data(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| failed(format!("{}: {e}", d.child_path(&recipe_file(n)).display()))),
        _ => Ok(None),
    }
}

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

/// `nix` with the user's Nix flags; with `ctx`, the plugin loaded and
/// pointed at our roots; with `flake`, the flake flags and --impure (a
/// flake is evaluated purely unless asked, as nixos-container does).
fn nix_cmd(
    ctx: Option<&Ctx>,
    program: &str,
    sub: &[&str],
    flags: &NixFlags,
    flake: bool,
) -> Result<Command> {
    let mut c = Command::new(program);
    if program == "nix" {
        c.args(["--extra-experimental-features", "nix-command flakes"]);
    }
    if let Some(ctx) = ctx {
        // Before the subcommand: the plugin declares the settings below.
        if let Some(p) = plugin_file(flags)? {
            c.arg("--plugin-files").arg(p);
        }
        for (k, v) in ctx.roots.by_setting() {
            c.arg("--option").arg(k).arg(v);
        }
        let legacy = if ctx.legacy_layout { "true" } else { "false" };
        c.args(["--option", "container-legacy-layout", legacy]);
        c.args(["--option", "container-lock-timeout"])
            .arg(ctx.lock_timeout.as_secs().to_string());
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

/// The plugin's settings are this tool's flags: it passes them to Nix
/// itself, and Nix would not take a second value alike on every version
/// (2.35 keeps the first of a plugin's setting given twice, 2.8 the last).
fn check_flags(flags: &NixFlags) -> Result<()> {
    for kv in flags.option.chunks(2) {
        if kv[0].starts_with("container-") {
            return Err(CliError::Usage(format!(
                "--option {}: give it as nix-container's --{} (or in nix.conf)",
                kv[0], kv[0]
            )));
        }
    }
    Ok(())
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
/// then called with the path). The check is nix-plugin's systemOfFlake's.
fn flake_system(n: &str, flake: &str, attr: &str, flags: &NixFlags) -> Result<String> {
    let mut eval = nix_cmd(None, "nix", &["eval", "--raw"], flags, true)?;
    eval.arg(format!("{flake}#nixosConfigurations.\"{attr}\""));
    eval.arg("--apply").arg(format!(
        "c: if c.config.boot.isContainer or false then c.config.system.build.toplevel.drvPath \
         else throw \"nixosConfigurations.{attr} does not set boot.isContainer = true, which a \
         container's system needs\""
    ));
    let drv = String::from_utf8_lossy(&output(eval, n, "nix eval")?)
        .trim()
        .to_owned();
    // Flags only: the flake flags are not nix-store's.
    let mut realise = nix_cmd(None, "nix-store", &["--realise"], flags, false)?;
    realise.arg(&drv);
    let out = output(realise, n, "nix-store --realise")?;
    String::from_utf8_lossy(&out)
        .lines()
        .next()
        .map(str::to_owned)
        .ok_or_else(|| failed(format!("container '{n}': building {drv} gave no path")))
}

/// Builds `recipe` and calls containerProfile for container `n`; its result.
fn build(ctx: &Ctx, n: &str, recipe: &Recipe, flags: &NixFlags) -> Result<serde_json::Value> {
    let mut c = nix_cmd(
        Some(ctx),
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
    match recipe {
        Recipe::Flake { flake, attr, args } => {
            let system = flake_system(n, flake, attr, flags)?;
            c.arg("--expr").arg(profile);
            c.env(
                "NCP_CREATE",
                serde_json::json!({ "args": args, "system": system }).to_string(),
            );
        }
        Recipe::Config { nixos_path, args } => {
            let module = ctx.roots.config_dir.join(module_file(n));
            c.arg("--expr").arg(format!(
                "let a = {read}; nixos = if a.nixos == null then <nixpkgs/nixos> else /. + a.nixos; in \
                 (import {lib} {{ evalConfig = import (nixos + \"/lib/eval-config.nix\"); }}).fromConfig \
                 (a.args // {{ modules = [ (/. + a.module) ]; }})",
                lib = nix_path_literal(&library_dir()?)?
            ));
            c.env(
                "NCP_CREATE",
                serde_json::json!({ "args": args, "module": module, "nixos": nixos_path })
                    .to_string(),
            );
        }
        Recipe::System { system, args } => {
            c.arg("--expr").arg(profile);
            c.env(
                "NCP_CREATE",
                serde_json::json!({ "args": args, "system": system }).to_string(),
            );
        }
    }
    let out = output(c, n, "nix eval")?;
    serde_json::from_slice(&out)
        .map_err(|e| failed(format!("container '{n}': nix printed no result ({e})")))
}

/// Addresses other containers' conf files use.
fn used_addresses(ctx: &Ctx) -> Result<BTreeSet<String>> {
    let mut used = BTreeSet::new();
    for n in ctx.names()? {
        if let Ok(Some((_, conf))) = ctx.container(&n).and_then(|c| c.conf()) {
            for k in ["HOST_ADDRESS", "LOCAL_ADDRESS"] {
                let v = conf.value(k);
                if !v.is_empty() {
                    used.insert(v.split('/').next().unwrap_or(v).to_owned());
                }
            }
        }
    }
    Ok(used)
}

/// `--port`: [PROTOCOL:]HOSTPORT[:CONTAINERPORT],… into forwardPorts.
fn parse_ports(spec: &str) -> Result<Vec<serde_json::Value>> {
    spec.split(',')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let parts: Vec<&str> = p.split(':').collect();
            let (proto, rest) = match parts.first() {
                Some(&("tcp" | "udp")) => (parts[0], &parts[1..]),
                _ => ("tcp", &parts[..]),
            };
            let bad = || {
                CliError::Usage(format!(
                    "--port {spec}: '{p}' is not [tcp|udp:]HOSTPORT[:CONTAINERPORT]"
                ))
            };
            let port = |s: &str| s.parse::<u16>().ok().filter(|n| *n > 0).ok_or_else(bad);
            match rest {
                [h] => Ok(serde_json::json!({ "protocol": proto, "hostPort": port(h)? })),
                [h, c] => Ok(serde_json::json!({ "protocol": proto, "hostPort": port(h)?, "containerPort": port(c)? })),
                _ => Err(bad()),
            }
        })
        .collect()
}

/// The recipe the flags give (None: none given).
fn recipe_of(
    ctx: &Ctx,
    n: &str,
    s: &SourceArgs,
    args: serde_json::Value,
) -> Result<Option<Recipe>> {
    if let Some(f) = &s.flake {
        // As nixos-container: REF#ATTR, ATTR defaulting to "container".
        let (flake, attr) = match f.rsplit_once('#') {
            Some((r, a)) => (r.to_owned(), a.to_owned()),
            None => (f.clone(), DEFAULT_ATTR.to_owned()),
        };
        // The attribute is written into an installable and a message.
        let plain = |c: char| c.is_ascii_alphanumeric() || "_-'".contains(c);
        if attr.is_empty() || !attr.chars().all(plain) {
            return Err(CliError::Usage(format!(
                "--flake {f}: '{attr}' is not a configuration name (letters, digits, _ - ')"
            )));
        }
        // A local flake is recorded absolute: `update` may run elsewhere.
        let flake = if flake.starts_with('.') || flake.starts_with('/') {
            std::fs::canonicalize(&flake)
                .map_err(|e| CliError::Usage(format!("--flake {f}: {e}")))?
                .display()
                .to_string()
        } else {
            flake
        };
        return Ok(Some(Recipe::Flake { flake, attr, args }));
    }
    if let Some(p) = &s.system_path {
        return Ok(Some(Recipe::System {
            system: p.clone(),
            args,
        }));
    }
    if let Some(other) = &s.from {
        let system = ctx.container(other)?.profile_system().ok_or_else(|| {
            failed(format!(
                "container '{other}' has no system to share (its profile points at none)"
            ))
        })?;
        return Ok(Some(Recipe::System { system, args }));
    }
    let body = match (&s.config, &s.config_file) {
        (Some(text), _) => Some(text.clone()),
        (None, Some(f)) => {
            let abs = std::fs::canonicalize(f)
                .map_err(|e| CliError::Usage(format!("--config-file {}: {e}", f.display())))?;
            Some(format!(
                "imports = [ {} ];",
                serde_json::to_string(&abs.display().to_string())
                    .unwrap_or_default()
                    .replace("${", "\\${")
            ))
        }
        (None, None) => None,
    };
    let Some(body) = body else { return Ok(None) };
    // As nixos-container's generated configuration.nix.
    let module = format!(
        "# Written by `nix-container create/update {n}`; edit it and run `nix-container update {n}`.\n\
         {{ config, lib, pkgs, ... }}:\n{{\n  networking.useDHCP = false;\n  {body}\n}}\n"
    );
    Dir::open_root(&ctx.roots.config_dir, 0o755)?.replace_file(
        &module_file(n),
        module.as_bytes(),
        0o600,
    )?;
    Ok(Some(Recipe::Config {
        nixos_path: nixos_path(s)?,
        args,
    }))
}

/// --nixos-path, made absolute (it is kept in the recipe for `update`).
fn nixos_path(s: &SourceArgs) -> Result<Option<String>> {
    s.nixos_path
        .as_ref()
        .map(|p| {
            std::fs::canonicalize(p)
                .map(|a| a.display().to_string())
                .map_err(|e| CliError::Usage(format!("--nixos-path {p}: {e}")))
        })
        .transpose()
}

fn save_recipe(ctx: &Ctx, n: &str, r: &Recipe) -> Result<()> {
    let text = serde_json::to_vec_pretty(r).map_err(|e| failed(e.to_string()))?;
    Dir::open_root(&ctx.roots.config_dir, 0o755)?.replace_file(&recipe_file(n), &text, 0o644)?;
    Ok(())
}

fn exists(ctx: &Ctx, n: &str) -> bool {
    ctx.container(n).is_ok()
}

pub fn create(ctx: &Ctx, a: &CreateArgs) -> Result<()> {
    name::validate(&a.name)?;
    check_flags(&a.source.nix)?;
    let mut n = a.name.clone();
    if a.ensure_unique_name {
        let mut i = 0;
        while exists(ctx, &n) {
            n = format!("{}-{i}", a.name);
            name::validate(&n)?;
            i += 1;
        }
    } else if exists(ctx, &n) {
        return Err(failed(format!(
            "container '{n}' already exists; update it (`nix-container update {n}`), destroy it, or use --ensure-unique-name"
        )));
    }
    // As nixos-container: a private network, with the next free
    // 10.233.N.1/.2 unless addresses are given.
    let mut args =
        serde_json::json!({ "name": n, "privateNetwork": true, "autoStart": a.auto_start });
    let (host, local) = match (&a.host_address, &a.local_address, &a.bridge) {
        (Some(h), Some(l), _) => (h.clone(), l.clone()),
        (None, Some(l), Some(_)) => (String::new(), l.clone()),
        (Some(_), None, _) | (None, Some(_), None) => {
            // As nixos-container.
            return Err(CliError::Usage(
                "with --host-address, --local-address is required as well (and the other way \
                 round, unless --bridge)"
                    .into(),
            ));
        }
        _ => {
            let used = used_addresses(ctx)?;
            let nr = (1..255)
                .find(|nr| {
                    !used.contains(&format!("10.233.{nr}.1"))
                        && !used.contains(&format!("10.233.{nr}.2"))
                })
                .ok_or_else(|| failed("out of IP addresses (10.233.1-254.1/2 are all used)"))?;
            (format!("10.233.{nr}.1"), format!("10.233.{nr}.2"))
        }
    };
    if let Some(b) = &a.bridge {
        args["hostBridge"] = b.clone().into();
    } else {
        args["hostAddress"] = host.clone().into();
    }
    args["localAddress"] = local.clone().into();
    if let Some(p) = &a.port {
        args["forwardPorts"] = parse_ports(p)?.into();
    }
    let source = SourceArgs {
        config: a.source.config.clone().or_else(|| {
            // Neither configuration nor flake nor system: an empty
            // configuration (a minimal container), as nixos-container.
            let given = a.source.config_file.is_some()
                || a.source.flake.is_some()
                || a.source.system_path.is_some()
                || a.source.from.is_some();
            (!given).then(String::new)
        }),
        ..a.source.clone()
    };
    let recipe = recipe_of(ctx, &n, &source, args)?
        .ok_or_else(|| failed("no configuration, flake or system given"))?;
    let result = match build(ctx, &n, &recipe, &a.source.nix) {
        Ok(r) => r,
        Err(e) => {
            if let Some(d) = Dir::open_existing_root(&ctx.roots.config_dir)? {
                let _ = d.unlink(&module_file(&n));
            }
            return Err(e);
        }
    };
    save_recipe(ctx, &n, &recipe)?;
    eprintln!(
        "host IP is {}, container IP is {local}",
        if a.bridge.is_some() {
            "(bridged)"
        } else {
            host.as_str()
        }
    );
    if a.json {
        print_json(&result)?;
    } else if a.ensure_unique_name {
        println!("{n}");
    } else {
        say!(
            "{n}: created, generation {} ({})",
            result["generation"],
            result["system"].as_str().unwrap_or("?")
        );
    }
    Ok(())
}

pub fn update(ctx: &Ctx, a: &UpdateArgs) -> Result<()> {
    let c = ctx.container(&a.name)?;
    let n = c.name().to_owned();
    check_flags(&a.source.nix)?;

    let old = read_recipe(ctx, &n)?;
    let args = match &old {
        Some(
            Recipe::Flake { args, .. } | Recipe::Config { args, .. } | Recipe::System { args, .. },
        ) => args.clone(),
        None => serde_json::json!({ "name": n }),
    };
    // A flag not given keeps what was recorded: the module (re-read, as
    // edited), the flake, the nixpkgs it was evaluated with.
    let recorded_nixos = match &old {
        Some(Recipe::Config { nixos_path, .. }) => nixos_path.clone(),
        _ => None,
    };
    let recipe = match (recipe_of(ctx, &n, &a.source, args)?, old) {
        (Some(Recipe::Config { nixos_path, args }), _) => Recipe::Config {
            nixos_path: nixos_path.or(recorded_nixos),
            args,
        },
        (Some(r), _) => r,
        (None, Some(Recipe::Config { args, nixos_path })) => Recipe::Config {
            nixos_path: self::nixos_path(&a.source)?.or(nixos_path),
            args,
        },
        (None, Some(r)) => r,
        (None, None) => {
            return Err(failed(format!(
                "container '{n}' has no record of what it was created from (it was not created by \
                 `nix-container create`); give --config, --config-file, --flake or --system-path"
            )))
        }
    };
    let result = build(ctx, &n, &recipe, &a.source.nix)?;
    save_recipe(ctx, &n, &recipe)?;
    if a.json {
        print_json(&result)?;
    } else {
        say!(
            "{n}: generation {} ({}{})",
            result["generation"],
            result["system"].as_str().unwrap_or("?"),
            if result["changed"] == true {
                ""
            } else {
                ", unchanged"
            }
        );
    }
    // As nixos-container: a running container gets the new system (and
    // here, a restart when its conf changed, if this tool started it).
    if crate::state::Probe::of(&c).state.up() {
        let d = apply_one(&c, false)?;
        say!("{n}: {}", said(&d));
    }
    Ok(())
}
