//! The compose files of a `[stack]`, read as far as rollcheck needs before anything is
//! deployed: which services the stack has (so a step naming one that is not there fails in
//! `check`), their images (so they can be built or looked for first), whether they publish
//! ports, and the networks, configs and secrets the stack creates (so rollcheck can label
//! them for its cleanup). Everything else is `docker stack deploy`'s to read: it is the
//! reference implementation of compose → Swarm, and rollcheck calls it.
//!
//! Several files merge in order as the CLI merges them: a later file's image for a service
//! replaces an earlier one's. `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `$VAR` and `$$`
//! in an image are expanded the way compose does (an unset variable is empty).

use super::error::ScenarioError;
use serde::Deserialize;
use serde::de::IgnoredAny;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What the stack's files say, merged.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Compose {
    /// By the stack-local name (`app`, not `shop_app`).
    pub services: BTreeMap<String, ComposeService>,
    pub networks: Vec<String>,
    pub configs: Vec<String>,
    pub secrets: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ComposeService {
    /// As deployed, variables expanded.
    pub image: String,
    /// The service publishes a port (Swarm binds it on every interface).
    pub publishes: bool,
    /// The ports it publishes, as far as the files give them as numbers (in file order).
    pub published: Vec<u16>,
}

#[derive(Deserialize)]
struct File {
    #[serde(default)]
    services: BTreeMap<String, Service>,
    #[serde(default)]
    networks: BTreeMap<String, IgnoredAny>,
    #[serde(default)]
    configs: BTreeMap<String, IgnoredAny>,
    #[serde(default)]
    secrets: BTreeMap<String, IgnoredAny>,
}

#[derive(Deserialize)]
struct Service {
    image: Option<String>,
    #[serde(default)]
    ports: Vec<Port>,
}

