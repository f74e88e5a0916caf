//! The images rollcheck builds, each run as a single container with the `testcontainers`
//! crate: the test service answers `/`, `/healthz` and `/color` with its version and its
//! built-in probe works as a HEALTHCHECK; the nginx edge image serves whatever `NGINX_CONF`
//! holds, including a proxy to the test service. Needs a running dockerd (ci/setup); the
//! edge image is built with mmdebstrap the first time (~45 s).
//!
//! Nothing is pulled: both images are built (or found) by the driver before testcontainers
//! sees them, and testcontainers only pulls when creating a container answers 404. It has no
//! reaper ("ryuk") container in Rust: containers and networks go when their handles drop.
//! It does not negotiate the API version either (bollard's default, 1.52, which Docker 20.10
//! rejects), so it talks to the engine through a small proxy that lowers the version in
//! each request path to the engine's own; see [`ApiProxy`].

use bollard::models::{HostConfig, PortBinding};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rollcheck::driver::images::{NGINX_IMAGE, TESTSVC_REPO};
use rollcheck::driver::{Driver, LABEL_RUN};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use testcontainers::core::{CmdWaitFor, ExecCommand, IntoContainerPort, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, ContainerRequest, GenericImage, ImageExt};

const EXE: &str = env!("CARGO_BIN_EXE_rollcheck");
/// A tag no other test builds, so concurrent test binaries do not rebuild it under us.
const TAG: &str = "tc";

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn run_id() -> String {
    format!("test-images-{}", std::process::id())
}

/// Prepares the engine once per process: starts the API proxy and points testcontainers at
/// it, then makes sure both images exist locally.
async fn setup() {
    static PROXY: OnceLock<PathBuf> = OnceLock::new();
    static IMAGES: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    PROXY.get_or_init(|| {
        let upstream = match std::env::var("DOCKER_HOST") {
            Ok(host) if !host.is_empty() => host
                .strip_prefix("unix://")
                .map(PathBuf::from)
                .expect("these tests support DOCKER_HOST=unix://... only"),
            _ => PathBuf::from("/var/run/docker.sock"),
        };
        let socket = ApiProxy::start(upstream);
        // SAFETY: set once, inside `get_or_init`: every test calls `setup` before anything
        // that reads the environment, so the other test threads are blocked here, not in
        // getenv.
        unsafe { std::env::set_var("DOCKER_HOST", format!("unix://{}", socket.display())) };
        socket
    });
    // Tests run on separate runtimes; the driver's client lives only for this call.
    IMAGES
        .get_or_init(|| async {
            let started = Instant::now();
            let driver = Driver::connect(run_id()).await.expect("docker engine");
            driver
                .ensure_testsvc(TAG, Some(Path::new(EXE)), &|m| eprintln!("{m}"))
                .await
                .expect("build the test service image");
            driver
                .ensure_nginx(&|m| eprintln!("{m}"))
                .await
                .expect("build the nginx edge image");
            eprintln!("images ready in {:.1?}", started.elapsed());
        })
        .await;
}

/// Publishes `port` on 127.0.0.1 only (testcontainers would publish on every interface) at a
/// port the engine picks.
fn loopback(port: u16) -> impl Fn(&mut HostConfig) + Send + Sync + 'static {
    move |host| {
        host.publish_all_ports = Some(false);
        host.port_bindings = Some(HashMap::from([(
            format!("{port}/tcp"),
            Some(vec![PortBinding {
                host_ip: Some("127.0.0.1".into()),
                host_port: None,
            }]),
        )]));
    }
}

fn testsvc() -> ContainerRequest<GenericImage> {
    GenericImage::new(TESTSVC_REPO, TAG)
        .with_exposed_port(8080.tcp())
        .with_wait_for(WaitFor::message_on_stderr("listening on"))
        .with_env_var("DELAY", "100ms")
        .with_env_var("TASK", "tc.1")
        .with_label(LABEL_RUN, run_id())
        .with_host_config_modifier(loopback(8080))
        .with_startup_timeout(Duration::from_secs(30))
}

/// The edge image with the edge's own entrypoint: write `$NGINX_CONF`, exec nginx.
fn nginx(conf: &str) -> ContainerRequest<GenericImage> {
    let (repo, tag) = NGINX_IMAGE.split_once(':').expect("tagged image");
    GenericImage::new(repo, tag)
        .with_exposed_port(80.tcp())
        .with_entrypoint("/bin/sh")
        .with_cmd([
            "-c",
            "printf '%s\\n' \"$NGINX_CONF\" > /etc/nginx/nginx.conf && exec nginx -g 'daemon off;'",
        ])
        .with_env_var("NGINX_CONF", conf)
        .with_label(LABEL_RUN, run_id())
        .with_host_config_modifier(loopback(80))
        .with_startup_timeout(Duration::from_secs(30))
}

