//! Step 6: decisions -> edits. A fix is a list of `Edit { range, content }`; edits are sorted and
//! applied in one pass, any that overlaps an applied one is skipped, the result is re-parsed and
//! refused if it no longer parses, and the write is atomic.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Range;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::history::normalized_action;
use crate::keyset::{ExistingKey, KeySet};
use crate::migrations::{
    ArgLayout, ConstraintName, DropSite, FkSite, Migration, Section, SiteKind, StatementId,
    line_end,
};
use crate::models::Schema;
use crate::parse::Fields;
use crate::parse::SourceFile;
use crate::policy::{self, Action, Finding, KeyRef, Rule};
use crate::suppress::Suppressions;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Edit {
    pub range: Range<usize>,
    pub content: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The call gets (or got) new ondelete/onupdate.
    Fixed,
    /// Already right.
    Ok,
    /// The tool can't read the call safely; left alone.
    Skipped,
    /// Needs a human; left alone.
    Finding,
    /// An autogenerate revert pair that would undo an earlier fix; removed.
    RevertRemoved,
    /// Would need a change (or a human), but a `# fix-migrations: ignore` comment covers it.
    Suppressed,
}

/// One foreign key of a migration's upgrade(), as reported.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyReport {
    pub line: usize,
    pub function: Section,
    pub kind: SiteKind,
    pub table: Option<String>,
    pub columns: Vec<String>,
    pub referent_table: Option<String>,
    pub referent_columns: Vec<String>,
    pub ondelete: Option<Action>,
    pub onupdate: Option<Action>,
    pub rule: Option<Rule>,
    pub reason: String,
    pub status: Status,
    pub message: Option<String>,
    #[serde(skip)]
    pub trail: Vec<String>,
    /// The edits that fix this key (for SARIF's `fixes`).
    #[serde(skip)]
    pub edits: Vec<Edit>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FileFinding {
    pub line: usize,
    pub code: &'static str,
    pub message: String,
}

/// Everything decided for one migration file.
#[derive(Debug, Default)]
pub struct FilePlan {
    pub edits: Vec<Edit>,
    pub keys: Vec<KeyReport>,
    pub findings: Vec<FileFinding>,
    /// (line, what was done) for constraint names given and imports added.
    pub notes: Vec<(usize, String)>,
    /// (line, what was left alone) for suppressed changes and findings that are not keys
    /// (those carry `Status::Suppressed`): constraint names, unnamed drops, imports.
    pub suppressed: Vec<(usize, String)>,
    /// Unused or unknown suppression comments: reported, never failing the run.
    pub notices: Vec<FileFinding>,
    /// Missing imports the migration needs to run.
    pub imports: Vec<ImportFix>,
}

/// An import a migration uses but lacks (`sqlmodel.sql.sqltypes.AutoString()` without
/// `import sqlmodel` raises NameError at upgrade time).
#[derive(Debug, Clone, Serialize)]
pub struct ImportFix {
    /// The first line that uses the module.
    pub line: usize,
    pub module: &'static str,
    /// What that line uses: `sqlmodel.sql.sqltypes.AutoString`.
    pub used: String,
    /// The import goes on a new line after this one (0: at the top of the file).
    pub after_line: usize,
    pub status: Status,
    /// The insertion (for SARIF's `fixes`); None when suppressed.
    #[serde(skip)]
    pub edit: Option<Edit>,
}

/// Which suppression comments took effect, so the unused ones can be reported.
pub(crate) struct Suppressor {
    comments: Suppressions,
    used: HashSet<usize>,
}

impl Suppressor {
    pub(crate) fn read(file: &SourceFile) -> Suppressor {
        Suppressor {
            comments: Suppressions::read(file),
            used: HashSet::new(),
        }
    }

    /// When `line` is covered: marks the comment used and says which it is.
    fn check(&mut self, line: usize) -> Option<String> {
        let directive = self.comments.covering(line)?;
        self.used.insert(directive.line);
        Some(format!("suppressed by {}", directive.describe()))
    }

    fn covers(&self, line: usize) -> bool {
        self.comments.covering(line).is_some()
    }

    pub(crate) fn notices(&self) -> Vec<FileFinding> {
        let mut out: Vec<FileFinding> = self
            .comments
            .directives
            .iter()
            .filter(|d| !self.used.contains(&d.line))
            .map(|d| FileFinding {
                line: d.line,
                code: "unused-suppression",
                message: match d.covers {
                    None => "`# fix-migrations: ignore-file` suppresses nothing: nothing in this file needs a change".into(),
                    Some(0) => "`# fix-migrations: ignore` suppresses nothing: no code follows it".into(),
                    Some(line) => format!(
                        "`# fix-migrations: ignore` suppresses nothing: no foreign key on line {line} needs a change"
                    ),
                },
            })
            .collect();
        out.extend(
            self.comments
                .unknown
                .iter()
                .map(|(line, message)| FileFinding {
                    line: *line,
                    code: "unknown-suppression",
                    message: message.clone(),
                }),
        );
        out.sort_by_key(|f| f.line);
        out
    }
}

pub fn plan(
    file: &SourceFile,
    migration: &Migration,
    schema: &Schema,
    config: &Config,
) -> FilePlan {
    plan_with_history(file, migration, schema, config, None)
}

/// `plan`, knowing the keys as they exist before this revision runs (`history::History::before`):
/// revert pairs whose downgrade() mirror is missing are judged from history, and a downgrade()
/// `create_foreign_key` that restores a key dropped in upgrade() gets that key's old rules.
pub fn plan_with_history(
    file: &SourceFile,
    migration: &Migration,
    schema: &Schema,
    config: &Config,
    before: Option<&KeySet>,
) -> FilePlan {
    let mut plan = FilePlan::default();
    let mut suppressor = Suppressor::read(file);
    let mut removed: HashSet<StatementId> = HashSet::new();
    let mut reverts = revert_pairs(&file.text, migration, schema, config, before);
    if let Some(before) = before {
        let found = history_revert_pairs(&file.text, migration, schema, config, before, &reverts);
        reverts.extend(found);
    }
    // A pair any of whose calls is covered stays; its create is then left as it is too.
    let mut pinned: HashMap<usize, String> = HashMap::new();
    let mut kept_reverts = Vec::new();
    for pair in reverts {
        if let Some(why) = pair.lines.iter().find_map(|line| suppressor.check(*line)) {
            pinned.insert(pair.create, why);
            continue;
        }
        removed.extend(pair.statements.iter().copied());
        kept_reverts.push(pair);
    }
    let reverts = kept_reverts;

    for (index, site) in migration.sites.iter().enumerate() {
        if site.section != Section::Upgrade {
            if site.section == Section::Other {
                let why = site
                    .skip
                    .clone()
                    .unwrap_or_else(|| "not inside upgrade()".into());
                let key = report(site, Status::Skipped, why);
                plan.keys.push(suppress_key(key, &mut suppressor));
            }
            continue;
        }
        if let Some(why) = pinned.get(&index) {
            let mut key = report(site, Status::Suppressed, why.clone());
            key.message = Some(format!("revert pair left in place; {why}"));
            plan.keys.push(key);
            continue;
        }
        if let Some(pair) = reverts.iter().find(|p| p.create == index) {
            let mut key = report(site, Status::RevertRemoved, pair.reason.clone());
            key.ondelete = Some(pair.ondelete);
            plan.keys.push(key);
            continue;
        }
        // Planned apart, so a suppressed key's edits and findings can be dropped whole.
        let mut one = FilePlan::default();
        plan_key(&mut one, file, migration, site, schema, config);
        let covered =
            one.keys.iter().any(|k| k.status != Status::Ok) && suppressor.covers(site.line);
        if covered {
            for key in one.keys {
                plan.keys.push(suppress_key(key, &mut suppressor));
            }
        } else {
            plan.keys.extend(one.keys);
            plan.edits.extend(one.edits);
            plan.findings.extend(one.findings);
            plan.notes.extend(one.notes);
        }
    }

    if let Some(before) = before {
        restore_old_rules(&mut plan, file, migration, before, &removed);
    }
    name_unnamed(
        &mut plan,
        &file.text,
        migration,
        schema,
        (&removed, before),
        &mut suppressor,
    );
    plan.edits.extend(removal_edits(file, migration, &removed));
    add_missing_imports(&mut plan, file, migration, &mut suppressor);
    plan.notes.sort_by_key(|(line, _)| *line);
    plan.suppressed.sort_by_key(|(line, _)| *line);
    plan.notices = suppressor.notices();
    plan
}

/// A key that is not already right, under a suppression comment: left as it is.
fn suppress_key(key: KeyReport, suppressor: &mut Suppressor) -> KeyReport {
    let line = key.line;
    suppress_key_on(key, line, suppressor)
}

/// `key` as suppressed when `line` (where its call starts) is covered and it needed a change.
pub(crate) fn suppress_key_on(
    mut key: KeyReport,
    line: usize,
    suppressor: &mut Suppressor,
) -> KeyReport {
    if key.status == Status::Ok {
        return key;
    }
    let Some(why) = suppressor.check(line) else {
        return key;
    };
    let was = match key.status {
        Status::Fixed => format!(
            "would set ondelete {}",
            key.ondelete.map_or("?", Action::sql)
        ),
        Status::Finding => format!(
            "finding: {}",
            key.message.as_deref().unwrap_or(key.reason.as_str())
        ),
        Status::Skipped => format!("skipped: {}", key.reason),
        _ => key.reason.clone(),
    };
    key.message = Some(format!("{why}; {was}"));
    key.reason = why;
    key.status = Status::Suppressed;
    key
}

