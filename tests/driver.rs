//! The Docker driver against the real engine (no mocks): images, a swarm-local lab with an
//! nginx edge, an image update, rollback and scale, and cleanup by label. Needs a running
//! dockerd (ci/setup) and mmdebstrap or a registry for the edge image. Tests share one engine
//! and one swarm, so they run one at a time.

mod common;

use rollcheck::clock::Clock;
use rollcheck::driver::images::{NGINX_IMAGE, TESTSVC_REPO};
use rollcheck::driver::{Driver, DriverError, LABEL_RUN, LabHandle};
use rollcheck::event::{Event, EventSource};
use rollcheck::scenario::*;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

static ENGINE: Mutex<()> = Mutex::const_new(());

const EXE: &str = env!("CARGO_BIN_EXE_rollcheck");

fn run_id(name: &str) -> String {
    format!("test-{name}-{}", std::process::id())
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

fn plan(service_name: &str, publish: SocketAddr, kind: EdgeKind, image_steps: &[&str]) -> Plan {
    let fast = UpdateConfig {
        parallelism: 1,
        delay: Duration::from_millis(500),
        monitor: Duration::from_secs(1),
        ..UpdateConfig::default()
    };
    let service = Service {
        name: service_name.into(),
        image: "rollcheck/testsvc:1".into(),
        replicas: 3,
        endpoint_mode: EndpointMode::Dnsrr,
        port: 8080,
        stop_grace_period: Some(Duration::from_secs(2)),
        env: BTreeMap::from([("DELAY".into(), "50ms".into())]),
        labels: BTreeMap::from([("team".into(), "driver-tests".into())]),
        healthcheck: Some(Healthcheck {
            test: [
                "CMD",
                "/rollcheck",
                "probe",
                "http://127.0.0.1:8080/healthz",
            ]
            .map(String::from)
            .to_vec(),
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(2),
            retries: 3,
            start_period: Duration::ZERO,
        }),
        update: fast.clone(),
        rollback: fast,
    };
    let steps = image_steps
        .iter()
        .enumerate()
        .map(|(i, image)| Step {
            index: i + 1,
            label: format!("update_image {image}"),
            timing: Timing::After(Duration::ZERO),
            action: Action::UpdateImage {
                image: image.to_string(),
                wait: Wait::Converged {
                    timeout: Duration::from_secs(90),
                },
            },
            expect_failure: false,
            service: None,
        })
        .collect();
    Plan {
        title: "driver test".into(),
        source: "tests/driver.rs".into(),
        slug: "driver-test".into(),
        setup: Setup::Lab(Box::new(LabSetup {
            lab: Lab::SwarmLocal,
            service,
            edge: Edge {
                kind,
                publish,
                mode: EdgeMode::Container,
                protocol: rollcheck::scenario::EdgeProtocol::Http,
                retries: true,
                healthcheck: None,
                tls: None,
            },
        })),
        load: Load {
            target: format!("http://{publish}/").parse().expect("uri"),
            model: LoadModel::Closed {
                concurrency: 2,
                error_pause: Duration::from_millis(100),
            },
            keepalive: false,
            preconnect: 0,
            generators: 1,
            placement: Vec::new(),
            timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(1),
            duration: None,
            settle: Duration::from_secs(1),
            interval: Duration::from_secs(1),
            headers: BTreeMap::new(),
            tls: Default::default(),
            connect_to: None,
            mix: Vec::new(),
            ready: None,
        },
        steps,
        gate: Gate::default(),
        secrets: Default::default(),
    }
}

/// One GET; returns the status and the X-Rollcheck-Version header.
async fn get(addr: SocketAddr) -> Result<(u16, String), String> {
    let attempt = async {
        let mut s = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| e.to_string())?;
        s.write_all(
            format!("GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&out).to_string();
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or(text.clone())?;
        let version = text
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("x-rollcheck-version:")
                    .map(|v| v.trim().to_string())
            })
            .unwrap_or_default();
        Ok((status, version))
    };
    tokio::time::timeout(Duration::from_secs(5), attempt)
        .await
        .unwrap_or(Err("timeout".into()))
}

