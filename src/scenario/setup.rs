//! Where a run's service comes from ([`Setup`]): rollcheck's own lab and service, the user's
//! compose stack, services already running on the user's swarm, or none (an external target);
//! and what the rest of the run asks of it (its lab, its watched services, its readiness).

use super::plan::*;
use std::path::PathBuf;
use std::time::Duration;

/// Where the service under test comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Setup {
    /// The user deployed the stack themselves; rollcheck only loads it (and runs load-only
    /// steps: exec, http, sleep, wait_http).
    External,
    /// rollcheck's own lab: the service under test behind its edge.
    Lab(Box<LabSetup>),
    /// The user's compose stack, deployed with `docker stack deploy` on rollcheck's lab or
    /// on the user's swarm.
    Stack(Box<StackSetup>),
    /// Services already running on the user's swarm (`[lab] kind = "existing"`, no stack):
    /// the steps act on them by name.
    Existing(Box<ExistingSetup>),
    /// Plain containers on one engine behind rollcheck's nginx (`[lab] kind = "docker"`).
    Docker(Box<super::containers::DockerSetup>),
}

/// Services on an existing swarm that the steps change.
#[derive(Debug, Clone, PartialEq)]
pub struct ExistingSetup {
    /// Full service names, in the order the steps first name them.
    pub services: Vec<String>,
    /// Put each service's spec back as it was before the first step (`[lab] restore`).
    pub restore: bool,
}

/// A compose stack on a lab: its own proxy is the front door.
#[derive(Debug, Clone, PartialEq)]
pub struct StackSetup {
    pub lab: Lab,
    /// The stack name: its services are `<name>_<service>`.
    pub name: String,
    /// Resolved against the scenario's directory, in merge order.
    pub files: Vec<PathBuf>,
    pub compose: super::compose::Compose,
    /// The stack's front door (`edge.service`), stack-local name.
    pub front: Option<String>,
    /// Leave the stack deployed after the run (`[stack] keep`, existing swarms only).
    pub keep: bool,
    /// On a cluster lab: rollcheck's edge on the host in front of the front door's port on
    /// every node that runs tasks (the stack's ports bind on the node containers).
    pub outer: Option<StackOuter>,
}

/// rollcheck's outer edge in front of a stack on the cluster lab.
#[derive(Debug, Clone, PartialEq)]
pub struct StackOuter {
    /// HAProxy or nginx, on a loopback address of the host.
    pub edge: Edge,
    /// The port the stack's front door publishes on each node.
    pub node_port: u16,
}

impl StackSetup {
    /// The compose files, comma-separated, for a person.
    pub fn files_shown(&self) -> String {
        let shown: Vec<String> = self.files.iter().map(|f| f.display().to_string()).collect();
        shown.join(", ")
    }

    /// `app` → `shop_app`, as `docker stack deploy` names it.
    pub fn full_name(&self, service: &str) -> String {
        format!("{}_{service}", self.name)
    }
}

/// A lab, the service rollcheck creates in it and the edge in front: a lab always has both.
#[derive(Debug, Clone, PartialEq)]
pub struct LabSetup {
    pub lab: Lab,
    pub service: Service,
    pub edge: Edge,
}

impl Plan {
    /// The lab the run sets up; `None` for an external target.
    pub fn lab(&self) -> Option<&LabSetup> {
        match &self.setup {
            Setup::Lab(l) => Some(l),
            _ => None,
        }
    }

    pub fn lab_mut(&mut self) -> Option<&mut LabSetup> {
        match &mut self.setup {
            Setup::Lab(l) => Some(l),
            _ => None,
        }
    }

    /// The service under test's name (its tasks are `<name>.<slot>…`); empty when rollcheck
    /// did not create it.
    pub fn service_name(&self) -> &str {
        self.lab().map_or("", |l| l.service.name.as_str())
    }