/// `sqlmodel.sql.sqltypes.AutoString()` in a migration without `import sqlmodel` raises
/// NameError at upgrade time (Alembic's default script template lacks the import). The import
/// goes on its own line right after the last import of the file's leading import block.
fn add_missing_imports(
    plan: &mut FilePlan,
    file: &SourceFile,
    migration: &Migration,
    suppressor: &mut Suppressor,
) {
    let Some((line, used)) = &migration.missing_sqlmodel_import else {
        return;
    };
    let at = import_insertion_point(file);
    // At the very end of a file without a final newline, the import starts a new line.
    let append = at == file.text.len() && !file.text.is_empty() && !file.text.ends_with('\n');
    let after_line = file.text[..at].matches('\n').count() + usize::from(append);
    let what = format!(
        "`import sqlmodel` after line {after_line}: {used} raises NameError at upgrade time without it"
    );
    if let Some(directive) = suppressor.comments.whole_file() {
        let why = format!("suppressed by {}", directive.describe());
        suppressor.used.insert(directive.line);
        plan.suppressed.push((*line, format!("{what} ({why})")));
        plan.imports.push(ImportFix {
            line: *line,
            module: "sqlmodel",
            used: used.clone(),
            after_line,
            status: Status::Suppressed,
            edit: None,
        });
        return;
    }
    let nl = line_break_at(&file.text, at.saturating_sub(1));
    let content = if append {
        format!("{nl}import sqlmodel")
    } else {
        format!("import sqlmodel{nl}")
    };
    let edit = Edit {
        range: at..at,
        content,
    };
    plan.edits.push(edit.clone());
    plan.notes.push((*line, format!("missing import: {what}")));
    plan.imports.push(ImportFix {
        line: *line,
        module: "sqlmodel",
        used: used.clone(),
        after_line,
        status: Status::Fixed,
        edit: Some(edit),
    });
}

/// Where a new top-level import goes: after the line of the last import in the first run of
/// module-level imports (comments and blank lines may sit between them), else after the
/// module docstring, else at the top.
fn import_insertion_point(file: &SourceFile) -> usize {
    let root = file.tree.root_node();
    let mut cursor = root.walk();
    let mut last_import = None;
    let mut docstring_end = None;
    for (i, child) in root.named_children(&mut cursor).enumerate() {
        match child.kind() {
            "import_statement" | "import_from_statement" | "future_import_statement" => {
                last_import = Some(child.end_byte());
            }
            "comment" => {}
            "expression_statement"
                if i == 0 && child.named_child(0).is_some_and(|n| n.kind() == "string") =>
            {
                docstring_end = Some(child.end_byte());
            }
            _ => {
                if last_import.is_some() {
                    break;
                }
            }
        }
    }
    match last_import.or(docstring_end) {
        Some(end) => line_end(&file.text, end),
        None => 0,
    }
}

fn report(site: &FkSite, status: Status, reason: String) -> KeyReport {
    KeyReport {
        line: site.line,
        function: site.section,
        kind: site.kind,
        table: site.table.clone(),
        columns: site.columns.clone(),
        referent_table: site.referent_table.clone(),
        referent_columns: site.referent_columns.clone(),
        ondelete: site.ondelete_text().and_then(Action::parse),
        onupdate: site.onupdate_text().and_then(Action::parse),
        rule: None,
        message: (status == Status::Skipped).then(|| reason.clone()),
        reason,
        status,
        trail: vec![],
        edits: vec![],
    }
}

fn key_ref<'s>(site: &'s FkSite, migration: &Migration) -> Option<KeyRef<'s>> {
    let table = site.table.as_deref()?;
    // upgrade() making a column of the key NOT NULL says what the database holds. Only NOT
    // NULL is taken from it: a column added nullable and made NOT NULL by a later revision (as
    // the model says) must not get SET NULL now.
    let not_null_in_migration = site.section == Section::Upgrade
        && site
            .columns
            .iter()
            .any(|c| migration.nullability.get(&(table.to_string(), c.clone())) == Some(&false));
    let server_default_in_migration = site.section == Section::Upgrade
        && !site.columns.is_empty()
        && site.columns.iter().all(|c| {
            migration
                .server_defaults
                .get(&(table.to_string(), c.clone()))
                == Some(&true)
        });
    Some(KeyRef {
        table,
        columns: &site.columns,
        referent_table: site.referent_table.as_deref()?,
        referent_columns: &site.referent_columns,
        not_null_in_migration,
        server_default_in_migration,
    })
}

fn plan_key(
    plan: &mut FilePlan,
    file: &SourceFile,
    migration: &Migration,
    site: &FkSite,
    schema: &Schema,
    config: &Config,
) {
    let key = match (&site.skip, key_ref(site, migration)) {
        (Some(why), _) => {
            plan.keys.push(report(site, Status::Skipped, why.clone()));
            return;
        }
        (None, None) => {
            plan.keys.push(report(
                site,
                Status::Skipped,
                "table or referent unknown".into(),
            ));
            return;
        }
        (None, Some(key)) => key,
    };
    let existing_ondelete = site.ondelete_text();
    let existing_onupdate = site.onupdate_text();
    let judgement = match policy::judge(schema, config, key, existing_ondelete, existing_onupdate) {
        Ok(j) => j,
        Err(policy::UnknownTable(table)) => {
            let message = format!(
                "table {table} is in no model file; {} left as it is",
                key.label()
            );
            plan.findings.push(FileFinding {
                line: site.line,
                code: "unknown-table",
                message: message.clone(),
            });
            let mut key = report(site, Status::Finding, message.clone());
            key.message = Some(message);
            plan.keys.push(key);
            return;
        }
    };
    let decision = &judgement.decision;
    let mut key = report(site, Status::Ok, decision.reason.clone());
    key.rule = Some(decision.rule);
    key.trail = decision.trail.clone();
    key.ondelete = Some(decision.ondelete);
    key.onupdate = judgement.write_onupdate.or(key.onupdate);
    // A batch block recreates the table on SQLite, where an unnamed key in add_column fails
    // ("Constraint must have a name"): it gets the name a create_foreign_key would, also when
    // its rules need a human. `ForeignKey(..., name=None)` is as unnamed as no name at all.
    let batch_unnamed = site.in_batch
        && match site.name {
            ConstraintName::Absent => true,
            ConstraintName::Unnamed(_) => site.kind == SiteKind::Inline,
            _ => false,
        };
    let literal = batch_unnamed.then(|| {
        let name = constraint_name(schema, site);
        plan.notes
            .push((site.line, format!("named the unnamed foreign key {name}")));
        name_literal(schema, migration, site, &name)
    });
    // The `None` is replaced in place; a missing name is appended as a keyword.
    let (name, name_edit) = match (&site.name, literal) {
        (ConstraintName::Unnamed(range), Some(literal)) => (
            None,
            Some(Edit {
                range: range.clone(),
                content: literal,
            }),
        ),
        (_, literal) => (literal.map(|literal| format!("name={literal}")), None),
    };
    if !judgement.findings.is_empty() {
        key.status = Status::Finding;
        key.message = Some(
            judgement
                .findings
                .iter()
                .map(|f| f.message.as_str())
                .collect::<Vec<_>>()
                .join("; "),
        );
        for Finding { code, message } in &judgement.findings {
            plan.findings.push(FileFinding {
                line: site.line,
                code,
                message: message.clone(),
            });
        }
        if name.is_some() || name_edit.is_some() {
            key.edits = keyword_edits(file, migration, site, name, None, None);
            key.edits.extend(name_edit);
            plan.edits.extend(key.edits.clone());
        }
        plan.keys.push(key);
        return;
    }
    let mut edits = keyword_edits(
        file,
        migration,
        site,
        name,
        judgement.write_onupdate,
        judgement.write_ondelete,
    );
    edits.extend(name_edit);
    if !edits.is_empty() {
        key.status = Status::Fixed;
        key.edits = edits.clone();
        plan.edits.extend(edits);
    }
    plan.keys.push(key);
}

/// Replace existing values in place; append missing keywords in Alembic's order (name,
/// onupdate, ondelete) in the call's own layout.
fn keyword_edits(
    file: &SourceFile,
    migration: &Migration,
    site: &FkSite,
    name: Option<String>,
    onupdate: Option<Action>,
    ondelete: Option<Action>,
) -> Vec<Edit> {
    let quote = site.quote;
    let spell = |action: Action| {
        let text = if migration.lowercase_actions {
            action.sql().to_lowercase()
        } else {
            action.sql().to_string()
        };
        format!("{quote}{text}{quote}")
    };
    let mut edits = Vec::new();
    let mut appended: Vec<String> = name.into_iter().collect();
    for (name, wanted, existing) in [
        ("onupdate", onupdate, &site.onupdate),
        ("ondelete", ondelete, &site.ondelete),
    ] {
        let Some(action) = wanted else { continue };
        match existing {
            Some(keyword) => edits.push(Edit {
                range: keyword.value_range.clone(),
                content: spell(action),
            }),
            None => appended.push(format!("{name}={}", spell(action))),
        }
    }
    if !appended.is_empty() {
        edits.extend(append_keywords(file, site, &appended));
    }
    edits
}

/// The end of the blank line starting at `at`, if the line there is blank.
fn blank_line_after(text: &str, at: usize) -> Option<usize> {
    if at >= text.len() {
        return None;
    }
    let end = line_end(text, at);
    text[at..end].trim().is_empty().then_some(end)
}

/// The line break that ends the line holding `at` (CRLF files, and mixed ones, stay as they are).
fn line_break_at(text: &str, at: usize) -> &'static str {
    let end = line_end(text, at);
    if text[..end].ends_with("\r\n") {
        "\r\n"
    } else {
        "\n"
    }
}

