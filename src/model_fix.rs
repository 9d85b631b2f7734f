//! Step 6, model side (`--fix-models`): decisions -> edits of the model files. Alembic compares
//! ondelete / onupdate with the database, so a rule that lives only in a migration is reverted by
//! the next `alembic revision --autogenerate`. Writing the decided action into the call that
//! declares the key (`ForeignKey(...)`, SQLModel `Field(...)`, `ForeignKeyConstraint(...)`) makes
//! autogenerate render it and `alembic check` agree.
//!
//! The same rules as the migration side: edits only inside the call, in its own layout and
//! quotes; an explicit model value is never changed, except moving a misplaced `ondelete=` from
//! `Column()` / `mapped_column()` into the `ForeignKey()` (seed 000: a TypeError otherwise).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::config::Config;
use crate::fix::{self, Edit, FileFinding, FilePlan, KeyReport, Status};
use crate::migrations::{Section, SiteKind};
use crate::models::{self, KeyCall, KeySource, ModelForeignKey, Schema, Table};
use crate::parse::{self, SourceFile};
use crate::policy::{self, Action, KeyRef};
use crate::report::{self, FileOutcome};

/// What SQLModel's `Field(ondelete=...)` accepts (`OnDeleteType` in sqlmodel/main.py).
const FIELD_ACTIONS: &[Action] = &[Action::Cascade, Action::SetNull, Action::Restrict];

/// The model files' plans, by path. Files without a key keep an empty plan.
pub fn plan(
    sources: &[SourceFile],
    schema: &Schema,
    config: &Config,
) -> BTreeMap<PathBuf, FilePlan> {
    let mut plans: BTreeMap<PathBuf, FilePlan> = sources
        .iter()
        .map(|s| (s.path.clone(), FilePlan::default()))
        .collect();
    let by_path: HashMap<&Path, &SourceFile> =
        sources.iter().map(|s| (s.path.as_path(), s)).collect();
    // `# fix-migrations: ignore` on the line a key's call starts on leaves the call as it is,
    // as it does in a migration.
    let mut suppressors: HashMap<&Path, fix::Suppressor> = sources
        .iter()
        .map(|s| (s.path.as_path(), fix::Suppressor::read(s)))
        .collect();
    // Keys sharing one call (an Annotated alias, a mixin column) get one edit, or none when
    // they need different ones: (file, call start) -> (call span, keywords and report index).
    let mut shared: HashMap<(PathBuf, usize), SharedCall> = HashMap::new();
    for (table_key, table) in &schema.tables {
        for fk in &table.foreign_keys {
            let Some(source) = &fk.source else { continue };
            let Some(file) = by_path.get(&*fk.origin.file) else {
                continue;
            };
            let plan = plans.entry(file.path.clone()).or_default();
            let mut planned = plan_key(file, schema, config, table_key, table, fk, source);
            let suppressor = suppressors
                .get_mut(file.path.as_path())
                .expect("a suppressor per source");
            let call_line = file.line_of(source.range.start);
            planned.report = fix::suppress_key_on(planned.report, call_line, suppressor);
            if planned.report.status == Status::Suppressed {
                planned.edits.clear();
                planned.findings.clear();
            }
            planned.report.edits.clone_from(&planned.edits);
            plan.findings.extend(planned.findings);
            if !planned.edits.is_empty() {
                let call = shared
                    .entry((file.path.clone(), source.range.start))
                    .or_insert_with(|| SharedCall {
                        span: source.range.clone(),
                        uses: vec![],
                    });
                call.uses.push((planned.keywords, plan.keys.len()));
                plan.edits.extend(planned.edits);
            }
            plan.keys.push(planned.report);
        }
    }
    for ((path, _), call) in shared {
        if call.uses.windows(2).all(|w| w[0].0 == w[1].0) {
            continue;
        }
        let plan = plans.get_mut(&path).expect("planned above");
        let wanted: Vec<String> = call
            .uses
            .iter()
            .map(|(k, i)| format!("{} {}", label(&plan.keys[*i]), k.join(", ")))
            .collect();
        let message = format!(
            "one call declares several keys that need different actions ({}); give each column its own ForeignKey",
            wanted.join("; ")
        );
        for (_, index) in &call.uses {
            let key = &mut plan.keys[*index];
            key.status = Status::Finding;
            key.message = Some(message.clone());
        }
        let line = plan.keys[call.uses[0].1].line;
        plan.edits
            .retain(|e| !(call.span.start <= e.range.start && e.range.end <= call.span.end));
        plan.findings.push(FileFinding {
            line,
            code: "shared-key-conflict",
            message,
        });
    }
    for (path, plan) in plans.iter_mut() {
        if let Some(suppressor) = suppressors.get(path.as_path()) {
            plan.notices = suppressor.notices();
        }
        plan.keys.sort_by_key(|k| k.line);
        plan.findings.sort_by_key(|f| f.line);
        // A column with two ForeignKeys reports its misplaced ondelete once.
        plan.findings
            .dedup_by(|a, b| a.line == b.line && a.code == b.code && a.message == b.message);
    }
    plans
}

