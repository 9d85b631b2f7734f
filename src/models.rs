//! Step 3: model files -> one `Schema` (tables, columns, foreign keys, relationships), whatever
//! style the models are written in: declarative `Column`, typed `Mapped`/`mapped_column`,
//! Flask-SQLAlchemy `db.Model`, SQLModel `table=True`.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use tree_sitter::Node;

use crate::bindings::{Binding, Bindings};
use crate::migrations::{ArgLayout, arg_layout};
use crate::parse::Fields;
use crate::parse::{
    CallArgs, Imports, MarkerOffsets, SourceFile, bool_literal, callee_from, descendants,
    dotted_name, holds_statements, is_none, is_true, quote_of, string_list, string_value,
    unwrap_parens, walk_where,
};

/// Where something was declared, for the reason lines users read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    /// Shared by everything declared in one file: a schema holds tens of thousands of origins.
    #[serde(serialize_with = "shared_path::serialize")]
    #[serde(deserialize_with = "shared_path::deserialize")]
    pub file: Arc<Path>,
    pub line: usize,
}

/// `Arc<Path>` as a plain path string, read back with one allocation per distinct path: the
/// cached schema of a large project decodes about twice as fast.
mod shared_path {
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::path::Path;
    use std::sync::Arc;

    use serde::{Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(path: &Arc<Path>, serializer: S) -> Result<S::Ok, S::Error> {
        path.as_ref().serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Arc<Path>, D::Error> {
        struct Interned;
        impl serde::de::Visitor<'_> for Interned {
            type Value = Arc<Path>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a path")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Arc<Path>, E> {
                thread_local! {
                    static SEEN: RefCell<HashMap<String, Arc<Path>>> = RefCell::new(HashMap::new());
                }
                Ok(SEEN.with(|seen| {
                    let mut seen = seen.borrow_mut();
                    if let Some(path) = seen.get(text) {
                        return path.clone();
                    }
                    let path: Arc<Path> = Arc::from(Path::new(text));
                    seen.insert(text.to_string(), path.clone());
                    path
                }))
            }
        }
        deserializer.deserialize_str(Interned)
    }
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Schema {
    /// Keyed by the table's qualified name: `"users"`, or `"sales.order"` when a schema is set.
    pub tables: BTreeMap<String, Table>,
    /// Mapped class name -> qualified table name, to resolve relationship targets.
    pub classes: BTreeMap<String, String>,
    /// `MetaData(naming_convention={"fk": ...})`'s foreign key template, when the models set one.
    pub fk_naming_convention: Option<String>,
    /// Class names that two mapped classes share, mapping different tables (`blog.Comment`,
    /// `shop.Comment`): a relationship naming or declared on one can't be placed, so it
    /// decides nothing rather than land its cascade on the other class's keys.
    pub ambiguous_classes: BTreeSet<String>,
    /// Relationships by the table their declaring class maps to, built by the policy on first
    /// use: it asks for every key of every migration and must not walk every relationship each
    /// time. Derived data, so never cached or compared; reset it if the schema changes.
    #[serde(skip)]
    pub relationship_index: std::sync::OnceLock<crate::policy::RelationshipIndex>,
    /// The directory a reason shows model files from (`app/users/models.py:14`): the project's
    /// root, set by the run that read the schema. None shows the file's name alone. Set per
    /// run, never cached.
    #[serde(skip)]
    pub shown_from: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Table {
    pub name: String,
    pub schema: Option<String>,
    /// The mapped class, None for `Table("name", metadata, ...)` association tables.
    pub class_name: Option<String>,
    /// A `Table(...)` object that links two tables: named by a relationship's `secondary=`, or
    /// holding only key and primary key columns (see `mark_association_tables`).
    pub is_association: bool,
    pub origin: Origin,
    pub columns: BTreeMap<String, Column>,
    pub foreign_keys: Vec<ModelForeignKey>,
    pub relationships: Vec<Relationship>,
    /// Mapped attributes whose column has another name (`author_id =
    /// mapped_column("author", ...)`): `foreign_keys="Post.author_id"` means column `author`.
    pub attribute_columns: BTreeMap<String, String>,
    /// Joined-table inheritance: the table of the nearest mapped ancestor with a table of its
    /// own (`class Manager(Employee)` -> `employee`). A relationship declared on the subclass
    /// also holds for keys that point at that table: deleting a Manager deletes its employee
    /// row, and the relationship's cascade with it.
    pub inherits: Option<String>,
    /// Single-table inheritance: each subclass mapped onto this table (`class Engineer(Person)`
    /// with no table of its own) and the columns it declares itself. A relationship to such a
    /// subclass deletes that subclass's rows only, so it speaks for a key only when the
    /// subclass declares the key's columns (the other classes' rows leave them NULL).
    #[serde(default)]
    pub single_table_subclasses: BTreeMap<String, Vec<String>>,
}

impl Table {
    /// `schema.name`, or `name` without a schema: how keys and messages name the table.
    pub fn qualified_name(&self) -> String {
        qualified(self.schema.as_deref(), &self.name)
    }

    /// The same database table (name and schema).
    pub fn same_table(&self, other: &Table) -> bool {
        self.name == other.name && self.schema == other.schema
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    pub nullable: bool,
    pub primary_key: bool,
    /// The column has a server default, or may have one the reader can't see (`**options`,
    /// `sa_column_kwargs` it can't read): ON DELETE SET DEFAULT has a value to set.
    pub server_default: bool,
    pub origin: Origin,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelForeignKey {
    pub columns: Vec<String>,
    /// Qualified referent table as written: `"users"` or `"sales.order"`.
    pub referent_table: String,
    pub referent_columns: Vec<String>,
    pub ondelete: Option<String>,
    pub onupdate: Option<String>,
    pub origin: Origin,
    /// `ondelete=` given to `Column()`/`mapped_column()` instead of `ForeignKey()` (seed 000):
    /// SQLAlchemy raises TypeError at import time, so the value is a finding, not evidence.
    pub misplaced_ondelete: Option<String>,
    /// Where the key is written, for `--fix-models`. Not part of the JSON model.
    #[serde(skip)]
    pub source: Option<KeySource>,
}

/// Which call declares a model key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyCall {
    /// `ForeignKey(...)` in `Column(...)` / `mapped_column(...)` / `db.Column(...)`.
    ForeignKey,
    /// SQLModel `Field(foreign_key=...)`.
    Field,
    /// `ForeignKeyConstraint(...)` in `__table_args__` or `Table(...)`.
    Constraint,
    /// A project helper's call in `Mapped[...]` (see `Factory`), whose parameters carry the
    /// actions.
    Helper,
}

/// The spans `--fix-models` needs to write a decision back into the call that declares a key.
#[derive(Debug, Clone, PartialEq)]
pub struct KeySource {
    pub call: KeyCall,
    /// The whole call.
    pub range: Range<usize>,
    /// Where a new keyword argument goes.
    pub layout: ArgLayout,
    /// The quote character the call's strings use, when it has a string.
    pub quote: Option<char>,
    /// `ondelete=` / `onupdate=` is present, even when its value can't be read.
    pub has_ondelete: bool,
    pub has_onupdate: bool,
    /// `*args` / `**kwargs`: the call may already carry anything.
    pub has_splat: bool,
    /// The keywords that carry the actions: `ondelete` / `onupdate`, or the names of a
    /// helper's parameters (None: the helper takes no onupdate, so none can be written).
    pub ondelete_keyword: String,
    pub onupdate_keyword: Option<String>,
    /// `ondelete=` given to the enclosing `Column()` / `mapped_column()` instead (seed 000).
    pub misplaced: Option<MisplacedOndelete>,
}

/// A misplaced `ondelete=` keyword in a column call.
#[derive(Debug, Clone, PartialEq)]
pub struct MisplacedOndelete {
    /// From the end of the argument before it to the end of the keyword: removing it leaves the
    /// call's own separators as they were.
    pub removal: Range<usize>,
    /// The value as written (`"CASCADE"`), to move verbatim.
    pub value_text: String,
    /// The column call holds exactly one `ForeignKey(...)`, so there is one place to move it to.
    pub single_key: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Relationship {
    /// Class the relationship attribute is declared on.
    pub declared_on: String,
    pub attribute: String,
    /// Target class name as written (`"Note"`), resolved through `Schema::classes`.
    pub target: String,
    /// `cascade=` string, as written.
    pub cascade: Option<String>,
    pub passive_deletes: bool,
    /// `passive_deletes="all"`: the ORM leaves the children's keys alone when the parent goes.
    pub passive_deletes_all: bool,
    /// SQLModel `Relationship(cascade_delete=True)`.
    pub cascade_delete: bool,
    /// Local column names named by `foreign_keys=` (`[Note.author_id]` -> `author_id`,
    /// `"Note.author_id"` -> `author_id`). Empty when not given.
    pub foreign_keys: Vec<String>,
    /// `remote_side=` given: on a self-referential relationship this makes it many-to-one,
    /// unless it names the key's own column (`remote_side=[parent_id]`: one-to-many).
    pub has_remote_side: bool,
    /// The attributes `remote_side=` names.
    pub remote_side: Vec<String>,
    pub back_populates: Option<String>,
    /// `backref("name", cascade=..., passive_deletes=...)` or `backref="name"`: configures the
    /// reverse relationship, declared here but belonging to the target class.
    pub backref: Option<Backref>,
    /// `secondary=` table name for many-to-many relationships.
    pub secondary: Option<String>,
    /// `primaryjoin="Parent.id == Child.parent_id"`'s two sides as (class, attribute); empty
    /// when the join is anything else (an `and_()`, a lambda with calls). The side on the
    /// child's class names the key's columns, as `foreign_keys=` would.
    pub join: Option<Vec<(String, String)>>,
    /// Options the reader could not read that may set the cascade (`**KW` from another
    /// module, `cascade=make_cascade()`), as written: the relationship may delete rows or not.
    pub unread_options: Option<String>,
    pub origin: Origin,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Backref {
    pub name: String,
    pub cascade: Option<String>,
    pub passive_deletes: bool,
    pub passive_deletes_all: bool,
}

impl Schema {
    pub fn table(&self, qualified: &str) -> Option<&Table> {
        self.tables.get(qualified)
    }

    /// `file:line` as a reason shows it: from `shown_from` when the file is under it (a
    /// project's model files are often all called `models.py`), else the file's name.
    pub fn shown_origin(&self, file: &Path, line: usize) -> String {
        let shown = self
            .shown_from
            .as_deref()
            .and_then(|root| file.strip_prefix(root).ok())
            .filter(|relative| !relative.as_os_str().is_empty())
            .or_else(|| file.file_name().map(Path::new))
            .unwrap_or(file);
        format!("{}:{line}", shown.display())
    }
}

// ---------------------------------------------------------------------------------------------
// Reading. Phase 0 collects cross-file facts (SQLAlchemy() instances, string constants, naming
// convention dicts); phase 1 reads each file into owned facts; phase 2 resolves inheritance,
// table names and `Model.id` targets once every class is known.
// ---------------------------------------------------------------------------------------------

/// Module roots whose exports are SQLAlchemy's (or re-export it). `sa` counts even when not
/// imported because snippets and hand-written code rely on the convention.
const SA_MODULES: &[&str] = &["sqlalchemy", "sqlmodel", "flask_sqlalchemy", "sa"];

/// Names in a relationship annotation that wrap the target class rather than name it.
const TYPE_WRAPPERS: &[&str] = &[
    "Mapped",
    "WriteOnlyMapped",
    "DynamicMapped",
    "Optional",
    "Union",
    "List",
    "list",
    "Set",
    "set",
    "FrozenSet",
    "frozenset",
    "Sequence",
    "MutableSequence",
    "Collection",
    "Iterable",
    "Dict",
    "dict",
    "Tuple",
    "tuple",
    "Annotated",
    "None",
    "typing",
    "str",
    "int",
    "Any",
    "AppenderQuery",
    "Query",
    "InstrumentedList",
];

/// Bases that say nothing about being mapped.
const NEUTRAL_BASES: &[&str] = &["object", "ABC", "Generic", "Protocol"];

#[derive(Default)]
struct Globals {
    /// Variables holding `SQLAlchemy(...)` (Flask-SQLAlchemy's `db`).
    sa_instances: HashSet<String>,
    /// `Model = db.Model`-style aliases of Flask-SQLAlchemy's model base.
    flask_model_aliases: HashSet<String>,
    /// Module-level `NAME = "literal"`, for `ForeignKey(USERS_ID)` and `__tablename__ = NAME`.
    constants: HashMap<String, String>,
    /// `convention = {"fk": "..."}` dicts, by variable name.
    conventions: HashMap<String, String>,
    /// `user_fk = Annotated[int, mapped_column(ForeignKey("users.id"))]`, used as `Mapped[user_fk]`.
    annotated: HashMap<String, AnnotatedColumn>,
    /// Module-level type aliases that admit None (`OptInt = Optional[int]`, `MaybeId = int |
    /// None`): `Mapped[OptInt]` is a nullable column, as SQLAlchemy reads it.
    optional_aliases: HashSet<String>,
    /// Project helpers that return such an `Annotated` type from their arguments, used as
    /// `Mapped[Columns.ForeignKeyInteger("users", ondelete="CASCADE")]`, by `Class.name` (and
    /// by `name` for a module-level function).
    factories: HashMap<String, Factory>,
}

/// What an `Annotated[..., mapped_column(...)]` type contributes to the columns typed with it.
#[derive(Debug, Clone, PartialEq)]
struct AnnotatedColumn {
    /// Keys with no local column yet: the column typed with the alias fills it in.
    fks: Vec<PendingFk>,
    nullable: Option<bool>,
    primary_key: bool,
    server_default: bool,
    /// The alias's own type says None may be stored (`Annotated[int | None, ...]`), which
    /// SQLAlchemy reads as nullable when `mapped_column` doesn't say.
    optional: bool,
    /// Made by a helper call that is the whole type (`Mapped[helper(...)]`): the annotation's
    /// own words (an argument `None`) say nothing about nullability.
    whole_type: bool,
}

/// Where a foreign key points before every class is known.
#[derive(Debug, Clone, PartialEq)]
enum Referent {
    /// Written as a string: already a (qualified) table name.
    Table(String),
    /// Written as an expression (`User.id`, `users_table.c.id`): a class or Table variable.
    Name(String),
}

#[derive(Debug, Clone, PartialEq)]
struct PendingFk {
    columns: Vec<String>,
    referent: Referent,
    referent_columns: Vec<String>,
    ondelete: Option<String>,
    onupdate: Option<String>,
    origin: Origin,
    misplaced_ondelete: Option<String>,
    source: Option<KeySource>,
}

#[derive(Debug, Clone)]
struct PendingColumn {
    column: Column,
    fks: Vec<PendingFk>,
    /// A bare annotated attribute: a column only in SQLModel classes.
    sqlmodel_only: bool,
}

#[derive(Debug, Clone)]
struct PendingRel {
    rel: Relationship,
    /// `secondary=` written as a variable: resolved to that Table's name when one was assigned.
    secondary_var: Option<String>,
    /// `viewonly=True`, given directly or through SQLModel's `sa_relationship_kwargs`.
    viewonly: bool,
}

#[derive(Debug, Clone)]
enum MemberKind {
    Column(PendingColumn),
    // Boxed: a relationship is three times a column's size, and most members are columns.
    Relationship(Box<PendingRel>),
}

#[derive(Debug, Clone)]
struct Member {
    attr: String,
    kind: MemberKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TablenameRule {
    Lower,
    Snake,
}

#[derive(Debug, Default, Clone)]
struct TableArgs {
    schema: Option<String>,
    fks: Vec<PendingFk>,
    /// The columns a `PrimaryKeyConstraint(...)` names: NOT NULL whatever they say.
    primary_key: Vec<String>,
}

#[derive(Debug, Clone)]
struct ClassInfo {
    /// Position among all files' classes: two files may define classes of the same name.
    id: usize,
    name: String,
    origin: Origin,
    /// Last segment of each base as written, to find local classes by name.
    bases: Vec<String>,
    flask_base: bool,
    sqlmodel_base: bool,
    table_true: bool,
    tablename: Option<String>,
    tablename_unreadable: bool,
    tablename_rule: Option<TablenameRule>,
    is_abstract: bool,
    has_table_object: bool,
    /// `__mapper_args__ = {"concrete": True}`: its own table, no join to a base table.
    concrete: bool,
    table_args: Option<TableArgs>,
    members: Vec<Member>,
}

#[derive(Debug, Clone)]
struct PendingTable {
    var: Option<String>,
    class_name: Option<String>,
    name: String,
    schema: Option<String>,
    origin: Origin,
    columns: Vec<PendingColumn>,
    fks: Vec<PendingFk>,
    /// The columns a `PrimaryKeyConstraint(...)` argument names.
    primary_key: Vec<String>,
}

#[derive(Debug, Clone)]
enum NamingRef {
    Literal(String),
    Var(String),
}

#[derive(Default)]
struct FileFacts {
    classes: Vec<ClassInfo>,
    tables: Vec<PendingTable>,
    naming: Option<NamingRef>,
    /// `User.addresses = relationship(...)` after the class: (class name, member) for a class
    /// of another file (one of this file's already holds its own).
    late_members: Vec<(String, Member)>,
    /// `registry.map_imperatively(Order, orders, properties={...})`.
    imperative: Vec<ImperativeMapping>,
}

/// A plain class mapped onto a `Table(...)` variable, with the relationships (and columns) its
/// `properties=` dict gives it.
#[derive(Debug, Clone)]
struct ImperativeMapping {
    class: String,
    table_var: String,
    members: Vec<Member>,
}

/// Read all parsed model files into one Schema. They are read together because a mixin or
/// abstract base in one file contributes columns to classes in another. Files that define no
/// tables contribute nothing.
pub fn read_models(files: &[SourceFile]) -> Schema {
    let alone = files
        .par_iter()
        .map(|file| ReadAlone::of(file).keeping(file.text.clone()))
        .collect();
    read_together(alone)
}

/// `read_models` for files given as bytes, each parsed, read and freed on its own: a run then
/// never holds every tree at once. Trees are most of the memory a run touches, and touching
/// fresh memory costs about as much as parsing. Errors as `parse::parse_source` gives them.
pub fn read_models_streamed(files: Vec<(PathBuf, Vec<u8>)>) -> anyhow::Result<Schema> {
    let alone = files
        .into_par_iter()
        .map(|(path, bytes)| {
            let file = crate::parse::parse_source(&path, bytes)?;
            let read = ReadAlone::of(&file);
            // The tree goes; the text stays, moved rather than copied.
            Ok(read.keeping(file.text))
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(read_together(alone))
}

/// The files, each read on its own, made one schema. A file read alone saw only its own
/// globals (helpers, constants, aliases); what it read stands where the whole project answers
/// every question it asked alike, as it does for most files. The others are parsed again and
/// read with the project's globals, in two steps as Python would see them: the annotated
/// aliases first, since every file's members are read with all of them.
fn read_together(mut alone: Vec<ReadAlone>) -> Schema {
    // Each file's globals are needed once more, here: taken, not copied.
    let mut globals = Globals::merge(
        alone
            .iter_mut()
            .map(|r| std::mem::take(&mut r.globals))
            .collect(),
    );
    let mut read: Vec<(ReadAlone, Option<Reparsed>)> = alone
        .into_par_iter()
        .map(|mut alone| {
            let alike = |q: &Question| q.answered_alike(&alone.own, &globals);
            if alone.asked_for_aliases.iter().all(alike) {
                return (alone, None);
            }
            let again = alone.parse_again();
            alone.aliases = again.reader(&globals).annotated_aliases();
            (alone, Some(again))
        })
        .collect();
    globals.annotated = read
        .iter_mut()
        .flat_map(|(alone, _)| std::mem::take(&mut alone.aliases))
        .collect();
    let facts: Vec<FileFacts> = read
        .into_par_iter()
        .map(|(alone, again)| {
            let alike = |q: &Question| q.answered_alike(&alone.own, &globals);
            match again {
                None if alone.asked_for_facts.iter().all(alike) => alone.facts,
                None => alone.parse_again().reader(&globals).read(),
                Some(again) => again.reader(&globals).read(),
            }
        })
        .collect();
    build(facts, &globals)
}

/// One model file read as if it were the project's only one, with the questions that reading
/// asked of the globals. Its tree is not kept: the text is, for a second parse.
struct ReadAlone {
    path: PathBuf,
    text: String,
    /// What the file binds for the others; `read_together` takes it to merge.
    globals: FileGlobals,
    /// The file's own globals (with its own annotated aliases): they answered its questions.
    own: Globals,
    aliases: Vec<(String, AnnotatedColumn)>,
    asked_for_aliases: Vec<Question>,
    facts: FileFacts,
    asked_for_facts: Vec<Question>,
}

impl ReadAlone {
    /// `file` read alone, its text not yet kept (see `keeping`).
    fn of(file: &SourceFile) -> ReadAlone {
        let globals = FileGlobals::read(file);
        let mut own = Globals::merge(vec![globals.clone()]);
        let scope = FileScope::read(file);
        let asked = RefCell::new(Vec::new());
        let aliases =
            FileReader::new(file, &scope, GlobalsView::noting(&own, &asked)).annotated_aliases();
        let asked_for_aliases = asked.take();
        own.annotated = aliases.iter().cloned().collect();
        let facts = FileReader::new(file, &scope, GlobalsView::noting(&own, &asked)).read();
        ReadAlone {
            path: file.path.clone(),
            text: String::new(),
            globals,
            own,
            aliases,
            asked_for_aliases,
            facts,
            asked_for_facts: asked.take(),
        }
    }

    /// The file's text, for `parse_again`.
    fn keeping(self, text: String) -> ReadAlone {
        ReadAlone { text, ..self }
    }

    fn parse_again(&self) -> Reparsed {
        // The same text parsed the same way a moment ago.
        let file = crate::parse::parse_text(&self.path, self.text.clone())
            .expect("a text that parsed once parses again");
        let scope = FileScope::read(&file);
        Reparsed { file, scope }
    }
}

struct Reparsed {
    file: SourceFile,
    scope: FileScope,
}

impl Reparsed {
    fn reader<'a>(&'a self, globals: &'a Globals) -> FileReader<'a> {
        FileReader::new(&self.file, &self.scope, GlobalsView::of(globals))
    }
}

/// What a model file binds at module level, read once per file.
struct FileScope {
    imports: Imports,
    /// Module-level classes and functions: a local `ForeignKey` is not SQLAlchemy's.
    local_defs: HashSet<String>,
}

impl FileScope {
    fn read(file: &SourceFile) -> FileScope {
        let src = file.text.as_str();
        let root = file.tree.root_node();
        let mut cursor = root.walk();
        let local_defs = root
            .named_children(&mut cursor)
            .map(|n| {
                if n.kind() == "decorated_definition" {
                    n.field("definition").unwrap_or(n)
                } else {
                    n
                }
            })
            .filter(|n| matches!(n.kind(), "class_definition" | "function_definition"))
            .filter_map(|n| n.field("name"))
            .map(|n| src[n.byte_range()].to_string())
            .collect();
        FileScope {
            imports: Imports::read(file),
            local_defs,
        }
    }
}

fn last_segment(dotted: &str) -> &str {
    dotted.rsplit('.').next().unwrap_or(dotted)
}

fn is_module_level(assignment: Node) -> bool {
    assignment
        .parent()
        .filter(|p| p.kind() == "expression_statement")
        .and_then(|p| p.parent())
        .is_some_and(|p| p.kind() == "module")
}

/// Identifier-ish tokens of a type annotation, quotes ignored, so `Mapped["int | None"]`,
/// `Mapped[Optional[int]]` and `Mapped[Union[int, None]]` read alike.
fn type_tokens(text: &str) -> Vec<&str> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'))
        .filter(|t| !t.is_empty())
        .collect()
}

fn annotation_optional(tokens: &[&str]) -> bool {
    tokens
        .iter()
        .any(|t| matches!(last_segment(t), "Optional" | "None" | "NoneType"))
}

/// `Optional[T]`, `Union[T, None]` or `T | None`, written as a value (a type alias's right
/// side). An `Annotated[...]` alias is read on its own (`AnnotatedColumn::optional`).
fn is_optional_type(value: Node, src: &str) -> bool {
    let head = match value.kind() {
        "subscript" => value
            .field("value")
            .map(|v| last_segment(&src[v.byte_range()])),
        _ => value
            .field("operator")
            .filter(|op| op.kind() == "|")
            .map(|_| "|"),
    };
    matches!(head, Some("Optional" | "Union" | "|"))
        && annotation_optional(&type_tokens(&src[value.byte_range()]))
}

fn annotation_is(tokens: &[&str], wrapper: &str) -> bool {
    tokens.first().is_some_and(|t| last_segment(t) == wrapper)
}

fn annotation_target(tokens: &[&str]) -> Option<String> {
    tokens
        .iter()
        .map(|t| last_segment(t))
        .find(|t| !TYPE_WRAPPERS.contains(t) && !t.is_empty())
        .map(str::to_string)
}

/// Flask-SQLAlchemy's implicit table name: `HTTPLogEntry` -> `http_log_entry`.
pub fn camel_to_snake(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_uppercase() && i > 0 {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            if prev.is_lowercase() || prev.is_ascii_digit() || next_lower {
                out.push('_');
            }
        }
        out.extend(c.to_lowercase());
    }
    out.trim_start_matches('_').to_string()
}

/// `"users.id"` -> ("users", "id"); `"sales.order.id"` -> ("sales.order", "id").
fn split_target(target: &str) -> Option<(String, String)> {
    let (table, column) = target.trim().rsplit_once('.')?;
    (!table.is_empty() && !column.is_empty()).then(|| (table.to_string(), column.to_string()))
}

/// `User.id`, `models.User.id`, `users.c.id`, `User.__table__.c.id` -> (owner, column).
fn split_attribute_target(dotted: &str) -> Option<(String, String)> {
    let mut segments: Vec<&str> = dotted.split('.').collect();
    let column = segments.pop()?;
    if matches!(segments.last(), Some(&"c") | Some(&"columns")) {
        segments.pop();
    }
    if segments.last() == Some(&"__table__") {
        segments.pop();
    }
    let owner = segments.last()?;
    Some((owner.to_string(), column.to_string()))
}

/// A name as the readers of relationship strings accept it: letters, digits, `_`.
fn plain_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_alphanumeric() || c == '_')
}

/// Local column names from `foreign_keys=`: `[Note.author_id]`, `"[Note.a, Note.b]"`,
/// `Note.author_id`, `author_id`.
fn foreign_key_names(text: &str) -> Vec<String> {
    text.split(',')
        .map(|part| part.trim_matches(|c: char| c.is_whitespace() || "[]()'\"".contains(c)))
        .map(last_segment)
        .filter(|name| plain_name(name))
        .map(str::to_string)
        .collect()
}

/// `"Parent.id == Child.parent_id"` -> [("Parent", "id"), ("Child", "parent_id")]; a side may
/// be wrapped in `foreign()` / `remote()`, and `and_(...)` gives the sides of each of its
/// column-to-column equalities (`Message.kind == 'x'` only narrows the join). Empty for any
/// other join, which then covers no key: its direction is unknown, and a many-to-one cascade
/// must not land on a key back to the parent.
fn join_sides(join: &str) -> Vec<(String, String)> {
    let join = join.trim();
    let conjunction = join
        .split_once("and_(")
        .filter(|(prefix, _)| prefix.is_empty() || prefix.ends_with('.'))
        .filter(|(prefix, _)| {
            prefix
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '.')
        })
        .and_then(|(_, rest)| rest.strip_suffix(')'));
    match conjunction {
        Some(inner) => top_level_items(inner)
            .unwrap_or_default()
            .into_iter()
            .filter_map(equality_sides)
            .flatten()
            .collect(),
        None => equality_sides(join).map(Vec::from).unwrap_or_default(),
    }
}

/// `A.x == B.y` (either side maybe in `foreign()` / `remote()`) -> its two (class, column)
/// sides; None for anything else.
fn equality_sides(condition: &str) -> Option<[(String, String); 2]> {
    let (left, right) = condition.split_once("==")?;
    if right.contains("==") {
        return None;
    }
    let side = |text: &str| {
        let mut text = text.trim();
        while let Some(inner) = ["foreign(", "remote("]
            .iter()
            .find_map(|w| text.strip_prefix(w))
            .and_then(|t| t.strip_suffix(')'))
        {
            text = inner.trim();
        }
        let (class, column) = text.rsplit_once('.')?;
        let class = last_segment(class);
        (plain_name(column) && plain_name(class)).then(|| (class.to_string(), column.to_string()))
    };
    Some([side(left)?, side(right)?])
}

/// The columns a join marks `remote(Class.column)`.
fn remote_columns(join: &str) -> Vec<String> {
    join.split("remote(")
        .skip(1)
        .filter_map(|rest| rest.split_once(')'))
        .map(|(inside, _)| last_segment(inside.trim()).to_string())
        .filter(|c| plain_name(c))
        .collect()
}

/// The comma-separated items of an argument list's inside, commas in brackets or quotes kept;
/// None when its brackets close one too many (`and_(a) | or_(b)` is no single call).
fn top_level_items(inside: &str) -> Option<Vec<&str>> {
    let mut items = Vec::new();
    let (mut depth, mut quote, mut start) = (0usize, None, 0);
    for (i, c) in inside.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '(' | '[' | '{') => depth += 1,
            (None, ')' | ']' | '}') => depth = depth.checked_sub(1)?,
            (None, ',') if depth == 0 => {
                items.push(&inside[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&inside[start..]);
    Some(items)
}

/// `schema.name`, or `name` without a schema.
pub fn qualified(schema: Option<&str>, name: &str) -> String {
    match schema {
        Some(schema) => format!("{schema}.{name}"),
        None => name.to_string(),
    }
}

/// The `fk` template of a naming-convention dict literal.
fn fk_template(dict: Node, src: &str) -> Option<String> {
    let dict = unwrap_parens(dict);
    let mut cursor = dict.walk();
    match dict.kind() {
        "dictionary" => dict.named_children(&mut cursor).find_map(|pair| {
            let key = pair.field("key")?;
            let is_fk = string_value(key, src).as_deref() == Some("fk")
                || src[key.byte_range()].ends_with("ForeignKeyConstraint");
            is_fk
                .then(|| string_value(pair.field("value")?, src))
                .flatten()
        }),
        "call" if dotted_name(dict.field("function")?, src).as_deref() == Some("dict") => {
            let args = CallArgs::of(dict, src)?;
            string_value(args.keyword("fk")?, src)
        }
        _ => None,
    }
}

/// The calls `FileReader::read` acts on outside class bodies: `Table(...)` and `MetaData(...)`.
const READ_MARKERS: &[&str] = &["Table", "MetaData"];
static READ_FINDER: std::sync::OnceLock<aho_corasick::AhoCorasick> = std::sync::OnceLock::new();

/// What one model file binds that the others may use (see `Globals`), in its own order.
#[derive(Default, Clone)]
struct FileGlobals {
    sa_instances: Vec<String>,
    constants: Vec<(String, String)>,
    conventions: Vec<(String, String)>,
    /// `Model = db.Model`-style assignments: (name, dotted value).
    model_aliases: Vec<(String, String)>,
    optional_aliases: Vec<String>,
    /// Module-level `B = A`: B is an `Optional` alias when A is one.
    renames: Vec<(String, String)>,
    factories: Vec<(String, Factory)>,
    /// Every name the module binds at its top level and in its top-level classes (`fk`,
    /// `Names`, `Names.U`, and `Names.U = ...` assigned from outside): a helper or a class
    /// constant bound more than once in the project is not read, since which binding a model
    /// sees depends on its imports.
    bindings: Vec<String>,
}

impl FileGlobals {
    fn read(file: &SourceFile) -> FileGlobals {
        let k = crate::parse::kinds();
        let mut found = FileGlobals::default();
        let src = file.text.as_str();
        // Assignments are statements: the expressions inside them need not be visited.
        for node in walk_where(file.tree.root_node(), holds_statements) {
            if node.kind_id() != k.assignment {
                continue;
            }
            let (Some(left), Some(right)) = (node.field("left"), node.field("right")) else {
                continue;
            };
            if left.kind_id() != k.identifier {
                continue;
            }
            let name = || src[left.byte_range()].to_string();
            let right = unwrap_parens(right);
            match right.kind() {
                "call" => {
                    let callee = right.field("function");
                    let callee = callee.and_then(|c| dotted_name(c, src));
                    if callee.as_deref().map(last_segment) == Some("SQLAlchemy") {
                        found.sa_instances.push(name());
                    }
                }
                "string" | "concatenated_string" if is_module_level(node) => {
                    if let Some(value) = string_value(right, src) {
                        found.constants.push((name(), value));
                    }
                }
                "dictionary" => {
                    if let Some(template) = fk_template(right, src) {
                        found.conventions.push((name(), template));
                    }
                }
                // `Opt = Optional`: `Mapped[Opt[int]]` admits None as `Optional` does.
                "identifier" | "attribute"
                    if is_module_level(node)
                        && last_segment(&src[right.byte_range()]) == "Optional" =>
                {
                    found.optional_aliases.push(name());
                }
                "identifier" if is_module_level(node) => {
                    found
                        .renames
                        .push((name(), src[right.byte_range()].to_string()));
                }
                "attribute" => {
                    if let Some(dotted) = dotted_name(right, src) {
                        found.model_aliases.push((name(), dotted));
                    }
                }
                "subscript" | "binary_operator"
                    if is_module_level(node) && is_optional_type(right, src) =>
                {
                    found.optional_aliases.push(name());
                }
                _ => {}
            }
        }
        read_module_helpers(file, &mut found);
        found
    }
}

/// A value a helper's parameter can hold, as far as a foreign key can depend on it.
#[derive(Debug, Clone, PartialEq)]
enum HelperArg {
    Str(String),
    None,
    Bool(bool),
    /// Anything else (a call, a number, a name the reader does not know).
    Unknown,
}

/// A helper's parameter.
#[derive(Debug, Clone, PartialEq)]
struct Param {
    name: String,
    default: Option<HelperArg>,
    pass: Pass,
}

/// How a parameter may be passed: before `/`, after `*`, or either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pass {
    Positional,
    Either,
    Keyword,
}

/// Part of a helper's return expression: written out, or one of its parameters.
#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Lit(HelperArg),
    Param(String),
}

/// A project helper returning `Annotated[T, mapped_column(ForeignKey(<target>, ondelete=...),
/// nullable=...)]`, each of those written out or taken from a parameter (the target may be an
/// f-string or a `+` of literals and parameters), read once so that every call of it can be
/// read with its own arguments.
#[derive(Debug, Clone, PartialEq)]
struct Factory {
    /// Parameters in order (without a classmethod's `cls`).
    params: Vec<Param>,
    target: Vec<Piece>,
    ondelete: Option<Piece>,
    onupdate: Option<Piece>,
    nullable: Option<Piece>,
    /// The helper's `mapped_column()` passes `server_default=` other than None (a parameter
    /// counts: it may carry one).
    server_default: bool,
    /// `Annotated[Optional[int], ...]`.
    optional: bool,
}

impl Factory {
    /// The column this helper gives with `bound` parameters; None when a value it needs is
    /// not a string (or None) where one must be.
    fn apply(&self, bound: &HashMap<&str, HelperArg>, origin: Origin) -> Option<AnnotatedColumn> {
        let value = |piece: &Piece| match piece {
            Piece::Lit(arg) => Some(arg.clone()),
            Piece::Param(name) => bound.get(name.as_str()).cloned(),
        };
        let mut target = String::new();
        for piece in &self.target {
            match value(piece)? {
                HelperArg::Str(text) => target.push_str(&text),
                _ => return None,
            }
        }
        let (table, column) = split_target(&target)?;
        let action = |piece: &Option<Piece>| match piece.as_ref().map(value) {
            None => Some(None),
            Some(Some(HelperArg::Str(text))) => Some(Some(text)),
            Some(Some(HelperArg::None)) => Some(None),
            Some(_) => None,
        };
        // `nullable=None` leaves SQLAlchemy's Column.nullable None, which its DDL writes as NOT
        // NULL whatever the type says: not read rather than guessed.
        let nullable = match self.nullable.as_ref().map(value) {
            None => None,
            Some(Some(HelperArg::Bool(flag))) => Some(flag),
            Some(_) => return None,
        };
        Some(AnnotatedColumn {
            fks: vec![PendingFk {
                columns: vec![],
                referent: Referent::Table(table),
                referent_columns: vec![column],
                ondelete: action(&self.ondelete)?,
                onupdate: action(&self.onupdate)?,
                origin,
                misplaced_ondelete: None,
                source: None,
            }],
            nullable,
            primary_key: false,
            server_default: self.server_default,
            optional: self.optional,
            whole_type: true,
        })
    }
}

impl Factory {
    /// The parameters `--fix-models` may pass the actions by (ondelete's, and onupdate's when
    /// there is one): each feeds that action only, and can be given by keyword.
    fn writable_parameters(&self) -> Option<(&str, Option<&str>)> {
        let Some(Piece::Param(ondelete)) = &self.ondelete else {
            return None;
        };
        let onupdate = match &self.onupdate {
            Some(Piece::Param(name)) => Some(name.as_str()),
            _ => None,
        };
        let uses = |name: &str| {
            self.target
                .iter()
                .chain(&self.ondelete)
                .chain(&self.onupdate)
                .chain(&self.nullable)
                .filter(|p| matches!(p, Piece::Param(n) if n == name))
                .count()
        };
        let by_keyword = |name: &str| {
            self.params
                .iter()
                .any(|p| p.name == name && p.pass != Pass::Positional)
        };
        let ok = |name: &str| uses(name) == 1 && by_keyword(name);
        if !ok(ondelete) {
            return None;
        }
        Some((ondelete, onupdate.filter(|u| ok(u))))
    }
}

/// `Class.attr` of `pkg.mod.Class.attr`, or the text itself when it has fewer dots.
fn last_two_segments(dotted: &str) -> &str {
    match dotted.rmatch_indices('.').nth(1) {
        Some((at, _)) => &dotted[at + 1..],
        None => dotted,
    }
}

/// What a module defines for other files at its top level: constants-only classes
/// (`class AppTableNames: UserTableName = "users"`, read as `AppTableNames.UserTableName`) and
/// column helpers (see `Factory`), as functions or as static / class methods of a class.
fn read_module_helpers(file: &SourceFile, found: &mut FileGlobals) {
    let src = file.text.as_str();
    let root = file.tree.root_node();
    let mut cursor = root.walk();
    for statement in root.named_children(&mut cursor) {
        if let Some(name) = bound_name(statement, src) {
            found.bindings.push(name);
        }
        match statement.kind() {
            "function_definition" => {
                if let Some((name, factory)) = read_factory(statement, src, false) {
                    found.factories.push((name, factory));
                }
            }
            // A decorated function may return anything: not read.
            "class_definition" => read_helper_class(statement, src, found),
            _ => {}
        }
    }
}

/// The name a statement binds: a `def` or `class` (decorated or not), or the target of a
/// plain assignment (`fk = other`, `Names.U = "g"`).
fn bound_name(statement: Node, src: &str) -> Option<String> {
    let statement = match statement.kind() {
        "decorated_definition" => statement.field("definition")?,
        _ => statement,
    };
    match statement.kind() {
        "function_definition" | "class_definition" => {
            Some(src[statement.field("name")?.byte_range()].to_string())
        }
        "expression_statement" => {
            let assignment = statement
                .named_child(0)
                .filter(|n| n.kind() == "assignment")?;
            dotted_name(assignment.field("left")?, src)
        }
        _ => None,
    }
}

fn read_helper_class(class: Node, src: &str, found: &mut FileGlobals) {
    let (Some(name), Some(body)) = (class.field("name"), class.field("body")) else {
        return;
    };
    let class_name = &src[name.byte_range()];
    let mut constants = Vec::new();
    // With a base class (an Enum, a NamedTuple, a model) an attribute is not its string.
    let mut constants_only = class.field("superclasses").is_none();
    let mut cursor = body.walk();
    for statement in body.named_children(&mut cursor) {
        if let Some(member) = bound_name(statement, src) {
            found.bindings.push(format!("{class_name}.{member}"));
        }
        match statement.kind() {
            "comment" | "pass_statement" => {}
            "expression_statement" => {
                let inner = statement.named_child(0);
                match inner.map(|n| (n.kind(), n)) {
                    Some(("string", _)) => {}
                    Some(("assignment", assignment)) => {
                        let left = assignment
                            .field("left")
                            .filter(|l| l.kind() == "identifier");
                        let value = assignment
                            .field("right")
                            .and_then(|r| string_value(unwrap_parens(r), src));
                        match (left, value) {
                            (Some(left), Some(value)) => constants
                                .push((format!("{class_name}.{}", &src[left.byte_range()]), value)),
                            _ => constants_only = false,
                        }
                    }
                    _ => constants_only = false,
                }
            }
            "decorated_definition" => {
                constants_only = false;
                let mut decorators = statement.walk();
                let kinds: Vec<&str> = statement
                    .named_children(&mut decorators)
                    .filter(|d| d.kind() == "decorator")
                    .map(|d| src[d.byte_range()].trim_start_matches('@').trim())
                    .collect();
                let skip_first = match kinds.as_slice() {
                    ["staticmethod"] => false,
                    ["classmethod"] => true,
                    _ => continue,
                };
                let function = statement
                    .field("definition")
                    .filter(|d| d.kind() == "function_definition");
                if let Some((method, factory)) =
                    function.and_then(|f| read_factory(f, src, skip_first))
                {
                    found
                        .factories
                        .push((format!("{class_name}.{method}"), factory));
                }
            }
            _ => constants_only = false,
        }
    }
    // A class with anything else (a mapped model, methods) is not a table of constants: its
    // string attributes may mean something else.
    if constants_only {
        found.constants.extend(constants);
    }
}

/// `def name(params): ["""doc"""] return Annotated[T, mapped_column(ForeignKey(...), ...)]`.
fn read_factory(function: Node, src: &str, skip_first: bool) -> Option<(String, Factory)> {
    let name = src[function.field("name")?.byte_range()].to_string();
    let mut params = read_params(function.field("parameters")?, src)?;
    // A classmethod's `cls` is bound by Python, not by the call.
    if skip_first {
        params.first()?;
        params.remove(0);
    }
    let names: Vec<&str> = params.iter().map(|p| p.name.as_str()).collect();
    let body = function.field("body")?;
    let mut cursor = body.walk();
    let returned = body
        .named_children(&mut cursor)
        .filter(|n| !n.is_extra())
        .find(|n| {
            !(n.kind() == "expression_statement"
                && n.named_child(0).is_some_and(|c| c.kind() == "string"))
        })
        .filter(|n| n.kind() == "return_statement")?
        .named_child(0)?;
    let annotated = unwrap_parens(returned);
    let is_annotated = annotated.kind() == "subscript"
        && annotated
            .field("value")
            .and_then(|v| dotted_name(v, src))
            .is_some_and(|v| last_segment(&v) == "Annotated");
    if !is_annotated {
        return None;
    }
    let callee_is = |call: Node, wanted: &str| {
        call.kind() == "call"
            && call
                .field("function")
                .and_then(|f| dotted_name(f, src))
                .is_some_and(|f| last_segment(&f) == wanted)
    };
    let column = descendants(annotated)
        .into_iter()
        .find(|n| callee_is(*n, "mapped_column"))?;
    let column_args = CallArgs::of(column, src)?;
    let mut keys = column_args
        .positional
        .iter()
        .filter(|a| callee_is(unwrap_parens(**a), "ForeignKey"));
    let key = unwrap_parens(*keys.next()?);
    if keys.next().is_some() {
        return None;
    }
    let key_args = CallArgs::of(key, src)?;
    // `**options` may carry ondelete or nullable: not read rather than guessed.
    if key_args.has_splat || column_args.has_splat {
        return None;
    }
    // Not written: Some(None). Written but not readable: None, and the helper is not read.
    let piece = |node: Option<Node>| -> Option<Option<Piece>> {
        match node {
            None => Some(None),
            Some(n) => helper_piece(n, src, &names).map(Some),
        }
    };
    let optional = annotated
        .field("subscript")
        .is_some_and(|first| annotation_optional(&type_tokens(&src[first.byte_range()])));
    let factory = Factory {
        target: target_pieces(key_args.arg(0, "column")?, src, &names)?,
        ondelete: piece(key_args.keyword("ondelete"))?,
        onupdate: piece(key_args.keyword("onupdate"))?,
        nullable: piece(column_args.keyword("nullable"))?,
        server_default: column_args
            .keyword("server_default")
            .is_some_and(|v| !is_none(v)),
        optional,
        params,
    };
    Some((name, factory))
}

/// Each parameter with its default (a literal, else `Unknown`) and how it may be passed; None
/// for `*args` / `**kwargs`, whose bindings the reader does not follow.
fn read_params(parameters: Node, src: &str) -> Option<Vec<Param>> {
    let literal = |node: Node| helper_literal(node, src).unwrap_or(HelperArg::Unknown);
    let mut params: Vec<Param> = Vec::new();
    let mut pass = Pass::Either;
    let mut cursor = parameters.walk();
    for param in parameters.named_children(&mut cursor) {
        let (name, default) = match param.kind() {
            "identifier" => (param, None),
            "typed_parameter" => (
                param.named_child(0).filter(|n| n.kind() == "identifier")?,
                None,
            ),
            "default_parameter" | "typed_default_parameter" => {
                (param.field("name")?, Some(literal(param.field("value")?)))
            }
            // `/`: everything before it is positional-only.
            "positional_separator" => {
                for earlier in &mut params {
                    earlier.pass = Pass::Positional;
                }
                continue;
            }
            // A bare `*`: everything after it is keyword-only.
            "keyword_separator" => {
                pass = Pass::Keyword;
                continue;
            }
            _ if param.is_extra() => continue,
            _ => return None,
        };
        params.push(Param {
            name: src[name.byte_range()].to_string(),
            default,
            pass,
        });
    }
    Some(params)
}

/// A keyword value in a helper's body: one of its parameters, or a literal.
fn helper_piece(node: Node, src: &str, params: &[&str]) -> Option<Piece> {
    let node = unwrap_parens(node);
    let text = &src[node.byte_range()];
    if node.kind() == "identifier" && params.contains(&text) {
        return Some(Piece::Param(text.to_string()));
    }
    helper_literal(node, src).map(Piece::Lit)
}

/// `None`, `True`, `False` or a string literal as a helper value; None for anything else.
fn helper_literal(node: Node, src: &str) -> Option<HelperArg> {
    let node = unwrap_parens(node);
    match &src[node.byte_range()] {
        "None" => Some(HelperArg::None),
        "True" => Some(HelperArg::Bool(true)),
        "False" => Some(HelperArg::Bool(false)),
        _ => string_value(node, src).map(HelperArg::Str),
    }
}

/// A `ForeignKey` target in a helper's body: a literal, a parameter, `param + ".id"`, or an
/// f-string whose fields are bare parameters (`f"{table_name}.id"`). A `+` chain is walked
/// with a stack, not by recursion: it may be any length.
fn target_pieces(node: Node, src: &str, params: &[&str]) -> Option<Vec<Piece>> {
    let mut pieces = Vec::new();
    let mut pending = vec![node];
    while let Some(node) = pending.pop() {
        let node = unwrap_parens(node);
        let is_plus = node.kind() == "binary_operator"
            && node
                .field("operator")
                .is_some_and(|o| &src[o.byte_range()] == "+");
        if is_plus {
            pending.push(node.field("right")?);
            pending.push(node.field("left")?);
        } else if node.kind() == "string" && string_value(node, src).is_none() {
            pieces.extend(fstring_pieces(node, src, params)?);
        } else {
            pieces.push(helper_piece(node, src, params)?);
        }
    }
    Some(pieces)
}

fn fstring_pieces(node: Node, src: &str, params: &[&str]) -> Option<Vec<Piece>> {
    let mut pieces = Vec::new();
    let mut cursor = node.walk();
    for part in node.named_children(&mut cursor) {
        let text = &src[part.byte_range()];
        match part.kind() {
            "string_start" => {
                let prefix = text.trim_end_matches(['\'', '"']).to_ascii_lowercase();
                if prefix != "f" {
                    return None;
                }
            }
            "string_end" => {}
            // Escapes and doubled braces are left to Python: such a helper is not read.
            "string_content" if !text.contains(['\\', '{', '}']) => {
                pieces.push(Piece::Lit(HelperArg::Str(text.to_string())));
            }
            "interpolation" => {
                let mut inner = part.walk();
                let fields: Vec<Node> = part.named_children(&mut inner).collect();
                // Exactly `{name}`: no `=`, conversion or format spec.
                match fields.as_slice() {
                    [field]
                        if field.kind() == "identifier"
                            && text.len() == field.byte_range().len() + 2 =>
                    {
                        pieces.push(helper_piece(*field, src, params)?);
                    }
                    _ => return None,
                }
            }
            _ => return None,
        }
    }
    Some(pieces)
}

impl Globals {
    /// Each file's globals, read on its own, merged in file order: a later file's binding of a
    /// name wins.
    fn merge(per_file: Vec<FileGlobals>) -> Globals {
        let mut globals = Globals::default();
        globals.sa_instances.insert("db".to_string());
        let mut model_aliases = Vec::new();
        // Every class and column name of the project passes through here: sized once, the
        // table is not rebuilt as it grows.
        let binding_count = per_file.iter().map(|f| f.bindings.len()).sum();
        let mut bindings: HashMap<String, usize> = HashMap::with_capacity(binding_count);
        let mut renames = Vec::new();
        for file in per_file {
            globals.sa_instances.extend(file.sa_instances);
            globals.constants.extend(file.constants);
            globals.conventions.extend(file.conventions);
            globals.factories.extend(file.factories);
            model_aliases.extend(file.model_aliases);
            globals.optional_aliases.extend(file.optional_aliases);
            renames.extend(file.renames);
            for name in file.bindings {
                *bindings.entry(name).or_insert(0usize) += 1;
            }
        }
        for (name, dotted) in model_aliases {
            if let Some((root, "Model")) = dotted.rsplit_once('.')
                && globals.sa_instances.contains(last_segment(root))
            {
                globals.flask_model_aliases.insert(name);
            }
        }
        let once = |name: &str| bindings.get(name).is_none_or(|n| *n <= 1);
        globals.factories.retain(|name, _| once(name));
        // A name bound twice in the project may be another type where a model uses it.
        globals.optional_aliases.retain(|name| once(name));
        // `Perhaps = Maybe` after `Maybe = t.Optional`, to any depth, each rename followed once.
        let mut renamed_to: HashMap<&str, Vec<&str>> = HashMap::new();
        for (name, value) in &renames {
            renamed_to.entry(value).or_default().push(name);
        }
        let mut queue: Vec<String> = globals.optional_aliases.iter().cloned().collect();
        while let Some(alias) = queue.pop() {
            for name in renamed_to.get(alias.as_str()).into_iter().flatten() {
                if once(name) && globals.optional_aliases.insert(name.to_string()) {
                    queue.push(name.to_string());
                }
            }
        }
        // Class constants (`Names.U`); a module-level constant keeps the last binding read.
        globals
            .constants
            .retain(|name, _| !name.contains('.') || once(name));
        globals
    }
}

/// How a file reader sees the project's globals. A reader that runs before the other files
/// are read sees its own file's globals only and notes every question it asks
/// (`read_models_streamed`): where the project answers each one alike, what it read stands.
#[derive(Clone, Copy)]
struct GlobalsView<'a> {
    globals: &'a Globals,
    asked: Option<&'a RefCell<Vec<Question>>>,
}

/// A question a file reader asked of the globals, by name.
#[derive(Debug)]
enum Question {
    SaInstance(String),
    FlaskModelAlias(String),
    Constant(String),
    Factory(String),
    OptionalAlias(String),
    Annotated(String),
}

impl Question {
    /// `a` and `b` answer this question alike.
    fn answered_alike(&self, a: &Globals, b: &Globals) -> bool {
        match self {
            Question::SaInstance(name) => {
                a.sa_instances.contains(name) == b.sa_instances.contains(name)
            }
            Question::FlaskModelAlias(name) => {
                a.flask_model_aliases.contains(name) == b.flask_model_aliases.contains(name)
            }
            Question::Constant(name) => a.constants.get(name) == b.constants.get(name),
            Question::Factory(name) => a.factories.get(name) == b.factories.get(name),
            Question::OptionalAlias(name) => {
                a.optional_aliases.contains(name) == b.optional_aliases.contains(name)
            }
            Question::Annotated(name) => a.annotated.get(name) == b.annotated.get(name),
        }
    }
}

impl<'a> GlobalsView<'a> {
    fn of(globals: &'a Globals) -> GlobalsView<'a> {
        GlobalsView {
            globals,
            asked: None,
        }
    }

    fn noting(globals: &'a Globals, asked: &'a RefCell<Vec<Question>>) -> GlobalsView<'a> {
        GlobalsView {
            globals,
            asked: Some(asked),
        }
    }

