//! A user's compose stack on the lab, deployed with the real `docker stack deploy`: the
//! docker CLI is the reference implementation of compose → Swarm, and bollard has no call
//! for it. rollcheck adds one compose file of its own after the user's: the run's labels on
//! every service and its containers, so the run's teardown finds them like everything else.
//! Networks, configs and secrets are not relabelled: the CLI merges a top-level entry whole,
//! so a labels-only entry would replace the user's (`external: true`, a config's `file`).
//! They carry the stack's own namespace label, and the teardown removes the stack's by it —
//! a stack of that name that rollcheck did not deploy is refused before anything is done.

use super::{Driver, DriverError, LABEL_MANAGED};
use crate::clock::Clock;
use crate::event::{Event, EventSink};
use crate::scenario::StackSetup;
use crate::scenario::compose::Compose;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The stack as deployed.
#[derive(Debug, Clone)]
pub struct StackHandle {
    pub name: String,
    /// Full Swarm names (`shop_app`), as last deployed.
    pub services: Vec<String>,
    /// rollcheck's labels file, deployed after the user's files.
    pub labels_file: PathBuf,
}

/// Docker's label for a stack's objects.
pub(crate) const NAMESPACE: &str = "com.docker.stack.namespace";
/// How long a stack's services may take to converge.
const CONVERGE: Duration = Duration::from_secs(180);

impl Driver {
    /// Deploys the stack and waits until every service has converged. `dir` receives
    /// rollcheck's labels file (it is part of the run's record).
    pub async fn deploy_stack(
        &self,
        stack: &StackSetup,
        dir: &Path,
        clock: &Clock,
        events: &EventSink,
    ) -> Result<StackHandle, DriverError> {
        if matches!(stack.lab, crate::scenario::Lab::Existing { .. }) {
            self.ensure_manager().await?;
        } else {
            self.ensure_swarm().await?;
        }
        self.refuse_foreign_stack(&stack.name).await?;
        let labels_file = dir.join("stack-labels.yml");
        let mut handle = StackHandle {
            name: stack.name.clone(),
            services: Vec::new(),
            labels_file,
        };
        self.redeploy_stack(
            &mut handle,
            &stack.files,
            &stack.compose,
            true,
            clock,
            events,
        )
        .await?;
        Ok(handle)
    }

    /// `docker stack deploy` with `files` (then rollcheck's labels), and, if `converge`,
    /// convergence of every service.
    pub async fn redeploy_stack(
        &self,
        handle: &mut StackHandle,
        files: &[PathBuf],
        compose: &Compose,
        converge: bool,
        clock: &Clock,
        events: &EventSink,
    ) -> Result<String, DriverError> {
        std::fs::write(
            &handle.labels_file,
            labels_yaml(compose, &self.labels("stack")),
        )
        .map_err(|e| DriverError::Stack(format!("{}: {e}", handle.labels_file.display())))?;
        let mut cmd = tokio::process::Command::new("docker");
        // The engine this driver talks to (a cluster node's socket, or DOCKER_HOST's), not
        // whatever context the CLI would pick.
        cmd.env("DOCKER_HOST", self.socket())
            .args(["stack", "deploy", "--resolve-image", "never"]);
        for f in files.iter().chain(std::iter::once(&handle.labels_file)) {
            cmd.arg("--compose-file").arg(f);
        }
        cmd.arg(&handle.name).kill_on_drop(true);
        let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
            .await
            .map_err(|_| {
                DriverError::Stack("docker stack deploy did not finish within 120s".into())
            })?
            .map_err(|e| DriverError::Stack(format!("docker stack deploy: {e}")))?;
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let _ = events.send(Event::note(
                clock.now(),
                "stack_deploy",
                &handle.name,
                line.trim(),
            ));
        }
        if !out.status.success() {
            return Err(DriverError::Stack(format!(
                "docker stack deploy {} failed ({}): {}",
                handle.name,
                out.status,
                text.trim()
            )));
        }
        handle.services = compose
            .services
            .keys()
            .map(|s| format!("{}_{s}", handle.name))
            .collect();
        if !converge {
            return Ok(format!("deployed {}", handle.services.join(", ")));
        }
        let mut summary = Vec::new();
        for service in &handle.services {
            let done = self.wait_converged(service, CONVERGE, None).await?;
            summary.push(format!("{service}: {}", done.summary()));
        }
        Ok(summary.join("; "))
    }

    /// Removes what the stack created that the run's label does not mark (its networks,
    /// configs, secrets), by the stack's namespace label: only for a stack this run deployed.
    pub async fn remove_stack(&self, name: &str) -> Result<(), DriverError> {
        self.remove_labelled(&format!("{NAMESPACE}={name}")).await
    }

    /// A stack by this name that rollcheck did not deploy is the user's: never touched.
    async fn refuse_foreign_stack(&self, name: &str) -> Result<(), DriverError> {
        let services = self
            .labelled_services(&format!("{NAMESPACE}={name}"))
            .await?;
        let foreign: Vec<String> = services
            .iter()
            .filter(|s| {
                !s.spec
                    .as_ref()
                    .and_then(|spec| spec.labels.as_ref())
                    .is_some_and(|l| l.contains_key(LABEL_MANAGED))
            })
            .filter_map(|s| s.spec.as_ref()?.name.clone())
            .collect();
        if !foreign.is_empty() {
            return Err(DriverError::ForeignStack(format!(
                "a stack named \"{name}\" is already deployed ({}) and rollcheck did not create it: choose another [stack] name, or remove it with `docker stack rm {name}`",
                foreign.join(", ")
            )));
        }
        // No service of the stack is left, but its networks, configs or secrets are: they
        // carry only the stack's label, so they cannot be told to be rollcheck's, and the
        // teardown would remove them by that label. Someone else's: refused.
        let left = if services.is_empty() {
            self.labelled_objects(&format!("{NAMESPACE}={name}"))
                .await?
        } else {
            Vec::new()
        };
        if left.is_empty() {
            return Ok(());
        }
        Err(DriverError::ForeignStack(format!(
            "objects of a stack named \"{name}\" exist ({}) with no service of it: rollcheck would remove them at the end, so it refuses; choose another [stack] name, or remove them yourself",
            left.join(", ")
        )))
    }
}

