//! `check-db`'s comparison and report: every foreign key the database has, judged as the fixer
//! judges a key in a migration (`policy::judge`: a rule someone chose stands against
//! heuristics, a rule with a finding needs a human), plus the model keys the database lacks.
//! Text table on stdout (summary on stderr), JSON with a `schema_version`, or GitHub
//! annotations.

use std::io::Write;
use std::path::{Path, PathBuf};

use anstyle::{AnsiColor, Style};
use anyhow::Result;
use serde::Serialize;

use crate::cli::{Common, Format};
use crate::config::Config;
use crate::database::Database;
use crate::keyset::ExistingKey;
use crate::models::{Schema, Table, qualified};
use crate::policy::{self, Action, KeyRef, Rule};
use crate::report::{self, Palette};

/// The JSON output's schema version for `check-db`; bumped on any incompatible change.
pub const JSON_SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    /// The database's rules are the policy's.
    Ok,
    /// ON DELETE or ON UPDATE differs from the policy's answer.
    Mismatch,
    /// The policy has a finding for the key (SET NULL on a NOT NULL column, ...): a human decides.
    Finding,
    /// The database has the key; no model declares it (or its table).
    NotInModels,
    /// A model declares the key; the database lacks it.
    Missing,
}

impl CheckStatus {
    fn label(self) -> &'static str {
        match self {
            CheckStatus::Ok => "ok",
            CheckStatus::Mismatch => "mismatch",
            CheckStatus::Finding => "finding",
            CheckStatus::NotInModels => "not in models",
            CheckStatus::Missing => "missing",
        }
    }
}

/// What the policy says about a key.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyAnswer {
    pub ondelete: Action,
    pub onupdate: Option<Action>,
    pub rule: Rule,
    pub reason: String,
    #[serde(skip)]
    pub trail: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct KeyCheck {
    pub status: CheckStatus,
    pub schema: Option<String>,
    pub table: String,
    /// The constraint's name in the database (None for a missing key, or SQLite's unnamed).
    pub name: Option<String>,
    pub columns: Vec<String>,
    pub referent_schema: Option<String>,
    pub referent_table: String,
    pub referent_columns: Vec<String>,
    /// What the database has (`NO ACTION` spelled out); None for a missing key.
    pub ondelete: Option<String>,
    pub onupdate: Option<String>,
    /// None when no model file has the table.
    pub policy: Option<PolicyAnswer>,
    /// What is wrong, for every status but `ok`.
    pub message: Option<String>,
    /// Where the models declare the key (or its table).
    #[serde(skip)]
    pub model_file: Option<PathBuf>,
    #[serde(skip)]
    pub model_line: Option<usize>,
}

impl KeyCheck {
    pub fn label(&self) -> String {
        format!(
            "{}.{} -> {}.{}",
            qualified(self.schema.as_deref(), &self.table),
            self.columns.join(","),
            qualified(self.referent_schema.as_deref(), &self.referent_table),
            self.referent_columns.join(",")
        )
    }
}

pub struct CheckReport {
    /// The URL as it may be shown (password masked).
    pub url: String,
    pub server: String,
    pub default_schema: Option<String>,
    pub checks: Vec<KeyCheck>,
}

impl CheckReport {
    fn count(&self, status: CheckStatus) -> usize {
        self.checks.iter().filter(|c| c.status == status).count()
    }

    /// 0 when the database and the models agree on every key, else 1.
    pub fn exit_code(&self) -> u8 {
        u8::from(self.checks.iter().any(|c| c.status != CheckStatus::Ok))
    }
}

fn same_set(a: &[String], b: &[String]) -> bool {
    a.len() == b.len() && a.iter().all(|x| b.contains(x))
}

fn answer(decision: policy::Decision) -> PolicyAnswer {
    PolicyAnswer {
        ondelete: decision.ondelete,
        onupdate: decision.onupdate,
        rule: decision.rule,
        reason: decision.reason,
        trail: decision.trail,
    }
}

/// The policy's answer for every key of the database, and the model keys it lacks.
pub fn compare(schema: &Schema, config: &Config, url: &str, db: &Database) -> CheckReport {
    let mut checks: Vec<KeyCheck> = db
        .keys
        .keys
        .iter()
        .map(|key| check_existing(schema, config, key))
        .collect();
    checks.extend(missing_keys(schema, config, &db.keys.keys));
    CheckReport {
        url: url.to_string(),
        server: db.server.clone(),
        default_schema: db.default_schema.clone(),
        checks,
    }
}

