//! Replay every revision's upgrade() in graph order into the set of foreign keys at head (or
//! just before a given revision): `create_table` constraints and inline keys, `add_column` with
//! an inline key, `create_foreign_key`, `drop_constraint`, `drop_table`, `rename_table`,
//! `drop_column`, `alter_column(new_column_name=...)`, plain or inside
//! `with op.batch_alter_table(...)`. What can't be read (`op.execute`, helper calls, operations
//! under `if` / `for`, names that are expressions) is listed in `Replay::unreadable`, never
//! guessed.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;

use anyhow::{Result, anyhow, bail};
use rayon::prelude::*;
use serde::Serialize;
use tree_sitter::Node;

use crate::discover::{Project, Revision};
use crate::keyset::{ExistingKey, KeySet};
use crate::migrations::{self, ConstraintName, FkSite, Keyword, Migration, Section};
use crate::models::Schema;
use crate::parse::Fields;
use crate::parse::{CallArgs, Imports, SourceFile, dotted_name, string_value};
use crate::policy::Action;

/// Which database the history runs on: it decides the names of keys created without one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    /// Unnamed keys are named `<table>_<cols>_fkey` (63 bytes at most).
    Postgresql,
    /// Keys created inside CREATE TABLE have no name at all.
    Sqlite,
}

impl Dialect {
    /// The dialect a SQLAlchemy URL names (`postgresql+psycopg2://...`, `sqlite:///...`).
    pub fn from_url(url: &str) -> Option<Dialect> {
        let scheme = url.split("://").next()?.split('+').next()?.trim();
        match scheme.to_ascii_lowercase().as_str() {
            "postgresql" | "postgres" => Some(Dialect::Postgresql),
            "sqlite" => Some(Dialect::Sqlite),
            _ => None,
        }
    }

    /// `--dialect` when given, else the scheme of `$DATABASE_URL`, else of `sqlalchemy.url` in
    /// alembic.ini. Returns the dialect and where it came from.
    pub fn detect(explicit: Option<Dialect>, project: &Project) -> Result<(Dialect, String)> {
        if let Some(dialect) = explicit {
            return Ok((dialect, "--dialect".into()));
        }
        let candidates = [
            (
                std::env::var("DATABASE_URL").ok(),
                "$DATABASE_URL".to_string(),
            ),
            (
                project.sqlalchemy_url.clone(),
                format!("sqlalchemy.url in {}", project.config_file.display()),
            ),
        ];
        for (url, source) in candidates {
            let Some(url) = url.filter(|u| !u.trim().is_empty()) else {
                continue;
            };
            return match Dialect::from_url(&url) {
                Some(dialect) => Ok((dialect, source)),
                None => bail!(
                    "{source}: `{}` is neither PostgreSQL nor SQLite; pass --dialect postgresql or --dialect sqlite",
                    url.split("://").next().unwrap_or(&url)
                ),
            };
        }
        Ok((
            Dialect::Postgresql,
            "default (no $DATABASE_URL, no sqlalchemy.url; --dialect sqlite for SQLite)".into(),
        ))
    }
}

/// An operation of upgrade() the replay could not follow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unreadable {
    pub revision: String,
    /// `migrations/versions/abc_add.py:12`, relative to the project root.
    pub origin: String,
    pub what: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Replay {
    pub keys: KeySet,
    pub unreadable: Vec<Unreadable>,
}