/// Where the line holding `at` ends, before its line break.
fn before_line_break(text: &str, at: usize) -> usize {
    let end = line_end(text, at);
    let body = &text[at..end];
    at + body.trim_end_matches(['\n', '\r']).len()
}

fn append_keywords(file: &SourceFile, site: &FkSite, keywords: &[String]) -> Vec<Edit> {
    append_keywords_at(&file.text, &site.layout, keywords)
}

/// New keyword arguments at the end of a call's argument list, in the call's own layout.
/// Shared with `model_fix`, so model edits look like migration edits.
pub fn append_keywords_at(text: &str, layout: &ArgLayout, keywords: &[String]) -> Vec<Edit> {
    let nl = line_break_at(text, layout.last_arg_end);
    let indent = &layout.arg_indent;
    let edit = |range: Range<usize>, content: String| Edit { range, content };
    if layout.empty {
        let at = layout.last_arg_end;
        return vec![edit(at..at, keywords.join(", "))];
    }
    match (layout.close_on_own_line, layout.trailing_comma) {
        // black's shape: one argument per line, magic trailing comma. New lines go after the
        // last argument's line, past any comment on it.
        (true, Some(comma)) => {
            let at = before_line_break(text, comma);
            let content = keywords
                .iter()
                .map(|k| format!("{nl}{indent}{k},"))
                .collect();
            vec![edit(at..at, content)]
        }
        // One argument per line without a trailing comma: the comma goes right after the last
        // argument, the new lines after any comment on its line.
        (true, None) => {
            let at = before_line_break(text, layout.last_arg_end);
            let lines: Vec<String> = keywords
                .iter()
                .map(|k| format!("{nl}{indent}{k}"))
                .collect();
            if text[layout.last_arg_end..at].trim().is_empty() {
                let end = layout.last_arg_end;
                vec![edit(end..end, format!(",{}", lines.join(",")))]
            } else {
                let end = layout.last_arg_end;
                vec![edit(end..end, ",".into()), edit(at..at, lines.join(","))]
            }
        }
        // Alembic's `['users.id'], )`: reuse its trailing comma.
        (false, Some(comma)) => vec![edit(
            comma + 1..layout.close,
            format!(" {}", keywords.join(", ")),
        )],
        (false, None) => {
            let end = layout.last_arg_end;
            vec![edit(
                end..end,
                keywords.iter().map(|k| format!(", {k}")).collect(),
            )]
        }
    }
}

/// An autogenerate revert pair found in upgrade() and its downgrade() mirror.
struct RevertPair {
    create: usize,
    statements: Vec<StatementId>,
    /// The lines its calls start on (a suppression on any of them keeps the pair).
    lines: Vec<usize>,
    ondelete: Action,
    reason: String,
}

/// Once a migration was fixed but the model still says nothing, autogenerate emits a drop +
/// create in upgrade() that puts the key back without its ondelete, and the mirror in
/// downgrade(). When the policy's answer equals the rules the mirror restores (the database's
/// current rules), the pair only undoes the fix: remove all four statements. Only a pair shaped
/// as autogenerate writes it counts (`undoes_only_ondelete`), and history, when known, is
/// believed over a downgrade() that says otherwise.
fn revert_pairs(
    text: &str,
    migration: &Migration,
    schema: &Schema,
    config: &Config,
    before: Option<&KeySet>,
) -> Vec<RevertPair> {
    let creates = |section: Section| {
        migration.sites.iter().enumerate().filter(move |(_, s)| {
            s.section == section
                && matches!(
                    s.kind,
                    SiteKind::CreateForeignKey | SiteKind::BatchCreateForeignKey
                )
                && s.skip.is_none()
                && s.statement.is_some()
        })
    };
    let mut used_drops: HashSet<usize> = HashSet::new();
    let mut used_mirrors: HashSet<usize> = HashSet::new();
    let mut pairs = Vec::new();
    for (index, create) in creates(Section::Upgrade) {
        let Some(key) = key_ref(create, migration) else {
            continue;
        };
        let mirror = creates(Section::Downgrade).find(|(i, m)| {
            !used_mirrors.contains(i)
                && m.table == create.table
                && m.columns == create.columns
                && m.referent_table == create.referent_table
                && m.referent_columns == create.referent_columns
        });
        let Some((mirror_index, mirror)) = mirror else {
            continue;
        };
        let Some(current_delete) = action_of(mirror.ondelete_text()) else {
            continue;
        };
        let current_update = mirror.onupdate_text().map(Action::parse);
        let Ok(decision) = policy::decide(schema, config, key) else {
            continue;
        };
        let update_agrees = match (decision.onupdate, current_update) {
            (None, _) => true,
            (Some(wanted), Some(Some(current))) => wanted == current,
            _ => false,
        };
        let Some(why) = current_rule_stands(
            schema,
            config,
            key,
            &decision,
            (mirror.ondelete_text(), create.ondelete_text()),
            "downgrade() restores it",
        ) else {
            continue;
        };
        if !update_agrees {
            continue;
        }
        let drop_in =
            |section: Section, wanted_name: Option<&ConstraintName>, used: &HashSet<usize>| {
                let candidates = || {
                    migration.drops.iter().enumerate().filter(|(i, d)| {
                        d.section == section && d.table == create.table && !used.contains(i)
                    })
                };
                wanted_name
                    .and_then(|name| candidates().find(|(_, d)| &d.name == name))
                    .or_else(|| {
                        candidates().find(|(_, d)| matches!(d.name, ConstraintName::Unnamed(_)))
                    })
                    .map(|(i, _)| i)
            };
        let mirror_name = match &mirror.name {
            ConstraintName::Known(n) => Some(ConstraintName::Known(n.clone())),
            _ => None,
        };
        let Some(up_drop) = drop_in(Section::Upgrade, mirror_name.as_ref(), &used_drops) else {
            continue;
        };
        let create_name = match &create.name {
            ConstraintName::Known(n) => Some(ConstraintName::Known(n.clone())),
            _ => None,
        };
        let mut used_now = used_drops.clone();
        used_now.insert(up_drop);
        let Some(down_drop) = drop_in(Section::Downgrade, create_name.as_ref(), &used_now) else {
            continue;
        };
        let (up, down) = (&migration.drops[up_drop], &migration.drops[down_drop]);
        let same_rules_otherwise = action_of(create.onupdate_text())
            == action_of(mirror.onupdate_text())
            && create.options == mirror.options;
        let history_disagrees = before
            .and_then(|keys| {
                dropped_key(keys, up, &create.columns, create.referent_table.as_deref())
            })
            .is_some_and(|old| action_of(old.ondelete.as_deref()) != Some(current_delete));
        if !same_rules_otherwise
            || history_disagrees
            || !undoes_only_ondelete(text, migration, create, up, current_delete)
            || !only_key_statements_between(
                text,
                migration,
                down.statement,
                mirror.statement.expect("filtered"),
            )
        {
            continue;
        }
        let statements = vec![
            create.statement.expect("filtered"),
            migration.drops[up_drop].statement,
            mirror.statement.expect("filtered"),
            migration.drops[down_drop].statement,
        ];
        if !statements
            .iter()
            .all(|s| migration.statements[*s].removable)
        {
            continue;
        }
        used_drops.insert(up_drop);
        used_drops.insert(down_drop);
        used_mirrors.insert(mirror_index);
        pairs.push(RevertPair {
            create: index,
            statements,
            lines: vec![
                create.line,
                migration.drops[up_drop].line,
                mirror.line,
                migration.drops[down_drop].line,
            ],
            ondelete: current_delete,
            reason: why,
        });
    }
    pairs
}

/// The key an upgrade() `drop_constraint` removes, as history holds it: by name, or (a key
/// SQLite left unnamed, an unnamed drop) the only key of that table on these columns.
fn dropped_key<'k>(
    before: &'k KeySet,
    drop: &DropSite,
    columns: &[String],
    referent: Option<&str>,
) -> Option<&'k ExistingKey> {
    let table = drop.table.as_deref()?;
    let (schema, bare) = crate::history::split_qualified(table);
    let on_table = || {
        before
            .keys
            .iter()
            .filter(move |k| k.table == bare && k.schema == schema)
    };
    let same_key = |k: &&ExistingKey| {
        k.columns == columns && referent.is_none_or(|r| policy::bare_name(r) == k.referent_table)
    };
    match &drop.name {
        ConstraintName::Known(name) => on_table()
            .find(|k| k.name.as_deref() == Some(name.as_str()))
            .filter(same_key),
        ConstraintName::Unnamed(_) | ConstraintName::Absent => {
            let mut matches = on_table().filter(|k| k.name.is_none()).filter(same_key);
            match (matches.next(), matches.next()) {
                (Some(only), None) => Some(only),
                _ => None,
            }
        }
        ConstraintName::Unknown => None,
    }
}

/// The upgrade() half of an autogenerate revert pair: `drop` comes first, with only other key
/// drops and creates (and comments) between it and `create`, and the create changes the
/// delete rule the key has now (`current`) without renaming the key. A hand-written pair that
/// renames a key, or drops it around an `alter_column` of its type, does more than revert.
fn undoes_only_ondelete(
    text: &str,
    migration: &Migration,
    create: &FkSite,
    drop: &DropSite,
    current: Action,
) -> bool {
    let renames = matches!(
        (&drop.name, &create.name),
        (ConstraintName::Known(old), ConstraintName::Known(new)) if old != new
    );
    let created = action_of(create.ondelete_text());
    !renames
        && created.is_some_and(|a| a != current)
        && create
            .statement
            .is_some_and(|c| only_key_statements_between(text, migration, drop.statement, c))
}

