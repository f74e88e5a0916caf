//! Plan types → Docker's Swarm spec types. Pure functions: nothing here talks to the engine,
//! so the mapping of every scenario field to Docker's field is visible (and tested) in one place.

use crate::scenario::{
    EdgeKind, EndpointMode, FailureAction, Healthcheck, Service, ServiceChange, UpdateConfig,
    UpdateOrder,
};
use bollard::models::{
    EndpointPortConfig, EndpointPortConfigPublishModeEnum, EndpointSpec, EndpointSpecModeEnum,
    HealthConfig, NetworkAttachmentConfig, ServiceSpec, ServiceSpecMode, ServiceSpecModeReplicated,
    ServiceSpecRollbackConfig, ServiceSpecRollbackConfigFailureActionEnum,
    ServiceSpecRollbackConfigOrderEnum, ServiceSpecUpdateConfig,
    ServiceSpecUpdateConfigFailureActionEnum, ServiceSpecUpdateConfigOrderEnum, TaskSpec,
    TaskSpecContainerSpec,
};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// Swarm expands this template per task, so the test service can say which task served a
/// request (the X-Rollcheck-Task header).
const TASK_ENV: &str = "TASK={{.Task.Name}}";

pub(crate) fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

pub(crate) fn health_config(h: &Healthcheck) -> HealthConfig {
    HealthConfig {
        test: Some(h.test.clone()),
        interval: Some(nanos(h.interval)),
        timeout: Some(nanos(h.timeout)),
        retries: Some(i64::from(h.retries)),
        start_period: Some(nanos(h.start_period)),
        start_interval: None,
    }
}

pub(crate) fn env_list(env: &BTreeMap<String, String>) -> Vec<String> {
    let mut list: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    if !env.contains_key("TASK") {
        list.push(TASK_ENV.to_string());
    }
    list
}

fn update_config(u: &UpdateConfig) -> ServiceSpecUpdateConfig {
    ServiceSpecUpdateConfig {
        parallelism: Some(i64::try_from(u.parallelism).unwrap_or(i64::MAX)),
        delay: Some(nanos(u.delay)),
        failure_action: Some(match u.failure_action {
            FailureAction::Pause => ServiceSpecUpdateConfigFailureActionEnum::PAUSE,
            FailureAction::Continue => ServiceSpecUpdateConfigFailureActionEnum::CONTINUE,
            FailureAction::Rollback => ServiceSpecUpdateConfigFailureActionEnum::ROLLBACK,
        }),
        monitor: Some(nanos(u.monitor)),
        max_failure_ratio: Some(u.max_failure_ratio),
        order: Some(match u.order {
            UpdateOrder::StopFirst => ServiceSpecUpdateConfigOrderEnum::STOP_FIRST,
            UpdateOrder::StartFirst => ServiceSpecUpdateConfigOrderEnum::START_FIRST,
        }),
    }
}

fn rollback_config(u: &UpdateConfig) -> ServiceSpecRollbackConfig {
    ServiceSpecRollbackConfig {
        parallelism: Some(i64::try_from(u.parallelism).unwrap_or(i64::MAX)),
        delay: Some(nanos(u.delay)),
        // Docker has no "rollback" failure action for a rollback; the parser should not allow
        // it, and pause is Docker's default.
        failure_action: Some(match u.failure_action {
            FailureAction::Continue => ServiceSpecRollbackConfigFailureActionEnum::CONTINUE,
            _ => ServiceSpecRollbackConfigFailureActionEnum::PAUSE,
        }),
        monitor: Some(nanos(u.monitor)),
        max_failure_ratio: Some(u.max_failure_ratio),
        order: Some(match u.order {
            UpdateOrder::StopFirst => ServiceSpecRollbackConfigOrderEnum::STOP_FIRST,
            UpdateOrder::StartFirst => ServiceSpecRollbackConfigOrderEnum::START_FIRST,
        }),
    }
}

/// A host-mode or ingress published port, as Swarm spells it.
pub(crate) fn published_port(published: u16, target: u16, ingress: bool) -> EndpointPortConfig {
    EndpointPortConfig {
        target_port: Some(i64::from(target)),
        published_port: Some(i64::from(published)),
        publish_mode: Some(if ingress {
            EndpointPortConfigPublishModeEnum::INGRESS
        } else {
            EndpointPortConfigPublishModeEnum::HOST
        }),
        ..Default::default()
    }
}

