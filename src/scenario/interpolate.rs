//! `${VAR}` and `${VAR:-default}` in scenario strings, so CI can pass image tags and ports.
//! `$$` is a literal `$`; a `$` followed by anything else is left as it is (shell commands in
//! `exec` steps keep their own `$1`, `$HOME`).

/// Expands one string. The error is a message without position; the caller adds it.
pub(super) fn expand(s: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body.find('}').ok_or_else(|| {
                format!("unterminated \"${{\" in {s:?} (write \"$$\" for a literal \"$\")")
            })?;
            let expr = &body[..end];
            let (name, default) = match expr.split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (expr, None),
            };
            if !valid_name(name) {
                return Err(format!(
                    "invalid variable name {name:?} in \"${{{expr}}}\" (letters, digits and _, not starting with a digit)"
                ));
            }
            match (
                env(name).filter(|v| !v.is_empty() || default.is_none()),
                default,
            ) {
                (Some(value), _) => out.push_str(&value),
                (None, Some(default)) => out.push_str(default),
                (None, None) => {
                    return Err(format!(
                        "environment variable {name} is not set (set it, or write \"${{{name}:-default}}\")"
                    ));
                }
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
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
    fn expands_table() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("plain", Ok("plain")),
            ("app:${TAG}", Ok("app:2")),
            ("${TAG}${TAG}", Ok("22")),
            ("${UNSET:-1}", Ok("1")),
            ("${TAG:-1}", Ok("2")),
            ("${EMPTY:-d}", Ok("d")),
            ("${EMPTY}", Ok("")),
            ("${UNSET:-}", Ok("")),
            ("cost $$5", Ok("cost $5")),
            ("$$${TAG}", Ok("$2")),
            ("echo $1 $HOME", Ok("echo $1 $HOME")),
            ("end $", Ok("end $")),
            (
                "${UNSET}",
                Err(
                    "environment variable UNSET is not set (set it, or write \"${UNSET:-default}\")",
                ),
            ),
            (
                "a ${TAG",
                Err("unterminated \"${\" in \"a ${TAG\" (write \"$$\" for a literal \"$\")"),
            ),
            (
                "${1X}",
                Err(
                    "invalid variable name \"1X\" in \"${1X}\" (letters, digits and _, not starting with a digit)",
                ),
            ),
        ];
        for (input, want) in cases {
            let got = expand(input, &env);
            let want = want.map(str::to_string).map_err(str::to_string);
            assert_eq!(got, want, "input {input:?}");
        }
    }
}
