//! models: every style of model file read into one Schema. Snapshots use a compact rendering
//! (one line per column, key and relationship) so a reviewer can check them against the
//! fixture by eye.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use fix_migrations::models::{
    Origin, Schema, Table, camel_to_snake, read_models, read_models_streamed,
};
use fix_migrations::parse::{SourceFile, parse_text};

const FIXTURES: &str = "tests/fixtures/models";

fn load(names: &[&str]) -> Vec<SourceFile> {
    names
        .iter()
        .map(|name| {
            let path = Path::new(FIXTURES).join(name);
            let text = std::fs::read_to_string(&path).unwrap();
            parse_text(&PathBuf::from(name), text).unwrap()
        })
        .collect()
}

fn read(names: &[&str]) -> Schema {
    read_models(&load(names))
}

fn read_src(src: &str) -> Schema {
    read_models(&[parse_text(Path::new("m.py"), src.to_string()).unwrap()])
}

/// The line alone when declared in the table's own file, `file:line` when a mixin elsewhere
/// declared it.
fn origin(origin: &Origin, table: &Table) -> String {
    if origin.file == table.origin.file {
        origin.line.to_string()
    } else {
        format!("{}:{}", origin.file.display(), origin.line)
    }
}

fn render(schema: &Schema) -> String {
    let mut out = String::new();
    for (key, table) in &schema.tables {
        let kind = match (&table.class_name, table.is_association) {
            (Some(class), _) => format!("class {class}"),
            (None, true) => "association Table".to_string(),
            (None, false) => "Table".to_string(),
        };
        let at = format!("{}:{}", table.origin.file.display(), table.origin.line);
        writeln!(out, "{key} ({kind}) @{at}").unwrap();
        for column in table.columns.values() {
            let null = if column.nullable { "NULL" } else { "NOT NULL" };
            let pk = if column.primary_key { " PK" } else { "" };
            let at = origin(&column.origin, table);
            writeln!(out, "  col {} {null}{pk} @{at}", column.name).unwrap();
        }
        for fk in &table.foreign_keys {
            write!(
                out,
                "  fk ({}) -> {}({})",
                fk.columns.join(", "),
                fk.referent_table,
                fk.referent_columns.join(", ")
            )
            .unwrap();
            for (label, value) in [
                ("ondelete", &fk.ondelete),
                ("onupdate", &fk.onupdate),
                ("MISPLACED ondelete", &fk.misplaced_ondelete),
            ] {
                if let Some(value) = value {
                    write!(out, " {label}={value}").unwrap();
                }
            }
            writeln!(out, " @{}", origin(&fk.origin, table)).unwrap();
        }
        for rel in &table.relationships {
            write!(
                out,
                "  rel {}.{} -> {}",
                rel.declared_on, rel.attribute, rel.target
            )
            .unwrap();
            if let Some(cascade) = &rel.cascade {
                write!(out, " cascade={cascade:?}").unwrap();
            }
            if rel.passive_deletes {
                write!(out, " passive_deletes").unwrap();
            }
            if rel.cascade_delete {
                write!(out, " cascade_delete").unwrap();
            }
            if !rel.foreign_keys.is_empty() {
                write!(out, " foreign_keys=[{}]", rel.foreign_keys.join(", ")).unwrap();
            }
            if rel.has_remote_side {
                write!(out, " remote_side").unwrap();
            }
            if let Some(back) = &rel.back_populates {
                write!(out, " back_populates={back}").unwrap();
            }
            if let Some(backref) = &rel.backref {
                write!(out, " backref={}", backref.name).unwrap();
                if let Some(cascade) = &backref.cascade {
                    write!(out, "(cascade={cascade:?})").unwrap();
                }
                if backref.passive_deletes {
                    write!(out, "(passive_deletes)").unwrap();
                }
            }
            if let Some(secondary) = &rel.secondary {
                write!(out, " secondary={secondary}").unwrap();
            }
            writeln!(out, " @{}", origin(&rel.origin, table)).unwrap();
        }
    }
    writeln!(out, "classes:").unwrap();
    for (class, table) in &schema.classes {
        writeln!(out, "  {class} -> {table}").unwrap();
    }
    if let Some(template) = &schema.fk_naming_convention {
        writeln!(out, "fk naming convention: {template}").unwrap();
    }
    out
}

macro_rules! snapshot {
    ($name:expr, $files:expr) => {
        insta::with_settings!({snapshot_path => "../snapshots", prepend_module_to_snapshot => false}, {
            insta::assert_snapshot!($name, render(&read($files)));
        });
    };
}

#[test]
fn snapshot_declarative() {
    snapshot!("models_declarative", &["declarative.py"]);
}

#[test]
fn snapshot_typed() {
    snapshot!("models_typed", &["typed.py"]);
}

#[test]
fn snapshot_flask() {
    snapshot!("models_flask", &["flask.py"]);
}

#[test]
fn snapshot_sqlmodel() {
    snapshot!("models_sqlmodel", &["sqlmodel_app.py"]);
}

#[test]
fn snapshot_association() {
    snapshot!("models_association", &["association.py"]);
}

#[test]
fn snapshot_mixins_across_files() {
    snapshot!("models_mixins", &["mixins_base.py", "mixins_models.py"]);
}

#[test]
fn snapshot_self_referential() {
    snapshot!("models_self_referential", &["self_referential.py"]);
}

#[test]
fn snapshot_schema_tables() {
    snapshot!("models_schema_tables", &["schema_tables.py"]);
}

#[test]
fn snapshot_misplaced_ondelete() {
    snapshot!("models_misplaced_ondelete", &["misplaced_ondelete.py"]);
}

#[test]
fn snapshot_multiple_fks() {
    snapshot!("models_multiple_fks", &["multiple_fks.py"]);
}

#[test]
fn snapshot_naming_convention() {
    snapshot!("models_naming_convention", &["naming_convention.py"]);
}

fn column<'s>(schema: &'s Schema, table: &str, column: &str) -> &'s fix_migrations::models::Column {
    let table = schema
        .table(table)
        .unwrap_or_else(|| panic!("no table {table}: {schema:#?}"));
    table
        .columns
        .get(column)
        .unwrap_or_else(|| panic!("no column {column}: {table:#?}"))
}