    fn note(&self, question: impl FnOnce() -> Question) {
        if let Some(asked) = self.asked {
            asked.borrow_mut().push(question());
        }
    }

    fn sa_instance(&self, name: &str) -> bool {
        self.note(|| Question::SaInstance(name.to_string()));
        self.globals.sa_instances.contains(name)
    }

    fn flask_model_alias(&self, name: &str) -> bool {
        self.note(|| Question::FlaskModelAlias(name.to_string()));
        self.globals.flask_model_aliases.contains(name)
    }

    fn constant(&self, name: &str) -> Option<&'a String> {
        self.note(|| Question::Constant(name.to_string()));
        self.globals.constants.get(name)
    }

    fn factory(&self, name: &str) -> Option<&'a Factory> {
        self.note(|| Question::Factory(name.to_string()));
        self.globals.factories.get(name)
    }

    /// A shortcut past helper calls when the project has no helper. A noting reader can't
    /// know that yet: it asks about each call's helper instead.
    fn may_have_factories(&self) -> bool {
        self.asked.is_some() || !self.globals.factories.is_empty()
    }

    fn optional_alias(&self, name: &str) -> bool {
        self.note(|| Question::OptionalAlias(name.to_string()));
        self.globals.optional_aliases.contains(name)
    }

    fn annotated(&self, name: &str) -> Option<&'a AnnotatedColumn> {
        self.note(|| Question::Annotated(name.to_string()));
        self.globals.annotated.get(name)
    }
}

