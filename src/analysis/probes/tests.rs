use super::*;
use crate::event::{ContainerAction, Event, What};

const EDGE: &str = "rollcheck-edge-app";
const T1: &str = "app.1.aaa";
const T2: &str = "app.2.bbb";

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// The whole analysis at once, through the fold the collector runs: every event, then
/// every ok request in order of completion. `service` is the name of the service under test:
/// containers named `<service>.…` are its tasks, whose probes affect only the requests they
/// served; any other probed container of the lab (the edge) sits in front of every request.
/// `None` when the run saw no probe.
fn analyse(
    events: &[Event],
    requests: &[ProbeRequest],
    service: &str,
    spike_factor: f64,
) -> Option<ProbeAnalysis> {
    let longest = requests
        .iter()
        .map(|r| r.done.saturating_sub(r.sent))
        .max()
        .unwrap_or_default();
    let mut fold = ProbeFold::new(service, longest, spike_factor);
    for e in events {
        fold.event(e);
    }
    let mut requests = requests.to_vec();
    requests.sort_by_key(|r| r.done);
    for r in requests {
        fold.request(r);
    }
    fold.finish()
}

/// Every probe the events show, by start: `health_log` entries, plus exec pairs that no log
/// entry covers (probes that scrolled out of Docker's last-5 log between two polls).
fn probes(events: &[Event]) -> Vec<Probe> {
    let mut fold = ProbeFold::new("", Duration::ZERO, DEFAULT_SPIKE_FACTOR);
    for e in events {
        fold.event(e);
    }
    fold.probes()
}

fn container(at: u64, subject: &str, action: ContainerAction) -> Event {
    Event::new(
        ms(at),
        What::Container {
            container: subject.into(),
            action,
        },
    )
}

fn exec_start(at: u64, subject: &str) -> Event {
    let command = "/bin/sh -c probe".to_string();
    container(at, subject, ContainerAction::ExecStart { command })
}

fn exec_die(at: u64, subject: &str, exit_code: Option<i64>) -> Event {
    container(at, subject, ContainerAction::ExecDie { exit_code })
}

fn exec(start: u64, end: u64, subject: &str) -> [Event; 2] {
    [exec_start(start, subject), exec_die(end, subject, None)]
}

fn log(start: u64, end: u64, exit: i64, subject: &str) -> Event {
    Event::new(
        ms(start),
        What::HealthProbe {
            container: subject.into(),
            end: ms(end),
            exit_code: Some(exit),
            output: "edge ok\n".into(),
        },
    )
}

fn req(task: &str, sent: u64, done: u64) -> ProbeRequest {
    ProbeRequest {
        task: task.into(),
        sent: ms(sent),
        done: ms(done),
        connect: Duration::ZERO,
    }
}

fn probe(container: &str, start: u64, end: u64, exit_code: Option<i64>) -> Probe {
    Probe {
        container: container.into(),
        start: ms(start),
        end: ms(end),
        exit_code,
    }
}

#[test]
fn probes_from_exec_pairs_and_health_log() {
    let cases: Vec<(&str, Vec<Event>, Vec<Probe>)> = vec![
        (
            "exec pairs per container, in time order",
            [
                exec(100, 150, EDGE),
                exec(120, 300, T1),
                exec(1100, 1180, EDGE),
            ]
            .concat(),
            vec![
                probe(EDGE, 100, 150, None),
                probe(T1, 120, 300, None),
                probe(EDGE, 1100, 1180, None),
            ],
        ),
        (
            "a die without a start is ignored, a start without a die too",
            vec![exec_die(50, EDGE, None), exec_start(100, EDGE)],
            vec![],
        ),
        (
            "a start clamped to the clock's zero is not a probe: its die pairs with nothing",
            [exec(0, 40, EDGE), exec(1000, 1050, EDGE)].concat(),
            vec![probe(EDGE, 1000, 1050, None)],
        ),
        (
            "log entry replaces the exec pair it covers and brings the exit code",
            [
                exec(100, 150, EDGE).to_vec(),
                vec![log(98, 155, 1, EDGE)],
                exec(1100, 1180, EDGE).to_vec(),
            ]
            .concat(),
            vec![probe(EDGE, 98, 155, Some(1)), probe(EDGE, 1100, 1180, None)],
        ),
        (
            "a log entry seen by two polls counts once; exit code from exec_die kept",
            vec![
                log(98, 155, 0, EDGE),
                log(98, 155, 0, EDGE),
                exec_start(400, T2),
                exec_die(450, T2, Some(3)),
            ],
            vec![probe(EDGE, 98, 155, Some(0)), probe(T2, 400, 450, Some(3))],
        ),
        (
            "other container events and harness notes are not probes",
            vec![
                container(10, T1, ContainerAction::Start { image: "x".into() }),
                Event::note(ms(20), "health_log", EDGE, "end_ms=30 exit_code=0 output="),
            ],
            vec![],
        ),
    ];
    for (name, events, want) in cases {
        assert_eq!(probes(&events), want, "{name}");
    }
}

