//! `--format sarif`: SARIF 2.1.0 for code scanning (GitHub's upload-sarif and other viewers).
//!
//! One result per key that needs a change (`fk-ondelete`), per revert pair (`revert-pair`), per
//! missing import (`missing-import`), per finding (its code), per skipped call (`fk-skipped`)
//! and per suppression note. Locations are relative to the project root (`uriBaseId`
//! `PROJECTROOT`, given in `originalUriBaseIds`). Keys and imports carry their edits as `fixes`;
//! suppressed keys carry an in-source `suppressions` entry, which viewers show as dismissed.

use std::io::Write;
use std::path::{Component, Path, PathBuf};

use anyhow::Result;
use serde_sarif::sarif::{
    ArtifactChange, ArtifactContent, ArtifactLocation, Fix, Invocation, Location, Message,
    MultiformatMessageString, Notification, PhysicalLocation, Region, Replacement,
    ReportingDescriptor, Result as SarifResult, ResultLevel, Run, Sarif, Suppression, Tool,
    ToolComponent,
};

use crate::fix::{Edit, KeyReport, Status};
use crate::report::{FileOutcome, Output};

pub const SARIF_SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";
const BASE_ID: &str = "PROJECTROOT";

/// Every rule a result may name: (id, short description, help).
pub const RULES: &[(&str, &str, &str)] = &[
    (
        "fk-ondelete",
        "Foreign key without the ON DELETE / ON UPDATE action the models mean",
        "Run `fix-migrations --write` to add the action; the reason names the evidence.",
    ),
    (
        "revert-pair",
        "Autogenerate drop + create pair that would undo an earlier fix",
        "Run `fix-migrations --write` to remove the pair and its downgrade() mirror.",
    ),
    (
        "missing-import",
        "Migration uses a module it does not import (NameError at upgrade time)",
        "Run `fix-migrations --write` to add the import after the file's imports.",
    ),
    (
        "fk-skipped",
        "Foreign key call the tool cannot read safely",
        "Its arguments are computed at run time; check its ON DELETE action by hand.",
    ),
    (
        "set-null-not-null",
        "ON DELETE SET NULL on a NOT NULL column",
        "Every delete of the parent fails; make the column nullable or pick CASCADE / RESTRICT.",
    ),
    (
        "set-default-no-default",
        "ON DELETE SET DEFAULT on a NOT NULL column with no server default",
        "The database sets the column to NULL and every delete of the parent fails; give it a server_default or pick CASCADE / RESTRICT.",
    ),
    (
        "cascade-on-lookup",
        "CASCADE to a lookup table",
        "Deleting one lookup row deletes every row that uses it; RESTRICT is usually meant.",
    ),
    (
        "model-contradicts-relationship",
        "The model's ondelete is not CASCADE but a relationship deletes the rows",
        "Make the model's ondelete and the relationship's cascade agree.",
    ),
    (
        "invalid-action",
        "An action that is not CASCADE / SET NULL / SET DEFAULT / RESTRICT / NO ACTION",
        "Fix the spelling of the action.",
    ),
    (
        "passive-deletes-all",
        "A relationship with passive_deletes=\"all\" over a key the heuristics would give SET NULL or CASCADE",
        "The ORM leaves these rows to the database; set ondelete in ForeignKey() (RESTRICT, or what a trigger needs) or in [rules].",
    ),
    (
        "misplaced-ondelete",
        "ondelete= passed to Column() / mapped_column() instead of ForeignKey()",
        "SQLAlchemy raises TypeError; move ondelete into ForeignKey(...).",
    ),
    (
        "unknown-table",
        "The migration's table is in no model file",
        "Point --models (or `models` in the settings) at the file that defines it.",
    ),
    (
        "unnamed-drop",
        "drop_constraint(None, ...) that cannot run",
        "Name the constraint (as its create_foreign_key does).",
    ),
    (
        "unused-suppression",
        "A `# fix-migrations: ignore` comment that suppresses nothing",
        "Remove the comment.",
    ),
    (
        "unknown-suppression",
        "A `# fix-migrations:` comment with an unknown directive",
        "Write `# fix-migrations: ignore` or `# fix-migrations: ignore-file`.",
    ),
];