struct FileReader<'a> {
    file: &'a SourceFile,
    /// The file's path, shared by every origin read from it.
    path: Arc<Path>,
    src: &'a str,
    imports: &'a Imports,
    globals: GlobalsView<'a>,
    local_defs: &'a HashSet<String>,
    /// What names mean where they are used (`nullable=NULLABLE`, `**OWNED`).
    bindings: Bindings<'a>,
}

impl<'a> FileReader<'a> {
    fn new(file: &'a SourceFile, scope: &'a FileScope, globals: GlobalsView<'a>) -> FileReader<'a> {
        FileReader {
            file,
            path: Arc::from(file.path.as_path()),
            src: file.text.as_str(),
            imports: &scope.imports,
            globals,
            local_defs: &scope.local_defs,
            bindings: Bindings::new(file.text.as_str()),
        }
    }

    fn origin(&self, node: Node<'a>) -> Origin {
        Origin {
            file: self.path.clone(),
            line: self.file.line_of(node.start_byte()),
        }
    }

    fn text(&self, node: Node<'a>) -> &'a str {
        &self.src[node.byte_range()]
    }

    /// The annotation admits None, written out, through a module-level alias, or through
    /// `Optional` imported under another name (`from typing import Optional as Opt`).
    fn optional(&self, tokens: &[&str]) -> bool {
        annotation_optional(tokens)
            || tokens.iter().any(|t| {
                self.globals.optional_alias(last_segment(t))
                    || last_segment(&self.imports.resolve(t)) == "Optional"
            })
    }

    /// SQLAlchemy's name for a callee (`Column`, `relationship`, ...) when it is SQLAlchemy's
    /// (or SQLModel's, or Flask-SQLAlchemy `db.`'s); None for project-local look-alikes.
    fn sa_name(&self, callee: Node<'a>) -> Option<String> {
        let written = dotted_name(callee, self.src)?;
        let last = last_segment(&written).to_string();
        let Some((root, _)) = written.split_once('.') else {
            if self.imports.is_bound(&written) {
                let resolved = self.imports.resolve(&written);
                return callee_from(&resolved, SA_MODULES).map(str::to_string);
            }
            return (!self.local_defs.contains(&written)).then_some(last);
        };
        if self.globals.sa_instance(root) {
            return Some(last);
        }
        let resolved = self.imports.resolve(&written);
        if let Some(name) = callee_from(&resolved, SA_MODULES) {
            return Some(name.to_string());
        }
        // `from app.extensions import db` makes `db.Column` resolve to `app.extensions.db.Column`.
        let (head, _) = resolved.rsplit_once('.')?;
        self.globals.sa_instance(last_segment(head)).then_some(last)
    }

    fn call_name(&self, node: Node<'a>) -> Option<String> {
        let node = unwrap_parens(node);
        if node.kind() != "call" {
            return None;
        }
        self.sa_name(node.field("function")?)
    }

    /// A string literal, a module-level string constant named by an identifier, or a constant
    /// of a constants-only class (`AppTableNames.UserTableName`, however the class is reached).
    fn string(&self, node: Node<'a>) -> Option<String> {
        let node = unwrap_parens(node);
        match node.kind() {
            "identifier" => match self.bindings.value_of(node) {
                Binding::Value(value) => self.string(value),
                Binding::Unknown => None,
                Binding::Outer(name) => self.globals.constant(name).cloned(),
            },
            "attribute" => {
                let dotted = dotted_name(node, self.src)?;
                let key = self.global_key(&dotted, |k| self.globals.constant(k).is_some())?;
                self.globals.constant(key).cloned()
            }
            _ => string_value(node, self.src),
        }
    }

    /// `Mapped[Columns.ForeignKeyInteger(AppTableNames.Users, ondelete="CASCADE")]`: the
    /// column a project helper's `Annotated` type gives for these arguments. None when the
    /// call is not to a known helper or an argument it uses can't be read.
    fn factory_column(&self, annotation: Node<'a>) -> Option<AnnotatedColumn> {
        let call = descendants(annotation)
            .into_iter()
            .find(|n| n.kind() == "call")?;
        let dotted = dotted_name(call.field("function")?, self.src)?;
        let factory = self
            .globals
            .factory(self.global_key(&dotted, |k| self.globals.factory(k).is_some())?)?;
        let args = CallArgs::of(call, self.src)?;
        if args.has_splat {
            return None;
        }
        // Bound as Python binds them; anything Python would refuse with a TypeError (too many
        // positional arguments, an unknown or repeated keyword, a keyword for a positional-only
        // parameter) means the helper is not read.
        let mut bound: HashMap<&str, HelperArg> = HashMap::new();
        let positional: Vec<&Param> = factory
            .params
            .iter()
            .filter(|p| p.pass != Pass::Keyword)
            .collect();
        if args.positional.len() > positional.len() {
            return None;
        }
        for (param, value) in positional.iter().zip(&args.positional) {
            bound.insert(param.name.as_str(), self.helper_arg(*value));
        }
        for (name, _, value) in &args.keywords {
            let takes = factory
                .params
                .iter()
                .any(|p| p.name == *name && p.pass != Pass::Positional);
            if !takes || bound.contains_key(name) {
                return None;
            }
            bound.insert(name, self.helper_arg(*value));
        }
        let passed: HashSet<&str> = bound.keys().copied().collect();
        for param in &factory.params {
            if !bound.contains_key(param.name.as_str()) {
                bound.insert(param.name.as_str(), param.default.clone()?);
            }
        }
        let mut made = factory.apply(&bound, self.origin(call))?;
        // `Mapped[Optional[helper(...)]]`: the wrapper around the call makes it nullable too;
        // the call's own arguments (an `ondelete=None`) say nothing about that.
        let (outer, inner) = (annotation.byte_range(), call.byte_range());
        let around = [
            &self.src[outer.start..inner.start],
            &self.src[inner.end..outer.end],
        ];
        made.optional |= around.iter().any(|part| self.optional(&type_tokens(part)));
        if let Some((ondelete, onupdate)) = factory.writable_parameters() {
            let mut source = self.key_source(KeyCall::Helper, call, &args);
            // A value from the helper's default is the key's own: nothing to write.
            source.has_ondelete = passed.contains(ondelete) || made.fks[0].ondelete.is_some();
            source.has_onupdate =
                onupdate.is_some_and(|p| passed.contains(p)) || made.fks[0].onupdate.is_some();
            source.ondelete_keyword = ondelete.to_string();
            source.onupdate_keyword = onupdate.map(str::to_string);
            made.fks[0].source = Some(source);
        }
        Some(made)
    }

    /// The key of a cross-file name in `Globals` as this file writes it: the dotted name itself,
    /// else its last two segments when the first segment is not defined in this file
    /// (`app.constants.Names.U` for `Names.U`; a local `X.Names.U` is another name).
    fn global_key<'d>(&self, dotted: &'d str, known: impl Fn(&str) -> bool) -> Option<&'d str> {
        if known(dotted) {
            return Some(dotted);
        }
        let first = dotted.split('.').next().unwrap_or(dotted);
        let tail = last_two_segments(dotted);
        (tail != dotted && !self.local_defs.contains(first) && known(tail)).then_some(tail)
    }