fn check_existing(schema: &Schema, config: &Config, key: &ExistingKey) -> KeyCheck {
    let table_name = qualified(key.schema.as_deref(), &key.table);
    let referent = qualified(key.referent_schema.as_deref(), &key.referent_table);
    let key_ref = KeyRef {
        table: &table_name,
        columns: &key.columns,
        referent_table: &referent,
        referent_columns: &key.referent_columns,
        not_null_in_migration: false,
        server_default_in_migration: false,
    };
    let spelled = |action: &Option<String>| action.clone().unwrap_or_else(|| "NO ACTION".into());
    let mut check = KeyCheck {
        status: CheckStatus::Ok,
        schema: key.schema.clone(),
        table: key.table.clone(),
        name: key.name.clone(),
        columns: key.columns.clone(),
        referent_schema: key.referent_schema.clone(),
        referent_table: key.referent_table.clone(),
        referent_columns: key.referent_columns.clone(),
        ondelete: Some(spelled(&key.ondelete)),
        onupdate: Some(spelled(&key.onupdate)),
        policy: None,
        message: None,
        model_file: None,
        model_line: None,
    };
    let Some(table) = policy::find_table(schema, &table_name) else {
        check.status = CheckStatus::NotInModels;
        check.message = Some(format!("table {table_name} is in no model file"));
        return check;
    };
    let Ok(judged) = policy::judge(
        schema,
        config,
        key_ref,
        key.ondelete.as_deref(),
        key.onupdate.as_deref(),
    ) else {
        unreachable!("find_table found {table_name}")
    };
    let findings: Vec<String> = judged
        .findings
        .iter()
        .map(|f| format!("{}: {}", f.code, f.message))
        .collect();
    let decision = answer(judged.decision);
    let model_key = table
        .foreign_keys
        .iter()
        .find(|fk| same_set(&fk.columns, &key.columns));
    let origin = model_key.map_or(&table.origin, |fk| &fk.origin);
    check.model_file = Some(origin.file.to_path_buf());
    check.model_line = Some(origin.line);
    let actual_delete = key
        .ondelete
        .as_deref()
        .and_then(Action::parse)
        .unwrap_or(Action::NoAction);
    let actual_update = key
        .onupdate
        .as_deref()
        .and_then(Action::parse)
        .unwrap_or(Action::NoAction);
    let mut wrong = Vec::new();
    if actual_delete != decision.ondelete {
        wrong.push(format!(
            "ON DELETE {actual_delete} in the database, the policy says {}",
            decision.ondelete
        ));
    }
    if let Some(wanted) = decision.onupdate
        && wanted != actual_update
    {
        wrong.push(format!(
            "ON UPDATE {actual_update} in the database, the policy says {wanted}"
        ));
    }
    check.status = if model_key.is_none() {
        check.message = Some(format!(
            "no model declares this key (table {} is declared at {})",
            table_name,
            schema.shown_origin(&table.origin.file, table.origin.line)
        ));
        CheckStatus::NotInModels
    } else if !findings.is_empty() {
        check.message = Some(findings.join("; "));
        CheckStatus::Finding
    } else if wrong.is_empty() {
        CheckStatus::Ok
    } else {
        check.message = Some(wrong.join("; "));
        CheckStatus::Mismatch
    };
    check.policy = Some(decision);
    check
}

/// Model keys with no database key on the same table and columns.
fn missing_keys(schema: &Schema, config: &Config, keys: &[ExistingKey]) -> Vec<KeyCheck> {
    let present: Vec<(&Table, &[String])> = keys
        .iter()
        .filter_map(|key| {
            policy::find_table(schema, &qualified(key.schema.as_deref(), &key.table))
                .map(|t| (t, &key.columns[..]))
        })
        .collect();
    let mut missing: Vec<KeyCheck> = Vec::new();
    for (qualified_name, table) in &schema.tables {
        for fk in &table.foreign_keys {
            let in_database = present
                .iter()
                .any(|(t, columns)| t.same_table(table) && same_set(columns, &fk.columns));
            let reported = missing
                .iter()
                .any(|m| m.table == table.name && same_set(&m.columns, &fk.columns));
            if in_database || reported {
                continue;
            }
            let key_ref = KeyRef {
                table: qualified_name,
                columns: &fk.columns,
                referent_table: &fk.referent_table,
                referent_columns: &fk.referent_columns,
                not_null_in_migration: false,
                server_default_in_migration: false,
            };
            let (referent_schema, referent_table) = match fk.referent_table.rsplit_once('.') {
                Some((s, t)) => (Some(s.to_string()), t.to_string()),
                None => (None, fk.referent_table.clone()),
            };
            missing.push(KeyCheck {
                status: CheckStatus::Missing,
                schema: table.schema.clone(),
                table: table.name.clone(),
                name: None,
                columns: fk.columns.clone(),
                referent_schema,
                referent_table,
                referent_columns: fk.referent_columns.clone(),
                ondelete: None,
                onupdate: None,
                policy: policy::decide(schema, config, key_ref).ok().map(answer),
                message: Some(
                    "declared in the models, not in the database (migration not written or not applied?)"
                        .to_string(),
                ),
                model_file: Some(fk.origin.file.to_path_buf()),
                model_line: Some(fk.origin.line),
            });
        }
    }
    missing
}