#[test]
fn implicit_flask_table_names_are_snake_case() {
    assert_eq!(camel_to_snake("UserAccount"), "user_account");
    assert_eq!(camel_to_snake("HTTPLogEntry"), "http_log_entry");
    assert_eq!(camel_to_snake("APIKey"), "api_key");
    assert_eq!(camel_to_snake("User"), "user");
    assert_eq!(camel_to_snake("OAuth2Token"), "o_auth2_token");
    let schema = read(&["flask.py"]);
    assert_eq!(schema.classes["HTTPLogEntry"], "http_log_entry");
    assert_eq!(schema.classes["APIKey"], "api_key");
}

#[test]
fn sqlmodel_implicit_names_are_lowercased_class_names() {
    let schema = read(&["sqlmodel_app.py"]);
    assert_eq!(schema.classes["HeroTeamLink"], "heroteamlink");
    assert!(!schema.classes.contains_key("PostRead"), "not table=True");
    assert!(!schema.classes.contains_key("TimestampBase"));
}

#[test]
fn nullability_follows_optional_annotations() {
    let schema = read(&["typed.py"]);
    assert!(
        !column(&schema, "posts", "account_id").nullable,
        "Mapped[int]"
    );
    assert!(
        column(&schema, "posts", "approved_by").nullable,
        "Mapped[Optional[int]]"
    );
    assert!(
        column(&schema, "posts", "created_by").nullable,
        "Mapped[int | None]"
    );
    assert!(
        column(&schema, "posts", "reviewer_id").nullable,
        "Mapped[\"int | None\"]"
    );
    assert!(
        !column(&schema, "posts", "editor_id").nullable,
        "explicit nullable=False wins"
    );
    assert!(
        column(&schema, "posts", "status_id").nullable,
        "explicit nullable=True wins"
    );
    let sqlmodel = read(&["sqlmodel_app.py"]);
    assert!(column(&sqlmodel, "post", "created_by_id").nullable);
    assert!(!column(&sqlmodel, "post", "user_id").nullable);
    assert!(!column(&sqlmodel, "user", "id").nullable, "primary key");
}

#[test]
fn sqlmodel_sa_column_kwargs_nullable_wins() {
    // SQLModel passes sa_column_kwargs to Column() last, over Optional and nullable=.
    let schema = read_src(
        r#"
from typing import Optional
from sqlmodel import Field, SQLModel

class Team(SQLModel, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)

class Hero(SQLModel, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
    team_id: Optional[int] = Field(default=None, foreign_key="team.id", sa_column_kwargs={"nullable": False})
    rival_id: int = Field(foreign_key="team.id", nullable=False, sa_column_kwargs={"comment": "x", "nullable": True})
    mentor_id: Optional[int] = Field(default=None, foreign_key="team.id", sa_column_kwargs={"comment": "x"})
"#,
    );
    assert!(!column(&schema, "hero", "team_id").nullable);
    assert!(column(&schema, "hero", "rival_id").nullable);
    assert!(column(&schema, "hero", "mentor_id").nullable);
}

#[test]
fn type_aliases_that_admit_none_are_nullable() {
    // SQLAlchemy 2.0.58 read these columns as
    // [('a_id', True), ('b_id', True), ('c_id', True), ('d_id', False), ('e_id', True),
    //  ('f_id', False), ('g_id', True)].
    let schema = read_src(
        r#"
from typing import Annotated, Optional, Union
from typing_extensions import TypeAlias
from sqlalchemy import ForeignKey
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

OptInt = Optional[int]
MaybeInt = int | None
EitherInt = Union[int, None]
UserId = int
Nullable: TypeAlias = Optional[int]
owner_fk = Annotated[OptInt, mapped_column(ForeignKey("users.id"))]

class Base(DeclarativeBase):
    pass

class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)

class Post(Base):
    __tablename__ = "posts"
    id: Mapped[int] = mapped_column(primary_key=True)
    a_id: Mapped[OptInt] = mapped_column(ForeignKey("users.id"))
    b_id: Mapped[MaybeInt] = mapped_column(ForeignKey("users.id"))
    c_id: Mapped[EitherInt] = mapped_column(ForeignKey("users.id"))
    d_id: Mapped[UserId] = mapped_column(ForeignKey("users.id"))
    e_id: Mapped[Nullable] = mapped_column(ForeignKey("users.id"))
    f_id: Mapped[OptInt] = mapped_column(ForeignKey("users.id"), nullable=False)
    g_id: Mapped[owner_fk]
"#,
    );
    let nullable: Vec<(&str, bool)> = ["a_id", "b_id", "c_id", "d_id", "e_id", "f_id", "g_id"]
        .into_iter()
        .map(|name| (name, column(&schema, "posts", name).nullable))
        .collect();
    assert_eq!(
        nullable,
        [
            ("a_id", true),
            ("b_id", true),
            ("c_id", true),
            ("d_id", false),
            ("e_id", true),
            ("f_id", false),
            ("g_id", true)
        ]
    );
}

#[test]
fn optional_under_another_name_is_nullable() {
    // SQLAlchemy 2.0.58 read these columns as [('a_id', True), ('b_id', True),
    // ('c_id', True), ('d_id', True), ('f_id', True), ('e_id', False)].
    let schema = read_src(
        r#"
import typing as t
from typing import Optional as Opt, Optional
from sqlalchemy import ForeignKey
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

Maybe = t.Optional
Perhaps = Maybe
OptInt = Optional[int]
IntOrNone = OptInt

class Base(DeclarativeBase):
    pass

class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)

class Post(Base):
    __tablename__ = "posts"
    id: Mapped[int] = mapped_column(primary_key=True)
    a_id: Mapped[Opt[int]] = mapped_column(ForeignKey("users.id"))
    b_id: Mapped[t.Optional[int]] = mapped_column(ForeignKey("users.id"))
    c_id: Mapped[Maybe[int]] = mapped_column(ForeignKey("users.id"))
    d_id: Mapped[Perhaps[int]] = mapped_column(ForeignKey("users.id"))
    f_id: Mapped[IntOrNone] = mapped_column(ForeignKey("users.id"))
    e_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
"#,
    );
    let nullable: Vec<(&str, bool)> = ["a_id", "b_id", "c_id", "d_id", "f_id", "e_id"]
        .into_iter()
        .map(|name| (name, column(&schema, "posts", name).nullable))
        .collect();
    assert_eq!(
        nullable,
        [
            ("a_id", true),
            ("b_id", true),
            ("c_id", true),
            ("d_id", true),
            ("f_id", true),
            ("e_id", false)
        ]
    );
}

