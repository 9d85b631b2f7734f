//! Step 4: a parsed migration -> the foreign key sites in it (`FkSite`), the foreign key drops
//! (`DropSite`) and enough structure (statements, blocks) for the fixer to remove a revert pair.
//! Import-aware: `sa.ForeignKeyConstraint`, `sqlalchemy.ForeignKey`, `from sqlalchemy import
//! ForeignKeyConstraint as FKC` are all the same thing; a project-local `ForeignKey` is not.

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use serde::{Deserialize, Serialize};
use tree_sitter::Node;

use crate::parse::Fields;
use crate::parse::{
    CallArgs, Imports, MarkerOffsets, SourceFile, bool_literal, descendants, dotted_name, is_none,
    is_true, string_list, string_value, unwrap_parens, walk_where,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SiteKind {
    /// `sa.ForeignKeyConstraint(...)` inside `op.create_table(...)`.
    CreateTable,
    /// `sa.ForeignKey(...)` inside `sa.Column(...)` of `create_table` / `add_column`.
    Inline,
    CreateForeignKey,
    BatchCreateForeignKey,
    /// `ForeignKey(...)` in a model's column (`--fix-models`).
    ModelForeignKey,
    /// SQLModel `Field(foreign_key=...)` in a model (`--fix-models`).
    ModelField,
    /// `ForeignKeyConstraint(...)` in a model's `__table_args__` or `Table(...)` (`--fix-models`).
    ModelConstraint,
    /// A project helper's call in a model's `Mapped[...]` (`--fix-models`).
    ModelHelper,
}

impl SiteKind {
    /// The call as a user wrote it, for a report line that has no table to name.
    pub fn call(self) -> &'static str {
        match self {
            SiteKind::CreateTable | SiteKind::ModelConstraint => "ForeignKeyConstraint(...)",
            SiteKind::Inline | SiteKind::ModelForeignKey => "ForeignKey(...)",
            SiteKind::CreateForeignKey => "op.create_foreign_key(...)",
            SiteKind::BatchCreateForeignKey => "batch_op.create_foreign_key(...)",
            SiteKind::ModelField => "Field(foreign_key=...)",
            SiteKind::ModelHelper => "the key helper's call",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Section {
    Upgrade,
    Downgrade,
    Other,
    /// A key of a model file, not of a migration (`--fix-models`).
    Model,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "value")]
pub enum ConstraintName {
    /// No name argument at all (table constraints and inline keys usually have none).
    Absent,
    /// A literal `None`: Alembic's unnamed constraint. The range is the `None` token.
    Unnamed(#[serde(skip)] Range<usize>),
    /// `'name'` or `op.f('name')`.
    Known(String),
    /// A variable, f-string or expression the tool can't know.
    Unknown,
}

/// An `ondelete=` / `onupdate=` keyword already in the call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Keyword {
    /// The literal value, None when it is not a plain string literal.
    pub value: Option<String>,
    #[serde(skip)]
    pub value_range: Range<usize>,
}

/// Where a new keyword argument goes, read off the call's argument list so the insertion
/// matches the call's own layout (one line, or black's one-argument-per-line).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ArgLayout {
    /// Byte offset of the closing `)`.
    pub close: usize,
    /// End of the last argument (before any trailing comma).
    pub last_arg_end: usize,
    /// Byte offset of a trailing comma after the last argument.
    pub trailing_comma: Option<usize>,
    /// The closing `)` sits on a later line than the last argument.
    pub close_on_own_line: bool,
    /// Indentation of the last argument's line, used for a new argument line.
    pub arg_indent: String,
    /// `()`: a new argument is the first, with no comma before it.
    pub empty: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct FkSite {
    pub kind: SiteKind,
    pub section: Section,
    pub line: usize,
    #[serde(skip)]
    pub call: Range<usize>,
    /// Source table, qualified `schema.table` when the call names a schema.
    pub table: Option<String>,
    pub columns: Vec<String>,
    pub referent_table: Option<String>,
    pub referent_columns: Vec<String>,
    pub name: ConstraintName,
    pub ondelete: Option<Keyword>,
    pub onupdate: Option<Keyword>,
    /// Why the tool will not edit this call, when it won't.
    pub skip: Option<String>,
    #[serde(skip)]
    pub layout: ArgLayout,
    /// The quote character the call's strings use.
    #[serde(skip)]
    pub quote: char,
    /// The whole statement, for `create_foreign_key` calls that may be removed as a revert pair.
    #[serde(skip)]
    pub statement: Option<StatementId>,
    /// A `create_foreign_key`'s other keywords (`deferrable=True`, `match=...`) as written,
    /// sorted: a drop + create pair that changes one of them is no mere revert.
    #[serde(skip)]
    pub options: Vec<(String, String)>,
    /// A `ForeignKey` in a batch block's `add_column`: on SQLite the table is recreated, and an
    /// unnamed key there fails with "Constraint must have a name".
    #[serde(skip)]
    pub in_batch: bool,
}

impl FkSite {
    /// The `ondelete=` literal the call already has.
    pub fn ondelete_text(&self) -> Option<&str> {
        self.ondelete.as_ref().and_then(|k| k.value.as_deref())
    }

    /// The `onupdate=` literal the call already has.
    pub fn onupdate_text(&self) -> Option<&str> {
        self.onupdate.as_ref().and_then(|k| k.value.as_deref())
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct DropSite {
    pub section: Section,
    pub line: usize,
    pub table: Option<String>,
    pub name: ConstraintName,
    #[serde(skip)]
    pub statement: StatementId,
    /// The `batch_alter_table(...)` call of the `with` block the drop sits in.
    #[serde(skip)]
    pub batch: Option<BatchCall>,
}

/// A `batch_alter_table(...)` call, read for the `naming_convention=` an unnamed drop needs.
#[derive(Debug, Clone)]
pub struct BatchCall {
    /// Where the call starts: the same for every statement of one `with` block.
    pub start: usize,
    pub layout: ArgLayout,
    /// The call already passes `naming_convention=`.
    pub has_naming_convention: bool,
}

pub type StatementId = usize;
pub type BlockId = usize;

/// A simple statement that may be removed, with the lines it occupies.
#[derive(Debug, Clone)]
pub struct Statement {
    /// Whole lines: from the start of the statement's first line through its final newline,
    /// widened upward over Alembic's "constraint name is None" warning comment.
    pub lines: Range<usize>,
    /// That warning comment's lines alone, when present.
    pub warning: Option<Range<usize>>,
    /// The statement owns its lines alone (no `a; b`, nothing else on them), so removing the
    /// lines removes exactly it.
    pub removable: bool,
    pub block: BlockId,
}

#[derive(Debug, Clone)]
pub struct Block {
    /// How many statements the block holds in all.
    pub statement_count: usize,
    /// The `with` statement owning this block (its whole lines), or None for a function body.
    pub with_lines: Option<Range<usize>>,
    pub parent: Option<BlockId>,
    /// Indentation of the block's statements, for a `pass` when it is left empty.
    pub indent: String,
}

#[derive(Debug, Default)]
pub struct Migration {
    pub sites: Vec<FkSite>,
    pub drops: Vec<DropSite>,
    pub statements: Vec<Statement>,
    pub blocks: Vec<Block>,
    /// The file spells actions in lower case (`ondelete='cascade'`): new ones follow suit.
    pub lowercase_actions: bool,
    pub default_quote: char,
    /// The name this file binds Alembic's `op` module to (`op` unless imported `as` another).
    pub op_alias: String,
    /// The first use of `sqlmodel.` (`sqlmodel.sql.sqltypes.AutoString`, as autogenerate
    /// renders SQLModel's str columns) and its line, when nothing binds the name `sqlmodel`.
    pub missing_sqlmodel_import: Option<(usize, String)>,
    /// (table, column) -> nullable, for the columns upgrade() creates or alters with a stated
    /// nullability (see `Scanner::read_nullability`): what the database will hold.
    pub nullability: HashMap<(String, String), bool>,
    /// (table, column) -> has a server default, for the key columns upgrade() creates or
    /// alters stating `server_default=` (read with the nullability): SET DEFAULT has a value
    /// to set even where the models give none.
    pub server_defaults: HashMap<(String, String), bool>,
}

const SA_MODULES: &[&str] = &["sqlalchemy", "sa"];

/// What upgrade() states of a key column it creates or alters.
enum Stated {
    Nullable(bool),
    ServerDefault(bool),
}
/// The modules whose `import *` brings `ForeignKey`, `ForeignKeyConstraint` and `Column`.
const SA_STAR_MODULES: &[&str] = &["sqlalchemy", "sqlalchemy.schema"];

/// Text without which a file holds nothing `scan` reports or the fixer edits: `ForeignKey(`,
/// `ForeignKeyConstraint(`, `create_foreign_key(` and `drop_constraint(..., type_='foreignkey')`
/// (matched ignoring ASCII case, as the `type_` value is), `sqlmodel.` and suppression comments.
/// A file with none of them is never parsed. The one list: whatever the scanner learns to read
/// must add its marker here.
pub const KEY_MARKERS: &[&str] = &[
    "foreignkey",
    "foreign_key",
    // The missing `import sqlmodel` fix.
    "sqlmodel",
    // Suppression comments, reported when unused.
    "fix-migrations:",
];

/// `create_foreign_key`'s keywords that say which key it makes and its delete / update rules,
/// and `match`, which autogenerate neither compares nor renders in the downgrade() mirror; any
/// other keyword is an option of the key (`deferrable`, `initially`).
const CREATE_FK_ARGS: &[&str] = &[
    "match",
    "constraint_name",
    "source_table",
    "referent_table",
    "local_cols",
    "remote_cols",
    "source_schema",
    "referent_schema",
    "ondelete",
    "onupdate",
];

fn create_options(args: &CallArgs, src: &str) -> Vec<(String, String)> {
    let mut options: Vec<(String, String)> = args
        .keywords
        .iter()
        .filter(|(k, _, _)| !CREATE_FK_ARGS.contains(k))
        // Alembic renders the model's `initially="deferred"` as written and the database's as
        // `'DEFERRED'`: literals compare without case.
        .map(|(k, _, v)| {
            let value = string_value(*v, src).map_or_else(
                || src[v.byte_range()].to_string(),
                |text| text.to_ascii_uppercase(),
            );
            (k.to_string(), value)
        })
        .collect();
    options.sort();
    options
}

/// True when the file may hold anything the fixer edits or reports (a foreign key call, a use
/// of `sqlmodel.`, a suppression comment), judged from its bytes alone.
pub fn may_hold_keys(bytes: &[u8]) -> bool {
    static FINDER: std::sync::OnceLock<aho_corasick::AhoCorasick> = std::sync::OnceLock::new();
    FINDER
        .get_or_init(|| {
            aho_corasick::AhoCorasick::builder()
                .ascii_case_insensitive(true)
                .build(KEY_MARKERS)
                .expect("the marker list is a valid automaton")
        })
        .is_match(bytes)
}

/// The callee names `Scanner::visit_call` acts on all contain one of these (case-insensitive):
/// `ForeignKeyConstraint`, `ForeignKey`, `create_foreign_key`, `drop_constraint`.
const SCAN_MARKERS: &[&str] = &["foreignkey", "foreign_key", "drop_constraint"];
static SCAN_FINDER: std::sync::OnceLock<aho_corasick::AhoCorasick> = std::sync::OnceLock::new();

pub fn scan(file: &SourceFile) -> Migration {
    let imports = Imports::read(file);
    let op_alias = imports
        .local_name_for("alembic.op")
        .unwrap_or("op")
        .to_string();
    let mut scanner = Scanner {
        src: file.text.as_str(),
        file,
        imports,
        migration: Migration {
            default_quote: dominant_quote(&file.text),
            op_alias,
            ..Migration::default()
        },
        block_ids: HashMap::new(),
        module_names: std::cell::OnceCell::new(),
    };
    // Every call the scanner acts on names a marker in its callee (after import aliases are
    // resolved), so only subtrees holding one are entered.
    let finder = crate::parse::marker_finder(&SCAN_FINDER, SCAN_MARKERS, true);
    let markers = MarkerOffsets::find(&file.text, finder);
    let prune = !scanner.imports.alias_hides(finder);
    let holds_marker = |n: Node| !prune || markers.any_within(n.byte_range());
    for node in walk_where(file.tree.root_node(), holds_marker) {
        if node.kind() == "call" && holds_marker(node) {
            scanner.visit_call(node);
        }
    }
    if scanner
        .migration
        .sites
        .iter()
        .any(|s| s.section == Section::Upgrade)
    {
        scanner.read_nullability();
    }
    scanner.migration.lowercase_actions = lowercase_actions(&scanner.migration.sites, &file.text);
    scanner.migration.missing_sqlmodel_import =
        unbound_module_use(file, &scanner.imports, "sqlmodel");
    scanner.migration
}

/// The first `module.<attr>...` (its line and dotted text) used while no import binds `module`.
/// None as soon as the name appears any other way (an assignment, a parameter, a `global`): the
/// tool never guesses whether it is bound.
fn unbound_module_use(
    file: &SourceFile,
    imports: &Imports,
    module: &str,
) -> Option<(usize, String)> {
    if imports.is_bound(module) {
        return None;
    }
    // Only the subtrees where the name's text occurs can hold a use of it.
    let uses = MarkerOffsets::of(&file.text, module);
    if uses.is_empty() {
        return None;
    }
    let holds_use = |n: Node| uses.any_within(n.byte_range());
    let mut first_use = None;
    for node in walk_where(file.tree.root_node(), holds_use) {
        if node.kind() != "identifier" || file.text_of(node) != module {
            continue;
        }
        let mut ancestor = node.parent();
        let mut in_import = false;
        while let Some(a) = ancestor {
            if matches!(
                a.kind(),
                "import_statement" | "import_from_statement" | "future_import_statement"
            ) {
                in_import = true;
                break;
            }
            ancestor = a.parent();
        }
        if in_import {
            continue;
        }
        let is_object = node
            .parent()
            .is_some_and(|p| p.kind() == "attribute" && p.field("object") == Some(node));
        if !is_object {
            return None;
        }
        if first_use.is_none() {
            // The whole dotted chain: `sqlmodel.sql.sqltypes.AutoString`.
            let mut chain = node;
            while let Some(parent) = chain.parent() {
                if parent.kind() == "attribute" && parent.field("object") == Some(chain) {
                    chain = parent;
                } else {
                    break;
                }
            }
            first_use = Some((
                file.line_of(node.start_byte()),
                file.text_of(chain).to_string(),
            ));
        }
    }
    first_use
}

struct Scanner<'a> {
    file: &'a SourceFile,
    src: &'a str,
    imports: Imports,
    migration: Migration,
    /// tree-sitter block node id -> BlockId
    block_ids: HashMap<usize, BlockId>,
    /// Names the module binds itself, read once and only for a file with a star import.
    module_names: std::cell::OnceCell<std::collections::HashSet<String>>,
}

/// What a callee is, once import aliases are resolved.
enum Callee<'t> {
    /// `op.<method>` on Alembic's op module (or a bare `op` handed to a helper).
    Op(String),
    /// `<alias>.<method>` where alias is bound by `with op.batch_alter_table(...) as alias`;
    /// carries the `batch_alter_table(...)` call.
    Batch(String, Node<'t>),
    /// `<object>.<method>` on anything else: a batch object passed into a helper, say.
    OtherObject(String, String),
    /// A SQLAlchemy name: `ForeignKeyConstraint`, `ForeignKey`, `Column`.
    Sa(String),
    Other,
}

impl<'a> Scanner<'a> {
    fn text(&self, node: Node) -> &'a str {
        &self.src[node.byte_range()]
    }

    fn callee<'t>(&self, call: Node<'t>) -> Callee<'t> {
        let Some(function) = call.field("function") else {
            return Callee::Other;
        };
        let Some(dotted) = dotted_name(function, self.src) else {
            return Callee::Other;
        };
        let resolved = self.imports.resolve(&dotted);
        if let Some(last) = crate::parse::callee_from(&resolved, SA_MODULES) {
            return Callee::Sa(last.to_string());
        }
        // `from sqlalchemy import *` and then a bare `ForeignKey(...)`, unless the file binds
        // that name itself.
        if !dotted.contains('.')
            && !self.imports.is_bound(&dotted)
            && self.imports.star_imports_from(SA_STAR_MODULES)
            && !self
                .module_names
                .get_or_init(|| crate::parse::module_level_names(self.file))
                .contains(&dotted)
        {
            return Callee::Sa(dotted);
        }
        let Some((object_path, method)) = dotted.rsplit_once('.') else {
            return Callee::Other;
        };
        if self.imports.resolve(object_path) == "alembic.op" || object_path == "op" {
            return Callee::Op(method.to_string());
        }
        if !object_path.contains('.')
            && let Some(with_call) = batch_with_for(object_path, call, self.src)
        {
            return Callee::Batch(method.to_string(), with_call);
        }
        Callee::OtherObject(object_path.to_string(), method.to_string())
    }

    /// The nullability upgrade() gives the columns it creates or alters, in source order (a
    /// later `alter_column` wins): `sa.Column(name, ..., nullable=..., primary_key=...)` in
    /// `create_table` (with its `PrimaryKeyConstraint`) and `add_column`, and
    /// `alter_column(table, name, nullable=...)`, batch forms included. The database gets
    /// what the migration says, so a model read wrong (or out of step) can't put SET NULL on
    /// a column the migration makes NOT NULL.
    fn read_nullability(&mut self) {
        static FINDER: std::sync::OnceLock<aho_corasick::AhoCorasick> = std::sync::OnceLock::new();
        let finder = crate::parse::marker_finder(
            &FINDER,
            &["create_table", "add_column", "alter_column"],
            false,
        );
        let root = self.file.tree.root_node();
        // Only the key columns matter: a create_table's other columns are not read at all.
        let needed: HashSet<String> = self
            .migration
            .sites
            .iter()
            .filter(|s| s.section == Section::Upgrade)
            .flat_map(|s| s.columns.iter().cloned())
            .collect();
        let mut stated: Vec<(String, String, Stated)> = Vec::new();
        for found in finder.find_iter(self.src) {
            let call = root
                .descendant_for_byte_range(found.start(), found.end())
                .and_then(|name| name.parent())
                .filter(|a| a.kind() == "attribute")
                .and_then(|a| a.parent())
                .filter(|c| c.kind() == "call");
            let Some(call) = call else { continue };
            if section_of(call, self.file) != Section::Upgrade {
                continue;
            }
            let Some(args) = CallArgs::of(call, self.src) else {
                continue;
            };
            match self.callee(call) {
                Callee::Op(m) if m == "create_table" => {
                    let Some(table) =
                        self.qualified(args.arg(0, "table_name"), args.keyword("schema"))
                    else {
                        continue;
                    };
                    for column in args.positional.iter().skip(1) {
                        self.stated_columns(*column, &table, &needed, &mut stated);
                    }
                }
                Callee::Op(m) if m == "add_column" => {
                    if let (Some(table), Some(column)) = (
                        self.qualified(args.arg(0, "table_name"), args.keyword("schema")),
                        args.arg(1, "column"),
                    ) {
                        self.stated_columns(column, &table, &needed, &mut stated);
                    }
                }
                Callee::Batch(m, with_call) if m == "add_column" => {
                    if let (Some(table), Some(column)) =
                        (self.batch_table(with_call), args.arg(0, "column"))
                    {
                        self.stated_columns(column, &table, &needed, &mut stated);
                    }
                }
                // `op.alter_column(table, name, ...)`, `batch_op.alter_column(name, ...)`.
                Callee::Op(m) if m == "alter_column" => {
                    let table = self.qualified(args.arg(0, "table_name"), args.keyword("schema"));
                    stated.extend(self.altered(&args, table, 1));
                }
                Callee::Batch(m, with_call) if m == "alter_column" => {
                    stated.extend(self.altered(&args, self.batch_table(with_call), 0));
                }
                _ => {}
            }
        }
        for (table, column, fact) in stated {
            match fact {
                Stated::Nullable(nullable) => {
                    self.migration.nullability.insert((table, column), nullable)
                }
                Stated::ServerDefault(given) => self
                    .migration
                    .server_defaults
                    .insert((table, column), given),
            };
        }
    }

    /// What an `alter_column` call states of its column: `nullable=` (or the kept
    /// `existing_nullable=`), `server_default=` (or `existing_server_default=`; False, the
    /// default, changes nothing, None drops it). The column is its argument at `index`, or the
    /// `new_column_name=` it gets.
    fn altered(
        &self,
        args: &CallArgs,
        table: Option<String>,
        index: usize,
    ) -> Vec<(String, String, Stated)> {
        let column = args
            .keyword("new_column_name")
            .or_else(|| args.arg(index, "column_name"))
            .and_then(|c| string_value(c, self.src));
        let (Some(table), Some(column)) = (table, column) else {
            return vec![];
        };
        let nullable = args
            .keyword("nullable")
            .or_else(|| args.keyword("existing_nullable"))
            .and_then(|v| bool_literal(v, self.src))
            .map(Stated::Nullable);
        let stated_default = |keyword: &str| {
            args.keyword(keyword)
                .filter(|v| bool_literal(unwrap_parens(*v), self.src) != Some(false))
        };
        let server_default = stated_default("server_default")
            .or_else(|| stated_default("existing_server_default"))
            .map(|v| Stated::ServerDefault(!is_none(v)));
        [nullable, server_default]
            .into_iter()
            .flatten()
            .map(|fact| (table.clone(), column.clone(), fact))
            .collect()
    }

    /// A `sa.Column(name, ..., nullable=..., primary_key=...)` or `sa.PrimaryKeyConstraint(...)`
    /// argument of a table: the nullability it states (autogenerate always writes
    /// `nullable=`).
    fn stated_columns(
        &self,
        node: Node,
        table: &str,
        needed: &HashSet<String>,
        stated: &mut Vec<(String, String, Stated)>,
    ) {
        let node = unwrap_parens(node);
        if node.kind() != "call" {
            return;
        }
        // A Column whose name is no key column: skipped before its callee is even resolved.
        let first = node
            .field("arguments")
            .and_then(|a| a.named_child(0))
            .and_then(|n| string_value(n, self.src));
        let is_column = self
            .text(node.field("function").unwrap_or(node))
            .ends_with("Column");
        if is_column && first.is_some_and(|name| !needed.contains(&name)) {
            return;
        }
        let Callee::Sa(name) = self.callee(node) else {
            return;
        };
        let Some(args) = CallArgs::of(node, self.src) else {
            return;
        };
        match name.as_str() {
            "Column" => {
                let Some(column) = args
                    .positional
                    .first()
                    .and_then(|n| string_value(*n, self.src))
                else {
                    return;
                };
                let primary_key = args
                    .keyword("primary_key")
                    .is_some_and(|v| is_true(v, self.src));
                // Only what the call states: without `nullable=` the models keep deciding (a
                // hand-written Column's default is nullable, which SET NULL can't break).
                let nullable = match args.keyword("nullable") {
                    Some(v) => bool_literal(v, self.src),
                    None => primary_key.then_some(false),
                };
                if let Some(v) = args.keyword("server_default") {
                    stated.push((
                        table.to_string(),
                        column.clone(),
                        Stated::ServerDefault(!is_none(v)),
                    ));
                }
                if let Some(nullable) = nullable {
                    stated.push((table.to_string(), column, Stated::Nullable(nullable)));
                }
            }
            "PrimaryKeyConstraint" => {
                for column in args
                    .positional
                    .iter()
                    .filter_map(|n| string_value(*n, self.src))
                    .filter(|c| needed.contains(c))
                {
                    stated.push((table.to_string(), column, Stated::Nullable(false)));
                }
            }
            _ => {}
        }
    }

    fn visit_call(&mut self, call: Node) {
        match self.callee(call) {
            Callee::Sa(name) if name == "ForeignKeyConstraint" => self.table_constraint(call),
            Callee::Sa(name) if name == "ForeignKey" => self.inline_key(call),
            Callee::Op(method) if method == "create_foreign_key" => {
                self.create_foreign_key(call, None)
            }
            Callee::Batch(method, with_call) if method == "create_foreign_key" => {
                self.create_foreign_key(call, Some(with_call))
            }
            Callee::Op(method) if method == "drop_constraint" => self.drop_constraint(call, None),
            Callee::Batch(method, with_call) if method == "drop_constraint" => {
                self.drop_constraint(call, Some(with_call))
            }
            Callee::OtherObject(object, method) if method == "create_foreign_key" => {
                let mut site = self.new_site(call, SiteKind::BatchCreateForeignKey);
                site.skip = Some(format!(
                    "`{object}` is not Alembic's `op` nor bound by `with op.batch_alter_table(...)`: the source table is unknown"
                ));
                self.migration.sites.push(site);
            }
            _ => {}
        }
    }

    fn new_site(&self, call: Node, kind: SiteKind) -> FkSite {
        FkSite {
            kind,
            section: section_of(call, self.file),
            line: self.file.line_of(call.start_byte()),
            call: call.byte_range(),
            table: None,
            columns: vec![],
            referent_table: None,
            referent_columns: vec![],
            name: ConstraintName::Absent,
            ondelete: None,
            onupdate: None,
            skip: None,
            layout: ArgLayout::default(),
            quote: first_quote(call, self.src).unwrap_or(self.migration.default_quote),
            statement: None,
            options: vec![],
            in_batch: false,
        }
    }

    /// `sa.ForeignKeyConstraint(['author_id'], ['users.id'], ondelete=...)` in `op.create_table`.
    fn table_constraint(&mut self, call: Node) {
        let mut site = self.new_site(call, SiteKind::CreateTable);
        let Some(args) = CallArgs::of(call, self.src) else {
            return;
        };
        self.read_options(&mut site, &args);
        // ForeignKeyConstraint(columns, refcolumns, name, onupdate, ondelete, ...)
        if args.positional.len() > 2 {
            site.skip = Some("options passed positionally (name, onupdate, ondelete)".into());
        }
        site.name = args
            .keyword("name")
            .map_or(ConstraintName::Absent, |n| self.constraint_name(n));
        site.columns = args
            .arg(0, "columns")
            .and_then(|n| string_list(n, self.src))
            .unwrap_or_default();
        let targets = args
            .arg(1, "refcolumns")
            .and_then(|n| string_list(n, self.src));
        match targets.as_deref().and_then(split_targets) {
            Some((table, cols)) => {
                site.referent_table = Some(table);
                site.referent_columns = cols;
            }
            None => site.skip = Some("the referenced columns are not string literals".into()),
        }
        if site.columns.is_empty() && site.skip.is_none() {
            site.skip = Some("the local columns are not string literals".into());
        }
        match self.enclosing_op_call(call, &["create_table"]) {
            Some(table) => site.table = table,
            None => {
                site.skip
                    .get_or_insert_with(|| "not inside `op.create_table(...)`".into());
            }
        }
        if site.table.is_none() {
            site.skip
                .get_or_insert_with(|| "the table name is not a string literal".into());
        }
        self.migration.sites.push(site);
    }

    /// `sa.ForeignKey('users.id')` inside `sa.Column('author_id', ...)` inside `op.create_table`
    /// or `add_column`.
    fn inline_key(&mut self, call: Node) {
        let mut site = self.new_site(call, SiteKind::Inline);
        let Some(args) = CallArgs::of(call, self.src) else {
            return;
        };
        self.read_options(&mut site, &args);
        // ForeignKey(column, _constraint, use_alter, name, onupdate, ondelete, ...)
        if args.positional.len() > 1 {
            site.skip = Some("options passed positionally (name, onupdate, ondelete)".into());
        }
        site.name = args
            .keyword("name")
            .map_or(ConstraintName::Absent, |n| self.constraint_name(n));
        let target = args
            .arg(0, "column")
            .and_then(|n| string_value(n, self.src));
        match target
            .as_deref()
            .and_then(|t| split_targets(&[t.to_string()]))
        {
            Some((table, cols)) => {
                site.referent_table = Some(table);
                site.referent_columns = cols;
            }
            None => site.skip = Some("the referenced column is not a string literal".into()),
        }
        let column_call = call
            .parent()
            .filter(|p| p.kind() == "argument_list")
            .and_then(|p| p.parent())
            .filter(|c| {
                c.kind() == "call" && matches!(self.callee(*c), Callee::Sa(ref n) if n == "Column")
            });
        let Some(column_call) = column_call else {
            // A ForeignKey outside a Column: not something a migration applies.
            return;
        };
        let column = CallArgs::of(column_call, self.src)
            .and_then(|a| a.arg(0, "name"))
            .and_then(|n| string_value(n, self.src));
        match column {
            Some(column) => site.columns = vec![column],
            None => {
                site.skip
                    .get_or_insert_with(|| "the column name is not a string literal".into());
            }
        }
        match self.enclosing_op_call(column_call, &["create_table", "add_column"]) {
            Some(table) => site.table = table,
            None => return,
        }
        site.in_batch = column_call
            .parent()
            .and_then(|list| list.parent())
            .is_some_and(|op| matches!(self.callee(op), Callee::Batch(..)));
        if site.table.is_none() {
            site.skip
                .get_or_insert_with(|| "the table name is not a string literal".into());
        }
        self.migration.sites.push(site);
    }

    /// `op.create_foreign_key(name, source, referent, local_cols, remote_cols, ...)` or, in a
    /// batch block, `batch_op.create_foreign_key(name, referent, local_cols, remote_cols, ...)`.
    fn create_foreign_key(&mut self, call: Node, batch: Option<Node>) {
        let kind = if batch.is_some() {
            SiteKind::BatchCreateForeignKey
        } else {
            SiteKind::CreateForeignKey
        };
        let mut site = self.new_site(call, kind);
        let Some(args) = CallArgs::of(call, self.src) else {
            return;
        };
        self.read_options(&mut site, &args);
        let shift = usize::from(batch.is_none());
        if args.positional.len() > 4 + shift {
            site.skip = Some("more positional arguments than create_foreign_key takes".into());
        }
        site.name = args
            .arg(0, "constraint_name")
            .map_or(ConstraintName::Absent, |n| self.constraint_name(n));
        site.table = match batch {
            Some(with_call) => self.batch_table(with_call),
            None => self.qualified(args.arg(1, "source_table"), args.keyword("source_schema")),
        };
        site.referent_table = self.qualified(
            args.arg(1 + shift, "referent_table"),
            args.keyword("referent_schema"),
        );
        site.columns = args
            .arg(2 + shift, "local_cols")
            .and_then(|n| string_list(n, self.src))
            .unwrap_or_default();
        site.referent_columns = args
            .arg(3 + shift, "remote_cols")
            .and_then(|n| string_list(n, self.src))
            .unwrap_or_default();
        if site.skip.is_none() {
            site.skip = if site.table.is_none() {
                Some("the source table is not a string literal".into())
            } else if site.referent_table.is_none() {
                Some("the referent table is not a string literal".into())
            } else if site.columns.is_empty() || site.referent_columns.is_empty() {
                Some("the columns are not string literals".into())
            } else {
                None
            };
        }
        site.statement = self.statement_of(call);
        site.options = create_options(&args, self.src);
        self.migration.sites.push(site);
    }

    /// `op.drop_constraint(name, table, type_='foreignkey')`, or the batch form without a table.
    fn drop_constraint(&mut self, call: Node, batch: Option<Node>) {
        let Some(args) = CallArgs::of(call, self.src) else {
            return;
        };
        let is_fk = args
            .arg(if batch.is_some() { 1 } else { 2 }, "type_")
            .and_then(|n| string_value(n, self.src))
            .is_some_and(|t| t.eq_ignore_ascii_case("foreignkey"));
        if !is_fk {
            return;
        }
        let Some(statement) = self.statement_of(call) else {
            return;
        };
        let table = match batch {
            Some(with_call) => self.batch_table(with_call),
            None => self.qualified(args.arg(1, "table_name"), args.keyword("schema")),
        };
        let name = args
            .arg(0, "constraint_name")
            .map_or(ConstraintName::Absent, |n| self.constraint_name(n));
        let batch = batch.and_then(|with_call| {
            let args = CallArgs::of(with_call, self.src)?;
            Some(BatchCall {
                start: with_call.start_byte(),
                layout: arg_layout(args.list, self.file),
                has_naming_convention: args.has_splat
                    || args.keyword("naming_convention").is_some(),
            })
        });
        self.migration.drops.push(DropSite {
            section: section_of(call, self.file),
            line: self.file.line_of(call.start_byte()),
            table,
            name,
            statement,
            batch,
        });
    }

    /// ondelete / onupdate already in the call, `**kwargs` that may carry them, and where a new
    /// keyword would go.
    fn read_options(&self, site: &mut FkSite, args: &CallArgs) {
        let keyword = |name: &str| {
            args.keyword(name).map(|value| Keyword {
                value: match value.kind() {
                    // SQLAlchemy's default: no clause, which every database reads as NO ACTION.
                    "none" => Some(NONE_LITERAL_ACTION.into()),
                    _ => string_value(value, self.src),
                },
                value_range: value.byte_range(),
            })
        };
        site.ondelete = keyword("ondelete");
        site.onupdate = keyword("onupdate");
        site.layout = arg_layout(args.list, self.file);
        if args.has_splat {
            site.skip = Some("`*args` / `**kwargs` may already carry ondelete".into());
        } else if site.ondelete.as_ref().is_some_and(|k| k.value.is_none()) {
            site.skip = Some("ondelete is not a string literal".into());
        } else if site.onupdate.as_ref().is_some_and(|k| k.value.is_none()) {
            site.skip = Some("onupdate is not a string literal".into());
        }
    }

    fn constraint_name(&self, node: Node) -> ConstraintName {
        if node.kind() == "none" {
            return ConstraintName::Unnamed(node.byte_range());
        }
        if let Some(name) = string_value(node, self.src) {
            return ConstraintName::Known(name);
        }
        // op.f('name') marks a name as final; the name is the literal inside.
        if node.kind() == "call"
            && node
                .field("function")
                .is_some_and(|f| self.text(f).ends_with(".f"))
            && let Some(name) = CallArgs::of(node, self.src)
                .and_then(|a| a.positional.first().copied())
                .and_then(|n| string_value(n, self.src))
        {
            return ConstraintName::Known(name);
        }
        ConstraintName::Unknown
    }

    /// `'t'` with `schema='s'` -> `"s.t"`; `schema=None` or no schema -> `"t"`.
    fn qualified(&self, table: Option<Node>, schema: Option<Node>) -> Option<String> {
        let table = string_value(table?, self.src)?;
        match schema.and_then(|s| string_value(s, self.src)) {
            Some(schema) => Some(format!("{schema}.{table}")),
            None => Some(table),
        }
    }

    fn batch_table(&self, with_call: Node) -> Option<String> {
        let args = CallArgs::of(with_call, self.src)?;
        self.qualified(args.arg(0, "table_name"), args.keyword("schema"))
    }

    /// The nearest enclosing `op.<method>(...)` call among `methods` (or the batch form of
    /// `add_column`), with the table it names.
    fn enclosing_op_call(&self, node: Node, methods: &[&str]) -> Option<Option<String>> {
        let mut current = node.parent();
        while let Some(n) = current {
            if n.kind() == "call" {
                match self.callee(n) {
                    Callee::Op(m) if methods.contains(&m.as_str()) => {
                        let args = CallArgs::of(n, self.src)?;
                        return Some(
                            self.qualified(args.arg(0, "table_name"), args.keyword("schema")),
                        );
                    }
                    Callee::Batch(m, with_call)
                        if m == "add_column" && methods.contains(&"add_column") =>
                    {
                        return Some(self.batch_table(with_call));
                    }
                    _ => return None,
                }
            }
            current = n.parent();
        }
        None
    }

    /// Register the expression statement holding `call` (and its block) for possible removal.
    fn statement_of(&mut self, call: Node) -> Option<StatementId> {
        let statement = call
            .parent()
            .filter(|p| p.kind() == "expression_statement")?;
        let block_node = statement.parent().filter(|p| p.kind() == "block")?;
        let block = self.block_id(block_node);
        let start = self.file.line_start(statement.start_byte());
        let end = line_end(&self.file.text, statement.end_byte());
        let before = &self.src[start..statement.start_byte()];
        let after = &self.src[statement.end_byte()..end];
        let removable = before.trim().is_empty()
            && (after.trim().is_empty() || after.trim_start().starts_with('#'));
        let warning = warning_comment_above(&self.file.text, start).map(|w| w..start);
        self.migration.statements.push(Statement {
            lines: warning.as_ref().map_or(start, |w| w.start)..end,
            warning,
            removable,
            block,
        });
        Some(self.migration.statements.len() - 1)
    }

    fn block_id(&mut self, block_node: Node) -> BlockId {
        if let Some(id) = self.block_ids.get(&block_node.id()) {
            return *id;
        }
        let parent = block_node
            .parent()
            .and_then(|p| p.parent())
            .and_then(|gp| ancestor_block(gp))
            .map(|outer| self.block_id(outer));
        let mut cursor = block_node.walk();
        let statements: Vec<Node> = block_node
            .named_children(&mut cursor)
            .filter(|c| !c.is_extra())
            .collect();
        let indent = statements
            .first()
            .map(|s| self.src[self.file.line_start(s.start_byte())..s.start_byte()].to_string())
            .unwrap_or_default();
        let with_lines = block_node
            .parent()
            .filter(|p| p.kind() == "with_statement")
            .map(|w| self.file.line_start(w.start_byte())..line_end(&self.file.text, w.end_byte()));
        self.migration.blocks.push(Block {
            statement_count: statements.len(),
            with_lines,
            parent,
            indent,
        });
        let id = self.migration.blocks.len() - 1;
        self.block_ids.insert(block_node.id(), id);
        id
    }
}

