//! The edge proxies and their configs: the nginx in front of the service (a container or a
//! global service), and the cluster lab's outer HAProxy or nginx in front of the nodes. Without IPVS, nginx re-resolving `tasks.<service>` (dnsrr) every
//! second is what spreads load over the tasks and notices tasks leaving (DESIGN.md).

use super::images::NGINX_IMAGE;
use super::spec::{health_config, published_port};
use crate::scenario::{Edge, EdgeProtocol, Service};
use bollard::models::{
    ContainerCreateBody, EndpointSettings, EndpointSpec, EndpointSpecModeEnum, HostConfig,
    NetworkAttachmentConfig, NetworkingConfig, PortBinding, RestartPolicy, RestartPolicyNameEnum,
    ServiceSpec, ServiceSpecMode, TaskSpec, TaskSpecContainerSpec,
};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

/// The image's shell writes the config (and the run's certificate, for `tls = true`) from
/// the environment and execs nginx in the foreground. Works for a plain container and for a
/// Swarm service alike (a service cannot have files uploaded into its tasks before they
/// start). The key is one made for this run and lives as long as the edge.
const ENTRYPOINT: [&str; 3] = [
    "/bin/sh",
    "-c",
    "printf '%s\\n' \"$NGINX_CONF\" > /etc/nginx/nginx.conf && if [ -n \"$NGINX_TLS_CERT\" ]; then printf '%s\\n' \"$NGINX_TLS_CERT\" > /tmp/edge.crt && (umask 077 && printf '%s\\n' \"$NGINX_TLS_KEY\" > /tmp/edge.key); fi && exec nginx -g 'daemon off;'",
];

/// A proxy's read/send timeout (s): longer than the load's request timeout, or the proxy would
/// turn a slow answer into a 504 the service never sent.
pub(crate) fn proxy_timeout_secs(read_timeout: Duration) -> u64 {
    read_timeout.as_secs().max(1) + 5
}

/// nginx `proxy_next_upstream`: retry a failed connect (or a 502) on the next server, or not.
pub(crate) fn next_upstream(retries: bool) -> &'static str {
    if retries {
        "error timeout http_502"
    } else {
        "off"
    }
}

pub(crate) fn container_name(service: &str) -> String {
    format!("rollcheck-edge-{service}")
}

pub(crate) fn service_name(service: &str) -> String {
    format!("{service}-edge")
}