#[test]
fn nullable_none_leaves_it_to_the_annotation_or_not_null() {
    // SQLAlchemy 2.0.58's DDL: a NOT NULL, b nullable, c NOT NULL, d NOT NULL.
    let schema = read_src(
        r#"
from typing import Optional
from sqlalchemy import Column, ForeignKey, Integer
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

class Base(DeclarativeBase):
    pass

class U(Base):
    __tablename__ = "u"
    id: Mapped[int] = mapped_column(primary_key=True)

class T(Base):
    __tablename__ = "t"
    id: Mapped[int] = mapped_column(primary_key=True)
    a: Mapped[int] = mapped_column(ForeignKey("u.id"), nullable=None)
    b: Mapped[Optional[int]] = mapped_column(ForeignKey("u.id"), nullable=None)
    c = Column(Integer, ForeignKey("u.id"), nullable=None)
    d = mapped_column(Integer, ForeignKey("u.id"), nullable=None)
"#,
    );
    let nullable: Vec<(&str, bool)> = ["a", "b", "c", "d"]
        .into_iter()
        .map(|name| (name, column(&schema, "t", name).nullable))
        .collect();
    assert_eq!(
        nullable,
        [("a", false), ("b", true), ("c", false), ("d", false)]
    );
    // SQLModel 0.0.50's DDL: u_id NOT NULL, v_id nullable.
    let schema = read_src(
        r#"
from typing import Optional
from sqlmodel import Field, SQLModel

class U(SQLModel, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)

class T(SQLModel, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
    u_id: Optional[int] = Field(default=None, foreign_key="u.id", nullable=None)
    v_id: Optional[int] = Field(default=None, foreign_key="u.id")
"#,
    );
    assert_eq!(
        [
            column(&schema, "t", "u_id").nullable,
            column(&schema, "t", "v_id").nullable
        ],
        [false, true]
    );
}

#[test]
fn an_annotated_aliases_key_stays_beside_the_columns_own() {
    // SQLAlchemy 2.0.58 printed
    // a_id False [('teams.id', None), ('users.id', 'CASCADE')]
    let schema = read_src(
        r#"
from typing import Annotated
from sqlalchemy import ForeignKey
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

user_fk = Annotated[int, mapped_column(ForeignKey("users.id", ondelete="CASCADE"))]

class Base(DeclarativeBase):
    pass

class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)

class Team(Base):
    __tablename__ = "teams"
    id: Mapped[int] = mapped_column(primary_key=True)

class Post(Base):
    __tablename__ = "posts"
    id: Mapped[int] = mapped_column(primary_key=True)
    a_id: Mapped[user_fk] = mapped_column(ForeignKey("teams.id"))
"#,
    );
    let keys: Vec<(String, Vec<String>, Option<String>)> = schema
        .table("posts")
        .unwrap()
        .foreign_keys
        .iter()
        .map(|fk| {
            (
                fk.referent_table.clone(),
                fk.columns.clone(),
                fk.ondelete.clone(),
            )
        })
        .collect();
    assert_eq!(
        keys,
        [
            ("teams".to_string(), vec!["a_id".to_string()], None),
            (
                "users".to_string(),
                vec!["a_id".to_string()],
                Some("CASCADE".to_string())
            ),
        ]
    );
    assert!(!column(&schema, "posts", "a_id").nullable);
}

#[test]
fn a_nullable_the_reader_cannot_evaluate_reads_as_nullable() {
    // SQLAlchemy 2.0.58 printed [('id', False), ('a_ref', True), ('b_ref', True),
    // ('c_ref', True), ('d_ref', False), ('e_ref', False), ('f_ref', False)] and [('id', False)]
    // for p. Falling back to Mapped[int] (NOT NULL) gave a_ref, b_ref and c_ref CASCADE; a
    // constant of the file is read, and `*args` can't carry nullable=.
    let schema = read_src(
        r#"
from sqlalchemy import ForeignKey, Integer
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NULLABLE = True
STRICT = False
NOT_NULL = False
OPT = dict(nullable=True)


def fk_args(target):
    return (ForeignKey(target),)


class Base(DeclarativeBase):
    pass


class P(Base):
    __tablename__ = "p"
    id: Mapped[int] = mapped_column(primary_key=True, **{})


class C(Base):
    __tablename__ = "c"
    id: Mapped[int] = mapped_column(primary_key=True)
    a_ref: Mapped[int] = mapped_column(ForeignKey("p.id"), nullable=NULLABLE)
    b_ref: Mapped[int] = mapped_column(ForeignKey("p.id"), **OPT)
    c_ref: Mapped[int] = mapped_column(ForeignKey("p.id"), nullable=not STRICT)
    d_ref: Mapped[int] = mapped_column(ForeignKey("p.id"))
    e_ref: Mapped[int] = mapped_column(ForeignKey("p.id"), nullable=NOT_NULL)
    f_ref: Mapped[int] = mapped_column(Integer, *fk_args("p.id"))
"#,
    );
    let nullable: Vec<(&str, bool)> = ["a_ref", "b_ref", "c_ref", "d_ref", "e_ref", "f_ref"]
        .into_iter()
        .map(|name| (name, column(&schema, "c", name).nullable))
        .collect();
    assert_eq!(
        nullable,
        [
            ("a_ref", true),
            ("b_ref", true),
            ("c_ref", true),
            ("d_ref", false),
            ("e_ref", false),
            ("f_ref", false)
        ]
    );
    assert!(!column(&schema, "p", "id").nullable, "a primary key");
}

