//! `[load]` and `[gate]` → [`Load`] and [`Gate`]: the model and its rate, the timeouts, the
//! headers, the interval, and the thresholds with their dropped classes.

use super::error::hint;
use super::plan::*;
use super::raw;
use super::validate::{Check, MAX_DURATION, MAX_RATE, MIN_INTERVAL, R, SECOND};
use crate::outcome::Outcome;
use std::time::Duration;

/// The open model's bound on requests in flight (one connection each).
pub const MAX_IN_FLIGHT: usize = 1_000_000;
/// The most load generators: one per node of the largest cluster lab.
pub const MAX_GENERATORS: u32 = 64;
use toml::Spanned;

impl Check<'_> {
    pub(super) fn load(&self, l: &Spanned<raw::Load>) -> R<Load> {
        let r = l.get_ref();
        let target = self.web_url(
            "load.target",
            self.required(l, "load", "target", &r.target)?,
        )?;
        let open = self.opt_choice("load.model", &r.model, &[("closed", false), ("open", true)])?;
        let model = if open {
            if let Some(c) = &r.concurrency {
                return Err(self.err(c, "load.concurrency", "only valid with model = \"closed\" (the open model sends `rate` requests per second)"));
            }
            if let Some(p) = &r.error_pause {
                return Err(self.err(p, "load.error_pause", "only valid with model = \"closed\" (the open model keeps its schedule whatever the answers)"));
            }
            let rate = r.rate.as_ref().ok_or_else(|| {
                self.err(
                    l,
                    "load",
                    "missing required key \"rate\" (requests per second, for model = \"open\")",
                )
            })?;
            if !rate.get_ref().is_finite() {
                return Err(self.err(
                    rate,
                    "load.rate",
                    "must be a number of requests per second, not nan or inf",
                ));
            }
            if *rate.get_ref() <= 0.0 {
                return Err(self.err(rate, "load.rate", "must be greater than 0"));
            }
            // A period longer than the longest run is no schedule at all (and overflowed the
            // worker's Duration arithmetic).
            if *rate.get_ref() < 1.0 / MAX_DURATION.as_secs_f64() {
                return Err(self.err(rate, "load.rate", "must be at least one request per 24h"));
            }
            if *rate.get_ref() > MAX_RATE {
                return Err(self.err(
                    rate,
                    "load.rate",
                    format!("must be at most {MAX_RATE} requests per second (one generator reaches about 27,000 here)"),
                ));
            }
            let max_in_flight = match &r.max_in_flight {
                Some(m) if *m.get_ref() == 0 => {
                    return Err(self.err(m, "load.max_in_flight", "must be at least 1"));
                }
                // Each request in flight holds a connection (a file descriptor).
                Some(m) if *m.get_ref() > MAX_IN_FLIGHT => {
                    return Err(self.err(
                        m,
                        "load.max_in_flight",
                        format!("must be at most {MAX_IN_FLIGHT} (each request in flight holds a connection)"),
                    ));
                }
                Some(m) => *m.get_ref(),
                None => 1000,
            };
            LoadModel::Open {
                rate: *rate.get_ref(),
                max_in_flight,
            }
        } else {
            if let Some((name, span)) = [
                ("rate", r.rate.as_ref().map(|v| v.span())),
                ("max_in_flight", r.max_in_flight.as_ref().map(|v| v.span())),
            ]
            .into_iter()
            .find_map(|(n, s)| s.map(|s| (n, s)))
            {
                return Err(self.err_span(
                    span,
                    &format!("load.{name}"),
                    "only valid with model = \"open\"",
                ));
            }
            let concurrency = match &r.concurrency {
                Some(c) if *c.get_ref() == 0 => {
                    return Err(self.err(c, "load.concurrency", "must be at least 1"));
                }
                Some(c) => *c.get_ref(),
                None => 10,
            };
            LoadModel::Closed {
                concurrency,
                error_pause: self.opt_duration(
                    "load.error_pause",
                    &r.error_pause,
                    Duration::from_millis(100),
                )?,
            }
        };
        let timeout = self.positive("load.timeout", &r.timeout, 5 * SECOND)?;
        let headers = self.headers("load.headers", &r.headers)?;
        let mix = match &r.request {
            Some(list) => {
                let at = self.required(l, "load", "target", &r.target)?;
                self.mix(list, &target, at)?
            }
            None => Vec::new(),
        };
        let duration = match &r.duration {
            Some(_) => Some(self.positive("load.duration", &r.duration, Duration::ZERO)?),
            None => None,
        };
        let interval = self.at_least(
            "load.interval",
            &r.interval,
            SECOND,
            MIN_INTERVAL,
            "each interval keeps a histogram",
        )?;
        if let (Some(d), Some(i)) = (duration, &r.interval)
            && interval > d
        {
            return Err(self.err(
                i,
                "load.interval",
                format!(
                    "longer than load.duration ({})",
                    humantime::format_duration(d)
                ),
            ));
        }
        if let (Some(d), LoadModel::Open { rate, .. }, Some(at)) = (duration, model, &r.rate)
            && rate * d.as_secs_f64() < 1.0
        {
            return Err(self.err(
                at,
                "load.rate",
                format!(
                    "{rate}/s sends no request in load.duration = {}",
                    humantime::format_duration(d)
                ),
            ));
        }
        let ready = match &r.ready {
            Some(ready) => Some(self.ready(ready, &target)?),
            None => None,
        };
        let https = target.scheme() == Some(&http::uri::Scheme::HTTPS)
            || ready
                .as_ref()
                .is_some_and(|r| r.url.scheme() == Some(&http::uri::Scheme::HTTPS));
        let tls = match &r.tls {
            Some(t) if !https => {
                return Err(self.err(
                    t,
                    "load.tls",
                    "only for an https:// target (load.target is http://)",
                ));
            }
            Some(t) => self.tls(t)?,
            None => crate::tls::Trust::default(),
        };
        let connect_to = r
            .connect_to
            .as_ref()
            .map(|c| self.connect_to(c))
            .transpose()?;
        let keepalive = r.keepalive.as_ref().is_some_and(|k| *k.get_ref());
        let preconnect = match &r.preconnect {
            None => 0,
            Some(p) if !keepalive => {
                return Err(self.err(
                    p,
                    "load.preconnect",
                    "opens kept-alive connections for the requests to reuse: set keepalive = true",
                ));
            }
            Some(p) => {
                // More connections than requests can use at once would only sit idle.
                let (most, what) = match model {
                    LoadModel::Open { max_in_flight, .. } => (max_in_flight, "load.max_in_flight"),
                    LoadModel::Closed { concurrency, .. } => (concurrency, "load.concurrency"),
                };
                if *p.get_ref() > most {
                    return Err(self.err(
                        p,
                        "load.preconnect",
                        format!("must be at most {what} ({most}): each request in flight uses one connection"),
                    ));
                }
                *p.get_ref()
            }
        };
        let generators = match &r.generators {
            None => 1,
            Some(g) if *g.get_ref() == 0 => {
                return Err(self.err(g, "load.generators", "must be at least 1"));
            }
            Some(g) if *g.get_ref() > MAX_GENERATORS => {
                return Err(self.err(
                    g,
                    "load.generators",
                    format!("must be at most {MAX_GENERATORS} (one generator per node)"),
                ));
            }
            Some(g) => *g.get_ref(),
        };
        let placement = match &r.placement {
            None => Vec::new(),
            Some(list) => list
                .get_ref()
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    crate::agent::placement::Constraint::parse(c.get_ref())
                        .map(|_| c.get_ref().trim().to_string())
                        .map_err(|e| self.err(c, &format!("load.placement[{i}]"), e))
                })
                .collect::<R<Vec<_>>>()?,
        };
        Ok(Load {
            ready,
            generators,
            placement,
            target,
            tls,
            connect_to,
            mix,
            model,
            keepalive,
            preconnect,
            timeout,
            connect_timeout: self.positive("load.connect_timeout", &r.connect_timeout, timeout)?,
            duration,
            settle: self.opt_duration("load.settle", &r.settle, 5 * SECOND)?,
            interval,
            headers,
        })
    }

    /// `tls = { ca = "ca.pem" }` (relative to the scenario) or `{ insecure = true }`.
    fn tls(&self, t: &Spanned<raw::Tls>) -> R<crate::tls::Trust> {
        let r = t.get_ref();
        let insecure = r.insecure.as_ref().is_some_and(|i| *i.get_ref());
        let ca = match &r.ca {
            Some(ca) if insecure => {
                return Err(self.err(
                    ca,
                    "load.tls.ca",
                    "insecure = true accepts any certificate: leave out ca, or insecure",
                ));
            }
            Some(ca) => {
                let path = super::compose::resolve(self.src.path, ca.get_ref());
                crate::tls::read_ca(&path).map_err(|e| {
                    self.err(
                        ca,
                        "load.tls.ca",
                        format!("{e} (the file is found relative to the scenario file)"),
                    )
                })?
            }
            None => Vec::new(),
        };
        Ok(crate::tls::Trust { ca, insecure })
    }

    /// `"127.0.0.1:8443"`: where the target's connections go; a host (or address) and a port.
    fn connect_to(&self, c: &raw::Text) -> R<String> {
        let text = c.get_ref().trim();
        let bad = |why: &str| {
            self.err(
                c,
                "load.connect_to",
                format!("\"{text}\": {why} (write host:port, e.g. \"127.0.0.1:8443\")"),
            )
        };
        let authority: http::uri::Authority = text.parse().map_err(|_| bad("not a host:port"))?;
        if authority.as_str().contains('@') {
            return Err(bad("not a host:port"));
        }
        match authority.port_u16() {
            None => Err(bad("needs a port")),
            Some(0) => Err(bad("port must be between 1 and 65535")),
            Some(_) if authority.host().is_empty() => Err(bad("needs a host")),
            Some(_) => Ok(authority.as_str().to_string()),
        }
    }

    fn ready(&self, ready: &Spanned<raw::Ready>, target: &http::Uri) -> R<Ready> {
        let r = ready.get_ref();
        let url = match &r.url {
            Some(u) => self.web_url("load.ready.url", u)?,
            None => target.clone(),
        };
        let status = match &r.status {
            Some(s) if !(100..=599).contains(s.get_ref()) => {
                return Err(self.err(s, "load.ready.status", "must be an HTTP status (100-599)"));
            }
            Some(s) => ReadyStatus::Exactly(*s.get_ref()),
            None => ReadyStatus::Below500,
        };
        Ok(Ready {
            url,
            status,
            stable: self.opt_duration("load.ready.stable", &r.stable, SECOND)?,
            timeout: self.positive("load.ready.timeout", &r.timeout, 60 * SECOND)?,
        })
    }

    pub(super) fn gate(&self, g: &Spanned<raw::Gate>) -> R<Gate> {
        let r = g.get_ref();
        let mut thresholds = Vec::new();
        if let Some(n) = &r.max_dropped {
            thresholds.push(Threshold::MaxDropped(*n.get_ref()));
        }
        if let Some(rate) = &r.max_error_rate {
            if !(0.0..=1.0).contains(rate.get_ref()) {
                return Err(self.err(
                    rate,
                    "gate.max_error_rate",
                    "must be between 0 and 1 (a fraction: 0.01 = 1%)",
                ));
            }
            thresholds.push(Threshold::MaxErrorRate(*rate.get_ref()));
        }
        if let Some(d) = &r.max_p99 {
            thresholds.push(Threshold::MaxP99(self.duration("gate.max_p99", d)?));
        }
        if let Some(d) = &r.max_p99_during {
            thresholds.push(Threshold::MaxP99During(
                self.duration("gate.max_p99_during", d)?,
            ));
        }
        if let Some(n) = &r.min_requests {
            thresholds.push(Threshold::MinRequests(*n.get_ref()));
        }
        if let Some(n) = &r.max_truth_mismatch {
            thresholds.push(Threshold::MaxTruthMismatch(*n.get_ref()));
        }
        if r.max_converge.is_some() {
            thresholds.push(Threshold::MaxConverge(self.positive(
                "gate.max_converge",
                &r.max_converge,
                SECOND,
            )?));
        }
        // rollcheck exists to gate on dropped requests: with no threshold at all, that is the gate.
        if thresholds.is_empty() {
            thresholds.push(Threshold::MaxDropped(0));
        }
        let dropped = match &r.dropped {
            None => Outcome::DEFAULT_DROPPED.to_vec(),
            Some(list) if list.get_ref().is_empty() => {
                return Err(self.err(list, "gate.dropped", "must name at least one outcome"));
            }
            Some(list) => {
                let names: Vec<&str> = Outcome::ALL.iter().map(|o| o.as_str()).collect();
                let mut out = Vec::new();
                for name in list.get_ref() {
                    let o = Outcome::parse(name.get_ref()).ok_or_else(|| {
                        self.err(
                            name,
                            "gate.dropped",
                            format!(
                                "unknown outcome \"{}\"{}",
                                name.get_ref(),
                                hint(name.get_ref(), &names)
                            ),
                        )
                    })?;
                    if !out.contains(&o) {
                        out.push(o);
                    }
                }
                out
            }
        };
        Ok(Gate {
            thresholds,
            dropped,
        })
    }
}