fn nginx_conf(http_body: &str) -> String {
    format!(
        "worker_processes 1;\nerror_log /dev/stderr warn;\npid /tmp/nginx.pid;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n  access_log off;\n  server {{\n    listen 80;\n{http_body}\n  }}\n}}\n"
    )
}

async fn url(container: &ContainerAsync<GenericImage>, port: u16, path: &str) -> String {
    let host_port = container
        .get_host_port_ipv4(port)
        .await
        .expect("mapped port");
    format!("http://127.0.0.1:{host_port}{path}")
}

struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: String,
    elapsed: Duration,
}

impl Answer {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// One GET. Errors are retried for up to 10 s: the container's port is published before its
/// server listens (nginx logs nothing when it is ready), and until then docker-proxy accepts the
/// connection and closes it at once, which reqwest reports as a send error, not a connect error.
async fn get(url: &str) -> Answer {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let started = Instant::now();
        match client.get(url).send().await {
            Ok(resp) => {
                let status = resp.status();
                let headers = resp.headers().clone();
                let body = resp.text().await.expect("body");
                return Answer {
                    status,
                    headers,
                    body,
                    elapsed: started.elapsed(),
                };
            }
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("GET {url}: {e}"),
        }
    }
}

/// Runs `cmd` in the container, waits for it to exit and returns its exit code.
async fn exec(container: &ContainerAsync<GenericImage>, cmd: &[&str]) -> i64 {
    let mut result = container
        .exec(ExecCommand::new(cmd.iter().copied()).with_cmd_ready_condition(CmdWaitFor::exit()))
        .await
        .expect("exec");
    let stderr = result.stderr_to_vec().await.unwrap_or_default();
    let code = result.exit_code().await.expect("inspect exec");
    eprintln!(
        "{cmd:?} -> {code:?}: {}",
        String::from_utf8_lossy(&stderr).trim()
    );
    code.expect("exited")
}

#[tokio::test]
async fn testsvc_image_answers_with_its_version_and_probes_itself() {
    setup().await;
    let started = Instant::now();
    let svc = testsvc().start().await.expect("start the test service");
    eprintln!("testsvc started in {:.1?}", started.elapsed());

    let health = get(&url(&svc, 8080, "/healthz").await).await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.body, "ok\n");

    let root = get(&url(&svc, 8080, "/").await).await;
    assert_eq!(root.status, StatusCode::OK);
    assert_eq!(root.header("x-rollcheck-version"), TAG);
    assert_eq!(root.header("x-rollcheck-task"), "tc.1");
    assert!(root.body.contains(TAG), "body: {:?}", root.body);
    // DELAY=100ms from the container's environment reached the server.
    assert!(
        root.elapsed >= Duration::from_millis(100),
        "answered in {:?}",
        root.elapsed
    );

    let color = get(&url(&svc, 8080, "/color").await).await;
    assert_eq!(color.status, StatusCode::OK);
    assert!(
        color.header("content-type").starts_with("text/html"),
        "content-type: {:?}",
        color.header("content-type")
    );
    assert!(
        color.body.contains(&format!("version {TAG}")),
        "{}",
        color.body
    );

    // What a HEALTHCHECK runs: the image has no shell and no curl, only /rollcheck.
    let healthy = ["/rollcheck", "probe", "http://127.0.0.1:8080/healthz"];
    assert_eq!(exec(&svc, &healthy).await, 0);
    let closed = ["/rollcheck", "probe", "http://127.0.0.1:9/healthz"];
    assert_eq!(exec(&svc, &closed).await, 1);
    eprintln!("testsvc test took {:.1?}", started.elapsed());
}

#[tokio::test]
async fn nginx_image_serves_the_config_from_its_environment() {
    setup().await;
    let started = Instant::now();
    let conf = nginx_conf(
        "    location = /x { return 200 \"configured\\n\"; }\n    location = /teapot { return 418; }",
    );
    let edge = nginx(&conf).start().await.expect("start nginx");

    let x = get(&url(&edge, 80, "/x").await).await;
    assert_eq!(x.status, StatusCode::OK);
    assert_eq!(x.body, "configured\n");
    // The whole multi-line config arrived, not only its first line.
    let teapot = get(&url(&edge, 80, "/teapot").await).await;
    assert_eq!(teapot.status, StatusCode::IM_A_TEAPOT);
    eprintln!("nginx config test took {:.1?}", started.elapsed());
}