/// `path` as a URI reference relative to the project root (`/`-separated, percent-encoded
/// where URIs need it); absolute `file://` when it lies outside the root.
fn artifact_uri(path: &Path, root: &Path, cwd: &Path) -> (String, Option<&'static str>) {
    let absolute = normalize(&cwd.join(path));
    let root = normalize(&cwd.join(root));
    match absolute.strip_prefix(&root) {
        Ok(relative) => {
            let parts: Vec<String> = relative
                .components()
                .map(|c| percent_encode(&c.as_os_str().to_string_lossy()))
                .collect();
            (parts.join("/"), Some(BASE_ID))
        }
        Err(_) => (file_uri(&absolute), None),
    }
}

fn file_uri(absolute: &Path) -> String {
    let parts: Vec<String> = absolute
        .components()
        .filter(|c| !matches!(c, Component::RootDir))
        .map(|c| percent_encode(&c.as_os_str().to_string_lossy()))
        .collect();
    format!("file:///{}", parts.join("/"))
}

/// `a/./b/../c` -> `a/c` without touching the file system (the files may be symlinks).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

fn percent_encode(segment: &str) -> String {
    let mut out = String::new();
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn message(text: impl Into<String>) -> Message {
    Message::builder().text(text.into()).build()
}

struct FileContext<'a> {
    uri: String,
    base: Option<&'static str>,
    outcome: &'a FileOutcome,
}

impl FileContext<'_> {
    fn artifact(&self) -> ArtifactLocation {
        match self.base {
            Some(base) => ArtifactLocation::builder()
                .uri(self.uri.clone())
                .uri_base_id(base)
                .build(),
            None => ArtifactLocation::builder().uri(self.uri.clone()).build(),
        }
    }

    fn location(&self, line: usize) -> Location {
        let region = Region::builder().start_line(line.max(1) as i64).build();
        let physical = PhysicalLocation::builder()
            .artifact_location(self.artifact())
            .region(region)
            .build();
        Location::builder().physical_location(physical).build()
    }

    /// The edits as one fix: byte ranges of the original file and the text that replaces them.
    fn fix(&self, description: &str, edits: &[Edit]) -> Option<Fix> {
        if edits.is_empty() {
            return None;
        }
        let replacements: Vec<Replacement> = edits
            .iter()
            .map(|edit| {
                let region = Region::builder()
                    .byte_offset(edit.range.start as i64)
                    .byte_length((edit.range.end - edit.range.start) as i64)
                    .build();
                Replacement::builder()
                    .deleted_region(region)
                    .inserted_content(
                        ArtifactContent::builder()
                            .text(edit.content.clone())
                            .build(),
                    )
                    .build()
            })
            .collect();
        let change = ArtifactChange::builder()
            .artifact_location(self.artifact())
            .replacements(replacements)
            .build();
        Some(
            Fix::builder()
                .description(message(description))
                .artifact_changes(vec![change])
                .build(),
        )
    }

    fn result(&self, rule: &str, level: ResultLevel, line: usize, text: String) -> SarifResult {
        SarifResult::builder()
            .rule_id(rule)
            .rule_index(rule_index(rule))
            .level(level)
            .message(message(text))
            .locations(vec![self.location(line)])
            .build()
    }
}

fn rule_index(rule: &str) -> i64 {
    RULES
        .iter()
        .position(|(id, _, _)| *id == rule)
        .expect("every result names a rule of RULES") as i64
}

fn key_label(key: &KeyReport) -> String {
    format!(
        "{}.{} -> {}.{}",
        key.table.as_deref().unwrap_or("?"),
        key.columns.join(","),
        key.referent_table.as_deref().unwrap_or("?"),
        key.referent_columns.join(",")
    )
}

fn key_result(file: &FileContext, key: &KeyReport) -> Option<SarifResult> {
    let action = key.ondelete.map_or("?", |a| a.sql());
    let mut wanted = format!("ondelete {action}");
    if let Some(update) = key.onupdate {
        wanted.push_str(&format!(", onupdate {}", update.sql()));
    }
    let label = key_label(key);
    match key.status {
        Status::Fixed => {
            let mut result = file.result(
                "fk-ondelete",
                ResultLevel::Warning,
                key.line,
                format!("{label} needs {wanted} ({})", key.reason),
            );
            result.fixes = file
                .fix(&format!("set {wanted}"), &key.edits)
                .map(|f| vec![f]);
            Some(result)
        }
        Status::RevertRemoved => Some(file.result(
            "revert-pair",
            ResultLevel::Warning,
            key.line,
            format!("{label}: {}", key.reason),
        )),
        Status::Skipped => Some(file.result(
            "fk-skipped",
            ResultLevel::Note,
            key.line,
            format!("{label}: skipped: {}", key.reason),
        )),
        Status::Suppressed => {
            let mut result = file.result(
                "fk-ondelete",
                ResultLevel::Warning,
                key.line,
                format!("{label}: {}", key.message.as_deref().unwrap_or(&key.reason)),
            );
            result.suppressions = Some(vec![
                Suppression::builder()
                    .kind(serde_json::Value::from("inSource"))
                    .justification(key.reason.clone())
                    .build(),
            ]);
            Some(result)
        }
        // Findings are reported once, from the plan's findings; right keys need nothing.
        Status::Finding | Status::Ok => None,
    }
}