fn label(key: &KeyReport) -> String {
    format!(
        "{}.{}",
        key.table.as_deref().unwrap_or("?"),
        key.columns.join(",")
    )
}

struct SharedCall {
    span: std::ops::Range<usize>,
    uses: Vec<(Vec<String>, usize)>,
}

struct PlannedKey {
    report: KeyReport,
    edits: Vec<Edit>,
    /// The keyword arguments written (`ondelete='CASCADE'`), to compare keys sharing a call.
    keywords: Vec<String>,
    findings: Vec<FileFinding>,
}

fn site_kind(call: KeyCall) -> SiteKind {
    match call {
        KeyCall::ForeignKey => SiteKind::ModelForeignKey,
        KeyCall::Field => SiteKind::ModelField,
        KeyCall::Constraint => SiteKind::ModelConstraint,
        KeyCall::Helper => SiteKind::ModelHelper,
    }
}

fn plan_key(
    file: &SourceFile,
    schema: &Schema,
    config: &Config,
    table_key: &str,
    table: &Table,
    fk: &ModelForeignKey,
    source: &KeySource,
) -> PlannedKey {
    let mut report = KeyReport {
        line: fk.origin.line,
        function: Section::Model,
        kind: site_kind(source.call),
        table: Some(table_key.to_string()),
        columns: fk.columns.clone(),
        referent_table: Some(fk.referent_table.clone()),
        referent_columns: fk.referent_columns.clone(),
        ondelete: fk.ondelete.as_deref().and_then(Action::parse),
        onupdate: fk.onupdate.as_deref().and_then(Action::parse),
        rule: None,
        reason: String::new(),
        status: Status::Ok,
        message: None,
        trail: vec![],
        edits: vec![],
    };
    let mut planned = PlannedKey {
        report: report.clone(),
        edits: vec![],
        keywords: vec![],
        findings: vec![],
    };
    let finding = |code: &'static str, message: String| FileFinding {
        line: fk.origin.line,
        code,
        message,
    };
    let key = KeyRef {
        table: table_key,
        columns: &fk.columns,
        referent_table: &fk.referent_table,
        referent_columns: &fk.referent_columns,
        not_null_in_migration: false,
        server_default_in_migration: false,
    };
    let judgement = match policy::judge(schema, config, key, None, None) {
        Ok(j) => j,
        Err(policy::UnknownTable(t)) => {
            // Cannot happen for a table read from the models; report rather than panic.
            report.status = Status::Skipped;
            report.reason = format!("table {t} not found");
            report.message = Some(report.reason.clone());
            planned.report = report;
            return planned;
        }
    };
    let decision = judgement.decision;
    report.rule = Some(decision.rule);
    report.trail = decision.trail.clone();
    report.reason = decision.reason.clone();
    report.ondelete = Some(decision.ondelete);
    report.onupdate = decision.onupdate;
    let quote = source.quote.unwrap_or_else(|| dominant_quote(&file.text));

    // Seed 000: ondelete= on the column. Moving it is safe: the value is what the user wrote,
    // and SQLAlchemy refuses the model until it moves.
    if let Some(value) = &fk.misplaced_ondelete {
        planned.report = report;
        return move_misplaced(file, table, fk, source, value, planned);
    }

    if !judgement.findings.is_empty() {
        report.status = Status::Finding;
        let mut messages = Vec::new();
        for f in judgement.findings {
            let (code, message) = if f.code == "set-null-not-null" && source.call == KeyCall::Field
            {
                (
                    "set-null-not-optional",
                    format!(
                        "Field(ondelete=\"SET NULL\") on {}, which is not Optional: SQLModel raises RuntimeError('ondelete=\"SET NULL\" requires nullable=True'); make the field Optional or use CASCADE / RESTRICT",
                        label(&report)
                    ),
                )
            } else {
                (f.code, f.message)
            };
            messages.push(message.clone());
            planned.findings.push(finding(code, message));
        }
        report.message = Some(messages.join("; "));
        planned.report = report;
        return planned;
    }

    // A value the reader can't know (a variable, an explicit None) is not "already right".
    let unreadable = (source.has_ondelete && fk.ondelete.is_none())
        || (source.has_onupdate && fk.onupdate.is_none());
    let mut write_ondelete = (!source.has_ondelete).then_some(decision.ondelete);
    let mut write_onupdate = decision
        .onupdate
        .filter(|_| !source.has_onupdate && source.onupdate_keyword.is_some());
    if write_ondelete.is_none() && write_onupdate.is_none() && !unreadable {
        planned.report = report;
        return planned;
    }
    if source.has_splat || unreadable {
        report.status = Status::Skipped;
        report.reason = if source.has_splat {
            "`*args` / `**kwargs` may already carry ondelete".into()
        } else {
            "ondelete / onupdate is not a string literal".into()
        };
        report.message = Some(report.reason.clone());
        planned.report = report;
        return planned;
    }
    if source.call == KeyCall::Field {
        // SQLModel's Field() takes ondelete (three values) but no onupdate.
        if let Some(action) = write_ondelete
            && !FIELD_ACTIONS.contains(&action)
        {
            planned.findings.push(finding(
                "field-ondelete-unsupported",
                format!(
                    "SQLModel's Field(ondelete=...) accepts CASCADE, SET NULL or RESTRICT, not {action}; declare {} with sa_column=Column(ForeignKey(..., ondelete=\"{action}\"))",
                    label(&report)
                ),
            ));
            write_ondelete = None;
        }
        if let Some(action) = write_onupdate.take() {
            planned.findings.push(finding(
                "field-onupdate-unsupported",
                format!(
                    "SQLModel's Field() has no onupdate; to keep ON UPDATE {action} on {} in the model, declare it with sa_column=Column(ForeignKey(..., onupdate=\"{action}\"))",
                    label(&report)
                ),
            ));
        }
    }
    let lowercase = source.call != KeyCall::Field && writes_lowercase(schema, &file.path);
    let spell = |action: Action| {
        let text = if lowercase {
            action.sql().to_lowercase()
        } else {
            action.sql().to_string()
        };
        format!("{quote}{text}{quote}")
    };
    let keywords: Vec<String> = [
        (Some(&source.ondelete_keyword), write_ondelete),
        (source.onupdate_keyword.as_ref(), write_onupdate),
    ]
    .into_iter()
    .filter_map(|(name, action)| Some(format!("{}={}", name?, spell(action?))))
    .collect();
    if !keywords.is_empty() {
        planned.edits = fix::append_keywords_at(&file.text, &source.layout, &keywords);
        report.status = Status::Fixed;
    }
    if !planned.findings.is_empty() && keywords.is_empty() {
        report.status = Status::Finding;
        report.message = Some(
            planned
                .findings
                .iter()
                .map(|f| f.message.clone())
                .collect::<Vec<_>>()
                .join("; "),
        );
    }
    planned.keywords = keywords;
    planned.report = report;
    planned
}

