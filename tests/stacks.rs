//! Stacks: the user's compose files deployed with the real `docker stack deploy` on the local
//! engine's swarm, their own proxy as the front door. Each must reach the verdict its scenario
//! promises and leave nothing behind that it created — and nothing of the user's touched.

mod common;

use common::run::*;
use common::swarm::*;
use common::{BIN, labelled};
use std::path::Path;
use std::process::Command;

/// The user's own stack (scenarios/stack/): deployed with the real `docker stack deploy`,
/// its app updated under load through the stack's own nginx; afterwards nothing the stack
/// created is left, by rollcheck's label or by the stack's own.
#[test]
fn stack_rolling_update_drops_nothing() {
    let _engine = lock();
    let r = run(&scenario("stack/stack-rolling"));
    assert_eq!(r.code(), Some(0), "{}", r.context());
    assert_eq!(r.summary["requests"]["dropped"], 0);
    assert_eq!(r.summary["steps"][0]["ok"], true, "{}", r.summary["steps"]);
    assert!(r.summary["versions"]["1"].as_u64().unwrap() > 0);
    assert!(r.summary["versions"]["2"].as_u64().unwrap() > 0);
    let requests = std::fs::read_to_string(r.dir.join("requests.csv")).unwrap();
    assert!(
        requests.contains(",shop_app.1."),
        "no stack task names in requests.csv"
    );
    assert!(r.dir.join("stack-labels.yml").exists());
    assert_cleaned_up(&r);
    assert_stack_gone("shop");
}

/// A stack of the scenario's name that rollcheck did not deploy is the user's: the run is
/// refused (inconclusive, exit 2) before it deploys anything, and the user's stack is still
/// there afterwards, untouched.
#[test]
fn a_stack_rollcheck_did_not_deploy_is_refused_and_left_alone() {
    let _engine = lock();
    let dir = tempfile::tempdir().unwrap();
    let compose = dir.path().join("theirs.yml");
    std::fs::write(
        &compose,
        format!(
            "version: \"3.8\"\nservices:\n  app:\n    image: {}:1\n",
            rollcheck::driver::images::TESTSVC_REPO
        ),
    )
    .unwrap();
    let _theirs = TheirStack::deploy("shop", &compose);
    let out = tempfile::tempdir().unwrap();
    let o = Command::new(BIN)
        .arg("run")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/stack/stack-rolling.toml"))
        .arg("--out")
        .arg(out.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("a stack named \"shop\" is already deployed"),
        "{err}"
    );
    let still = Command::new("docker")
        .args([
            "service",
            "inspect",
            "--format",
            "{{.Spec.Name}}",
            "shop_app",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&still.stdout).trim(),
        "shop_app",
        "their service was removed"
    );
    let run_id = only_dir(out.path())
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert_eq!(
        rt().block_on(labelled(format!("rollcheck.run={run_id}"))),
        0
    );
}

/// An image that is not rollcheck's, built here from Debian packages (rollcheck's nginx
/// image is Debian's nginx; this one runs a Perl server on it): no X-Rollcheck-* headers,
/// `/` answers 404, a 1-s answer at /slow and its health at /healthz. Removed on drop.
struct ForeignImage;

const FOREIGN: &str = "rollcheck/foreign-test";

impl ForeignImage {
    fn build(dir: &Path) -> ForeignImage {
        let lab = Command::new(BIN).args(["lab", "images"]).output().unwrap();
        assert!(
            lab.status.success(),
            "{}",
            String::from_utf8_lossy(&lab.stderr)
        );
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/foreign-app.pl"),
            dir.join("app.pl"),
        )
        .unwrap();
        std::fs::write(
            dir.join("Dockerfile"),
            "FROM rollcheck/nginx:2\nCOPY app.pl /app.pl\nEXPOSE 8080\nCMD [\"perl\", \"/app.pl\"]\n",
        )
        .unwrap();
        let build = Command::new("docker")
            .env("DOCKER_BUILDKIT", "0")
            .args(["build", "-q", "-t", &format!("{FOREIGN}:1"), "-t"])
            .arg(format!("{FOREIGN}:2"))
            .arg(dir)
            .output()
            .unwrap();
        assert!(
            build.status.success(),
            "{}",
            String::from_utf8_lossy(&build.stderr)
        );
        ForeignImage
    }
}

impl Drop for ForeignImage {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args([
                "image",
                "rm",
                &format!("{FOREIGN}:1"),
                &format!("{FOREIGN}:2"),
            ])
            .output();
    }
}

