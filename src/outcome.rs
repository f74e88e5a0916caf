//! The class every request ends in. Shared by the load generator (which classifies), the
//! history (which records), the analysis (which counts) and the scenario (which may redefine
//! what counts as "dropped").

use serde::{Deserialize, Serialize};
use std::fmt;

/// Exactly one per request; see DESIGN.md "Outcomes of one request".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// 2xx or 3xx.
    Ok,
    Http5xx,
    Http4xx,
    /// Connect refused or unreachable.
    Refused,
    /// The TCP handshake did not finish within the connect timeout.
    ConnectTimeout,
    /// The connection was reset or closed before a full response: dropped in flight.
    Reset,
    /// No full response within the timeout after the request was written.
    Timeout,
    /// Open model only: the harness could not send it within its slot (its own limit).
    Late,
}

impl Outcome {
    pub const ALL: [Outcome; 8] = [
        Outcome::Ok,
        Outcome::Http5xx,
        Outcome::Http4xx,
        Outcome::Refused,
        Outcome::ConnectTimeout,
        Outcome::Reset,
        Outcome::Timeout,
        Outcome::Late,
    ];

    /// What counts as dropped unless the scenario says otherwise.
    pub const DEFAULT_DROPPED: [Outcome; 5] = [
        Outcome::Refused,
        Outcome::Reset,
        Outcome::Timeout,
        Outcome::ConnectTimeout,
        Outcome::Http5xx,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Http5xx => "http_5xx",
            Outcome::Http4xx => "http_4xx",
            Outcome::Refused => "refused",
            Outcome::ConnectTimeout => "connect_timeout",
            Outcome::Reset => "reset",
            Outcome::Timeout => "timeout",
            Outcome::Late => "late",
        }
    }

    pub fn parse(s: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == s)
    }

    /// Classifies a received HTTP status.
    pub fn from_status(status: u16) -> Outcome {
        match status {
            200..=399 => Outcome::Ok,
            400..=499 => Outcome::Http4xx,
            _ => Outcome::Http5xx,
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
