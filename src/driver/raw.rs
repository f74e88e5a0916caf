//! Reads of service and task specs that bollard's models cannot round-trip.
//!
//! bollard 0.21 names the container healthcheck `HealthCheck`; the engine writes
//! `Healthcheck`. Writes work (Go decodes JSON keys case-insensitively) but every read drops
//! the healthcheck, so a read-modify-write of a service through bollard silently removes it
//! and starts a rolling update. These reads fetch the JSON from the same engine API, rename
//! the key, and then deserialize into bollard's own types, so the rest of the driver keeps
//! using them.

use super::{Driver, DriverError};
use bollard::models::{Service, Task};
use serde_json::Value;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const RAW_TIMEOUT: Duration = Duration::from_secs(30);

impl Driver {
    /// `GET /services/{name}` with the healthcheck intact. 404 → [`DriverError::NoSuchService`].
    pub(crate) async fn inspect_service_full(&self, name: &str) -> Result<Service, DriverError> {
        let mut value = self.get_json(&format!("/services/{name}"), name).await?;
        fix_task_spec(&mut value["Spec"]["TaskTemplate"]);
        serde_json::from_value(value).map_err(|e| self.decode_error("inspect service", e))
    }

    /// `GET /tasks?filters={"service":[name]}` with the healthcheck intact.
    pub(crate) async fn list_tasks_full(&self, name: &str) -> Result<Vec<Task>, DriverError> {
        let filters = serde_json::json!({ "service": [name] }).to_string();
        let path = format!("/tasks?filters={}", percent_encode(&filters));
        let mut value = self.get_json(&path, name).await?;
        if let Value::Array(tasks) = &mut value {
            for task in tasks {
                fix_task_spec(&mut task["Spec"]);
            }
        }
        serde_json::from_value(value).map_err(|e| self.decode_error("list tasks", e))
    }

    fn decode_error(&self, call: &str, e: serde_json::Error) -> DriverError {
        DriverError::Engine {
            call: call.into(),
            source: bollard::errors::Error::JsonSerdeError { err: e },
        }
    }

    /// One HTTP/1.0 GET (the engine then answers without chunking and closes) on the socket
    /// bollard uses, under the negotiated API version.
    async fn get_json(&self, path: &str, subject: &str) -> Result<Value, DriverError> {
        let version = self.docker.client_version();
        let request = format!(
            "GET /v{}.{}{path} HTTP/1.0\r\nHost: docker\r\n\r\n",
            version.major_version, version.minor_version
        );
        let call = format!("GET {path}");
        let io_error = |e: std::io::Error| DriverError::Engine {
            call: call.clone(),
            source: bollard::errors::Error::IOError { err: e },
        };
        let exchange = async {
            let mut response = Vec::new();
            if let Some(socket) = self.socket.strip_prefix("unix://") {
                let mut s = tokio::net::UnixStream::connect(socket).await?;
                s.write_all(request.as_bytes()).await?;
                s.read_to_end(&mut response).await?;
            } else if let Some(addr) = self.socket.strip_prefix("tcp://") {
                let mut s = tokio::net::TcpStream::connect(addr).await?;
                s.write_all(request.as_bytes()).await?;
                s.read_to_end(&mut response).await?;
            } else {
                return Err(std::io::Error::other(format!(
                    "unsupported DOCKER_HOST {}",
                    self.socket
                )));
            }
            Ok(response)
        };
        let response = match tokio::time::timeout(RAW_TIMEOUT, exchange).await {
            Ok(r) => r.map_err(io_error)?,
            Err(_) => {
                return Err(DriverError::Timeout {
                    call,
                    after: RAW_TIMEOUT,
                });
            }
        };
        let split = response
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or(response.len());
        let head = String::from_utf8_lossy(&response[..split]);
        let body = response.get(split + 4..).unwrap_or_default();
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        match status {
            200 => serde_json::from_slice(body).map_err(|e| self.decode_error(&call, e)),
            404 => Err(DriverError::NoSuchService {
                service: subject.into(),
            }),
            _ => Err(DriverError::Engine {
                call,
                source: bollard::errors::Error::DockerResponseServerError {
                    status_code: status,
                    message: String::from_utf8_lossy(body).trim().to_string(),
                },
            }),
        }
    }
}

/// Renames the engine's `Healthcheck` to the key bollard's `TaskSpecContainerSpec` reads.
fn fix_task_spec(task_spec: &mut Value) {
    if let Some(container) = task_spec
        .get_mut("ContainerSpec")
        .and_then(Value::as_object_mut)
        && let Some(health) = container.remove("Healthcheck")
    {
        container.insert("HealthCheck".into(), health);
    }
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pins the bollard quirk this module exists for: if bollard ever reads `Healthcheck`,
    /// this fails and the module can go.
    #[test]
    fn bollard_drops_the_engines_healthcheck_key() {
        let engine = serde_json::json!({ "ContainerSpec": { "Image": "x", "Healthcheck": { "Test": ["NONE"] } } });
        let direct: bollard::models::TaskSpec = serde_json::from_value(engine.clone()).unwrap();
        assert!(direct.container_spec.unwrap().health_check.is_none());
        let mut fixed = engine;
        fix_task_spec(&mut fixed);
        let fixed: bollard::models::TaskSpec = serde_json::from_value(fixed).unwrap();
        assert_eq!(
            fixed
                .container_spec
                .unwrap()
                .health_check
                .unwrap()
                .test
                .unwrap(),
            ["NONE"]
        );
    }

    #[test]
    fn filters_are_encoded() {
        assert_eq!(
            percent_encode(r#"{"service":["a"]}"#),
            "%7B%22service%22%3A%5B%22a%22%5D%7D"
        );
    }
}
