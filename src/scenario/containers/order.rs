//! The docker lab's containers in file order: what each step leaves each container as
//! (running, signalled, stopped, removed) and which ports are taken, so `check` refuses a
//! step the engine would refuse at run time.

use super::Container;
use crate::scenario::plan::Action;
use std::collections::BTreeMap;

/// The containers started so far in file order, and the ports taken.
pub(super) struct Started {
    pub(super) known: BTreeMap<String, Life>,
    /// port → what publishes it
    pub(super) ports: BTreeMap<u16, String>,
}

/// One container as the steps so far left it.
pub(super) struct Life {
    /// What started it: `[[container]] 1`, `step 3`.
    by: String,
    pub(super) port: u16,
    pub(super) state: State,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum State {
    Running,
    /// Sent a signal that need not stop it (container_kill with SIGHUP, ...).
    Signalled,
    /// Stopped (or SIGKILLed) by this step.
    Stopped(usize),
    Removed(usize),
}

impl Life {
    /// The state `action` (step `index`) leaves this container in, or why it cannot act on
    /// it: each of these failed only at run time, after images were built and the load ran.
    pub(super) fn after(&self, action: &Action, index: usize) -> Result<State, String> {
        match (self.state, action) {
            (State::Removed(by), _) => Err(format!("was removed by step {by}")),
            (State::Running, Action::ContainerRm { .. }) => Err(
                "still runs: stop or kill it first (the engine does not remove a running container)"
                    .into(),
            ),
            (_, Action::ContainerRm { .. }) => Ok(State::Removed(index)),
            (State::Stopped(by), Action::ContainerStop { .. } | Action::ContainerKill { .. }) => {
                Err(format!("was already stopped by step {by}"))
            }
            (State::Stopped(by), Action::ContainerWaitHealthy { .. }) => {
                Err(format!("was stopped by step {by}: it will not become healthy"))
            }
            (_, Action::ContainerStop { .. }) => Ok(State::Stopped(index)),
            (_, Action::ContainerKill { signal, .. }) if signal == "SIGKILL" => {
                Ok(State::Stopped(index))
            }
            (_, Action::ContainerKill { .. }) => Ok(State::Signalled),
            (state, _) => Ok(state),
        }
    }
}

impl Started {
    pub(super) fn start(&mut self, c: &Container, by: String) -> Result<(), String> {
        if let Some(first) = self.known.get(&c.name) {
            return Err(format!(
                "container \"{}\" is already started by {}; give each container its own name",
                c.name, first.by
            ));
        }
        if let Some(holder) = self.ports.get(&c.port) {
            return Err(format!(
                "port {} is already taken by {holder}; the new version needs a port of its own",
                c.port
            ));
        }
        self.ports
            .insert(c.port, format!("container \"{}\"", c.name));
        self.known.insert(
            c.name.clone(),
            Life {
                by,
                port: c.port,
                state: State::Running,
            },
        );
        Ok(())
    }
}
