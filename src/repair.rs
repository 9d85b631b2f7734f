//! `fix-migrations repair`: the keys as they exist (replayed from the history here, read from a
//! live database by `check-db --repair`) against the policy, and a new Alembic revision whose
//! upgrade() drops and recreates every wrong key with the right rules and whose downgrade()
//! restores the old ones.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use serde::Serialize;

use crate::cli::{Common, Format, RepairArgs};
use crate::config::Config;
use crate::discover::{self, Project, Revision};
use crate::history::{self, Dialect, Unreadable};
use crate::keyset::{ExistingKey, KeySet};
use crate::models::Schema;
use crate::models::qualified;
use crate::parse::{self, Fields};
use crate::policy::{self, Action, KeyRef, Rule};

/// The template that reproduces PostgreSQL's own names; handed to `batch_alter_table` so SQLite
/// keys created unnamed inside CREATE TABLE get the same name on reflection and can be dropped.
pub const DEFAULT_FK_CONVENTION: &str = "%(table_name)s_%(column_0_N_name)s_fkey";

pub fn run(common: &Common, args: &RepairArgs) -> Result<ExitCode> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let start = common.project.clone().unwrap_or_else(|| cwd.clone());
    let project = discover::find_project(&start)?;
    let config = Config::load(common.config.as_deref(), &project.root)?;
    let schema = crate::cli::read_schema(common, &config, &project.root, Some(&project), &cwd)?;
    let (dialect, _) = Dialect::detect(args.dialect, &project)?;
    let revisions = history::read_graph(&project)?;
    let replay = history::replay(&project.root, &revisions, &schema, dialect)?;
    let args = RepairArgs {
        dialect: Some(dialect),
        ..args.clone()
    };
    write_repair(
        common,
        &args,
        &project,
        &replay.keys,
        &schema,
        &config,
        &replay.unreadable,
    )
}

