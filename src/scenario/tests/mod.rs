//! Scenario tests with inline TOML: a full scenario → Plan, each error → its exact text
//! (with line:col), `${VAR}` expansion, and each lint on its case.

use super::*;
use crate::outcome::Outcome;
use std::path::Path;
use std::time::Duration;

const PATH: &str = "scenarios/Rolling Update_v2.toml";

fn env(name: &str) -> Option<String> {
    match name {
        "TAG" => Some("2".into()),
        "PORT" => Some("9090".into()),
        _ => None,
    }
}

fn try_parse(text: &str) -> Result<Plan, String> {
    parse(text, Path::new(PATH), &env).map_err(|e| e.to_string())
}

fn ok(text: &str) -> Plan {
    try_parse(text).unwrap_or_else(|e| panic!("{e}"))
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

const FULL: &str = r#"
title = "Rolling update, stop-first, 3 replicas"

[lab]
kind = "swarm-cluster"
workers = 2

[service]
image = "rollcheck/testsvc:1"
replicas = 3
endpoint_mode = "dnsrr"
stop_grace_period = "10s"
env = { DELAY = "1s", SHUTDOWN = "graceful" }
healthcheck = { test = ["CMD", "/rollcheck", "probe", "http://127.0.0.1:8080/healthz"], interval = "2s" }
update = { parallelism = 1, delay = "2s", order = "stop-first", failure_action = "pause", monitor = "5s" }
rollback_config = { order = "start-first", failure_action = "continue" }

[edge]
kind = "haproxy"
publish = "127.0.0.1:${PORT}"
retries = false

[load]
target = "http://127.0.0.1:${PORT}/"
model = "open"
rate = 50
keepalive = true
timeout = "3s"
headers = { "X-Team" = "a" }

[[step]]
at = "10s"
action = "update_image"
image = "rollcheck/testsvc:${TAG}"

[[step]]
after = "5s"
action = "rollback"
wait = "none"
expect = "failure"

[[step]]
action = "exec"
command = "docker kill $$(docker ps -q --filter label=x) && echo this-is-a-long-command"

[[step]]
action = "update"
force = true
env = { DELAY = "2s" }
timeout = "30s"

[gate]
max_dropped = 0
max_error_rate = 0.01
max_p99 = "1.5s"
dropped = ["reset", "refused", "reset"]
"#;

#[test]
fn full_scenario_becomes_plan() {
    let p = ok(FULL);
    assert_eq!(p.title, "Rolling update, stop-first, 3 replicas");
    assert_eq!(p.slug, "rolling-update-v2");
    assert_eq!(p.source, Path::new(PATH));
    assert_eq!(
        p.lab().map(|l| l.lab.clone()),
        Some(Lab::SwarmCluster {
            managers: 3,
            workers: 2,
            drain_managers: false
        })
    );

    let s = &p.lab().unwrap().service;
    assert_eq!(
        (s.name.as_str(), s.image.as_str(), s.replicas, s.port),
        ("app", "rollcheck/testsvc:1", 3, 8080)
    );
    assert_eq!(s.endpoint_mode, EndpointMode::Dnsrr);
    assert_eq!(s.stop_grace_period, Some(secs(10)));
    assert_eq!(s.env.get("SHUTDOWN").map(String::as_str), Some("graceful"));
    let h = s.healthcheck.as_ref().unwrap();
    assert_eq!(h.test[0], "CMD");
    assert_eq!(
        (h.interval, h.timeout, h.retries, h.start_period),
        (secs(2), secs(30), 3, Duration::ZERO)
    );
    assert_eq!(
        s.update,
        UpdateConfig {
            delay: secs(2),
            ..UpdateConfig::default()
        }
    );
    assert_eq!(
        s.rollback,
        UpdateConfig {
            order: UpdateOrder::StartFirst,
            failure_action: FailureAction::Continue,
            ..UpdateConfig::default()
        }
    );

    let e = &p.lab().unwrap().edge;
    assert_eq!(
        (e.kind, e.mode, e.retries),
        (EdgeKind::Haproxy, EdgeMode::Container, false)
    );
    assert_eq!(e.publish.to_string(), "127.0.0.1:9090");

    let l = &p.load;
    assert_eq!(l.target.to_string(), "http://127.0.0.1:9090/");
    assert_eq!(
        l.model,
        LoadModel::Open {
            rate: 50.0,
            max_in_flight: 1000
        }
    );
    assert!(l.keepalive);
    assert_eq!(
        (
            l.timeout,
            l.connect_timeout,
            l.duration,
            l.settle,
            l.interval
        ),
        (secs(3), secs(3), None, secs(5), secs(1))
    );
    assert_eq!(l.headers.get("X-Team").map(String::as_str), Some("a"));

    assert_eq!(p.steps.len(), 4);
    let st = &p.steps;
    assert_eq!((st[0].index, st[0].timing), (1, Timing::At(secs(10))));
    assert_eq!(st[0].label, "update_image rollcheck/testsvc:2");
    assert_eq!(
        st[0].action,
        Action::UpdateImage {
            image: "rollcheck/testsvc:2".into(),
            wait: Wait::Converged { timeout: secs(120) }
        }
    );
    assert_eq!(
        (st[1].timing, st[1].expect_failure),
        (Timing::After(secs(5)), true)
    );
    assert_eq!(st[1].action, Action::Rollback { wait: Wait::No });
    assert_eq!(st[2].timing, Timing::After(Duration::ZERO));
    assert_eq!(
        st[2].label,
        "exec docker kill $(docker ps -q --filter labe…"
    );
    assert_eq!(
        st[2].action,
        Action::Exec {
            command: "docker kill $(docker ps -q --filter label=x) && echo this-is-a-long-command"
                .into(),
            timeout: None
        }
    );
    assert_eq!(st[3].label, "update env, force");
    let Action::Update { change, wait } = &st[3].action else {
        panic!("{:?}", st[3].action)
    };
    assert!(change.force);
    assert_eq!(
        change
            .env
            .as_ref()
            .and_then(|e| e.get("DELAY"))
            .map(String::as_str),
        Some("2s")
    );
    assert_eq!(change.replicas, None);
    assert_eq!(*wait, Wait::Converged { timeout: secs(30) });

    assert_eq!(
        p.gate.thresholds,
        vec![
            Threshold::MaxDropped(0),
            Threshold::MaxErrorRate(0.01),
            Threshold::MaxP99(Duration::from_millis(1500))
        ]
    );
    assert_eq!(p.gate.dropped, vec![Outcome::Reset, Outcome::Refused]);
}

#[test]
fn minimal_scenario_gets_defaults() {
    let p = ok("[load]\ntarget = \"http://127.0.0.1:8080/\"\n");
    assert_eq!(
        (p.title.as_str(), p.slug.as_str()),
        ("Rolling Update_v2", "rolling-update-v2")
    );
    assert_eq!(p.setup, Setup::External);
    assert_eq!(
        p.load.model,
        LoadModel::Closed {
            concurrency: 10,
            error_pause: Duration::from_millis(100)
        }
    );
    assert_eq!(
        (p.load.keepalive, p.load.timeout, p.load.connect_timeout),
        (false, secs(5), secs(5))
    );
    assert_eq!(p.gate, Gate::default());
    assert!(p.steps.is_empty());
}

#[test]
fn lab_without_edge_gets_default_nginx_edge() {
    let p = ok(r#"
[lab]
kind = "swarm-local"
[service]
image = "x"
[load]
target = "http://127.0.0.1:8080/"
"#);
    let lab = p.lab().unwrap();
    assert_eq!(lab.lab, Lab::SwarmLocal);
    let e = &lab.edge;
    assert_eq!(
        (e.kind, e.mode, e.retries, e.publish.to_string()),
        (
            EdgeKind::Nginx,
            EdgeMode::Container,
            true,
            "127.0.0.1:8080".into()
        )
    );
    let s = &lab.service;
    assert_eq!(
        (s.replicas, s.endpoint_mode, s.healthcheck.clone()),
        (1, EndpointMode::Vip, None)
    );
}

/// An existing swarm without a stack: the steps' services, in order and once each, are what
/// the run saves and restores; no edge, no lab service.
#[test]
fn existing_swarm_steps_name_the_services_to_restore() {
    let p = ok(r#"
[lab]
kind = "existing"
[load]
target = "http://127.0.0.1:8080/"
duration = "30s"
[[step]]
at = "5s"
action = "update_image"
service = "shop_app"
image = "x:2"
[[step]]
at = "10s"
action = "scale"
service = "shop_worker"
replicas = 3
[[step]]
at = "20s"
action = "rollback"
service = "shop_app"
"#);
    let e = p.existing().unwrap();
    assert_eq!(e.services, ["shop_app", "shop_worker"]);
    assert!(e.restore);
    assert!(p.lab().is_none() && p.stack().is_none() && p.has_lab());
    assert_eq!(p.watched_services(), ["shop_app", "shop_worker"]);
    let kept = ok(r#"
[lab]
kind = "existing"
restore = false
[load]
target = "http://127.0.0.1:8080/"
"#);
    assert!(!kept.existing().unwrap().restore);
    let drained = ok(r#"
[lab]
kind = "existing"
node_faults = true
[load]
target = "http://127.0.0.1:8080/"
duration = "30s"
[[step]]
at = "5s"
action = "node_drain"
node = "staging-3.example"
[[step]]
at = "10s"
action = "node_activate"
node = "staging-3.example"
"#);
    assert_eq!(drained.swarm_nodes(), ["staging-3.example"]);
    assert_eq!(
        drained.steps[0].action,
        Action::NodeAvailability {
            node: "staging-3.example".into(),
            drain: true
        }
    );
    assert_eq!(drained.steps[1].action.name(), "node_activate");
}

mod docker;
mod errors;
mod mix;
mod props;

use errors::LOAD;

#[test]
fn env_defaults_and_the_shown_text() {
    let text = "# keep me\n[load]\ntarget = \"http://127.0.0.1:${PORT}/\"\n[[step]]\naction = \"exec\"\ncommand = \"echo ${GREETING:-hi \\\"there\\\"} $$HOME\"\n";
    let p = ok(text);
    assert_eq!(p.load.target.port_u16(), Some(9090));
    assert_eq!(
        p.steps[0].action,
        Action::Exec {
            command: "echo hi \"there\" $HOME".into(),
            timeout: None
        }
    );
    // A report shows the file as written: no value from the environment.
    assert_eq!(shown_toml(text, Path::new(PATH), &env).unwrap(), text);
}

/// Secrets from the environment, a URL's userinfo and service env values never reach what a
/// report shows: labels, the scenario copy. The test service's own knobs and `show_env`
/// names stay readable.
#[test]
fn secrets_are_shown_by_name_or_redacted() {
    let secret_env = |name: &str| match name {
        "TOKEN" => Some("tok-9f8e7d6c".to_string()),
        _ => None,
    };
    let text = "[lab]\nkind = \"swarm-local\"\n[service]\nimage = \"x\"\n\
                env = { DELAY = \"1s\", DB_PASSWORD = \"hunter2-literal\", REGION = \"eu-west-1\", API_KEY = \"${TOKEN}\" }\n\
                show_env = [\"REGION\"]\n\
                [load]\ntarget = \"http://bob:pa55word@127.0.0.1:8080/\"\nheaders = { Authorization = \"Bearer ${TOKEN}\" }\n\
                [[step]]\naction = \"exec\"\ncommand = \"deploy --token ${TOKEN}\"\n";
    let plan = parse(text, Path::new(PATH), &secret_env).unwrap();
    assert_eq!(plan.steps[0].label, "exec deploy --token ${TOKEN}");
    assert_eq!(
        plan.secrets.redact(&plan.load.target.to_string()),
        "http://bob:***@127.0.0.1:8080/"
    );
    assert_eq!(plan.secrets.redact("got hunter2-literal"), "got <redacted>");
    let shown = shown_toml(text, Path::new(PATH), &secret_env).unwrap();
    for secret in ["tok-9f8e7d6c", "hunter2-literal", "pa55word"] {
        assert!(!shown.contains(secret), "{secret} in\n{shown}");
    }
    for kept in [
        "DELAY = \"1s\"",
        "REGION = \"eu-west-1\"",
        "${TOKEN}",
        "bob:***@",
    ] {
        assert!(shown.contains(kept), "{kept} in\n{shown}");
    }
}

fn lab_scenario(service_extra: &str, rest: &str) -> String {
    format!(
        "[lab]\nkind = \"swarm-local\"\n[service]\nimage = \"x\"\n{service_extra}\n[load]\ntarget = \"http://127.0.0.1:8080/\"\n{rest}"
    )
}

const GOOD_SERVICE: &str = r#"replicas = 3
env = { DELAY = "1s" }
healthcheck = { test = ["CMD", "/rollcheck", "probe", "http://127.0.0.1:8080/healthz"], interval = "2s" }
"#;

#[test]
fn good_scenario_has_no_lints() {
    assert_eq!(lint(&ok(&lab_scenario(GOOD_SERVICE, ""))), vec![]);
    // No service: nothing to lint.
    assert_eq!(lint(&ok(LOAD)), vec![]);
}

#[test]
fn each_lint_fires_on_its_case() {
    let hc = r#"healthcheck = { test = ["CMD", "/rollcheck", "probe", "http://127.0.0.1:8080/healthz"] }"#;
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "one replica stop-first",
            lab_scenario(hc, ""),
            vec!["service.update_config.order"],
        ),
        (
            "parallelism >= replicas",
            lab_scenario(
                &format!("{GOOD_SERVICE}update_config = {{ parallelism = 3 }}"),
                "",
            ),
            vec!["service.update_config.parallelism"],
        ),
        (
            "no healthcheck",
            lab_scenario("replicas = 2", ""),
            vec!["service.healthcheck"],
        ),
        (
            "shell operator in exec form",
            lab_scenario(
                r#"replicas = 2
healthcheck = { test = ["CMD", "curl", "-f", "http://localhost/", "||", "exit", "1"] }"#,
                "",
            ),
            vec!["service.healthcheck.test"],
        ),
        (
            "grace period shorter than DELAY + 2s",
            lab_scenario(
                &format!("{hc}\nreplicas = 2\nenv = {{ DELAY = \"9s\" }}"),
                "",
            ),
            vec!["service.stop_grace_period"],
        ),
        (
            "grace period shorter than load.timeout + 2s",
            lab_scenario(
                &format!("{hc}\nreplicas = 2\nstop_grace_period = \"6s\""),
                "",
            ),
            vec!["service.stop_grace_period"],
        ),
        (
            "no replica at all",
            lab_scenario(&GOOD_SERVICE.replace("replicas = 3", "replicas = 0"), ""),
            vec!["service.replicas"],
        ),
        (
            "an open rate that can outgrow max_in_flight",
            lab_scenario(
                GOOD_SERVICE,
                "model = \"open\"\nrate = 500\nmax_in_flight = 100\n",
            ),
            vec!["load.max_in_flight"],
        ),
        (
            "start-first with host-mode port",
            format!(
                "{}[edge]\nkind = \"none\"\nall_interfaces = true\n",
                lab_scenario(
                    &format!(
                        "{}update = {{ order = \"start-first\" }}",
                        GOOD_SERVICE.replace("replicas = 3", "replicas = 1")
                    ),
                    ""
                )
            ),
            vec!["service.update_config.order"],
        ),
    ];
    for (name, text, want) in cases {
        let got: Vec<String> = lint(&ok(&text)).into_iter().map(|l| l.key).collect();
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn lint_messages_read_well() {
    let plan = ok(&lab_scenario(
        r#"replicas = 2
stop_grace_period = "3s"
healthcheck = { test = ["CMD", "/rollcheck", "probe", "http://127.0.0.1:8080/healthz"] }
env = { DELAY = "1500ms" }"#,
        "",
    ));
    assert_eq!(
        lint(&plan)
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        vec![
            "service.stop_grace_period: 3s is shorter than the longest expected request (1s 500ms from service env DELAY) + 2s (Swarm's delay before SIGTERM): in-flight requests are killed (exit 137)"
        ]
    );
}

#[test]
fn load_reads_a_file_and_reports_unreadable_ones() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("Smoke.toml");
    std::fs::write(&path, "[load]\ntarget = \"http://127.0.0.1:8080/\"\n").unwrap();
    let (plan, resolved) = load_shown(&path).unwrap();
    assert_eq!(
        (plan.title.as_str(), plan.slug.as_str()),
        ("Smoke", "smoke")
    );
    assert_eq!(resolved, "[load]\ntarget = \"http://127.0.0.1:8080/\"\n");
    assert_eq!(load(&path), Ok(plan));

    let missing = dir.path().join("missing.toml");
    let err = load(&missing).unwrap_err();
    assert_eq!(err.position, None);
    assert!(
        err.to_string()
            .starts_with(&format!("{}: cannot read scenario: ", missing.display())),
        "{err}"
    );
}

#[test]
fn healthcheck_string_is_cmd_shell() {
    let plan = ok(&lab_scenario(
        r#"healthcheck = { test = "curl -f http://127.0.0.1/ || exit 1" }"#,
        "",
    ));
    let h = plan.lab().unwrap().service.healthcheck.clone().unwrap();
    assert_eq!(
        h.test,
        vec!["CMD-SHELL", "curl -f http://127.0.0.1/ || exit 1"]
    );
    assert_eq!(
        try_parse(&lab_scenario("healthcheck = { test = 5 }", "")).unwrap_err(),
        "scenarios/Rolling Update_v2.toml:5:24: service.healthcheck.test: \
         expected an array like [\"CMD\", \"...\"] or a shell command string"
    );
}

#[test]
fn node_steps_name_cluster_nodes() {
    let plan = ok(&format!(
        "[lab]\nkind = \"swarm-cluster\"\n[service]\nimage = \"x\"\n{LOAD}\
         [[step]]\naction = \"node_stop\"\nnode = \"worker-2\"\n\
         [[step]]\naction = \"manager_stop\"\ncount = 2\n\
         [[step]]\naction = \"leader_stop\"\n\
         [[step]]\naction = \"node_connect\"\nnode = \"manager-3\"\n"
    ));
    let actions: Vec<&Action> = plan.steps.iter().map(|s| &s.action).collect();
    assert_eq!(
        actions,
        [
            &Action::Node {
                op: NodeOp::Stop,
                node: NodeName::worker(2)
            },
            &Action::ManagerStop { count: 2 },
            &Action::LeaderStop,
            &Action::Node {
                op: NodeOp::Connect,
                node: NodeName::manager(3)
            },
        ]
    );
    assert_eq!(plan.steps[0].label, "node_stop worker-2");
    for bad in ["worker-0", "worker-01", "node-1", "worker", "manager-x"] {
        assert_eq!(NodeName::parse(bad), None, "{bad}");
    }
    assert_eq!(NodeName::parse("manager-12"), Some(NodeName::manager(12)));
}