/// nginx config for the edge. `read_timeout` must outlast the load's request timeout, or
/// nginx would turn a slow answer into a 504 the service never sent.
pub(crate) fn nginx_conf(service: &Service, edge: &Edge, read_timeout: Duration) -> String {
    let read = proxy_timeout_secs(read_timeout);
    let (name, port) = (&service.name, service.port);
    let head = r#"# Debian's stream module is loaded from here; the glob matches nothing upstream.
include /etc/nginx/modules-enabled/*.conf;
worker_processes 2;
error_log /dev/stderr warn;
pid /tmp/nginx.pid;
events { worker_connections 4096; }"#;
    // Docker's embedded DNS; valid=1s so tasks leaving or joining are seen within a second.
    // A variable in proxy_pass makes nginx resolve at request (connection) time, not at start.
    let body = match edge.protocol {
        EdgeProtocol::Http => {
            let next_upstream = next_upstream(edge.retries);
            let (listen, tls) = if edge.tls.is_some() {
                (
                    "listen 80 ssl;",
                    "\n    ssl_certificate /tmp/edge.crt;\n    ssl_certificate_key /tmp/edge.key;",
                )
            } else {
                ("listen 80;", "")
            };
            format!(
                r#"http {{
  access_log off;
  resolver 127.0.0.11 valid=1s ipv6=off;
  resolver_timeout 2s;
  server {{
    {listen}{tls}
    location = /_edge {{ return 200 "edge ok\n"; }}
    location / {{
      set $backend "tasks.{name}";
      proxy_pass http://$backend:{port};
      proxy_next_upstream {next_upstream};
      proxy_connect_timeout 2s;
      proxy_send_timeout {read}s;
      proxy_read_timeout {read}s;
      proxy_max_temp_file_size 0;
      proxy_set_header Host $host;
    }}
  }}
}}"#
            )
        }
        // L4, like Swarm's routing mesh: bytes pass through, so an upstream connection cut
        // mid-request reaches the client as a closed connection, not as a 502.
        EdgeProtocol::Tcp => format!(
            r#"stream {{
  resolver 127.0.0.11 valid=1s ipv6=off;
  resolver_timeout 2s;
  server {{
    listen 80;
    set $backend "tasks.{name}:{port}";
    proxy_pass $backend;
    proxy_next_upstream {next};
    proxy_connect_timeout 2s;
    proxy_timeout {read}s;
  }}
}}"#,
            next = if edge.retries { "on" } else { "off" },
        ),
    };
    format!("{head}\n{body}")
}

fn env(conf: &str, edge: &Edge) -> Vec<String> {
    let mut env = vec![format!("NGINX_CONF={conf}")];
    if let Some(cert) = &edge.tls {
        env.push(format!("NGINX_TLS_CERT={}", cert.cert_pem.trim_end()));
        env.push(format!("NGINX_TLS_KEY={}", cert.key_pem.trim_end()));
    }
    env
}

/// A plain container on the attachable overlay, its port bound to the loopback address:
/// Swarm's own published ports cannot be bound to one address.
pub(crate) fn container_body(
    edge: &Edge,
    network: &str,
    conf: &str,
    labels: HashMap<String, String>,
) -> ContainerCreateBody {
    let mut body = proxy_body(
        NGINX_IMAGE,
        &ENTRYPOINT,
        env(conf, edge),
        // nginx finishes in-flight requests on SIGQUIT; SIGTERM is a fast shutdown.
        "SIGQUIT",
        edge.publish,
        network,
        labels,
    );
    body.healthcheck = edge.healthcheck.as_ref().map(health_config);
    if let Some(host) = body.host_config.as_mut() {
        host.restart_policy = Some(RestartPolicy {
            name: Some(RestartPolicyNameEnum::NO),
            ..Default::default()
        });
    }
    body
}

/// A proxy in a plain container: `entrypoint` writes its config from `env` and runs it in the
/// foreground; port 80 is published on `publish` only, the container sits on `network`, and
/// `stop_signal` is the proxy's graceful stop.
pub(crate) fn proxy_body(
    image: &str,
    entrypoint: &[&str],
    env: Vec<String>,
    stop_signal: &str,
    publish: SocketAddr,
    network: &str,
    labels: HashMap<String, String>,
) -> ContainerCreateBody {
    let binding = PortBinding {
        host_ip: Some(publish.ip().to_string()),
        host_port: Some(publish.port().to_string()),
    };
    ContainerCreateBody {
        image: Some(image.to_string()),
        entrypoint: Some(entrypoint.iter().map(|s| s.to_string()).collect()),
        cmd: Some(Vec::new()),
        env: Some(env),
        labels: Some(labels),
        exposed_ports: Some(vec!["80/tcp".to_string()]),
        stop_signal: Some(stop_signal.into()),
        host_config: Some(HostConfig {
            port_bindings: Some(HashMap::from([("80/tcp".to_string(), Some(vec![binding]))])),
            ..Default::default()
        }),
        networking_config: Some(NetworkingConfig {
            endpoints_config: Some(HashMap::from([(
                network.to_string(),
                EndpointSettings::default(),
            )])),
        }),
        ..Default::default()
    }
}

/// The edge as a global Swarm service with a host-mode port. Host mode binds every interface
/// of every node (PortConfig has no host address); use it where that is acceptable.
pub(crate) fn global_service_spec(
    service: &Service,
    edge: &Edge,
    network: &str,
    conf: &str,
    labels: HashMap<String, String>,
) -> ServiceSpec {
    ServiceSpec {
        name: Some(service_name(&service.name)),
        labels: Some(labels.clone()),
        task_template: Some(TaskSpec {
            container_spec: Some(TaskSpecContainerSpec {
                image: Some(NGINX_IMAGE.to_string()),
                command: Some(ENTRYPOINT.map(String::from).to_vec()),
                env: Some(env(conf, edge)),
                labels: Some(labels),
                health_check: edge.healthcheck.as_ref().map(health_config),
                stop_signal: Some("SIGQUIT".into()),
                ..Default::default()
            }),
            networks: Some(vec![NetworkAttachmentConfig {
                target: Some(network.to_string()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        mode: Some(ServiceSpecMode {
            global: Some(HashMap::new()),
            ..Default::default()
        }),
        endpoint_spec: Some(EndpointSpec {
            mode: Some(EndpointSpecModeEnum::DNSRR),
            ports: Some(vec![published_port(edge.publish.port(), 80, false)]),
        }),
        ..Default::default()
    }
}

/// HAProxy in front of the nodes: a check of each node's edge every second (down after 2
/// failures, up after 2 passes), and a retry on another node when a connection fails.
/// The check asks the node's nginx itself (`/_edge`), not the service behind it: nginx sends
/// a `/healthz` to any task in the cluster, so with one node cut off, the checks of the
/// healthy nodes would wait on its tasks and HAProxy would mark every node down (seen here:
/// 2.5 k 503s in 2 s during partition.toml). An L4 edge gets a connect check.
pub(crate) fn haproxy_conf(
    edge: &Edge,
    backends: &[(String, SocketAddr)],
    read_timeout: Duration,
    probe: Probe,
) -> String {
    let read = proxy_timeout_secs(read_timeout);
    let mode = match edge.protocol {
        EdgeProtocol::Http => "http",
        EdgeProtocol::Tcp => "tcp",
    };
    let retries = if edge.retries {
        "retries 2\n  option redispatch"
    } else {
        "retries 0"
    };
    let servers: String = backends
        .iter()
        .map(|(name, addr)| format!("  server {name} {addr} check\n"))
        .collect();
    let check = match (edge.protocol, probe) {
        (EdgeProtocol::Http, Probe::Edge) => {
            "  option httpchk GET /_edge\n  http-check expect status 200\n"
        }
        _ => "",
    };
    format!(
        r#"global
  maxconn 4096
defaults
  mode {mode}
  timeout connect 2s
  timeout client {read}s
  timeout server {read}s
  {retries}
frontend edge
  bind :80
  default_backend nodes
backend nodes
  balance roundrobin
{check}  default-server inter 1s fall 2 rise 2
{servers}"#
    )
}

/// How HAProxy checks a node: rollcheck's in-cluster nginx answers `/_edge`; a stack's own
/// proxy answers what its config says, so its port is checked by connecting.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Probe {
    Edge,
    Connect,
}

/// nginx as the outer edge: open-source nginx has no active checks, so a failed node is
/// skipped for 2 s after a connection error, and the request retried on the next one.
pub(crate) fn nginx_upstream_conf(
    edge: &Edge,
    backends: &[(String, SocketAddr)],
    read_timeout: Duration,
) -> String {
    let read = proxy_timeout_secs(read_timeout);
    let next = next_upstream(edge.retries);
    let servers: String = backends
        .iter()
        .map(|(_, addr)| format!("    server {addr} max_fails=1 fail_timeout=2s;\n"))
        .collect();
    format!(
        r#"worker_processes 2;
error_log /dev/stderr warn;
pid /tmp/nginx.pid;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  upstream nodes {{
{servers}  }}
  server {{
    listen 80;
    location / {{
      proxy_pass http://nodes;
      proxy_next_upstream {next};
      proxy_connect_timeout 2s;
      proxy_read_timeout {read}s;
      proxy_send_timeout {read}s;
    }}
  }}
}}"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{EdgeKind, EdgeMode, EndpointMode, UpdateConfig};
    use std::collections::BTreeMap;

    fn plan_parts(retries: bool) -> (Service, Edge) {
        let service = Service {
            name: "app".into(),
            image: "rollcheck/testsvc:1".into(),
            replicas: 3,
            endpoint_mode: EndpointMode::Dnsrr,
            port: 8080,
            stop_grace_period: None,
            env: BTreeMap::new(),
            labels: BTreeMap::new(),
            healthcheck: None,
            update: UpdateConfig::default(),
            rollback: UpdateConfig::default(),
        };
        let edge = Edge {
            kind: EdgeKind::Nginx,
            publish: "127.0.0.1:18080".parse().unwrap(),
            mode: EdgeMode::Container,
            protocol: EdgeProtocol::Http,
            retries,
            healthcheck: None,
            tls: None,
        };
        (service, edge)
    }

    #[test]
    fn conf_resolves_tasks_and_retries() {
        let (s, e) = plan_parts(true);
        let conf = nginx_conf(&s, &e, Duration::from_secs(30));
        assert!(conf.contains("set $backend \"tasks.app\";"));
        assert!(conf.contains("proxy_pass http://$backend:8080;"));
        assert!(conf.contains("proxy_next_upstream error timeout http_502;"));
        assert!(conf.contains("proxy_read_timeout 35s;"));
        assert!(conf.contains("resolver 127.0.0.11 valid=1s ipv6=off;"));
        let (s, e) = plan_parts(false);
        assert!(nginx_conf(&s, &e, Duration::from_secs(5)).contains("proxy_next_upstream off;"));
    }

    #[test]
    fn tcp_conf_proxies_connections_to_tasks() {
        let (s, mut e) = plan_parts(true);
        e.protocol = EdgeProtocol::Tcp;
        let conf = nginx_conf(&s, &e, Duration::from_secs(10));
        assert!(conf.contains("stream {"), "{conf}");
        assert!(!conf.contains("http {"), "{conf}");
        assert!(conf.contains("set $backend \"tasks.app:8080\";"));
        assert!(conf.contains("proxy_pass $backend;"));
        assert!(conf.contains("proxy_timeout 15s;"));
    }

    #[test]
    fn container_binds_loopback_only() {
        let (s, e) = plan_parts(true);
        let body = container_body(
            &e,
            "net",
            &nginx_conf(&s, &e, Duration::from_secs(5)),
            HashMap::new(),
        );
        let json = serde_json::to_value(&body).unwrap();
        assert_eq!(
            json["HostConfig"]["PortBindings"]["80/tcp"][0]["HostIp"],
            "127.0.0.1"
        );
        assert_eq!(
            json["HostConfig"]["PortBindings"]["80/tcp"][0]["HostPort"],
            "18080"
        );
    }
}