/// What the policy says about one existing key.
#[derive(Debug, Clone, Serialize)]
pub struct KeyVerdict {
    #[serde(flatten)]
    pub key: ExistingKey,
    /// The rules the key should have; equal to the current ones when nothing is wrong.
    pub wanted_ondelete: Option<String>,
    pub wanted_onupdate: Option<String>,
    pub rule: Option<Rule>,
    pub reason: String,
    pub status: VerdictStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VerdictStatus {
    Repair,
    Ok,
    /// Needs a human: left as it is.
    Finding,
}

#[derive(Debug, Clone, Serialize)]
pub struct RepairFinding {
    pub origin: String,
    pub code: &'static str,
    pub message: String,
}

#[derive(Debug, Default)]
pub struct RepairPlan {
    pub verdicts: Vec<KeyVerdict>,
    pub findings: Vec<RepairFinding>,
}

impl RepairPlan {
    pub fn repairs(&self) -> impl Iterator<Item = &KeyVerdict> {
        self.verdicts
            .iter()
            .filter(|v| v.status == VerdictStatus::Repair)
    }
}

fn same_action(a: Option<&str>, b: Option<&str>) -> bool {
    let norm = |x: Option<&str>| match x.map(Action::parse) {
        None | Some(Some(Action::NoAction)) => None,
        Some(Some(action)) => Some(action.sql().to_string()),
        Some(None) => x.map(str::to_uppercase),
    };
    norm(a) == norm(b)
}

/// Judge every key the way the fixer judges a key in a migration: an explicit model or config
/// value wins over the existing rule, heuristic evidence fills NO ACTION but never overrides a
/// rule someone chose, and a key with findings is left alone.
pub fn plan(keys: &KeySet, schema: &Schema, config: &Config) -> RepairPlan {
    let mut plan = RepairPlan::default();
    for key in &keys.keys {
        let table = qualified(key.schema.as_deref(), &key.table);
        let referent = qualified(key.referent_schema.as_deref(), &key.referent_table);
        let key_ref = KeyRef {
            table: &table,
            columns: &key.columns,
            referent_table: &referent,
            referent_columns: &key.referent_columns,
            not_null_in_migration: false,
            server_default_in_migration: false,
        };
        let judged = policy::judge(
            schema,
            config,
            key_ref,
            key.ondelete.as_deref(),
            key.onupdate.as_deref(),
        );
        let mut verdict = KeyVerdict {
            key: key.clone(),
            wanted_ondelete: key.ondelete.clone(),
            wanted_onupdate: key.onupdate.clone(),
            rule: None,
            reason: String::new(),
            status: VerdictStatus::Ok,
        };
        let judgement = match judged {
            Ok(j) => j,
            Err(policy::UnknownTable(table)) => {
                let message = format!(
                    "table {table} is in no model file; {} left as it is",
                    key_ref.label()
                );
                verdict.status = VerdictStatus::Finding;
                verdict.reason = message.clone();
                plan.findings.push(RepairFinding {
                    origin: key.origin.clone(),
                    code: "unknown-table",
                    message,
                });
                plan.verdicts.push(verdict);
                continue;
            }
        };
        verdict.rule = Some(judgement.decision.rule);
        verdict.reason = judgement.decision.reason.clone();
        if !judgement.findings.is_empty() {
            verdict.status = VerdictStatus::Finding;
            for finding in &judgement.findings {
                plan.findings.push(RepairFinding {
                    origin: key.origin.clone(),
                    code: finding.code,
                    message: finding.message.clone(),
                });
            }
            plan.verdicts.push(verdict);
            continue;
        }
        if let Some(action) = judgement.write_ondelete {
            verdict.wanted_ondelete = (action != Action::NoAction).then(|| action.sql().into());
        }
        if let Some(action) = judgement.write_onupdate {
            verdict.wanted_onupdate = (action != Action::NoAction).then(|| action.sql().into());
        }
        let right = same_action(key.ondelete.as_deref(), verdict.wanted_ondelete.as_deref())
            && same_action(key.onupdate.as_deref(), verdict.wanted_onupdate.as_deref());
        if !right {
            verdict.status = VerdictStatus::Repair;
        }
        plan.verdicts.push(verdict);
    }
    plan
}

/// How the new revision is written.
#[derive(Debug, Clone)]
pub struct RevisionStyle {
    pub batch: bool,
    /// The models' `naming_convention["fk"]`: names go through `op.f()`.
    pub convention: Option<String>,
}

/// Write (or show) the repair revision for keys from any source: the replayed history or a
/// live database. `args.dialect` decides batch mode when it is SQLite; `unreadable` lists what
/// the source could not read (empty for a database).
pub fn write_repair(
    common: &Common,
    args: &RepairArgs,
    project: &Project,
    keys: &KeySet,
    schema: &Schema,
    config: &Config,
    unreadable: &[Unreadable],
) -> Result<ExitCode> {
    // A repair is one new file, not findings at source lines: nothing for code scanning.
    if common.format == Format::Sarif {
        anyhow::bail!("repair has no SARIF output; use --format json");
    }
    let plan = plan(keys, schema, config);
    let revisions = discover::read_revisions(project)?;
    let heads: Vec<&Revision> = discover::heads(&revisions);
    let style = RevisionStyle {
        batch: args.batch
            || args.dialect == Some(Dialect::Sqlite)
            || env_renders_batch(project)
            || plan.repairs().any(|v| v.key.name.is_none()),
        convention: schema.fk_naming_convention.clone(),
    };
    let new_file = if plan.repairs().next().is_some() {
        Some(render_file(project, &heads, &args.message, &plan, &style)?)
    } else {
        None
    };
    let write = common.write;
    if write && let Some(file) = &new_file {
        if let Some(dir) = file.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| discover::io_error(dir, &e))?;
        }
        write_new(&file.path, &file.text)?;
    }
    let cwd = std::env::current_dir().unwrap_or_else(|_| project.root.clone());
    let shown = new_file.as_ref().map(|f| display(&f.path, &cwd));
    let outcome = Outcome {
        plan: &plan,
        file: new_file.as_ref(),
        shown,
        write,
        batch: style.batch,
        dialect: args.dialect,
        unreadable,
    };
    match print(&outcome, common) {
        Err(err) if is_broken_pipe(&err) => {}
        other => other?,
    }
    let pending = new_file.is_some() && !write;
    Ok(ExitCode::from(u8::from(
        pending || !plan.findings.is_empty(),
    )))
}

