//! The command line, defined once: parsing, help, shell completions and the
//! man page all come from these definitions (clap, clap_complete,
//! clap_mangen). nixos-container's commands and flags mean what they mean
//! there; the rest is documented here and in the README.

use std::path::PathBuf;

use clap::{Args, CommandFactory, Parser, Subcommand};
use clap_complete::Shell;

use crate::error::{failed, Result};
use crate::runner::RunnerChoice;
use crate::settings_args::SettingArgs;

/// The roots: the plugin's settings (flags made from the core's table, see
/// settings_args.rs), and Nix's own directories.
#[derive(Args, Debug)]
pub struct RootArgs {
    #[command(flatten)]
    pub settings: SettingArgs,
    /// Nix's store (as Nix: NIX_STORE_DIR, default /nix/store)
    #[arg(long, global = true, env = "NIX_STORE_DIR", value_name = "DIR")]
    pub store_dir: Option<String>,
    /// Nix's state directory (as Nix: NIX_STATE_DIR, default /nix/var/nix)
    #[arg(long, global = true, env = "NIX_STATE_DIR", value_name = "DIR")]
    pub nix_state_dir: Option<String>,
    /// Who runs systemd-nspawn: systemd (a unit per container), this tool, or auto
    #[arg(long, global = true, value_enum, default_value = "auto")]
    pub runner: RunnerChoice,
    /// Accepted and ignored, as nixos-container does: its command lines may carry it
    #[arg(long, global = true, value_name = "SIGNAL", hide = true)]
    #[allow(dead_code)] // parsed only so that such command lines work
    pub signal: Option<String>,
    /// Seconds start waits for the container to be ready (default 60, NixOS's
    /// timeoutStartSec), and stop for it to halt before it is killed (default 30)
    #[arg(long, global = true, value_name = "SECONDS")]
    pub timeout: Option<u64>,
}

/// Other hosts to act on, over ssh (target_host.rs), as nixos-rebuild's
/// --target-host.
#[derive(Args, Debug, Default, Clone)]
pub struct TargetArgs {
    /// Run the command on [USER@]HOST over ssh (ssh options: NIX_SSHOPTS); create and
    /// update build here and copy the system there first; apply and update take several
    #[arg(long, global = true, value_name = "[USER@]HOST", action = clap::ArgAction::Append)]
    pub target_host: Vec<String>,
    /// Target hosts from a file, one [USER@]HOST per line ('#' starts a comment)
    #[arg(long, global = true, value_name = "FILE")]
    pub target_hosts_file: Option<PathBuf>,
}

#[derive(Parser, Debug)]
#[command(name = "nix-container", version, about = "NixOS containers prepared by nix-container-plugin: create, start, stop, reload, roll back, log in",
    long_about = None, args_override_self = true)]
#[command(
    after_help = "Exit codes: 0 done, 1 failed, 2 bad arguments, 3 unknown container, \
4 container not running (where one is needed). Roots come from flags, NCP_* variables, then nix.conf \
and NIX_CONFIG (the plugin's settings), then NixOS's layout."
)]
pub struct Cli {
    #[command(flatten)]
    pub roots: RootArgs,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(subcommand)]
    pub command: Cmd,
}

/// Nix's own flags, passed on to `nix` by create and update (as nixos-container does).
#[derive(Args, Debug, Default, Clone)]
pub struct NixFlags {
    /// The plugin to load (default: nix.conf's plugin-files, NCP_PLUGIN, or the one installed beside this program)
    #[arg(long, value_name = "FILE", env = "NCP_PLUGIN")]
    pub plugin: Option<PathBuf>,
    /// A Nix setting for the build: --option NAME VALUE (repeatable)
    #[arg(long, num_args = 2, value_names = ["NAME", "VALUE"], action = clap::ArgAction::Append)]
    pub option: Vec<String>,
    /// Allow impure evaluation
    #[arg(long)]
    pub impure: bool,
    /// Update this flake input (repeatable)
    #[arg(long, value_name = "INPUT", action = clap::ArgAction::Append)]
    pub update_input: Vec<String>,
    /// Use REF for flake input INPUT (repeatable)
    #[arg(long, num_args = 2, value_names = ["INPUT", "REF"], action = clap::ArgAction::Append)]
    pub override_input: Vec<String>,
    /// Commit changes to the flake's lock file
    #[arg(long)]
    pub commit_lock_file: bool,
    /// Do not use flake registries
    #[arg(long)]
    pub no_registries: bool,
    /// Do not allow any updates to the flake's lock file
    #[arg(long)]
    pub no_update_lock_file: bool,
    /// Do not write the flake's lock file
    #[arg(long)]
    pub no_write_lock_file: bool,
    /// Refuse a dirty Git tree
    #[arg(long)]
    pub no_allow_dirty: bool,
    /// Recreate the flake's lock file from scratch
    #[arg(long)]
    pub recreate_lock_file: bool,
    /// Nix's log format (raw, internal-json, bar, bar-with-logs)
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<String>,
}