pub fn build(output: &Output) -> Sarif {
    let mut results = Vec::new();
    let mut notifications = Vec::new();
    for outcome in &output.outcomes {
        let (uri, base) = artifact_uri(&outcome.path, &output.root, &output.cwd);
        let file = FileContext { uri, base, outcome };
        if let Some(error) = &outcome.error {
            notifications.push(
                Notification::builder()
                    .level(serde_json::Value::from("error"))
                    .message(message(error.clone()))
                    .locations(vec![file.location(1)])
                    .build(),
            );
            continue;
        }
        results.extend(
            file.outcome
                .plan
                .keys
                .iter()
                .filter_map(|k| key_result(&file, k)),
        );
        for import in &file.outcome.plan.imports {
            if import.status != Status::Fixed {
                continue;
            }
            let mut result = file.result(
                "missing-import",
                ResultLevel::Error,
                import.line,
                format!(
                    "`{0}` is used ({1}) but not imported: `alembic upgrade` raises NameError; add `import {0}` after line {2}",
                    import.module, import.used, import.after_line
                ),
            );
            result.fixes = file
                .fix(
                    &format!("add import {}", import.module),
                    import.edit.as_slice(),
                )
                .map(|f| vec![f]);
            results.push(result);
        }
        for finding in &file.outcome.plan.findings {
            results.push(file.result(
                finding.code,
                ResultLevel::Error,
                finding.line,
                finding.message.clone(),
            ));
        }
        for notice in &file.outcome.plan.notices {
            results.push(file.result(
                notice.code,
                ResultLevel::Note,
                notice.line,
                notice.message.clone(),
            ));
        }
    }
    let rules: Vec<ReportingDescriptor> = RULES
        .iter()
        .map(|(id, short, help)| {
            ReportingDescriptor::builder()
                .id(*id)
                .short_description(MultiformatMessageString::builder().text(*short).build())
                .help(MultiformatMessageString::builder().text(*help).build())
                .build()
        })
        .collect();
    let driver = ToolComponent::builder()
        .name("fix-migrations")
        .version(env!("CARGO_PKG_VERSION"))
        .rules(rules)
        .build();
    let invocation = Invocation::builder()
        .execution_successful(notifications.is_empty())
        .tool_execution_notifications(notifications)
        .build();
    let root = normalize(&output.cwd.join(&output.root));
    let mut root_uri = file_uri(&root);
    root_uri.push('/');
    let base_ids: std::collections::BTreeMap<String, ArtifactLocation> = std::iter::once((
        BASE_ID.to_string(),
        ArtifactLocation::builder().uri(root_uri).build(),
    ))
    .collect();
    let run = Run::builder()
        .tool(Tool::builder().driver(driver).build())
        .original_uri_base_ids(base_ids)
        .invocations(vec![invocation])
        .results(results)
        .build();
    Sarif::builder()
        .schema(SARIF_SCHEMA)
        .version(serde_json::Value::from("2.1.0"))
        .runs(vec![run])
        .build()
}

pub fn print(output: &Output) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut stdout, &build(output))?;
    writeln!(stdout)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_are_relative_to_the_project_root() {
        let cwd = Path::new("/work/app");
        assert_eq!(
            artifact_uri(Path::new("migrations/versions/a b.py"), Path::new("."), cwd),
            ("migrations/versions/a%20b.py".to_string(), Some(BASE_ID))
        );
        assert_eq!(
            artifact_uri(Path::new("/elsewhere/m.py"), Path::new("/work/app"), cwd),
            ("file:///elsewhere/m.py".to_string(), None)
        );
    }
}
