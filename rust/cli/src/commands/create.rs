//! create and update: nixos-container's commands and flags, made into a
//! recipe (recipe.rs: what the container is built from, kept beside its
//! conf) and the containerProfile call through the plugin (nix_command.rs):
//! one code path writes container state, however it is reached.

use std::collections::BTreeSet;

use ncp_core::args::{Args, ForwardPort};
use ncp_core::name;

use crate::cli::{CreateArgs, SourceArgs, UpdateArgs};
use crate::commands::apply::{apply_one, said};
use crate::container::Ctx;
use crate::error::{failed, CliError, Result};
use crate::nix_command::{self, check_flags};
use crate::output::print_json;
use crate::recipe::{Recipe, Recipes};
use crate::say;

/// nixos-container's default flake attribute.
const DEFAULT_ATTR: &str = "container";

/// Builds `recipe` and records it through the plugin; its result.
fn build(ctx: &Ctx, n: &str, recipe: &Recipe, a: &SourceArgs) -> Result<serde_json::Value> {
    let module = Recipes::new(&ctx.roots).module_path(n);
    nix_command::container_profile(&ctx.settings, n, recipe, &module, &a.nix)
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

/// `--port`: [PROTOCOL:]HOSTPORT[:CONTAINERPORT],… into forwardPorts,
/// checked by the plugin's own port rule (core spec.rs).
fn parse_ports(spec: &str) -> Result<Vec<ForwardPort>> {
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
            let port = |s: &str| s.parse::<u16>().map_err(|_| bad());
            let fp = match rest {
                [h] => ForwardPort {
                    protocol: proto.into(),
                    host_port: port(h)?,
                    container_port: None,
                },
                [h, c] => ForwardPort {
                    protocol: proto.into(),
                    host_port: port(h)?,
                    container_port: Some(port(c)?),
                },
                _ => return Err(bad()),
            };
            ncp_core::spec::forward_port(&fp)
                .map_err(|(_, why)| CliError::Usage(format!("--port {spec}: '{p}': {why}")))?;
            Ok(fp)
        })
        .collect()
}

