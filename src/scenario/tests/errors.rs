//! Every malformed scenario the validation refuses, with its exact message: file:line:col,
//! the key path, and what to do. The corpus is tests/malformed/ (one directory per class of
//! defect, one file per case, its exact error in its last line as `# error: FILE:…`); the
//! binary's `check` and `run` get the same files in tests/run.rs.

use super::*;

pub(super) const LOAD: &str = "[load]\ntarget = \"http://127.0.0.1:8080/\"\n";

/// (file as shown in errors, text, exact error).
fn corpus() -> Vec<(String, String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<_> = std::fs::read_dir(root.join("tests/malformed"))
        .unwrap()
        .flat_map(|class| std::fs::read_dir(class.unwrap().path()).unwrap())
        .map(|f| f.unwrap().path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let shown = path.strip_prefix(root).unwrap().display().to_string();
            let text = std::fs::read_to_string(&path).unwrap();
            let want = text
                .lines()
                .rev()
                .find_map(|l| l.strip_prefix("# error: "))
                .unwrap_or_else(|| panic!("{shown}: no `# error: ` line"))
                .replace("FILE", &shown);
            (shown, text, want)
        })
        .collect()
}

#[test]
fn errors_name_position_key_and_fix() {
    let cases = corpus();
    assert!(cases.len() >= 80, "{} cases", cases.len());
    let mut failures = Vec::new();
    for (file, text, want) in cases {
        match parse(&text, Path::new(&file), &env).map_err(|e| e.to_string()) {
            Ok(_) => failures.push(format!("{file}: parsed, expected error\n  want: {want}")),
            Err(got) if got != want => {
                failures.push(format!("{file}:\n  got:  {got}\n  want: {want}"))
            }
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
