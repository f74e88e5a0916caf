//! The scenario text as a spanned TOML tree: parsed once, `${VAR}` expanded in every string
//! value, then deserialized into the raw model. The tree also answers "which key is at this
//! byte offset?", so serde's errors can name `step 2` or `service.update_config`.

use super::error::{ScenarioError, Source, Span, reword};
use super::interpolate::expand;
use serde::Deserialize;
use std::borrow::Cow;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

pub(super) struct Document<'i> {
    root: Spanned<DeTable<'i>>,
}

type Env<'e> = &'e dyn Fn(&str) -> Option<String>;

impl<'i> Document<'i> {
    pub fn parse(src: &Source<'i>, env: Env<'_>) -> Result<Self, ScenarioError> {
        let mut root =
            DeTable::parse(src.text).map_err(|e| src.error(e.span(), reword(e.message())))?;
        let mut errors = Vec::new();
        for (_, value) in root.get_mut().iter_mut() {
            expand_value(value, env, &mut errors);
        }
        // Map order is not file order: report the first error in the file.
        if let Some((span, message)) = errors.into_iter().min_by_key(|(s, _)| s.start) {
            let path = key_path(root.get_ref(), span.start);
            return Err(src.error(Some(span), with_context(&format_path(&path), &message)));
        }
        Ok(Document { root })
    }

    /// Deserializes the raw model, turning serde's errors into positioned, reworded ones.
    pub fn deserialize<T: Deserialize<'i>>(self, src: &Source<'_>) -> Result<T, ScenarioError> {
        let tree = self.root.get_ref().clone();
        T::deserialize(toml::de::Deserializer::from(self.root)).map_err(|e| {
            let message = reword(e.message());
            let mut path = e
                .span()
                .map(|s| key_path(&tree, s.start))
                .unwrap_or_default();
            // "unknown field "x"" already names the key: give the table it is in.
            if message.starts_with("unknown field") || message.starts_with("duplicate field") {
                path.pop();
            }
            src.error(e.span(), with_context(&format_path(&path), &message))
        })
    }
}

fn expand_value(value: &mut Spanned<DeValue<'_>>, env: Env<'_>, errors: &mut Vec<(Span, String)>) {
    let span = value.span();
    match value.get_mut() {
        DeValue::String(s) if s.contains('$') => match expand(s, env) {
            Ok(new) => {
                if new != *s {
                    *s = Cow::Owned(new);
                }
            }
            Err(message) => errors.push((span, message)),
        },
        DeValue::Table(table) => {
            for (_, v) in table.iter_mut() {
                expand_value(v, env, errors);
            }
        }
        DeValue::Array(array) => {
            for v in array.iter_mut() {
                expand_value(v, env, errors);
            }
        }
        _ => {}
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Key(String),
    Index(usize),
}

/// The key path of the innermost key or value holding `offset`.
fn key_path(table: &DeTable<'_>, offset: usize) -> Vec<Seg> {
    find_in_table(table, offset).unwrap_or_default()
}

fn find_in_table(table: &DeTable<'_>, offset: usize) -> Option<Vec<Seg>> {
    for (key, value) in table.iter() {
        let here = || Seg::Key(key.get_ref().to_string());
        if key.span().contains(&offset) {
            return Some(vec![here()]);
        }
        if let Some(mut path) = find_in_value(value, offset) {
            path.insert(0, here());
            return Some(path);
        }
    }
    None
}

fn find_in_value(value: &Spanned<DeValue<'_>>, offset: usize) -> Option<Vec<Seg>> {
    match value.get_ref() {
        DeValue::Table(table) => {
            if let Some(path) = find_in_table(table, offset) {
                return Some(path);
            }
        }
        DeValue::Array(array) => {
            for (i, v) in array.iter().enumerate() {
                if let Some(mut path) = find_in_value(v, offset) {
                    path.insert(0, Seg::Index(i));
                    return Some(path);
                }
            }
        }
        _ => {}
    }
    value.span().contains(&offset).then(Vec::new)
}

/// `service.update_config`, `healthcheck.test[0]`, and `step 2: timeout` for steps.
fn format_path(path: &[Seg]) -> String {
    let (mut out, rest) = match path {
        [Seg::Key(k), Seg::Index(i), rest @ ..] if k == "step" => {
            let head = format!("step {}", i + 1);
            if rest.is_empty() {
                return head;
            }
            (head + ": ", rest)
        }
        _ => (String::new(), path),
    };
    for (n, seg) in rest.iter().enumerate() {
        match seg {
            Seg::Key(k) if n == 0 => out.push_str(k),
            Seg::Key(k) => {
                out.push('.');
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

pub(super) fn with_context(context: &str, message: &str) -> String {
    if context.is_empty() {
        message.to_string()
    } else {
        format!("{context}: {message}")
    }
}