/// Revisions parents first: Kahn's algorithm over down_revisions, ties broken by id so the order
/// is stable. A down_revision naming no revision, or a cycle, is an error.
pub fn graph_order(revisions: &[Revision]) -> Result<Vec<&Revision>> {
    let by_id: HashMap<&str, &Revision> = revisions.iter().map(|r| (r.id.as_str(), r)).collect();
    let mut waiting: HashMap<&str, usize> = HashMap::new();
    let mut children: HashMap<&str, Vec<&str>> = HashMap::new();
    for revision in revisions {
        for down in &revision.down_revisions {
            if !by_id.contains_key(down.as_str()) {
                bail!(
                    "{}: down_revision {down:?} is no revision in the versions directories",
                    revision.path.display()
                );
            }
            children
                .entry(down.as_str())
                .or_default()
                .push(revision.id.as_str());
        }
        waiting.insert(revision.id.as_str(), revision.down_revisions.len());
    }
    let mut ready: BTreeSet<&str> = waiting
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|(id, _)| *id)
        .collect();
    let mut order = Vec::with_capacity(revisions.len());
    while let Some(id) = ready.pop_first() {
        order.push(by_id[id]);
        for child in children.get(id).into_iter().flatten() {
            let left = waiting.get_mut(child).expect("every child is a revision");
            *left -= 1;
            if *left == 0 {
                ready.insert(child);
            }
        }
    }
    if order.len() != revisions.len() {
        let stuck: Vec<&str> = waiting
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(id, _)| *id)
            .collect();
        bail!(
            "the revision graph has a cycle through {}",
            stuck.join(", ")
        );
    }
    Ok(order)
}

/// Every revision `id` depends on, directly or not (without `id` itself).
pub fn ancestors(revisions: &[Revision], id: &str) -> HashSet<String> {
    let by_id: HashMap<&str, &Revision> = revisions.iter().map(|r| (r.id.as_str(), r)).collect();
    let mut seen = HashSet::new();
    let mut stack: Vec<&str> = by_id
        .get(id)
        .map(|r| r.down_revisions.iter().map(String::as_str).collect())
        .unwrap_or_default();
    while let Some(next) = stack.pop() {
        if seen.insert(next.to_string())
            && let Some(revision) = by_id.get(next)
        {
            stack.extend(revision.down_revisions.iter().map(String::as_str));
        }
    }
    seen
}

/// Every revision of a project, parsed and scanned once, ready to be replayed to any point.
pub struct History {
    revisions: Vec<Revision>,
    order: Vec<String>,
    parsed: HashMap<String, Parsed>,
}

/// One revision file, read once.
/// Text without which a revision holds no operation that creates, drops, renames or hides a
/// key: foreign keys, `drop_table`, `rename_table`, `drop_column`, `alter_column`, raw SQL.
const HISTORY_MARKERS: &[&str] = &[
    "foreign",
    "drop_table",
    "rename_table",
    "drop_column",
    "alter_column",
    "execute",
];

fn may_change_keys(bytes: &[u8]) -> bool {
    static FINDER: std::sync::OnceLock<aho_corasick::AhoCorasick> = std::sync::OnceLock::new();
    FINDER
        .get_or_init(|| {
            aho_corasick::AhoCorasick::builder()
                .ascii_case_insensitive(true)
                .build(HISTORY_MARKERS)
                .expect("the marker list is a valid automaton")
        })
        .is_match(bytes)
}

struct Parsed {
    file: SourceFile,
    migration: Migration,
    imports: Imports,
    /// The path shown in origins, relative to the project root.
    origin_file: String,
}

impl History {
    pub fn load(root: &Path, revisions: Vec<Revision>) -> Result<History> {
        let order: Vec<String> = graph_order(&revisions)?
            .into_iter()
            .map(|r| r.id.clone())
            .collect();
        // A revision with none of the operations replay reads changes no key: never parsed.
        let parsed = revisions
            .par_iter()
            .map(|revision| -> Result<Option<(String, Parsed)>> {
                let bytes = std::fs::read(&revision.path)
                    .map_err(|e| crate::discover::io_error(&revision.path, &e))?;
                if !may_change_keys(&bytes) {
                    return Ok(None);
                }
                let file = crate::parse::parse_source(&revision.path, bytes)?;
                let origin_file = file
                    .path
                    .strip_prefix(root)
                    .unwrap_or(&file.path)
                    .display()
                    .to_string();
                let parsed = Parsed {
                    migration: migrations::scan(&file),
                    imports: Imports::read(&file),
                    file,
                    origin_file,
                };
                Ok(Some((revision.id.clone(), parsed)))
            })
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .flatten()
            .collect();
        Ok(History {
            revisions,
            order,
            parsed,
        })
    }