/// Versions that served `n` requests through the edge.
async fn versions(addr: SocketAddr, n: usize) -> Vec<String> {
    let mut seen = Vec::new();
    for _ in 0..n {
        match get(addr).await {
            Ok((200, v)) => seen.push(v),
            other => seen.push(format!("{other:?}")),
        }
    }
    seen
}

async fn labelled_leftovers(run: &str) -> usize {
    common::labelled(format!("{LABEL_RUN}={run}")).await
}

fn print(line: &str) {
    eprintln!("  {line}");
}

#[tokio::test]
async fn images_build_and_differ() {
    let _engine = ENGINE.lock().await;
    let driver = Driver::connect(run_id("images")).await.expect("engine");
    let started = Instant::now();
    // Every image is named by what the driver says it made, never by a tag of the test's own:
    // a stale image of an older build must not let this pass.
    let v1 = driver
        .ensure_testsvc("1", Some(Path::new(EXE)), &print)
        .await
        .expect("testsvc:1");
    let v2 = driver
        .ensure_testsvc("2", Some(Path::new(EXE)), &print)
        .await
        .expect("testsvc:2");
    assert_eq!(v1, format!("{TESTSVC_REPO}:1"));
    eprintln!("testsvc images ready in {:.1?}", started.elapsed());
    let docker = bollard::Docker::connect_with_local_defaults()
        .unwrap()
        .negotiate_version()
        .await
        .unwrap();
    let env = |image: String| {
        let docker = docker.clone();
        async move {
            docker
                .inspect_image(&image)
                .await
                .unwrap()
                .config
                .unwrap()
                .env
                .unwrap()
        }
    };
    let (env1, env2) = (env(v1.clone()).await, env(v2.clone()).await);
    assert!(env1.contains(&"VERSION=1".to_string()), "{env1:?}");
    assert!(env2.contains(&"VERSION=2".to_string()), "{env2:?}");
    let id = |i: bollard::models::ImageInspect| i.id.unwrap();
    assert_ne!(
        id(docker.inspect_image(&v1).await.unwrap()),
        id(docker.inspect_image(&v2).await.unwrap())
    );

    let started = Instant::now();
    let nginx = driver.ensure_nginx(&print).await.expect("nginx edge image");
    eprintln!("nginx image ready in {:.1?}", started.elapsed());
    assert_eq!(nginx, NGINX_IMAGE);
    assert!(docker.inspect_image(nginx).await.is_ok(), "{nginx}");
}

#[tokio::test]
async fn non_static_executables_are_refused() {
    let driver = Driver::connect(run_id("static")).await.expect("engine");
    let err = driver
        .ensure_testsvc("x", Some(Path::new("/bin/sh")), &print)
        .await
        .unwrap_err();
    assert!(matches!(err, DriverError::NotStatic { .. }), "{err}");
    assert!(err.to_string().contains("PT_INTERP"), "{err}");
}

