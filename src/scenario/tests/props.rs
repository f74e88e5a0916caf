//! Property test: no scenario text makes validation panic. Documents are the shipped
//! scenarios and mutations of them — a value replaced by a wrong type or an extreme number,
//! the text cut short, random bytes inserted, deep nesting, a line repeated — and each must
//! give a plan or an error, never a panic (`check` exits 0 or 64). Bounded: 256 cases a run.

use super::*;
use proptest::prelude::*;

const SHIPPED: [&str; 6] = [
    include_str!("../../../scenarios/rolling.toml"),
    include_str!("../../../scenarios/external.toml"),
    include_str!("../../../scenarios/node-shutdown.toml"),
    include_str!("../../../scenarios/healthcheck-spikes.toml"),
    include_str!("../../../scenarios/manager-loss-update.toml"),
    include_str!("../../../scenarios/catalogue/keepalive-l4-bad.toml"),
];

/// Values that have broken or could break validation: extremes, wrong types, odd strings.
const VALUES: [&str; 24] = [
    "0",
    "-1",
    "18446744073709551616",
    "1e308",
    "-1e308",
    "nan",
    "inf",
    "1e-300",
    "\"99999999999999999999s\"",
    "\"18446744073709551615s\"",
    "\"1ns\"",
    "\"0s\"",
    "\"\"",
    "\" \"",
    "true",
    "[1, 2]",
    "{ a = 1 }",
    "[[]]",
    "\"${UNSET}\"",
    "\"${\"",
    "\"\\u0000\"",
    "\"ü🦀\"",
    "\"http://[::1\"",
    "1979-05-27T07:32:00Z",
];

fn mutate(base: &str, kind: u8, at: usize, value: usize, bytes: &[u8], depth: usize) -> String {
    let lines: Vec<&str> = base.lines().collect();
    match kind % 6 {
        // A value replaced.
        0 => {
            let assigns: Vec<usize> = (0..lines.len())
                .filter(|&i| lines[i].contains(" = ") && !lines[i].trim_start().starts_with('#'))
                .collect();
            let Some(&i) = assigns.get(at % assigns.len().max(1)) else {
                return base.to_string();
            };
            let key = lines[i].split(" = ").next().unwrap_or("x");
            let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
            out[i] = format!("{key} = {}", VALUES[value % VALUES.len()]);
            out.join("\n")
        }
        // Cut short, on a char boundary.
        1 => {
            let mut cut = at % (base.len() + 1);
            while !base.is_char_boundary(cut) {
                cut -= 1;
            }
            base[..cut].to_string()
        }
        // Random bytes inserted (as text: lossy, so invalid UTF-8 becomes U+FFFD).
        2 => {
            let mut cut = at % (base.len() + 1);
            while !base.is_char_boundary(cut) {
                cut -= 1;
            }
            format!(
                "{}{}{}",
                &base[..cut],
                String::from_utf8_lossy(bytes),
                &base[cut..]
            )
        }
        // Deep nesting.
        3 => format!("{base}\nx = {}{}\n", "[".repeat(depth), "]".repeat(depth)),
        4 => format!(
            "{base}\n[gate]\nmax_dropped = {}\n",
            VALUES[value % VALUES.len()]
        ),
        // A line repeated (duplicate keys, a second table).
        _ => {
            let i = at % lines.len().max(1);
            let mut out: Vec<&str> = lines.clone();
            if let Some(l) = lines.get(i) {
                out.insert(i, l);
            }
            out.join("\n")
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn no_scenario_text_panics_validation(
        base in 0..SHIPPED.len(),
        kind in any::<u8>(),
        at in any::<usize>(),
        value in any::<usize>(),
        bytes in proptest::collection::vec(any::<u8>(), 0..16),
        depth in 1usize..300,
    ) {
        let text = mutate(SHIPPED[base], kind, at, value, &bytes, depth);
        // Every ${VAR} is set, except UNSET: the mutations are what is tested.
        let env = |name: &str| (name != "UNSET").then(|| "1s".to_string());
        if let Ok(plan) = parse(&text, Path::new(PATH), &env) {
            let _ = lint(&plan);
        }
    }
}