fn ancestor_block(node: Node) -> Option<Node> {
    let mut current = Some(node);
    while let Some(n) = current {
        if n.kind() == "block" {
            return Some(n);
        }
        current = n.parent();
    }
    None
}

/// The `op.batch_alter_table(...)` call of the `with` block that binds `alias` around `node`.
fn batch_with_for<'t>(alias: &str, node: Node<'t>, src: &str) -> Option<Node<'t>> {
    let mut current = node.parent();
    while let Some(n) = current {
        if n.kind() == "with_statement" {
            let mut cursor = n.walk();
            let clause = n.children(&mut cursor).find(|c| c.kind() == "with_clause");
            if let Some(clause) = clause {
                let mut items = clause.walk();
                for item in clause.named_children(&mut items) {
                    let Some(pattern) = item.field("value") else {
                        continue;
                    };
                    if pattern.kind() != "as_pattern" {
                        continue;
                    }
                    let bound = pattern.field("alias").map(|a| src[a.byte_range()].trim());
                    let value = pattern.named_child(0);
                    if bound == Some(alias)
                        && let Some(value) = value.filter(|v| v.kind() == "call")
                        && value
                            .field("function")
                            .is_some_and(|f| src[f.byte_range()].ends_with("batch_alter_table"))
                    {
                        return Some(value);
                    }
                }
            }
        }
        current = n.parent();
    }
    None
}