    /// An argument of a helper call as far as a key can depend on it.
    fn helper_arg(&self, node: Node<'a>) -> HelperArg {
        helper_literal(node, self.src)
            .or_else(|| self.string(node).map(HelperArg::Str))
            .unwrap_or(HelperArg::Unknown)
    }

    fn read(&self) -> FileFacts {
        let mut facts = FileFacts::default();
        // Classes and assignments are statements; the calls read here (`Table(...)`,
        // `MetaData(...)`) name a marker, so only expressions holding one are entered. An
        // import alias hiding a marker (`Table as T`) turns the pruning off.
        let finder = crate::parse::marker_finder(&READ_FINDER, READ_MARKERS, false);
        let markers = MarkerOffsets::find(self.src, finder);
        let prune = !self.imports.alias_hides(finder);
        // `read_class` reads a class body's members itself: the walk enters a class only for
        // what that leaves, a marked call, a nested class or a naming convention set in it.
        let k = crate::parse::kinds();
        let classes = MarkerOffsets::of(self.src, "class");
        let naming = MarkerOffsets::of(self.src, "naming_convention");
        let enter = |n: Node| {
            let span = n.byte_range();
            if !prune || markers.any_within(span.clone()) {
                return true;
            }
            if n.kind_id() == k.class_definition {
                return classes.any_within(span.start + 1..span.end) || naming.any_within(span);
            }
            holds_statements(n)
        };
        for node in walk_where(self.file.tree.root_node(), enter) {
            let kind = node.kind_id();
            if kind == k.class_definition {
                if let Some(class) = self.read_class(node) {
                    facts.classes.push(class);
                }
            } else if kind == k.call {
                match self.call_name(node).as_deref() {
                    Some("Table") => {
                        if let Some(table) = self.read_table_call(node) {
                            facts.tables.push(table);
                        }
                    }
                    Some("MetaData") if facts.naming.is_none() => {
                        facts.naming = self.naming_from_metadata(node);
                    }
                    _ => facts.imperative.extend(self.imperative_mapping(node)),
                }
            } else if kind == k.assignment
                && let Some((class, member)) = self.late_member(node)
            {
                match facts.classes.iter_mut().rev().find(|c| c.name == class) {
                    Some(info) => info.members.push(member),
                    None => facts.late_members.push((class, member)),
                }
            } else if kind == k.assignment
                && facts.naming.is_none()
                && naming.any_within(node.byte_range())
            {
                // `SQLModel.metadata.naming_convention = {...}`
                let left = node.field("left");
                let right = node.field("right");
                if let (Some(left), Some(right)) = (left, right)
                    && left.kind() == "attribute"
                    && self.text(left).ends_with(".naming_convention")
                {
                    facts.naming = self.naming_value(right);
                }
            }
        }
        facts
    }