#[tokio::test]
async fn lab_update_rollback_scale_teardown() {
    let _engine = ENGINE.lock().await;
    let run = run_id("lab");
    let driver = Driver::connect(&run).await.expect("engine");
    let publish: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let plan = plan(
        "rc-test-app",
        publish,
        EdgeKind::Nginx,
        &["rollcheck/testsvc:2"],
    );
    driver
        .ensure_images(&plan, Some(Path::new(EXE)), &print)
        .await
        .expect("images");

    let clock = Clock::start();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Event>();
    let started = Instant::now();
    let result = async {
        let lab = driver.provision(&plan, &clock, &tx).await?;
        eprintln!("provisioned in {:.1?}", started.elapsed());
        exercise(&driver, &lab, &plan, &clock, &tx).await
    }
    .await;
    let teardown = driver.teardown().await;
    result.expect("lab scenario");
    teardown.expect("teardown");
    assert_eq!(
        labelled_leftovers(&run).await,
        0,
        "objects labelled {run} left after teardown"
    );

    let mut events = Vec::new();
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    let count = |source: EventSource, kind: &str| {
        events
            .iter()
            .filter(|e| e.source() == source && e.kind() == kind)
            .count()
    };
    eprintln!(
        "events: {} (docker start {}, die {}, exec_start {}, task running {}, service completed {})",
        events.len(),
        count(EventSource::Docker, "start"),
        count(EventSource::Docker, "die"),
        count(EventSource::Docker, "exec_start"),
        count(EventSource::Task, "running"),
        count(EventSource::Service, "completed"),
    );
    // Update to v2 replaces 3 tasks and the rollback 3 more: their containers start and die.
    assert!(
        count(EventSource::Docker, "start") >= 6,
        "container starts seen by the watcher"
    );
    assert!(
        count(EventSource::Docker, "die") >= 6,
        "container deaths seen by the watcher"
    );
    assert!(
        count(EventSource::Docker, "exec_start") > 0,
        "healthcheck probes are exec events"
    );
    assert!(
        count(EventSource::Task, "running") >= 6,
        "task states polled"
    );
    // Stamps come from the engine (event and task-status times) converted to the run clock:
    // all inside the run, none at the clamp value zero (the clock started before the lab).
    let end = clock.now();
    let docker: Vec<&Event> = events
        .iter()
        .filter(|e| e.source() == EventSource::Docker)
        .collect();
    assert!(
        docker.iter().all(|e| e.at > Duration::ZERO && e.at <= end),
        "docker event times on the run clock"
    );
    let worst = events
        .windows(2)
        .map(|w| w[0].at.saturating_sub(w[1].at))
        .max()
        .unwrap_or_default();
    eprintln!("largest arrival-order inversion: {worst:.1?} (the collector sorts by time)");
}

async fn exercise(
    driver: &Driver,
    lab: &LabHandle,
    plan: &Plan,
    clock: &Clock,
    tx: &rollcheck::event::EventSink,
) -> Result<(), DriverError> {
    let addr = lab.target;
    let cancel = CancellationToken::new();
    let watcher = driver.watch(lab, *clock, tx.clone(), cancel.clone());

    let before = versions(addr, 6).await;
    assert!(
        before.iter().all(|v| v == "1"),
        "v1 through the edge: {before:?}"
    );

    // Light load through the edge during the update: the edge config (re-resolving DNS,
    // retrying the next task on connect errors) is what keeps a stop-first update clean.
    let load_stop = CancellationToken::new();
    let load = tokio::spawn({
        let stop = load_stop.clone();
        async move {
            let (mut ok, mut failed) = (0u32, Vec::new());
            while !stop.is_cancelled() {
                match get(addr).await {
                    Ok((200, _)) => ok += 1,
                    other => failed.push(format!("{other:?}")),
                }
            }
            (ok, failed)
        }
    });
    let t = Instant::now();
    let detail = driver.apply(lab, &plan.steps[0].action, clock, tx).await?;
    eprintln!(
        "update_image -> 2: {detail} (step took {:.1?})",
        t.elapsed()
    );
    load_stop.cancel();
    let (ok, failed) = load.await.expect("load task");
    eprintln!(
        "requests through the edge during the update: {ok} ok, {} failed",
        failed.len()
    );
    assert!(ok > 20, "load ran during the update");
    assert!(
        failed.is_empty(),
        "dropped during a stop-first update behind nginx: {failed:?}"
    );
    let after = versions(addr, 6).await;
    assert!(
        after.iter().all(|v| v == "2"),
        "v2 after the update: {after:?}"
    );

    let t = Instant::now();
    let rollback = Action::Rollback {
        wait: Wait::Converged {
            timeout: Duration::from_secs(90),
        },
    };
    let detail = driver.apply(lab, &rollback, clock, tx).await?;
    eprintln!("rollback: {detail} (step took {:.1?})", t.elapsed());
    let back = versions(addr, 6).await;
    assert!(
        back.iter().all(|v| v == "1"),
        "v1 after the rollback: {back:?}"
    );

    let before = running_tasks(&lab.service.name).await;
    let scale = Action::Scale {
        replicas: 1,
        wait: Wait::Converged {
            timeout: Duration::from_secs(60),
        },
    };
    let detail = driver.apply(lab, &scale, clock, tx).await?;
    eprintln!("scale: {detail}");
    assert!(detail.starts_with("scale to 1; 1 tasks"), "{detail}");
    // A scale is a read-modify-write of the spec: it must keep the healthcheck (bollard's
    // model drops it on read) and must not replace the task that stays.
    let after = running_tasks(&lab.service.name).await;
    assert_eq!(after.len(), 1, "{after:?}");
    assert!(
        before.contains(&after[0]),
        "scale replaced the remaining task: {before:?} -> {after:?}"
    );
    let docker = bollard::Docker::connect_with_local_defaults()
        .unwrap()
        .negotiate_version()
        .await
        .unwrap();
    let container = docker
        .inspect_container(&after[0].1, None)
        .await
        .expect("task container");
    let health = container
        .config
        .and_then(|c| c.healthcheck)
        .and_then(|h| h.test);
    assert_eq!(
        health.as_deref().and_then(|t| t.get(1)).map(String::as_str),
        Some("/rollcheck"),
        "healthcheck kept"
    );

    // Give the watcher a moment to see the last task states, then stop it.
    tokio::time::sleep(Duration::from_millis(800)).await;
    cancel.cancel();
    watcher.await.expect("watcher ends on cancel");
    Ok(())
}