fn section_of(node: Node, file: &SourceFile) -> Section {
    match crate::parse::enclosing_function(node, file) {
        Some(name) if name.starts_with("upgrade") => Section::Upgrade,
        Some(name) if name.starts_with("downgrade") => Section::Downgrade,
        _ => Section::Other,
    }
}

/// `['users.id']` -> ("users", ["id"]); `['sales.order.id']` -> ("sales.order", ["id"]).
/// All targets must name the same table.
pub fn split_targets(targets: &[String]) -> Option<(String, Vec<String>)> {
    let mut table: Option<String> = None;
    let mut columns = Vec::with_capacity(targets.len());
    for target in targets {
        let (t, c) = target.rsplit_once('.')?;
        if table.as_deref().is_some_and(|known| known != t) {
            return None;
        }
        table = Some(t.to_string());
        columns.push(c.to_string());
    }
    Some((table?, columns))
}

pub fn arg_layout(list: Node, file: &SourceFile) -> ArgLayout {
    let close = list.end_byte().saturating_sub(1);
    let mut cursor = list.walk();
    let children: Vec<Node> = list.children(&mut cursor).collect();
    let last_arg = children
        .iter()
        .rev()
        .find(|c| c.is_named() && !c.is_extra());
    let Some(last_arg) = last_arg else {
        return ArgLayout {
            close,
            last_arg_end: list.start_byte() + 1,
            empty: true,
            ..ArgLayout::default()
        };
    };
    let trailing_comma = children
        .iter()
        .find(|c| !c.is_named() && c.kind() == "," && c.start_byte() >= last_arg.end_byte())
        .map(|c| c.start_byte());
    let line_start = file.line_start(last_arg.start_byte());
    let indent: String = file.text[line_start..last_arg.start_byte()]
        .chars()
        .take_while(|c| c.is_whitespace())
        .collect();
    ArgLayout {
        close,
        last_arg_end: last_arg.end_byte(),
        trailing_comma,
        // Measured from the trailing comma when there is one: a `,)` line of its own after the
        // last argument is still the one-line shape.
        close_on_own_line: file.line_of(close)
            > file.line_of(trailing_comma.unwrap_or(last_arg.end_byte())),
        arg_indent: indent,
        empty: false,
    }
}