    /// Whether `map_imperatively`'s receiver may be a mapper registry: anything but a value
    /// this file shows to be something else (`Serializer().map_imperatively(...)`). A name
    /// imported from another module (`from app.db import mapper_registry`) gets the benefit
    /// of the doubt: the method name is SQLAlchemy's.
    fn is_registry(&self, receiver: Node<'a>) -> bool {
        let receiver = unwrap_parens(receiver);
        let receiver = match receiver.kind() {
            "identifier" => match self.bindings.value_of(receiver) {
                Binding::Value(value) => value,
                Binding::Outer(_) | Binding::Unknown => return true,
            },
            _ => receiver,
        };
        match receiver.kind() {
            "attribute" => receiver.field("attribute").map(|a| self.text(a)) == Some("registry"),
            "call" => receiver
                .field("function")
                .and_then(|f| dotted_name(f, self.src))
                .is_some_and(|callee| last_segment(&self.imports.resolve(&callee)) == "registry"),
            _ => false,
        }
    }

    /// `__mapper_args__`'s value says `concrete=True`: a literal dict, `dict(...)`, or a name
    /// bound to one.
    fn concrete_mapping(&self, value: Node<'a>) -> bool {
        let value = unwrap_parens(value);
        match self.bindings.options_of(value) {
            Some(options) => options
                .get("concrete")
                .is_some_and(|v| is_true(*v, self.src)),
            // `{**COMMON, "concrete": True}` with COMMON from elsewhere: the key written in
            // place still counts (a later key wins in Python).
            None => self.dict_bool(Some(value), "concrete") == Some(true),
        }
    }