    pub fn revisions(&self) -> &[Revision] {
        &self.revisions
    }

    /// The revision a file holds, if it is one of the project's.
    pub fn revision_at(&self, path: &Path) -> Option<&Revision> {
        let wanted = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        self.revisions
            .iter()
            .find(|r| std::fs::canonicalize(&r.path).unwrap_or_else(|_| r.path.clone()) == wanted)
    }

    /// The keys at head: every revision replayed in graph order.
    pub fn at_head(&self, schema: &Schema, dialect: Dialect) -> Replay {
        self.replay_ids(self.order.iter(), schema, dialect)
    }

    /// The keys as they are just before `id` runs: its ancestors replayed in graph order.
    pub fn before(&self, id: &str, schema: &Schema, dialect: Dialect) -> Replay {
        let wanted = ancestors(&self.revisions, id);
        self.replay_ids(
            self.order.iter().filter(|r| wanted.contains(*r)),
            schema,
            dialect,
        )
    }

    fn replay_ids<'a>(
        &self,
        ids: impl Iterator<Item = &'a String>,
        schema: &Schema,
        dialect: Dialect,
    ) -> Replay {
        let mut state = State {
            dialect,
            convention: schema.fk_naming_convention.clone(),
            keys: Vec::new(),
            unreadable: Vec::new(),
        };
        for id in ids {
            if let Some(parsed) = self.parsed.get(id) {
                state.revision(parsed, id);
            }
        }
        let mut keys = KeySet { keys: state.keys };
        keys.sort();
        Replay {
            keys,
            unreadable: state.unreadable,
        }
    }
}

/// The keys at head: every revision replayed in graph order.
pub fn replay(
    root: &Path,
    revisions: &[Revision],
    schema: &Schema,
    dialect: Dialect,
) -> Result<Replay> {
    Ok(History::load(root, revisions.to_vec())?.at_head(schema, dialect))
}

/// The keys as they are just before `id` runs: its ancestors replayed in graph order.
pub fn replay_before(
    root: &Path,
    revisions: &[Revision],
    id: &str,
    schema: &Schema,
    dialect: Dialect,
) -> Result<Replay> {
    Ok(History::load(root, revisions.to_vec())?.before(id, schema, dialect))
}

/// The name PostgreSQL gives an unnamed foreign key: `<table>_<cols>_fkey`, both parts cut
/// (the longer first) so the whole fits 63 bytes, and `fkey1`, `fkey2`... when taken. This is
/// makeObjectName / ChooseConstraintName of PostgreSQL's source, restated.
pub fn postgres_fk_name(table: &str, columns: &[String], taken: &dyn Fn(&str) -> bool) -> String {
    const MAX: usize = 63;
    let columns = columns.join("_");
    for pass in 0.. {
        let label = if pass == 0 {
            "fkey".to_string()
        } else {
            format!("fkey{pass}")
        };
        let available = MAX - label.len() - 2;
        let (mut a, mut b) = (table.len(), columns.len());
        while a + b > available {
            if a > b {
                a -= 1;
            } else {
                b -= 1;
            }
        }
        let name = format!(
            "{}_{}_{label}",
            clip(table, a),
            clip(&columns, b),
            label = label
        );
        if !taken(&name) {
            return name;
        }
    }
    unreachable!("an unbounded range finds a free name")
}

/// The longest prefix of `text` of at most `len` bytes that ends on a character boundary.
fn clip(text: &str, len: usize) -> &str {
    let end = (0..=len.min(text.len()))
        .rev()
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(0);
    &text[..end]
}

/// `"s.t"` -> (Some("s"), "t").
pub fn split_qualified(name: &str) -> (Option<String>, String) {
    match name.rsplit_once('.') {
        Some((schema, table)) => (Some(schema.to_string()), table.to_string()),
        None => (None, name.to_string()),
    }
}

