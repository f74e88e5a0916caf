//! `rollcheck probe URL`: the HEALTHCHECK command for images that have no curl.
//! One GET, success on 2xx; the error says why in one line. `main` maps it to the exit code,
//! which is what Docker reads (0 healthy, 1 unhealthy).

use std::error::Error as _;
use std::io;
use std::time::Duration;

/// Why a probe did not count as healthy. Each message starts with the URL, so a line in
/// `docker inspect`'s health log stands on its own.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("{url}: invalid url: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("{url}: connection refused")]
    Refused { url: String },
    #[error("{url}: no answer within {}", humantime::format_duration(*.timeout))]
    Timeout { url: String, timeout: Duration },
    #[error("{url}: HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url}: {reason}")]
    Failed { url: String, reason: String },
}

/// GETs `url` and returns the status code if it is 2xx. `timeout` bounds connect and the whole
/// response. No proxy is used: a probe of 127.0.0.1 must reach the container itself.
pub async fn probe(url: &str, timeout: Duration) -> Result<u16, ProbeError> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(timeout)
        .build()
        .map_err(|e| ProbeError::Failed {
            url: url.to_owned(),
            reason: e.to_string(),
        })?;
    let parsed = reqwest::Url::parse(url).map_err(|e| ProbeError::InvalidUrl {
        url: url.to_owned(),
        reason: e.to_string(),
    })?;
    let resp = client
        .get(parsed)
        .send()
        .await
        .map_err(|e| classify(url, timeout, &e))?;
    let status = resp.status().as_u16();
    // Read the body so a server that dies mid-answer counts as a failure.
    resp.bytes().await.map_err(|e| classify(url, timeout, &e))?;
    if (200..300).contains(&status) {
        Ok(status)
    } else {
        Err(ProbeError::Status {
            url: url.to_owned(),
            status,
        })
    }
}

fn classify(url: &str, timeout: Duration, e: &reqwest::Error) -> ProbeError {
    let url = url.to_owned();
    if e.is_timeout() {
        return ProbeError::Timeout { url, timeout };
    }
    // reqwest wraps the socket error several levels deep; the io::Error kind is the reason.
    let mut source = e.source();
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<io::Error>() {
            if io.kind() == io::ErrorKind::ConnectionRefused {
                return ProbeError::Refused { url };
            }
            return ProbeError::Failed {
                url,
                reason: io.to_string(),
            };
        }
        source = s.source();
    }
    let reason = match e.source() {
        Some(s) => s.to_string(),
        None => e.to_string(),
    };
    ProbeError::Failed { url, reason }
}