/// The CLI is there and new enough to deploy stacks (Debian's docker.io 20.10 is the floor).
/// Checked before anything is built or deployed.
pub async fn cli_version() -> Result<String, DriverError> {
    const HOW: &str = "install it (Debian: apt-get install docker.io; elsewhere docker-ce-cli)";
    let out = tokio::process::Command::new("docker")
        .args(["version", "--format", "{{.Client.Version}}"])
        .output()
        .await
        .map_err(|e| {
            DriverError::Stack(format!(
                "the docker CLI is needed for `docker stack deploy` and could not run ({e}): {HOW}"
            ))
        })?;
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    match cli_at_least(&version, (20, 10)) {
        Some(true) => Ok(version),
        _ => Err(DriverError::Stack(format!(
            "`docker stack deploy` needs the docker CLI 20.10 or newer, found \"{version}\": {HOW}"
        ))),
    }
}

/// `28.2.2`, `20.10.24+dfsg1` → whether it is at least `floor`; `None` if unreadable.
fn cli_at_least(version: &str, floor: (u32, u32)) -> Option<bool> {
    let mut parts = version.split(|c: char| !c.is_ascii_digit());
    let major: u32 = parts.next()?.parse().ok()?;
    let minor: u32 = parts.next()?.parse().ok()?;
    Some((major, minor) >= floor)
}

/// rollcheck's compose file: the run's labels on what the stack declares. Every service gets
/// them on itself (`deploy.labels`) and on its containers (`labels`).
fn labels_yaml(compose: &Compose, labels: &std::collections::HashMap<String, String>) -> String {
    let mut sorted: Vec<(&String, &String)> = labels.iter().collect();
    sorted.sort();
    let block = |indent: &str| {
        sorted
            .iter()
            .map(|(k, v)| format!("{indent}{k}: \"{v}\"\n"))
            .collect::<String>()
    };
    let mut y = String::from(
        "# Written by rollcheck: its labels on what this stack creates, for its cleanup.\nversion: \"3.8\"\nservices:\n",
    );
    for name in compose.services.keys() {
        y.push_str(&format!(
            "  {name}:\n    labels:\n{}    deploy:\n      labels:\n{}",
            block("      "),
            block("        ")
        ));
    }
    y
}

#[cfg(test)]
mod tests {
    #[test]
    fn cli_versions_against_the_floor() {
        use super::cli_at_least;
        assert_eq!(cli_at_least("28.2.2", (20, 10)), Some(true));
        assert_eq!(cli_at_least("20.10.24+dfsg1", (20, 10)), Some(true));
        assert_eq!(cli_at_least("19.03.15", (20, 10)), Some(false));
        assert_eq!(cli_at_least("", (20, 10)), None);
    }

    use super::*;

    #[test]
    fn labels_file_labels_every_service_and_nothing_else() {
        let compose = crate::scenario::compose::Compose {
            services: [("app", "example/app:1"), ("web", "example/web:1")]
                .into_iter()
                .map(|(n, i)| {
                    (
                        n.to_string(),
                        crate::scenario::compose::ComposeService {
                            image: i.into(),
                            publishes: false,
                            published: Vec::new(),
                        },
                    )
                })
                .collect(),
            networks: vec!["front".into()],
            configs: vec!["nginx_conf".into()],
            secrets: Vec::new(),
        };
        let labels =
            std::collections::HashMap::from([("rollcheck.run".to_string(), "r1".to_string())]);
        let y = labels_yaml(&compose, &labels);
        let parsed: serde_json::Value = serde_saphyr::from_str(&y).unwrap();
        assert_eq!(
            parsed["services"]["app"]["deploy"]["labels"]["rollcheck.run"],
            "r1"
        );
        assert_eq!(parsed["services"]["web"]["labels"]["rollcheck.run"], "r1");
        // Top-level entries merge whole in the CLI: a labels-only one would replace the user's.
        for section in ["networks", "configs", "secrets"] {
            assert!(parsed.get(section).is_none(), "{section}");
        }
    }
}
