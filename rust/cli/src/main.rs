//! nix-container: the runtime side of nix-container-plugin. Starts, stops,
//! reloads, applies profile changes to, rolls back and destroys containers
//! that builtins.containerProfile prepared. No Nix linkage: profiles are
//! read and switched with Nix's own on-disk rules and lock.

mod commands;
mod container;
mod enter;
mod error;
mod identity;
mod network;
mod output;
mod pty;
mod runner;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use ncp_core::layout::{Roots, Settings};

use container::Ctx;
use error::{CliError, Result};
use runner::{Runner, RunnerChoice};

/// The roots, named as the plugin's settings are (and defaulting alike).
#[derive(Args, Debug)]
struct RootArgs {
    /// Container roots (default /var/lib/nixos-containers).
    #[arg(
        long,
        global = true,
        env = "NCP_CONTAINER_STATE_DIR",
        value_name = "DIR"
    )]
    container_state_dir: Option<String>,
    /// Conf files (default /etc/nixos-containers).
    #[arg(
        long,
        global = true,
        env = "NCP_CONTAINER_CONFIG_DIR",
        value_name = "DIR"
    )]
    container_config_dir: Option<String>,
    /// Per-container profiles (default NIX_STATE_DIR/profiles/per-container).
    #[arg(
        long,
        global = true,
        env = "NCP_CONTAINER_PROFILES_DIR",
        value_name = "DIR"
    )]
    container_profiles_dir: Option<String>,
    /// Per-container GC roots (default NIX_STATE_DIR/gcroots/per-container).
    #[arg(
        long,
        global = true,
        env = "NCP_CONTAINER_GCROOTS_DIR",
        value_name = "DIR"
    )]
    container_gcroots_dir: Option<String>,
    /// Pid files, console logs and the conf each container started with
    /// (default /run/nix-container).
    #[arg(long, global = true, env = "NCP_CONTAINER_RUN_DIR", value_name = "DIR")]
    container_run_dir: Option<String>,
    /// The layout of NixOS before 22.05 (/var/lib/containers, /etc/containers).
    #[arg(long, global = true, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    container_legacy_layout: Option<bool>,
    /// Nix's store (as Nix: NIX_STORE_DIR, default /nix/store).
    #[arg(long, global = true, env = "NIX_STORE_DIR", value_name = "DIR")]
    store_dir: Option<String>,
    /// Nix's state directory (as Nix: NIX_STATE_DIR, default /nix/var/nix).
    #[arg(long, global = true, env = "NIX_STATE_DIR", value_name = "DIR")]
    nix_state_dir: Option<String>,
    /// Who runs systemd-nspawn: systemd (container@NAME.service), this tool, or auto.
    #[arg(long, global = true, value_enum, default_value = "auto")]
    runner: RunnerChoice,
    /// Seconds start waits for the init, and stop for it to halt before
    /// it is killed.
    #[arg(long, global = true, default_value_t = 30)]
    timeout: u64,
    /// Seconds to wait for a profile lock (held by nix-env, an evaluation, …;
    /// default 60).
    #[arg(long, global = true, value_name = "SECONDS")]
    container_lock_timeout: Option<u64>,
}

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

