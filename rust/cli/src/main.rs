//! nix-container: the runtime side of nix-container-plugin, and a
//! replacement for nixos-container (same commands, flags and parsed
//! output). Creates and updates containers through the plugin (a `nix`
//! evaluation calling builtins.containerProfile), starts, stops, reloads,
//! applies profile changes to, rolls back, resets and destroys them. No Nix
//! linkage: profiles are read and switched with Nix's own on-disk rules and
//! lock.

mod cli;
mod commands;
mod container;
mod enter;
mod error;
mod identity;
mod monitor;
mod network;
mod output;
mod pty;
mod readiness;
mod records;
mod runner;
mod state;

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use ncp_core::layout::{Roots, Settings};

use cli::{Cli, Cmd, RootArgs};
use container::Ctx;
use error::{CliError, Result};
use runner::Runner;

/// The plugin's settings the CLI also reads from Nix's configuration
/// (nix.conf, NIX_CONFIG), where a flag or NCP_* variable does not give them.
const NIX_CONF_KEYS: &[&str] = &[
    "container-state-dir",
    "container-config-dir",
    "container-profiles-dir",
    "container-gcroots-dir",
    "container-run-dir",
    "container-legacy-layout",
    "container-lock-timeout",
];

fn ctx(r: &RootArgs) -> Result<Ctx> {
    let conf = ncp_core::nixconf::read(NIX_CONF_KEYS, &|k| std::env::var(k).ok());
    let pick = |flag: &Option<String>, key: &str| {
        flag.clone()
            .or_else(|| conf.get(key).cloned())
            .unwrap_or_default()
    };
    let legacy = match r.container_legacy_layout {
        Some(b) => b,
        None => match conf.get("container-legacy-layout") {
            None => false,
            Some(v) => ncp_core::nixconf::parse_bool(v).ok_or_else(|| {
                CliError::Usage(format!(
                    "nix.conf: container-legacy-layout = {v}: not a boolean"
                ))
            })?,
        },
    };
    let lock_timeout = match r.container_lock_timeout {
        Some(n) => n,
        None => match conf.get("container-lock-timeout") {
            None => ncp_core::layout::DEFAULT_LOCK_TIMEOUT_SECS,
            Some(v) => v.parse().map_err(|_| {
                CliError::Usage(format!(
                    "nix.conf: container-lock-timeout = {v}: not a number of seconds"
                ))
            })?,
        },
    };
    let s = |o: &Option<String>| o.clone().unwrap_or_default();
    let roots = Roots::resolve(&Settings {
        store_dir: s(&r.store_dir),
        nix_state_dir: s(&r.nix_state_dir),
        state_dir: pick(&r.container_state_dir, "container-state-dir"),
        config_dir: pick(&r.container_config_dir, "container-config-dir"),
        profiles_dir: pick(&r.container_profiles_dir, "container-profiles-dir"),
        gcroots_dir: pick(&r.container_gcroots_dir, "container-gcroots-dir"),
        run_dir: pick(&r.container_run_dir, "container-run-dir"),
        legacy_layout: legacy,
        lock_timeout_secs: lock_timeout,
    })
    .map_err(|e| CliError::Usage(e.to_string()))?;
    Ok(Ctx {
        runner: Runner::detect(r.runner, &roots),
        legacy_layout: legacy,
        roots,
        start_timeout: r
            .timeout
            .map_or(container::START_TIMEOUT, Duration::from_secs),
        stop_timeout: r
            .timeout
            .map_or(container::STOP_TIMEOUT, Duration::from_secs),
        lock_timeout: Duration::from_secs(lock_timeout),
    })
}

fn run(cli: Cli) -> Result<u8> {
    // Commands that need no container roots.
    match &cli.command {
        Cmd::Completions { shell } => return cli::completions(*shell).map(|()| 0),
        Cmd::Man => return cli::man().map(|()| 0),
        _ => {}
    }
    let ctx = ctx(&cli.roots)?;
    let c = |n: &str| ctx.container(n);
    match &cli.command {
        Cmd::List { long, json } => commands::list(&ctx, *long, *json)?,
        Cmd::Create(a) => commands::create(&ctx, a)?,
        Cmd::Update(a) => commands::update(&ctx, a)?,
        Cmd::Destroy { name } => match c(name) {
            // As nixos-container: nothing to destroy is not an error.
            Err(CliError::Unknown { .. }) => say!("{name}: no such container; nothing to destroy"),
            r => commands::destroy(&r?)?,
        },

        Cmd::Start { name } => commands::start(&c(name)?)?,
        Cmd::Stop { name } => commands::stop(&c(name)?)?,
        Cmd::Terminate { name } => commands::terminate(&c(name)?)?,
        Cmd::Restart { name } => commands::restart(&c(name)?)?,
        Cmd::Status { name, long, json } => commands::status(&ctx, name, *long, *json)?,

        Cmd::Login { name } => return commands::login(&c(name)?),
        Cmd::RootLogin { name } => return commands::root_login(&c(name)?),
        Cmd::Run { name, command } => return commands::run(&c(name)?, command),
        Cmd::ShowIp { name, json } => commands::show_ip(&c(name)?, *json)?,
        Cmd::ShowHostKey { name } => return commands::show_host_key(&c(name)?),
        Cmd::Reload { name } => commands::reload(&c(name)?)?,
        Cmd::Apply {
            names,
            dry_run,
            json,
            declared,
            ..
        } => {
            let declared: Option<Vec<String>> = declared
                .as_ref()
                .map(|d| d.iter().filter(|n| !n.is_empty()).cloned().collect());
            commands::apply(&ctx, names, declared.as_deref(), *dry_run, *json)?
        }
        Cmd::Rollback { name, to, json } => commands::rollback(&c(name)?, *to, *json)?,
        Cmd::Generations { name, json } => commands::generations(&c(name)?, *json)?,
        Cmd::DeleteGenerations {
            name,
            spec,
            dry_run,
            json,
        } => commands::delete_generations(&c(name)?, spec, *dry_run, *json)?,
        Cmd::Reset { name } => commands::reset(&c(name)?)?,
        Cmd::Logs {
            name,
            lines,
            follow,
            console,
        } => return commands::logs(&c(name)?, *lines, *follow, *console),
        Cmd::InstallUnit { dir } => commands::install_unit(dir)?,
        Cmd::ExecNspawn { name } => return Err(commands::exec_nspawn(&c(name)?)),
        Cmd::NetworkUp { name } => commands::network_up(&c(name)?)?,
        Cmd::NetworkPlan { name } => commands::network_plan(&c(name)?)?,
        Cmd::Monitor { name } => monitor::run(&c(name)?.records())?,
        Cmd::Completions { .. } | Cmd::Man => {}
    }
    Ok(error::code::OK)
}

fn main() -> ExitCode {
    // Like other Unix tools, end quietly when our reader goes away
    // (`nix-container status | head`) instead of panicking on EPIPE.
    // SAFETY: setting a signal's disposition to its default.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let cli = Cli::parse();
    output::init_color();
    output::set_json(cli.command.json());

    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!(
                "{}: {e}",
                output::paint("nix-container", output::Color::Red)
            );
            e.exit_code()
        }
    }
}
