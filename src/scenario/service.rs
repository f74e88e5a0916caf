//! The service under test: `[service]` and the Docker structures it shares with `update`
//! steps and the edge (`healthcheck`, `update_config` / `rollback_config`), with Docker's
//! defaults and name rules.

use super::error::hint;
use super::plan::*;
use super::raw;
use super::validate::{Check, R, SECOND};
use std::time::Duration;
use toml::Spanned;

impl Check<'_> {
    pub fn service(&self, s: &Spanned<raw::Service>) -> R<Service> {
        let r = s.get_ref();
        let name = match &r.name {
            Some(n) if !docker_name(n.get_ref()) => {
                return Err(self.err(
                    n,
                    "service.name",
                    format!("invalid name \"{}\" ({NAME_RULE})", n.get_ref()),
                ));
            }
            Some(n) => n.get_ref().clone(),
            None => "app".to_string(),
        };
        let image = self.image(
            "service.image",
            self.required(s, "service", "image", &r.image)?,
        )?;
        let port = match &r.port {
            Some(p) if *p.get_ref() == 0 => {
                return Err(self.err(p, "service.port", "must be between 1 and 65535"));
            }
            Some(p) => *p.get_ref(),
            None => 8080,
        };
        Ok(Service {
            name,
            image,
            replicas: match &r.replicas {
                Some(n) => self.replicas(n, "service.replicas")?,
                None => 1,
            },
            endpoint_mode: self.opt_choice(
                "service.endpoint_mode",
                &r.endpoint_mode,
                &[("vip", EndpointMode::Vip), ("dnsrr", EndpointMode::Dnsrr)],
            )?,
            port,
            stop_grace_period: r
                .stop_grace_period
                .as_ref()
                .map(|d| self.duration("service.stop_grace_period", d))
                .transpose()?,
            env: self.map("service.env", &r.env)?,
            labels: self.labels("service.labels", r.labels.as_ref())?,
            healthcheck: r
                .healthcheck
                .as_ref()
                .map(|h| self.healthcheck("service.healthcheck", h))
                .transpose()?,
            update: self.update_config("service.update_config", &r.update_config, false)?,
            rollback: self.update_config("service.rollback_config", &r.rollback_config, true)?,
        })
    }

    pub fn healthcheck(&self, key: &str, h: &Spanned<raw::Healthcheck>) -> R<Healthcheck> {
        // The engine refuses shorter ones ("Interval in Healthcheck cannot be less than 1ms"),
        // after the images were built.
        const DOCKER_MIN: Duration = Duration::from_millis(1);
        const DOCKER_MIN_WHY: &str = "Docker refuses shorter healthcheck durations";
        let r = h.get_ref();
        let test_key = format!("{key}.test");
        let test_raw = self.required(h, key, "test", &r.test)?;
        let test = match test_raw.get_ref() {
            raw::Test::Shell(cmd) => vec!["CMD-SHELL".to_string(), cmd.clone()],
            raw::Test::List(list) => list.clone(),
        };
        let bad = |m: String| Err(self.err(test_raw, &test_key, m));
        match test.first().map(String::as_str) {
            None => return bad("must not be empty (e.g. [\"CMD\", \"/rollcheck\", \"probe\", \"http://127.0.0.1:8080/healthz\"])".into()),
            Some("CMD") if test.len() < 2 => return bad("\"CMD\" needs the command and its arguments after it".into()),
            Some("CMD-SHELL") if test.len() != 2 => return bad("\"CMD-SHELL\" takes exactly one string: the shell command".into()),
            Some("NONE") if test.len() != 1 => return bad("\"NONE\" takes nothing after it".into()),
            Some("CMD" | "CMD-SHELL" | "NONE") => {}
            Some(other) => {
                return bad(format!("first element must be \"CMD\", \"CMD-SHELL\" or \"NONE\", not \"{other}\"{}", hint(other, &["CMD", "CMD-SHELL", "NONE"])));
            }
        }
        Ok(Healthcheck {
            test,
            interval: self.at_least(
                &format!("{key}.interval"),
                &r.interval,
                30 * SECOND,
                DOCKER_MIN,
                DOCKER_MIN_WHY,
            )?,
            timeout: self.at_least(
                &format!("{key}.timeout"),
                &r.timeout,
                30 * SECOND,
                DOCKER_MIN,
                DOCKER_MIN_WHY,
            )?,
            retries: r.retries.as_ref().map_or(3, |n| *n.get_ref()),
            start_period: self.opt_duration(
                &format!("{key}.start_period"),
                &r.start_period,
                Duration::ZERO,
            )?,
        })
    }

    /// `update_config` / `rollback_config`; a rollback cannot itself fail over to a rollback.
    pub fn update_config(
        &self,
        key: &str,
        u: &Option<Spanned<raw::UpdateConfig>>,
        rollback: bool,
    ) -> R<UpdateConfig> {
        let default = UpdateConfig::default();
        let Some(u) = u else { return Ok(default) };
        let r = u.get_ref();
        let fa_key = format!("{key}.failure_action");
        let failure_action = match &r.failure_action {
            Some(v) if rollback && v.get_ref() == "rollback" => {
                return Err(self.err(
                    v,
                    &fa_key,
                    "\"rollback\" is not valid for a rollback (expected one of: pause, continue)",
                ));
            }
            v => self.opt_choice(
                &fa_key,
                v,
                &[
                    ("pause", FailureAction::Pause),
                    ("continue", FailureAction::Continue),
                    ("rollback", FailureAction::Rollback),
                ],
            )?,
        };
        let max_failure_ratio = match &r.max_failure_ratio {
            Some(v) if !(0.0..=1.0).contains(v.get_ref()) => {
                return Err(self.err(
                    v,
                    &format!("{key}.max_failure_ratio"),
                    "must be between 0 and 1",
                ));
            }
            Some(v) => *v.get_ref(),
            None => default.max_failure_ratio,
        };
        Ok(UpdateConfig {
            parallelism: r
                .parallelism
                .as_ref()
                .map_or(default.parallelism, |p| *p.get_ref()),
            delay: self.opt_duration(&format!("{key}.delay"), &r.delay, default.delay)?,
            order: self.opt_choice(
                &format!("{key}.order"),
                &r.order,
                &[
                    ("stop-first", UpdateOrder::StopFirst),
                    ("start-first", UpdateOrder::StartFirst),
                ],
            )?,
            failure_action,
            monitor: self.opt_duration(&format!("{key}.monitor"), &r.monitor, default.monitor)?,
            max_failure_ratio,
        })
    }
}

pub(super) const NAME_RULE: &str =
    "start with a letter or digit, then letters, digits, \"_\", \".\" or \"-\"; at most 63";

/// Docker's service name rule, `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, at most 63 characters.
pub(super) fn docker_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 63
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}