/// (task id, container id) of the service's running tasks.
async fn running_tasks(service: &str) -> Vec<(String, String)> {
    let docker = bollard::Docker::connect_with_local_defaults()
        .unwrap()
        .negotiate_version()
        .await
        .unwrap();
    let opts = bollard::query_parameters::ListTasksOptions {
        filters: Some(std::collections::HashMap::from([
            ("service".to_string(), vec![service.to_string()]),
            ("desired-state".to_string(), vec!["running".to_string()]),
        ])),
    };
    let mut tasks: Vec<(String, String)> = docker
        .list_tasks(Some(opts))
        .await
        .unwrap()
        .into_iter()
        .filter_map(|t| Some((t.id?, t.status?.container_status?.container_id?)))
        .collect();
    tasks.sort();
    tasks
}

#[tokio::test]
async fn ingress_without_ipvs_fails_before_creating_anything() {
    if rollcheck::driver::lab::no_ipvs_evidence().is_none() {
        common::skip(
            "ingress_without_ipvs_fails_before_creating_anything",
            "this kernel has IPVS, so ingress can work here",
        );
        return;
    }
    let _engine = ENGINE.lock().await;
    let run = run_id("ingress");
    let driver = Driver::connect(&run).await.expect("engine");
    let publish: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let plan = plan("rc-test-ingress", publish, EdgeKind::Ingress, &[]);
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let err = driver
        .provision(&plan, &Clock::start(), &tx)
        .await
        .unwrap_err();
    assert!(matches!(err, DriverError::NoIpvs { .. }), "{err}");
    assert!(err.to_string().contains("/proc/net/ip_vs"), "{err}");
    assert_eq!(labelled_leftovers(&run).await, 0);
}

async fn docker() -> bollard::Docker {
    bollard::Docker::connect_with_local_defaults()
        .unwrap()
        .negotiate_version()
        .await
        .unwrap()
}