/// A `ports` entry: `"8080:80"`, `"127.0.0.1:8080:80/tcp"`, `80`, or the long form.
#[derive(Deserialize)]
#[serde(untagged)]
enum Port {
    Short(String),
    /// A bare container port: Swarm publishes a random one. (Matched to tell it from other
    /// shapes, which are errors; its value is not needed.)
    Number(#[allow(dead_code)] u64),
    Long {
        published: Option<Number>,
        protocol: Option<String>,
    },
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Number {
    Number(u64),
    Text(String),
}

impl Port {
    /// The published TCP port, if one is given as a single number (a range is not), with
    /// variables expanded.
    fn published(&self, env: &dyn Fn(&str) -> Option<String>) -> Option<u16> {
        match self {
            Port::Number(_) => None,
            Port::Short(s) => {
                let s = expand(s, env);
                let (spec, protocol) = s.split_once('/').unwrap_or((&s, "tcp"));
                let parts: Vec<&str> = spec.rsplit(':').collect();
                parts
                    .get(1)
                    .filter(|_| protocol == "tcp")
                    .and_then(|p| p.parse().ok())
            }
            Port::Long {
                published,
                protocol,
            } => {
                if protocol.as_deref().is_some_and(|p| p != "tcp") {
                    return None;
                }
                match published.as_ref()? {
                    Number::Number(n) => u16::try_from(*n).ok(),
                    Number::Text(t) => expand(t, env).parse().ok(),
                }
            }
        }
    }
}

/// The largest compose file rollcheck reads (like the scenario's own limit).
const MAX_BYTES: u64 = 1 << 20;

/// Reads and merges `files`; `env` answers variables. Errors name the compose file and,
/// where the YAML parser knows it, the line and column.
pub fn read(
    files: &[PathBuf],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Compose, ScenarioError> {
    let mut out = Compose::default();
    let mut images: BTreeMap<String, Option<String>> = BTreeMap::new();
    for path in files {
        let err = |position, message: String| ScenarioError {
            path: path.clone(),
            position,
            message,
        };
        let meta = std::fs::metadata(path)
            .map_err(|e| err(None, format!("cannot read the compose file: {e}")))?;
        if meta.len() > MAX_BYTES {
            return Err(err(
                None,
                format!(
                    "{} bytes: a compose file rollcheck reads is at most 1 MiB",
                    meta.len()
                ),
            ));
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| err(None, format!("cannot read the compose file: {e}")))?;
        let file: File = serde_saphyr::from_str(&text).map_err(|e| {
            let position = e
                .location()
                .map(|l| (l.line() as usize, l.column() as usize))
                .filter(|&(line, _)| line > 0);
            err(position, one_line(&e.without_snippet().to_string()))
        })?;
        for (name, s) in file.services {
            let entry = images.entry(name.clone()).or_default();
            if let Some(image) = s.image {
                *entry = Some(expand(&image, env));
            }
            let publishes = !s.ports.is_empty();
            let published: Vec<u16> = s.ports.iter().filter_map(|p| p.published(env)).collect();
            out.services
                .entry(name)
                .and_modify(|c| {
                    c.publishes |= publishes;
                    // The CLI merges a later file's ports into the earlier ones'.
                    for p in &published {
                        if !c.published.contains(p) {
                            c.published.push(*p);
                        }
                    }
                })
                .or_insert(ComposeService {
                    image: String::new(),
                    publishes,
                    published,
                });
        }
        for (list, names) in [
            (&mut out.networks, file.networks),
            (&mut out.configs, file.configs),
            (&mut out.secrets, file.secrets),
        ] {
            for name in names.into_keys() {
                if !list.contains(&name) {
                    list.push(name);
                }
            }
        }
    }
    let last = files.last().cloned().unwrap_or_default();
    for (name, image) in images {
        match image.filter(|i| !i.is_empty()) {
            Some(image) => out.services.get_mut(&name).expect("merged above").image = image,
            None => {
                return Err(ScenarioError {
                    path: last,
                    position: None,
                    message: format!(
                        "services.{name}: no image (docker stack deploy builds nothing: give every service an image that exists on the engine)"
                    ),
                });
            }
        }
    }
    if out.services.is_empty() {
        return Err(ScenarioError {
            path: last,
            position: None,
            message: "no services: a stack needs at least one".into(),
        });
    }
    Ok(out)
}

/// The parser's message on one line, without its own "at line … column …" (the position is
/// given as `file:line:col`).
fn one_line(message: &str) -> String {
    let first = message.lines().next().unwrap_or_default().trim();
    match first.find(" at line ") {
        Some(i) => first[..i].to_string(),
        None => first.to_string(),
    }
}

/// Compose's variable syntax in one value: `$$` is a `$`; an unset variable is empty.
fn expand(value: &str, env: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(r) = rest.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(r) = rest.strip_prefix('{') {
            let Some(end) = r.find('}') else {
                out.push_str("${");
                rest = r;
                continue;
            };
            let inner = &r[..end];
            rest = &r[end + 1..];
            let (name, default, if_empty) = match (inner.find(":-"), inner.find('-')) {
                (Some(j), _) => (&inner[..j], Some(&inner[j + 2..]), true),
                (None, Some(j)) => (&inner[..j], Some(&inner[j + 1..]), false),
                (None, None) => (inner, None, false),
            };
            let value = env(name).filter(|v| !(if_empty && v.is_empty()));
            out.push_str(&value.or(default.map(String::from)).unwrap_or_default());
        } else {
            let len = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            if len == 0 {
                out.push('$');
            } else {
                out.push_str(&env(&rest[..len]).unwrap_or_default());
                rest = &rest[len..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// `compose` paths as written in the scenario, relative to the scenario's directory.
pub fn resolve(scenario: &Path, file: &str) -> PathBuf {
    let p = Path::new(file);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        scenario.parent().unwrap_or(Path::new("")).join(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "TAG" => Some("2".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn variables_expand_as_compose_does() {
        for (value, want) in [
            ("app:${TAG}", "app:2"),
            ("app:$TAG", "app:2"),
            ("app:${NOPE:-1}", "app:1"),
            ("app:${EMPTY:-1}", "app:1"),
            ("app:${EMPTY-1}", "app:"),
            ("app:${NOPE}", "app:"),
            ("a$$b", "a$b"),
            ("trailing$", "trailing$"),
        ] {
            assert_eq!(expand(value, &env), want, "{value}");
        }
    }

    #[test]
    fn published_ports_in_every_form() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.yml");
        std::fs::write(
            &a,
            "services:\n  web:\n    image: w\n    ports:\n      - \"127.0.0.1:8081:80/tcp\"\n      - 80\n      - \"9000-9001:9000-9001\"\n      - { target: 80, published: 8082, mode: host }\n      - { target: 81, published: \"8083\" }\n      - { target: 82 }\n      - \"5353:53/udp\"\n      - { target: 54, published: 5354, protocol: udp }\n      - \"${PORT:-8084}:80\"\n",
        )
        .unwrap();
        let c = read(&[a], &env).unwrap();
        assert_eq!(c.services["web"].published, [8081, 8082, 8083, 8084]);
        // A later file adds to the ports, as the CLI merges them.
        let b = dir.path().join("b.yml");
        std::fs::write(&b, "services:\n  web:\n    ports: [\"9090:90\"]\n").unwrap();
        let c = read(&[dir.path().join("a.yml"), b], &env).unwrap();
        assert_eq!(c.services["web"].published, [8081, 8082, 8083, 8084, 9090]);
    }

    #[test]
    fn files_merge_in_order_and_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.yml");
        let b = dir.path().join("b.yml");
        std::fs::write(
            &a,
            "version: \"3.8\"\nservices:\n  web:\n    image: example/web:1\n    ports: [\"8080:80\"]\n  app:\n    image: example/app:1\nnetworks:\n  front: {}\nconfigs:\n  conf:\n    file: ./nginx.conf\n",
        )
        .unwrap();
        std::fs::write(&b, "services:\n  app:\n    image: example/app:${TAG}\n").unwrap();
        let c = read(&[a.clone(), b.clone()], &env).unwrap();
        assert_eq!(c.services["app"].image, "example/app:2");
        assert!(c.services["web"].publishes && !c.services["app"].publishes);
        assert_eq!(c.services["web"].published, [8080]);
        assert_eq!(
            (c.networks, c.configs),
            (vec!["front".to_string()], vec!["conf".to_string()])
        );

        std::fs::write(&b, "services:\n  app:\n    image: [not, a, string]\n").unwrap();
        let e = read(&[a.clone(), b.clone()], &env).unwrap_err();
        assert_eq!(e.path, b);
        assert_eq!(e.position.map(|p| p.0), Some(3), "{e}");
        assert!(!e.message.contains('\n'), "{e}");

        std::fs::write(&b, "services:\n  worker:\n    command: [sleep, inf]\n").unwrap();
        let e = read(&[a, b], &env).unwrap_err().to_string();
        assert!(e.contains("services.worker: no image"), "{e}");

        let e = read(&[dir.path().join("missing.yml")], &env)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("missing.yml: cannot read the compose file"),
            "{e}"
        );
    }
}