/// `first` and `second` are statements of one block, `first` above, with nothing between them
/// but foreign key drops and creates, comments and blank lines: as autogenerate lays them out.
fn only_key_statements_between(
    text: &str,
    migration: &Migration,
    first: StatementId,
    second: StatementId,
) -> bool {
    let (first, second) = (&migration.statements[first], &migration.statements[second]);
    if first.block != second.block || first.lines.end > second.lines.start {
        return false;
    }
    let key_statements: Vec<&Range<usize>> = migration
        .drops
        .iter()
        .map(|d| d.statement)
        .chain(migration.sites.iter().filter_map(|s| s.statement))
        .map(|s| &migration.statements[s].lines)
        .collect();
    let mut at = first.lines.end;
    while at < second.lines.start {
        if let Some(statement) = key_statements.iter().find(|r| r.contains(&at)) {
            at = statement.end;
            continue;
        }
        let end = text[at..second.lines.start]
            .find('\n')
            .map_or(second.lines.start, |i| at + i + 1);
        let line = text[at..end].trim();
        if !(line.is_empty() || line.starts_with('#')) {
            return false;
        }
        at = end;
    }
    true
}

/// Why a revert pair only undoes a rule that should stand, or None when the pair should set
/// the policy's rule. The database's current rule (`current`, as the mirror or history writes
/// it) stands when the policy gives it, or when `judge` would keep it as a written rule over a
/// heuristic (rules 4 to 7) without a finding: a hand-set RESTRICT the model doesn't state is
/// not reverted by the next autogenerate. A relationship that deletes the rows (rule 3) still
/// wins, so that evidence added since the rule was set reaches the database; and a rule with a
/// finding (SET NULL on a column now NOT NULL) is what the pair is there to fix. A create that
/// writes another rule than the current one is a change someone (or a model value the reader
/// can't evaluate) asked for: autogenerate's revert writes none when the model states none, so
/// only model or settings evidence removes such a pair.
fn current_rule_stands(
    schema: &Schema,
    config: &Config,
    key: KeyRef,
    decision: &policy::Decision,
    (current, written): (Option<&str>, Option<&str>),
    source: &str,
) -> Option<String> {
    let current_action = action_of(current)?;
    if written.is_some_and(|w| Action::parse(w) != Some(current_action))
        && !decision.rule.is_explicit()
    {
        return None;
    }
    if decision.ondelete == current_action {
        return Some(format!(
            "revert pair removed: the database already has ON DELETE {current_action} ({source}) and the policy agrees ({})",
            decision.reason
        ));
    }
    if decision.rule == Rule::Relationship {
        return None;
    }
    let judgement = policy::judge(schema, config, key, current, None).ok()?;
    (judgement.decision.rule == Rule::Existing && judgement.findings.is_empty()).then(|| {
        format!(
            "revert pair removed: the database already has ON DELETE {current_action} ({source}), a rule someone chose, which heuristics do not override (the policy alone would say {}: {})",
            decision.ondelete, decision.reason
        )
    })
}

fn action_of(text: Option<&str>) -> Option<Action> {
    match text {
        None => Some(Action::NoAction),
        Some(t) => Action::parse(t),
    }
}

/// Revert pairs whose downgrade() has no usable mirror (hand-edited, or removed): the rules the
/// database has come from history instead. The pair goes when the policy agrees with them,
/// with whatever downgrade() statements undo it (the drop of the new key, the re-create of
/// the old one).
fn history_revert_pairs(
    text: &str,
    migration: &Migration,
    schema: &Schema,
    config: &Config,
    before: &KeySet,
    found: &[RevertPair],
) -> Vec<RevertPair> {
    let mut used: HashSet<StatementId> = found
        .iter()
        .flat_map(|p| p.statements.iter().copied())
        .collect();
    let mut pairs = Vec::new();
    for (index, create) in migration.sites.iter().enumerate() {
        let is_create = matches!(
            create.kind,
            SiteKind::CreateForeignKey | SiteKind::BatchCreateForeignKey
        );
        if create.section != Section::Upgrade
            || !is_create
            || create.skip.is_some()
            || found.iter().any(|p| p.create == index)
        {
            continue;
        }
        let (Some(statement), Some(key)) = (create.statement, key_ref(create, migration)) else {
            continue;
        };
        if used.contains(&statement) {
            continue;
        }
        let up_drop = migration.drops.iter().find(|d| {
            d.section == Section::Upgrade
                && d.table == create.table
                && !used.contains(&d.statement)
                && dropped_key(before, d, &create.columns, create.referent_table.as_deref())
                    .is_some()
        });
        let Some(up_drop) = up_drop else { continue };
        let old = dropped_key(
            before,
            up_drop,
            &create.columns,
            create.referent_table.as_deref(),
        )
        .expect("found above");
        let (Some(current_delete), Some(current_update)) = (
            action_of(old.ondelete.as_deref()),
            action_of(old.onupdate.as_deref()),
        ) else {
            continue;
        };
        let Ok(decision) = policy::decide(schema, config, key) else {
            continue;
        };
        let update_agrees = decision.onupdate.is_none_or(|u| u == current_update);
        let same_update = action_of(create.onupdate_text()) == Some(current_update);
        let source = format!("history: {}", old.origin);
        let Some(why) = current_rule_stands(
            schema,
            config,
            key,
            &decision,
            (old.ondelete.as_deref(), create.ondelete_text()),
            &source,
        ) else {
            continue;
        };
        if !update_agrees
            || !same_update
            || !create.options.is_empty()
            || !undoes_only_ondelete(text, migration, create, up_drop, current_delete)
        {
            continue;
        }
        let mut statements = vec![statement, up_drop.statement];
        // downgrade(): the drop of the key this create makes, and the re-create of the old one.
        let create_name = match &create.name {
            ConstraintName::Known(n) => Some(n.as_str()),
            _ => None,
        };
        let down_drop = migration.drops.iter().find(|d| {
            d.section == Section::Downgrade
                && d.table == create.table
                && !used.contains(&d.statement)
                && match (&d.name, create_name) {
                    (ConstraintName::Known(n), Some(wanted)) => n == wanted,
                    (ConstraintName::Unnamed(_), None) => true,
                    _ => false,
                }
        });
        let mirror = migration.sites.iter().find(|m| {
            m.section == Section::Downgrade
                && matches!(
                    m.kind,
                    SiteKind::CreateForeignKey | SiteKind::BatchCreateForeignKey
                )
                && m.table == create.table
                && m.columns == create.columns
                && m.referent_table == create.referent_table
                && m.statement.is_some_and(|s| !used.contains(&s))
        });
        statements.extend(down_drop.map(|d| d.statement));
        statements.extend(mirror.and_then(|m| m.statement));
        if !statements
            .iter()
            .all(|s| migration.statements[*s].removable)
        {
            continue;
        }
        used.extend(statements.iter().copied());
        let mut lines = vec![create.line, up_drop.line];
        lines.extend(down_drop.map(|d| d.line));
        lines.extend(mirror.map(|m| m.line));
        pairs.push(RevertPair {
            create: index,
            statements,
            lines,
            ondelete: current_delete,
            reason: why,
        });
    }
    pairs
}

/// A downgrade() `create_foreign_key` that puts back a key upgrade() dropped gets the rules the
/// key had before (from history), whatever the policy says today.
fn restore_old_rules(
    plan: &mut FilePlan,
    file: &SourceFile,
    migration: &Migration,
    before: &KeySet,
    removed: &HashSet<StatementId>,
) {
    for site in &migration.sites {
        let is_create = matches!(
            site.kind,
            SiteKind::CreateForeignKey | SiteKind::BatchCreateForeignKey
        );
        if site.section != Section::Downgrade
            || !is_create
            || site.skip.is_some()
            || site.statement.is_some_and(|s| removed.contains(&s))
        {
            continue;
        }
        let old = migration
            .drops
            .iter()
            .filter(|d| {
                d.section == Section::Upgrade
                    && d.table == site.table
                    && !removed.contains(&d.statement)
            })
            .find_map(|d| dropped_key(before, d, &site.columns, site.referent_table.as_deref()));
        let Some(old) = old else { continue };
        let current_delete = normalized_action(site.ondelete.as_ref());
        let current_update = normalized_action(site.onupdate.as_ref());
        let wanted = |old: &Option<String>, current: &Option<String>, present: bool| {
            if old == current {
                return None;
            }
            match old {
                Some(text) => Action::parse(text),
                // NO ACTION: only a keyword that is there needs rewriting.
                None => present.then_some(Action::NoAction),
            }
        };
        let ondelete = wanted(&old.ondelete, &current_delete, site.ondelete.is_some());
        let onupdate = wanted(&old.onupdate, &current_update, site.onupdate.is_some());
        if ondelete.is_none() && onupdate.is_none() {
            continue;
        }
        // A rule downgrade() already states and history contradicts is most often the rule of
        // the database autogenerate compared against, changed by hand since: say which one
        // goes, so that a rollback of that database is no surprise.
        let replaced: Vec<String> = [
            ("ondelete", &site.ondelete, ondelete),
            ("onupdate", &site.onupdate, onupdate),
        ]
        .into_iter()
        .filter_map(|(name, said, wanted)| {
            let said = said.as_ref()?;
            wanted?;
            Some(match &said.value {
                Some(value) => format!("{name}='{value}'"),
                None => format!("its {name}"),
            })
        })
        .collect();
        let instead = if replaced.is_empty() {
            String::new()
        } else {
            format!(
                ", not the {} it said (the rule of the database autogenerate compared against, where the migrations give the key another)",
                replaced.join(" and ")
            )
        };
        let mut key = report(
            site,
            Status::Fixed,
            format!(
                "downgrade() restores the rules the key had before (history: {}){instead}",
                old.origin
            ),
        );
        key.ondelete = ondelete.or(key.ondelete);
        key.onupdate = onupdate.or(key.onupdate);
        plan.edits.extend(keyword_edits(
            file, migration, site, None, onupdate, ondelete,
        ));
        plan.keys.push(key);
    }
}