/// End of the line holding `byte`, past its newline.
pub fn line_end(text: &str, byte: usize) -> usize {
    text[byte..].find('\n').map_or(text.len(), |i| byte + i + 1)
}

/// Alembic writes this three-line comment above every `drop_constraint(None, ...)`. Returns the
/// start of its first line when the lines right above `line_start` are that comment.
fn warning_comment_above(text: &str, line_start: usize) -> Option<usize> {
    const MARKERS: [&str; 3] = [
        "WARNING: constraint name is None",
        "Add a name, or use a naming convention",
        "naming.html",
    ];
    let mut start = line_start;
    for marker in MARKERS.iter().rev() {
        if start == 0 {
            return None;
        }
        let prev_start = text[..start - 1].rfind('\n').map_or(0, |i| i + 1);
        let line = text[prev_start..start].trim();
        if !(line.starts_with('#') && line.contains(marker)) {
            return None;
        }
        start = prev_start;
    }
    Some(start)
}

fn first_quote(call: Node, src: &str) -> Option<char> {
    descendants(call)
        .into_iter()
        .find(|n| n.kind() == "string")
        .and_then(|n| crate::parse::quote_of(n, src))
}

fn dominant_quote(text: &str) -> char {
    if text.matches('"').count() > text.matches('\'').count() {
        '"'
    } else {
        '\''
    }
}

/// What `ondelete=None` reads as.
const NONE_LITERAL_ACTION: &str = "NO ACTION";

/// The file writes its actions in lower case. A `None` is not a spelling the file chose, so it
/// casts no vote.
fn lowercase_actions(sites: &[FkSite], src: &str) -> bool {
    let values: Vec<&str> = sites
        .iter()
        .flat_map(|s| [&s.ondelete, &s.onupdate])
        .flatten()
        .filter(|k| src.get(k.value_range.clone()) != Some("None"))
        .filter_map(|k| k.value.as_deref())
        .filter(|v| v.chars().any(|c| c.is_alphabetic()))
        .collect();
    !values.is_empty() && values.iter().all(|v| *v == v.to_lowercase())
}
