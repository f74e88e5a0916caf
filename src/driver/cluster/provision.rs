//! One run on the cluster lab: images onto the nodes, the run's overlay network (after the
//! nodes released earlier runs' networks), the service, the in-cluster edge and the outer
//! edge on the host; at the end the lab restored and the run's objects removed.

use super::*;

impl Cluster {
    /// Waits (up to [`OVERLAY_RELEASE_TIMEOUT`]) until no node holds the overlay network of
    /// an earlier run, then returns a /24 for this run's overlay that no node has a network
    /// on. The managers remove a run's network at once, but a worker keeps it until its old
    /// tasks are gone, and Swarm hands the same subnet and VXLAN id to the next network:
    /// every task placed on that worker is then rejected ("Pool overlaps with other one on
    /// this address space", or "error creating vxlan interface: file exists"), and after a
    /// few rejections Swarm stops placing the service there at all.
    pub(super) async fn settle_overlays(
        &self,
        progress: crate::driver::images::Progress<'_>,
    ) -> Result<Ipv4Addr, DriverError> {
        // Not `poll::until`: past the deadline the lab goes on with a warning (and a subnet
        // clear of every network still held), it does not fail.
        let deadline = Instant::now() + OVERLAY_RELEASE_TIMEOUT;
        let mut said = false;
        loop {
            let mut used = Vec::new();
            let mut stale = Vec::new();
            for node in &self.nodes {
                let networks = node
                    .driver
                    .call(
                        format!("list networks on {}", node.name),
                        node.driver
                            .docker
                            .list_networks(None::<bollard::query_parameters::ListNetworksOptions>),
                    )
                    .await?;
                used.extend(subnets_of(&networks));
                // A run's network, or a stack's (every stack on the lab is a run's).
                let of_a_run = |n: &&bollard::models::Network| {
                    n.name.as_deref().is_some_and(is_run_network)
                        || n.labels
                            .as_ref()
                            .is_some_and(|l| l.contains_key(crate::driver::stack::NAMESPACE))
                };
                stale.extend(
                    networks
                        .iter()
                        .filter(|n| n.driver.as_deref() == Some("overlay"))
                        .filter(of_a_run)
                        .filter_map(|n| n.name.as_deref())
                        .map(|n| format!("{} on {}", n, node.name)),
                );
            }
            if !stale.is_empty() && Instant::now() < deadline {
                if !said {
                    progress(&format!(
                        "waiting for the nodes to release earlier runs' networks ({})",
                        stale.join(", ")
                    ));
                    said = true;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
            if !stale.is_empty() {
                progress(&format!(
                    "still held after {OVERLAY_RELEASE_TIMEOUT:?}: {}; tasks placed there may be rejected",
                    stale.join(", ")
                ));
            }
            return free_slash24(OVERLAY_SUBNETS, &used).ok_or(DriverError::ClusterNotReady {
                what: format!(
                    "no free /24 in 10.{OVERLAY_SUBNETS}.0.0/16 for the run's overlay network"
                ),
            });
        }
    }

    /// Copies `images` from the host engine to every node that runs tasks and lacks them
    /// (same image id), streaming `save` into `load` through bollard.
    pub async fn distribute_images(
        &self,
        images: &[&str],
        progress: crate::driver::images::Progress<'_>,
    ) -> Result<(), DriverError> {
        for image in images {
            let id = self
                .host
                .call("inspect image", self.host.docker.inspect_image(image))
                .await?
                .id;
            for node in self.nodes.iter().filter(|n| self.shape.runs_tasks(n.name)) {
                let present = node
                    .driver
                    .call("inspect image", node.driver.docker.inspect_image(image))
                    .await
                    .ok()
                    .and_then(|i| i.id);
                if present.is_some() && present == id {
                    continue;
                }
                let started = Instant::now();
                let saved = self.host.docker.export_image(image);
                let load = node
                    .driver
                    .docker
                    .import_image_stream(
                        bollard::query_parameters::ImportImageOptions {
                            quiet: true,
                            ..Default::default()
                        },
                        saved,
                        None,
                    )
                    .try_collect::<Vec<_>>();
                match tokio::time::timeout(Duration::from_secs(300), load).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(source)) => {
                        return Err(DriverError::Engine {
                            call: format!("load {image} into {}", node.name),
                            source,
                        });
                    }
                    Err(_) => {
                        return Err(DriverError::Timeout {
                            call: format!("load {image} into {}", node.name),
                            after: Duration::from_secs(300),
                        });
                    }
                }
                progress(&format!(
                    "loaded {image} into {} in {:.1?}",
                    node.name,
                    started.elapsed()
                ));
            }
        }
        Ok(())
    }