// ---- output ----------------------------------------------------------------------------------

pub fn print(report: &CheckReport, common: &Common, cwd: &Path) -> Result<u8> {
    let printed = match common.format {
        Format::Text => print_text(report, common),
        Format::Json => print_json(report, cwd),
        Format::Github => print_github(report, cwd),
        Format::Sarif => unreachable!("rejected before the database is read"),
    };
    match printed {
        Err(err) if report::is_broken_pipe(&err) => Ok(report.exit_code()),
        Err(err) => Err(err),
        Ok(()) => Ok(report.exit_code()),
    }
}

fn display_path(path: &Path, cwd: &Path) -> String {
    path.strip_prefix(cwd).unwrap_or(path).display().to_string()
}

fn policy_text(policy: &Option<PolicyAnswer>) -> String {
    match policy {
        None => "-".to_string(),
        Some(p) => match p.onupdate {
            Some(update) => format!("{} / ON UPDATE {update}", p.ondelete),
            None => p.ondelete.to_string(),
        },
    }
}

/// The table's REASON: the policy's reason; for a key the models and the database don't share,
/// what is wrong first. (A mismatch shows in the ON DELETE / ON UPDATE and POLICY columns.)
fn reason_text(check: &KeyCheck) -> String {
    let message = check.message.as_deref().unwrap_or_default();
    match (&check.policy, check.status) {
        (Some(p), CheckStatus::Ok | CheckStatus::Mismatch) => p.reason.clone(),
        (Some(p), _) => format!("{message}; policy: {}", p.reason),
        (None, _) => message.to_string(),
    }
}

/// One line for annotations: what is wrong and why the policy says so.
fn annotation_text(check: &KeyCheck) -> String {
    let message = check.message.as_deref().unwrap_or_default();
    match (&check.policy, check.status) {
        (Some(p), CheckStatus::Mismatch) => format!("{}: {message} ({})", check.label(), p.reason),
        (Some(_), CheckStatus::Finding) => format!("{}: {message}", check.label()),
        (Some(p), _) => format!(
            "{}: {message}; policy: {} ({})",
            check.label(),
            policy_text(&check.policy),
            p.reason
        ),
        (None, _) => format!("{}: {message}", check.label()),
    }
}

/// The rows of the text table, without color: header first.
pub fn table_rows(report: &CheckReport, quiet: bool) -> Vec<[String; 6]> {
    let mut rows = vec![[
        "FOREIGN KEY".to_string(),
        "ON DELETE".to_string(),
        "ON UPDATE".to_string(),
        "POLICY".to_string(),
        "STATUS".to_string(),
        "REASON".to_string(),
    ]];
    for check in &report.checks {
        if quiet && check.status == CheckStatus::Ok {
            continue;
        }
        rows.push([
            check.label(),
            check.ondelete.clone().unwrap_or_else(|| "-".into()),
            check.onupdate.clone().unwrap_or_else(|| "-".into()),
            policy_text(&check.policy),
            check.status.label().to_string(),
            reason_text(check),
        ]);
    }
    rows
}

fn print_text(report: &CheckReport, common: &Common) -> Result<()> {
    let choice = report::color_choice(common.color);
    let mut out = anstream::AutoStream::new(std::io::stdout().lock(), choice);
    let mut err = anstream::AutoStream::new(std::io::stderr().lock(), choice);
    let palette = Palette { on: true };
    let mut rows = table_rows(report, common.quiet);
    // Quiet and nothing disagrees: no table, not even its header.
    if common.quiet && rows.len() == 1 {
        rows.clear();
    }
    let mut widths = [0usize; 5];
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row.iter()) {
            *width = (*width).max(cell.chars().count());
        }
    }
    if !common.quiet {
        writeln!(out, "{} ({})", report.url, report.server)?;
    }
    let checks: Vec<Option<&KeyCheck>> = std::iter::once(None)
        .chain(
            report
                .checks
                .iter()
                .filter(|c| !(common.quiet && c.status == CheckStatus::Ok))
                .map(Some),
        )
        .collect();
    for (row, check) in rows.iter().zip(checks) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            let padded = if i < widths.len() {
                format!("{cell:<width$}  ", width = widths[i])
            } else {
                cell.clone()
            };
            let style = match (check.map(|c| c.status), i) {
                (None, _) => Style::new().bold(),
                (Some(CheckStatus::Ok), 4) => Style::new().fg_color(Some(AnsiColor::Green.into())),
                (Some(CheckStatus::Mismatch | CheckStatus::Finding), 4 | 1) => {
                    Style::new().fg_color(Some(AnsiColor::Red.into()))
                }
                (Some(CheckStatus::NotInModels | CheckStatus::Missing), 4) => {
                    Style::new().fg_color(Some(AnsiColor::Yellow.into()))
                }
                _ => Style::new(),
            };
            line.push_str(&palette.paint(style, &padded));
        }
        writeln!(out, "{}", line.trim_end())?;
        if common.explain
            && let Some(policy) = check.and_then(|c| c.policy.as_ref())
        {
            for step in &policy.trail {
                writeln!(out, "    {step}")?;
            }
        }
    }
    out.flush()?;
    if !common.quiet {
        writeln!(err, "{}", summary(report))?;
    }
    Ok(())
}