/// Statement removals; a `with` block left empty goes whole, a function left empty keeps a `pass`.
fn removal_edits(
    file: &SourceFile,
    migration: &Migration,
    removed: &HashSet<StatementId>,
) -> Vec<Edit> {
    let mut emptied: BTreeMap<usize, usize> = BTreeMap::new();
    for id in removed {
        *emptied.entry(migration.statements[*id].block).or_default() += 1;
    }
    // Blocks are registered parents first, so walking ids downward settles children first.
    let mut removed_blocks: HashSet<usize> = HashSet::new();
    let mut pass_blocks: HashSet<usize> = HashSet::new();
    for block_id in (0..migration.blocks.len()).rev() {
        let block = &migration.blocks[block_id];
        let count = emptied.get(&block_id).copied().unwrap_or(0);
        if count == 0 || count < block.statement_count {
            continue;
        }
        match (&block.with_lines, block.parent) {
            (Some(_), Some(parent)) => {
                removed_blocks.insert(block_id);
                *emptied.entry(parent).or_default() += 1;
            }
            _ => {
                pass_blocks.insert(block_id);
            }
        }
    }
    let inside_removed = |mut block: usize| loop {
        if removed_blocks.contains(&block) {
            return true;
        }
        match migration.blocks[block].parent {
            Some(parent) => block = parent,
            None => return false,
        }
    };
    let mut edits = Vec::new();
    let mut passed: HashSet<usize> = HashSet::new();
    let nl = file.newline();
    let mut pass_edit = |block: usize, range: Range<usize>, edits: &mut Vec<Edit>| {
        if pass_blocks.contains(&block) && passed.insert(block) {
            let indent = &migration.blocks[block].indent;
            edits.push(Edit {
                range,
                content: format!("{indent}pass{nl}"),
            });
        } else {
            edits.push(Edit {
                range,
                content: String::new(),
            });
        }
    };
    let mut ids: Vec<&StatementId> = removed.iter().collect();
    ids.sort();
    for id in ids {
        let statement = &migration.statements[*id];
        if !inside_removed(statement.block) {
            pass_edit(statement.block, statement.lines.clone(), &mut edits);
        }
    }
    for block_id in &removed_blocks {
        let block = &migration.blocks[*block_id];
        let parent = block.parent.expect("with blocks have a parent");
        if !inside_removed(parent) {
            let mut lines = block.with_lines.clone().expect("with block");
            // Alembic follows each batch block with a blank line; it goes with the block, unless
            // it is what separates this function from the next statement outside it.
            if let Some(blank_end) = blank_line_after(&file.text, lines.end) {
                let indent = |at: usize| {
                    file.text[at..].len() - file.text[at..].trim_start_matches([' ', '\t']).len()
                };
                let next_is_inside = blank_end < file.text.len()
                    && !file.text[blank_end..]
                        .trim_start_matches([' ', '\t'])
                        .starts_with(['\n', '\r'])
                    && indent(blank_end) >= indent(lines.start);
                if next_is_inside {
                    lines.end = blank_end;
                }
            }
            pass_edit(parent, lines, &mut edits);
        }
    }
    edits
}

/// Unnamed `create_foreign_key(None, ...)` fails in SQLite batch mode and leaves downgrade()'s
/// `drop_constraint(None, ...)` unable to run. Name each from the models' naming convention or
/// PostgreSQL's default, and give the matching unnamed drop in downgrade() the same name.
fn name_unnamed(
    plan: &mut FilePlan,
    text: &str,
    migration: &Migration,
    schema: &Schema,
    (removed, before): (&HashSet<StatementId>, Option<&KeySet>),
    suppressor: &mut Suppressor,
) {
    let alive = |statement: Option<StatementId>| statement.is_none_or(|s| !removed.contains(&s));
    let mut downgrade_drops: HashMap<Option<String>, Vec<&DropSite>> = HashMap::new();
    for drop in migration
        .drops
        .iter()
        .filter(|d| d.section == Section::Downgrade && alive(Some(d.statement)))
    {
        if matches!(drop.name, ConstraintName::Unnamed(_)) {
            downgrade_drops
                .entry(drop.table.clone())
                .or_default()
                .push(drop);
        }
    }
    // Alembic writes downgrade() in reverse: the last unnamed create on a table in upgrade()
    // is undone by the first unnamed drop on that table in downgrade().
    // The name is None for a suppressed create: it and its matching drop stay as they are.
    let mut upgrade_creates: HashMap<Option<String>, Vec<(&FkSite, Option<String>)>> =
        HashMap::new();
    // Names already taken in each function, so two keys never get the same one (PostgreSQL
    // itself would number the second `..._fkey1`).
    let mut taken: HashMap<Section, HashSet<String>> = HashMap::new();
    for site in &migration.sites {
        if let ConstraintName::Known(name) = &site.name {
            taken.entry(site.section).or_default().insert(name.clone());
        }
    }
    for site in &migration.sites {
        let ConstraintName::Unnamed(range) = &site.name else {
            continue;
        };
        // Only calls the tool reads completely, in upgrade() or downgrade(), are named.
        if !matches!(
            site.kind,
            SiteKind::CreateForeignKey | SiteKind::BatchCreateForeignKey
        ) || !alive(site.statement)
            || site.skip.is_some()
            || site.section == Section::Other
            || site.table.is_none()
            || site.columns.is_empty()
        {
            continue;
        }
        if let Some(why) = suppressor.check(site.line) {
            plan.suppressed
                .push((site.line, format!("naming the unnamed foreign key ({why})")));
            if site.section == Section::Upgrade {
                upgrade_creates
                    .entry(site.table.clone())
                    .or_default()
                    .push((site, None));
            }
            continue;
        }
        let taken = taken.entry(site.section).or_default();
        let base = constraint_name(schema, site);
        let name = (0..)
            .map(|n| {
                if n == 0 {
                    base.clone()
                } else {
                    format!("{base}{n}")
                }
            })
            .find(|candidate| !taken.contains(candidate))
            .expect("an unbounded range has a free name");
        taken.insert(name.clone());
        let literal = name_literal(schema, migration, site, &name);
        plan.edits.push(Edit {
            range: range.clone(),
            content: literal,
        });
        plan.notes
            .push((site.line, format!("named the unnamed foreign key {name}")));
        if site.section == Section::Upgrade {
            upgrade_creates
                .entry(site.table.clone())
                .or_default()
                .push((site, Some(name)));
        }
    }
    for (table, creates) in upgrade_creates {
        let drops = downgrade_drops.remove(&table).unwrap_or_default();
        if drops.len() != creates.len() {
            for drop in &drops {
                unnamed_drop_finding(plan, suppressor, drop, "drop_constraint(None, ...) cannot run: which unnamed key it drops is ambiguous; name it by hand".into());
            }
            continue;
        }
        for (drop, (site, name)) in drops.iter().zip(creates.iter().rev()) {
            let ConstraintName::Unnamed(range) = &drop.name else {
                continue;
            };
            let Some(name) = name else { continue };
            if let Some(why) = suppressor.check(drop.line) {
                plan.suppressed.push((
                    drop.line,
                    format!("naming the matching drop_constraint {name} ({why})"),
                ));
                continue;
            }
            name_drop(
                plan,
                migration,
                drop,
                range,
                name_literal(schema, migration, site, name),
                format!("named the matching drop_constraint {name}"),
            );
        }
    }
    for drops in downgrade_drops.into_values() {
        for drop in drops {
            unnamed_drop_finding(plan, suppressor, drop, "drop_constraint(None, ...) cannot run (\"Constraint must have a name\"): no unnamed create_foreign_key in upgrade() matches it".into());
        }
    }
    // upgrade()'s unnamed drops, by table in file order: on SQLite they drop keys CREATE TABLE
    // made without a name, which batch mode can name as it reflects them.
    let mut upgrade_drops: Vec<(Option<String>, Vec<&DropSite>)> = Vec::new();
    for drop in migration.drops.iter().filter(|d| {
        d.section == Section::Upgrade
            && alive(Some(d.statement))
            && matches!(d.name, ConstraintName::Unnamed(_))
    }) {
        match upgrade_drops.iter_mut().find(|(t, _)| *t == drop.table) {
            Some((_, drops)) => drops.push(drop),
            None => upgrade_drops.push((drop.table.clone(), vec![drop])),
        }
    }
    let reflection = Reflection {
        migration,
        schema,
        removed,
        before,
    };
    for (table, drops) in upgrade_drops {
        let table = table.as_deref().unwrap_or("?");
        let suppressed = drops.iter().any(|d| suppressor.check(d.line).is_some());
        match reflected_names(&reflection, table, &drops) {
            Ok((batch, template, names)) if !suppressed => {
                let quote = migration.default_quote;
                let convention = format!(
                    "naming_convention={{{}: {}}}",
                    crate::parse::string_literal("fk", quote),
                    crate::parse::string_literal(&template, quote)
                );
                plan.edits
                    .extend(append_keywords_at(text, &batch.layout, &[convention]));
                for (drop, name) in drops.iter().zip(&names) {
                    let ConstraintName::Unnamed(range) = &drop.name else {
                        continue;
                    };
                    name_drop(
                        plan,
                        migration,
                        drop,
                        range,
                        crate::parse::string_literal(name, quote),
                        format!(
                            "named the drop_constraint {name}: batch_alter_table names the unnamed keys it reflects with naming_convention {template}"
                        ),
                    );
                }
            }
            outcome => {
                let why = outcome
                    .err()
                    .map_or(String::new(), |why| format!(" ({why})"));
                for drop in drops {
                    let message = format!(
                        "drop_constraint(None, ...) on {table} cannot run (\"Constraint must have a name\"); on SQLite pass a naming_convention to batch_alter_table{why}"
                    );
                    unnamed_drop_finding(plan, suppressor, drop, message);
                }
            }
        }
    }
}