    /// Builds this run's part of the lab: images on the nodes, the overlay network, the
    /// service and the in-cluster edge through a manager, the outer edge on the host.
    pub async fn provision(
        &self,
        plan: &Plan,
        clock: &Clock,
        events: &EventSink,
        progress: crate::driver::images::Progress<'_>,
    ) -> Result<LabHandle, DriverError> {
        // That a cluster's outer edge is haproxy or nginx is the scenario's rule
        // (scenario/edge.rs): `check` refuses the others with their line.
        let setup = plan.lab().ok_or(DriverError::Unsupported {
            what: "provisioning without a [lab]".into(),
        })?;
        let (service, outer) = (setup.service.clone(), setup.edge.clone());
        let started = Instant::now();
        let mut images: Vec<&str> = vec![service.image.as_str(), NGINX_IMAGE];
        for step in &plan.steps {
            if let crate::scenario::Action::UpdateImage { image, .. } = &step.action
                && !images.contains(&image.as_str())
            {
                images.push(image);
            }
        }
        if plan.load.agents() && !images.contains(&agents::AGENT_IMAGE) {
            images.push(agents::AGENT_IMAGE);
        }
        self.distribute_images(&images, progress).await?;

        let manager = self.manager().await?;
        let inner_edge_service = edge::service_name(&service.name);
        for run in manager
            .replace_leftovers(&service.name, None, Some(&inner_edge_service))
            .await?
        {
            progress(&format!("removed the leftover lab of run {run}"));
        }
        for run in manager.remove_orphan_networks().await? {
            progress(&format!("removed the leftover network of run {run}"));
        }
        let outer_name = edge::container_name(&service.name);
        self.host.remove_leftover_container(&outer_name).await?;

        let network = network_name(manager.run_id());
        let subnet = self.settle_overlays(progress).await?;
        let request = NetworkCreateRequest {
            name: network.clone(),
            driver: Some("overlay".into()),
            attachable: Some(true),
            ipam: Some(Ipam {
                config: Some(vec![IpamConfig {
                    subnet: Some(format!("{subnet}/24")),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            labels: Some(manager.labels("network")),
            ..Default::default()
        };
        manager
            .call("create network", manager.docker.create_network(request))
            .await?;
        let spec = spec::service_spec(&service, &network, manager.labels("service"), None);
        manager
            .call("create service", manager.docker.create_service(spec, None))
            .await?;
        // The in-cluster edge: nginx on every node, host-mode port, dnsrr to the tasks.
        let inner = Edge {
            kind: EdgeKind::Nginx,
            publish: SocketAddr::from((Ipv4Addr::UNSPECIFIED, NODE_EDGE_PORT)),
            healthcheck: None,
            ..outer.clone()
        };
        let conf = edge::nginx_conf(&service, &inner, plan.load.timeout);
        let spec =
            edge::global_service_spec(&service, &inner, &network, &conf, manager.labels("edge"));
        manager
            .call(
                "create edge service",
                manager.docker.create_service(spec, None),
            )
            .await?;

        let backends: Vec<(String, SocketAddr)> = self
            .nodes
            .iter()
            .filter(|n| self.shape.runs_tasks(n.name))
            .map(|n| (n.name.to_string(), SocketAddr::from((n.ip, NODE_EDGE_PORT))))
            .collect();
        let body = outer_edge_body(
            &outer,
            &backends,
            plan.load.timeout,
            Probe::Edge,
            self.host.labels("edge"),
        );
        self.host
            .create_and_start("edge container", &outer_name, body)
            .await?;

        let converged = manager
            .wait_converged(&service.name, Duration::from_secs(120), None)
            .await?;
        let _ = events.send(Event::note(
            clock.now(),
            "service_converged",
            "lab",
            converged.summary(),
        ));
        manager
            .wait_converged(&inner_edge_service, Duration::from_secs(120), None)
            .await?;
        // Past HAProxy's first checks (fall 2 x 1 s): Plan::readiness asks 3 s in a row.
        crate::ready::wait(&plan.readiness(), &plan.load).await?;
        progress(&format!(
            "service {} ready behind {:?} on {} after {:.1?}",
            service.name,
            outer.kind,
            outer.publish,
            started.elapsed()
        ));
        Ok(LabHandle {
            target: outer.publish,
            service,
            edge: outer,
            network,
            edge_container: Some(outer_name),
            edge_service: Some(inner_edge_service),
            publish: None,
        })
    }

    /// Removes this run's objects: inside the cluster through a manager, and on the host.
    pub async fn teardown(
        &self,
        progress: crate::driver::images::Progress<'_>,
    ) -> Result<(), DriverError> {
        let restored = self.restore(progress).await;
        let inside = match restored {
            Ok(()) => match self.manager().await {
                Ok(m) => m.teardown().await,
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        self.host.teardown().await?;
        let left = self.remove_run_containers().await;
        inside.and(left)
    }

    /// Removes this run's containers on every node. Swarm removes a removed service's running
    /// tasks, but the exited containers of a removed job (the generators) stayed on the
    /// workers (seen after 30 s and more).
    async fn remove_run_containers(&self) -> Result<(), DriverError> {
        let label = format!("{}={}", crate::driver::LABEL_RUN, self.host.run_id());
        for node in &self.nodes {
            // A node that does not answer was restored above or is gone with the lab.
            let Ok(containers) = node.driver.labelled_containers(&label).await else {
                continue;
            };
            for id in containers.into_iter().filter_map(|c| c.id) {
                let opts = RemoveContainerOptionsBuilder::default()
                    .force(true)
                    .v(true)
                    .build();
                match node
                    .driver
                    .call(
                        "remove container",
                        node.driver.docker.remove_container(&id, Some(opts)),
                    )
                    .await
                {
                    Ok(()) => {}
                    Err(e) if crate::driver::is_not_found(&e) => {}
                    // Swarm's own removal of it is under way.
                    Err(e) if e.to_string().contains("already in progress") => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    /// Undoes what a run's steps did to the lab, so that the next run finds it whole (and this
    /// one can remove its service): paused nodes resume, stopped or killed ones start,
    /// disconnected ones get their address back, and once the managers answer again, drained
    /// nodes that should serve are activated. Needed after a scenario that ends with a node
    /// down, and after Ctrl-C in the middle of a fault.
    pub(super) async fn restore(
        &self,
        progress: crate::driver::images::Progress<'_>,
    ) -> Result<(), DriverError> {
        let repairs = self
            .nodes
            .iter()
            .map(|node| self.repair_node(node, progress));
        for r in futures_util::future::join_all(repairs).await {
            r?;
        }
        // Wait until the managers answer and see every node ready again (after a quorum loss
        // they report nodes `unknown` for a few seconds), so the next run finds the lab whole.
        let nodes = self.wait_all_ready(RESTORE_TIMEOUT).await?;
        for n in nodes {
            let Some(name) = n
                .description
                .as_ref()
                .and_then(|d| d.hostname.as_deref())
                .and_then(NodeName::parse)
            else {
                continue;
            };
            let drained = n.spec.as_ref().and_then(|s| s.availability)
                == Some(NodeSpecAvailabilityEnum::DRAIN);
            let should_drain = name.role == NodeRole::Manager && self.shape.drain_managers;
            if drained && !should_drain {
                progress(&format!("restoring the lab: activating {name}"));
                self.set_availability(name, NodeSpecAvailabilityEnum::ACTIVE)
                    .await?;
            }
        }
        Ok(())
    }
}

/// The outer edge on the host: HAProxy (or nginx) on the lab network in front of every
/// task-running node's edge port, health-checked, listening on the loopback address only.
pub(super) fn outer_edge_body(
    edge: &Edge,
    backends: &[(String, SocketAddr)],
    read_timeout: Duration,
    probe: Probe,
    labels: HashMap<String, String>,
) -> ContainerCreateBody {
    let (image, entrypoint, conf_env, stop_signal) = match edge.kind {
        EdgeKind::Haproxy => (
            HAPROXY_IMAGE,
            "printf '%s\\n' \"$EDGE_CONF\" > /tmp/haproxy.cfg && exec haproxy -W -db -f /tmp/haproxy.cfg",
            haproxy_conf(edge, backends, read_timeout, probe),
            // HAProxy's soft stop: finish what is in flight.
            "SIGUSR1",
        ),
        _ => (
            NGINX_IMAGE,
            "printf '%s\\n' \"$EDGE_CONF\" > /etc/nginx/nginx.conf && exec nginx -g 'daemon off;'",
            nginx_upstream_conf(edge, backends, read_timeout),
            "SIGQUIT",
        ),
    };
    edge::proxy_body(
        image,
        &["/bin/sh", "-c", entrypoint],
        vec![format!("EDGE_CONF={conf_env}")],
        stop_signal,
        edge.publish,
        LAB_NETWORK,
        labels,
    )
}