/// Seed 000: move a misplaced `ondelete=` from the column call into its `ForeignKey()`, or
/// report it when that is not safe.
fn move_misplaced(
    file: &SourceFile,
    table: &Table,
    fk: &ModelForeignKey,
    source: &KeySource,
    value: &str,
    mut planned: PlannedKey,
) -> PlannedKey {
    let mut report = planned.report.clone();
    let finding = |code: &'static str, message: String| FileFinding {
        line: fk.origin.line,
        code,
        message,
    };
    let movable = source.misplaced.as_ref().filter(|m| {
        m.single_key
            && !source.has_ondelete
            && !source.has_splat
            && Action::parse(value).is_some()
            && !file.text[m.removal.clone()].contains('#')
    });
    let Some(misplaced) = movable else {
        report.status = Status::Finding;
        let why = match &source.misplaced {
            Some(m) if !m.single_key => "the column has several ForeignKeys",
            Some(m) if file.text[m.removal.clone()].contains('#') => "a comment sits next to it",
            _ if source.has_ondelete => "ForeignKey() has an ondelete of its own",
            _ if Action::parse(value).is_none() => "it is not a valid action",
            _ => "the call can't be read completely",
        };
        let message = format!(
            "ondelete={value:?} is passed to the column, not to ForeignKey(): SQLAlchemy raises TypeError; move it into ForeignKey(...) by hand ({why})"
        );
        report.message = Some(message.clone());
        planned
            .findings
            .push(finding("misplaced-ondelete", message));
        planned.report = report;
        return planned;
    };
    let keyword = format!("ondelete={}", misplaced.value_text);
    let mut edits =
        fix::append_keywords_at(&file.text, &source.layout, std::slice::from_ref(&keyword));
    edits.push(Edit {
        range: misplaced.removal.clone(),
        content: String::new(),
    });
    let action = Action::parse(value).expect("checked above");
    report.ondelete = Some(action);
    report.rule = Some(policy::Rule::Model);
    report.status = Status::Fixed;
    report.reason = format!(
        "moved ondelete={} from the column into ForeignKey() (a TypeError in SQLAlchemy)",
        misplaced.value_text
    );
    let nullable = fk
        .columns
        .iter()
        .all(|c| table.columns.get(c).is_none_or(|col| col.nullable));
    if action == Action::SetNull && !nullable {
        planned.findings.push(finding(
            "set-null-not-null",
            format!(
                "ON DELETE SET NULL on NOT NULL column {}: every delete of the parent fails with a NotNullViolation; use CASCADE or RESTRICT",
                label(&report)
            ),
        ));
    }
    planned.keywords = vec![keyword];
    planned.edits = edits;
    planned.report = report;
    planned
}