/// The service under test. `publish` is `Some` when the service itself publishes its port
/// (`edge.kind = "none"` → host mode, `"ingress"` → routing mesh).
pub(crate) fn service_spec(
    s: &Service,
    network: &str,
    mut labels: HashMap<String, String>,
    publish: Option<(u16, EdgeKind)>,
) -> ServiceSpec {
    let container_labels = labels.clone();
    labels.extend(s.labels.clone());
    let ports =
        publish.map(|(port, kind)| vec![published_port(port, s.port, kind == EdgeKind::Ingress)]);
    ServiceSpec {
        name: Some(s.name.clone()),
        labels: Some(labels),
        task_template: Some(TaskSpec {
            container_spec: Some(TaskSpecContainerSpec {
                image: Some(s.image.clone()),
                // Container labels let the event watcher filter this run's containers.
                labels: Some(container_labels),
                env: Some(env_list(&s.env)),
                health_check: s.healthcheck.as_ref().map(health_config),
                stop_grace_period: s.stop_grace_period.map(nanos),
                ..Default::default()
            }),
            networks: Some(vec![NetworkAttachmentConfig {
                target: Some(network.to_string()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        mode: Some(ServiceSpecMode {
            replicated: Some(ServiceSpecModeReplicated {
                replicas: Some(i64::try_from(s.replicas).unwrap_or(i64::MAX)),
            }),
            ..Default::default()
        }),
        update_config: Some(update_config(&s.update)),
        rollback_config: Some(rollback_config(&s.rollback)),
        endpoint_spec: Some(EndpointSpec {
            mode: Some(match s.endpoint_mode {
                EndpointMode::Vip => EndpointSpecModeEnum::VIP,
                EndpointMode::Dnsrr => EndpointSpecModeEnum::DNSRR,
            }),
            ports,
        }),
        ..Default::default()
    }
}

/// Applies an `update` step to the service's current spec; returns what changed, for the
/// step event.
pub(crate) fn apply_change(spec: &mut ServiceSpec, change: &ServiceChange) -> Vec<String> {
    let mut changed = Vec::new();
    let task = spec.task_template.get_or_insert_with(Default::default);
    if change.force {
        // `docker service update --force` does exactly this: a new ForceUpdate value makes
        // every task out of date without changing anything else.
        let next = task.force_update.unwrap_or(0) + 1;
        task.force_update = Some(next);
        changed.push(format!("force_update={next}"));
    }
    let container = task.container_spec.get_or_insert_with(Default::default);
    if let Some(env) = &change.env {
        // Merge, like `--env-add`: the scenario names the variables it changes.
        let mut current: BTreeMap<String, String> = container
            .env
            .iter()
            .flatten()
            .filter_map(|kv| {
                kv.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
            })
            .collect();
        current.extend(env.clone());
        container.env = Some(current.iter().map(|(k, v)| format!("{k}={v}")).collect());
        changed.push(format!(
            "env {}",
            env.keys().cloned().collect::<Vec<_>>().join(",")
        ));
    }
    if let Some(h) = &change.healthcheck {
        container.health_check = Some(health_config(h));
        changed.push("healthcheck".into());
    }
    if let Some(grace) = change.stop_grace_period {
        container.stop_grace_period = Some(nanos(grace));
        changed.push(format!("stop_grace_period={grace:?}"));
    }
    if let Some(labels) = &change.labels {
        spec.labels
            .get_or_insert_with(Default::default)
            .extend(labels.clone());
        changed.push("labels".into());
    }
    if let Some(n) = change.replicas {
        set_replicas(spec, n);
        changed.push(format!("replicas={n}"));
    }
    if let Some(u) = &change.update {
        spec.update_config = Some(update_config(u));
        changed.push("update_config".into());
    }
    changed
}

pub(crate) fn set_replicas(spec: &mut ServiceSpec, n: u64) {
    let mode = spec.mode.get_or_insert_with(Default::default);
    mode.replicated = Some(ServiceSpecModeReplicated {
        replicas: Some(i64::try_from(n).unwrap_or(i64::MAX)),
    });
}

pub(crate) fn set_image(spec: &mut ServiceSpec, image: &str) {
    let task = spec.task_template.get_or_insert_with(Default::default);
    task.container_spec
        .get_or_insert_with(Default::default)
        .image = Some(image.to_string());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::UpdateConfig;

    fn service() -> Service {
        Service {
            name: "app".into(),
            image: "rollcheck/testsvc:1".into(),
            replicas: 3,
            endpoint_mode: EndpointMode::Dnsrr,
            port: 8080,
            stop_grace_period: Some(Duration::from_secs(10)),
            env: BTreeMap::from([("DELAY".into(), "1s".into())]),
            labels: BTreeMap::new(),
            healthcheck: None,
            update: UpdateConfig::default(),
            rollback: UpdateConfig::default(),
        }
    }

    #[test]
    fn spec_uses_dockers_fields() {
        let spec = service_spec(&service(), "net", HashMap::new(), None);
        let json = serde_json::to_value(&spec).unwrap();
        assert_eq!(json["EndpointSpec"]["Mode"], "dnsrr");
        assert_eq!(json["Mode"]["Replicated"]["Replicas"], 3);
        assert_eq!(json["UpdateConfig"]["Order"], "stop-first");
        assert_eq!(
            json["TaskTemplate"]["ContainerSpec"]["StopGracePeriod"],
            10_000_000_000i64
        );
        let env = &json["TaskTemplate"]["ContainerSpec"]["Env"];
        assert_eq!(env[0], "DELAY=1s");
        assert_eq!(env[1], TASK_ENV);
    }

    #[test]
    fn change_merges_env_and_bumps_force() {
        let mut spec = service_spec(&service(), "net", HashMap::new(), None);
        let change = ServiceChange {
            env: Some(BTreeMap::from([("DELAY".into(), "2s".into())])),
            force: true,
            ..Default::default()
        };
        let what = apply_change(&mut spec, &change);
        assert_eq!(what, ["force_update=1", "env DELAY"]);
        let container = spec.task_template.unwrap().container_spec.unwrap();
        assert_eq!(container.env.unwrap(), ["DELAY=2s", TASK_ENV]);
    }
}
