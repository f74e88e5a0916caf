//! What must never reach a report, and what is shown in its place. A scenario's secrets come
//! from the environment (`Authorization = "Bearer ${TOKEN}"`), from a URL's userinfo, and
//! from `[service] env` values. Every value `${VAR}` expanded to is shown as `${VAR}`; a URL's
//! password as `***`; a service env value as `<redacted>` unless its name is one the scenario
//! shows (`show_env`) or one of the test service's own settings
//! ([`crate::testsvc::env_names`]). Labels, the target, step
//! results, problems and the scenario copy in the report directory all pass through here.

/// Values shorter than this are left alone: a tag `2` or a port `80` is not a secret, and
/// replacing every "2" in a label would garble it.
const MIN_SECRET_LEN: usize = 4;

pub const REDACTED: &str = "<redacted>";

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Secrets {
    /// (value, shown instead), longest value first.
    replacements: Vec<(String, String)>,
}

impl Secrets {
    pub fn add(&mut self, value: &str, shown: &str) {
        if value.chars().count() < MIN_SECRET_LEN
            || value == shown
            || self.replacements.iter().any(|(v, _)| v == value)
        {
            return;
        }
        self.replacements
            .push((value.to_string(), shown.to_string()));
        // Longest first: a value that contains another is replaced whole.
        self.replacements
            .sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(&b.0)));
    }

    /// A URL's `user:password@`, shown as `user:***@`.
    pub fn add_userinfo(&mut self, uri: &http::Uri) {
        let Some(authority) = uri.authority() else {
            return;
        };
        if let Some((userinfo, _)) = authority.as_str().rsplit_once('@')
            && let Some((user, password)) = userinfo.split_once(':')
            && !password.is_empty()
        {
            self.add(&format!("{userinfo}@"), &format!("{user}:***@"));
            self.add(password, "***");
        }
    }

    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (value, shown) in &self.replacements {
            if out.contains(value.as_str()) {
                out = out.replace(value.as_str(), shown);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_userinfo_and_short_values() {
        let mut s = Secrets::default();
        s.add("s3cr3t-token", "${TOKEN}");
        s.add("2", "${TAG}");
        s.add_userinfo(&"http://bob:pa55word@127.0.0.1:8080/".parse().unwrap());
        assert_eq!(
            s.redact("exec curl -H 'Bearer s3cr3t-token' http://bob:pa55word@127.0.0.1:8080/ v2"),
            "exec curl -H 'Bearer ${TOKEN}' http://bob:***@127.0.0.1:8080/ v2"
        );
        assert_eq!(s.redact("stderr: pa55word"), "stderr: ***");
    }
}
