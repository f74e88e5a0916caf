//! Node steps: the faults of rollcheck's cluster lab (`node_*`, `manager_stop`,
//! `leader_stop`, on the nodes that lab has) and, on an existing swarm that opts in, draining
//! and activating a node by its hostname.

use super::super::plan::*;
use super::super::raw;
use super::super::validate::{Check, R};
use toml::Spanned;

/// `node_*`, `manager_stop` and `leader_stop`: only in a `swarm-cluster` lab, and only on
/// nodes that lab has.
pub(super) fn node_fault(
    c: &Check<'_>,
    ctx: &str,
    s: &Spanned<raw::Step>,
    name: &str,
    lab: Option<&Lab>,
) -> R<Action> {
    let r = s.get_ref();
    if let Some(&Lab::Existing { node_faults }) = lab {
        return existing_node(c, ctx, s, name, node_faults);
    }
    let Some(&Lab::SwarmCluster {
        managers, workers, ..
    }) = lab
    else {
        return Err(c.err(
            s,
            ctx,
            format!("action \"{name}\" needs a lab with kind = \"swarm-cluster\""),
        ));
    };
    match name {
        "leader_stop" => Ok(Action::LeaderStop),
        "manager_stop" => {
            let count = r.count.as_ref().ok_or_else(|| {
                c.err(
                    s,
                    ctx,
                    "missing required key \"count\" for action \"manager_stop\"",
                )
            })?;
            let n = *count.get_ref();
            if n == 0 || n > managers {
                return Err(c.err(
                    count,
                    &format!("{ctx}: count"),
                    format!("must be between 1 and the lab's {managers} managers"),
                ));
            }
            Ok(Action::ManagerStop { count: n })
        }
        _ => {
            let op = NodeOp::ALL
                .into_iter()
                .find(|op| op.keyword() == name)
                .expect("ACTIONS lists only known node actions");
            let text = r.node.as_ref().ok_or_else(|| {
                c.err(
                    s,
                    ctx,
                    format!("missing required key \"node\" for action \"{name}\" (e.g. node = \"worker-1\")"),
                )
            })?;
            let names: Vec<String> = (1..=managers)
                .map(NodeName::manager)
                .chain((1..=workers).map(NodeName::worker))
                .map(|n| n.to_string())
                .collect();
            let node = NodeName::parse(text.get_ref())
                .filter(|n| names.contains(&n.to_string()))
                .ok_or_else(|| {
                    c.err(
                        text,
                        &format!("{ctx}: node"),
                        format!(
                            "no node \"{}\" in this lab (it has {})",
                            text.get_ref(),
                            names.join(", ")
                        ),
                    )
                })?;
            Ok(Action::Node { op, node })
        }
    }
}

/// A node step on an existing swarm: with `[lab] node_faults = true`, `node_drain` and
/// `node_activate` of a node by its hostname; nothing that stops, freezes or cuts a machine.
fn existing_node(
    c: &Check<'_>,
    ctx: &str,
    s: &Spanned<raw::Step>,
    name: &str,
    opted_in: bool,
) -> R<Action> {
    let drain = match name {
        "node_drain" => true,
        "node_activate" => false,
        _ => {
            return Err(c.err(
                s,
                ctx,
                format!(
                    "action \"{name}\" stops, freezes or cuts a machine: rollcheck does that only to the nodes of its own swarm-cluster lab; on an existing swarm it can drain and activate nodes (node_drain, node_activate)"
                ),
            ));
        }
    };
    if !opted_in {
        return Err(c.err(
            s,
            ctx,
            format!(
                "action \"{name}\" changes a node of your swarm: allow it with [lab] node_faults = true (rollcheck puts each node's availability back at the end, whatever `restore` says)"
            ),
        ));
    }
    let node = s.get_ref().node.as_ref().ok_or_else(|| {
        c.err(
            s,
            ctx,
            format!(
                "missing required key \"node\" for action \"{name}\" (the node's hostname, as `docker node ls` shows it)"
            ),
        )
    })?;
    let host = node.get_ref();
    let valid = !host.is_empty()
        && host.len() <= 253
        && host
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || "-._".contains(ch));
    if !valid {
        return Err(c.err(
            node,
            &format!("{ctx}: node"),
            format!("invalid hostname \"{host}\""),
        ));
    }
    Ok(Action::NodeAvailability {
        node: host.clone(),
        drain,
    })
}
