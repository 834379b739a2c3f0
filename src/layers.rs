//! The layer order, written once, and the check that keeps it true (the
//! house style: "the layering is only as true as its check"). A module may
//! name (`crate::<module>…`, `use crate::{<module>, …}`) only modules of the
//! layers below its own: not its own layer's, not one above. Every
//! top-level module of `src/` must have its place here; `lib.rs` (the root,
//! which declares them) and this file are not checked. Comment lines are not code and are
//! skipped. Run by `cargo test` (`cargo test --lib layers`).
//!
//! The same walk over `src/` checks that no status is written in SQL by
//! hand (#23): a status is bound as the enum it is, or, where a partial
//! index needs it in the text, written from the enum (`db::PgEnum`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Top layer first. Within one layer, modules do not name each other.
pub const LAYERS: &[&[&str]] = &[
    // The binary and its commands.
    &["main", "cli"],
    // Building the application; operator commands.
    &["startup", "operations"],
    // The HTTP contract, and the job registry (the one place naming every job kind).
    &["http", "job_registry"],
    // Domain capabilities, the ones that use the most first.
    &["linkshare", "revocation"],
    &["sharing"],
    &["receiving"],
    &["directory"],
    &["notify", "orgs"],
    &["context"],
    &["content", "custody"],
    &["evidence"],
    &["access"],
    &["collaboration"],
    &["policy"],
    &["cases"],
    // Infrastructure: it names no domain type.
    &["jobs", "keys", "telemetry", "limits", "linktoken"],
    &["db"],
    &["idempotency", "config"],
    &[
        "amqp",
        "mail",
        "publishers",
        "audit",
        "templating",
        "shutdown",
        "principal",
        "error",
    ],
];