/// The models in this file already write their actions in lower case (`ondelete="cascade"`).
fn writes_lowercase(schema: &Schema, path: &Path) -> bool {
    let values: Vec<&str> = schema
        .tables
        .values()
        .flat_map(|t| &t.foreign_keys)
        .filter(|fk| *fk.origin.file == *path)
        .flat_map(|fk| [&fk.ondelete, &fk.onupdate])
        .filter_map(|v| v.as_deref())
        .filter(|v| v.chars().any(char::is_alphabetic))
        .collect();
    !values.is_empty() && values.iter().all(|v| *v == v.to_lowercase())
}

fn dominant_quote(text: &str) -> char {
    if text.matches('"').count() >= text.matches('\'').count() {
        '"'
    } else {
        '\''
    }
}

/// The model files after `--fix-models`: one outcome per changed file (or error), and the schema
/// read back from the fixed texts, which the migrations are then planned against.
pub struct ModelRun {
    pub outcomes: Vec<FileOutcome>,
    pub schema: Schema,
}

pub fn run(sources: &[SourceFile], schema: &Schema, config: &Config, write: bool) -> ModelRun {
    let mut plans = plan(sources, schema, config);
    let mut outcomes = Vec::new();
    let mut fixed_sources = Vec::new();
    for source in sources {
        let plan = plans.remove(&source.path).unwrap_or_default();
        let result = (|| -> Result<Option<SourceFile>> {
            if plan.edits.is_empty() {
                return Ok(None);
            }
            let text = fix::fixed_text(source, plan.edits.clone())?;
            if text == source.text {
                return Ok(None);
            }
            let fixed = parse::parse_text(&source.path, text)?;
            if write {
                fix::write_atomically(&source.path, &fixed.text)?;
            }
            Ok(Some(fixed))
        })();
        let keys_or_findings = !plan.keys.is_empty() || !plan.findings.is_empty();
        match result {
            Ok(fixed) => {
                let text = fixed.as_ref().map(|f| f.text.clone());
                if keys_or_findings || text.is_some() {
                    outcomes.push(FileOutcome {
                        path: source.path.clone(),
                        original: Some(source.text.clone()),
                        fixed: text,
                        plan,
                        error: None,
                    });
                }
                fixed_sources.push(fixed.unwrap_or_else(|| reparse(source)));
            }
            Err(err) => {
                outcomes.push(FileOutcome {
                    path: source.path.clone(),
                    original: None,
                    fixed: None,
                    plan: FilePlan::default(),
                    error: Some(report::one_line(&format!("{err:#}"))),
                });
                fixed_sources.push(reparse(source));
            }
        }
    }
    ModelRun {
        outcomes,
        schema: models::read_models(&fixed_sources),
    }
}

fn reparse(source: &SourceFile) -> SourceFile {
    parse::parse_text(&source.path, source.text.clone()).expect("it parsed before")
}
