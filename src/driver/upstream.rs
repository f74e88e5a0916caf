//! The `docker` lab's edge: nginx on the host's network whose upstream rollcheck renders
//! (one `server 127.0.0.1:<port>;` per container) into a file the config includes, checks with
//! `nginx -t` and switches by `nginx -s reload` (or by restarting the container, the known-bad
//! way). After a reload nginx keeps its old workers until the requests they hold are done:
//! rollcheck lists the workers before the reload and records when the last old one exited,
//! which is when nothing is in flight through the old upstream any more.

use super::containers::DockerHandle;
use super::images::NGINX_IMAGE;
use super::{Driver, DriverError};
use crate::clock::Clock;
use crate::event::{Event, EventSink, What};
use crate::poll::{self, Attempt};
use crate::scenario::{Container, Edge, Switch};
use bollard::exec::StartExecResults;
use bollard::models::{
    ContainerCreateBody, ExecConfig, HostConfig, RestartPolicy, RestartPolicyNameEnum,
};
use futures_util::StreamExt;
use std::collections::HashMap;
use std::time::Duration;

const UPSTREAM_FILE: &str = "/etc/nginx/upstream.conf";

/// Starts every shell rollcheck itself runs in a container, so the event watcher tells these
/// execs from HEALTHCHECK probes (which are execs too).
pub(crate) const OWN_EXEC: &str = ": rollcheck;";

/// Writes nginx.conf from the environment, the upstream only when there is none yet (a
/// restarted container keeps the upstream the steps set), and runs nginx in the foreground.
const ENTRYPOINT: [&str; 3] = [
    "/bin/sh",
    "-c",
    "printf '%s\\n' \"$NGINX_CONF\" > /etc/nginx/nginx.conf && { [ -f /etc/nginx/upstream.conf ] || printf '%s\\n' \"$NGINX_UPSTREAM\" > /etc/nginx/upstream.conf; } && exec nginx -g 'daemon off;'",
];

/// Renders the new upstream next to the old one's copy and checks the whole config; a config
/// nginx refuses is put back, so the edge keeps serving what it served.
const RENDER_AND_TEST: &str = "cd /etc/nginx && cp -f upstream.conf upstream.conf.prev && printf '%s\\n' \"$NGINX_UPSTREAM\" > upstream.conf && if nginx -t 2>&1; then exit 0; else mv -f upstream.conf.prev upstream.conf; exit 1; fi";

/// `server 127.0.0.1:9092; # app-v2`, one line per container.
pub(crate) fn upstream_conf(servers: &[&Container]) -> String {
    servers
        .iter()
        .map(|c| format!("server 127.0.0.1:{}; # {}", c.port, c.name))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The edge's nginx.conf: `read_timeout` outlasts the load's request timeout (else nginx would
/// answer 504 for a slow request the service still serves).
pub(crate) fn nginx_conf(edge: &Edge, read_timeout: Duration) -> String {
    let read = super::edge::proxy_timeout_secs(read_timeout);
    let next = super::edge::next_upstream(edge.retries);
    format!(
        r#"worker_processes 2;
error_log /dev/stderr notice;
pid /tmp/nginx.pid;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  upstream app {{
    include {UPSTREAM_FILE};
  }}
  server {{
    listen {listen};
    location = /_edge {{ return 200 "edge ok\n"; }}
    location / {{
      proxy_pass http://app;
      proxy_next_upstream {next};
      proxy_connect_timeout 2s;
      proxy_send_timeout {read}s;
      proxy_read_timeout {read}s;
      proxy_max_temp_file_size 0;
      proxy_set_header Host $host;
    }}
  }}
}}"#,
        listen = edge.publish
    )
}