/// The top-level module a file of `src/` belongs to (`None` for `lib.rs`).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    // The root, which declares the modules, and this check (its test text
    // names made-up modules) are no layer.
    if first == "lib.rs" || first == "layers.rs" {
        return None;
    }
    Some(first.trim_end_matches(".rs").to_string())
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The top-level modules a file names, with the line of each mention:
/// `crate::a::…` names `a`; `crate::{a::x, b}` names `a` and `b` (a group
/// may span lines). Comment lines are blanked first.
pub fn references(text: &str) -> Vec<(usize, String)> {
    let code: String = text
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("//") {
                ""
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let bytes: Vec<char> = code.chars().collect();
    let line_at = |i: usize| bytes[..i].iter().filter(|c| **c == '\n').count() + 1;
    let mut out = Vec::new();
    let pattern: Vec<char> = "crate::".chars().collect();
    let mut i = 0;
    while i + pattern.len() <= bytes.len() {
        if bytes[i..i + pattern.len()] != pattern[..] || (i > 0 && is_ident(bytes[i - 1])) {
            i += 1;
            continue;
        }
        let line = line_at(i);
        let mut j = i + pattern.len();
        if bytes.get(j) == Some(&'{') {
            // The first name of each comma-separated path at depth 1.
            let mut depth = 0;
            let mut expect_name = true;
            while j < bytes.len() {
                let c = bytes[j];
                match c {
                    '{' => {
                        depth += 1;
                        if depth == 1 {
                            expect_name = true;
                        }
                    }
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    ',' if depth == 1 => expect_name = true,
                    c if depth == 1 && expect_name && is_ident(c) => {
                        let start = j;
                        while j < bytes.len() && is_ident(bytes[j]) {
                            j += 1;
                        }
                        out.push((line_at(start), bytes[start..j].iter().collect()));
                        expect_name = false;
                        continue;
                    }
                    _ => {}
                }
                j += 1;
            }
        } else {
            let start = j;
            while j < bytes.len() && is_ident(bytes[j]) {
                j += 1;
            }
            if j > start {
                out.push((line, bytes[start..j].iter().collect()));
            }
        }
        i = j.max(i + 1);
    }
    out
}

/// Every violation of the order in `src/`, one line each.
pub fn violations(src: &Path) -> Vec<String> {
    let layer: HashMap<&str, usize> = LAYERS
        .iter()
        .enumerate()
        .flat_map(|(i, l)| l.iter().map(move |m| (*m, i)))
        .collect();
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let mut out = Vec::new();
    let mut present = std::collections::BTreeSet::new();
    for file in &files {
        let Some(module) = module_of(src, file) else {
            continue;
        };
        let shown = file
            .strip_prefix(src.parent().unwrap_or(src))
            .unwrap_or(file);
        let Some(&own) = layer.get(module.as_str()) else {
            out.push(format!(
                "{}: module `{module}` is missing from the layer order (src/layers.rs)",
                shown.display()
            ));
            continue;
        };
        present.insert(module.clone());
        let text = std::fs::read_to_string(file).expect("a source file is readable");
        for (line, target) in references(&text) {
            if target == module {
                continue;
            }
            match layer.get(target.as_str()) {
                None => out.push(format!(
                    "{}:{line}: `{module}` names `crate::{target}`, which is not in the layer order",
                    shown.display()
                )),
                Some(&theirs) if theirs < own => out.push(format!(
                    "{}:{line}: `{module}` (layer {own}) imports `{target}` (layer {theirs}), a higher layer",
                    shown.display()
                )),
                Some(&theirs) if theirs == own => out.push(format!(
                    "{}:{line}: `{module}` imports `{target}`, of its own layer {own}",
                    shown.display()
                )),
                Some(_) => {}
            }
        }
    }
    for m in layer.keys() {
        if !present.contains(*m) {
            out.push(format!(
                "src/layers.rs: `{m}` is in the layer order but not a module of src/"
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependencies_point_down_only() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let found = violations(&src);
        assert!(
            found.is_empty(),
            "{} import(s) against the layer order (top first, src/layers.rs):\n{}",
            found.len(),
            found.join("\n")
        );
    }

    /// Every label of every status enum, quoted as SQL writes it. (Kinds are
    /// left out: `'share'` or `'link_share'` are also audit actions and
    /// dissemination kinds, which are not enums.)
    fn status_literals() -> Vec<String> {
        use crate::cases::ContentState;
        use crate::db::PgEnum;
        use crate::jobs::JobStatus;
        use crate::linkshare::LinkShareStatus;
        use crate::notify::NoticeStatus;
        use crate::sharing::ShareStatus;
        fn quoted<T: PgEnum>(all: &[T]) -> Vec<String> {
            all.iter().map(|v| format!("'{}'", v.label())).collect()
        }
        [
            quoted(&[
                JobStatus::Queued,
                JobStatus::Running,
                JobStatus::Retrying,
                JobStatus::Complete,
                JobStatus::Dead,
            ]),
            quoted(&[
                ShareStatus::Processing,
                ShareStatus::Complete,
                ShareStatus::Failed,
                ShareStatus::Revoked,
            ]),
            quoted(&[
                LinkShareStatus::Processing,
                LinkShareStatus::Complete,
                LinkShareStatus::Failed,
                LinkShareStatus::Revoked,
            ]),
            quoted(&[
                NoticeStatus::Pending,
                NoticeStatus::Sent,
                NoticeStatus::Failed,
            ]),
            quoted(&[
                ContentState::Pending,
                ContentState::Match,
                ContentState::ContentMismatch,
                ContentState::Missing,
            ]),
        ]
        .concat()
    }

    #[test]
    fn no_status_literal_in_sql() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let literals = status_literals();
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        let mut found = Vec::new();
        for file in files.iter().filter(|f| module_of(&src, f).is_some()) {
            let text = std::fs::read_to_string(file).expect("a source file is readable");
            for (i, line) in text.lines().enumerate() {
                if line.trim_start().starts_with("//") {
                    continue;
                }
                for l in literals.iter().filter(|l| line.contains(l.as_str())) {
                    found.push(format!("{}:{}: {l}", file.display(), i + 1));
                }
            }
        }
        assert!(
            found.is_empty(),
            "status literals in SQL (bind the enum, or write `PgEnum::literal` where a partial index needs the value in the text):\n{}",
            found.join("\n")
        );
    }

    #[test]
    fn references_are_read_from_paths_and_groups() {
        let text = "use crate::a::X;\n// crate::ignored\nuse crate::{\n    b::{c, d},\n    e,\n};\nlet x = crate::f::g();";
        let names: Vec<(usize, String)> = references(text);
        assert_eq!(
            names,
            vec![
                (1, "a".to_string()),
                (4, "b".to_string()),
                (5, "e".to_string()),
                (7, "f".to_string())
            ]
        );
    }
}