/// An unnamed drop given its name (`literal`); Alembic's "constraint name is None" warning
/// above it no longer applies.
fn name_drop(
    plan: &mut FilePlan,
    migration: &Migration,
    drop: &DropSite,
    range: &Range<usize>,
    literal: String,
    note: String,
) {
    plan.edits.push(Edit {
        range: range.clone(),
        content: literal,
    });
    if let Some(warning) = &migration.statements[drop.statement].warning {
        plan.edits.push(Edit {
            range: warning.clone(),
            content: String::new(),
        });
    }
    plan.notes.push((drop.line, note));
}

/// What `reflected_names` reads besides the drops.
struct Reflection<'a> {
    migration: &'a Migration,
    schema: &'a Schema,
    removed: &'a HashSet<StatementId>,
    /// The keys before this revision: which of the table's keys SQLite holds unnamed.
    before: Option<&'a KeySet>,
}

/// How upgrade()'s unnamed `drops` on `table` can run on SQLite: batch mode reflects the table
/// and names the keys that come back unnamed by the block's `naming_convention`; each drop
/// then gives the name one of the dropped keys gets. The dropped keys are those downgrade()
/// creates again on the table (Alembic writes it as upgrade()'s mirror), less the ones a named
/// drop in upgrade() removed. The drops all go, so which drop names which key does not matter.
/// The convention names every unnamed key of the table, kept ones too, and the batch keeps
/// one key per name: history must show that no two get the same name. A drop's name must also
/// be the one downgrade() gives the key back, or upgrade() after a downgrade() can't find it.
/// Returns the block's call, the template, and a name per drop; Err says why not.
fn reflected_names<'m>(
    cx: &Reflection<'m>,
    table: &str,
    drops: &[&'m DropSite],
) -> Result<(&'m crate::migrations::BatchCall, String, Vec<String>), String> {
    let batch = drops[0].batch.as_ref().ok_or("not in a batch block")?;
    if drops
        .iter()
        .any(|d| d.batch.as_ref().is_none_or(|b| b.start != batch.start))
    {
        return Err("the drops are not all in one batch block".into());
    }
    if batch.has_naming_convention {
        return Err("batch_alter_table already passes naming_convention".into());
    }
    let named_drops: HashSet<&str> = cx
        .migration
        .drops
        .iter()
        .filter(|d| d.section == Section::Upgrade && d.table.as_deref() == Some(table))
        .filter_map(|d| match &d.name {
            ConstraintName::Known(name) => Some(name.as_str()),
            _ => None,
        })
        .collect();
    let restored: Vec<&FkSite> = cx
        .migration
        .sites
        .iter()
        .filter(|s| {
            s.section == Section::Downgrade
                && matches!(
                    s.kind,
                    SiteKind::CreateForeignKey | SiteKind::BatchCreateForeignKey
                )
                && s.table.as_deref() == Some(table)
                && s.statement.is_some_and(|st| !cx.removed.contains(&st))
                && !matches!(&s.name, ConstraintName::Known(n) if named_drops.contains(n.as_str()))
        })
        .collect();
    if restored.len() != drops.len()
        || restored
            .iter()
            .any(|s| s.columns.is_empty() || s.referent_table.is_none())
    {
        return Err("downgrade() does not create exactly the keys it drops again".into());
    }
    let before = cx
        .before
        .ok_or("the table's other keys are unknown: no history before this revision")?;
    let (schema_name, bare) = crate::history::split_qualified(table);
    let on_table: Vec<&ExistingKey> = before
        .keys
        .iter()
        .filter(|k| k.table == bare && k.schema == schema_name)
        .collect();
    let render = |template: &str, key: &ExistingKey| {
        render_convention(
            template,
            &bare,
            &key.columns,
            &key.referent_table,
            &key.referent_columns,
        )
    };
    // Batch mode reflects the table alone: a token naming the referred columns can't be
    // filled in there (SQLAlchemy raises NoReferencedTableError).
    let usable = |template: &&str| {
        !template.contains("referred_column")
            && on_table
                .iter()
                .all(|k| k.name.is_some() || render(template, k).is_some())
    };
    let refused = cx
        .schema
        .fk_naming_convention
        .as_deref()
        .filter(|t| !usable(t));
    let template = cx
        .schema
        .fk_naming_convention
        .as_deref()
        .filter(usable)
        .unwrap_or(crate::repair::DEFAULT_FK_CONVENTION);
    // A key history names may still be unnamed in SQLite: history names keys by today's
    // models' convention, which may be younger than the key (autogenerate's `None` says it
    // is). Its reflected name is then the convention's; both names count as taken.
    let mut owners: HashMap<String, usize> = HashMap::new();
    for (index, key) in on_table.iter().enumerate() {
        let rendered = render(template, key);
        if rendered.is_none() && key.name.is_none() {
            return Err("the table's keys give no name".into());
        }
        for name in key.name.iter().chain(rendered.iter()) {
            if owners
                .insert(name.clone(), index)
                .is_some_and(|other| other != index)
            {
                return Err(format!(
                    "two keys of {table} would get the name {name}, and the batch keeps one of them"
                ));
            }
        }
    }
    let mut names = Vec::new();
    for site in &restored {
        let referent = policy::bare_name(site.referent_table.as_deref().unwrap_or(""));
        let name = on_table
            .iter()
            .filter(|k| k.columns == site.columns && k.referent_table == referent)
            .find_map(|k| {
                let rendered = render(template, k)?;
                k.name
                    .as_ref()
                    .is_none_or(|n| *n == rendered)
                    .then_some(rendered)
            })
            .ok_or_else(|| match refused {
                // History names the keys by the models' convention, which batch reflection
                // can't fill in: the fallback can't give those names.
                Some(convention) => format!(
                    "the models' naming convention {convention:?} can't name the keys a batch reflects (it names referred columns, or leaves a key of the table unnamed)"
                ),
                None => "history does not hold the keys it drops as unnamed".to_string(),
            })?;
        let given_back = match &site.name {
            ConstraintName::Known(n) => n.clone(),
            ConstraintName::Unnamed(_) => constraint_name(cx.schema, site),
            _ => {
                return Err("downgrade() gives a key back under a name the tool can't read".into());
            }
        };
        if given_back != name {
            return Err(format!(
                "the batch would name the key {name}, but downgrade() gives it back as {given_back}"
            ));
        }
        names.push(name);
    }
    Ok((batch, template.to_string(), names))
}

fn unnamed_drop_finding(
    plan: &mut FilePlan,
    suppressor: &mut Suppressor,
    drop: &DropSite,
    message: String,
) {
    match suppressor.check(drop.line) {
        Some(why) => plan.suppressed.push((
            drop.line,
            format!("finding[unnamed-drop] {message} ({why})"),
        )),
        None => plan.findings.push(FileFinding {
            line: drop.line,
            code: "unnamed-drop",
            message,
        }),
    }
}

/// The name the database will know the key by.
pub fn constraint_name(schema: &Schema, site: &FkSite) -> String {
    let table = site.table.as_deref().unwrap_or_default();
    let bare = policy::bare_name(table);
    if let Some(template) = &schema.fk_naming_convention
        && let Some(name) = render_convention(
            template,
            bare,
            &site.columns,
            site.referent_table.as_deref().unwrap_or(""),
            &site.referent_columns,
        )
    {
        return name;
    }
    // PostgreSQL's own choice for an unnamed key, cut to 63 bytes the way PostgreSQL cuts it.
    crate::history::postgres_fk_name(bare, &site.columns, &|_| false)
}

/// `fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s` -> the name, read the way
/// SQLAlchemy reads it (Python's `%` formatting with a mapping, widths and precisions
/// included). None when the template uses a token that can't be known here, or a `%` that is
/// neither `%%` nor a `%(token)...s`: Python raises on most (a stray `%`, `%'`, `%(token)d`),
/// and `%(token)r` / `%(token)a` quote and escape as this does not, so no name is claimed.
pub fn render_convention(
    template: &str,
    table: &str,
    columns: &[String],
    referent: &str,
    referent_columns: &[String],
) -> Option<String> {
    let referent = policy::bare_name(referent);
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find('%') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        if let Some(tail) = after.strip_prefix('%') {
            out.push('%');
            rest = tail;
            continue;
        }
        let (token, tail) = after.strip_prefix('(')?.split_once(')')?;
        let (spec, tail) = StrSpec::read(tail)?;
        let value = match token {
            "table_name" => table.to_string(),
            "column_0_name" => columns.first()?.clone(),
            "column_0N_name" => columns.concat(),
            "column_0_N_name" => columns.join("_"),
            "column_0_label" => format!("{table}_{}", columns.first()?),
            "column_0N_label" => columns.iter().map(|c| format!("{table}_{c}")).collect(),
            "column_0_N_label" => columns
                .iter()
                .map(|c| format!("{table}_{c}"))
                .collect::<Vec<_>>()
                .join("_"),
            "column_0_key" => columns.first()?.clone(),
            "referred_table_name" => referent.to_string(),
            "referred_column_0_name" => referent_columns.first()?.clone(),
            "referred_column_0N_name" => referent_columns.concat(),
            "referred_column_0_N_name" => referent_columns.join("_"),
            _ => return None,
        };
        spec.push(&mut out, &value);
        rest = tail;
    }
    out.push_str(rest);
    Some(out)
}

