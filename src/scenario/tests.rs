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
        p.lab,
        Some(Lab::SwarmCluster {
            managers: 3,
            workers: 2,
            drain_managers: false
        })
    );

    let s = p.service.as_ref().unwrap();
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

    let e = p.edge.as_ref().unwrap();
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
    assert_eq!(
        (p.lab.clone(), p.service.clone(), p.edge.clone()),
        (None, None, None)
    );
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
    assert_eq!(p.lab, Some(Lab::SwarmLocal));
    let e = p.edge.unwrap();
    assert_eq!(
        (e.kind, e.mode, e.retries, e.publish.to_string()),
        (
            EdgeKind::Nginx,
            EdgeMode::Container,
            true,
            "127.0.0.1:8080".into()
        )
    );
    let s = p.service.unwrap();
    assert_eq!(
        (s.replicas, s.endpoint_mode, s.healthcheck),
        (1, EndpointMode::Vip, None)
    );
}

const LAB: &str = "[lab]\nkind = \"swarm-local\"\n[service]\nimage = \"x\"\n";
const LOAD: &str = "[load]\ntarget = \"http://127.0.0.1:8080/\"\n";

/// (name, scenario, exact error). `PATH` is the file; lines count from 1.
fn error_cases() -> Vec<(&'static str, String, &'static str)> {
    let with_lab = |rest: &str| format!("{LAB}{LOAD}{rest}");
    vec![
        ("syntax", "[load\n".into(), "scenarios/Rolling Update_v2.toml:1:6: unclosed table, expected \"]\""),
        (
            "typo in key",
            "[load]\ntarget = \"http://127.0.0.1/\"\nconcurency = 3\n".into(),
            "scenarios/Rolling Update_v2.toml:3:1: load: unknown field \"concurency\" (did you mean \"concurrency\"?)",
        ),
        (
            "typo in top-level section",
            format!("{LOAD}[gates]\nmax_dropped = 0\n"),
            "scenarios/Rolling Update_v2.toml:3:2: unknown field \"gates\" (did you mean \"gate\"?)",
        ),
        (
            "typo in action",
            with_lab("[[step]]\nat = \"1s\"\naction = \"exec\"\ncommand = \"true\"\n[[step]]\naction = \"update-image\"\nimage = \"y\"\n"),
            "scenarios/Rolling Update_v2.toml:12:10: step 2: unknown action \"update-image\" (did you mean \"update_image\"?)",
        ),
        (
            "typo in enum value",
            format!("{LAB}update_config = {{ order = \"stopfirst\" }}\n{LOAD}"),
            "scenarios/Rolling Update_v2.toml:5:27: service.update_config.order: unknown value \"stopfirst\" (did you mean \"stop-first\"?)",
        ),
        (
            "unknown field in step",
            format!("{LOAD}[[step]]\naction = \"sleep\"\nduraton = \"1s\"\n"),
            "scenarios/Rolling Update_v2.toml:5:1: step 1: unknown field \"duraton\" (did you mean \"duration\"?)",
        ),
        (
            "bad duration",
            "[load]\ntarget = \"http://127.0.0.1/\"\ntimeout = \"5 secs later\"\n".into(),
            "scenarios/Rolling Update_v2.toml:3:11: load.timeout: invalid duration \"5 secs later\" (write e.g. \"250ms\", \"5s\", \"2m\")",
        ),
        (
            "zero timeout",
            "[load]\ntarget = \"http://127.0.0.1/\"\ntimeout = \"0s\"\n".into(),
            "scenarios/Rolling Update_v2.toml:3:11: load.timeout: must be greater than 0",
        ),
        ("missing load", "title = \"x\"\n".into(), "scenarios/Rolling Update_v2.toml: missing required section [load] (at least `target = \"http://...\"`)"),
        (
            "missing required field",
            format!("[lab]\nkind = \"swarm-local\"\n[service]\nname = \"web\"\n{LOAD}"),
            "scenarios/Rolling Update_v2.toml:3:1: service: missing required key \"image\"",
        ),
        (
            "missing action field",
            format!("{LOAD}[[step]]\naction = \"exec\"\n"),
            "scenarios/Rolling Update_v2.toml:3:1: step 1: missing required key \"command\" for action \"exec\"",
        ),
        (
            "field not belonging to action",
            format!("{LOAD}[[step]]\naction = \"exec\"\ncommand = \"true\"\n[[step]]\naction = \"exec\"\nimage = \"x\"\ncommand = \"true\"\n"),
            "scenarios/Rolling Update_v2.toml:8:9: step 2: \"image\" is not a field of action \"exec\" (it takes: command, timeout)",
        ),
        (
            "both at and after",
            format!("{LOAD}[[step]]\nat = \"1s\"\nafter = \"2s\"\naction = \"sleep\"\nduration = \"1s\"\n"),
            "scenarios/Rolling Update_v2.toml:5:9: step 1: give \"at\" or \"after\", not both",
        ),
        (
            "unset env var",
            "[load]\ntarget = \"http://127.0.0.1:${NOPE}/\"\n".into(),
            "scenarios/Rolling Update_v2.toml:2:10: load.target: environment variable NOPE is not set (set it, or write \"${NOPE:-default}\")",
        ),
        (
            "unset env var in step array",
            format!("{LOAD}[[step]]\naction = \"exec\"\ncommand = \"x\"\n[[step]]\naction = \"exec\"\ncommand = \"${{NOPE}}\"\n"),
            "scenarios/Rolling Update_v2.toml:8:11: step 2: command: environment variable NOPE is not set (set it, or write \"${NOPE:-default}\")",
        ),
        (
            "non-loopback publish",
            format!("{LAB}[edge]\npublish = \"0.0.0.0:8080\"\n{LOAD}"),
            "scenarios/Rolling Update_v2.toml:6:11: edge.publish: \"0.0.0.0:8080\" is not a loopback address: the lab only binds loopback (e.g. \"127.0.0.1:8080\")",
        ),
        (
            "https target",
            "[load]\ntarget = \"https://127.0.0.1/\"\n".into(),
            "scenarios/Rolling Update_v2.toml:2:10: load.target: \"https://127.0.0.1/\": https is not supported (rollcheck sends plain http://; target the service behind the TLS terminator)",
        ),
        (
            "target without host",
            "[load]\ntarget = \"/path\"\n".into(),
            "scenarios/Rolling Update_v2.toml:2:10: load.target: \"/path\" needs a scheme: write \"http:///path\"",
        ),
        (
            "gate unknown key",
            format!("{LOAD}[gate]\nmax_p95 = \"1s\"\n"),
            "scenarios/Rolling Update_v2.toml:4:1: gate: unknown field \"max_p95\" (did you mean \"max_p99\"?)",
        ),
        (
            "gate error rate range",
            format!("{LOAD}[gate]\nmax_error_rate = 5\n"),
            "scenarios/Rolling Update_v2.toml:4:18: gate.max_error_rate: must be between 0 and 1 (a fraction: 0.01 = 1%)",
        ),
        (
            "gate unknown outcome",
            format!("{LOAD}[gate]\ndropped = [\"reset\", \"http_500\"]\n"),
            "scenarios/Rolling Update_v2.toml:4:21: gate.dropped: unknown outcome \"http_500\" (did you mean \"http_5xx\"?)",
        ),
        (
            "service without lab",
            format!("[service]\nimage = \"x\"\n{LOAD}"),
            "scenarios/Rolling Update_v2.toml:1:1: [service] needs a [lab] section: rollcheck only creates services in a lab it runs",
        ),
        (
            "swarm action without service",
            format!("{LOAD}[[step]]\naction = \"rollback\"\n"),
            "scenarios/Rolling Update_v2.toml:4:10: step 1: action \"rollback\" needs a [service] section (in a [lab]) to act on",
        ),
        (
            "concurrency with open model",
            "[load]\ntarget = \"http://127.0.0.1/\"\nmodel = \"open\"\nrate = 5\nconcurrency = 3\n".into(),
            "scenarios/Rolling Update_v2.toml:5:15: load.concurrency: only valid with model = \"closed\" (the open model sends `rate` requests per second)",
        ),
        (
            "error_pause with open model",
            "[load]\ntarget = \"http://127.0.0.1/\"\nmodel = \"open\"\nrate = 5\nerror_pause = \"1s\"\n".into(),
            "scenarios/Rolling Update_v2.toml:5:15: load.error_pause: only valid with model = \"closed\" (the open model keeps its schedule whatever the answers)",
        ),
        (
            "open model without rate",
            "[load]\ntarget = \"http://127.0.0.1/\"\nmodel = \"open\"\n".into(),
            "scenarios/Rolling Update_v2.toml:1:1: load: missing required key \"rate\" (requests per second, for model = \"open\")",
        ),
        (
            "cluster key on swarm-local",
            format!("[lab]\nkind = \"swarm-local\"\nmanagers = 3\n[service]\nimage = \"x\"\n{LOAD}"),
            "scenarios/Rolling Update_v2.toml:3:12: lab.managers: only valid with kind = \"swarm-cluster\"",
        ),
        (
            "node step outside a cluster",
            with_lab("[[step]]\naction = \"node_stop\"\nnode = \"worker-1\"\n"),
            "scenarios/Rolling Update_v2.toml:7:1: step 1: action \"node_stop\" needs a lab with kind = \"swarm-cluster\"",
        ),
        (
            "node the lab does not have",
            format!("[lab]\nkind = \"swarm-cluster\"\nworkers = 2\n[service]\nimage = \"x\"\n{LOAD}[[step]]\naction = \"node_kill\"\nnode = \"worker-3\"\n"),
            "scenarios/Rolling Update_v2.toml:10:8: step 1: node: no node \"worker-3\" in this lab (it has manager-1, manager-2, manager-3, worker-1, worker-2)",
        ),
        (
            "more managers than the lab has addresses for",
            format!("[lab]\nkind = \"swarm-cluster\"\nmanagers = 41\n[service]\nimage = \"x\"\n{LOAD}"),
            "scenarios/Rolling Update_v2.toml:3:12: lab.managers: must be between 1 and 40",
        ),
        (
            "more managers stopped than exist",
            format!("[lab]\nkind = \"swarm-cluster\"\n[service]\nimage = \"x\"\n{LOAD}[[step]]\naction = \"manager_stop\"\ncount = 4\n"),
            "scenarios/Rolling Update_v2.toml:9:9: step 1: count: must be between 1 and the lab's 3 managers",
        ),
        (
            "wrong type",
            "[load]\ntarget = \"http://127.0.0.1/\"\nconcurrency = \"3\"\n".into(),
            "scenarios/Rolling Update_v2.toml:3:15: load.concurrency: invalid type: string \"3\", expected a non-negative integer",
        ),
        (
            "healthcheck test kind",
            format!("{LAB}healthcheck = {{ test = [\"cmd\", \"true\"] }}\n{LOAD}"),
            "scenarios/Rolling Update_v2.toml:5:24: service.healthcheck.test: first element must be \"CMD\", \"CMD-SHELL\" or \"NONE\", not \"cmd\" (did you mean \"CMD\"?)",
        ),
        (
            "rollback_config cannot roll back",
            format!("{LAB}rollback = {{ failure_action = \"rollback\" }}\n{LOAD}"),
            "scenarios/Rolling Update_v2.toml:5:31: service.rollback_config.failure_action: \"rollback\" is not valid for a rollback (expected one of: pause, continue)",
        ),
        (
            "bad service name",
            "[lab]\nkind = \"swarm-local\"\n[service]\nname = \"-app\"\nimage = \"x\"\n[load]\ntarget = \"http://127.0.0.1/\"\n".into(),
            "scenarios/Rolling Update_v2.toml:4:8: service.name: invalid name \"-app\" (start with a letter or digit, then letters, digits, \"_\", \".\" or \"-\"; at most 63)",
        ),
        (
            "update with nothing to change",
            with_lab("[[step]]\naction = \"update\"\nforce = false\n"),
            "scenarios/Rolling Update_v2.toml:7:1: step 1: action \"update\" needs at least one of env, labels, replicas, update_config, healthcheck, stop_grace_period, force = true",
        ),
        (
            "several replicas on one host-mode port (the engine leaves all but one pending)",
            "[lab]\nkind = \"swarm-local\"\n[service]\nimage = \"x\"\nreplicas = 2\n[edge]\nkind = \"none\"\n[load]\ntarget = \"http://127.0.0.1/\"\n".into(),
            "scenarios/Rolling Update_v2.toml:5:12: service.replicas: 2 replicas with edge.kind = \"none\" on a single-node lab: a host-mode port fits one task per node, the others would stay pending (use edge.kind = \"nginx\", or replicas = 1)",
        ),
        (
            "haproxy outside a cluster",
            "[lab]\nkind = \"swarm-local\"\n[service]\nimage = \"x\"\n[edge]\nkind = \"haproxy\"\n[load]\ntarget = \"http://127.0.0.1/\"\n".into(),
            "scenarios/Rolling Update_v2.toml:6:8: edge.kind: \"haproxy\" is the outer edge of a swarm-cluster lab only; a swarm-local lab uses \"nginx\"",
        ),
        (
            "a cluster fronted by the routing mesh",
            "[lab]\nkind = \"swarm-cluster\"\n[service]\nimage = \"x\"\n[edge]\nkind = \"ingress\"\n[load]\ntarget = \"http://127.0.0.1/\"\n".into(),
            "scenarios/Rolling Update_v2.toml:6:8: edge.kind: \"ingress\" cannot front a swarm-cluster lab: its nodes are reached through an outer proxy on 127.0.0.1 (use \"haproxy\" or \"nginx\")",
        ),
        (
            "a step after the fixed duration never runs",
            "[load]\ntarget = \"http://127.0.0.1/\"\nduration = \"10s\"\n[[step]]\nat = \"20s\"\naction = \"sleep\"\nduration = \"1s\"\n".into(),
            "scenarios/Rolling Update_v2.toml:5:6: step 1: at: starts at 20s or later, when the load has ended (load.duration = 10s): it would never run",
        ),
        (
            "steps whose at goes backwards",
            "[load]\ntarget = \"http://127.0.0.1/\"\n[[step]]\nat = \"10s\"\naction = \"sleep\"\nduration = \"1s\"\n[[step]]\nat = \"5s\"\naction = \"sleep\"\nduration = \"1s\"\n".into(),
            "scenarios/Rolling Update_v2.toml:8:6: step 2: at: 5s is before step 1 (sleep 1s), which starts at 10s or later; steps run in file order",
        ),
        (
            "a duration that overflows the run clock",
            "[load]\ntarget = \"http://127.0.0.1/\"\nduration = \"100000000000s\"\n".into(),
            "scenarios/Rolling Update_v2.toml:3:12: load.duration: \"100000000000s\" is longer than 24h, the longest run rollcheck measures",
        ),
        (
            "healthcheck interval under Docker's 1ms",
            "[lab]\nkind = \"swarm-local\"\n[service]\nimage = \"x\"\nhealthcheck = { test = [\"CMD\", \"true\"], interval = \"500us\" }\n[load]\ntarget = \"http://127.0.0.1/\"\n".into(),
            "scenarios/Rolling Update_v2.toml:5:52: service.healthcheck.interval: must be at least 1ms (Docker refuses shorter healthcheck durations)",
        ),
        (
            "a rate no generator sends",
            "[load]\ntarget = \"http://127.0.0.1/\"\nmodel = \"open\"\nrate = 1e12\n".into(),
            "scenarios/Rolling Update_v2.toml:4:8: load.rate: must be at most 100000 requests per second (one generator reaches about 27,000 here)",
        ),
        (
            "interval longer than the run",
            "[load]\ntarget = \"http://127.0.0.1/\"\nduration = \"2s\"\ninterval = \"5s\"\n".into(),
            "scenarios/Rolling Update_v2.toml:4:12: load.interval: longer than load.duration (2s)",
        ),
        (
            "a 1ns interval (one histogram each)",
            "[load]\ntarget = \"http://127.0.0.1/\"\ninterval = \"1ns\"\n".into(),
            "scenarios/Rolling Update_v2.toml:3:12: load.interval: must be at least 10ms (each interval keeps a histogram)",
        ),
        (
            "a rate that sends nothing in the run",
            "[load]\ntarget = \"http://127.0.0.1/\"\nmodel = \"open\"\nrate = 0.01\nduration = \"10s\"\n".into(),
            "scenarios/Rolling Update_v2.toml:4:8: load.rate: 0.01/s sends no request in load.duration = 10s",
        ),
        (
            "a timeout past 24h",
            "[load]\ntarget = \"http://127.0.0.1/\"\ntimeout = \"30000h\"\n".into(),
            "scenarios/Rolling Update_v2.toml:3:11: load.timeout: \"30000h\" is longer than 24h, the longest run rollcheck measures",
        ),
        (
            "a rate whose period overflows",
            "[load]\ntarget = \"http://127.0.0.1/\"\nmodel = \"open\"\nrate = 1e-300\n".into(),
            "scenarios/Rolling Update_v2.toml:4:8: load.rate: must be at least one request per 24h",
        ),
        (
            "timeout with wait none",
            with_lab("[[step]]\naction = \"scale\"\nreplicas = 2\nwait = \"none\"\ntimeout = \"5s\"\n"),
            "scenarios/Rolling Update_v2.toml:11:11: step 1: timeout: only applies with wait = \"converged\"",
        ),
    ]
}

#[test]
fn errors_name_position_key_and_fix() {
    let mut failures = Vec::new();
    for (name, text, want) in error_cases() {
        match try_parse(&text) {
            Ok(_) => failures.push(format!("{name}: parsed, expected error\n  want: {want}")),
            Err(got) if got != want => {
                failures.push(format!("{name}:\n  got:  {got}\n  want: {want}"))
            }
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn env_defaults_and_resolved_text() {
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
    let resolved = resolved_toml(text, Path::new(PATH), &env).unwrap();
    assert_eq!(
        resolved,
        "# keep me\n[load]\ntarget = \"http://127.0.0.1:9090/\"\n[[step]]\naction = \"exec\"\ncommand = 'echo hi \"there\" $HOME'\n"
    );
    // The resolved text is itself a scenario that gives the same plan with no environment.
    assert_eq!(parse(&resolved, Path::new(PATH), &|_| None), Ok(p));
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
            "start-first with host-mode port",
            format!(
                "{}[edge]\nkind = \"none\"\n",
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
    let (plan, resolved) = load_resolved(&path).unwrap();
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
    let h = plan.service.unwrap().healthcheck.unwrap();
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