    /// `mapper_registry.map_imperatively(Order, orders, properties={"lines": relationship(...)})`:
    /// classical mapping, as in "Cosmic Python"-style projects whose models are plain classes.
    fn imperative_mapping(&self, call: Node<'a>) -> Option<ImperativeMapping> {
        let callee = call.field("function")?;
        if callee.kind() != "attribute"
            || callee.field("attribute").map(|a| self.text(a)) != Some("map_imperatively")
            || !self.is_registry(callee.field("object")?)
        {
            return None;
        }
        let args = CallArgs::of(call, self.src)?;
        let name_of = |node: Option<Node<'a>>| {
            node.map(unwrap_parens)
                .filter(|n| n.kind() == "identifier")
                .map(|n| self.text(n).to_string())
        };
        let class = name_of(args.arg(0, "class_"))?;
        let table_var = name_of(args.arg(1, "local_table"))?;
        let mut members = Vec::new();
        if let Some(properties) = args
            .keyword("properties")
            .map(unwrap_parens)
            .filter(|p| p.kind() == "dictionary")
        {
            let mut cursor = properties.walk();
            for pair in properties.named_children(&mut cursor) {
                let (Some(key), Some(value)) = (pair.field("key"), pair.field("value")) else {
                    continue;
                };
                if let Some(attr) = string_value(key, self.src)
                    && let Some(member) = self.read_member(&attr, None, Some(value), pair)
                {
                    members.push(member);
                }
            }
        }
        Some(ImperativeMapping {
            class,
            table_var,
            members,
        })
    }

    /// SQLAlchemy's declarative classes take attributes after the class statement: a
    /// module-level `User.addresses = relationship("Address", cascade=...)` (or a column) is
    /// the class's member as if written in its body.
    fn late_member(&self, assignment: Node<'a>) -> Option<(String, Member)> {
        let left = assignment.field("left")?;
        let right = unwrap_parens(assignment.field("right")?);
        if left.kind() != "attribute" || right.kind() != "call" || !is_module_level(assignment) {
            return None;
        }
        let class = left.field("object").filter(|o| o.kind() == "identifier")?;
        let attr = self.text(left.field("attribute")?);
        let member = self.read_member(attr, None, Some(right), assignment)?;
        Some((self.text(class).to_string(), member))
    }

    fn naming_from_metadata(&self, call: Node<'a>) -> Option<NamingRef> {
        let args = CallArgs::of(call, self.src)?;
        self.naming_value(args.keyword("naming_convention")?)
    }

    fn naming_value(&self, value: Node<'a>) -> Option<NamingRef> {
        let value = unwrap_parens(value);
        if value.kind() == "identifier" {
            return Some(NamingRef::Var(self.text(value).to_string()));
        }
        fk_template(value, self.src).map(NamingRef::Literal)
    }

    fn read_table_call(&self, call: Node<'a>) -> Option<PendingTable> {
        let args = CallArgs::of(call, self.src)?;
        let name = self.string(args.arg(0, "name")?)?;
        let schema = args.keyword("schema").and_then(|s| self.string(s));
        let mut table = PendingTable {
            var: None,
            class_name: None,
            name,
            schema,
            origin: self.origin(call),
            columns: vec![],
            fks: vec![],
            primary_key: vec![],
        };
        // `x = Table(...)` names a secondary; `__table__ = Table(...)` maps a class onto it.
        if let Some(assignment) = call.parent().filter(|p| p.kind() == "assignment")
            && let Some(left) = assignment.field("left")
            && left.kind() == "identifier"
        {
            let var = self.text(left);
            if var == "__table__" {
                table.class_name = enclosing_class(assignment)
                    .and_then(|c| c.field("name"))
                    .map(|n| self.text(n).to_string());
            } else {
                table.var = Some(var.to_string());
            }
        }
        for arg in args.positional.iter().skip(1) {
            match self.call_name(*arg).as_deref() {
                Some("Column") => {
                    if let Some(column) = self.read_column("", None, unwrap_parens(*arg), false) {
                        table.columns.push(column);
                    }
                }
                Some("ForeignKeyConstraint") => {
                    table
                        .fks
                        .extend(self.read_fk_constraint(unwrap_parens(*arg)));
                }
                Some("PrimaryKeyConstraint") => {
                    table
                        .primary_key
                        .extend(self.constraint_columns(unwrap_parens(*arg)));
                }
                _ => {}
            }
        }
        Some(table)
    }

    fn read_class(&self, class: Node<'a>) -> Option<ClassInfo> {
        let name = self.text(class.field("name")?).to_string();
        let mut info = ClassInfo {
            id: 0,
            name,
            origin: self.origin(class),
            bases: vec![],
            flask_base: false,
            sqlmodel_base: false,
            table_true: false,
            tablename: None,
            tablename_unreadable: false,
            tablename_rule: None,
            is_abstract: false,
            has_table_object: false,
            concrete: false,
            table_args: None,
            members: vec![],
        };
        if let Some(superclasses) = class.field("superclasses") {
            let mut cursor = superclasses.walk();
            for base in superclasses.named_children(&mut cursor) {
                if base.kind() == "keyword_argument" {
                    let key = base.field("name").map(|n| self.text(n));
                    let value = base.field("value");
                    if key == Some("table") && value.is_some_and(|v| is_true(v, self.src)) {
                        info.table_true = true;
                    }
                    continue;
                }
                let Some(written) = dotted_name(base, self.src) else {
                    continue;
                };
                self.classify_base(&written, &mut info);
                info.bases.push(last_segment(&written).to_string());
            }
        }
        let body = class.field("body")?;
        let mut cursor = body.walk();
        for stmt in body.named_children(&mut cursor) {
            match stmt.kind() {
                "expression_statement" => {
                    if let Some(assignment) =
                        stmt.named_child(0).filter(|n| n.kind() == "assignment")
                    {
                        self.read_class_assignment(assignment, &mut info);
                    }
                }
                "decorated_definition" => self.read_declared_attr(stmt, &mut info),
                _ => {}
            }
        }
        // Every class's facts are held until the schema is built: no growth slack.
        info.members.shrink_to_fit();
        Some(info)
    }

    fn classify_base(&self, written: &str, info: &mut ClassInfo) {
        let resolved = self.imports.resolve(written);
        if last_segment(&resolved) == "SQLModel" {
            info.sqlmodel_base = true;
        }
        let flask_model = match written.rsplit_once('.') {
            Some((root, "Model")) => {
                self.globals.sa_instance(last_segment(root))
                    || resolved.starts_with("flask_sqlalchemy")
            }
            _ => self.globals.flask_model_alias(written),
        };
        if flask_model {
            info.flask_base = true;
        }
    }

    fn read_class_assignment(&self, assignment: Node<'a>, info: &mut ClassInfo) {
        let Some(left) = assignment.field("left") else {
            return;
        };
        if left.kind() != "identifier" {
            return;
        }
        let attr = self.text(left);
        let right = assignment.field("right").map(unwrap_parens);
        match attr {
            "__tablename__" => match right.and_then(|r| self.string(r)) {
                Some(name) => info.tablename = Some(name),
                None => info.tablename_unreadable = true,
            },
            "__abstract__" => info.is_abstract = right.is_some_and(|r| is_true(r, self.src)),
            "__table_args__" => info.table_args = right.map(|r| self.read_table_args(r)),
            "__table__" => info.has_table_object = true,
            "__mapper_args__" => info.concrete = right.is_some_and(|r| self.concrete_mapping(r)),
            _ if attr.starts_with("__") => {}
            _ => {
                let annotation = assignment.field("type");
                if let Some(member) = self.read_member(attr, annotation, right, assignment) {
                    info.members.push(member);
                }
            }
        }
    }

    /// `@declared_attr` methods: mixins' way to contribute FK columns and relationships.
    fn read_declared_attr(&self, decorated: Node<'a>, info: &mut ClassInfo) {
        let mut cursor = decorated.walk();
        let is_declared_attr = decorated
            .named_children(&mut cursor)
            .any(|n| n.kind() == "decorator" && self.text(n).contains("declared_attr"));
        let Some(function) = decorated.field("definition") else {
            return;
        };
        if !is_declared_attr || function.kind() != "function_definition" {
            return;
        }
        let Some(name) = function.field("name").map(|n| self.text(n)) else {
            return;
        };
        let Some(body) = function.field("body") else {
            return;
        };
        let Some(returned) = descendants(body)
            .into_iter()
            .find(|n| n.kind() == "return_statement")
            .and_then(|r| r.named_child(0))
        else {
            return;
        };
        if name == "__mapper_args__" {
            info.concrete = self.concrete_mapping(returned);
            return;
        }
        if name == "__tablename__" {
            let text = self.text(returned);
            info.tablename_rule = if text.contains("__name__") && text.contains(".lower()") {
                Some(TablenameRule::Lower)
            } else if text.contains("__name__") {
                Some(TablenameRule::Snake)
            } else {
                None
            };
            return;
        }
        let annotation = function.field("return_type");
        if let Some(member) =
            self.read_member(name, annotation, Some(unwrap_parens(returned)), function)
        {
            info.members.push(member);
        }
    }

    fn read_member(
        &self,
        attr: &str,
        annotation: Option<Node<'a>>,
        value: Option<Node<'a>>,
        at: Node<'a>,
    ) -> Option<Member> {
        let ann_text = annotation.map(|a| self.text(a)).unwrap_or("");
        let mut tokens = type_tokens(ann_text);
        // `from sqlalchemy.orm import Mapped as M`: `M[int]` is `Mapped[int]`.
        if let Some(first) = tokens.first_mut()
            && self.imports.is_bound(first)
            && self.imports.resolve(first) == "sqlalchemy.orm.Mapped"
        {
            *first = "Mapped";
        }
        if annotation_is(&tokens, "ClassVar") {
            return None;
        }
        let member = |kind| {
            Some(Member {
                attr: attr.to_string(),
                kind,
            })
        };
        if let Some(call) = value.filter(|v| v.kind() == "call") {
            return match self.call_name(call).as_deref() {
                Some("Column") => member(MemberKind::Column(self.read_column(
                    attr,
                    Some(&tokens),
                    call,
                    false,
                )?)),
                Some("mapped_column") => {
                    let mut column = self.read_column(attr, Some(&tokens), call, true)?;
                    if let Some(annotated) = annotation.and_then(|a| self.annotated_in(a, &tokens))
                    {
                        let explicit = CallArgs::of(call, self.src)
                            .and_then(|args| self.stated_nullable(&args));
                        apply_annotated(&mut column, &annotated, explicit);
                    }
                    member(MemberKind::Column(column))
                }
                Some("Field") => member(MemberKind::Column(self.read_field(attr, &tokens, call)?)),
                Some("relationship") | Some("Relationship") => member(MemberKind::Relationship(
                    Box::new(self.read_relationship(attr, &tokens, call, at)?),
                )),
                _ if !tokens.is_empty() && !annotation_is(&tokens, "Mapped") => member(
                    MemberKind::Column(self.plain_column(attr, &tokens, at, true)),
                ),
                _ => None,
            };
        }
        if tokens.is_empty() {
            return None;
        }
        let typed = annotation_is(&tokens, "Mapped");
        let mut column = self.plain_column(attr, &tokens, at, !typed);
        if typed && let Some(annotated) = self.annotated_in(annotation?, &tokens) {
            apply_annotated(&mut column, &annotated, None);
        } else if typed && descendants(annotation?).iter().any(|n| n.kind() == "call") {
            // `Mapped[helper(...)]` with a helper the reader can't follow: its type, keys and
            // nullability are unknown, so the column is left to the migration's own words.
            return None;
        }
        member(MemberKind::Column(column))
    }

    /// Module-level `name = Annotated[T, mapped_column(...)]` aliases.
    fn annotated_aliases(&self) -> Vec<(String, AnnotatedColumn)> {
        let root = self.file.tree.root_node();
        let mut cursor = root.walk();
        let statements: Vec<Node> = root.named_children(&mut cursor).collect();
        statements
            .into_iter()
            .filter_map(|stmt| stmt.named_child(0).filter(|n| n.kind() == "assignment"))
            .filter_map(|assignment| {
                let left = assignment.field("left")?;
                let right = assignment.field("right")?;
                let is_annotated = right.kind() == "subscript"
                    && right
                        .field("value")
                        .is_some_and(|v| last_segment(self.text(v)) == "Annotated");
                if left.kind() != "identifier" || !is_annotated {
                    return None;
                }
                Some((self.text(left).to_string(), self.read_annotated(right)?))
            })
            .collect()
    }

    /// The `mapped_column(...)` inside an `Annotated[...]` (inline or through an alias).
    fn annotated_in(&self, annotation: Node<'a>, tokens: &[&str]) -> Option<AnnotatedColumn> {
        if self.globals.may_have_factories()
            && let Some(made) = self.factory_column(annotation)
        {
            return Some(made);
        }
        if self.text(annotation).contains("Annotated")
            && let Some(inline) = self.read_annotated(annotation)
        {
            return Some(inline);
        }
        tokens
            .iter()
            .find_map(|t| self.globals.annotated(last_segment(t)))
            .cloned()
    }

    fn read_annotated(&self, node: Node<'a>) -> Option<AnnotatedColumn> {
        let call = descendants(node).into_iter().find(|n| {
            n.kind() == "call" && self.call_name(*n).as_deref() == Some("mapped_column")
        })?;
        let args = CallArgs::of(call, self.src)?;
        let fks = args
            .positional
            .iter()
            .filter(|arg| self.call_name(**arg).as_deref() == Some("ForeignKey"))
            .filter_map(|arg| self.read_foreign_key(unwrap_parens(*arg), ""))
            .collect();
        // `Annotated[<type>, ...]`: the type is the subscript's first element.
        let optional = descendants(node)
            .into_iter()
            .find(|n| {
                n.kind() == "subscript"
                    && n.field("value")
                        .is_some_and(|v| last_segment(self.text(v)) == "Annotated")
            })
            .and_then(|annotated| annotated.field("subscript"))
            .is_some_and(|inner| self.optional(&type_tokens(self.text(inner))));
        Some(AnnotatedColumn {
            fks,
            nullable: self.stated_nullable(&args),
            primary_key: args
                .keyword("primary_key")
                .is_some_and(|v| is_true(v, self.src)),
            server_default: self.server_default(&args),
            optional,
            whole_type: false,
        })
    }

    fn plain_column(
        &self,
        attr: &str,
        tokens: &[&str],
        at: Node<'a>,
        sqlmodel_only: bool,
    ) -> PendingColumn {
        PendingColumn {
            column: Column {
                name: attr.to_string(),
                nullable: self.optional(tokens),
                primary_key: false,
                server_default: false,
                origin: self.origin(at),
            },
            fks: vec![],
            sqlmodel_only,
        }
    }

    /// `Column(...)` / `mapped_column(...)`. `annotation` is None for `Table(...)` columns.
    fn read_column(
        &self,
        attr: &str,
        annotation: Option<&[&str]>,
        call: Node<'a>,
        typed: bool,
    ) -> Option<PendingColumn> {
        let args = CallArgs::of(call, self.src)?;
        let name = args
            .positional
            .first()
            .and_then(|n| string_value(*n, self.src))
            .or_else(|| args.keyword("name").and_then(|n| self.string(n)))
            .unwrap_or_else(|| attr.to_string());
        if name.is_empty() {
            return None;
        }
        let primary_key = args
            .keyword("primary_key")
            .is_some_and(|v| is_true(v, self.src));
        let explicit = self.stated_nullable(&args);
        let from_annotation = match annotation {
            Some(tokens) if typed && annotation_is(tokens, "Mapped") => self.optional(tokens),
            // Without a `Mapped[...]` to decide, SQLAlchemy keeps `nullable=None` as given,
            // and the DDL then says NOT NULL.
            _ => !self.nullable_none(&args),
        };
        let nullable = explicit.unwrap_or(!primary_key && from_annotation);
        let misplaced = args.keyword("ondelete").and_then(|v| self.string(v));
        let fk_calls: Vec<Node> = args
            .positional
            .iter()
            .filter(|arg| self.call_name(**arg).as_deref() == Some("ForeignKey"))
            .map(|arg| unwrap_parens(*arg))
            .collect();
        let misplaced_span = self.misplaced_span(&args, fk_calls.len() == 1);
        let fks = fk_calls
            .iter()
            .filter_map(|call| self.read_foreign_key(*call, &name))
            .map(|mut fk| {
                if let Some(source) = fk.source.as_mut() {
                    source.misplaced = misplaced_span.clone();
                }
                PendingFk {
                    misplaced_ondelete: misplaced.clone(),
                    ..fk
                }
            })
            .collect();
        let column = Column {
            name,
            nullable,
            primary_key,
            server_default: self.server_default(&args),
            origin: self.origin(call),
        };
        Some(PendingColumn {
            column,
            fks,
            sqlmodel_only: false,
        })
    }

    fn read_foreign_key(&self, call: Node<'a>, column: &str) -> Option<PendingFk> {
        let args = CallArgs::of(call, self.src)?;
        let (referent, referent_column) = self.read_target(args.arg(0, "column")?)?;
        Some(PendingFk {
            columns: vec![column.to_string()],
            referent,
            referent_columns: vec![referent_column],
            ondelete: args.keyword("ondelete").and_then(|v| self.string(v)),
            onupdate: args.keyword("onupdate").and_then(|v| self.string(v)),
            origin: self.origin(call),
            misplaced_ondelete: None,
            source: Some(self.key_source(KeyCall::ForeignKey, call, &args)),
        })
    }

    fn key_source(&self, kind: KeyCall, call: Node<'a>, args: &CallArgs<'a>) -> KeySource {
        let mut layout = arg_layout(args.list, self.file);
        // `Field(\n    default=None, foreign_key="t.id"\n)`: the arguments share one line, so a
        // new one goes on that line too, not on a line of its own.
        let mut cursor = args.list.walk();
        let first_arg = args
            .list
            .named_children(&mut cursor)
            .find(|n| !n.is_extra());
        if layout.close_on_own_line
            && layout.trailing_comma.is_none()
            && first_arg.is_some_and(|first| {
                self.file.line_of(first.start_byte()) == self.file.line_of(layout.last_arg_end)
            })
        {
            layout.close_on_own_line = false;
        }
        KeySource {
            call: kind,
            range: call.byte_range(),
            layout,
            quote: descendants(args.list)
                .into_iter()
                .find(|n| n.kind() == "string")
                .and_then(|n| quote_of(n, self.src)),
            has_ondelete: args.keyword("ondelete").is_some(),
            has_onupdate: args.keyword("onupdate").is_some(),
            has_splat: args.has_splat,
            ondelete_keyword: "ondelete".into(),
            onupdate_keyword: Some("onupdate".into()),
            misplaced: None,
        }
    }

    /// The `ondelete=` keyword of a column call, with the separator before it.
    fn misplaced_span(&self, args: &CallArgs<'a>, single_key: bool) -> Option<MisplacedOndelete> {
        let (_, keyword, value) = args.keywords.iter().find(|(k, _, _)| *k == "ondelete")?;
        let mut cursor = args.list.walk();
        let previous = args
            .list
            .named_children(&mut cursor)
            .filter(|n| !n.is_extra() && n.end_byte() <= keyword.start_byte())
            .last()?;
        Some(MisplacedOndelete {
            removal: previous.end_byte()..keyword.end_byte(),
            value_text: self.text(*value).to_string(),
            single_key,
        })
    }

    fn read_target(&self, node: Node<'a>) -> Option<(Referent, String)> {
        let node = unwrap_parens(node);
        if let Some(text) = self.string(node) {
            let (table, column) = split_target(&text)?;
            return Some((Referent::Table(table), column));
        }
        let dotted = dotted_name(node, self.src)?;
        let (owner, column) = split_attribute_target(&dotted)?;
        Some((Referent::Name(owner), column))
    }

    /// SQLModel `Field(foreign_key="team.id", ondelete=..., nullable=..., sa_column=Column(...))`.
    fn read_field(&self, attr: &str, tokens: &[&str], call: Node<'a>) -> Option<PendingColumn> {
        let args = CallArgs::of(call, self.src)?;
        if let Some(sa_column) = args.keyword("sa_column")
            && self.call_name(sa_column).as_deref() == Some("Column")
        {
            return self.read_column(attr, None, unwrap_parens(sa_column), false);
        }
        let primary_key = args
            .keyword("primary_key")
            .is_some_and(|v| is_true(v, self.src));
        let explicit = self.stated_nullable(&args);
        // SQLModel hands `sa_column_kwargs` to Column() last: its `nullable` wins.
        // `Field(nullable=None)` reaches Column() as given: NOT NULL in the DDL.
        let nullable = self
            .dict_bool(args.keyword("sa_column_kwargs"), "nullable")
            .or(explicit)
            .unwrap_or(!primary_key && !self.nullable_none(&args) && self.optional(tokens));
        let mut fks = vec![];
        if let Some(target) = args.keyword("foreign_key")
            && let Some((referent, column)) = self.read_target(target)
        {
            fks.push(PendingFk {
                columns: vec![attr.to_string()],
                referent,
                referent_columns: vec![column],
                ondelete: args.keyword("ondelete").and_then(|v| self.string(v)),
                onupdate: None,
                origin: self.origin(target),
                misplaced_ondelete: None,
                source: Some(self.key_source(KeyCall::Field, call, &args)),
            });
        }
        // SQLModel's Field() has no server_default of its own: `sa_column_kwargs` carries it.
        let server_default = args.has_splat
            || args.keyword("sa_column_kwargs").is_some_and(|kwargs| {
                self.bindings
                    .options_of(unwrap_parens(kwargs))
                    .is_none_or(|options| {
                        options.get("server_default").is_some_and(|v| !is_none(*v))
                    })
            });
        let column = Column {
            name: attr.to_string(),
            nullable,
            primary_key,
            server_default,
            origin: self.origin(call),
        };
        Some(PendingColumn {
            column,
            fks,
            sqlmodel_only: false,
        })
    }

    fn read_fk_constraint(&self, call: Node<'a>) -> Option<PendingFk> {
        let args = CallArgs::of(call, self.src)?;
        let columns = string_list(args.arg(0, "columns")?, self.src)?;
        let refs = unwrap_parens(args.arg(1, "refcolumns")?);
        let targets: Vec<(Referent, String)> = match refs.kind() {
            "list" | "tuple" => {
                let mut cursor = refs.walk();
                let items: Vec<Node> = refs.named_children(&mut cursor).collect();
                items
                    .into_iter()
                    .filter_map(|n| self.read_target(n))
                    .collect()
            }
            _ => vec![self.read_target(refs)?],
        };
        let (referent, _) = targets.first()?.clone();
        Some(PendingFk {
            columns,
            referent,
            referent_columns: targets.into_iter().map(|(_, c)| c).collect(),
            ondelete: args.keyword("ondelete").and_then(|v| self.string(v)),
            onupdate: args.keyword("onupdate").and_then(|v| self.string(v)),
            origin: self.origin(call),
            misplaced_ondelete: None,
            source: Some(self.key_source(KeyCall::Constraint, call, &args)),
        })
    }

    /// `__table_args__`: a tuple of constraints, a dict, or a tuple ending in a dict.
    fn read_table_args(&self, value: Node<'a>) -> TableArgs {
        let mut args = TableArgs::default();
        let items: Vec<Node> = match value.kind() {
            "tuple" | "list" => {
                let mut cursor = value.walk();
                value
                    .named_children(&mut cursor)
                    .map(unwrap_parens)
                    .collect()
            }
            _ => vec![value],
        };
        for item in items {
            if item.kind() == "dictionary" {
                let mut cursor = item.walk();
                for pair in item.named_children(&mut cursor) {
                    let key = pair.field("key").and_then(|k| string_value(k, self.src));
                    if key.as_deref() == Some("schema") {
                        args.schema = pair.field("value").and_then(|v| self.string(v));
                    }
                }
            } else if self.call_name(item).as_deref() == Some("ForeignKeyConstraint") {
                args.fks.extend(self.read_fk_constraint(item));
            } else if self.call_name(item).as_deref() == Some("PrimaryKeyConstraint") {
                args.primary_key.extend(self.constraint_columns(item));
            }
        }
        args
    }

    /// `{"key": True/False, ...}`'s value for `key`, when the dict is a literal.
    fn dict_bool(&self, dict: Option<Node<'a>>, key: &str) -> Option<bool> {
        let dict = unwrap_parens(dict?);
        if dict.kind() != "dictionary" {
            return None;
        }
        let mut cursor = dict.walk();
        let found = dict
            .named_children(&mut cursor)
            .filter(|pair| pair.kind() == "pair")
            .filter(|pair| {
                pair.field("key")
                    .and_then(|k| string_value(k, self.src))
                    .as_deref()
                    == Some(key)
            })
            .last()?;
        bool_literal(found.field("value")?, self.src)
    }

    /// The column names a constraint call lists as plain string arguments.
    fn constraint_columns(&self, call: Node<'a>) -> Vec<String> {
        CallArgs::of(call, self.src)
            .map(|args| {
                args.positional
                    .iter()
                    .filter_map(|a| string_value(*a, self.src))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn read_relationship(
        &self,
        attr: &str,
        tokens: &[&str],
        call: Node<'a>,
        at: Node<'a>,
    ) -> Option<PendingRel> {
        let args = CallArgs::of(call, self.src)?;
        // SQLModel's `Relationship(sa_relationship=relationship(...))`: the inner call is the
        // relationship, whatever else the outer one says.
        if let Some(inner) = args
            .keyword("sa_relationship")
            .map(unwrap_parens)
            .filter(|v| v.kind() == "call" && self.call_name(*v).as_deref() == Some("relationship"))
        {
            return self.read_relationship(attr, tokens, inner, at);
        }
        let target = args
            .arg(0, "argument")
            .and_then(|t| self.relationship_target(t))
            .or_else(|| annotation_target(tokens))
            .unwrap_or_default();
        let mut pending = PendingRel {
            rel: Relationship {
                declared_on: String::new(),
                attribute: attr.to_string(),
                target,
                cascade: None,
                passive_deletes: false,
                passive_deletes_all: false,
                cascade_delete: false,
                unread_options: None,
                foreign_keys: vec![],
                has_remote_side: false,
                remote_side: vec![],
                back_populates: None,
                backref: None,
                secondary: None,
                join: None,
                origin: self.origin(at),
            },
            secondary_var: None,
            viewonly: false,
        };
        // `relationship("Child", **OWNED)` with `OWNED = dict(cascade=...)` set in this file:
        // the dict's options count as if written out (keywords after it still win).
        let mut cursor = args.list.walk();
        for splat in args
            .list
            .named_children(&mut cursor)
            .filter(|n| n.kind() == "dictionary_splat")
        {
            match splat.named_child(0).filter(|n| n.kind() == "identifier") {
                Some(name) => self.apply_named_options(name, splat, &mut pending),
                None => pending.rel.unread_options = Some(self.text(splat).to_string()),
            }
        }
        for (key, _, value) in &args.keywords {
            if *key == "sa_relationship_kwargs" {
                self.read_relationship_kwargs(*value, &mut pending);
            } else {
                self.apply_relationship_option(key, *value, &mut pending);
            }
        }
        // A viewonly relationship never deletes anything: SQLAlchemy ignores (and warns about)
        // passive_deletes there, and refuses a delete cascade.
        if pending.viewonly {
            pending.rel.cascade = None;
            pending.rel.passive_deletes = false;
            pending.rel.passive_deletes_all = false;
            pending.rel.cascade_delete = false;
            pending.rel.unread_options = None;
        }
        Some(pending)
    }

    /// The nullability a column call states: `nullable=True` / `False` (or a module-level
    /// constant of this file holding one), else None. A `nullable=` the reader can't evaluate
    /// (`nullable=not STRICT`), or `**kwargs` that may carry one, reads as nullable rather than
    /// falling back to the annotation: SET NULL on a column that turns out NOT NULL fails
    /// loudly (and a NOT NULL the migration states wins anyway), where CASCADE on a nullable
    /// one deletes rows nobody meant to delete. `*args` can't carry it (it is keyword-only).
    /// `nullable=None` written in the call.
    fn nullable_none(&self, args: &CallArgs<'a>) -> bool {
        args.keyword("nullable").is_some_and(is_none)
    }

    /// A column call's server default: `server_default=` other than None, a positional
    /// `DefaultClause(...)` / `FetchedValue()`, or `**options` that may carry one.
    fn server_default(&self, args: &CallArgs<'a>) -> bool {
        args.has_splat
            || args.keyword("server_default").is_some_and(|v| !is_none(v))
            || args.positional.iter().any(|arg| {
                matches!(
                    self.call_name(*arg).as_deref(),
                    Some("DefaultClause" | "FetchedValue")
                )
            })
    }

    fn stated_nullable(&self, args: &CallArgs<'a>) -> Option<bool> {
        // A primary key is NOT NULL whatever the unknown says.
        let unknown = || {
            !args
                .keyword("primary_key")
                .is_some_and(|v| is_true(v, self.src))
        };
        let evaluated = |value: Node<'a>| {
            let value = unwrap_parens(value);
            bool_literal(value, self.src).or_else(|| match value.kind() {
                "identifier" => match self.bindings.value_of(value) {
                    Binding::Value(v) => bool_literal(v, self.src),
                    Binding::Unknown | Binding::Outer(_) => None,
                },
                _ => None,
            })
        };
        let mut cursor = args.list.walk();
        let kwargs_splat = args
            .list
            .named_children(&mut cursor)
            .any(|n| n.kind() == "dictionary_splat");
        if self.nullable_none(args) {
            // States nothing: the annotation decides (see `plain_column`).
            return None;
        }
        match args.keyword("nullable") {
            Some(value) => Some(evaluated(value).unwrap_or_else(unknown)),
            None => kwargs_splat.then(unknown),
        }
    }

    fn relationship_target(&self, node: Node<'a>) -> Option<String> {
        let node = unwrap_parens(node);
        let text = match node.kind() {
            "lambda" => self.text(node.field("body")?),
            _ => self.text(node),
        };
        let tokens = type_tokens(text);
        annotation_target(&tokens)
    }

    /// SQLModel passes relationship() options through a dict (or `dict(...)`).
    fn read_relationship_kwargs(&self, value: Node<'a>, pending: &mut PendingRel) {
        let value = unwrap_parens(value);
        // Another function's result (`kwargs(cascade=...)`) may hold anything: unread.
        match self.bindings.options_of(value) {
            Some(options) => {
                for (key, value) in options {
                    self.apply_relationship_option(&key, value, pending);
                }
            }
            None => pending.rel.unread_options = Some(self.text(value).to_string()),
        }
    }

    /// The options of the dict `name` is bound to, applied; when they can't be read, the
    /// relationship passes `written` unread.
    fn apply_named_options(&self, name: Node<'a>, written: Node<'a>, pending: &mut PendingRel) {
        match self.bindings.dict_options(name) {
            Some(options) => {
                for (key, value) in options {
                    self.apply_relationship_option(&key, value, pending);
                }
            }
            None => pending.rel.unread_options = Some(self.text(written).to_string()),
        }
    }

    fn apply_relationship_option(&self, key: &str, value: Node<'a>, pending: &mut PendingRel) {
        let value = unwrap_parens(value);
        let rel = &mut pending.rel;
        match key {
            "cascade" => {
                rel.cascade = self.string(value);
                if rel.cascade.is_none() && self.text(value) != "None" {
                    rel.unread_options = Some(format!("cascade={}", self.text(value)));
                }
            }
            "passive_deletes" => {
                rel.passive_deletes = self.passive(value);
                rel.passive_deletes_all = self.passive_all(value);
            }
            "cascade_delete" => rel.cascade_delete = is_true(value, self.src),
            "back_populates" => rel.back_populates = self.string(value),
            "remote_side" => {
                rel.has_remote_side = true;
                rel.remote_side = foreign_key_names(&self.column_expression(value));
            }
            "primaryjoin" => {
                let join = self.column_expression(value);
                // `remote(Node.id)` in the join says what `remote_side=[id]` says.
                let remote = remote_columns(&join);
                if !remote.is_empty() {
                    rel.has_remote_side = true;
                    rel.remote_side.extend(remote);
                }
                rel.join = Some(join_sides(&join));
            }
            "viewonly" => pending.viewonly = is_true(value, self.src),
            "foreign_keys" => {
                rel.foreign_keys = foreign_key_names(&self.column_expression(value));
            }
            "backref" => rel.backref = self.read_backref(value),
            "secondary" => match value.kind() {
                "identifier" | "attribute" => {
                    let written = self.text(value);
                    rel.secondary = Some(last_segment(written).to_string());
                    pending.secondary_var = Some(last_segment(written).to_string());
                }
                _ => rel.secondary = string_value(value, self.src),
            },
            _ => {}
        }
    }

    /// The text of a relationship option that names columns, as a string
    /// (`"Post.author_id"`), a lambda's body or the expression itself (`[author_id]`).
    fn column_expression(&self, value: Node<'a>) -> String {
        let value = match value.kind() {
            "lambda" => value.field("body").unwrap_or(value),
            _ => value,
        };
        string_value(value, self.src).unwrap_or_else(|| self.text(value).to_string())
    }

    /// `passive_deletes=True`: the database deletes the children. `"all"` is not that: it only
    /// stops the ORM nulling their keys, for a database that refuses the delete or runs a
    /// trigger (SQLAlchemy's words), so it says nothing about CASCADE.
    fn passive(&self, value: Node<'a>) -> bool {
        is_true(value, self.src)
    }

    fn passive_all(&self, value: Node<'a>) -> bool {
        self.string(value).as_deref() == Some("all")
    }

    fn read_backref(&self, value: Node<'a>) -> Option<Backref> {
        if let Some(name) = string_value(value, self.src) {
            return Some(Backref {
                name,
                cascade: None,
                passive_deletes: false,
                passive_deletes_all: false,
            });
        }
        // The legacy form `backref=("notes", {"cascade": ...})`: a name and backref()'s options.
        if value.kind() == "tuple" {
            let mut cursor = value.walk();
            let items: Vec<Node<'a>> = value.named_children(&mut cursor).collect();
            let [name, options] = items[..] else {
                return None;
            };
            let options = self.bindings.options_of(unwrap_parens(options))?;
            return Some(Backref {
                name: self.string(name)?,
                cascade: options.get("cascade").and_then(|v| self.string(*v)),
                passive_deletes: options
                    .get("passive_deletes")
                    .is_some_and(|v| self.passive(*v)),
                passive_deletes_all: options
                    .get("passive_deletes")
                    .is_some_and(|v| self.passive_all(*v)),
            });
        }
        // Resolved through the imports, as `relationship` is: `backref as orm_backref`,
        // `orm.backref`, `db.backref`; a project's own `backref()` is not SQLAlchemy's.
        if self.call_name(value).as_deref() != Some("backref") {
            return None;
        }
        let args = CallArgs::of(value, self.src)?;
        Some(Backref {
            name: self.string(args.arg(0, "name")?)?,
            cascade: args.keyword("cascade").and_then(|v| self.string(v)),
            passive_deletes: args
                .keyword("passive_deletes")
                .is_some_and(|v| self.passive(v)),
            passive_deletes_all: args
                .keyword("passive_deletes")
                .is_some_and(|v| self.passive_all(v)),
        })
    }
}

/// The column's own `mapped_column()` arguments win over the alias's, which win over the
/// `Optional` of the annotation.
fn apply_annotated(
    column: &mut PendingColumn,
    annotated: &AnnotatedColumn,
    explicit: Option<bool>,
) {
    let name = column.column.name.clone();
    // SQLAlchemy keeps the alias's keys beside the column's own: the column gets both.
    column.fks.extend(annotated.fks.iter().map(|fk| PendingFk {
        columns: vec![name.clone()],
        ..fk.clone()
    }));
    column.column.primary_key |= annotated.primary_key;
    column.column.server_default |= annotated.server_default;
    column.column.nullable = match (explicit, annotated.nullable) {
        (Some(nullable), _) | (None, Some(nullable)) => nullable,
        (None, None) => {
            let typed_optional = column.column.nullable && !annotated.whole_type;
            (typed_optional || annotated.optional) && !column.column.primary_key
        }
    };
    column.sqlmodel_only = false;
}

fn enclosing_class(node: Node) -> Option<Node> {
    let mut current = node.parent();
    while let Some(n) = current {
        if n.kind() == "class_definition" {
            return Some(n);
        }
        current = n.parent();
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Phase 2: inheritance, table names, target resolution.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
enum Mapping {
    NotTable,
    /// Its own table: (schema, name).
    Table(Option<String>, String),
    /// Single-table inheritance: its columns live in an ancestor's table.
    Inherits(String),
}

struct Hierarchy<'a> {
    classes: HashMap<&'a str, &'a ClassInfo>,
}

impl<'a> Hierarchy<'a> {
    fn is_table(&self, name: &str, decided: &HashMap<usize, Mapping>) -> bool {
        let class = self.classes.get(name);
        matches!(
            class.and_then(|c| decided.get(&c.id)),
            Some(Mapping::Table(..))
        )
    }

    /// Ancestors in depth-first, left-to-right order (close to Python's MRO for mixins), each
    /// once; iterative so that odd (even cyclic) hierarchies cannot loop or overflow.
    fn ancestors(&self, class: &ClassInfo, stop: impl Fn(&str) -> bool) -> Vec<&'a ClassInfo> {
        let mut out = Vec::new();
        let mut seen: HashSet<&str> = HashSet::from([class.name.as_str()]);
        let mut stack: Vec<&str> = class.bases.iter().rev().map(String::as_str).collect();
        while let Some(name) = stack.pop() {
            let Some(info) = self.classes.get(name).copied() else {
                continue;
            };
            if !seen.insert(info.name.as_str()) {
                continue;
            }
            out.push(info);
            if !stop(name) {
                stack.extend(info.bases.iter().rev().map(String::as_str));
            }
        }
        out
    }

    fn rooted(&self, class: &ClassInfo, ancestors: &[&ClassInfo]) -> bool {
        std::iter::once(class)
            .chain(ancestors.iter().copied())
            .any(|c| {
                c.flask_base
                    || c.sqlmodel_base
                    || c.bases.iter().any(|b| {
                        !self.classes.contains_key(b.as_str())
                            && !NEUTRAL_BASES.contains(&b.as_str())
                    })
            })
    }
}

fn has_primary_key(members: &[&Member]) -> bool {
    members
        .iter()
        .any(|m| matches!(&m.kind, MemberKind::Column(c) if c.column.primary_key))
}

fn decide(class: &ClassInfo, hierarchy: &Hierarchy, decided: &HashMap<usize, Mapping>) -> Mapping {
    let is_table = |name: &str| hierarchy.is_table(name, decided);
    let ancestors = hierarchy.ancestors(class, is_table);
    let sqlmodel = class.sqlmodel_base || ancestors.iter().any(|a| a.sqlmodel_base);
    let flask = class.flask_base || ancestors.iter().any(|a| a.flask_base);
    let table_args = class.table_args.as_ref().or_else(|| {
        ancestors
            .iter()
            .filter(|a| !is_table(&a.name))
            .find_map(|a| a.table_args.as_ref())
    });
    let schema = table_args.and_then(|a| a.schema.as_deref());
    let own_table = |name: &str| Mapping::Table(schema.map(str::to_string), name.to_string());
    if class.is_abstract || class.has_table_object {
        return Mapping::NotTable;
    }
    if sqlmodel {
        return match (class.table_true, &class.tablename) {
            (false, _) => Mapping::NotTable,
            (true, Some(name)) => own_table(name),
            (true, None) => own_table(&class.name.to_lowercase()),
        };
    }
    if let Some(name) = &class.tablename {
        return own_table(name);
    }
    if class.tablename_unreadable {
        return Mapping::NotTable;
    }
    let own_members: Vec<&Member> = class.members.iter().collect();
    let table_parent = ancestors.iter().find_map(|a| match decided.get(&a.id) {
        Some(Mapping::Table(schema, name)) => Some(qualified(schema.as_deref(), name)),
        _ => None,
    });
    if let Some(parent) = table_parent
        && !has_primary_key(&own_members)
    {
        return Mapping::Inherits(parent);
    }
    if flask {
        return own_table(&camel_to_snake(&class.name));
    }
    let rule = ancestors.iter().find_map(|a| a.tablename_rule);
    let mixin_members: Vec<&Member> = std::iter::once(class)
        .chain(ancestors.iter().copied().filter(|a| !is_table(&a.name)))
        .flat_map(|c| c.members.iter())
        .collect();
    match rule {
        Some(rule) if hierarchy.rooted(class, &ancestors) && has_primary_key(&mixin_members) => {
            own_table(&match rule {
                TablenameRule::Lower => class.name.to_lowercase(),
                TablenameRule::Snake => camel_to_snake(&class.name),
            })
        }
        _ => Mapping::NotTable,
    }
}

struct Resolver<'a> {
    classes: &'a BTreeMap<String, String>,
    table_vars: &'a HashMap<String, String>,
}

