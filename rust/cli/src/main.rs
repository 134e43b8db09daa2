//! nix-container: the runtime side of nix-container-plugin, and a
//! replacement for nixos-container (same commands, flags and parsed
//! output). Creates and updates containers through the plugin (a `nix`
//! evaluation calling builtins.containerProfile), starts, stops, reloads,
//! applies profile changes to, rolls back, resets and destroys them. No Nix
//! linkage: profiles are read and switched with Nix's own on-disk rules and
//! lock.

mod cgroup;
mod cli;
mod commands;
mod container;
mod enter;
mod error;
mod identity;
mod monitor;
mod network;
mod nix_command;
mod output;
mod pty;
mod readiness;
mod recipe;
mod records;
mod runner;
mod settings_args;
mod state;
mod target_host;

use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches};
use ncp_core::layout::Roots;

use cli::{Cli, Cmd, RootArgs};
use container::Ctx;
use error::{CliError, Result};
use runner::Runner;

fn ctx(r: &RootArgs) -> Result<Ctx> {
    let mut settings = r
        .settings
        .resolve(&|keys| ncp_core::nixconf::read(keys, &|k| std::env::var(k).ok()))
        .map_err(CliError::Usage)?;
    settings.store_dir = r.store_dir.clone().unwrap_or_default();
    settings.nix_state_dir = r.nix_state_dir.clone().unwrap_or_default();
    let roots = Roots::resolve(&settings).map_err(|e| CliError::Usage(e.to_string()))?;
    Ok(Ctx {
        runner: Runner::detect(r.runner, &roots),
        lock_timeout: settings.lock_timeout(),
        settings,
        roots,
        start_timeout: r
            .timeout
            .map_or(container::START_TIMEOUT, Duration::from_secs),
        stop_timeout: r
            .timeout
            .map_or(container::STOP_TIMEOUT, Duration::from_secs),
    })
}

fn run(cli: Cli, matches: &clap::ArgMatches) -> Result<u8> {
    let targets = target_host::targets(&cli.target)?;
    if !targets.is_empty() {
        return target_host::run(&cli.command, matches, &targets);
    }
    // Commands that need no container roots.
    match &cli.command {
        Cmd::Completions { shell } => return cli::completions(*shell).map(|()| 0),
        Cmd::Man => return cli::man().map(|()| 0),
        Cmd::TargetCheck => return target_host::check_here().map(|()| 0),
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
        Cmd::Monitor { name } => {
            monitor::run(&c(name)?.records())?;
            // systemd-nspawn has exited: its cgroups are empty (cgroup.rs).
            cgroup::remove(name);
        }
        Cmd::Completions { .. } | Cmd::Man | Cmd::TargetCheck => {}
    }
    Ok(error::code::OK)
}

fn main() -> ExitCode {
    // Like other Unix tools, end quietly when our reader goes away
    // (`nix-container status | head`) instead of panicking on EPIPE.
    // SAFETY: setting a signal's disposition to its default.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    output::init_color();
    output::set_json(cli.command.json());

    match run(cli, &matches) {
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
