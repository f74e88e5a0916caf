//! The agents' Swarm service spec: a replicated job where the engine has jobs (API 1.41),
//! else a replicated service that teardown removes.

use super::AGENT_IMAGE;
use crate::agent::spec::{ENV_NODE, ENV_SLOT, ENV_SPEC, START_DIR, Spec};
use crate::driver::spec::nanos;
use bollard::models::{
    Mount, MountType, NetworkAttachmentConfig, ServiceSpec, ServiceSpecMode,
    ServiceSpecModeReplicated, ServiceSpecModeReplicatedJob, TaskSpec, TaskSpecContainerSpec,
    TaskSpecPlacement, TaskSpecRestartPolicy, TaskSpecRestartPolicyConditionEnum,
};
use std::time::Duration;

/// How the agents run. A Swarm replicated job (API 1.41, Docker 20.10) runs each agent once
/// and never restarts it; on an older engine a replicated service with restart `none` does
/// the same, and teardown removes it with the run's other services.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentMode {
    Job,
    Service,
}

/// `ROLLCHECK_GENERATORS_AS=service` deploys the agents the older engines' way on a new one
/// (for testing that way here).
pub const ENV_MODE: &str = "ROLLCHECK_GENERATORS_AS";

impl AgentMode {
    /// The mode for an engine of API version `api` ("1.41"), unless `forced` to a service.
    pub fn for_engine(api: &str, forced: Option<&str>) -> AgentMode {
        match forced == Some("service") || !api_at_least(api, 41) {
            true => AgentMode::Service,
            false => AgentMode::Job,
        }
    }

    pub(super) fn first_slot(self) -> u32 {
        match self {
            AgentMode::Job => 0,
            AgentMode::Service => 1,
        }
    }
}

/// Whether API version `api` ("1.41") is at least 1.`minor`.
pub(super) fn api_at_least(api: &str, minor: u32) -> bool {
    let mut parts = api.trim().split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    match (parts.next(), parts.next()) {
        (Some(major), _) if major > 1 => true,
        (Some(1), Some(m)) => m >= minor,
        _ => false,
    }
}

/// The job (or service): `of` tasks at once, at most one per node, never restarted (a lost
/// agent is a recorded gap), on the run's network, stopped with time to finish its requests.
/// `caps`: the engine takes added capabilities (API 1.41).
pub(super) fn job_spec(
    name: &str,
    (mode, caps): (AgentMode, bool),
    spec: &Spec,
    placement: &[String],
    network: &str,
    timeout: Duration,
    labels: std::collections::HashMap<String, String>,
) -> ServiceSpec {
    let of = i64::from(spec.of);
    ServiceSpec {
        name: Some(name.to_string()),
        labels: Some(labels.clone()),
        mode: Some(match mode {
            AgentMode::Job => ServiceSpecMode {
                replicated_job: Some(ServiceSpecModeReplicatedJob {
                    max_concurrent: Some(of),
                    total_completions: Some(of),
                }),
                ..Default::default()
            },
            AgentMode::Service => ServiceSpecMode {
                replicated: Some(ServiceSpecModeReplicated { replicas: Some(of) }),
                ..Default::default()
            },
        }),
        task_template: Some(TaskSpec {
            container_spec: Some(TaskSpecContainerSpec {
                image: Some(AGENT_IMAGE.into()),
                // Run labels on the containers too: teardown waits for them, and a check
                // for leftovers on any node finds them.
                labels: Some(labels.clone()),
                command: Some(vec!["/rollcheck".into(), "agent".into()]),
                env: Some(vec![
                    format!(
                        "{ENV_SPEC}={}",
                        serde_json::to_string(spec).expect("a spec serializes")
                    ),
                    format!("{ENV_SLOT}={{{{.Task.Slot}}}}"),
                    format!("{ENV_NODE}={{{{.Node.Hostname}}}}"),
                ]),
                mounts: Some(vec![Mount {
                    target: Some(START_DIR.into()),
                    typ: Some(MountType::TMPFS),
                    ..Default::default()
                }]),
                stop_grace_period: Some(nanos(timeout + Duration::from_secs(15))),
                // The open model's dispatcher asks for real-time priority.
                capability_add: caps.then(|| vec!["CAP_SYS_NICE".into()]),
                ..Default::default()
            }),
            placement: Some(TaskSpecPlacement {
                constraints: Some(placement.to_vec()),
                max_replicas: Some(1),
                ..Default::default()
            }),
            restart_policy: Some(TaskSpecRestartPolicy {
                condition: Some(TaskSpecRestartPolicyConditionEnum::NONE),
                ..Default::default()
            }),
            networks: Some(vec![NetworkAttachmentConfig {
                target: Some(network.to_string()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Spec {
        Spec {
            run: "r1".into(),
            of: 3,
            scenario: String::new(),
            max_run_s: 60,
            first_slot: 0,
            ca: Vec::new(),
            bodies: Vec::new(),
        }
    }

    #[test]
    fn engines_without_jobs_get_a_replicated_service() {
        assert_eq!(AgentMode::for_engine("1.41", None), AgentMode::Job);
        assert_eq!(AgentMode::for_engine("1.45", None), AgentMode::Job);
        assert_eq!(AgentMode::for_engine("2.0", None), AgentMode::Job);
        assert_eq!(AgentMode::for_engine("1.40", None), AgentMode::Service);
        assert_eq!(AgentMode::for_engine("1.9", None), AgentMode::Service);
        assert_eq!(AgentMode::for_engine("", None), AgentMode::Service);
        assert_eq!(
            AgentMode::for_engine("1.41", Some("service")),
            AgentMode::Service
        );
        assert_eq!(AgentMode::for_engine("1.41", Some("job")), AgentMode::Job);
        assert_eq!(AgentMode::Service.first_slot(), 1);
    }

    #[test]
    fn the_job_and_the_service_run_each_agent_once_per_node() {
        let labels = std::collections::HashMap::new();
        for (mode, caps) in [(AgentMode::Job, true), (AgentMode::Service, false)] {
            let s = job_spec(
                "app-generators",
                (mode, caps),
                &spec(),
                &["node.role == worker".into()],
                "net",
                Duration::from_secs(10),
                labels.clone(),
            );
            let m = s.mode.unwrap();
            match mode {
                AgentMode::Job => {
                    assert_eq!(m.replicated_job.unwrap().total_completions, Some(3));
                    assert!(m.replicated.is_none());
                }
                AgentMode::Service => {
                    assert_eq!(m.replicated.unwrap().replicas, Some(3));
                    assert!(m.replicated_job.is_none());
                }
            }
            let t = s.task_template.unwrap();
            assert_eq!(t.placement.unwrap().max_replicas, Some(1));
            assert_eq!(
                t.restart_policy.unwrap().condition,
                Some(TaskSpecRestartPolicyConditionEnum::NONE)
            );
            assert_eq!(t.container_spec.unwrap().capability_add.is_some(), caps);
        }
    }
}