/// A foreign image as a stack's app: readiness comes from the load target (`/slow`), not
/// from `/` (which answers 404 here); the rollout gets a verdict, and the report says that
/// no response carried rollcheck's headers, so versions and tasks are not attributed.
#[test]
fn a_foreign_image_in_a_stack_gets_a_verdict_and_the_no_attribution_notice() {
    let _engine = lock();
    let dir = tempfile::tempdir().unwrap();
    let _image = ForeignImage::build(dir.path());
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/stack/nginx.conf"),
        dir.path().join("nginx.conf"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("docker-compose.yml"),
        format!(
            r#"version: "3.8"
services:
  web:
    image: rollcheck/nginx:2
    ports:
      - {{ target: 80, published: 8080, protocol: tcp, mode: host }}
    configs:
      - {{ source: nginx_conf, target: /etc/nginx/nginx.conf }}
    deploy:
      mode: global
  app:
    image: {FOREIGN}:1
    healthcheck:
      test: ["CMD", "bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /healthz HTTP/1.0\r\n\r\n' >&3 && grep -q '200 OK' <&3"]
      interval: 2s
      timeout: 2s
      retries: 3
    deploy:
      replicas: 2
      endpoint_mode: dnsrr
      update_config: {{ parallelism: 1, delay: 2s, order: start-first, failure_action: pause }}
configs:
  nginx_conf:
    file: ./nginx.conf
"#
        ),
    )
    .unwrap();
    let path = dir.path().join("foreign.toml");
    std::fs::write(
        &path,
        format!(
            r#"title = "A foreign app in a stack"
[lab]
kind = "swarm-local"
[stack]
name = "foreign"
compose = "docker-compose.yml"
[edge]
kind = "stack"
service = "web"
all_interfaces = true
[load]
target = "http://127.0.0.1:8080/slow"
concurrency = 10
duration = "25s"
[[step]]
at = "5s"
action = "update_image"
service = "app"
image = "{FOREIGN}:2"
[gate]
max_dropped = 0
"#
        ),
    )
    .unwrap();
    let r = run(&path);
    assert!(matches!(r.code(), Some(0 | 1)), "{}", r.context());
    assert_eq!(r.summary["steps"][0]["ok"], true, "{}", r.summary["steps"]);
    assert!(
        r.summary["requests"]["ok"].as_u64().unwrap() > 100,
        "{}",
        r.context()
    );
    assert_eq!(r.summary["attribution"]["versions"], false);
    assert_eq!(r.summary["attribution"]["tasks"], false);
    let text = String::from_utf8_lossy(&r.output.stdout);
    assert!(
        text.contains("Not attributed: no ok response carried"),
        "{text}"
    );
    let html = std::fs::read_to_string(r.dir.join("report.html")).unwrap();
    assert!(html.contains("X-Rollcheck-Version or X-Rollcheck-Task"));
    assert_cleaned_up(&r);
    assert_stack_gone("foreign");
}

/// A stack whose image is neither on the engine nor pullable: exit 2 before anything is
/// deployed, naming the image and the service that runs it.
#[test]
fn a_stack_image_the_engine_lacks_is_named_with_its_service() {
    let _engine = lock();
    let err = refused_stack("missing", "rollcheck-missing/nope:1");
    assert!(
        err.contains("rollcheck-missing/nope:1 (of service missing_app)"),
        "{err}"
    );
    assert_stack_gone("missing");
}

/// Runs a one-service stack `name` (its app on `image`) on the local lab, which must be
/// refused before anything is deployed (exit 2); returns stderr.
fn refused_stack(name: &str, image: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("docker-compose.yml"),
        format!("version: \"3.8\"\nservices:\n  app:\n    image: {image}\n"),
    )
    .unwrap();
    let path = dir.path().join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!("[lab]\nkind = \"swarm-local\"\n[stack]\nname = \"{name}\"\ncompose = \"docker-compose.yml\"\n[load]\ntarget = \"http://127.0.0.1:8080/\"\nduration = \"5s\"\n"),
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let o = Command::new(BIN)
        .arg("run")
        .arg(&path)
        .arg("--out")
        .arg(out.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(2), "{err}");
    err
}

/// A network carrying a stack's namespace label, with no service of that stack, is someone
/// else's leftover: the run is refused (exit 2) before deploying, and the network stays.
#[test]
fn a_stacks_leftover_network_rollcheck_cannot_claim_is_left_alone() {
    let _engine = lock();
    swarm();
    docker(&[
        "network",
        "create",
        "--driver",
        "overlay",
        "--label",
        "com.docker.stack.namespace=orphan",
        "orphan_default",
    ]);
    struct Network;
    impl Drop for Network {
        fn drop(&mut self) {
            let _ = Command::new("docker")
                .args(["network", "rm", "orphan_default"])
                .output();
        }
    }
    let _network = Network;
    let err = refused_stack("orphan", "rollcheck/testsvc:1");
    assert!(
        err.contains("objects of a stack named \"orphan\" exist (network orphan_default)"),
        "{err}"
    );
    assert_eq!(
        docker(&["network", "ls", "-q", "--filter", "name=orphan_default"])
            .lines()
            .count(),
        1,
        "the network was removed"
    );
}