/// `ondelete='set null'` -> `Some("SET NULL")`; NO ACTION and no keyword -> None; an invalid
/// action is kept as written (upper case) so the policy can report it.
pub fn normalized_action(keyword: Option<&Keyword>) -> Option<String> {
    let text = keyword?.value.as_deref()?;
    match Action::parse(text) {
        Some(Action::NoAction) => None,
        Some(action) => Some(action.sql().to_string()),
        None => Some(text.trim().to_uppercase()),
    }
}

struct State {
    dialect: Dialect,
    convention: Option<String>,
    keys: Vec<ExistingKey>,
    unreadable: Vec<Unreadable>,
}

/// Alembic operation methods that may touch a foreign key; under control flow they are listed.
const KEY_OPERATIONS: &[&str] = &[
    "create_table",
    "add_column",
    "create_foreign_key",
    "drop_constraint",
    "drop_table",
    "rename_table",
    "drop_column",
    "alter_column",
    "execute",
    "batch_alter_table",
];

/// One file being replayed.
struct Reading<'f> {
    file: &'f SourceFile,
    src: &'f str,
    migration: &'f Migration,
    imports: &'f Imports,
    revision: String,
    origin_file: &'f str,
}

impl Reading<'_> {
    fn origin(&self, node: Node) -> String {
        format!(
            "{}:{}",
            self.origin_file,
            self.file.line_of(node.start_byte())
        )
    }

    /// `op.X` -> Some(("op", X)); `batch_op.X` bound by a batch block -> (alias, X).
    fn method(&self, call: Node) -> Option<(String, String)> {
        let function = call.field("function")?;
        let dotted = dotted_name(function, self.src)?;
        let (object, method) = dotted.rsplit_once('.')?;
        Some((object.to_string(), method.to_string()))
    }

    fn is_op(&self, object: &str) -> bool {
        object == "op" || self.imports.resolve(object) == "alembic.op"
    }

    fn sites_in(&self, node: Node) -> Vec<&FkSite> {
        let range = node.byte_range();
        self.migration
            .sites
            .iter()
            .filter(|s| {
                s.section == Section::Upgrade
                    && s.call.start >= range.start
                    && s.call.end <= range.end
            })
            .collect()
    }

    fn string_arg(&self, args: &CallArgs, index: usize, name: &str) -> Option<String> {
        args.arg(index, name)
            .and_then(|n| string_value(n, self.src))
    }

    /// `('t', schema='s')` -> "s.t".
    fn table_arg(&self, args: &CallArgs, index: usize, name: &str) -> Option<String> {
        let table = self.string_arg(args, index, name)?;
        match args
            .keyword("schema")
            .and_then(|s| string_value(s, self.src))
        {
            Some(schema) => Some(format!("{schema}.{table}")),
            None => Some(table),
        }
    }
}

/// What a `with op.batch_alter_table(...) as alias` block works on.
#[derive(Clone)]
struct Batch {
    alias: String,
    table: Option<String>,
}

impl State {
    fn revision(&mut self, parsed: &Parsed, revision: &str) {
        let file = &parsed.file;
        let reading = Reading {
            file,
            src: file.text.as_str(),
            migration: &parsed.migration,
            imports: &parsed.imports,
            revision: revision.to_string(),
            origin_file: &parsed.origin_file,
        };
        let root = file.tree.root_node();
        let mut cursor = root.walk();
        let upgrade = root.named_children(&mut cursor).find_map(|n| {
            let def = match n.kind() {
                "function_definition" => n,
                "decorated_definition" => n.field("definition")?,
                _ => return None,
            };
            let name = def.field("name")?;
            (&reading.src[name.byte_range()] == "upgrade").then_some(def)
        });
        if let Some(body) = upgrade.and_then(|d| d.field("body")) {
            self.block(&reading, body, &[]);
        }
    }