#[test]
fn sqlmodel_sa_relationship_is_the_relationship() {
    // SQLModel 0.0.50 / SQLAlchemy 2.0.58 printed `ONETOMANY True True` for Team.heroes
    // (direction, cascade.delete, cascade.delete_orphan).
    let schema = read_src(
        r#"
from typing import List, Optional
from sqlalchemy.orm import relationship
from sqlmodel import Field, Relationship, SQLModel

class Team(SQLModel, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
    heroes: List["Hero"] = Relationship(sa_relationship=relationship("Hero", cascade="all, delete-orphan"))

class Hero(SQLModel, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
    team_id: Optional[int] = Field(default=None, foreign_key="team.id")
"#,
    );
    let rel = &schema.table("team").unwrap().relationships[0];
    assert_eq!(rel.target, "Hero");
    assert_eq!(rel.cascade.as_deref(), Some("all, delete-orphan"));
}

#[test]
fn a_relationship_set_on_the_class_after_it_is_declared() {
    // SQLAlchemy 2.0.58: `User.addresses ONETOMANY delete=True delete_orphan=True`.
    let schema = read_src(
        r#"
from sqlalchemy import Column, ForeignKey, Integer
from sqlalchemy.orm import declarative_base, relationship

Base = declarative_base()

class User(Base):
    __tablename__ = "users"
    id = Column(Integer, primary_key=True)

class Address(Base):
    __tablename__ = "addresses"
    id = Column(Integer, primary_key=True)
    user_id = Column(Integer, ForeignKey("users.id"))

User.addresses = relationship("Address", back_populates="user", cascade="all, delete, delete-orphan")
Address.user = relationship("User", back_populates="addresses")
"#,
    );
    let rels = &schema.table("users").unwrap().relationships;
    assert_eq!(rels.len(), 1);
    assert_eq!(rels[0].attribute, "addresses");
    assert_eq!(rels[0].target, "Address");
    assert_eq!(
        rels[0].cascade.as_deref(),
        Some("all, delete, delete-orphan")
    );
    assert_eq!(schema.table("addresses").unwrap().relationships.len(), 1);
}

#[test]
fn names_resolve_in_the_scope_python_looks_them_up_in() {
    // SQLAlchemy 2.0.58: [('notes', False), ('tasks', False), ('files', True)] (cascade.delete)
    // and [('Note', True), ('Task', False), ('File', True)] (user_id nullable). A class-body
    // constant shadows the module's, and a module dict's later changes count.
    let schema = read_src(
        r#"
from sqlalchemy import Column, ForeignKey, Integer
from sqlalchemy.orm import declarative_base, relationship

Base = declarative_base()
NULLABLE = False
CASC = "all, delete-orphan"
KEEP = dict(cascade="all, delete-orphan")
KEEP["cascade"] = "save-update, merge"
GROW = {"lazy": "selectin"}
GROW.update(cascade="all, delete-orphan")


class User(Base):
    __tablename__ = "users"
    NULLABLE = True
    CASC = "save-update"
    id = Column(Integer, primary_key=True)
    notes = relationship("Note", cascade=CASC)
    tasks = relationship("Task", **KEEP)
    files = relationship("File", **GROW)


class Note(Base):
    __tablename__ = "notes"
    NULLABLE = True
    id = Column(Integer, primary_key=True)
    user_id = Column(Integer, ForeignKey("users.id"), nullable=NULLABLE)


class Task(Base):
    __tablename__ = "tasks"
    id = Column(Integer, primary_key=True)
    user_id = Column(Integer, ForeignKey("users.id"), nullable=NULLABLE)


class File(Base):
    __tablename__ = "files"
    id = Column(Integer, primary_key=True)
    user_id = Column(Integer, ForeignKey("users.id"))
"#,
    );
    let cascades: Vec<(&str, Option<&str>)> = schema
        .table("users")
        .unwrap()
        .relationships
        .iter()
        .map(|r| (r.attribute.as_str(), r.cascade.as_deref()))
        .collect();
    assert_eq!(
        cascades,
        [
            ("notes", Some("save-update")),
            ("tasks", Some("save-update, merge")),
            ("files", Some("all, delete-orphan")),
        ]
    );
    let nullable: Vec<bool> = ["notes", "tasks", "files"]
        .into_iter()
        .map(|t| column(&schema, t, "user_id").nullable)
        .collect();
    assert_eq!(nullable, [true, false, true]);
}

#[test]
fn relationship_options_from_a_module_dict() {
    // SQLAlchemy 2.0.58: `addresses ONETOMANY True True`, `notes ONETOMANY False False`
    // (direction, cascade.delete, passive_deletes).
    let schema = read_src(
        r#"
from sqlalchemy import Column, ForeignKey, Integer
from sqlalchemy.orm import declarative_base, relationship

Base = declarative_base()
OWNED = dict(cascade="all, delete-orphan", passive_deletes=True)
PLAIN = {"lazy": "selectin"}

class User(Base):
    __tablename__ = "users"
    id = Column(Integer, primary_key=True)
    addresses = relationship("Address", **OWNED)
    notes = relationship("Note", **PLAIN)

class Address(Base):
    __tablename__ = "addresses"
    id = Column(Integer, primary_key=True)
    user_id = Column(Integer, ForeignKey("users.id"))

class Note(Base):
    __tablename__ = "notes"
    id = Column(Integer, primary_key=True)
    user_id = Column(Integer, ForeignKey("users.id"))
"#,
    );
    let rels: Vec<(&str, Option<&str>, bool)> = schema
        .table("users")
        .unwrap()
        .relationships
        .iter()
        .map(|r| {
            (
                r.attribute.as_str(),
                r.cascade.as_deref(),
                r.passive_deletes,
            )
        })
        .collect();
    assert_eq!(
        rels,
        [
            ("addresses", Some("all, delete-orphan"), true),
            ("notes", None, false)
        ]
    );
}

#[test]
fn imperative_mapping_gives_the_class_its_relationships() {
    // SQLAlchemy 2.0.58, after start_mappers(): `ONETOMANY True` (Order.lines' direction and
    // cascade.delete), and order_lines.order_id nullable.
    let schema = read_src(
        r#"
from sqlalchemy import Column, ForeignKey, Integer, MetaData, String, Table
from sqlalchemy.orm import registry, relationship

mapper_registry = registry()
metadata = MetaData()


class Order:
    pass


class Line:
    pass


orders = Table(
    "orders",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("ref", String(50)),
)
order_lines = Table(
    "order_lines",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("order_id", ForeignKey("orders.id")),
    Column("sku", String(50)),
)


def start_mappers():
    mapper_registry.map_imperatively(Line, order_lines)
    mapper_registry.map_imperatively(
        Order, orders, properties={"lines": relationship(Line, cascade="all, delete-orphan")}
    )

"#,
    );
    let orders = schema.table("orders").unwrap();
    assert_eq!(orders.class_name.as_deref(), Some("Order"));
    assert_eq!(orders.relationships.len(), 1);
    assert_eq!(orders.relationships[0].target, "Line");
    assert_eq!(
        orders.relationships[0].cascade.as_deref(),
        Some("all, delete-orphan")
    );
    assert_eq!(
        schema.classes.get("Line").map(String::as_str),
        Some("order_lines")
    );
}

#[test]
fn map_imperatively_maps_only_through_a_registry() {
    // SQLAlchemy 2.0.58: `Base.registry.map_imperatively` maps Order (`ONETOMANY True`); the
    // exporter's method of the same name maps nothing, so Invoice stays a plain class.
    let schema = read_src(
        r#"
from sqlalchemy import Column, ForeignKey, Integer, Table
from sqlalchemy.orm import DeclarativeBase, relationship


class Base(DeclarativeBase):
    pass


class Exporter:
    def map_imperatively(self, cls, table, properties=None):
        return (cls, table, properties)


exporter = Exporter()


class Order:
    pass


class Invoice:
    pass


class Line:
    pass


orders = Table("orders", Base.metadata, Column("id", Integer, primary_key=True))
invoices = Table("invoices", Base.metadata, Column("id", Integer, primary_key=True))
lines = Table(
    "lines",
    Base.metadata,
    Column("id", Integer, primary_key=True),
    Column("order_id", ForeignKey("orders.id")),
    Column("invoice_id", ForeignKey("invoices.id")),
)

Base.registry.map_imperatively(Line, lines)
Base.registry.map_imperatively(
    Order, orders, properties={"lines": relationship(Line, cascade="all, delete-orphan")}
)
exporter.map_imperatively(
    Invoice, invoices, properties={"lines": relationship(Line, cascade="all, delete-orphan")}
)
"#,
    );
    assert_eq!(schema.table("orders").unwrap().relationships.len(), 1);
    assert_eq!(schema.table("invoices").unwrap().relationships.len(), 0);
    assert_eq!(schema.table("invoices").unwrap().class_name, None);
}

#[test]
fn concrete_mappings_and_registries_in_every_form() {
    // SQLAlchemy 2.0.58: [('Kiosk', True, True), ('Stall', True, True), ('Booth', True, True),
    // ('Outlet', False, True)] (mapper.concrete, inherits) and `ONETOMANY True` for
    // Order.lines, mapped through an alias of a renamed `registry` import.
    let schema = read_src(
        r#"
from sqlalchemy import Column, ForeignKey, Integer, Table
from sqlalchemy.orm import DeclarativeBase, declared_attr, relationship, registry as Reg
from app.mapping import COMMON

CONCRETE = dict(concrete=True)


class Base(DeclarativeBase):
    pass


class Shop(Base):
    __tablename__ = "shops"
    id = Column(Integer, primary_key=True)


class ConcreteMixin:
    __mapper_args__ = {"concrete": True}


class Kiosk(Shop):
    __tablename__ = "kiosks"
    id = Column(Integer, primary_key=True)
    __mapper_args__ = CONCRETE


class Stall(Shop):
    __tablename__ = "stalls"
    id = Column(Integer, primary_key=True)

    @declared_attr
    def __mapper_args__(cls):
        return {"concrete": True}


class Booth(ConcreteMixin, Shop):
    __tablename__ = "booths"
    id = Column(Integer, primary_key=True)


class Outlet(Shop):
    __tablename__ = "outlets"
    id = Column(Integer, ForeignKey("shops.id"), primary_key=True)


class Cart(Shop):
    __tablename__ = "carts"
    id = Column(Integer, primary_key=True)
    # COMMON comes from another module; the key written after it wins, as in any dict.
    __mapper_args__ = {**COMMON, "concrete": True}


mapper_registry = Reg()
reg = mapper_registry


class Order:
    pass


class Line:
    pass


orders = Table("orders", Base.metadata, Column("id", Integer, primary_key=True))
lines = Table(
    "lines",
    Base.metadata,
    Column("id", Integer, primary_key=True),
    Column("order_id", ForeignKey("orders.id")),
)
reg.map_imperatively(Line, lines)
reg.map_imperatively(
    Order, orders, properties={"lines": relationship(Line, cascade="all, delete-orphan")}
)
"#,
    );
    let inherits: Vec<(&str, Option<&str>)> = ["kiosks", "stalls", "booths", "outlets", "carts"]
        .into_iter()
        .map(|t| (t, schema.table(t).unwrap().inherits.as_deref()))
        .collect();
    assert_eq!(
        inherits,
        [
            ("kiosks", None),
            ("stalls", None),
            ("booths", None),
            ("outlets", Some("shops")),
            ("carts", None)
        ]
    );
    assert_eq!(schema.table("orders").unwrap().relationships.len(), 1);
}

#[test]
fn a_registry_imported_from_another_module_maps() {
    // The registry lives in app/db.py, which holds no model: the method name is SQLAlchemy's.
    let schema = read_src(
        r#"
from sqlalchemy import Column, ForeignKey, Integer, MetaData, Table
from sqlalchemy.orm import relationship
from app.db import mapper_registry as reg

metadata = MetaData()


class Order:
    pass


class Line:
    pass


orders = Table("orders", metadata, Column("id", Integer, primary_key=True))
lines = Table(
    "lines",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("order_id", ForeignKey("orders.id")),
)


def start_mappers():
    reg.map_imperatively(Line, lines)
    reg.map_imperatively(
        Order, orders, properties={"lines": relationship(Line, cascade="all, delete-orphan")}
    )
"#,
    );
    assert_eq!(schema.table("orders").unwrap().relationships.len(), 1);
}

#[test]
fn mapped_imported_under_another_name() {
    // SQLAlchemy 2.0.58: `ONETOMANY True [('id', False), ('p_ref', True), ('q_ref', False)]`.
    let schema = read_src(
        r#"
from typing import List, Optional
from sqlalchemy import ForeignKey
from sqlalchemy.orm import DeclarativeBase, Mapped as M, mapped_column, relationship

class Base(DeclarativeBase):
    pass

class P2(Base):
    __tablename__ = "p2"
    id: M[int] = mapped_column(primary_key=True)
    kids: M[List["C2"]] = relationship(cascade="all, delete-orphan")

class C2(Base):
    __tablename__ = "c2"
    id: M[int] = mapped_column(primary_key=True)
    p_ref: M[Optional[int]] = mapped_column(ForeignKey("p2.id"))
    q_ref: M[int] = mapped_column()
"#,
    );
    let rel = &schema.table("p2").unwrap().relationships[0];
    assert_eq!(rel.target, "C2");
    assert_eq!(rel.cascade.as_deref(), Some("all, delete-orphan"));
    assert!(column(&schema, "c2", "p_ref").nullable);
    assert!(!column(&schema, "c2", "q_ref").nullable);
}

#[test]
fn a_relationship_set_on_a_class_from_another_module() {
    let models = "from sqlalchemy import Column, ForeignKey, Integer\nfrom sqlalchemy.orm import declarative_base\n\nBase = declarative_base()\n\nclass User(Base):\n    __tablename__ = 'users'\n    id = Column(Integer, primary_key=True)\n\nclass Address(Base):\n    __tablename__ = 'addresses'\n    id = Column(Integer, primary_key=True)\n    user_id = Column(Integer, ForeignKey('users.id'))\n";
    let rels = "from sqlalchemy.orm import relationship\nfrom app.models import Address, User\n\nUser.addresses = relationship(Address, cascade='all, delete-orphan')\n";
    let schema = read_models(&[
        parse_text(Path::new("app/models.py"), models.to_string()).unwrap(),
        parse_text(Path::new("app/rels.py"), rels.to_string()).unwrap(),
    ]);
    let rels = &schema.table("users").unwrap().relationships;
    assert_eq!(rels.len(), 1);
    assert_eq!(rels[0].cascade.as_deref(), Some("all, delete-orphan"));
}

#[test]
fn viewonly_through_sqlmodel_kwargs_deletes_nothing() {
    // SQLModel's Relationship() has no viewonly: sa_relationship_kwargs is the only way in.
    let schema = read_src(
        r#"
from typing import Optional
from sqlmodel import Field, Relationship, SQLModel

class Team(SQLModel, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
    staff: list["Staff"] = Relationship(sa_relationship_kwargs={"viewonly": True, "passive_deletes": True})

class Staff(SQLModel, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
    team_id: Optional[int] = Field(default=None, foreign_key="team.id")
"#,
    );
    let rel = &schema.table("team").unwrap().relationships[0];
    assert!(!rel.passive_deletes && rel.cascade.is_none());
}

#[test]
fn sqlmodel_relationship_kwargs_read_as_python_builds_them() {
    // SQLAlchemy 2.0.58, SQLModel 0.0.50: cascade.delete staff True (from the splat), guests
    // True, players False: kwargs() returns {} here, and only running it tells. Before, the
    // splat was skipped and kwargs()'s arguments were read as the options.
    let schema = read_src(
        r#"
from typing import Optional
from sqlmodel import Field, Relationship, SQLModel

OWNED = {"cascade": "all, delete-orphan"}

def kwargs(**options):
    return {}

class Team(SQLModel, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
    staff: list["Staff"] = Relationship(sa_relationship_kwargs={**OWNED, "passive_deletes": True})
    guests: list["Guest"] = Relationship(sa_relationship_kwargs=dict(cascade="all"))
    players: list["Player"] = Relationship(sa_relationship_kwargs=kwargs(cascade="all"))

class Staff(SQLModel, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
    team_id: Optional[int] = Field(default=None, foreign_key="team.id")

class Guest(SQLModel, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
    team_id: Optional[int] = Field(default=None, foreign_key="team.id")

class Player(SQLModel, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
    team_id: Optional[int] = Field(default=None, foreign_key="team.id")
"#,
    );
    let read: Vec<(&str, Option<&str>, bool)> = schema
        .table("team")
        .unwrap()
        .relationships
        .iter()
        .map(|r| {
            (
                r.target.as_str(),
                r.cascade.as_deref(),
                r.unread_options.is_some(),
            )
        })
        .collect();
    assert_eq!(
        read,
        [
            ("Staff", Some("all, delete-orphan"), false),
            ("Guest", Some("all"), false),
            ("Player", None, true),
        ]
    );
}

#[test]
fn backref_options_belong_to_the_declaring_relationship() {
    let schema = read(&["flask.py"]);
    let rel = &schema.table("api_key").unwrap().relationships[0];
    let backref = rel.backref.as_ref().unwrap();
    assert_eq!(backref.name, "api_keys");
    assert_eq!(backref.cascade.as_deref(), Some("all, delete-orphan"));
    assert!(backref.passive_deletes);
    assert_eq!(rel.target, "UserAccount");
}

#[test]
fn model_attribute_targets_resolve_across_files_and_forward() {
    let files = [
        parse_text(
            Path::new("a.py"),
            "from sqlalchemy import Column, ForeignKey, Integer\nfrom .base import Base\n\n\
             class Child(Base):\n    __tablename__ = 'children'\n    id = Column(Integer, primary_key=True)\n    \
             parent_id = Column(Integer, ForeignKey(Parent.id))\n    other_id = Column(ForeignKey(Later.__table__.c.id))\n"
                .to_string(),
        )
        .unwrap(),
        parse_text(
            Path::new("b.py"),
            "import sqlalchemy as sa\n\nclass Parent(Base):\n    __tablename__ = 'parents'\n    __table_args__ = {'schema': 'core'}\n    \
             id = sa.Column(sa.Integer, primary_key=True)\n\nclass Later(Base):\n    __tablename__ = 'later'\n    id = sa.Column(sa.Integer, primary_key=True)\n"
                .to_string(),
        )
        .unwrap(),
    ];
    let schema = read_models(&files);
    let fks = &schema.table("children").unwrap().foreign_keys;
    assert_eq!(fks[0].referent_table, "core.parents");
    assert_eq!(fks[0].referent_columns, ["id"]);
    assert_eq!(fks[1].referent_table, "later");
}

#[test]
fn mixin_columns_reach_subclasses_across_files() {
    let schema = read(&["mixins_base.py", "mixins_models.py"]);
    let owner = column(&schema, "invoices", "owner_id");
    assert!(!owner.nullable);
    assert_eq!(*owner.origin.file, *Path::new("mixins_base.py"));
    let invoices = schema.table("invoices").unwrap();
    assert!(invoices.foreign_keys.iter().any(|fk| fk.columns == ["created_by_id"]
        && fk.ondelete.as_deref() == Some("SET NULL")));
    // The subclass's own column overrides the abstract base's.
    assert!(column(&schema, "invoices", "tenant_id").nullable);
    assert!(!column(&schema, "users", "tenant_id").nullable);
    assert_eq!(
        schema.classes["Widget"], "widget",
        "declared_attr __tablename__"
    );
    assert!(schema.table("model").is_none(), "__abstract__");
    // Reading the files in the other order gives the same schema.
    let reversed = read(&["mixins_models.py", "mixins_base.py"]);
    assert_eq!(render(&schema), render(&reversed));
}

#[test]
fn project_local_foreign_key_is_not_sqlalchemys() {
    let schema = read(&["multiple_fks.py"]);
    let messages = schema.table("messages").unwrap();
    assert!(
        messages
            .foreign_keys
            .iter()
            .all(|fk| fk.columns != ["legacy_id"])
    );
    let local = read_src(
        "from sqlalchemy import Column, Integer\n\nclass ForeignKey:\n    pass\n\n\
         class A(Base):\n    __tablename__ = 'a'\n    b_id = Column(Integer, ForeignKey('b.id'))\n",
    );
    assert!(local.table("a").unwrap().foreign_keys.is_empty());
}

#[test]
fn naming_convention_variants() {
    let class_key = read_src(
        "import sqlalchemy as sa\nmetadata = sa.MetaData(naming_convention={sa.ForeignKeyConstraint: 'fk_%(table_name)s'})\n",
    );
    assert_eq!(
        class_key.fk_naming_convention.as_deref(),
        Some("fk_%(table_name)s")
    );
    let sqlmodel = read_src(
        "from sqlmodel import SQLModel\nNAMING = {'fk': 'fk_%(table_name)s_%(column_0_name)s'}\n\
         SQLModel.metadata.naming_convention = NAMING\n",
    );
    assert_eq!(
        sqlmodel.fk_naming_convention.as_deref(),
        Some("fk_%(table_name)s_%(column_0_name)s")
    );
    let flask = read_src(
        "from flask_sqlalchemy import SQLAlchemy\nfrom sqlalchemy import MetaData\n\
         db = SQLAlchemy(metadata=MetaData(naming_convention=dict(fk='fk_%(table_name)s')))\n",
    );
    assert_eq!(
        flask.fk_naming_convention.as_deref(),
        Some("fk_%(table_name)s")
    );
}

#[test]
fn flask_db_imported_from_elsewhere_and_renamed() {
    let schema = read_models(&[
        parse_text(Path::new("ext.py"), "from flask_sqlalchemy import SQLAlchemy\nstore = SQLAlchemy()\n".into())
            .unwrap(),
        parse_text(
            Path::new("m.py"),
            "from app.ext import store\n\nclass OrderItem(store.Model):\n    id = store.Column(store.Integer, primary_key=True)\n    \
             order_id = store.Column(store.ForeignKey('order.id', ondelete='CASCADE'), nullable=False)\n"
                .into(),
        )
        .unwrap(),
    ]);
    let table = schema.table("order_item").unwrap();
    assert_eq!(table.foreign_keys[0].ondelete.as_deref(), Some("CASCADE"));
    assert!(!table.columns["order_id"].nullable);
}

#[test]
fn odd_input_is_skipped_not_fatal() {
    let schema = read_src(
        "from sqlalchemy import Column, ForeignKey\n\
         class A(Base):\n    __tablename__ = f'{PREFIX}_a'\n    x = Column(ForeignKey('b.id'))\n\
         class B(Base):\n    __tablename__ = 'b'\n    id = Column()\n    c = Column(ForeignKey())\n    \
         d = Column(ForeignKey(f'{x}.id'))\n    e = Column(ForeignKey('nodot'))\n    \
         r = relationship()\n    __table_args__ = (ForeignKeyConstraint(),)\n\
         class C(C):\n    pass\n",
    );
    let b = schema.table("b").unwrap();
    assert!(b.foreign_keys.is_empty());
    assert!(schema.table("a").is_none(), "unreadable __tablename__");
}

#[test]
fn deeply_nested_expressions_do_not_overflow() {
    let deep = format!(
        "class A(Base):\n    __tablename__ = 'a'\n    x = Column(ForeignKey('b.id'), default={}1{})\n",
        "(".repeat(3000),
        ")".repeat(3000)
    );
    if let Ok(file) = parse_text(Path::new("deep.py"), deep) {
        let schema = read_models(&[file]);
        assert_eq!(schema.table("a").unwrap().foreign_keys.len(), 1);
    }
}

#[test]
fn same_class_name_in_two_files_keeps_both_tables() {
    let schema = read(&["declarative.py", "flask.py", "typed.py", "association.py"]);
    for table in ["users", "notes", "accounts", "user_roles", "memberships"] {
        assert!(schema.table(table).is_some(), "{table}");
    }
    // Each file's `User` keeps its own foreign keys; the first definition names the class.
    assert_eq!(schema.classes["User"], "users");
    assert_eq!(schema.table("notes").unwrap().foreign_keys.len(), 4);
}

#[test]
fn snapshot_typed_annotated_aliases() {
    snapshot!("models_typed_annotated", &["typed_annotated.py"]);
}

/// Seed 004's style: `Mapped[DbColumnConstants.ForeignKeyInteger(AppTableNames.X, ...)]`, the
/// helpers and the table-name constants in another file. What SQLAlchemy 2.0.x makes of the
/// fixture (its Table's columns) is in the snapshot's keys, except `legacy_id`, whose helper
/// computes its target and so is not read.
#[test]
fn snapshot_project_column_helpers() {
    snapshot!(
        "models_column_helpers",
        &["helpers_columns.py", "helpers_models.py"]
    );
}

/// The reader enters only expressions holding `Table` / `MetaData`; an import alias that hides
/// the name turns that pruning off, and tables nested in blocks are still found.
#[test]
fn pruned_reading_still_finds_aliased_and_nested_tables() {
    let aliased = read_src(
        "from sqlalchemy import Table as T, MetaData as M, Column, ForeignKey, Integer\n\
         meta = M(naming_convention={'fk': 'fk_%(table_name)s'})\n\
         tags = T('post_tags', meta, Column('post_id', Integer, ForeignKey('posts.id', ondelete='CASCADE')))\n",
    );
    let tags = aliased
        .table("post_tags")
        .expect("the aliased Table(...) is read");
    assert!(tags.class_name.is_none(), "a Table object, no mapped class");
    assert!(!tags.is_association, "one key: no many-to-many link");
    assert_eq!(tags.foreign_keys.len(), 1);
    assert_eq!(
        aliased.fk_naming_convention.as_deref(),
        Some("fk_%(table_name)s")
    );
    let nested = read_src(
        "import sqlalchemy as sa\nmeta = sa.MetaData()\n\
         if True:\n    try:\n        links = sa.Table('links', meta, sa.Column('a_id', sa.ForeignKey('a.id')))\n    finally:\n        pass\n",
    );
    assert_eq!(nested.table("links").unwrap().foreign_keys.len(), 1);
}

/// Each model file is read on its own first, with only its own helpers, constants and aliases
/// (so that its tree can be freed at once), and read again where the whole project answers
/// one of its questions otherwise: a constant, an `Annotated` alias or a `db` defined in
/// another file, or a constant two other files bind (the later binding wins, as it always
/// did). Both entry points read the same schema, in either file order.
#[test]
fn a_file_read_alone_is_read_again_where_other_files_change_the_answer() {
    let files = [
        (
            "app/shared.py",
            "from typing import Annotated\n\
             from sqlalchemy import ForeignKey, SQLAlchemy\n\
             from sqlalchemy.orm import mapped_column\n\
             USERS_ID = 'users.id'\n\
             TARGET = 'teams.id'\n\
             database = SQLAlchemy()\n\
             user_fk = Annotated[int, mapped_column(ForeignKey('users.id', ondelete='CASCADE'))]\n",
        ),
        (
            "app/models.py",
            "from sqlalchemy import Column, ForeignKey, Integer\n\
             from sqlalchemy.orm import Mapped, mapped_column\n\
             from .base import Base\n\
             from .shared import USERS_ID, TARGET, database, user_fk\n\
             class Post(Base):\n\
             \x20   __tablename__ = 'posts'\n\
             \x20   id: Mapped[int] = mapped_column(primary_key=True)\n\
             \x20   author_id = Column(Integer, ForeignKey(USERS_ID), nullable=True)\n\
             \x20   editor_id: Mapped[user_fk]\n\
             \x20   owner_id = Column(Integer, ForeignKey(TARGET))\n\
             class Note(database.Model):\n\
             \x20   __tablename__ = 'notes'\n\
             \x20   id = database.Column(database.Integer, primary_key=True)\n\
             \x20   post_id = database.Column(database.ForeignKey('posts.id', ondelete='SET NULL'))\n",
        ),
        ("app/other.py", "TARGET = 'orgs.id'\n"),
    ];
    let keys = |schema: &Schema, table: &str| -> Vec<String> {
        schema
            .table(table)
            .unwrap_or_else(|| panic!("table {table} is read"))
            .foreign_keys
            .iter()
            .map(|k| {
                format!(
                    "{} -> {} {:?}",
                    k.columns.join(","),
                    k.referent_table,
                    k.ondelete
                )
            })
            .collect()
    };
    for order in [[0, 1, 2], [2, 1, 0]] {
        let sources: Vec<SourceFile> = order
            .iter()
            .map(|&i| parse_text(Path::new(files[i].0), files[i].1.to_string()).unwrap())
            .collect();
        let together = read_models(&sources);
        let streamed = read_models_streamed(
            order
                .iter()
                .map(|&i| (PathBuf::from(files[i].0), files[i].1.as_bytes().to_vec()))
                .collect(),
        )
        .unwrap();
        // The later file's TARGET wins: shared.py's when it comes last.
        let owner = if order == [2, 1, 0] { "teams" } else { "orgs" };
        assert_eq!(
            keys(&together, "posts"),
            [
                "author_id -> users None".to_string(),
                "editor_id -> users Some(\"CASCADE\")".to_string(),
                format!("owner_id -> {owner} None"),
            ],
            "order {order:?}"
        );
        assert_eq!(
            keys(&together, "notes"),
            ["post_id -> posts Some(\"SET NULL\")"],
            "order {order:?}: database.Column is Flask-SQLAlchemy's"
        );
        assert_eq!(
            format!("{:?}", streamed.tables),
            format!("{:?}", together.tables),
            "order {order:?}"
        );
    }
}
