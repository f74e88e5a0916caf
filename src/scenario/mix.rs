//! `[[load.request]]` → [`MixEntry`]s: a weighted mix of methods, paths, headers and bodies,
//! all sent to the target's scheme, host and port; and the header checks `[load] headers`
//! shares with it.

use super::plan::*;
use super::raw;
use super::validate::{Check, R};
use std::collections::BTreeMap;
use toml::Spanned;

/// A mix's weights add up to at most this: the load keeps one slot per unit of weight.
pub const MAX_TOTAL_WEIGHT: u64 = 10_000;
/// A body is sent with every request of its entry and kept in memory once.
const MAX_BODY: u64 = 16 << 20;

impl Check<'_> {
    /// Header names and values as HTTP allows them.
    pub(super) fn headers(&self, key: &str, m: &Option<raw::Map>) -> R<BTreeMap<String, String>> {
        let mut headers = BTreeMap::new();
        for (name, value) in m.iter().flatten() {
            if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(self.err(value, key, format!("invalid header name \"{name}\"")));
            }
            if http::HeaderValue::from_str(value.get_ref()).is_err() {
                return Err(self.err(value, &format!("{key}.{name}"), "invalid header value"));
            }
            headers.insert(name.clone(), value.get_ref().clone());
        }
        Ok(headers)
    }

    pub(super) fn mix(
        &self,
        list: &Spanned<Vec<Spanned<raw::Request>>>,
        target: &http::Uri,
        target_at: &raw::Text,
    ) -> R<Vec<MixEntry>> {
        if list.get_ref().is_empty() {
            return Err(self.err(list, "load.request", "an empty mix sends nothing: list at least one [[load.request]], or leave it out to GET the target"));
        }
        if target.path_and_query().is_some_and(|p| p.as_str() != "/") {
            return Err(self.err(
                target_at,
                "load.target",
                "with [[load.request]] the target names only scheme, host and port: each entry has its own path",
            ));
        }
        let mut out: Vec<MixEntry> = Vec::new();
        let mut total = 0u64;
        for (i, e) in list.get_ref().iter().enumerate() {
            let key = format!("load.request[{i}]");
            let r = e.get_ref();
            let method = match &r.method {
                None => http::Method::GET,
                Some(m) => {
                    let text = m.get_ref().trim().to_ascii_uppercase();
                    http::Method::from_bytes(text.as_bytes())
                        .ok()
                        .filter(|_| !text.is_empty() && text != "CONNECT")
                        .ok_or_else(|| {
                            self.err(m, &format!("{key}.method"), format!("\"{}\" is not an HTTP method to load a service with (GET, POST, PUT, DELETE, ...)", m.get_ref()))
                        })?
                }
            };
            let path_at = self.required(e, &key, "path", &r.path)?;
            let path = path_at.get_ref().trim();
            if !path.starts_with('/') || path.parse::<http::uri::PathAndQuery>().is_err() {
                return Err(self.err(
                    path_at,
                    &format!("{key}.path"),
                    format!("\"{path}\" is not a path (write e.g. \"/orders?page=2\")"),
                ));
            }
            let body = match (&r.body, &r.body_file) {
                (Some(_), Some(f)) => {
                    return Err(self.err(
                        f,
                        &format!("{key}.body_file"),
                        "body and body_file exclude each other",
                    ));
                }
                (Some(b), None) => bytes::Bytes::from(b.get_ref().clone()),
                (None, Some(f)) => self.body_file(&key, f)?,
                (None, None) => bytes::Bytes::new(),
            };
            let weight = match &r.weight {
                Some(w) if *w.get_ref() == 0 => {
                    return Err(self.err(
                        w,
                        &format!("{key}.weight"),
                        "must be at least 1 (leave the entry out to send none)",
                    ));
                }
                Some(w) => *w.get_ref(),
                None => 1,
            };
            total += u64::from(weight);
            if total > MAX_TOTAL_WEIGHT {
                let at = r.weight.as_ref().map_or(e.span(), |w| w.span());
                return Err(self.err_span(
                    at,
                    &format!("{key}.weight"),
                    format!("the weights add up to more than {MAX_TOTAL_WEIGHT} (they are proportions: 3 and 1 send three GETs per POST)"),
                ));
            }
            let name = match &r.name {
                Some(n) if n.get_ref().trim().is_empty() => {
                    return Err(self.err(n, &format!("{key}.name"), "must not be empty"));
                }
                Some(n) => n.get_ref().trim().to_string(),
                None => format!("{method} {path}"),
            };
            if out.iter().any(|o| o.name == name) {
                let at = r.name.as_ref().map_or(e.span(), |n| n.span());
                return Err(self.err_span(
                    at,
                    &format!("{key}.name"),
                    format!("\"{name}\" names two entries: give each a distinct name"),
                ));
            }
            out.push(MixEntry {
                name,
                method,
                path: path.to_string(),
                headers: self.headers(&format!("{key}.headers"), &r.headers)?,
                body,
                weight,
            });
        }
        Ok(out)
    }

    fn body_file(&self, key: &str, f: &raw::Text) -> R<bytes::Bytes> {
        let path = super::compose::resolve(self.src.path, f.get_ref());
        let err = |why: String| {
            self.err(
                f,
                &format!("{key}.body_file"),
                format!(
                    "{}: {why} (the file is found relative to the scenario file)",
                    path.display()
                ),
            )
        };
        let len = std::fs::metadata(&path)
            .map_err(|e| err(e.to_string()))?
            .len();
        if len > MAX_BODY {
            return Err(err(format!(
                "{len} bytes, more than the {} MiB a body may have",
                MAX_BODY >> 20
            )));
        }
        std::fs::read(&path)
            .map(bytes::Bytes::from)
            .map_err(|e| err(e.to_string()))
    }
}