    /// The `docker` lab's containers and edge, if this is one.
    pub fn docker(&self) -> Option<&super::containers::DockerSetup> {
        match &self.setup {
            Setup::Docker(d) => Some(d),
            _ => None,
        }
    }

    /// The stack the run deploys, if it does.
    pub fn stack(&self) -> Option<&StackSetup> {
        match &self.setup {
            Setup::Stack(s) => Some(s),
            _ => None,
        }
    }

    /// Whether the run works on the user's swarm (`[lab] kind = "existing"`).
    pub fn on_existing_swarm(&self) -> bool {
        let lab = match &self.setup {
            Setup::Stack(s) => Some(&s.lab),
            Setup::Existing(_) => return true,
            _ => None,
        };
        matches!(lab, Some(Lab::Existing { .. }))
    }

    /// The user's running services the steps act on, if that is this run.
    pub fn existing(&self) -> Option<&ExistingSetup> {
        match &self.setup {
            Setup::Existing(e) => Some(e),
            _ => None,
        }
    }

    /// The services watched for tasks and health probes besides the lab's own service: a
    /// stack's (its front door left out: it carries every request) or the existing ones.
    pub fn watched_services(&self) -> Vec<String> {
        match &self.setup {
            Setup::Stack(stack) => stack
                .compose
                .services
                .keys()
                .filter(|s| stack.front.as_deref() != Some(s.as_str()))
                .map(|s| stack.full_name(s))
                .collect(),
            Setup::Existing(e) => e.services.clone(),
            Setup::Docker(d) => d
                .all_containers(&self.steps)
                .iter()
                .map(|c| c.name.clone())
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The nodes of an existing swarm the steps drain or activate, by hostname, once each:
    /// their availability is put back at the end.
    pub fn swarm_nodes(&self) -> Vec<String> {
        let mut nodes: Vec<String> = Vec::new();
        for s in &self.steps {
            if let Action::NodeAvailability { node, .. } = &s.action
                && !nodes.contains(node)
            {
                nodes.push(node.clone());
            }
        }
        nodes
    }

    /// Whether rollcheck sets up a lab (its own service, or a stack) before the load.
    pub fn has_lab(&self) -> bool {
        !matches!(self.setup, Setup::External)
    }

    /// When a lab's front door is ready for load: `[load] ready`, else the load target
    /// answering below 500 for `stable` (a cluster's HAProxy needs its first health checks
    /// past: 3 s).
    pub fn readiness(&self) -> Ready {
        self.load.ready.clone().unwrap_or_else(|| Ready {
            url: self.load.target.clone(),
            status: ReadyStatus::Below500,
            stable: if self.cluster().is_some() {
                Duration::from_secs(3)
            } else {
                Duration::from_secs(1)
            },
            timeout: Duration::from_secs(60),
        })
    }

    /// The multi-node lab's shape, if this is one.
    pub fn cluster(&self) -> Option<(u32, u32, bool)> {
        let lab = match &self.setup {
            Setup::Lab(l) => Some(&l.lab),
            Setup::Stack(s) => Some(&s.lab),
            Setup::External | Setup::Existing(_) | Setup::Docker(_) => None,
        };
        match lab {
            Some(&Lab::SwarmCluster {
                managers,
                workers,
                drain_managers,
            }) => Some((managers, workers, drain_managers)),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Lab {
    /// Single-node Swarm on the local engine.
    SwarmLocal,
    /// Managers and workers as node containers running their own dockerd; at most
    /// [`MAX_MANAGERS`] and [`MAX_WORKERS`] (the lab's fixed addresses).
    SwarmCluster {
        managers: u32,
        workers: u32,
        drain_managers: bool,
    },
    /// The user's swarm, reached through `DOCKER_HOST` (a manager): rollcheck never inits or
    /// leaves it and removes only what it created.
    Existing {
        /// `[lab] node_faults = true`: steps may drain and activate its nodes.
        node_faults: bool,
    },
    /// A plain Docker engine, no orchestrator: containers and an nginx edge (never a swarm).
    Docker,
}