/// env.py passes `render_as_batch=True`. An expression (`render_as_batch=IS_SQLITE`) depends on
/// the database: SQLite gets batch mode through the dialect rule anyway.
pub fn env_renders_batch(project: &Project) -> bool {
    let Ok(file) = crate::cli::read_python(&project.script_location.join("env.py")) else {
        return false;
    };
    crate::parse::descendants(file.tree.root_node())
        .into_iter()
        .filter(|n| n.kind() == "keyword_argument")
        .any(|n| {
            let name = n.field("name").map(|x| file.text_of(x));
            let value = n.field("value").map(|x| file.text_of(x));
            name == Some("render_as_batch") && value == Some("True")
        })
}

/// The rendered new revision.
#[derive(Debug, Clone)]
pub struct NewFile {
    pub id: String,
    pub path: PathBuf,
    pub text: String,
    pub down_revisions: Vec<String>,
}

fn render_file(
    project: &Project,
    heads: &[&Revision],
    message: &str,
    plan: &RepairPlan,
    style: &RevisionStyle,
) -> Result<NewFile> {
    let id = uuid::Uuid::new_v4().simple().to_string()[20..].to_string();
    let now = jiff::Zoned::now();
    let down_revisions: Vec<String> = heads.iter().map(|r| r.id.clone()).collect();
    let (upgrade, downgrade) = render_bodies(plan, style);
    let fields = TemplateFields {
        message,
        id: &id,
        down_revisions: &down_revisions,
        create_date: &create_date(&now),
        upgrade: &upgrade,
        downgrade: &downgrade,
    };
    let template = std::fs::read_to_string(project.script_location.join("script.py.mako")).ok();
    let text = template
        .as_deref()
        .and_then(|t| render_template(t, &fields))
        .unwrap_or_else(|| render_template(DEFAULT_TEMPLATE, &fields).expect("built-in template"));
    if !crate::parse::parses_cleanly(&text) {
        bail!("the repair revision would not parse; nothing written (please report this)");
    }
    let dir = heads
        .first()
        .and_then(|h| h.path.parent().map(Path::to_path_buf))
        .or_else(|| project.version_dirs.first().cloned())
        .ok_or_else(|| anyhow!("{}: no versions directory", project.config_file.display()))?;
    let name = file_name(project, &id, message, &now)?;
    Ok(NewFile {
        id,
        path: dir.join(name),
        text,
        down_revisions,
    })
}

/// `str(datetime.now())` as Alembic writes `Create Date:`.
fn create_date(now: &jiff::Zoned) -> String {
    let dt = now.datetime();
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:06}",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        dt.subsec_nanosecond() / 1000
    )
}

/// `<rev>_<slug>.py`, or the project's `file_template`, as `alembic revision` names files.
fn file_name(project: &Project, id: &str, message: &str, now: &jiff::Zoned) -> Result<String> {
    let template = discover::alembic_option(project, "file_template")?
        .unwrap_or_else(|| "%(rev)s_%(slug)s".into());
    let truncate: usize = discover::alembic_option(project, "truncate_slug_length")?
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(40);
    let words: Vec<String> = message
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    let mut slug = words.join("_");
    if slug.len() > truncate {
        let cut = (0..=truncate)
            .rev()
            .find(|i| slug.is_char_boundary(*i))
            .unwrap_or(0);
        let head = &slug[..cut];
        slug = match head.rsplit_once('_') {
            Some((before, _)) => format!("{before}_"),
            None => format!("{head}_"),
        };
    }
    let dt = now.datetime();
    let value = |name: &str| -> Option<i64> {
        Some(match name {
            "epoch" => now.timestamp().as_second(),
            "year" => dt.year().into(),
            "month" => dt.month().into(),
            "day" => dt.day().into(),
            "hour" => dt.hour().into(),
            "minute" => dt.minute().into(),
            "second" => dt.second().into(),
            _ => return None,
        })
    };
    let mut out = String::new();
    let mut rest = template.as_str();
    while let Some(at) = rest.find("%(") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let close = after
            .find(')')
            .ok_or_else(|| anyhow!("file_template `{template}`: unclosed %("))?;
        let name = &after[..close];
        let spec = &after[close + 1..];
        let conv_at = spec
            .find(|c: char| c.is_ascii_alphabetic())
            .ok_or_else(|| anyhow!("file_template `{template}`: no conversion after %({name})"))?;
        let width: usize = spec[..conv_at].trim_start_matches('.').parse().unwrap_or(0);
        match (name, &spec[conv_at..conv_at + 1]) {
            ("rev", "s") => out.push_str(id),
            ("slug", "s") => out.push_str(&slug),
            (other, "d" | "s") => {
                let number = value(other).ok_or_else(|| {
                    anyhow!("file_template `{template}`: unknown token %({other})")
                })?;
                out.push_str(&format!("{number:0width$}"));
            }
            (other, conv) => bail!("file_template `{template}`: %({other}){conv} not supported"),
        }
        rest = &spec[conv_at + 1..];
    }
    out.push_str(rest);
    Ok(format!("{out}.py"))
}