#[tokio::test]
async fn unlabelled_service_of_the_same_name_is_never_touched() {
    let _engine = ENGINE.lock().await;
    let run = run_id("foreign");
    let driver = Driver::connect(&run).await.expect("engine");
    let publish: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut plan = plan("rc-test-foreign", publish, EdgeKind::None, &[]);
    plan.lab_mut().unwrap().service.replicas = 1;
    driver
        .ensure_images(&plan, Some(Path::new(EXE)), &print)
        .await
        .expect("images");
    // A lab first, so the swarm exists; then someone else's service under our name.
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    driver
        .provision(&plan, &Clock::start(), &tx)
        .await
        .expect("provision");
    driver.teardown().await.expect("teardown");
    let docker = docker().await;
    let spec = bollard::models::ServiceSpec {
        name: Some("rc-test-foreign".into()),
        task_template: Some(bollard::models::TaskSpec {
            container_spec: Some(bollard::models::TaskSpecContainerSpec {
                image: Some("rollcheck/testsvc:1".into()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    docker
        .create_service(spec, None)
        .await
        .expect("foreign service");
    let err = driver
        .provision(&plan, &Clock::start(), &tx)
        .await
        .unwrap_err();
    let still_there = docker
        .inspect_service(
            "rc-test-foreign",
            None::<bollard::query_parameters::InspectServiceOptions>,
        )
        .await
        .is_ok();
    docker
        .delete_service("rc-test-foreign")
        .await
        .expect("remove foreign service");
    assert!(matches!(err, DriverError::Foreign { .. }), "{err}");
    assert!(still_there, "the foreign service was removed");
    assert_eq!(labelled_leftovers(&run).await, 0);
}

/// A second run replaces the first run's lab (edge kind none, host-mode port) with a global
/// nginx edge; env and force updates converge; a failing healthcheck pauses the update and
/// that surfaces as `UpdatePaused`, not as a hang.
#[tokio::test]
async fn leftovers_global_edge_updates_and_pause() {
    let _engine = ENGINE.lock().await;
    let (run_a, run_b) = (run_id("left-a"), run_id("left-b"));
    let publish: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut plan_a = plan("rc-test-left", publish, EdgeKind::None, &[]);
    plan_a.lab_mut().unwrap().service.replicas = 1;
    let a = Driver::connect(&run_a).await.expect("engine");
    a.ensure_images(&plan_a, Some(Path::new(EXE)), &print)
        .await
        .expect("images");
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let clock = Clock::start();
    let lab_a = a
        .provision(&plan_a, &clock, &tx)
        .await
        .expect("lab a (edge none)");
    let served = versions(lab_a.target, 3).await;
    assert!(
        served.iter().all(|v| v == "1"),
        "host-mode port serves: {served:?}"
    );

    let mut plan_b = plan_a.clone();
    plan_b.lab_mut().unwrap().service.replicas = 2;
    plan_b.lab_mut().unwrap().edge.kind = EdgeKind::Nginx;
    plan_b.lab_mut().unwrap().edge.mode = EdgeMode::GlobalService;
    let b = Driver::connect(&run_b).await.expect("engine");
    b.ensure_images(&plan_b, Some(Path::new(EXE)), &print)
        .await
        .expect("images");
    let result = async {
        let lab = b.provision(&plan_b, &clock, &tx).await?;
        assert_eq!(labelled_leftovers(&run_a).await, 0, "run a's lab replaced");
        assert_eq!(lab.edge_service.as_deref(), Some("rc-test-left-edge"));
        let served = versions(lab.target, 4).await;
        assert!(
            served.iter().all(|v| v == "1"),
            "through the global edge: {served:?}"
        );

        let change = ServiceChange {
            env: Some(BTreeMap::from([("DELAY".into(), "10ms".into())])),
            force: true,
            ..Default::default()
        };
        let wait = Wait::Converged {
            timeout: Duration::from_secs(60),
        };
        let detail = b
            .apply(&lab, &Action::Update { change, wait }, &clock, &tx)
            .await?;
        eprintln!("update env+force: {detail}");
        assert!(
            detail.contains("force_update=1") && detail.contains("2 tasks"),
            "{detail}"
        );

        let failing = Healthcheck {
            test: ["CMD", "/rollcheck", "probe", "http://127.0.0.1:9/"]
                .map(String::from)
                .to_vec(),
            interval: Duration::from_millis(500),
            timeout: Duration::from_secs(1),
            retries: 1,
            start_period: Duration::ZERO,
        };
        let change = ServiceChange {
            healthcheck: Some(failing),
            ..Default::default()
        };
        let t = Instant::now();
        let err = b
            .apply(&lab, &Action::Update { change, wait }, &clock, &tx)
            .await
            .unwrap_err();
        eprintln!("failing healthcheck after {:.1?}: {err}", t.elapsed());
        assert!(matches!(err, DriverError::UpdatePaused { .. }), "{err}");
        assert!(
            t.elapsed() < Duration::from_secs(50),
            "paused must end the wait early"
        );

        // remove, then deploy recreates the service from the plan and the edge finds it.
        let detail = b.apply(&lab, &Action::Remove, &clock, &tx).await?;
        assert!(detail.starts_with("removed"), "{detail}");
        let detail = b.apply(&lab, &Action::Deploy { wait }, &clock, &tx).await?;
        eprintln!("deploy after remove: {detail}");
        assert!(detail.starts_with("created rc-test-left"), "{detail}");
        let served = versions(lab.target, 4).await;
        assert!(
            served.iter().all(|v| v == "1"),
            "after redeploy: {served:?}"
        );

        let rows = b.lab_status().await?;
        assert!(
            rows.iter()
                .any(|r| r.kind == "service" && r.name == "rc-test-left" && r.run == run_b)
        );
        Ok::<_, DriverError>(())
    }
    .await;
    let teardown = b.teardown().await;
    result.expect("lab b");
    teardown.expect("teardown");
    assert_eq!(labelled_leftovers(&run_b).await, 0);
}

/// `lab down` removes everything any rollcheck run left and leaves the swarm rollcheck made.
/// Opt-in (ROLLCHECK_TEST_LAB_DOWN=1): it would also remove labs of other runs on this engine.
#[tokio::test]
async fn lab_down_removes_every_managed_object() {
    if std::env::var_os("ROLLCHECK_TEST_LAB_DOWN").is_none() {
        common::skip(
            "lab_down_removes_every_managed_object",
            "set ROLLCHECK_TEST_LAB_DOWN=1 (removes every rollcheck lab on this engine; ci/test sets it with CI=true)",
        );
        return;
    }
    let _engine = ENGINE.lock().await;
    let run = run_id("down");
    let driver = Driver::connect(&run).await.expect("engine");
    let publish: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut plan = plan("rc-test-down", publish, EdgeKind::Nginx, &[]);
    plan.lab_mut().unwrap().service.replicas = 1;
    driver
        .ensure_images(&plan, Some(Path::new(EXE)), &print)
        .await
        .expect("images");
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    driver
        .provision(&plan, &Clock::start(), &tx)
        .await
        .expect("provision");
    let rows = driver.lab_status().await.expect("status");
    for r in &rows {
        eprintln!("  {:<9} {:<40} {:<28} {}", r.kind, r.name, r.run, r.state);
    }
    let created_swarm = rows
        .iter()
        .any(|r| r.kind == "swarm" && r.state.contains("created by rollcheck"));
    driver.lab_down().await.expect("lab down");
    assert_eq!(
        common::labelled(format!("{}=true", rollcheck::driver::LABEL_MANAGED)).await,
        0
    );
    let state = docker()
        .await
        .info()
        .await
        .unwrap()
        .swarm
        .unwrap()
        .local_node_state;
    if created_swarm {
        assert_eq!(
            state,
            Some(bollard::models::LocalNodeState::INACTIVE),
            "swarm left"
        );
    }
}