/// 100 requests of 10 ms on each task outside probes, and what happens while probes run.
fn background() -> Vec<ProbeRequest> {
    (0..100)
        .flat_map(|i| {
            let t = 2000 + i * 20;
            [req(T1, t, t + 10), req(T2, t, t + 10)]
        })
        .collect()
}

#[test]
fn in_probe_versus_outside() {
    struct Case {
        name: &'static str,
        events: Vec<Event>,
        extra: Vec<ProbeRequest>,
        in_count: u64,
        in_p99_ms: Option<u64>,
        spikes: Vec<(&'static str, u64)>,
    }
    let cases = vec![
        Case {
            name: "edge probe slows every request in flight, whatever the task",
            events: exec(100, 200, EDGE).to_vec(),
            extra: vec![req(T1, 90, 150), req(T2, 150, 250), req(T1, 200, 210)],
            // The request that starts exactly at the probe's end did not overlap it.
            in_count: 2,
            in_p99_ms: Some(100),
            spikes: vec![(EDGE, 100)],
        },
        Case {
            name: "task probe affects only its own task's requests",
            events: exec(100, 200, T1).to_vec(),
            extra: vec![req(T1, 90, 150), req(T2, 150, 250)],
            in_count: 1,
            in_p99_ms: Some(60),
            spikes: vec![(T1, 60)],
        },
        Case {
            name: "fast requests during a probe: no spike",
            events: exec(100, 200, EDGE).to_vec(),
            extra: vec![req(T1, 110, 120), req(T2, 150, 169)],
            in_count: 2,
            in_p99_ms: Some(19),
            spikes: vec![],
        },
        Case {
            name: "no request during the probe: nothing in probe, no spike",
            events: [exec(100, 200, EDGE), exec(5000, 5100, T2)].concat(),
            extra: vec![],
            in_count: 0,
            in_p99_ms: None,
            spikes: vec![],
        },
    ];
    for c in cases {
        let mut requests = background();
        requests.extend(c.extra);
        let a = analyse(&c.events, &requests, "app", DEFAULT_SPIKE_FACTOR)
            .unwrap_or_else(|| panic!("{}: probes expected", c.name));
        let inside = a.in_probe.map(|p| p.count).unwrap_or(0);
        assert_eq!(inside, c.in_count, "{}: in-probe count", c.name);
        assert_eq!(
            a.in_probe.map(|p| p.p99.as_millis() as u64),
            c.in_p99_ms,
            "{}: in-probe p99",
            c.name
        );
        let outside = a.outside.unwrap();
        assert_eq!(outside.count, requests.len() as u64 - inside, "{}", c.name);
        assert_eq!(outside.p99.as_millis(), 10, "{}: baseline", c.name);
        let spikes: Vec<(&str, u64)> = a
            .spikes
            .iter()
            .map(|s| (s.container.as_str(), s.p99.as_millis() as u64))
            .collect();
        assert_eq!(spikes, c.spikes, "{}: spikes", c.name);
        for s in &a.spikes {
            assert_eq!(s.baseline_p99.as_millis(), 10, "{}", c.name);
        }
    }
}

#[test]
fn ratio_and_container_figures() {
    let events = [
        exec(100, 200, EDGE).to_vec(),
        vec![log(1000, 1300, 1, EDGE)],
        exec(2500, 2540, T1).to_vec(),
    ]
    .concat();
    let mut requests = background();
    requests.push(req(T2, 150, 190)); // edge probe, 40 ms
    let a = analyse(&events, &requests, "app", 2.0).unwrap();
    let edge = &a.containers[1];
    assert_eq!(
        (
            edge.name.as_str(),
            edge.on_every_request,
            edge.probes,
            edge.failed
        ),
        (EDGE, true, 2, 1)
    );
    assert_eq!((edge.mean, edge.max), (ms(200), ms(300)));
    let task = &a.containers[0];
    assert_eq!((task.name.as_str(), task.on_every_request), (T1, false));
    // In probe: the 40 ms request and T1's requests during 2500..2540 (10 ms each).
    let ratio = a.p99_ratio().unwrap();
    assert!((ratio - 4.0).abs() < 0.01, "p99 ratio {ratio}");
    assert_eq!(a.p50_ratio(), Some(1.0));
}

#[test]
fn no_probe_no_section() {
    assert_eq!(analyse(&[], &background(), "app", 2.0), None);
}

#[test]
fn a_task_named_like_another_service_is_the_edge() {
    // `app-edge.<node>.<id>` (the edge as a global service) is not a task of `app`.
    let events = exec(100, 200, "app-edge.n1.xyz").to_vec();
    let a = analyse(&events, &[req(T1, 90, 150)], "app", 2.0).unwrap();
    assert!(a.containers[0].on_every_request);
    assert_eq!(a.in_probe.unwrap().count, 1);
}

/// Requests in flight while a step ran, or while a node fault lasted until the step that
/// undoes it, are the step's: left out of in-probe and outside, and of the spikes.
#[test]
fn requests_during_steps_and_faults_are_left_out() {
    let step = |at: u64, index: usize, start: bool| {
        let step = format!("step {index}");
        Event::new(
            ms(at),
            if start {
                What::StepStart { index, step }
            } else {
                What::StepEnd {
                    index,
                    step,
                    ok: true,
                    detail: String::new(),
                }
            },
        )
    };
    let roles = std::collections::BTreeMap::from([
        (1, StepRole::Fault("worker-3".into())),
        (2, StepRole::Undo("worker-3".into())),
    ]);
    let mut fold = ProbeFold::new("app", ms(5000), DEFAULT_SPIKE_FACTOR).with_steps(roles);
    // node_stop 1000..1100, node_start 3000..3200; an edge probe at 2000..2100 meets slow
    // requests, which are the fault's.
    let mut events = vec![step(1000, 1, true), step(1100, 1, false)];
    events.extend(exec(2000, 2100, EDGE));
    events.extend([step(3000, 2, true), step(3200, 2, false)]);
    for e in &events {
        fold.event(e);
    }
    let mut requests = background(); // 2000..4000, 10 ms each
    requests.push(req(T1, 1900, 4900)); // slow, in flight during the probe and the fault
    requests.retain(|r| r.done <= ms(3000) || r.sent >= ms(3200));
    requests.sort_by_key(|r| r.done);
    let total = requests.len() as u64;
    for r in requests {
        fold.request(r);
    }
    let a = fold.finish().unwrap();
    assert!(a.spikes.is_empty(), "{:?}", a.spikes);
    let judged = a.in_probe.map_or(0, |p| p.count) + a.outside.map_or(0, |p| p.count);
    assert_eq!(judged + a.left_out, total);
    assert!(a.left_out > 0, "requests during the fault were left out");
    assert_eq!(
        a.in_probe.map_or(0, |p| p.count),
        0,
        "the probe ran during the fault"
    );
}

/// A request whose own connect needed a SYN retransmit is slow for the network's reason:
/// left out and counted apart, not a spike of the probe it overlapped.
#[test]
fn requests_that_connected_late_are_left_out() {
    let run = |connect: Duration| {
        let mut fold = ProbeFold::new("app", ms(5000), DEFAULT_SPIKE_FACTOR);
        for e in exec(2500, 2600, EDGE) {
            fold.event(&e);
        }
        let mut requests = background();
        for t in [2400, 2450, 2500] {
            let mut slow = req(T1, t, t + 3000);
            slow.connect = connect;
            requests.push(slow);
        }
        requests.sort_by_key(|r| r.done);
        for r in requests {
            fold.request(r);
        }
        fold.finish().unwrap()
    };
    let measured = run(Duration::from_millis(2));
    assert_eq!(
        measured.spikes.len(),
        1,
        "slow requests during the probe are its spike"
    );
    assert_eq!(measured.left_out_slow_connect, 0);
    let retransmitted = run(Duration::from_millis(1003));
    assert!(
        retransmitted.spikes.is_empty(),
        "{:?}",
        retransmitted.spikes
    );
    assert_eq!(retransmitted.left_out_slow_connect, 3);
}