/// The recipe the flags give (None: none given).
fn recipe_of(ctx: &Ctx, n: &str, s: &SourceArgs, args: Args) -> Result<Option<Recipe>> {
    if let Some(f) = &s.flake {
        let (flake, attr) = flake_ref(f)?;
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
    let Some(module) = config_module(n, s)? else {
        return Ok(None);
    };
    Recipes::new(&ctx.roots).write_module(n, &module)?;
    Ok(Some(Recipe::Config {
        nixos_path: nixos_path(s)?,
        args,
    }))
}

/// The configuration module --config or --config-file give (None:
/// neither), as nixos-container's generated configuration.nix.
pub fn config_module(n: &str, s: &SourceArgs) -> Result<Option<String>> {
    let body = match (&s.config, &s.config_file) {
        (Some(text), _) => text.clone(),
        (None, Some(f)) => {
            let abs = std::fs::canonicalize(f)
                .map_err(|e| CliError::Usage(format!("--config-file {}: {e}", f.display())))?;
            format!(
                "imports = [ {} ];",
                serde_json::to_string(&abs.display().to_string())
                    .unwrap_or_default()
                    .replace("${", "\\${")
            )
        }
        (None, None) => return Ok(None),
    };
    Ok(Some(format!(
        "# Written by `nix-container create/update {n}`; edit it and run `nix-container update {n}`.\n\
         {{ config, lib, pkgs, ... }}:\n{{\n  networking.useDHCP = false;\n  {body}\n}}\n"
    )))
}

/// --flake REF#ATTR: the flake (a local one made absolute) and the
/// configuration's name.
pub fn flake_ref(f: &str) -> Result<(String, String)> {
    // As nixos-container: REF#ATTR, ATTR defaulting to "container".
    let (flake, attr) = match f.rsplit_once('#') {
        Some((r, a)) => (r.to_owned(), a.to_owned()),
        None => (f.to_owned(), DEFAULT_ATTR.to_owned()),
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
    Ok((flake, attr))
}

/// --nixos-path, made absolute (it is kept in the recipe for `update`).
pub fn nixos_path(s: &SourceArgs) -> Result<Option<String>> {
    s.nixos_path
        .as_ref()
        .map(|p| {
            std::fs::canonicalize(p)
                .map(|a| a.display().to_string())
                .map_err(|e| CliError::Usage(format!("--nixos-path {p}: {e}")))
        })
        .transpose()
}

/// What create builds: as given, or (neither configuration nor flake nor
/// system) an empty configuration, a minimal container, as nixos-container.
pub fn create_source(a: &CreateArgs) -> SourceArgs {
    let s = &a.source;
    let given =
        s.config_file.is_some() || s.flake.is_some() || s.system_path.is_some() || s.from.is_some();
    SourceArgs {
        config: s.config.clone().or_else(|| (!given).then(String::new)),
        ..s.clone()
    }
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
    let mut args = Args {
        private_network: true,
        auto_start: a.auto_start,
        local_address: Some(local.clone()),
        ..Args::named(&n)
    };
    if let Some(b) = &a.bridge {
        args.host_bridge = Some(b.clone());
    } else {
        args.host_address = Some(host.clone());
    }
    if let Some(p) = &a.port {
        args.forward_ports = parse_ports(p)?;
    }
    let source = create_source(a);
    let recipe = recipe_of(ctx, &n, &source, args)?
        .ok_or_else(|| failed("no configuration, flake or system given"))?;
    let recipes = Recipes::new(&ctx.roots);
    let result = match build(ctx, &n, &recipe, &source) {
        Ok(r) => r,
        Err(e) => {
            let _ = recipes.remove_module(&n);
            return Err(e);
        }
    };
    recipes.save(&n, &recipe)?;
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

/// update NAME…: each container in turn, whatever the others did; with
/// several, a failure is said and the next one is done.
pub fn update(ctx: &Ctx, a: &UpdateArgs) -> Result<()> {
    check_flags(&a.source.nix)?;
    if let [one] = a.names.as_slice() {
        return update_one(ctx, one, &a.source, a.json, a.json).map(|_| ());
    }
    let mut results = Vec::new();
    let mut failed_names = Vec::new();
    for n in &a.names {
        match update_one(ctx, n, &a.source, a.json, false) {
            Ok(r) => results.push(r),
            Err(e) => {
                eprintln!("nix-container: {e}");
                failed_names.push(n.as_str());
            }
        }
    }
    if a.json {
        print_json(&results)?;
    }
    if failed_names.is_empty() {
        Ok(())
    } else {
        Err(failed(format!(
            "{} of {} containers failed: {}",
            failed_names.len(),
            a.names.len(),
            failed_names.join(", ")
        )))
    }
}

/// One container of update: rebuilt, recorded, applied if running; the
/// plugin's result (printed as JSON before it is applied when `print`).
fn update_one(
    ctx: &Ctx,
    name: &str,
    source: &SourceArgs,
    json: bool,
    print: bool,
) -> Result<serde_json::Value> {
    let c = ctx.container(name)?;
    let n = c.name().to_owned();

    let recipes = Recipes::new(&ctx.roots);
    let old = recipes.read(&n)?;
    let args = match &old {
        Some(r) => r.args().clone(),
        None => Args::named(&n),
    };
    // A flag not given keeps what was recorded: the module (re-read, as
    // edited), the flake, the nixpkgs it was evaluated with.
    let recorded_nixos = match &old {
        Some(Recipe::Config { nixos_path, .. }) => nixos_path.clone(),
        _ => None,
    };
    let recipe = match (recipe_of(ctx, &n, source, args)?, old) {
        (Some(Recipe::Config { nixos_path, args }), _) => Recipe::Config {
            nixos_path: nixos_path.or(recorded_nixos),
            args,
        },
        (Some(r), _) => r,
        (None, Some(Recipe::Config { args, nixos_path })) => Recipe::Config {
            nixos_path: self::nixos_path(source)?.or(nixos_path),
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
    let result = build(ctx, &n, &recipe, source)?;
    recipes.save(&n, &recipe)?;
    if print {
        print_json(&result)?;
    } else if !json {
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
    Ok(result)
}
