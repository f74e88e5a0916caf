use super::*;

fn at(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// `ready active worker id <id>` and the like: state, availability, role, leader, id.
fn node(ms: u64, node: &str, words: &str) -> Event {
    let w: Vec<&str> = words.split_whitespace().collect();
    Event::new(
        at(ms),
        What::Node(NodeState {
            node: node.into(),
            state: w[0].into(),
            availability: w[1].into(),
            role: w[2].into(),
            leader: w.contains(&"leader"),
            id: w.last().unwrap().to_string(),
        }),
    )
}

fn task(ms: u64, state: &str, slot: u32, id: &str, node: &str, desired: &str) -> Event {
    Event::new(
        at(ms),
        What::Task(TaskState {
            task: format!("app.{slot}"),
            id: id.into(),
            slot: Some(slot.into()),
            image: "rollcheck/testsvc:1".into(),
            node: Some(node.to_string()).filter(|n| n != "-"),
            state: state.into(),
            desired: desired.into(),
            error: None,
        }),
    )
}

fn rejected(ms: u64, task: &str, id: &str, slot: Option<u64>) -> Event {
    Event::new(
        at(ms),
        What::Task(TaskState {
            task: task.into(),
            id: id.into(),
            slot,
            image: "rollcheck/testsvc:1".into(),
            node: Some("cccccccccccc".into()),
            state: "rejected".into(),
            desired: "shutdown".into(),
            error: Some("Pool overlaps with other one on this address space".into()),
        }),
    )
}

fn step(index: usize, start: u64, end: u64, action: Action) -> (StepSpan, Action) {
    (
        StepSpan {
            index,
            label: action.name().into(),
            action: action.name(),
            start: Duration::from_millis(start),
            end: Duration::from_millis(end),
            ok: true,
            expected_failure: false,
            converges: action.converges(),
            detail: String::new(),
        },
        action,
    )
}

/// worker-3 stops at 10 s; its task t3 is replaced by t9 on worker-1, running at 27 s; the
/// managers see worker-3 down from 24 s to 50 s; no manager answers from 30 to 42 s.
#[test]
fn lanes_reschedule_control_plane_requests_per_node_and_rejections() {
    let w1 = "ready active worker id aaaaaaaaaaaa";
    let w3 = "ready active worker id cccccccccccc";
    let events = vec![
        node(0, "worker-1", w1),
        node(0, "worker-3", w3),
        node(0, "manager-1", "ready drain manager leader id mmmmmmmmmmmm"),
        task(0, "running", 1, "t1t1t1t1t1t1", "aaaaaaaaaaaa", "running"),
        task(0, "running", 3, "t3t3t3t3t3t3", "cccccccccccc", "running"),
        node(24_000, "worker-3", "down active worker id cccccccccccc"),
        // Seen first while pending, before the scheduler picked a node.
        task(24_050, "pending", 3, "t9t9t9t9t9t9", "-", "running"),
        task(
            24_100,
            "assigned",
            3,
            "t9t9t9t9t9t9",
            "aaaaaaaaaaaa",
            "running",
        ),
        task(
            27_000,
            "running",
            3,
            "t9t9t9t9t9t9",
            "aaaaaaaaaaaa",
            "running",
        ),
        Event::new(
            at(30_000),
            What::ControlPlaneUnavailable {
                reason: String::new(),
            },
        ),
        Event::new(
            at(42_000),
            What::ControlPlaneAvailable {
                after: Duration::from_secs(12),
            },
        ),
        node(50_000, "worker-3", w3),
        // The same rejected task seen twice, and one of the in-cluster edge.
        rejected(51_000, "app.2", "r1r1r1r1r1r1", Some(2)),
        rejected(51_500, "app.2", "r1r1r1r1r1r1", Some(2)),
        rejected(52_000, "app-edge.cccccccccccc", "r2r2r2r2r2r2", None),
    ];
    let steps = vec![
        step(
            1,
            10_000,
            11_000,
            Action::Node {
                op: NodeOp::Stop,
                node: NodeName::worker(3),
            },
        ),
        step(
            2,
            45_000,
            47_000,
            Action::Node {
                op: NodeOp::Start,
                node: NodeName::worker(3),
            },
        ),
    ];
    let served = |ok: u64, sent: u64| TaskStats {
        ok,
        first_sent: Duration::from_millis(sent),
        ..TaskStats::default()
    };
    let served = BTreeMap::from([
        (
            "app.1.t1t1t1t1t1t1xxxxxxxxxxxxx".to_string(),
            served(1, 1_000),
        ),
        (
            "app.3.t3t3t3t3t3t3xxxxxxxxxxxxx".to_string(),
            served(1, 2_000),
        ),
        (
            "app.3.t9t9t9t9t9t9xxxxxxxxxxxxx".to_string(),
            served(1, 28_500),
        ),
    ]);
    let f = analyse(&events, &steps, &served, "app", Duration::from_secs(60)).unwrap();
    let secs = Duration::from_secs;
    assert_eq!(
        f.control_plane_unavailable,
        vec![(secs(30), Some(secs(42)))]
    );
    assert_eq!(f.control_plane_unavailable_total, secs(12));
    assert_eq!(
        f.reschedules,
        vec![Reschedule {
            step: 1,
            node: "worker-3".into(),
            at: secs(10),
            tasks_lost: 1,
            running_elsewhere_after: Some(secs(17)),
            first_request_after: Some(Duration::from_millis(18_500)),
        }]
    );
    assert_eq!(
        f.requests_per_node,
        BTreeMap::from([("worker-1".to_string(), 2), ("worker-3".to_string(), 1)])
    );
    assert_eq!(
        f.tasks_rejected,
        BTreeMap::from([(
            "Pool overlaps with other one on this address space".to_string(),
            2
        )])
    );
    let lane = |node: &str, state: &str| {
        f.lanes
            .iter()
            .find(|l| l.node == node && l.state == state)
            .map(|l| (l.start, l.end))
    };
    assert_eq!(
        lane("worker-3", "stopped"),
        Some((secs(10), Some(secs(47))))
    );
    assert_eq!(lane("worker-3", "down"), Some((secs(24), Some(secs(50)))));
    assert_eq!(lane("manager-1", "leader"), Some((secs(0), None)));
}

#[test]
fn manager_stop_marks_the_highest_numbered_managers() {
    let states: Vec<Event> = (1..=3)
        .map(|i| {
            node(
                0,
                &format!("manager-{i}"),
                &format!("ready drain manager id m{i}"),
            )
        })
        .collect();
    let steps = vec![step(1, 5_000, 6_000, Action::ManagerStop { count: 2 })];
    let f = analyse(
        &states,
        &steps,
        &BTreeMap::new(),
        "app",
        Duration::from_secs(60),
    )
    .unwrap();
    let stopped: Vec<&str> = f
        .lanes
        .iter()
        .filter(|l| l.state == "stopped")
        .map(|l| l.node.as_str())
        .collect();
    assert_eq!(stopped, ["manager-2", "manager-3"]);
}

#[test]
fn a_new_leader_reports_nodes_unknown_not_down() {
    let secs = Duration::from_secs;
    let state = node;
    let states = vec![
        state(0, "manager-1", "ready drain manager leader id m1"),
        state(0, "manager-2", "ready drain manager id m2"),
        state(0, "worker-1", "ready active worker id w1"),
        state(16_000, "manager-1", "down drain manager id m1"),
        state(16_000, "manager-2", "ready drain manager leader id m2"),
        state(16_000, "worker-1", "unknown active worker id w1"),
        state(17_000, "worker-1", "ready active worker id w1"),
    ];
    let steps = vec![step(1, 5_000, 5_100, Action::LeaderStop)];
    let f = analyse(
        &states,
        &steps,
        &BTreeMap::new(),
        "app",
        Duration::from_secs(30),
    )
    .unwrap();
    let lanes: Vec<(&str, &str, Duration, Option<Duration>)> = f
        .lanes
        .iter()
        .map(|l| (l.node.as_str(), l.state.as_str(), l.start, l.end))
        .collect();
    for expected in [
        ("worker-1", "unknown", secs(16), Some(secs(17))),
        ("manager-1", "down", secs(16), None),
        ("manager-1", "leader", secs(0), Some(secs(16))),
        ("manager-2", "leader", secs(16), None),
        // The leader when the step started, as the managers reported it.
        ("manager-1", "stopped", secs(5), None),
    ] {
        assert!(lanes.contains(&expected), "{expected:?} in {lanes:?}");
    }
    assert!(
        !lanes.iter().any(|l| l.0 == "worker-1" && l.1 == "down"),
        "{lanes:?}"
    );
}

#[test]
fn no_node_states_means_no_cluster() {
    assert_eq!(
        analyse(&[], &[], &BTreeMap::new(), "app", Duration::ZERO),
        None
    );
}