fn summary(report: &CheckReport) -> String {
    let in_database = report.checks.len() - report.count(CheckStatus::Missing);
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    let mut parts = vec![format!("{} agree", report.count(CheckStatus::Ok))];
    for (status, what) in [
        (CheckStatus::Mismatch, "mismatched"),
        (CheckStatus::Finding, "with findings"),
        (CheckStatus::NotInModels, "not in the models"),
    ] {
        let n = report.count(status);
        if n > 0 {
            parts.push(format!("{n} {what}"));
        }
    }
    let missing = report.count(CheckStatus::Missing);
    let tail = if missing > 0 {
        format!(
            "; {} missing from the database",
            plural(missing, "model key")
        )
    } else {
        String::new()
    };
    format!(
        "{} in the database: {}{tail}.",
        plural(in_database, "foreign key"),
        parts.join(", ")
    )
}

#[derive(Serialize)]
struct JsonOutput<'a> {
    schema_version: u32,
    database: JsonDatabase<'a>,
    foreign_keys: Vec<JsonKey<'a>>,
    summary: JsonSummary,
}

#[derive(Serialize)]
struct JsonDatabase<'a> {
    url: &'a str,
    server: &'a str,
    default_schema: Option<&'a str>,
}

#[derive(Serialize)]
struct JsonKey<'a> {
    #[serde(flatten)]
    check: &'a KeyCheck,
    /// `model_file` relative to the working directory.
    model: Option<String>,
}

#[derive(Serialize)]
struct JsonSummary {
    foreign_keys: usize,
    ok: usize,
    mismatch: usize,
    finding: usize,
    not_in_models: usize,
    missing: usize,
}

fn print_json(report: &CheckReport, cwd: &Path) -> Result<()> {
    let json = JsonOutput {
        schema_version: JSON_SCHEMA_VERSION,
        database: JsonDatabase {
            url: &report.url,
            server: &report.server,
            default_schema: report.default_schema.as_deref(),
        },
        foreign_keys: report
            .checks
            .iter()
            .map(|check| JsonKey {
                check,
                model: check
                    .model_file
                    .as_ref()
                    .map(|f| format!("{}:{}", display_path(f, cwd), check.model_line.unwrap_or(0))),
            })
            .collect(),
        summary: JsonSummary {
            foreign_keys: report.checks.len() - report.count(CheckStatus::Missing),
            ok: report.count(CheckStatus::Ok),
            mismatch: report.count(CheckStatus::Mismatch),
            finding: report.count(CheckStatus::Finding),
            not_in_models: report.count(CheckStatus::NotInModels),
            missing: report.count(CheckStatus::Missing),
        },
    };
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut stdout, &json)?;
    writeln!(stdout)?;
    Ok(())
}

fn print_github(report: &CheckReport, cwd: &Path) -> Result<()> {
    let mut out = std::io::stdout().lock();
    for check in report.checks.iter().filter(|c| c.status != CheckStatus::Ok) {
        let level = if matches!(check.status, CheckStatus::Mismatch | CheckStatus::Finding) {
            "error"
        } else {
            "warning"
        };
        let place = match (&check.model_file, check.model_line) {
            (Some(file), Some(line)) => format!(
                " file={},line={line},",
                report::escape_github_property(&display_path(file, cwd))
            ),
            _ => " ".to_string(),
        };
        writeln!(
            out,
            "::{level}{place}title=fix-migrations check-db {}::{}",
            check.status.label(),
            report::escape_github(&annotation_text(check))
        )?;
    }
    writeln!(out, "{}", summary(report))?;
    Ok(())
}