struct TemplateFields<'a> {
    message: &'a str,
    id: &'a str,
    down_revisions: &'a [String],
    create_date: &'a str,
    upgrade: &'a str,
    downgrade: &'a str,
}

/// Alembic's generic script.py.mako, used when the project's own template holds anything the
/// tool does not know how to fill in.
const DEFAULT_TEMPLATE: &str = r#""""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
${imports if imports else ""}

# revision identifiers, used by Alembic.
revision: str = ${repr(up_revision)}
down_revision: Union[str, Sequence[str], None] = ${repr(down_revision)}
branch_labels: Union[str, Sequence[str], None] = ${repr(branch_labels)}
depends_on: Union[str, Sequence[str], None] = ${repr(depends_on)}


def upgrade() -> None:
    """Upgrade schema."""
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    """Downgrade schema."""
    ${downgrades if downgrades else "pass"}
"#;

/// Fill in the `${...}` expressions Alembic's templates use. None when the template holds
/// Mako the tool does not know (control lines, blocks, other expressions): the caller then uses
/// the generic template instead of guessing.
fn render_template(template: &str, fields: &TemplateFields) -> Option<String> {
    if template.contains("<%")
        || template
            .lines()
            .any(|l| l.trim_start().starts_with('%') || l.trim_start().starts_with("##"))
    {
        return None;
    }
    let down_repr = match fields.down_revisions {
        [] => "None".to_string(),
        [one] => py_str(one),
        many => format!(
            "({})",
            many.iter()
                .map(|s| py_str(s))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut out = String::new();
    for line in template.split_inclusive('\n') {
        let indent: String = line.chars().take_while(|c| *c == ' ').collect();
        let mut rest = line;
        while let Some(at) = rest.find("${") {
            out.push_str(&rest[..at]);
            let close = rest[at..].find('}')? + at;
            let expr: String = rest[at + 2..close].split_whitespace().collect();
            let value = match expr.as_str() {
                "message" => fields.message.to_string(),
                "up_revision" => fields.id.to_string(),
                "down_revision|comma,n" | "down_revision|comma" => fields.down_revisions.join(", "),
                "create_date" => fields.create_date.to_string(),
                "importsifimportselse\"\"" | "importsifimportselse''" => String::new(),
                "repr(up_revision)" => py_str(fields.id),
                "repr(down_revision)" => down_repr.clone(),
                "repr(branch_labels)" | "repr(depends_on)" => "None".into(),
                "upgradesifupgradeselse\"pass\"" | "upgradesifupgradeselse'pass'" => {
                    indent_body(fields.upgrade, &indent)
                }
                "downgradesifdowngradeselse\"pass\"" | "downgradesifdowngradeselse'pass'" => {
                    indent_body(fields.downgrade, &indent)
                }
                _ => return None,
            };
            out.push_str(&value);
            rest = &rest[close + 1..];
        }
        out.push_str(rest);
    }
    Some(out)
}

/// Lines after the first get the template line's indentation (the first has it already).
fn indent_body(body: &str, indent: &str) -> String {
    let mut out = String::new();
    for (i, line) in body.lines().enumerate() {
        if i > 0 {
            out.push('\n');
            if !line.is_empty() {
                out.push_str(indent);
            }
        }
        out.push_str(line);
    }
    out
}

/// A Python string literal as Alembic writes one (`repr()`: single quotes unless the text
/// holds one and no double quote).
fn py_str(text: &str) -> String {
    parse::string_literal(text, '\'')
}

fn py_list(items: &[String]) -> String {
    format!(
        "[{}]",
        items
            .iter()
            .map(|s| py_str(s))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// One key to drop and recreate: the name it has (or gets, on SQLite) and both rule sets.
struct Recreate<'p> {
    verdict: &'p KeyVerdict,
    name: String,
    /// SQLite: the key has no name; the batch block's naming_convention gives it `name`.
    unnamed: bool,
}

fn name_of(verdict: &KeyVerdict, style: &RevisionStyle) -> (String, bool) {
    if let Some(name) = &verdict.key.name {
        return (name.clone(), false);
    }
    let key = &verdict.key;
    let rendered = style
        .convention
        .as_deref()
        .and_then(|t| {
            crate::fix::render_convention(
                t,
                &key.table,
                &key.columns,
                &key.referent_table,
                &key.referent_columns,
            )
        })
        .unwrap_or_else(|| {
            crate::fix::render_convention(
                DEFAULT_FK_CONVENTION,
                &key.table,
                &key.columns,
                &key.referent_table,
                &key.referent_columns,
            )
            .expect("the default convention uses known tokens")
        });
    (rendered, true)
}

fn convention_for(style: &RevisionStyle, key: &ExistingKey) -> String {
    style
        .convention
        .clone()
        .filter(|t| {
            crate::fix::render_convention(
                t,
                &key.table,
                &key.columns,
                &key.referent_table,
                &key.referent_columns,
            )
            .is_some()
        })
        .unwrap_or_else(|| DEFAULT_FK_CONVENTION.to_string())
}

/// (schema, table)
type TableId = (Option<String>, String);

/// upgrade() and downgrade() bodies, unindented (the template indents them).
fn render_bodies(plan: &RepairPlan, style: &RevisionStyle) -> (String, String) {
    // Group by table, in the key set's order, so each batch block recreates a table once.
    let mut tables: Vec<(TableId, Vec<Recreate>)> = Vec::new();
    for verdict in plan.repairs() {
        let (name, unnamed) = name_of(verdict, style);
        let id = (verdict.key.schema.clone(), verdict.key.table.clone());
        let recreate = Recreate {
            verdict,
            name,
            unnamed,
        };
        match tables.iter_mut().find(|(t, _)| *t == id) {
            Some((_, list)) => list.push(recreate),
            None => tables.push((id, vec![recreate])),
        }
    }
    let name_literal = |name: &str| {
        if style.convention.is_some() {
            format!("op.f({})", py_str(name))
        } else {
            py_str(name)
        }
    };
    let rules = |ondelete: &Option<String>, onupdate: &Option<String>| {
        let mut out = String::new();
        if let Some(u) = onupdate {
            out.push_str(&format!(", onupdate={}", py_str(u)));
        }
        if let Some(d) = ondelete {
            out.push_str(&format!(", ondelete={}", py_str(d)));
        }
        out
    };
    let describe = |r: &Recreate| {
        let key = &r.verdict.key;
        let action = |d: &Option<String>| d.clone().unwrap_or_else(|| "NO ACTION".into());
        let mut text = format!(
            "# {}.{} -> {}.{}: ON DELETE {} -> {}",
            qualified(key.schema.as_deref(), &key.table),
            key.columns.join(","),
            qualified(key.referent_schema.as_deref(), &key.referent_table),
            key.referent_columns.join(","),
            action(&key.ondelete),
            action(&r.verdict.wanted_ondelete)
        );
        if !same_action(
            key.onupdate.as_deref(),
            r.verdict.wanted_onupdate.as_deref(),
        ) {
            text.push_str(&format!(
                ", ON UPDATE {} -> {}",
                action(&key.onupdate),
                action(&r.verdict.wanted_onupdate)
            ));
        }
        format!("{text} ({})", r.verdict.reason)
    };
    let schema_kw = |kw: &str, schema: &Option<String>| match schema {
        Some(s) => format!(", {kw}={}", py_str(s)),
        None => String::new(),
    };
    let mut up: Vec<String> = Vec::new();
    let mut down: Vec<String> = Vec::new();
    for ((schema, table), list) in &tables {
        let mut up_lines = Vec::new();
        let mut down_lines = Vec::new();
        for r in list {
            up_lines.push(describe(r));
        }
        let create = |r: &Recreate, ondelete: &Option<String>, onupdate: &Option<String>| {
            let key = &r.verdict.key;
            if style.batch {
                format!(
                    "batch_op.create_foreign_key({}, {}, {}, {}{}{})",
                    name_literal(&r.name),
                    py_str(&key.referent_table),
                    py_list(&key.columns),
                    py_list(&key.referent_columns),
                    schema_kw("referent_schema", &key.referent_schema),
                    rules(ondelete, onupdate)
                )
            } else {
                format!(
                    "op.create_foreign_key({}, {}, {}, {}, {}{}{}{})",
                    name_literal(&r.name),
                    py_str(&key.table),
                    py_str(&key.referent_table),
                    py_list(&key.columns),
                    py_list(&key.referent_columns),
                    schema_kw("source_schema", &key.schema),
                    schema_kw("referent_schema", &key.referent_schema),
                    rules(ondelete, onupdate)
                )
            }
        };
        let drop = |r: &Recreate| {
            if style.batch {
                format!(
                    "batch_op.drop_constraint({}, type_='foreignkey')",
                    name_literal(&r.name)
                )
            } else {
                format!(
                    "op.drop_constraint({}, {}{}, type_='foreignkey')",
                    name_literal(&r.name),
                    py_str(table),
                    schema_kw("schema", schema)
                )
            }
        };
        for r in list {
            up_lines.push(drop(r));
        }
        for r in list {
            up_lines.push(create(
                r,
                &r.verdict.wanted_ondelete,
                &r.verdict.wanted_onupdate,
            ));
        }
        for r in list.iter().rev() {
            down_lines.push(drop(r));
        }
        for r in list.iter().rev() {
            down_lines.push(create(r, &r.verdict.key.ondelete, &r.verdict.key.onupdate));
        }
        if style.batch {
            let needs_convention = list.iter().find(|r| r.unnamed);
            let convention = needs_convention
                .map(|r| {
                    format!(
                        ", naming_convention={{'fk': {}}}",
                        py_str(&convention_for(style, &r.verdict.key))
                    )
                })
                .unwrap_or_default();
            let schema_arg = match schema {
                Some(s) => py_str(s),
                None => "None".into(),
            };
            let comments: Vec<String> = up_lines
                .iter()
                .take_while(|l| l.starts_with('#'))
                .cloned()
                .collect();
            let body: Vec<String> = up_lines[comments.len()..].to_vec();
            let mut block = comments;
            block.push(format!(
                "with op.batch_alter_table({}, schema={schema_arg}{convention}) as batch_op:",
                py_str(table)
            ));
            block.extend(body.iter().map(|l| format!("    {l}")));
            up.push(block.join("\n"));
            let mut block = vec![format!(
                "with op.batch_alter_table({}, schema={schema_arg}) as batch_op:",
                py_str(table)
            )];
            block.extend(down_lines.iter().map(|l| format!("    {l}")));
            down.push(block.join("\n"));
        } else {
            up.push(up_lines.join("\n"));
            down.push(down_lines.join("\n"));
        }
    }
    down.reverse();
    let header = "# Written by `fix-migrations repair`: each key below is dropped and recreated with the rules the models mean.";
    let sep = if style.batch { "\n\n" } else { "\n" };
    (format!("{header}\n{}", up.join(sep)), down.join(sep))
}

/// Create the new file; never replace an existing one.
fn write_new(path: &Path, text: &str) -> Result<()> {
    use std::io::Write as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| discover::io_error(path, &e))?;
    file.write_all(text.as_bytes())
        .map_err(|e| discover::io_error(path, &e))?;
    Ok(())
}

fn display(path: &Path, cwd: &Path) -> String {
    path.strip_prefix(cwd).unwrap_or(path).display().to_string()
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

// ---- output ----------------------------------------------------------------------------------

struct Outcome<'a> {
    plan: &'a RepairPlan,
    file: Option<&'a NewFile>,
    shown: Option<String>,
    write: bool,
    batch: bool,
    dialect: Option<Dialect>,
    unreadable: &'a [Unreadable],
}

impl Outcome<'_> {
    fn diff(&self) -> Option<String> {
        let (file, shown) = (self.file?, self.shown.as_deref()?);
        Some(
            similar::TextDiff::from_lines("", file.text.as_str())
                .unified_diff()
                .context_radius(3)
                .header("/dev/null", &format!("b/{shown}"))
                .to_string(),
        )
    }

    fn count(&self, status: VerdictStatus) -> usize {
        self.plan
            .verdicts
            .iter()
            .filter(|v| v.status == status)
            .count()
    }
}

fn print(outcome: &Outcome, common: &Common) -> Result<()> {
    match common.format {
        Format::Json => print_json(outcome),
        Format::Github => print_github(outcome),
        Format::Text => print_text(outcome, common),
        Format::Sarif => unreachable!("rejected before anything is written"),
    }
}

fn label(key: &ExistingKey) -> String {
    format!(
        "{}.{} -> {}.{}",
        qualified(key.schema.as_deref(), &key.table),
        key.columns.join(","),
        qualified(key.referent_schema.as_deref(), &key.referent_table),
        key.referent_columns.join(",")
    )
}

fn rules_text(ondelete: &Option<String>, onupdate: &Option<String>) -> String {
    let mut text = format!("ON DELETE {}", ondelete.as_deref().unwrap_or("NO ACTION"));
    if let Some(update) = onupdate {
        text.push_str(&format!(", ON UPDATE {update}"));
    }
    text
}

/// The reason line of one key, as the text output prints it.
pub fn verdict_line(verdict: &KeyVerdict) -> String {
    let key = &verdict.key;
    match verdict.status {
        VerdictStatus::Repair => format!(
            "{}: {}: {} -> {} ({})",
            key.origin,
            label(key),
            rules_text(&key.ondelete, &key.onupdate),
            rules_text(&verdict.wanted_ondelete, &verdict.wanted_onupdate),
            verdict.reason
        ),
        VerdictStatus::Ok => format!(
            "{}: {}: {} ({}) already right",
            key.origin,
            label(key),
            rules_text(&key.ondelete, &key.onupdate),
            verdict.reason
        ),
        VerdictStatus::Finding => format!(
            "{}: {}: left as it is (needs a human, see below)",
            key.origin,
            label(key)
        ),
    }
}

fn summary(outcome: &Outcome) -> String {
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    let repairs = outcome.count(VerdictStatus::Repair);
    let mut parts = Vec::new();
    if repairs > 0 {
        parts.push(format!("{} to repair", plural(repairs, "foreign key")));
    }
    let ok = outcome.count(VerdictStatus::Ok);
    if ok > 0 {
        parts.push(format!("{ok} already right"));
    }
    if !outcome.plan.findings.is_empty() {
        parts.push(plural(outcome.plan.findings.len(), "finding"));
    }
    if !outcome.unreadable.is_empty() {
        parts.push(format!(
            "{} not read",
            plural(outcome.unreadable.len(), "operation")
        ));
    }
    let head = if parts.is_empty() {
        "No foreign keys found".to_string()
    } else {
        parts.join(", ")
    };
    let tail = match (&outcome.shown, outcome.write) {
        (None, _) => "nothing to repair.".to_string(),
        (Some(path), true) => format!("wrote {path}."),
        (Some(path), false) => format!("would write {path} (dry run; --write writes it)."),
    };
    format!("{head}; {tail}")
}

fn print_text(outcome: &Outcome, common: &Common) -> Result<()> {
    let choice = match common.color {
        crate::cli::ColorWhen::Always => anstream::ColorChoice::Always,
        crate::cli::ColorWhen::Never => anstream::ColorChoice::Never,
        crate::cli::ColorWhen::Auto => anstream::ColorChoice::Auto,
    };
    let mut out = anstream::AutoStream::new(std::io::stdout().lock(), choice);
    let mut err = anstream::AutoStream::new(std::io::stderr().lock(), choice);
    let green = anstyle::Style::new().fg_color(Some(anstyle::AnsiColor::Green.into()));
    let yellow = anstyle::Style::new()
        .fg_color(Some(anstyle::AnsiColor::Yellow.into()))
        .bold();
    if !outcome.write
        && let Some(diff) = outcome.diff()
    {
        for line in diff.lines() {
            if line.starts_with('+') && !line.starts_with("+++") {
                writeln!(out, "{green}{line}{green:#}")?;
            } else {
                writeln!(out, "{line}")?;
            }
        }
    }
    out.flush()?;
    if !common.quiet {
        for verdict in &outcome.plan.verdicts {
            writeln!(err, "{}", verdict_line(verdict))?;
        }
    }
    for finding in &outcome.plan.findings {
        writeln!(
            err,
            "{}: {yellow}finding[{}]{yellow:#} {}",
            finding.origin, finding.code, finding.message
        )?;
    }
    for item in outcome.unreadable {
        writeln!(
            err,
            "{}: not read: {} (the keys above assume it touches no foreign key)",
            item.origin, item.what
        )?;
    }
    if !common.quiet {
        writeln!(err, "{}", summary(outcome))?;
    }
    Ok(())
}

#[derive(Serialize)]
struct JsonRepair<'a> {
    schema_version: u32,
    command: &'static str,
    dialect: Option<Dialect>,
    batch: bool,
    revision: Option<JsonRevision<'a>>,
    foreign_keys: &'a [KeyVerdict],
    findings: &'a [RepairFinding],
    unreadable: &'a [Unreadable],
    summary: JsonSummary,
}