    fn unreadable(&mut self, reading: &Reading, node: Node, what: String) {
        self.unreadable.push(Unreadable {
            revision: reading.revision.clone(),
            origin: reading.origin(node),
            what,
        });
    }

    fn block(&mut self, reading: &Reading, block: Node, batches: &[Batch]) {
        let mut cursor = block.walk();
        let statements: Vec<Node> = block.named_children(&mut cursor).collect();
        for statement in statements {
            match statement.kind() {
                "expression_statement" => {
                    match statement.named_child(0).filter(|n| n.kind() == "call") {
                        Some(call) => self.call(reading, call, batches),
                        None => self.other_statement(reading, statement, batches),
                    }
                }
                "with_statement" => self.with_statement(reading, statement, batches),
                "comment" | "pass_statement" | "import_statement" | "import_from_statement" => {}
                _ => self.other_statement(reading, statement, batches),
            }
        }
    }

    fn with_statement(&mut self, reading: &Reading, statement: Node, batches: &[Batch]) {
        let mut inner = batches.to_vec();
        let mut cursor = statement.walk();
        let clause = statement
            .children(&mut cursor)
            .find(|c| c.kind() == "with_clause");
        if let Some(clause) = clause {
            let mut items = clause.walk();
            for item in clause.named_children(&mut items) {
                let Some(pattern) = item.field("value") else {
                    continue;
                };
                let (call, alias) = if pattern.kind() == "as_pattern" {
                    (
                        pattern.named_child(0),
                        pattern
                            .field("alias")
                            .map(|a| reading.src[a.byte_range()].trim().to_string()),
                    )
                } else {
                    (Some(pattern), None)
                };
                let Some(call) = call.filter(|c| c.kind() == "call") else {
                    continue;
                };
                let Some((object, method)) = reading.method(call) else {
                    continue;
                };
                if method != "batch_alter_table" || !reading.is_op(&object) {
                    continue;
                }
                let args = CallArgs::of(call, reading.src);
                let table = args
                    .as_ref()
                    .and_then(|a| reading.table_arg(a, 0, "table_name"));
                if table.is_none() {
                    self.unreadable(
                        reading,
                        call,
                        "op.batch_alter_table(...) whose table is not a string literal".into(),
                    );
                }
                if let (Some(table), Some(args)) = (&table, &args) {
                    self.batch_convention(reading, args, table);
                }
                if let Some(alias) = alias {
                    inner.push(Batch { alias, table });
                }
            }
        }
        if let Some(body) = statement.field("body") {
            self.block(reading, body, &inner);
        }
    }

    /// On SQLite, batch mode recreates the table from its reflection; a `naming_convention`
    /// passed to `batch_alter_table` names the keys that came back unnamed.
    fn batch_convention(&mut self, reading: &Reading, args: &CallArgs, table: &str) {
        if self.dialect != Dialect::Sqlite {
            return;
        }
        let Some(dict) = args.keyword("naming_convention") else {
            return;
        };
        let template = fk_template(dict, reading.src);
        let (schema, bare) = split_qualified(table);
        let Some(template) = template else {
            self.unreadable(
                reading,
                dict,
                "naming_convention is not a dict literal with a string \"fk\" entry".into(),
            );
            return;
        };
        for key in self
            .keys
            .iter_mut()
            .filter(|k| k.name.is_none() && k.table == bare && k.schema == schema)
        {
            key.name = crate::fix::render_convention(
                &template,
                &key.table,
                &key.columns,
                &key.referent_table,
                &key.referent_columns,
            );
        }
    }

