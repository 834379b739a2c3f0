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
//! index needs it in the text, written from the enum (`db::PgEnum`); and
//! that each table is written from one module only (`one_writer_per_table`).

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

/// The tables a file's SQL changes (`INSERT INTO t`, `UPDATE t`, `DELETE
/// FROM t`; not `ON CONFLICT … DO UPDATE` or a `FOR [NO KEY] UPDATE` lock),
/// with the line of each. Comment lines are skipped.
pub fn written_tables(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("//") {
            continue;
        }
        let words: Vec<&str> = line
            .split(|c: char| !(is_ident(c) || c == '{'))
            .filter(|w| !w.is_empty())
            .collect();
        for (k, w) in words.iter().enumerate() {
            let table = match *w {
                "INTO" if k > 0 && words[k - 1] == "INSERT" => words.get(k + 1),
                "FROM" if k > 0 && words[k - 1] == "DELETE" => words.get(k + 1),
                "UPDATE" if k == 0 || !matches!(words[k - 1], "DO" | "FOR" | "KEY" | "ON") => {
                    words.get(k + 1)
                }
                _ => None,
            };
            if let Some(t) = table
                .filter(|t| t.chars().all(|c| c.is_ascii_lowercase() || c == '_') && **t != "SET")
            {
                out.push((i + 1, t.to_string()));
            }
        }
    }
    out
}

/// Tables changed from more than one top-level module of `src/` (#23: one
/// writer per table), each with where it is written.
pub fn shared_writers(src: &Path) -> Vec<String> {
    use std::collections::{BTreeMap, BTreeSet};
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let mut by_table: BTreeMap<String, (BTreeSet<String>, Vec<String>)> = BTreeMap::new();
    for file in &files {
        let Some(module) = module_of(src, file) else {
            continue;
        };
        let text = std::fs::read_to_string(file).expect("a source file is readable");
        for (line, table) in written_tables(&text) {
            let shown = file
                .strip_prefix(src.parent().unwrap_or(src))
                .unwrap_or(file);
            let entry = by_table.entry(table).or_default();
            entry.0.insert(module.clone());
            entry.1.push(format!("{}:{line}", shown.display()));
        }
    }
    by_table
        .into_iter()
        .filter(|(_, (modules, _))| modules.len() > 1)
        .map(|(table, (modules, at))| {
            format!(
                "`{table}` is written from {}: {}",
                modules.into_iter().collect::<Vec<_>>().join(", "),
                at.join(", ")
            )
        })
        .collect()
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

    /// Every value of every status enum: its hand-written label
    /// (`PgEnum::label`) and the value sqlx binds for it (`rename_all`).
    /// (Kinds are left out: `'share'` or `'link_share'` are also audit
    /// actions and dissemination kinds, which are not enums.)
    fn statuses() -> Vec<(String, String)> {
        use crate::cases::ContentState;
        use crate::db::PgEnum;
        use crate::jobs::JobStatus;
        use crate::linkshare::LinkShareStatus;
        use crate::notify::NoticeStatus;
        use crate::sharing::ShareStatus;
        fn bound<T>(all: &[T]) -> Vec<(String, String)>
        where
            T: PgEnum + for<'q> sqlx::Encode<'q, sqlx::Postgres>,
        {
            all.iter()
                .map(|v| {
                    let mut buf = sqlx::postgres::PgArgumentBuffer::default();
                    let _ = v.encode_by_ref(&mut buf).expect("a status encodes");
                    (
                        v.label().to_string(),
                        String::from_utf8_lossy(&buf).into_owned(),
                    )
                })
                .collect()
        }
        [
            bound(&[
                JobStatus::Queued,
                JobStatus::Running,
                JobStatus::Retrying,
                JobStatus::Complete,
                JobStatus::Dead,
            ]),
            bound(&[
                ShareStatus::Processing,
                ShareStatus::Complete,
                ShareStatus::Failed,
                ShareStatus::Revoked,
            ]),
            bound(&[
                LinkShareStatus::Processing,
                LinkShareStatus::Complete,
                LinkShareStatus::Failed,
                LinkShareStatus::Revoked,
            ]),
            bound(&[
                NoticeStatus::Pending,
                NoticeStatus::Sent,
                NoticeStatus::Failed,
            ]),
            bound(&[
                ContentState::Pending,
                ContentState::Match,
                ContentState::ContentMismatch,
                ContentState::Missing,
            ]),
        ]
        .concat()
    }

    /// The hand-written labels (used where a partial index needs a status
    /// in the text) are the values sqlx binds: the two cannot drift apart.
    #[test]
    fn status_labels_are_the_bound_values() {
        let all = statuses();
        let drifted: Vec<_> = all.iter().filter(|(l, b)| l != b).collect();
        assert!(drifted.is_empty(), "label vs bound value: {drifted:?}");
        assert_eq!(all.len(), 20);
    }

    #[test]
    fn no_status_literal_in_sql() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let literals: Vec<String> = statuses()
            .into_iter()
            .map(|(label, _)| format!("'{label}'"))
            .collect();
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
    fn one_writer_per_table() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let found = shared_writers(&src);
        assert!(
            found.is_empty(),
            "tables with more than one writing module (give each table one writer):\n{}",
            found.join("\n")
        );
    }

    #[test]
    fn written_tables_are_read_from_sql() {
        let text =
            "\"INSERT INTO evidence (id) VALUES ($1) ON CONFLICT (id) DO UPDATE SET x = 1\"\n\
                    // UPDATE commented\n\
                    \"SELECT 1 FROM cases FOR NO KEY UPDATE\"; \"SELECT 1 FOR UPDATE OF f\"\n\
                    \"WITH d AS (DELETE FROM grants g RETURNING 1) UPDATE shares SET a = 1\"\n\
                    format!(\"UPDATE {table} SET\")";
        assert_eq!(
            written_tables(text),
            vec![
                (1, "evidence".to_string()),
                (4, "grants".to_string()),
                (4, "shares".to_string())
            ]
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