/// What follows `%(token)` in a template: Python's conversion flags, minimum width and
/// precision, then `s` (the only conversion that keeps a name as it is: `r` and `a` add
/// quotes and escapes, the numeric ones raise TypeError on a string).
const MAX_NAME_WIDTH: usize = 1024;

#[derive(Debug, Default, PartialEq)]
struct StrSpec {
    left: bool,
    width: usize,
    precision: Option<usize>,
}

impl StrSpec {
    /// The spec at the start of `text` and the text after it; None when Python would not
    /// render a string with it.
    fn read(text: &str) -> Option<(StrSpec, &str)> {
        let mut spec = StrSpec::default();
        let mut rest = text;
        // `0`, `#`, ` ` and `+` change numbers only.
        while let Some(flag) = rest.chars().next().filter(|c| "-0# +".contains(*c)) {
            spec.left |= flag == '-';
            rest = &rest[1..];
        }
        let digits = |s: &str| s.bytes().take_while(u8::is_ascii_digit).count();
        let n = digits(rest);
        spec.width = if n == 0 { 0 } else { rest[..n].parse().ok()? };
        // No database takes a name this long; a template asking for one names no key (and
        // must not make the tool build a gigabyte of spaces).
        if spec.width > MAX_NAME_WIDTH {
            return None;
        }
        rest = &rest[n..];
        if let Some(after) = rest.strip_prefix('.') {
            let n = digits(after);
            // `%.s` is precision 0; past a C int, Python raises "precision too big".
            let precision: usize = if n == 0 { 0 } else { after[..n].parse().ok()? };
            if precision > i32::MAX as usize {
                return None;
            }
            spec.precision = Some(precision);
            rest = &after[n..];
        }
        // One length modifier is accepted and ignored (a second is an unsupported character).
        rest = rest.strip_prefix(['h', 'l', 'L']).unwrap_or(rest);
        let tail = rest.strip_prefix('s')?;
        Some((spec, tail))
    }

    /// `value` cut to the precision and padded with spaces to the width, both counted in
    /// characters as Python counts them.
    fn push(&self, out: &mut String, value: &str) {
        let cut = match self.precision {
            Some(p) => value
                .char_indices()
                .nth(p)
                .map_or(value, |(i, _)| &value[..i]),
            None => value,
        };
        let pad = self.width.saturating_sub(cut.chars().count());
        if !self.left {
            out.extend(std::iter::repeat_n(' ', pad));
        }
        out.push_str(cut);
        if self.left {
            out.extend(std::iter::repeat_n(' ', pad));
        }
    }
}

fn name_literal(schema: &Schema, migration: &Migration, site: &FkSite, name: &str) -> String {
    let literal = crate::parse::string_literal(name, site.quote);
    // With a naming convention, op.f() marks the name as final so SQLAlchemy does not apply
    // the convention to it a second time.
    if schema.fk_naming_convention.is_some() {
        format!("{}.f({literal})", migration.op_alias)
    } else {
        literal
    }
}

/// Apply sorted, non-overlapping edits in one pass. Returns the new text and the edits that
/// were skipped because they overlapped one already applied.
pub fn apply(text: &str, mut edits: Vec<Edit>) -> (String, Vec<Edit>) {
    edits.sort_by_key(|e| (e.range.start, e.range.end));
    edits.dedup();
    let mut out = String::with_capacity(text.len() + 64);
    let mut cursor = 0;
    let mut skipped = Vec::new();
    for edit in edits {
        if edit.range.start < cursor {
            skipped.push(edit);
            continue;
        }
        out.push_str(&text[cursor..edit.range.start]);
        out.push_str(&edit.content);
        cursor = edit.range.end;
    }
    out.push_str(&text[cursor..]);
    (out, skipped)
}

/// The fixed text, or an error when the edits would break the file's syntax.
pub fn fixed_text(file: &SourceFile, mut edits: Vec<Edit>) -> Result<String> {
    edits.sort_by_key(|e| (e.range.start, e.range.end));
    edits.dedup();
    let (text, skipped) = apply(&file.text, edits.clone());
    if !skipped.is_empty() {
        bail!(
            "{}: {} overlapping edits; refusing to write a partial fix",
            file.path.display(),
            skipped.len()
        );
    }
    if !parses_cleanly_after(file, &text, &edits) {
        bail!(
            "{}: the fixed file would not parse; nothing written (please report this)",
            file.path.display()
        );
    }
    Ok(text)
}

/// True when the text with `edits` applied still parses and holds nothing CPython refuses.
/// `edits` are sorted, non-overlapping and all applied to give `new_text`.
///
/// Nearly every edit lands inside one call's argument list (a keyword added, `None` given a
/// name). Inside brackets Python's grammar sees no indentation and no statement boundary, and
/// the list's own `(` and `)` keep its tokens from joining the text around it; so a file that
/// parsed cleanly still does after such edits exactly when each edited list, parsed alone as
/// the arguments of a call, does. Those lists are a few hundred bytes where the file is
/// thousands. Any other edit (a statement removed, an import added) re-parses the file.
/// `--write` parses the whole fixed text once more before writing it (see `cli::finish`).
fn parses_cleanly_after(file: &SourceFile, new_text: &str, edits: &[Edit]) -> bool {
    // Edits copy indentation from lines already there, but an inserted line must not be the
    // one that takes the scanner past its limit.
    if !crate::parse::indentation_is_safe(new_text) {
        return false;
    }
    match edited_argument_lists(file, edits) {
        Some(lists) => lists
            .iter()
            .all(|list| argument_list_parses_cleanly(&file.text, list.clone(), edits)),
        None => file_reparses_cleanly(file, new_text, edits),
    }
}

/// The outermost argument lists holding the edits, each edit strictly between a list's
/// brackets; None when some edit is not inside one, or inside one that sits in a string
/// (an f-string's replacement field is parsed with its quotes in view).
fn edited_argument_lists(file: &SourceFile, edits: &[Edit]) -> Option<Vec<Range<usize>>> {
    let k = crate::parse::kinds();
    let root = file.tree.root_node();
    let mut lists: Vec<Range<usize>> = Vec::new();
    for edit in edits {
        let mut list = None;
        for node in crate::parse::nodes_holding(root, edit.range.clone()) {
            let span = node.byte_range();
            if !(span.start < edit.range.start && edit.range.end < span.end) {
                continue;
            }
            if node.kind_id() == k.string || node.kind_id() == k.interpolation {
                return None;
            }
            // Going down: the last list seen is the innermost.
            if node.kind_id() == k.argument_list {
                list = Some(span);
            }
        }
        lists.push(list?);
    }
    // A list inside another edited list is checked as part of the outer one.
    let mut outermost: Vec<Range<usize>> = Vec::new();
    for list in &lists {
        let inside_another = lists
            .iter()
            .any(|o| o != list && o.start <= list.start && list.end <= o.end);
        if !inside_another && !outermost.contains(list) {
            outermost.push(list.clone());
        }
    }
    Some(outermost)
}

/// The argument list at `list` in `text`, with the edits that fall inside it applied, parsed
/// alone as `_(...)`: clean, a single call whose arguments are the whole list, and no keyword
/// repeated in a list an edit touched.
fn argument_list_parses_cleanly(text: &str, list: Range<usize>, edits: &[Edit]) -> bool {
    let inside: Vec<Edit> = edits
        .iter()
        .filter(|e| list.start <= e.range.start && e.range.end <= list.end)
        .map(|e| Edit {
            range: e.range.start - list.start + 1..e.range.end - list.start + 1,
            content: e.content.clone(),
        })
        .collect();
    let fragment = format!("_{}", &text[list]);
    let (fragment, _) = apply(&fragment, inside.clone());
    let Some(tree) = crate::parse::parse_python(&fragment, None) else {
        return false;
    };
    let root = tree.root_node();
    let arguments = root
        .named_child(0)
        .filter(|_| root.named_child_count() == 1 && !root.has_error())
        .and_then(|statement| statement.named_child(0))
        .filter(|call| call.kind_id() == crate::parse::kinds().call)
        .and_then(|call| call.field("arguments"));
    let Some(arguments) = arguments else {
        return false;
    };
    if arguments.kind_id() != crate::parse::kinds().argument_list
        || arguments.byte_range() != (1..fragment.len())
    {
        return false;
    }
    crate::parse::edited_tree_is_clean(&tree, &fragment, &new_ranges(&inside))
}

/// `parses_cleanly(new_text)`, re-parsing incrementally from the file's tree: tree-sitter
/// reuses the untouched subtrees and gives the tree a full parse would.
/// `edits` are told to the tree last first, so that each one's offsets in the original text
/// are still the tree's.
fn file_reparses_cleanly(file: &SourceFile, new_text: &str, edits: &[Edit]) -> bool {
    let mut tree = file.tree.clone();
    for edit in edits.iter().rev() {
        let start_position = point_at(file, edit.range.start);
        tree.edit(&tree_sitter::InputEdit {
            start_byte: edit.range.start,
            old_end_byte: edit.range.end,
            new_end_byte: edit.range.start + edit.content.len(),
            start_position,
            old_end_position: point_at(file, edit.range.end),
            new_end_position: advance(start_position, &edit.content),
        });
    }
    let Some(new_tree) = crate::parse::parse_python(new_text, Some(&tree)) else {
        return false;
    };
    // An error node anywhere shows in the root's has_error; what CPython alone refuses (a
    // repeated keyword) can only appear in an argument list an edit touched, so the nodes
    // around the edits are all that is checked.
    crate::parse::edited_tree_is_clean(&new_tree, new_text, &new_ranges(edits))
}