    /// A statement that is not a plain call (an assignment, `if`, `for`, `try`...): operations
    /// inside it are listed, not replayed.
    fn other_statement(&mut self, reading: &Reading, statement: Node, batches: &[Batch]) {
        for node in crate::parse::descendants(statement) {
            if node.kind() != "call" {
                continue;
            }
            let Some((object, method)) = reading.method(node) else {
                continue;
            };
            let is_target = reading.is_op(&object) || batches.iter().any(|b| b.alias == object);
            if is_target && KEY_OPERATIONS.contains(&method.as_str()) {
                let text = first_line(&reading.src[node.byte_range()]);
                self.unreadable(
                    reading,
                    node,
                    format!(
                        "`{text}` inside a `{}` statement: not replayed",
                        statement.kind().trim_end_matches("_statement")
                    ),
                );
            }
        }
    }

    fn call(&mut self, reading: &Reading, call: Node, batches: &[Batch]) {
        let text = first_line(&reading.src[call.byte_range()]);
        let Some((object, method)) = reading.method(call) else {
            if !on_sqlalchemy_object(reading, call) {
                self.unreadable(
                    reading,
                    call,
                    format!("`{text}`: a call the tool can't follow"),
                );
            }
            return;
        };
        let batch = batches.iter().rev().find(|b| b.alias == object);
        if batch.is_none() && !reading.is_op(&object) {
            if !is_sqlalchemy(reading, &object) {
                self.unreadable(
                    reading,
                    call,
                    format!("`{text}`: a helper call the tool can't follow"),
                );
            }
            return;
        }
        let Some(args) = CallArgs::of(call, reading.src) else {
            return;
        };
        // Batch methods take no table argument: the block's table is implied.
        let shift = usize::from(batch.is_none());
        // drop_constraint(name, table, ...) is the one method that names its table second.
        let table_index = usize::from(method == "drop_constraint");
        let table = match batch {
            Some(b) => b.table.clone(),
            None => reading.table_arg(&args, table_index, "table_name"),
        };
        match method.as_str() {
            "create_table" | "add_column" | "create_foreign_key" => {
                for site in reading.sites_in(call) {
                    self.add_key(reading, call, site);
                }
            }
            "drop_constraint" => self.drop_constraint(reading, call, &args, batch, table),
            "drop_table" => match table {
                Some(table) => {
                    let (schema, bare) = split_qualified(&table);
                    self.keys
                        .retain(|k| !(k.table == bare && k.schema == schema));
                }
                None => self.unreadable(
                    reading,
                    call,
                    format!("`{text}`: the table name is not a string literal"),
                ),
            },
            "rename_table" => {
                let old = reading.table_arg(&args, 0, "old_table_name");
                let new = reading.string_arg(&args, 1, "new_table_name");
                match (old, new) {
                    (Some(old), Some(new)) => self.rename_table(&old, &new),
                    _ => self.unreadable(
                        reading,
                        call,
                        format!("`{text}`: the table names are not string literals"),
                    ),
                }
            }
            "drop_column" => {
                let column = reading.string_arg(&args, shift, "column_name");
                match (table, column) {
                    (Some(table), Some(column)) => {
                        let (schema, bare) = split_qualified(&table);
                        self.keys.retain(|k| {
                            !(k.table == bare && k.schema == schema && k.columns.contains(&column))
                        });
                    }
                    _ => self.unreadable(
                        reading,
                        call,
                        format!("`{text}`: the table or column is not a string literal"),
                    ),
                }
            }
            "alter_column" => {
                let Some(new_name) = args.keyword("new_column_name") else {
                    return;
                };
                let column = reading.string_arg(&args, shift, "column_name");
                let new_name = string_value(new_name, reading.src);
                match (table, column, new_name) {
                    (Some(table), Some(old), Some(new)) => self.rename_column(&table, &old, &new),
                    _ => self.unreadable(
                        reading,
                        call,
                        format!("`{text}`: the column rename is not made of string literals"),
                    ),
                }
            }
            "execute" => self.unreadable(
                reading,
                call,
                format!("`{text}`: raw SQL the tool does not read"),
            ),
            _ => {}
        }
    }