#[derive(Serialize)]
struct JsonRevision<'a> {
    id: &'a str,
    path: String,
    down_revision: &'a [String],
    written: bool,
    diff: Option<String>,
}

#[derive(Serialize)]
struct JsonSummary {
    keys: usize,
    repair: usize,
    ok: usize,
    findings: usize,
    unreadable: usize,
}

fn print_json(outcome: &Outcome) -> Result<()> {
    let json = JsonRepair {
        schema_version: crate::report::JSON_SCHEMA_VERSION,
        command: "repair",
        dialect: outcome.dialect,
        batch: outcome.batch,
        revision: outcome.file.map(|file| JsonRevision {
            id: &file.id,
            path: outcome.shown.clone().unwrap_or_default(),
            down_revision: &file.down_revisions,
            written: outcome.write,
            diff: outcome.diff(),
        }),
        foreign_keys: &outcome.plan.verdicts,
        findings: &outcome.plan.findings,
        unreadable: outcome.unreadable,
        summary: JsonSummary {
            keys: outcome.plan.verdicts.len(),
            repair: outcome.count(VerdictStatus::Repair),
            ok: outcome.count(VerdictStatus::Ok),
            findings: outcome.plan.findings.len(),
            unreadable: outcome.unreadable.len(),
        },
    };
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut stdout, &json)?;
    writeln!(stdout)?;
    Ok(())
}