/// Where sorted, non-overlapping edits land in the text they produce.
fn new_ranges(edits: &[Edit]) -> Vec<Range<usize>> {
    let mut changed: Vec<Range<usize>> = Vec::with_capacity(edits.len());
    let mut shift: isize = 0;
    for edit in edits {
        let start = edit.range.start.saturating_add_signed(shift);
        changed.push(start..start + edit.content.len());
        shift += edit.content.len() as isize - edit.range.len() as isize;
    }
    changed
}

fn point_at(file: &SourceFile, byte: usize) -> tree_sitter::Point {
    tree_sitter::Point {
        row: file.line_of(byte) - 1,
        column: byte - file.line_start(byte),
    }
}

fn advance(mut point: tree_sitter::Point, text: &str) -> tree_sitter::Point {
    match text.rfind('\n') {
        Some(last) => {
            point.row += memchr::memchr_iter(b'\n', text.as_bytes()).count();
            point.column = text.len() - last - 1;
        }
        None => point.column += text.len(),
    }
    point
}

/// Write through a temp file in the same directory and a rename, so a crash leaves the old file
/// or the new one, never half of one. A symlink is followed: its target is replaced, the link kept.
pub fn write_atomically(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    let target: PathBuf = std::fs::canonicalize(path)
        .with_context(|| format!("{}: cannot resolve", path.display()))?;
    let dir = target.parent().context("a file has a parent directory")?;
    let metadata =
        std::fs::metadata(&target).with_context(|| format!("{}: cannot stat", path.display()))?;
    let permissions = metadata.permissions();
    // A rename would replace a read-only file without complaint (and root ignores the bits):
    // honour them as an editor does.
    if permissions.readonly() {
        bail!("{}: read-only file; not written", path.display());
    }
    let mut temp = tempfile::Builder::new()
        .prefix(".fix-migrations-")
        .tempfile_in(dir)
        .with_context(|| {
            format!(
                "{}: cannot create a temporary file beside it",
                path.display()
            )
        })?;
    temp.write_all(text.as_bytes())
        .with_context(|| format!("{}: cannot write", path.display()))?;
    temp.as_file()
        .sync_all()
        .with_context(|| format!("{}: cannot sync", path.display()))?;
    // The owner first: a chown clears set-id bits that the permissions then restore.
    keep_owner(temp.as_file(), &metadata);
    std::fs::set_permissions(temp.path(), permissions)
        .with_context(|| format!("{}: cannot keep permissions", path.display()))?;
    temp.persist(&target)
        .map_err(|e| anyhow::anyhow!("{}: cannot replace: {}", path.display(), e.error))?;
    Ok(())
}

/// The new file is created by whoever runs the tool; give it the old file's owner and group,
/// as `sed -i` does. Root can always; another user can keep a group they belong to, and
/// otherwise the file becomes theirs, which is what any atomic replace by them gives.
#[cfg(unix)]
fn keep_owner(file: &std::fs::File, old: &std::fs::Metadata) {
    use std::os::unix::fs::{MetadataExt, fchown};
    let Ok(new) = file.metadata() else { return };
    if (new.uid(), new.gid()) == (old.uid(), old.gid()) {
        return;
    }
    if fchown(file, Some(old.uid()), Some(old.gid())).is_err() {
        let _ = fchown(file, None, Some(old.gid()));
    }
}

#[cfg(not(unix))]
fn keep_owner(_file: &std::fs::File, _old: &std::fs::Metadata) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_edits_are_skipped() {
        let edits = vec![
            Edit {
                range: 0..3,
                content: "A".into(),
            },
            Edit {
                range: 2..4,
                content: "B".into(),
            },
            Edit {
                range: 5..5,
                content: "C".into(),
            },
        ];
        let (text, skipped) = apply("abcdef", edits);
        assert_eq!(text, "AdeCf");
        assert_eq!(skipped.len(), 1);
    }

    const MIGRATION: &str = "def upgrade():\n    op.create_table('post',\n    sa.Column('author_id', sa.Integer(), nullable=False),\n    sa.ForeignKeyConstraint(['author_id'], ['users.id'], ),\n    )\n";

    /// MIGRATION parsed, and an edit putting `content` in place of the space in
    /// `['users.id'], )`.
    fn edit_in_the_gap(content: &str) -> (SourceFile, Edit) {
        let file = crate::parse::parse_text(Path::new("m.py"), MIGRATION.to_string()).unwrap();
        let at = MIGRATION.find("], )").unwrap() + 2;
        let edit = Edit {
            range: at..at + 1,
            content: content.into(),
        };
        (file, edit)
    }

    fn fixed_with(content: &str) -> Result<String> {
        let (file, edit) = edit_in_the_gap(content);
        fixed_text(&file, vec![edit])
    }

    #[test]
    fn an_edit_inside_one_argument_list_is_checked_there() {
        let (file, edit) = edit_in_the_gap(" ondelete='CASCADE'");
        let list =
            edited_argument_lists(&file, &[edit]).expect("inside the constraint's arguments");
        assert_eq!(list.len(), 1);
        assert_eq!(
            &MIGRATION[list[0].clone()],
            "(['author_id'], ['users.id'], )"
        );
        let fixed = fixed_with(" ondelete='CASCADE'").unwrap();
        assert!(fixed.contains("['users.id'], ondelete='CASCADE')"));
        assert!(crate::parse::parses_cleanly(&fixed));
    }

    #[test]
    fn edits_that_break_the_argument_list_are_refused() {
        // (edit, whether the whole file would still parse)
        for (bad, whole_file_parses) in [
            (" ondelete=", false),
            (" ondelete='CASCADE', ondelete='SET NULL'", false),
            (" 'x' 'y' =1", false),
            (" )\n    op.execute('x'", false),
            (" ondelete='CASCADE'))", false),
            (" lambda: (", false),
            // Closes the constraint's list early and adds an argument to the outer call: the
            // file parses, but the edit left the list it was meant for. Refused all the same.
            (" ), print(", true),
        ] {
            let result = fixed_with(bad);
            assert!(result.is_err(), "{bad:?} was accepted: {result:?}");
            let (_, edit) = edit_in_the_gap(bad);
            let (whole, _) = apply(MIGRATION, vec![edit]);
            assert_eq!(
                crate::parse::parses_cleanly(&whole),
                whole_file_parses,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn edits_outside_an_argument_list_or_inside_a_string_reparse_the_file() {
        let file = crate::parse::parse_text(
            Path::new("m.py"),
            "x = f'{g(a=1)}'\nop.drop_constraint(None, 't')\n".to_string(),
        )
        .unwrap();
        // Inside an f-string's replacement field.
        let at = file.text.find("a=1").unwrap() + 3;
        let inside_string = Edit {
            range: at..at,
            content: ", b=2".into(),
        };
        assert_eq!(
            edited_argument_lists(&file, std::slice::from_ref(&inside_string)),
            None
        );
        assert!(fixed_text(&file, vec![inside_string]).is_ok());
        // A whole statement removed.
        let start = file.text.find("op.drop").unwrap();
        let removal = Edit {
            range: start..file.text.len(),
            content: String::new(),
        };
        assert_eq!(
            edited_argument_lists(&file, std::slice::from_ref(&removal)),
            None
        );
        assert!(fixed_text(&file, vec![removal]).is_ok());
        // A repeated keyword inside the f-string is still caught by the file's re-parse.
        let repeated = Edit {
            range: at..at,
            content: ", a=2".into(),
        };
        assert!(fixed_text(&file, vec![repeated]).is_err());
    }

    #[test]
    fn naming_convention_tokens() {
        let cols = vec!["order_id".to_string()];
        let name = render_convention(
            "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "order_line",
            &cols,
            "sales.order",
            &["id".to_string()],
        );
        assert_eq!(name.as_deref(), Some("fk_order_line_order_id_order"));
        assert_eq!(
            render_convention("fk_%(constraint_name)s", "t", &cols, "p", &cols),
            None
        );
    }

    #[test]
    fn naming_convention_is_python_percent_formatting() {
        let cols = vec!["editor_id".to_string()];
        let render = |template| render_convention(template, "notes", &cols, "users", &cols);
        assert_eq!(
            render("fk_%(table_name)s_100%%").as_deref(),
            Some("fk_notes_100%")
        );
        // Python raises "unsupported format character" on these, and so does SQLAlchemy.
        assert_eq!(render("fk_%'x'(table_name)s"), None);
        assert_eq!(render("fk_%(table_name)d"), None);
        assert_eq!(render("fk_%"), None);
        // A template may legitimately put a quote in the name; the literal escapes it.
        assert_eq!(render("fk_'%(table_name)s'").as_deref(), Some("fk_'notes'"));
        // Flags, width and precision as Python applies them to a string (each expected value
        // is what `template % {"table_name": "notes"}` printed in CPython 3.11).
        assert_eq!(render("%(table_name)-7s|").as_deref(), Some("notes  |"));
        assert_eq!(render("%(table_name)7s|").as_deref(), Some("  notes|"));
        assert_eq!(render("%(table_name)07s|").as_deref(), Some("  notes|"));
        assert_eq!(render("%(table_name).3s|").as_deref(), Some("not|"));
        assert_eq!(render("%(table_name).s|").as_deref(), Some("|"));
        assert_eq!(render("%(table_name)-6.2s|").as_deref(), Some("no    |"));
        assert_eq!(render("%(table_name)ls|").as_deref(), Some("notes|"));
        assert_eq!(render("%(table_name)r"), None);
        assert_eq!(render("%(table_name)-5"), None);
        assert_eq!(render("%(table_name)99999999999s"), None);
        assert_eq!(render("%(table_name)lls"), None);
        assert_eq!(
            render("%(table_name).2147483647s").as_deref(),
            Some("notes")
        );
        assert_eq!(render("%(table_name).2147483648s"), None);
    }
}