    fn add_key(&mut self, reading: &Reading, call: Node, site: &FkSite) {
        if let Some(why) = &site.skip {
            self.unreadable(
                reading,
                call,
                format!("a foreign key at line {} not replayed: {why}", site.line),
            );
            return;
        }
        let (Some(table), Some(referent)) = (&site.table, &site.referent_table) else {
            return;
        };
        let (schema, table) = split_qualified(table);
        let (referent_schema, referent_table) = split_qualified(referent);
        let name = match &site.name {
            ConstraintName::Known(name) => Some(name.clone()),
            ConstraintName::Unknown => {
                self.unreadable(
                    reading,
                    call,
                    format!(
                        "a foreign key at line {} not replayed: its name is not a string literal",
                        site.line
                    ),
                );
                return;
            }
            ConstraintName::Absent | ConstraintName::Unnamed(_) => self.default_name(
                &schema,
                &table,
                &site.columns,
                &referent_table,
                &site.referent_columns,
            ),
        };
        self.keys.push(ExistingKey {
            schema,
            table,
            name,
            columns: site.columns.clone(),
            referent_schema,
            referent_table,
            referent_columns: site.referent_columns.clone(),
            ondelete: normalized_action(site.ondelete.as_ref()),
            onupdate: normalized_action(site.onupdate.as_ref()),
            origin: format!("{}:{}", reading.origin_file, site.line),
        });
    }

    /// The name the database gives a key created without one: the models' naming convention
    /// (Alembic's operations use the target metadata's), else the dialect's own choice.
    fn default_name(
        &self,
        schema: &Option<String>,
        table: &str,
        columns: &[String],
        referent: &str,
        referent_columns: &[String],
    ) -> Option<String> {
        if let Some(template) = &self.convention
            && let Some(name) =
                crate::fix::render_convention(template, table, columns, referent, referent_columns)
        {
            return Some(name);
        }
        match self.dialect {
            Dialect::Sqlite => None,
            Dialect::Postgresql => {
                let taken = |name: &str| {
                    self.keys
                        .iter()
                        .any(|k| &k.schema == schema && k.name.as_deref() == Some(name))
                };
                Some(postgres_fk_name(table, columns, &taken))
            }
        }
    }

    fn drop_constraint(
        &mut self,
        reading: &Reading,
        call: Node,
        args: &CallArgs,
        batch: Option<&Batch>,
        table: Option<String>,
    ) {
        let text = first_line(&reading.src[call.byte_range()]);
        let type_index = if batch.is_some() { 1 } else { 2 };
        let kind = reading.string_arg(args, type_index, "type_");
        if kind
            .as_deref()
            .is_some_and(|k| !k.eq_ignore_ascii_case("foreignkey"))
        {
            return;
        }
        let name = args
            .arg(0, "constraint_name")
            .and_then(|n| constraint_name(n, reading.src));
        let (Some(table), Some(name)) = (table, name) else {
            if kind.is_some() {
                self.unreadable(
                    reading,
                    call,
                    format!("`{text}`: which key it drops is unknown (no literal name or table)"),
                );
            }
            return;
        };
        let (schema, bare) = split_qualified(&table);
        let before = self.keys.len();
        self.keys.retain(|k| {
            !(k.table == bare && k.schema == schema && k.name.as_deref() == Some(name.as_str()))
        });
        // Without type_ the constraint may be a unique or check one: only a miss with
        // type_='foreignkey' says the history lost track.
        if self.keys.len() == before && kind.is_some() {
            self.unreadable(
                reading,
                call,
                format!(
                    "`{text}`: drops {name} on {table}, which the replayed history does not hold"
                ),
            );
        }
    }

    fn rename_table(&mut self, old: &str, new: &str) {
        let (schema, old_bare) = split_qualified(old);
        for key in &mut self.keys {
            if key.table == old_bare && key.schema == schema {
                key.table = new.to_string();
            }
            if key.referent_table == old_bare && key.referent_schema == schema {
                key.referent_table = new.to_string();
            }
        }
    }