#[tokio::test]
async fn nginx_image_proxies_to_the_testsvc_container() {
    setup().await;
    let started = Instant::now();
    let network = format!("rollcheck-tc-{}", std::process::id());
    let name = format!("rollcheck-tc-svc-{}", std::process::id());
    let _svc = testsvc()
        .with_network(&network)
        .with_container_name(&name)
        .start()
        .await
        .expect("start the test service");
    // nginx resolves the name once at start, through Docker's DNS on the user network.
    let conf = nginx_conf(&format!(
        "    location / {{ proxy_pass http://{name}:8080; proxy_read_timeout 5s; }}"
    ));
    let edge = nginx(&conf)
        .with_network(&network)
        .start()
        .await
        .expect("start nginx");

    let root = get(&url(&edge, 80, "/").await).await;
    assert_eq!(root.status, StatusCode::OK, "body: {}", root.body);
    assert_eq!(root.header("x-rollcheck-version"), TAG);
    assert_eq!(root.header("x-rollcheck-task"), "tc.1");
    assert!(
        root.header("server").starts_with("nginx"),
        "{:?}",
        root.headers
    );
    assert!(
        root.elapsed >= Duration::from_millis(100),
        "{:?}",
        root.elapsed
    );
    eprintln!("nginx proxy test took {:.1?}", started.elapsed());
}

/// A Unix-socket proxy to the engine that rewrites `/v1.NN/` in request paths to the engine's
/// highest version when NN is above it — the negotiation testcontainers leaves out. Upgraded
/// connections (exec, attach) are spliced through. It runs on its own thread and runtime
/// because each test has its own runtime and the proxy must outlive all of them.
struct ApiProxy;

impl ApiProxy {
    fn start(upstream: PathBuf) -> PathBuf {
        // Cargo's scratch directory for integration tests, not /tmp: a socket to the engine
        // is as good as root, so it stays inside the build tree.
        let socket = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("docker-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&socket);
        let listener = std::os::unix::net::UnixListener::bind(&socket).expect("bind proxy");
        listener.set_nonblocking(true).expect("nonblocking");
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("proxy runtime");
            rt.block_on(async move {
                let max = engine_api_version(&upstream).await;
                let listener = tokio::net::UnixListener::from_std(listener).expect("listener");
                loop {
                    let Ok((conn, _)) = listener.accept().await else {
                        continue;
                    };
                    let upstream = upstream.clone();
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(move |req| {
                            forward(req, upstream.clone(), max)
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(conn), service)
                            .with_upgrades()
                            .await;
                    });
                }
            });
        });
        socket
    }
}

/// The engine's `ApiVersion` minor number (41 for Docker 20.10), from the unversioned
/// `/version`.
async fn engine_api_version(upstream: &Path) -> u32 {
    let req = Request::get("/version")
        .header("host", "docker")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .expect("request");
    let resp = send(upstream, req).await.expect("engine /version");
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
    let api = v["ApiVersion"].as_str().expect("ApiVersion");
    api.strip_prefix("1.")
        .and_then(|m| m.parse().ok())
        .expect("ApiVersion 1.NN")
}

async fn send<B>(upstream: &Path, req: Request<B>) -> Result<Response<Incoming>, BoxError>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let stream = tokio::net::UnixStream::connect(upstream).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn.with_upgrades());
    Ok(sender.send_request(req).await?)
}

async fn forward(
    mut req: Request<Incoming>,
    upstream: PathBuf,
    max: u32,
) -> Result<Response<Incoming>, BoxError> {
    let lowered = lower_version(req.uri().path_and_query().map_or("/", |p| p.as_str()), max);
    if let Some(path) = lowered {
        *req.uri_mut() = path.parse()?;
    }
    let client_side = hyper::upgrade::on(&mut req);
    let mut resp = send(&upstream, req).await?;
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        let engine_side = hyper::upgrade::on(&mut resp);
        tokio::spawn(async move {
            if let (Ok(client), Ok(engine)) = (client_side.await, engine_side.await) {
                let (mut client, mut engine) = (TokioIo::new(client), TokioIo::new(engine));
                let _ = tokio::io::copy_bidirectional(&mut client, &mut engine).await;
            }
        });
    }
    Ok(resp)
}

/// `/v1.52/containers/json` → `/v1.41/containers/json` when the engine's highest is 41.
fn lower_version(path: &str, max: u32) -> Option<String> {
    let rest = path.strip_prefix("/v1.")?;
    let (minor, tail) = rest.split_once('/')?;
    let minor: u32 = minor.parse().ok()?;
    (minor > max).then(|| format!("/v1.{max}/{tail}"))
}

#[test]
fn lower_version_rewrites_only_newer_paths() {
    assert_eq!(
        lower_version("/v1.52/containers/json?all=1", 41).as_deref(),
        Some("/v1.41/containers/json?all=1")
    );
    assert_eq!(lower_version("/v1.41/version", 41), None);
    assert_eq!(lower_version("/v1.24/version", 41), None);
    assert_eq!(lower_version("/version", 41), None);
    assert_eq!(lower_version("/_ping", 41), None);
}