/// What a container's system is built from (create and update).
#[derive(Args, Debug, Default, Clone)]
pub struct SourceArgs {
    /// The container's NixOS configuration, as the text of a module body
    #[arg(long, value_name = "STRING", conflicts_with_all = ["config_file", "flake", "system_path", "from"])]
    pub config: Option<String>,
    /// The container's NixOS configuration, a file (imported)
    #[arg(long, value_name = "PATH", conflicts_with_all = ["flake", "system_path", "from"])]
    pub config_file: Option<PathBuf>,
    /// nixosConfigurations.ATTR of a flake (ATTR defaults to "container")
    #[arg(long, value_name = "REF#ATTR", conflicts_with_all = ["system_path", "from"])]
    pub flake: Option<String>,
    /// A prebuilt NixOS system (a store path): no evaluation
    #[arg(long, value_name = "PATH", conflicts_with = "from")]
    pub system_path: Option<String>,
    /// The current system of another container: one system, many containers
    #[arg(long, value_name = "CONTAINER")]
    pub from: Option<String>,
    /// nixpkgs' nixos directory whose lib/eval-config.nix evaluates --config (default <nixpkgs/nixos>)
    #[arg(long, value_name = "PATH")]
    pub nixos_path: Option<String>,
    #[command(flatten)]
    pub nix: NixFlags,
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    pub name: String,
    #[command(flatten)]
    pub source: SourceArgs,
    /// If NAME is taken, append -0, -1, … until it is not; print the name used
    #[arg(long)]
    pub ensure_unique_name: bool,
    /// Start it at boot (and at `apply --all`)
    #[arg(long)]
    pub auto_start: bool,
    /// Put the host side of its veth into this bridge
    #[arg(long, value_name = "IFACE")]
    pub bridge: Option<String>,
    /// Forward ports: [PROTOCOL:]HOSTPORT[:CONTAINERPORT],… (as systemd-nspawn --port)
    #[arg(long, value_name = "PORTS")]
    pub port: Option<String>,
    /// The host side's address (with --local-address; default: a free 10.233.N.1; none with --bridge)
    #[arg(long, value_name = "ADDRESS", conflicts_with = "bridge")]
    pub host_address: Option<String>,
    /// The container's address (with --host-address or --bridge; default: 10.233.N.2)
    #[arg(long, value_name = "ADDRESS")]
    pub local_address: Option<String>,
    /// Print the result (containerProfile's) as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct UpdateArgs {
    /// The containers (each rebuilt from its own record, or all from the system the flags give)
    #[arg(required = true)]
    pub names: Vec<String>,
    /// (Without any) what it was created from, again
    #[command(flatten)]
    pub source: SourceArgs,
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// The containers' names, one per line (as nixos-container); --long: state, generation, system
    List {
        #[arg(long, short)]
        long: bool,
        #[arg(long)]
        json: bool,
    },
    /// Build a container's system through the plugin and prepare the container
    Create(CreateArgs),
    /// Rebuild containers' systems (each from what it was created from, or anew) and apply them
    Update(UpdateArgs),
    /// Stop a container and remove its root, conf, profile and GC roots (none: nothing to do)
    Destroy { name: String },
    /// Start a container (idempotent)
    Start { name: String },
    /// Halt a container: SIGRTMIN+3 to its init, at most --timeout, then SIGKILL (idempotent)
    Stop { name: String },
    /// Kill a container at once
    Terminate { name: String },
    /// Stop, then start a container
    Restart { name: String },
    /// "up" or "down", "gone" for an unknown one (as nixos-container); --long or --json: everything known
    Status {
        name: String,
        #[arg(long, short)]
        long: bool,
        #[arg(long)]
        json: bool,
    },
    /// Log in to a running container (its login program, on a terminal of its own)
    Login { name: String },
    /// A root login shell in a running container
    RootLogin { name: String },
    /// Run a command in a running container: run NAME -- CMD…; exits with its code
    Run {
        name: String,
        #[arg(last = true)]
        command: Vec<String>,
    },
    /// The container's (local) IP address
    ShowIp {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// The container's SSH host key (ed25519, else ecdsa)
    ShowHostKey { name: String },
    /// Activate the profile's system in the running container, without a reboot
    Reload { name: String },
    /// Do what the last profile or conf change needs: nothing, reload, restart, start, stop or retire
    Apply {
        /// Containers to apply to.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        names: Vec<String>,
        /// Every container under the roots (with --declared: those declared, and those no longer)
        #[arg(long)]
        all: bool,
        /// Only say what would be done
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
        /// The containers a configuration declares (comma-separated, may be
        /// empty): acts on these and on those it declared before and no
        /// longer does (stopped, conf removed, state kept), and on no other
        #[arg(long, value_name = "NAMES", value_delimiter = ',', num_args = 0..)]
        declared: Option<Vec<String>>,
    },
    /// Switch the profile to the previous generation (or --to N), then apply
    Rollback {
        name: String,
        #[arg(long, value_name = "N")]
        to: Option<u64>,
        #[arg(long)]
        json: bool,
    },
    /// The generations of a container's system profile
    Generations {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Delete generations as nix-env does: old, +K, Nd or numbers; never the current one
    DeleteGenerations {
        name: String,
        #[arg(required = true)]
        spec: Vec<String>,
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
    /// Wipe a container's state and prepare its root afresh; keeps its conf and generations
    Reset { name: String },
    /// The journal of a running container whose init is systemd (read inside);
    /// otherwise its console log (this tool's runner) or its unit's journal (systemd)
    Logs {
        name: String,
        /// How many lines from the end
        #[arg(short = 'n', long, default_value_t = 50)]
        lines: usize,
        /// Keep printing what is added
        #[arg(short, long)]
        follow: bool,
        /// The console (what systemd-nspawn printed) even when a journal can be read
        #[arg(long)]
        console: bool,
    },
    /// Write a container@.service for hosts that have none (not NixOS)
    InstallUnit {
        #[arg(long, default_value = "/etc/systemd/system")]
        dir: PathBuf,
    },
    /// Print a completion script for a shell
    Completions {
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Print the man page (roff)
    Man,
    /// (In a unit's ExecStart) prepare the root and become systemd-nspawn
    #[command(hide = true)]
    ExecNspawn { name: String },
    /// (In a unit's ExecStartPost) set up a private network's addresses
    #[command(hide = true)]
    NetworkUp { name: String },
    /// (Tests) the ip calls that set up a container's private network, as JSON
    #[command(hide = true)]
    NetworkPlan { name: String },
    /// (Started by `start`) keeps a container's console log and hears its
    /// readiness: console on standard input, notify socket on fd 3
    #[command(hide = true)]
    Monitor { name: String },
    /// (Run over ssh by --target-host) this host's version, nix and plugin, as JSON
    #[command(hide = true)]
    TargetCheck,
}

pub fn completions(shell: Shell) -> Result<()> {
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "nix-container", &mut std::io::stdout());
    Ok(())
}

pub fn man() -> Result<()> {
    clap_mangen::Man::new(Cli::command())
        .render(&mut std::io::stdout())
        .map_err(|e| failed(format!("cannot write the man page: {e}")))
}

impl Cmd {
    /// Whether stdout carries JSON (progress then goes to stderr).
    pub fn json(&self) -> bool {
        match self {
            Cmd::Create(a) => a.json,
            Cmd::Update(a) => a.json,
            Cmd::List { json, .. }
            | Cmd::Status { json, .. }
            | Cmd::ShowIp { json, .. }
            | Cmd::Apply { json, .. }
            | Cmd::Rollback { json, .. }
            | Cmd::Generations { json, .. }
            | Cmd::DeleteGenerations { json, .. } => *json,
            Cmd::NetworkPlan { .. } | Cmd::TargetCheck => true,
            _ => false,
        }
    }
}