    fn rename_column(&mut self, table: &str, old: &str, new: &str) {
        let (schema, bare) = split_qualified(table);
        let rename = |columns: &mut Vec<String>| {
            for column in columns.iter_mut().filter(|c| *c == old) {
                *column = new.to_string();
            }
        };
        for key in &mut self.keys {
            if key.table == bare && key.schema == schema {
                rename(&mut key.columns);
            }
            if key.referent_table == bare && key.referent_schema == schema {
                rename(&mut key.referent_columns);
            }
        }
    }
}

/// A call on `sa.` / `sqlalchemy.` (a type's `.create(bind)`, say) never touches a key.
fn is_sqlalchemy(reading: &Reading, object: &str) -> bool {
    let resolved = reading.imports.resolve(object);
    resolved.starts_with("sqlalchemy")
}

/// `sa.Enum(...).create(bind)`: a method of a SQLAlchemy object (types, DDL), not a key.
fn on_sqlalchemy_object(reading: &Reading, call: Node) -> bool {
    let object = call
        .field("function")
        .filter(|f| f.kind() == "attribute")
        .and_then(|f| f.field("object"))
        .filter(|o| o.kind() == "call")
        .and_then(|o| o.field("function"))
        .and_then(|f| dotted_name(f, reading.src));
    object.is_some_and(|name| is_sqlalchemy(reading, &name))
}

/// `'name'` or `op.f('name')`.
fn constraint_name(node: Node, src: &str) -> Option<String> {
    if let Some(name) = string_value(node, src) {
        return Some(name);
    }
    if node.kind() == "call"
        && node
            .field("function")
            .is_some_and(|f| src[f.byte_range()].ends_with(".f"))
    {
        let args = CallArgs::of(node, src)?;
        return string_value(*args.positional.first()?, src);
    }
    None
}

/// The `"fk"` entry of a `naming_convention={...}` dict literal.
fn fk_template(dict: Node, src: &str) -> Option<String> {
    if dict.kind() != "dictionary" {
        return None;
    }
    let mut cursor = dict.walk();
    let pairs: Vec<Node> = dict
        .named_children(&mut cursor)
        .filter(|n| n.kind() == "pair")
        .collect();
    let mut entries: BTreeMap<String, Option<String>> = BTreeMap::new();
    for pair in pairs {
        let key = pair.field("key").and_then(|k| string_value(k, src))?;
        let value = pair.field("value").and_then(|v| string_value(v, src));
        entries.insert(key, value);
    }
    entries.remove("fk").flatten()
}

fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or("").trim();
    if line.len() < text.trim().len() {
        format!("{line} ...")
    } else {
        line.to_string()
    }
}

/// Read and parse every revision of the project, with a clear error for a broken graph.
pub fn read_graph(project: &Project) -> Result<Vec<Revision>> {
    let revisions = crate::discover::read_revisions(project)?;
    graph_order(&revisions).map_err(|e| anyhow!("{}: {e:#}", project.config_file.display()))?;
    Ok(revisions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_names_cut_the_longer_part_first() {
        let none = |_: &str| false;
        assert_eq!(
            postgres_fk_name("notes", &["author_id".into()], &none),
            "notes_author_id_fkey"
        );
        let table = "t".repeat(70);
        let name = postgres_fk_name(&table, &["owner_id".into()], &none);
        assert_eq!(name.len(), 63);
        assert_eq!(name, format!("{}_owner_id_fkey", "t".repeat(49)));
        let taken = |n: &str| n == "a_b_fkey";
        assert_eq!(postgres_fk_name("a", &["b".into()], &taken), "a_b_fkey1");
    }

    #[test]
    fn dialect_from_url() {
        assert_eq!(
            Dialect::from_url("postgresql+psycopg2://u@h/db"),
            Some(Dialect::Postgresql)
        );
        assert_eq!(Dialect::from_url("sqlite:///app.db"), Some(Dialect::Sqlite));
        assert_eq!(Dialect::from_url("mysql://h/db"), None);
    }
}