impl Resolver<'_> {
    fn name(&self, name: &str) -> String {
        self.classes
            .get(name)
            .or_else(|| self.table_vars.get(name))
            .cloned()
            .unwrap_or_else(|| name.to_string())
    }

    fn fk(&self, fk: &PendingFk) -> ModelForeignKey {
        ModelForeignKey {
            columns: fk.columns.clone(),
            referent_table: match &fk.referent {
                Referent::Table(table) => table.clone(),
                Referent::Name(name) => self.name(name),
            },
            referent_columns: fk.referent_columns.clone(),
            ondelete: fk.ondelete.clone(),
            onupdate: fk.onupdate.clone(),
            origin: fk.origin.clone(),
            misplaced_ondelete: fk.misplaced_ondelete.clone(),
            source: fk.source.clone(),
        }
    }

    fn relationship(&self, pending: &PendingRel, declared_on: &str) -> Relationship {
        let mut rel = pending.rel.clone();
        rel.declared_on = declared_on.to_string();
        if let Some(var) = &pending.secondary_var
            && let Some(table) = self.table_vars.get(var)
        {
            rel.secondary = Some(table.clone());
        }
        rel
    }
}

fn add_members<'m>(
    table: &mut Table,
    members: impl Iterator<Item = &'m Member>,
    declared_on: &str,
    sqlmodel: bool,
    resolver: &Resolver,
) {
    let mut seen = HashSet::new();
    for member in members {
        if !seen.insert(member.attr.as_str()) {
            continue;
        }
        match &member.kind {
            MemberKind::Column(pending) => {
                if pending.sqlmodel_only && !sqlmodel {
                    continue;
                }
                if member.attr != pending.column.name {
                    table
                        .attribute_columns
                        .entry(member.attr.clone())
                        .or_insert_with(|| pending.column.name.clone());
                }
                add_column(table, pending, resolver);
            }
            MemberKind::Relationship(pending) => {
                table
                    .relationships
                    .push(resolver.relationship(pending, declared_on));
            }
        }
    }
}

