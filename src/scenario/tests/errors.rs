//! Every malformed scenario the validation refuses, with its exact message: file:line:col,
//! the key path, and what to do.

use super::*;

const LAB: &str = "[lab]\nkind = \"swarm-local\"\n[service]\nimage = \"x\"\n";
pub(super) const LOAD: &str = "[load]\ntarget = \"http://127.0.0.1:8080/\"\n";

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
            "[lab]\nkind = \"swarm-local\"\n[service]\nimage = \"x\"\nreplicas = 2\n[edge]\nkind = \"none\"\nall_interfaces = true\n[load]\ntarget = \"http://127.0.0.1/\"\n".into(),
            "scenarios/Rolling Update_v2.toml:5:12: service.replicas: 2 replicas with edge.kind = \"none\" on a single-node lab: a host-mode port fits one task per node, the others would stay pending (use edge.kind = \"nginx\", or replicas = 1)",
        ),
        (
            "a Swarm-published edge port without consent to every interface",
            "[lab]\nkind = \"swarm-local\"\n[service]\nimage = \"x\"\n[edge]\npublish = \"127.0.0.1:9000\"\nmode = \"global-service\"\n[load]\ntarget = \"http://127.0.0.1:9000/\"\n".into(),
            "scenarios/Rolling Update_v2.toml:7:8: edge.mode: mode = \"global-service\" publishes a host-mode port, a Swarm port: it binds 9000 on every interface of this machine, not only 127.0.0.1 (Swarm ports take no address); set edge.all_interfaces = true to accept that, or use kind = \"nginx\" with mode = \"container\" (loopback only)",
        ),
        (
            "an image reference the engine refuses",
            "[lab]\nkind = \"swarm-local\"\n[service]\nimage = \"my app:1\"\n[load]\ntarget = \"http://127.0.0.1/\"\n".into(),
            "scenarios/Rolling Update_v2.toml:4:9: service.image: \"my app:1\" is not an image reference (host or path invalid char at ' '): write [registry/]name[:tag][@digest], the name in lowercase",
        ),
        (
            "a reserved label",
            "[lab]\nkind = \"swarm-local\"\n[service]\nimage = \"x\"\nlabels = { \"rollcheck.run\" = \"other\" }\n[load]\ntarget = \"http://127.0.0.1/\"\n".into(),
            "scenarios/Rolling Update_v2.toml:5:30: service.labels: label \"rollcheck.run\": rollcheck.* labels are rollcheck's own (they mark what a run created and must remove); choose another name",
        ),
        (
            "haproxy outside a cluster",
            "[lab]\nkind = \"swarm-local\"\n[service]\nimage = \"x\"\n[edge]\nkind = \"haproxy\"\n[load]\ntarget = \"http://127.0.0.1/\"\n".into(),
            "scenarios/Rolling Update_v2.toml:6:8: edge.kind: \"haproxy\" is the outer edge of a swarm-cluster lab only; a swarm-local lab uses \"nginx\"",
        ),
        (
            "a cluster fronted by the routing mesh",
            "[lab]\nkind = \"swarm-cluster\"\n[service]\nimage = \"x\"\n[edge]\nkind = \"ingress\"\nall_interfaces = true\n[load]\ntarget = \"http://127.0.0.1/\"\n".into(),
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
