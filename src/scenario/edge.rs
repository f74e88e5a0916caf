//! `[edge]` → [`Edge`]: the proxy in front of the service, where it listens (loopback only,
//! unless a Swarm-published port is accepted on every interface), and which edge fits which lab.

use super::plan::*;
use super::raw::{self, Text};
use super::validate::{Check, R};
use crate::tls::RunCertificate;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use toml::Spanned;

impl Check<'_> {
    pub(super) fn edge(&self, e: &Spanned<raw::Edge>) -> R<Edge> {
        let edge = self.edge_fields(e)?;
        let r = e.get_ref();
        // Swarm's published ports have no host address: they bind every interface, and the
        // lab's "loopback only" would silently not hold.
        let swarm_port = match (edge.kind, edge.mode) {
            (EdgeKind::None, _) => Some((
                "edge.kind",
                r.kind.as_ref(),
                "kind = \"none\" publishes the service's own port",
            )),
            (EdgeKind::Ingress, _) => Some((
                "edge.kind",
                r.kind.as_ref(),
                "kind = \"ingress\" publishes the routing mesh's port",
            )),
            (_, EdgeMode::GlobalService) => Some((
                "edge.mode",
                r.mode.as_ref(),
                "mode = \"global-service\" publishes a host-mode port",
            )),
            _ => None,
        };
        if let Some((key, Some(at), what)) = swarm_port
            && !r.all_interfaces.as_ref().is_some_and(|b| *b.get_ref())
        {
            return Err(self.err(
                at,
                key,
                format!(
                    "{what}, a Swarm port: it binds {} on every interface of this machine, not only {} (Swarm ports take no address); set edge.all_interfaces = true to accept that, or use kind = \"nginx\" with mode = \"container\" (loopback only)",
                    edge.publish.port(),
                    edge.publish.ip()
                ),
            ));
        }
        Ok(edge)
    }

    fn edge_fields(&self, e: &Spanned<raw::Edge>) -> R<Edge> {
        let r = e.get_ref();
        let publish = match &r.publish {
            Some(p) => self.publish(p)?,
            None => SocketAddr::from((Ipv4Addr::LOCALHOST, 8080)),
        };
        Ok(Edge {
            kind: self.opt_choice(
                "edge.kind",
                &r.kind,
                &[
                    ("nginx", EdgeKind::Nginx),
                    ("haproxy", EdgeKind::Haproxy),
                    ("ingress", EdgeKind::Ingress),
                    ("none", EdgeKind::None),
                ],
            )?,
            publish,
            mode: self.opt_choice(
                "edge.mode",
                &r.mode,
                &[
                    ("container", EdgeMode::Container),
                    ("global-service", EdgeMode::GlobalService),
                ],
            )?,
            protocol: self.opt_choice(
                "edge.protocol",
                &r.protocol,
                &[("http", EdgeProtocol::Http), ("tcp", EdgeProtocol::Tcp)],
            )?,
            retries: r.retries.as_ref().is_none_or(|b| *b.get_ref()),
            healthcheck: r
                .healthcheck
                .as_ref()
                .map(|h| self.healthcheck("edge.healthcheck", h))
                .transpose()?,
            tls: match &r.tls {
                Some(t) if *t.get_ref() => Some(self.run_certificate(t, publish)?),
                _ => None,
            },
        })
    }

    /// The edge's https certificate: for `localhost` and the publish address, made now (no
    /// file to manage, and no key outlives the run).
    fn run_certificate(&self, at: &Spanned<bool>, publish: SocketAddr) -> R<RunCertificate> {
        let ip = publish.ip().to_string();
        RunCertificate::generate("rollcheck run CA", &["localhost", &ip])
            .map_err(|e| self.err(at, "edge.tls", e))
    }

    /// `[edge] tls = true`: nginx terminating http, and a load that speaks https to it.
    pub(super) fn edge_tls_fits(
        &self,
        raw: &raw::Scenario,
        lab: Option<&Lab>,
        edge: &Edge,
        load: &Load,
    ) -> R<()> {
        let Some(at) = raw.edge.as_ref().and_then(|e| e.get_ref().tls.as_ref()) else {
            return Ok(());
        };
        if !matches!(lab, Some(Lab::SwarmLocal)) {
            return Err(self.err(
                at,
                "edge.tls",
                "only the swarm-local lab's nginx edge terminates TLS so far (on a cluster, run your own TLS proxy in a [stack] and name its CA with [load] tls)",
            ));
        }
        if edge.kind != EdgeKind::Nginx || edge.protocol != EdgeProtocol::Http {
            return Err(self.err(
                at,
                "edge.tls",
                "only an nginx edge with protocol = \"http\" terminates TLS here",
            ));
        }
        if load.target.scheme() != Some(&http::uri::Scheme::HTTPS) {
            return Err(self.err(
                at,
                "edge.tls",
                format!(
                    "the edge serves https, but load.target is {} (write https://{})",
                    load.target, edge.publish
                ),
            ));
        }
        Ok(())
    }

    /// What the lab can front with which edge. These were the driver's refusals, found only
    /// after images were built; `check` must refuse them too.
    pub(super) fn edge_fits_lab(
        &self,
        raw: &raw::Scenario,
        lab: &Lab,
        edge: &Edge,
        service: Option<&Service>,
    ) -> R<()> {
        let kind_at = raw.edge.as_ref().and_then(|e| e.get_ref().kind.as_ref());
        let refuse = |why: String| match kind_at {
            Some(k) => Err(self.err(k, "edge.kind", why)),
            None => Err(self.src.error(None, format!("edge.kind: {why}"))),
        };
        let name = match edge.kind {
            EdgeKind::Nginx => "nginx",
            EdgeKind::Haproxy => "haproxy",
            EdgeKind::Ingress => "ingress",
            EdgeKind::None => "none",
        };
        match lab {
            Lab::SwarmCluster { .. } if !matches!(edge.kind, EdgeKind::Nginx | EdgeKind::Haproxy) => {
                refuse(format!(
                    "\"{name}\" cannot front a swarm-cluster lab: its nodes are reached through an outer proxy on 127.0.0.1 (use \"haproxy\" or \"nginx\")"
                ))
            }
            Lab::SwarmLocal if edge.kind == EdgeKind::Haproxy => refuse(
                "\"haproxy\" is the outer edge of a swarm-cluster lab only; a swarm-local lab uses \"nginx\"".into(),
            ),
            // A host-mode port takes one task per node; on one node the second replica would
            // wait forever for a free port ("host-mode port already in use").
            Lab::SwarmLocal if edge.kind == EdgeKind::None => {
                let replicas = raw
                    .service
                    .as_ref()
                    .and_then(|s| s.get_ref().replicas.as_ref());
                match (service.map(|s| s.replicas), replicas) {
                    (Some(n), Some(at)) if n > 1 => Err(self.err(
                        at,
                        "service.replicas",
                        format!(
                            "{n} replicas with edge.kind = \"none\" on a single-node lab: a host-mode port fits one task per node, the others would stay pending (use edge.kind = \"nginx\", or replicas = 1)"
                        ),
                    )),
                    _ => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }

    /// `"127.0.0.1:8080"`, `"[::1]:8080"`, `"localhost:8080"` or a bare port (on 127.0.0.1).
    pub(super) fn publish(&self, p: &Text) -> R<SocketAddr> {
        let text = p.get_ref().trim();
        let addr = text
            .parse::<SocketAddr>()
            .ok()
            .or_else(|| {
                text.parse::<u16>()
                    .ok()
                    .map(|port| SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
            })
            .or_else(|| {
                let port = text.strip_prefix("localhost:")?.parse::<u16>().ok()?;
                Some(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
            })
            .ok_or_else(|| {
                self.err(
                    p,
                    "edge.publish",
                    format!("invalid address \"{text}\" (write e.g. \"127.0.0.1:8080\")"),
                )
            })?;
        if !is_loopback(addr.ip()) {
            return Err(self.err(p, "edge.publish", format!("\"{text}\" is not a loopback address: the lab only binds loopback (e.g. \"127.0.0.1:8080\")")));
        }
        if addr.port() == 0 {
            return Err(self.err(p, "edge.publish", "port must be between 1 and 65535"));
        }
        Ok(addr)
    }
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}