/// The edge container: on the host's network (it listens on `edge.publish` itself and
/// reaches the containers' loopback ports), stopped gracefully (SIGQUIT), never restarted by
/// the engine on its own.
pub(crate) fn edge_body(
    edge: &Edge,
    upstream: &[&Container],
    read_timeout: Duration,
    labels: HashMap<String, String>,
) -> ContainerCreateBody {
    ContainerCreateBody {
        image: Some(NGINX_IMAGE.to_string()),
        entrypoint: Some(ENTRYPOINT.iter().map(|s| s.to_string()).collect()),
        cmd: Some(Vec::new()),
        env: Some(vec![
            format!("NGINX_CONF={}", nginx_conf(edge, read_timeout)),
            format!("NGINX_UPSTREAM={}", upstream_conf(upstream)),
        ]),
        labels: Some(labels),
        stop_signal: Some("SIGQUIT".into()),
        healthcheck: edge.healthcheck.as_ref().map(super::spec::health_config),
        host_config: Some(HostConfig {
            network_mode: Some("host".into()),
            restart_policy: Some(RestartPolicy {
                name: Some(RestartPolicyNameEnum::NO),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

impl Driver {
    /// Runs the shell `script` in `container` with `env`; its exit code and what it printed.
    pub(crate) async fn exec(
        &self,
        container: &str,
        script: &str,
        env: Vec<String>,
    ) -> Result<(i64, String), DriverError> {
        let what = format!("exec `{script}` in {container}");
        let config = ExecConfig {
            cmd: Some(vec![
                "/bin/sh".into(),
                "-c".into(),
                format!("{OWN_EXEC} {script}"),
            ]),
            env: Some(env),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            ..Default::default()
        };
        let created = self
            .call(what.clone(), self.docker.create_exec(container, config))
            .await?;
        let started = self
            .call(what.clone(), self.docker.start_exec(&created.id, None))
            .await?;
        let mut text = Vec::new();
        if let StartExecResults::Attached { mut output, .. } = started {
            while let Some(Ok(chunk)) = output.next().await {
                text.extend_from_slice(&chunk.into_bytes());
            }
        }
        let done = self
            .call(what, self.docker.inspect_exec(&created.id))
            .await?;
        Ok((
            done.exit_code.unwrap_or(-1),
            String::from_utf8_lossy(&text).trim().to_string(),
        ))
    }

    /// The PIDs of the edge's nginx workers (serving or shutting down).
    async fn nginx_workers(&self, edge: &str) -> Result<Vec<String>, DriverError> {
        let top = self
            .call(
                "list edge processes",
                self.docker
                    .top_processes(edge, None::<bollard::query_parameters::TopOptions>),
            )
            .await?;
        let titles = top.titles.unwrap_or_default();
        let col = |name: &[&str]| titles.iter().position(|t| name.contains(&t.as_str()));
        let (Some(pid), Some(cmd)) = (col(&["PID"]), col(&["CMD", "COMMAND"])) else {
            return Ok(Vec::new());
        };
        Ok(top
            .processes
            .unwrap_or_default()
            .into_iter()
            .filter(|p| {
                p.get(cmd)
                    .is_some_and(|c| c.starts_with("nginx: worker process"))
            })
            .filter_map(|p| p.get(pid).cloned())
            .collect())
    }

    /// `upstream_set`: render, `nginx -t`, then reload or restart. After a reload the old
    /// workers are followed until the last one exits (an `old_workers_exited` event); with
    /// `drain` the step waits for that, else it ends at once and the following goes on.
    pub(crate) async fn upstream_set(
        &self,
        lab: &DockerHandle,
        servers: &[String],
        switch: Switch,
        drain: Option<Duration>,
        clock: Clock,
        events: &EventSink,
    ) -> Result<String, DriverError> {
        let upstream: Vec<&Container> = servers
            .iter()
            .filter_map(|n| lab.containers.get(n))
            .collect();
        let env = vec![format!("NGINX_UPSTREAM={}", upstream_conf(&upstream))];
        let (code, output) = self.exec(&lab.edge, RENDER_AND_TEST, env).await?;
        if code != 0 {
            return Err(DriverError::Container(format!(
                "nginx -t refused the new upstream (exit code {code}), the edge keeps the old one: {}",
                output.lines().last().unwrap_or_default()
            )));
        }
        let shown = servers.join(", ");
        let switched = |how: &str| {
            let _ = events.send(Event::new(
                clock.now(),
                What::Upstream {
                    servers: servers.to_vec(),
                    switch: how.into(),
                },
            ));
        };
        if switch == Switch::Restart {
            self.call(
                "restart edge container",
                self.docker.restart_container(
                    &lab.edge,
                    None::<bollard::query_parameters::RestartContainerOptions>,
                ),
            )
            .await?;
            switched("restart");
            return Ok(format!(
                "upstream {shown}: nginx -t ok, edge container restarted"
            ));
        }
        let old = self.nginx_workers(&lab.edge).await?;
        if old.is_empty() {
            return Err(DriverError::Container(format!(
                "the edge's nginx workers could not be listed (`docker top {}`), so their drain cannot be followed",
                lab.edge
            )));
        }
        let (code, output) = self
            .exec(&lab.edge, "nginx -s reload 2>&1", Vec::new())
            .await?;
        if code != 0 {
            return Err(DriverError::Container(format!(
                "nginx -s reload failed (exit code {code}): {output}"
            )));
        }
        let reloaded = clock.now();
        switched("reload");
        // The follower holds only a weak sender: a run that ends (or is interrupted) while
        // old workers still run does not wait for it.
        let follow = {
            let (driver, edge, events) = (self.clone(), lab.edge.clone(), events.downgrade());
            let within = drain.unwrap_or(Duration::from_secs(60));
            tokio::spawn(async move {
                let after = driver
                    .old_workers_exit(&edge, &old, within, clock, reloaded)
                    .await?;
                let event = Event::new(
                    reloaded + after,
                    What::OldWorkersExited {
                        workers: u32::try_from(old.len()).unwrap_or(u32::MAX),
                        after,
                    },
                );
                if let Some(events) = events.upgrade() {
                    let _ = events.send(event);
                }
                Ok::<_, DriverError>(after)
            })
        };
        if drain.is_none() {
            return Ok(format!("upstream {shown}: nginx -t ok, reloaded"));
        }
        let after = follow.await.map_err(|e| {
            DriverError::Container(format!("following nginx's old workers failed: {e}"))
        })??;
        Ok(format!(
            "upstream {shown}: nginx -t ok, reloaded; old workers exited {:.2}s later",
            after.as_secs_f64()
        ))
    }

    /// How long after the reload the last of the `old` workers exited.
    async fn old_workers_exit(
        &self,
        edge: &str,
        old: &[String],
        within: Duration,
        clock: Clock,
        reloaded: Duration,
    ) -> Result<Duration, DriverError> {
        let gone = || async {
            match self.nginx_workers(edge).await {
                Ok(now) if !old.iter().any(|pid| now.contains(pid)) => {
                    Attempt::Ready(clock.now().saturating_sub(reloaded))
                }
                Ok(_) => Attempt::Pending(DriverError::Container(format!(
                    "nginx's old workers still ran {:.0}s after the reload (requests still in flight through the old upstream)",
                    within.as_secs_f64()
                ))),
                Err(e) => Attempt::Failed(e),
            }
        };
        poll::until(within, Duration::from_millis(50), gone).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{EdgeKind, EdgeMode, EdgeProtocol};

    fn container(name: &str, port: u16) -> Container {
        Container {
            name: name.into(),
            image: "rollcheck/testsvc:1".into(),
            port,
            container_port: 8080,
            env: Default::default(),
            healthcheck: None,
        }
    }

    #[test]
    fn upstream_and_conf() {
        let (a, b) = (container("app-v1", 9091), container("app-v2", 9092));
        assert_eq!(
            upstream_conf(&[&a, &b]),
            "server 127.0.0.1:9091; # app-v1\nserver 127.0.0.1:9092; # app-v2"
        );
        let edge = Edge {
            kind: EdgeKind::Nginx,
            publish: "127.0.0.1:18080".parse().unwrap(),
            mode: EdgeMode::Container,
            protocol: EdgeProtocol::Http,
            retries: false,
            healthcheck: None,
            tls: None,
        };
        let conf = nginx_conf(&edge, Duration::from_secs(5));
        assert!(conf.contains("listen 127.0.0.1:18080;"), "{conf}");
        assert!(conf.contains("include /etc/nginx/upstream.conf;"), "{conf}");
        assert!(conf.contains("proxy_next_upstream off;"), "{conf}");
        assert!(conf.contains("proxy_read_timeout 10s;"), "{conf}");
        let body = serde_json::to_value(edge_body(
            &edge,
            &[&a],
            Duration::from_secs(5),
            HashMap::new(),
        ))
        .unwrap();
        assert_eq!(body["HostConfig"]["NetworkMode"], "host");
        assert_eq!(body["StopSignal"], "SIGQUIT");
    }
}