/// The names of the columns `add_members` takes from `members`.
fn declared_columns<'m>(members: impl Iterator<Item = &'m Member>, sqlmodel: bool) -> Vec<String> {
    members
        .filter_map(|member| match &member.kind {
            MemberKind::Column(pending) if sqlmodel || !pending.sqlmodel_only => {
                Some(pending.column.name.clone())
            }
            _ => None,
        })
        .collect()
}

fn add_column(table: &mut Table, pending: &PendingColumn, resolver: &Resolver) {
    table
        .columns
        .entry(pending.column.name.clone())
        .or_insert_with(|| pending.column.clone());
    table
        .foreign_keys
        .extend(pending.fks.iter().map(|fk| resolver.fk(fk)));
}

fn build(mut facts: Vec<FileFacts>, globals: &Globals) -> Schema {
    // A member added from another file goes to the class of that name when only one has it.
    let late: Vec<(String, Member)> = facts
        .iter_mut()
        .flat_map(|f| std::mem::take(&mut f.late_members))
        .collect();
    for (class, member) in late {
        let mut named = facts
            .iter_mut()
            .flat_map(|f| f.classes.iter_mut())
            .filter(|c| c.name == class);
        if let (Some(only), None) = (named.next(), named.next()) {
            only.members.push(member);
        }
    }
    for (id, class) in facts
        .iter_mut()
        .flat_map(|f| f.classes.iter_mut())
        .enumerate()
    {
        class.id = id;
    }
    let all_classes: Vec<&ClassInfo> = facts.iter().flat_map(|f| f.classes.iter()).collect();
    let mut by_name: HashMap<&str, &ClassInfo> = HashMap::new();
    for class in &all_classes {
        by_name.entry(class.name.as_str()).or_insert(class);
    }
    let hierarchy = Hierarchy { classes: by_name };

    // A parent's ancestor set is a strict subset of its child's, so deciding in order of
    // ancestor count decides every parent before its children.
    let mut order: Vec<(&ClassInfo, usize)> = all_classes
        .iter()
        .map(|c| (*c, hierarchy.ancestors(c, |_| false).len()))
        .collect();
    order.sort_by_key(|(class, depth)| (*depth, class.id));
    let mut decided: HashMap<usize, Mapping> = HashMap::new();
    for (class, _) in &order {
        let mapping = decide(class, &hierarchy, &decided);
        decided.insert(class.id, mapping);
    }

    let mut schema = Schema::default();
    for class in &all_classes {
        let key = match decided.get(&class.id) {
            Some(Mapping::Table(schema_name, table)) => qualified(schema_name.as_deref(), table),
            Some(Mapping::Inherits(key)) => key.clone(),
            _ => continue,
        };
        if schema.classes.get(&class.name).is_some_and(|k| *k != key) {
            schema.ambiguous_classes.insert(class.name.clone());
        }
        schema.classes.entry(class.name.clone()).or_insert(key);
    }
    let tables: Vec<&PendingTable> = facts.iter().flat_map(|f| f.tables.iter()).collect();
    let mut table_vars = HashMap::new();
    for table in &tables {
        let key = qualified(table.schema.as_deref(), &table.name);
        if let Some(var) = &table.var {
            table_vars.entry(var.clone()).or_insert_with(|| key.clone());
        }
        if let Some(class) = &table.class_name {
            schema.classes.entry(class.clone()).or_insert(key);
        }
    }
    let imperative: Vec<(String, &ImperativeMapping)> = facts
        .iter()
        .flat_map(|f| f.imperative.iter())
        .filter_map(|m| Some((table_vars.get(&m.table_var)?.clone(), m)))
        .collect();
    for (key, mapping) in &imperative {
        schema
            .classes
            .entry(mapping.class.clone())
            .or_insert_with(|| key.clone());
    }
    let resolver = Resolver {
        classes: &schema.classes.clone(),
        table_vars: &table_vars,
    };

    for (class, _) in &order {
        let Some(Mapping::Table(schema_name, name)) = decided.get(&class.id) else {
            continue;
        };
        let is_table = |name: &str| hierarchy.is_table(name, &decided);
        let ancestors = hierarchy.ancestors(class, is_table);
        let sqlmodel = class.sqlmodel_base || ancestors.iter().any(|a| a.sqlmodel_base);
        let mixins: Vec<&ClassInfo> = std::iter::once(*class)
            .chain(ancestors.iter().copied().filter(|a| !is_table(&a.name)))
            .collect();
        let key = qualified(schema_name.as_deref(), name);
        // A concrete subclass's table stands alone: its rows are not rows of the base table,
        // so the base's keys are not its keys (SQLAlchemy joins nothing).
        let inherits = ancestors
            .iter()
            .find_map(|a| match decided.get(&a.id) {
                Some(Mapping::Table(schema_name, name)) => {
                    Some(qualified(schema_name.as_deref(), name))
                }
                _ => None,
            })
            .filter(|parent| *parent != key && !mixins.iter().any(|m| m.concrete));
        let table = schema.tables.entry(key).or_insert_with(|| Table {
            name: name.clone(),
            schema: schema_name.clone(),
            class_name: Some(class.name.clone()),
            is_association: false,
            origin: class.origin.clone(),
            columns: BTreeMap::new(),
            foreign_keys: vec![],
            relationships: vec![],
            attribute_columns: BTreeMap::new(),
            inherits,
            single_table_subclasses: BTreeMap::new(),
        });
        add_members(
            table,
            mixins.iter().flat_map(|m| m.members.iter()),
            &class.name,
            sqlmodel,
            &resolver,
        );
        if let Some(args) = mixins.iter().find_map(|m| m.table_args.as_ref()) {
            table
                .foreign_keys
                .extend(args.fks.iter().map(|fk| resolver.fk(fk)));
            mark_primary_key(table, &args.primary_key);
        }
    }
    for (class, _) in &order {
        let Some(Mapping::Inherits(key)) = decided.get(&class.id) else {
            continue;
        };
        let Some(table) = schema.tables.get_mut(key) else {
            continue;
        };
        let sqlmodel = class.sqlmodel_base;
        table.single_table_subclasses.insert(
            class.name.clone(),
            declared_columns(class.members.iter(), sqlmodel),
        );
        add_members(
            table,
            class.members.iter(),
            &class.name,
            sqlmodel,
            &resolver,
        );
    }
    for pending in tables {
        let key = qualified(pending.schema.as_deref(), &pending.name);
        let table = schema.tables.entry(key).or_insert_with(|| Table {
            name: pending.name.clone(),
            schema: pending.schema.clone(),
            class_name: pending.class_name.clone(),
            is_association: false,
            origin: pending.origin.clone(),
            columns: BTreeMap::new(),
            foreign_keys: vec![],
            relationships: vec![],
            attribute_columns: BTreeMap::new(),
            inherits: None,
            single_table_subclasses: BTreeMap::new(),
        });
        for column in &pending.columns {
            add_column(table, column, &resolver);
        }
        table
            .foreign_keys
            .extend(pending.fks.iter().map(|fk| resolver.fk(fk)));
        mark_primary_key(table, &pending.primary_key);
    }
    for (key, mapping) in &imperative {
        if let Some(table) = schema.tables.get_mut(key) {
            table
                .class_name
                .get_or_insert_with(|| mapping.class.clone());
            add_members(
                table,
                mapping.members.iter(),
                &mapping.class,
                false,
                &resolver,
            );
        }
    }
    schema.fk_naming_convention = facts.iter().find_map(|f| match f.naming.as_ref()? {
        NamingRef::Literal(template) => Some(template.clone()),
        NamingRef::Var(var) => globals.conventions.get(var).cloned(),
    });
    mark_association_tables(&mut schema);
    schema
}

/// SQLAlchemy makes the columns of a `PrimaryKeyConstraint` primary key columns, NOT NULL in
/// the DDL, whatever their own `Column()` or annotation says.
fn mark_primary_key(table: &mut Table, names: &[String]) {
    for name in names {
        if let Some(column) = table.columns.get_mut(name) {
            column.nullable = false;
            column.primary_key = true;
        }
    }
}

/// A `Table(...)` is an association (many-to-many link) table when a relationship names it as
/// `secondary=`, or when it holds two keys or more and nothing but their columns (and a
/// primary key, when the key columns are NOT NULL): a link row means nothing once either side
/// is gone. Any other `Table(...)` (an
/// audit log, a table of links with data of its own) follows the nullability rules, as a
/// mapped class does: CASCADE on its nullable keys would delete rows that should stay.
fn mark_association_tables(schema: &mut Schema) {
    let secondaries: HashSet<String> = schema
        .tables
        .values()
        .flat_map(|t| &t.relationships)
        .filter_map(|r| r.secondary.clone())
        .collect();
    for table in schema.tables.values_mut() {
        if table.class_name.is_some() {
            continue;
        }
        let named = secondaries.contains(&table.name)
            || table
                .schema
                .as_ref()
                .is_some_and(|s| secondaries.contains(&format!("{s}.{}", table.name)));
        let key_columns: HashSet<&str> = table
            .foreign_keys
            .iter()
            .flat_map(|fk| fk.columns.iter().map(String::as_str))
            .collect();
        // Key columns only; or with a surrogate primary key, NOT NULL key columns (an events
        // table of nullable `actor_id` / `post_id` keeps its rows when either side goes).
        let is_key = |name: &String| key_columns.contains(name.as_str());
        let only_links = table.foreign_keys.len() >= 2
            && (table.columns.keys().all(is_key)
                || table.columns.iter().all(|(name, c)| {
                    if is_key(name) {
                        !c.nullable
                    } else {
                        c.primary_key
                    }
                }));
        table.is_association = named || only_links;
    }
}