/// `file:line` of an origin, for annotations.
fn split_origin(origin: &str) -> (&str, Option<&str>) {
    match origin.rsplit_once(':') {
        Some((file, line)) if line.chars().all(|c| c.is_ascii_digit()) => (file, Some(line)),
        _ => (origin, None),
    }
}

fn print_github(outcome: &Outcome) -> Result<()> {
    let mut out = std::io::stdout().lock();
    let escape = crate::report::escape_github;
    let at = |origin: &str| {
        let (file, line) = split_origin(origin);
        let file = crate::report::escape_github_property(file);
        match line {
            Some(line) => format!("file={file},line={line}"),
            None => format!("file={file}"),
        }
    };
    for verdict in outcome.plan.repairs() {
        writeln!(
            out,
            "::warning {}::{}",
            at(&verdict.key.origin),
            escape(&verdict_line(verdict))
        )?;
    }
    for finding in &outcome.plan.findings {
        writeln!(
            out,
            "::error {}::finding[{}] {}",
            at(&finding.origin),
            finding.code,
            escape(&finding.message)
        )?;
    }
    for item in outcome.unreadable {
        writeln!(
            out,
            "::notice {}::not read: {}",
            at(&item.origin),
            escape(&item.what)
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_fields_and_unknown_mako() {
        let fields = TemplateFields {
            message: "repair",
            id: "abc123def456",
            down_revisions: &["1".into(), "2".into()],
            create_date: "2026-01-01 00:00:00.000000",
            upgrade: "a()\nb()",
            downgrade: "pass",
        };
        let text = render_template(DEFAULT_TEMPLATE, &fields).unwrap();
        assert!(text.contains("Revises: 1, 2\n"));
        assert!(text.contains("down_revision: Union[str, Sequence[str], None] = ('1', '2')\n"));
        assert!(text.contains("    a()\n    b()\n"));
        assert!(render_template("${foo}", &fields).is_none());
        assert!(render_template("% if x:\n", &fields).is_none());
    }
}
