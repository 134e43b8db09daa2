//! The one place that decides what state a container is in. A command
//! probes once and decides on that probe; `status`, `list`, `start`,
//! `stop`, `apply` and the rest read the same answer.
//!
//! stopped    no systemd-nspawn of it runs
//! starting   its systemd-nspawn runs, but it is not ready yet: no init yet,
//!            or the init has not said READY=1 (systemd), or its unit is
//!            activating
//! running    ready: READY=1 heard (its init is systemd: NixOS's
//!            Type=notify), or its init runs (an init that does not notify)
//! degraded   running, and systemd inside says "degraded" (asked only by
//!            `status --long/--json` and `list --long/--json`)
//! stopping   a stop is under way
//! foreign    a systemd-nspawn of that machine name that neither this tool
//!            nor its units started: left alone

use serde::Serialize;

use crate::container::Container;
use crate::enter::Command;
use crate::identity::Process;
pub use crate::readiness::Readiness;
use crate::runner::{Runner, UnitPhase};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    Stopped,
    Starting,
    Running,
    Degraded,
    Stopping,
    Foreign,
}

impl State {
    pub fn word(self) -> &'static str {
        match self {
            State::Stopped => "stopped",
            State::Starting => "starting",
            State::Running => "running",
            State::Degraded => "degraded",
            State::Stopping => "stopping",
            State::Foreign => "foreign",
        }
    }

    /// Something of it runs: it holds its root, it has (or will have) the
    /// conf it started with.
    pub fn occupied(self) -> bool {
        self != State::Stopped
    }

    /// Ready and ours.
    pub fn up(self) -> bool {
        matches!(self, State::Running | State::Degraded)
    }
}

/// How long systemd inside gets to say how it is (its own systemctl: the
/// container's program, which may never answer).
const INSIDE_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

/// What one probe found.
pub struct Probe {
    pub state: State,
    /// Its systemd-nspawn, proved (ours or our unit's).
    pub nspawn: Option<Process>,
    /// Its init, proved.
    pub leader: Option<Process>,
    /// Another tool's systemd-nspawn of that name.
    pub foreign: Option<i32>,
}

impl Probe {
    /// The host's view: processes, records, the unit.
    pub fn of(c: &Container) -> Probe {
        let view = c.ctx.runner.view(&c.instance());
        let leader = view.nspawn.as_ref().and_then(|n| n.leader());
        let foreign = if view.nspawn.is_none() {
            crate::identity::foreign_nspawn(c.name(), None)
        } else {
            None
        };
        let records = c.records();
        let state = match (&view.nspawn, &c.ctx.runner) {
            (None, _) if foreign.is_some() => State::Foreign,
            (None, _) => State::Stopped,
            (Some(_), Runner::Systemd { .. }) => match view.phase {
                Some(UnitPhase::Deactivating) => State::Stopping,
                Some(UnitPhase::Active) if leader.is_some() => State::Running,
                _ => State::Starting,
            },
            (Some(_), Runner::Direct) => {
                if records.stopping() {
                    State::Stopping
                } else if leader.is_some()
                    && (records.ready()
                        || c.active_system().map(|s| Readiness::of(&s)) == Some(Readiness::Init))
                {
                    State::Running
                } else {
                    State::Starting
                }
            }
        };
        Probe {
            state,
            nspawn: view.nspawn,
            leader,
            foreign,
        }
    }

    /// systemd's own view inside (`systemctl is-system-running`), for a
    /// running container whose init is systemd; `degraded` there makes the
    /// state degraded. None when it was not asked or could not answer.
    pub fn inside(&mut self, c: &Container) -> Option<String> {
        if !self.state.up() {
            return None;
        }
        let system = c.active_system().or_else(|| c.profile_system())?;
        if Readiness::of(&system) != Readiness::Notify {
            return None;
        }
        let leader = self.leader.as_ref()?;
        let target = crate::enter::Target::of(c.name(), leader.duplicate()?).ok()?;
        // It exits non-zero for every state but running: the word counts.
        let (_, out) = target
            .output(
                &Command {
                    argv: vec!["systemctl".into(), "is-system-running".into()],
                    env: crate::enter::environment(Some(&system)),
                    cwd: "/".into(),
                    pty: false,
                },
                INSIDE_LIMIT,
            )
            .ok()?;
        let said = out.trim().to_owned();
        if said == "degraded" {
            self.state = State::Degraded;
        }
        (!said.is_empty()).then_some(said)
    }
}