#[derive(Parser, Debug)]
#[command(name = "nix-container", version, about, long_about = None, args_override_self = true)]
#[command(
    after_help = "Exit codes: 0 done (status: running), 1 failed, 2 bad arguments, \
3 unknown container, 4 container not running."
)]
struct Cli {
    #[command(flatten)]
    roots: RootArgs,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Every container under the roots, with state, generation and system.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Start a container (idempotent).
    Start { name: String },
    /// Halt a container: SIGRTMIN+3 to its init, at most --timeout, then kill (idempotent).
    Stop { name: String },
    /// Kill a container at once (SIGKILL to everything in it).
    Terminate { name: String },
    /// Stop, then start a container.
    Restart { name: String },
    /// Show a container; exits 4 when it is not running.
    Status {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Activate the profile's system inside the running container, without a reboot.
    Reload { name: String },
    /// Do what the last profile or conf change needs: nothing, reload, restart, start or stop.
    Apply {
        /// Containers to apply to.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        names: Vec<String>,
        /// Every container under the roots.
        #[arg(long)]
        all: bool,
        /// Only say what would be done.
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
        /// The containers a configuration declares (comma-separated, may be
        /// empty): apply acts on these and on those it declared before and
        /// no longer does (stopped, conf removed, state kept), and on no other.
        #[arg(long, value_name = "NAMES", value_delimiter = ',', num_args = 0..)]
        declared: Option<Vec<String>>,
    },
    /// Switch the profile to the previous generation (or --to N), then apply.
    Rollback {
        name: String,
        #[arg(long, value_name = "N")]
        to: Option<u64>,
    },
    /// The generations of a container's system profile.
    Generations {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Delete generations as nix-env does: `old`, `+K`, `Nd` or numbers; never the current one.
    DeleteGenerations {
        name: String,
        #[arg(required = true)]
        spec: Vec<String>,
        #[arg(long)]
        dry_run: bool,
    },
    /// Stop a container and remove its root, conf, profile and GC roots.
    Destroy { name: String },
    /// Run a command inside the running container: run NAME -- CMD...
    Run {
        name: String,
        #[arg(last = true)]
        command: Vec<String>,
    },
    /// Write a container@.service for hosts that have none (not NixOS):
    /// systemd then runs containers as NixOS's unit does.
    InstallUnit {
        /// Where to write it.
        #[arg(long, default_value = "/etc/systemd/system")]
        dir: std::path::PathBuf,
    },
    /// (In a unit's ExecStart) prepare the root and become systemd-nspawn.
    #[command(hide = true)]
    ExecNspawn { name: String },
    /// (In a unit's ExecStartPost) set up a private network's addresses.
    #[command(hide = true)]
    NetworkUp { name: String },
    /// (Tests) the `ip` calls that set up a container's private network, as JSON.
    #[command(hide = true)]
    NetworkPlan { name: String },
}

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
        roots,
        timeout: Duration::from_secs(r.timeout),
        lock_timeout: Duration::from_secs(lock_timeout),
    })
}

fn run(cli: Cli) -> Result<u8> {
    let ctx = ctx(&cli.roots)?;
    let c = |n: &str| ctx.container(n);
    match &cli.command {
        Cmd::List { json } => commands::list(&ctx, *json)?,
        Cmd::Start { name } => commands::start(&c(name)?)?,
        Cmd::Stop { name } => commands::stop(&c(name)?)?,
        Cmd::Terminate { name } => commands::terminate(&c(name)?)?,
        Cmd::Restart { name } => commands::restart(&c(name)?)?,
        Cmd::Status { name, json } => commands::status(&c(name)?, *json)?,
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
        Cmd::Rollback { name, to } => commands::rollback(&c(name)?, *to)?,
        Cmd::Generations { name, json } => commands::generations(&c(name)?, *json)?,
        Cmd::DeleteGenerations {
            name,
            spec,
            dry_run,
        } => commands::delete_generations(&c(name)?, spec, *dry_run)?,
        Cmd::Destroy { name } => commands::destroy(&c(name)?)?,
        Cmd::Run { name, command } => return commands::run(&c(name)?, command),
        Cmd::InstallUnit { dir } => commands::install_unit(dir)?,
        Cmd::ExecNspawn { name } => return Err(commands::exec_nspawn(&c(name)?)),
        Cmd::NetworkUp { name } => commands::network_up(&c(name)?)?,
        Cmd::NetworkPlan { name } => {
            let c = c(name)?;
            let (_, conf) = c
                .conf()?
                .ok_or_else(|| error::failed(format!("container '{name}' has no conf file")))?;
            output::print_json(&network::plan(c.name(), &conf))?
        }
    }
    Ok(error::code::OK)
}

fn main() -> ExitCode {
    // Like other Unix tools, end quietly when our reader goes away
    // (`nix-container status | head`) instead of panicking on EPIPE.
    // SAFETY: setting a signal's disposition to its default.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("nix-container: {e}");
            e.exit_code()
        }
    }
}
