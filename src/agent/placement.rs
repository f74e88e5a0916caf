//! `[load] placement`: Swarm placement constraints, as the engine takes them
//! (`node.role == worker`), read before anything starts so a typo fails `check` with its line,
//! and matched against the lab's nodes so too many generators for the nodes that match fail
//! before any load. Swarm accepts `==` and `!=` on these keys only (swarmkit's
//! `constraint.go`).

/// What a constraint compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    Id,
    Hostname,
    Ip,
    Role,
    PlatformOs,
    PlatformArch,
    NodeLabel(String),
    EngineLabel(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Constraint {
    pub key: Key,
    pub equal: bool,
    pub value: String,
}

/// A node as the constraints see it.
#[derive(Debug, Clone, Default)]
pub struct NodeFacts {
    pub id: String,
    pub hostname: String,
    pub ip: String,
    /// `manager` or `worker`.
    pub role: String,
    pub os: String,
    pub arch: String,
    pub labels: std::collections::HashMap<String, String>,
    pub engine_labels: std::collections::HashMap<String, String>,
}

impl Constraint {
    pub fn parse(text: &str) -> Result<Constraint, String> {
        let (at, equal, len) = match (text.find("=="), text.find("!=")) {
            (Some(i), None) => (i, true, 2),
            (None, Some(i)) => (i, false, 2),
            _ => {
                return Err(format!(
                    "{text:?} is not a placement constraint: write `node.role == worker` (Swarm compares with == or !=)"
                ));
            }
        };
        let (key, value) = (text[..at].trim(), text[at + len..].trim());
        if value.is_empty() {
            return Err(format!("{text:?} compares {key} with nothing"));
        }
        let key = match key {
            "node.id" => Key::Id,
            "node.hostname" => Key::Hostname,
            "node.ip" => Key::Ip,
            "node.role" => {
                if value != "manager" && value != "worker" {
                    return Err(format!("node.role is manager or worker, not {value:?}"));
                }
                Key::Role
            }
            "node.platform.os" => Key::PlatformOs,
            "node.platform.arch" => Key::PlatformArch,
            k => match (
                k.strip_prefix("node.labels."),
                k.strip_prefix("engine.labels."),
            ) {
                (Some(l), _) if !l.is_empty() => Key::NodeLabel(l.into()),
                (_, Some(l)) if !l.is_empty() => Key::EngineLabel(l.into()),
                _ => {
                    return Err(format!(
                        "Swarm places by node.id, node.hostname, node.ip, node.role, node.platform.os, node.platform.arch, node.labels.<name> or engine.labels.<name>, not {k:?}"
                    ));
                }
            },
        };
        Ok(Constraint {
            key,
            equal,
            value: value.to_string(),
        })
    }

    /// Whether `node` satisfies the constraint (strings compare case-insensitively, as
    /// Swarm's do; a missing label is unequal to every value).
    pub fn matches(&self, node: &NodeFacts) -> bool {
        let have = match &self.key {
            Key::Id => Some(node.id.as_str()),
            Key::Hostname => Some(node.hostname.as_str()),
            Key::Ip => Some(node.ip.as_str()),
            Key::Role => Some(node.role.as_str()),
            Key::PlatformOs => Some(node.os.as_str()),
            Key::PlatformArch => Some(node.arch.as_str()),
            Key::NodeLabel(l) => node.labels.get(l).map(String::as_str),
            Key::EngineLabel(l) => node.engine_labels.get(l).map(String::as_str),
        };
        let same = have.is_some_and(|h| h.eq_ignore_ascii_case(&self.value));
        same == self.equal
    }
}

/// Whether `node` satisfies every constraint.
pub fn matches_all(constraints: &[Constraint], node: &NodeFacts) -> bool {
    constraints.iter().all(|c| c.matches(node))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constraints_parse_as_swarm_writes_them() {
        let c = Constraint::parse("node.role == worker").unwrap();
        assert_eq!(
            (c.key, c.equal, c.value.as_str()),
            (Key::Role, true, "worker")
        );
        let c = Constraint::parse("node.labels.zone!=b").unwrap();
        assert_eq!(c.key, Key::NodeLabel("zone".into()));
        assert!(!c.equal);
        for bad in [
            "node.role = worker",
            "node.role == boss",
            "node.colour == red",
            "node.hostname ==",
            "node.labels. == x",
        ] {
            assert!(Constraint::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn nodes_match_every_constraint() {
        let worker = NodeFacts {
            hostname: "worker-1".into(),
            role: "worker".into(),
            labels: [("zone".to_string(), "a".to_string())].into(),
            ..Default::default()
        };
        let on = |texts: &[&str]| {
            let cs: Vec<_> = texts
                .iter()
                .map(|t| Constraint::parse(t).unwrap())
                .collect();
            matches_all(&cs, &worker)
        };
        assert!(on(&["node.role == worker"]));
        assert!(on(&["node.role == worker", "node.hostname != worker-2"]));
        assert!(!on(&["node.role == manager"]));
        assert!(on(&["node.labels.zone == A"]));
        assert!(!on(&["node.labels.rack == 1"]));
        assert!(on(&["node.labels.rack != 1"]));
        assert!(on(&[]));
    }
}
