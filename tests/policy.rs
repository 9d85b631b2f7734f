//! The policy as a table: one row per foreign key, first evidence wins. Reads like the README.

use std::path::Path;

use fix_migrations::config::Config;
use fix_migrations::models;
use fix_migrations::parse;
use fix_migrations::policy::{self, KeyRef};

#[test]
fn policy_table() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/policy/models.py");
    let file = parse::parse_source(Path::new("models.py"), std::fs::read(path).unwrap()).unwrap();
    let schema = models::read_models(&[file]);
    let config =
        Config::from_toml_str("[rules]\n\"galleries.curator_id\" = \"CASCADE\"\n").unwrap();
    let keys: &[(&str, &str, &str)] = &[
        ("posts", "user_id", "users"),
        ("galleries", "group_id", "users"),
        ("galleries", "curator_id", "users"),
        ("galleries", "role_id", "roles"),
        ("galleries", "kind_type_id", "users"),
        ("galleries", "approved_by", "users"),
        ("galleries", "created_by", "users"),
        ("galleries", "image_id", "users"),
        ("galleries", "owner_id", "users"),
        ("user_roles", "user_id", "users"),
        ("post_tags", "post_id", "posts"),
        ("post_tags", "tag_id", "tags"),
        ("audit_log", "user_id", "users"),
        ("links", "post_id", "posts"),
        ("images", "owner_id", "accounts"),
        ("articles", "author_id", "accounts"),
        ("articles", "editor_id", "accounts"),
        ("enrollments", "account_id", "accounts"),
        ("enrollments", "image_id", "images"),
        ("notes", "owner", "folders"),
        ("notes", "editor", "folders"),
        ("nodes", "parent_id", "nodes"),
        ("blog_remarks", "product_id", "products"),
        ("shop_remarks", "product_id", "products"),
        ("reviews", "product_id", "products"),
        ("invites", "email", "people"),
        ("invites", "inviter_email", "people"),
        ("events", "actor_id", "users"),
        ("report", "emp_ref", "employee"),
        ("report", "reviewer_ref", "users"),
        ("manager", "id", "employee"),
        ("sales", "shop_ref", "shops"),
        ("sales", "kiosk_ref", "kiosks"),
        ("entries", "ledger_id", "ledgers"),
        ("galleries", "bad_id", "users"),
        ("galleries", "typo_id", "users"),
        ("memberships", "role_id", "roles"),
        ("comments", "post_id", "posts"),
        ("ghosts", "user_id", "users"),
    ];
    let id = vec!["id".to_string()];
    let mut table =
        String::from("| key | ondelete | rule | reason | findings |\n|---|---|---|---|---|\n");
    for (t, c, r) in keys {
        let columns = vec![c.to_string()];
        let key = KeyRef {
            table: t,
            columns: &columns,
            referent_table: r,
            referent_columns: &id,
            not_null_in_migration: false,
            server_default_in_migration: false,
        };
        let row = match policy::judge(&schema, &config, key, None, None) {
            Ok(j) => format!(
                "| {} | {} | {:?} | {} | {} |",
                key.label(),
                j.decision.ondelete,
                j.decision.rule,
                j.decision.reason,
                j.findings
                    .iter()
                    .map(|f| f.code)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Err(policy::UnknownTable(t)) => format!(
                "| {} | - | - | table {t} is in no model file | unknown-table |",
                key.label()
            ),
        };
        table.push_str(&row);
        table.push('\n');
    }
    insta::with_settings!({snapshot_path => "../snapshots", prepend_module_to_snapshot => false}, {
        insta::assert_snapshot!("policy__table", table);
    });
}

#[test]
fn existing_values_survive_heuristics_but_not_explicit_evidence() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/policy/models.py");
    let file = parse::parse_source(Path::new("models.py"), std::fs::read(path).unwrap()).unwrap();
    let schema = models::read_models(&[file]);
    let config = Config::default();
    let id = vec!["id".to_string()];
    let owner = vec!["owner_id".to_string()];
    let key = KeyRef {
        table: "galleries",
        columns: &owner,
        referent_table: "users",
        referent_columns: &id,
        not_null_in_migration: false,
        server_default_in_migration: false,
    };
    // NOT NULL says CASCADE, but someone wrote RESTRICT into the migration: keep it.
    let kept = policy::judge(&schema, &config, key, Some("RESTRICT"), None).unwrap();
    assert_eq!(kept.write_ondelete, None);
    assert_eq!(kept.decision.ondelete, policy::Action::Restrict);
    let group = vec!["group_id".to_string()];
    let key = KeyRef {
        table: "galleries",
        columns: &group,
        referent_table: "users",
        referent_columns: &id,
        not_null_in_migration: false,
        server_default_in_migration: false,
    };
    // The model says RESTRICT explicitly: a contradicting CASCADE in the migration is replaced.
    let replaced = policy::judge(&schema, &config, key, Some("cascade"), None).unwrap();
    assert_eq!(replaced.write_ondelete, Some(policy::Action::Restrict));
    // Same value in another case is already right.
    let same = policy::judge(&schema, &config, key, Some("restrict"), None).unwrap();
    assert_eq!(same.write_ondelete, None);
}

fn decide_in(
    files: &[(&str, &str)],
    table: &str,
    columns: &[&str],
    referent: &str,
    referent_columns: &[&str],
) -> String {
    let sources: Vec<_> = files
        .iter()
        .map(|(path, src)| parse::parse_text(Path::new(path), src.to_string()).unwrap())
        .collect();
    let schema = models::read_models(&sources);
    let columns: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
    let referent_columns: Vec<String> = referent_columns.iter().map(|c| c.to_string()).collect();
    let key = KeyRef {
        table,
        columns: &columns,
        referent_table: referent,
        referent_columns: &referent_columns,
        not_null_in_migration: false,
        server_default_in_migration: false,
    };
    let decision = policy::decide(&schema, &Config::default(), key).unwrap();
    format!("{} ({})", decision.ondelete, decision.reason)
}

/// SQLAlchemy docs' composite adjacency list: `remote_side` names the referenced columns, so
/// `parent_folder` is many-to-one (its cascade deletes nothing below) and the backref on it is
/// the one-to-many side that deletes the children.
#[test]
fn composite_self_referential_remote_side_is_many_to_one() {
    let models = r#"
from sqlalchemy import Column, ForeignKeyConstraint, Integer
from sqlalchemy.orm import backref, declarative_base, relationship
Base = declarative_base()

class Folder(Base):
    __tablename__ = "folder"
    __table_args__ = (
        ForeignKeyConstraint(["account_id", "parent_id"], ["folder.account_id", "folder.folder_id"]),
    )
    account_id = Column(Integer, primary_key=True)
    folder_id = Column(Integer, primary_key=True)
    parent_id = Column(Integer)
    parent_folder = relationship(
        "Folder",
        remote_side=[account_id, folder_id],
        backref=backref("child_folders", cascade="all, delete-orphan"),
    )
"#;
    let decided = decide_in(
        &[("models.py", models)],
        "folder",
        &["account_id", "parent_id"],
        "folder",
        &["account_id", "folder_id"],
    );
    assert_eq!(
        decided,
        "CASCADE (backref Folder.child_folders of Folder.parent_folder cascade=\"all, delete-orphan\")"
    );
}

/// Two declarative bases each with a `Comment`: SQLAlchemy resolves `"Comment"` in the
/// relationship's own registry, the reader in the relationship's own file.
#[test]
fn a_class_name_two_files_share_resolves_in_the_relationships_file() {
    let blog = r#"
from typing import Optional
from sqlalchemy import ForeignKey
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

class Base(DeclarativeBase):
    pass

class Post(Base):
    __tablename__ = "posts"
    id: Mapped[int] = mapped_column(primary_key=True)
    comments = relationship("Comment", cascade="all, delete-orphan")

class Comment(Base):
    __tablename__ = "comments"
    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[Optional[int]] = mapped_column(ForeignKey("posts.id"))
"#;
    let shop = r#"
from typing import Optional
from sqlalchemy import ForeignKey
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

class ShopBase(DeclarativeBase):
    pass

class Comment(ShopBase):
    __tablename__ = "shop_comments"
    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[Optional[int]] = mapped_column(ForeignKey("posts.id"))
"#;
    let files = [("blog/models.py", blog), ("shop/models.py", shop)];
    assert_eq!(
        decide_in(&files, "comments", &["post_id"], "posts", &["id"]),
        "CASCADE (relationship Post.comments cascade=\"all, delete-orphan\")"
    );
    assert_eq!(
        decide_in(&files, "shop_comments", &["post_id"], "posts", &["id"]),
        "SET NULL (nullable column)"
    );
}

/// What SQLAlchemy 2.0.58 makes of these relationships: `cascade.delete` False for
/// `"delete, delete-orphan, none"` and `"all, none"` ("none" clears the list), and False with
/// `passive_deletes="all"`, which only stops the ORM nulling the children's keys (for a
/// database that refuses the delete or runs a trigger). None of them deletes the children.
#[test]
fn none_in_a_cascade_and_passive_deletes_all_delete_nothing() {
    let models = r#"
from sqlalchemy import Column, ForeignKey, Integer
from sqlalchemy.orm import declarative_base, relationship
Base = declarative_base()

class User(Base):
    __tablename__ = "users"
    id = Column(Integer, primary_key=True)
    notes = relationship("Note", cascade="delete, delete-orphan, none")
    tasks = relationship("Task", cascade="all, none")
    files = relationship("File", passive_deletes="all")
    pins = relationship("Pin", passive_deletes=True)

class Note(Base):
    __tablename__ = "notes"
    id = Column(Integer, primary_key=True)
    user_id = Column(Integer, ForeignKey("users.id"))

class Task(Base):
    __tablename__ = "tasks"
    id = Column(Integer, primary_key=True)
    user_id = Column(Integer, ForeignKey("users.id"))

class File(Base):
    __tablename__ = "files"
    id = Column(Integer, primary_key=True)
    user_id = Column(Integer, ForeignKey("users.id"))

class Pin(Base):
    __tablename__ = "pins"
    id = Column(Integer, primary_key=True)
    user_id = Column(Integer, ForeignKey("users.id"))
"#;
    let decided: Vec<String> = ["notes", "tasks", "files", "pins"]
        .into_iter()
        .map(|table| {
            decide_in(
                &[("models.py", models)],
                table,
                &["user_id"],
                "users",
                &["id"],
            )
        })
        .collect();
    assert_eq!(
        decided,
        [
            "SET NULL (nullable column)",
            "SET NULL (nullable column)",
            "SET NULL (nullable column)",
            "CASCADE (relationship User.pins passive_deletes=True)",
        ]
    );
}

/// `passive_deletes="all"` leaves the children's rows for the database to refuse the delete
/// or for a trigger, in SQLAlchemy's words. A heuristic's SET NULL (nullable) or CASCADE (NOT
/// NULL) would change them: a finding, and the key is left as it is. A delete cascade beside it
/// still decides (CASCADE), and so does a backref's.
#[test]
fn passive_deletes_all_over_a_heuristic_rule_is_a_finding() {
    let models = r#"
from sqlalchemy import Column, ForeignKey, Integer
from sqlalchemy.orm import backref, declarative_base, relationship
Base = declarative_base()

class User(Base):
    __tablename__ = "users"
    id = Column(Integer, primary_key=True)
    files = relationship("File", passive_deletes="all")
    logs = relationship("Log", passive_deletes="all")
    pins = relationship("Pin", passive_deletes="all", cascade="all, delete-orphan")

class File(Base):
    __tablename__ = "files"
    id = Column(Integer, primary_key=True)
    user_id = Column(Integer, ForeignKey("users.id"))

class Log(Base):
    __tablename__ = "logs"
    id = Column(Integer, primary_key=True)
    user_id = Column(Integer, ForeignKey("users.id"), nullable=False)

class Pin(Base):
    __tablename__ = "pins"
    id = Column(Integer, primary_key=True)
    user_id = Column(Integer, ForeignKey("users.id"))

class Tag(Base):
    __tablename__ = "tags"
    id = Column(Integer, primary_key=True)
    user_id = Column(Integer, ForeignKey("users.id"))
    user = relationship("User", backref=backref("tags", passive_deletes="all"))
"#;
    let file = parse::parse_text(Path::new("models.py"), models.to_string()).unwrap();
    let schema = models::read_models(&[file]);
    let judged: Vec<(String, Vec<String>)> = ["files", "logs", "pins", "tags"]
        .into_iter()
        .map(|table| {
            let judged = judge_user_key(&schema, table);
            (
                judged.decision.ondelete.to_string(),
                judged
                    .findings
                    .iter()
                    .map(|f| format!("{}: {}", f.code, f.message))
                    .collect(),
            )
        })
        .collect();
    let finding = |rel: &str, action: &str| {
        vec![format!(
            "passive-deletes-all: {rel}: the ORM leaves these rows when the parent goes, for the database to refuse the delete or a trigger to handle; ON DELETE {action} would change them. Set ondelete on the model's key (ForeignKey(ondelete=...), or SQLModel's Field(ondelete=...)) or in [rules]"
        )]
    };
    assert_eq!(
        judged,
        [
            (
                "SET NULL".to_string(),
                finding(
                    "relationship User.files passive_deletes=\"all\"",
                    "SET NULL"
                )
            ),
            (
                "CASCADE".to_string(),
                finding("relationship User.logs passive_deletes=\"all\"", "CASCADE")
            ),
            ("CASCADE".to_string(), vec![]),
            (
                "SET NULL".to_string(),
                finding(
                    "backref User.tags of Tag.user passive_deletes=\"all\"",
                    "SET NULL"
                )
            ),
        ]
    );
}

/// The primaryjoin forms SQLAlchemy's docs show, as SQLAlchemy 2.0.58 pairs them:
/// `User.posts` [('users.id', 'posts.user_id')], `User.received`
/// [('users.id', 'messages.recipient_id')], `Node.children` [('nodes.id', 'nodes.parent_id')],
/// each ONETOMANY with cascade.delete True. `User.sent` covers `sender_id` and deletes nothing;
/// `Leaf.parent` is MANYTOONE [('leaves.parent_id', 'leaves.id')]: its cascade deletes parents.
#[test]
fn primaryjoins_with_foreign_remote_and_and_cover_their_keys() {
    let models = r#"
from sqlalchemy import Column, ForeignKey, Integer, String, and_
from sqlalchemy.orm import declarative_base, relationship, foreign, remote
Base = declarative_base()

class User(Base):
    __tablename__ = "users"
    id = Column(Integer, primary_key=True)
    posts = relationship("Post", primaryjoin="User.id == foreign(Post.user_id)", cascade="all, delete-orphan")
    received = relationship("Message", primaryjoin="and_(User.id == Message.recipient_id, Message.kind == 'x')", cascade="all, delete-orphan")
    sent = relationship("Message", primaryjoin=lambda: and_(User.id == foreign(Message.sender_id), Message.kind != 'y'))

class Post(Base):
    __tablename__ = "posts"
    id = Column(Integer, primary_key=True)
    user_id = Column(Integer, ForeignKey("users.id"))

class Message(Base):
    __tablename__ = "messages"
    id = Column(Integer, primary_key=True)
    kind = Column(String)
    sender_id = Column(Integer, ForeignKey("users.id"))
    recipient_id = Column(Integer, ForeignKey("users.id"))

class Node(Base):
    __tablename__ = "nodes"
    id = Column(Integer, primary_key=True)
    parent_id = Column(Integer, ForeignKey("nodes.id"))
    children = relationship("Node", primaryjoin="Node.id == remote(Node.parent_id)", cascade="all, delete-orphan")

class Leaf(Base):
    __tablename__ = "leaves"
    id = Column(Integer, primary_key=True)
    parent_id = Column(Integer, ForeignKey("leaves.id"))
    parent = relationship("Leaf", primaryjoin="remote(Leaf.id) == Leaf.parent_id", cascade="all")
"#;
    let decide = |table: &str, column: &str, referent: &str| {
        decide_in(
            &[("models.py", models)],
            table,
            &[column],
            referent,
            &["id"],
        )
    };
    assert_eq!(
        [
            decide("posts", "user_id", "users"),
            decide("messages", "recipient_id", "users"),
            decide("messages", "sender_id", "users"),
            decide("nodes", "parent_id", "nodes"),
            decide("leaves", "parent_id", "leaves"),
        ],
        [
            "CASCADE (relationship User.posts cascade=\"all, delete-orphan\")",
            "CASCADE (relationship User.received cascade=\"all, delete-orphan\")",
            "SET NULL (nullable column)",
            "CASCADE (relationship Node.children cascade=\"all, delete-orphan\")",
            "SET NULL (nullable column)",
        ]
    );
}

/// The legacy tuple backref: SQLAlchemy 2.0.58 gives `User.notes` cascade.delete True.
#[test]
fn a_tuple_backref_passes_its_options() {
    let models = r#"
from sqlalchemy import Column, ForeignKey, Integer
from sqlalchemy.orm import declarative_base, relationship
Base = declarative_base()

class User(Base):
    __tablename__ = "users"
    id = Column(Integer, primary_key=True)

class Note(Base):
    __tablename__ = "notes"
    id = Column(Integer, primary_key=True)
    user_id = Column(Integer, ForeignKey("users.id"))
    user = relationship("User", backref=("notes", {"cascade": "all, delete-orphan"}))
"#;
    assert_eq!(
        decide_in(
            &[("models.py", models)],
            "notes",
            &["user_id"],
            "users",
            &["id"]
        ),
        "CASCADE (backref User.notes of Note.user cascade=\"all, delete-orphan\")"
    );
}

/// `backref` is found however it is imported, as `relationship` is; a project's own function
/// of that name is not SQLAlchemy's and configures nothing.
#[test]
fn a_backref_is_read_through_a_renamed_import_and_not_from_a_local_function() {
    let models = |import: &str, call: &str| {
        format!(
            r#"
from sqlalchemy import Column, ForeignKey, Integer
from sqlalchemy.orm import declarative_base, relationship
{import}
Base = declarative_base()

class User(Base):
    __tablename__ = "users"
    id = Column(Integer, primary_key=True)

class Upload(Base):
    __tablename__ = "uploads"
    id = Column(Integer, primary_key=True)
    uploader_id = Column(Integer, ForeignKey("users.id"))
    uploader = relationship("User", backref={call}("uploads", passive_deletes=True))
"#
        )
    };
    let decision = |import: &str, call: &str| {
        decide_in(
            &[("models.py", &models(import, call))],
            "uploads",
            &["uploader_id"],
            "users",
            &["id"],
        )
    };
    let deleting = "CASCADE (backref User.uploads of Upload.uploader passive_deletes=True)";
    assert_eq!(
        decision(
            "from sqlalchemy.orm import backref as orm_backref",
            "orm_backref"
        ),
        deleting
    );
    assert_eq!(
        decision("import sqlalchemy.orm as orm", "orm.backref"),
        deleting
    );
    assert_eq!(
        decision(
            "def backref(name, **options):\n    return (name, {})",
            "backref"
        ),
        "SET NULL (nullable column)"
    );
}

#[test]
fn set_default_on_a_not_null_column_without_a_server_default_is_a_finding() {
    let models = r#"
from typing import Annotated, Optional
import sqlalchemy as sa
from sqlalchemy import Column, DefaultClause, ForeignKey, Integer, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlmodel import Field, SQLModel

class Base(DeclarativeBase):
    pass

OwnerId = Annotated[int, mapped_column(ForeignKey("users.id", ondelete="SET DEFAULT"), server_default="1")]
OPTIONS = {"server_default": text("1")}

def owner_key():
    return Annotated[int, mapped_column(ForeignKey("users.id", ondelete="SET DEFAULT"), nullable=False, server_default=None)]

def defaulted_owner_key():
    return Annotated[int, mapped_column(ForeignKey("users.id", ondelete="SET DEFAULT"), nullable=False, server_default="1")]

class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)

class Plain(Base):
    __tablename__ = "plain"
    id = Column(Integer, primary_key=True)
    user_id = Column(Integer, ForeignKey("users.id", ondelete="SET DEFAULT"), nullable=False)

class Defaulted(Base):
    __tablename__ = "defaulted"
    id = Column(Integer, primary_key=True)
    user_id = Column(Integer, ForeignKey("users.id", ondelete="SET DEFAULT"), nullable=False, server_default="1")

class Clause(Base):
    __tablename__ = "clause"
    id = Column(Integer, primary_key=True)
    user_id = Column(Integer, ForeignKey("users.id", ondelete="SET DEFAULT"), DefaultClause("1"), nullable=False)

class NoneDefault(Base):
    __tablename__ = "none_default"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="SET DEFAULT"), server_default=None)

class Splat(Base):
    __tablename__ = "splat"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="SET DEFAULT"), **OPTIONS)

class Nullable(Base):
    __tablename__ = "nullable"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET DEFAULT"))

class Aliased(Base):
    __tablename__ = "aliased"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[OwnerId]

class Made(Base):
    __tablename__ = "made"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[owner_key()]

class MadeDefaulted(Base):
    __tablename__ = "made_defaulted"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[defaulted_owner_key()]

class Team(SQLModel, table=True):
    id: int = Field(primary_key=True)
    user_id: int = Field(foreign_key="users.id", ondelete="SET DEFAULT")

class Squad(SQLModel, table=True):
    id: int = Field(primary_key=True)
    user_id: int = Field(foreign_key="users.id", ondelete="SET DEFAULT", sa_column_kwargs={"server_default": "1"})
"#;
    let file = parse::parse_text(Path::new("models.py"), models.to_string()).unwrap();
    let schema = models::read_models(&[file]);
    let findings = |table: &str| -> Vec<String> {
        let judged = judge_user_key(&schema, table);
        assert_eq!(
            judged.decision.ondelete.to_string(),
            "SET DEFAULT",
            "{table}"
        );
        judged
            .findings
            .iter()
            .map(|f| format!("{}: {}", f.code, f.message))
            .collect()
    };
    let finding = |table: &str| {
        vec![format!(
            "set-default-no-default: ON DELETE SET DEFAULT on NOT NULL column {table}.user_id with no server_default: the database sets it to NULL and every delete of the parent fails; give the column a server_default naming a row that stays, or use CASCADE or RESTRICT"
        )]
    };
    let none: Vec<String> = vec![];
    assert_eq!(findings("plain"), finding("plain"));
    assert_eq!(findings("none_default"), finding("none_default"));
    assert_eq!(findings("team"), finding("team"));
    assert_eq!(findings("made"), finding("made"));
    assert_eq!(findings("made_defaulted"), none);
    assert_eq!(findings("defaulted"), none);
    assert_eq!(findings("clause"), none);
    assert_eq!(findings("splat"), none);
    assert_eq!(findings("nullable"), none);
    assert_eq!(findings("aliased"), none);
    assert_eq!(findings("squad"), none);
}

/// A key declared twice, by the column's `ForeignKey()` and by a `ForeignKeyConstraint` in
/// `__table_args__`: SQLAlchemy keeps both, autogenerate writes both, and the one that states
/// `ondelete` decides for both (not the nullable-column heuristic for the first, which would
/// leave the database with SET NULL and CASCADE on one column).
#[test]
fn key_declared_twice_takes_the_declaration_that_states_ondelete() {
    let models = r#"
from sqlalchemy import Column, ForeignKey, ForeignKeyConstraint, Integer
from sqlalchemy.orm import DeclarativeBase

class Base(DeclarativeBase):
    pass

class User(Base):
    __tablename__ = "users"
    id = Column(Integer, primary_key=True)

class Post(Base):
    __tablename__ = "posts"
    id = Column(Integer, primary_key=True)
    user_id = Column(Integer, ForeignKey("users.id"), nullable=True)
    __table_args__ = (ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),)

class Comment(Base):
    __tablename__ = "comments"
    id = Column(Integer, primary_key=True)
    user_id = Column(Integer, ForeignKey("users.id"), nullable=True)
    __table_args__ = (ForeignKeyConstraint(["user_id"], ["users.id"]),)
"#;
    let file = parse::parse_text(Path::new("models.py"), models.to_string()).unwrap();
    let schema = models::read_models(&[file]);
    let twice = judge_user_key(&schema, "posts").decision;
    assert_eq!(
        (twice.ondelete.to_string(), twice.reason.as_str()),
        (
            "CASCADE".into(),
            "model: ondelete='CASCADE' at models.py:16"
        )
    );
    // Neither states one: the heuristics, as for a key declared once.
    let silent = judge_user_key(&schema, "comments").decision;
    assert_eq!(
        (silent.ondelete.to_string(), silent.reason.as_str()),
        ("SET NULL".into(), "nullable column")
    );
}

/// Single-table inheritance: a relationship to `Engineer`, one class of table `people`, deletes
/// engineers only. CASCADE on `people.company_id` would delete the company's managers too,
/// which the ORM keeps, so it decides nothing, unless `Engineer` declares the column itself
/// (the other classes' rows leave it NULL). A backref declared on the subclass likewise.
#[test]
fn relationship_to_a_single_table_subclass_speaks_for_its_own_columns_only() {
    let models = r#"
from typing import Optional
from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import DeclarativeBase, Mapped, backref, mapped_column, relationship

class Base(DeclarativeBase):
    pass

class Company(Base):
    __tablename__ = "companies"
    id: Mapped[int] = mapped_column(primary_key=True)
    engineers: Mapped[list["Engineer"]] = relationship(cascade="all, delete-orphan")

class Division(Base):
    __tablename__ = "divisions"
    id: Mapped[int] = mapped_column(primary_key=True)
    managers: Mapped[list["Manager"]] = relationship(cascade="all, delete-orphan")

class Person(Base):
    __tablename__ = "people"
    id: Mapped[int] = mapped_column(primary_key=True)
    type: Mapped[str] = mapped_column(String(20))
    company_id: Mapped[Optional[int]] = mapped_column(ForeignKey("companies.id"))
    __mapper_args__ = {"polymorphic_on": "type", "polymorphic_identity": "person"}

class Engineer(Person):
    __mapper_args__ = {"polymorphic_identity": "engineer"}

class Manager(Person):
    division_id: Mapped[Optional[int]] = mapped_column(ForeignKey("divisions.id"))
    __mapper_args__ = {"polymorphic_identity": "manager"}

class Desk(Base):
    __tablename__ = "desks"
    id: Mapped[int] = mapped_column(primary_key=True)
    type: Mapped[str] = mapped_column(String(20))
    company_id: Mapped[Optional[int]] = mapped_column(ForeignKey("companies.id"))
    __mapper_args__ = {"polymorphic_on": "type", "polymorphic_identity": "desk"}

class StandingDesk(Desk):
    company = relationship("Company", backref=backref("standing_desks", cascade="all"))
    __mapper_args__ = {"polymorphic_identity": "standing"}
"#;
    let file = parse::parse_text(Path::new("models.py"), models.to_string()).unwrap();
    let schema = models::read_models(&[file]);
    let decide = |table: &str, column: &str, referent_table: &str| {
        decision_and_relationship_step(&schema, table, column, referent_table)
    };
    // `--explain` says which relationship was set aside and why, not that there is none.
    assert_eq!(
        decide("people", "company_id", "companies"),
        (
            "SET NULL: nullable column".into(),
            "3 relationship: relationship Company.engineers cascade=\"all, delete-orphan\" deletes Engineer rows only: Engineer is one class of table people (single-table inheritance) and does not declare company_id; CASCADE would delete the table's other rows too".into()
        )
    );
    assert_eq!(
        decide("people", "division_id", "divisions").0,
        "CASCADE: relationship Division.managers cascade=\"all, delete-orphan\""
    );
    assert_eq!(
        decide("desks", "company_id", "companies"),
        (
            "SET NULL: nullable column".into(),
            "3 relationship: backref Company.standing_desks of StandingDesk.company cascade=\"all\" deletes StandingDesk rows only: StandingDesk is one class of table desks (single-table inheritance) and does not declare company_id; CASCADE would delete the table's other rows too".into()
        )
    );
}

/// `table.user_id -> users.id` judged with nothing written in the migration.
fn judge_user_key(schema: &models::Schema, table: &str) -> policy::Judgement {
    let columns = ["user_id".to_string()];
    let referent_columns = ["id".to_string()];
    let key = KeyRef {
        table,
        columns: &columns,
        referent_table: "users",
        referent_columns: &referent_columns,
        not_null_in_migration: false,
        server_default_in_migration: false,
    };
    policy::judge(schema, &Config::default(), key, None, None).unwrap()
}

/// Joined-table inheritance: `Engineer(Person)` has its own table. A relationship to
/// `Engineer`, or a backref declared on it, deletes engineers only; CASCADE on
/// `people.company_id` would delete the company's other people too. It decides nothing, and
/// `--explain` says why it was set aside.
#[test]
fn relationship_to_a_joined_subclass_over_its_base_tables_key_decides_nothing() {
    let decide = |models: String| {
        decision_and_relationship_step(&schema_of(models), "people", "company_id", "companies")
    };
    assert_eq!(
        decide(joined_people(
            "",
            r#"engineers: Mapped[list["Engineer"]] = relationship(cascade="all, delete-orphan")"#
        )),
        (
            "SET NULL: nullable column".into(),
            "3 relationship: relationship Company.engineers cascade=\"all, delete-orphan\" deletes Engineer rows only: Engineer is a joined-inheritance subclass of table people (its own table engineers); CASCADE would delete the table's other rows too".into()
        )
    );
    assert_eq!(
        decide(joined_people(
            r#"company = relationship("Company", backref=backref("engineers", cascade="all"))"#,
            ""
        )),
        (
            "SET NULL: nullable column".into(),
            "3 relationship: backref Company.engineers of Engineer.company cascade=\"all\" deletes Engineer rows only: Engineer is a joined-inheritance subclass of table people (its own table engineers); CASCADE would delete the table's other rows too".into()
        )
    );
}

/// `table.column -> referent_table.id` decided with default settings: "ACTION: reason", and
/// the trail's rule-3 step (what `--explain` prints for it).
fn decision_and_relationship_step(
    schema: &models::Schema,
    table: &str,
    column: &str,
    referent_table: &str,
) -> (String, String) {
    let columns = [column.to_string()];
    let referent_columns = ["id".to_string()];
    let key = KeyRef {
        table,
        columns: &columns,
        referent_table,
        referent_columns: &referent_columns,
        not_null_in_migration: false,
        server_default_in_migration: false,
    };
    let decision = policy::decide(schema, &Config::default(), key).unwrap();
    let relationship_step = decision
        .trail
        .iter()
        .find(|step| step.starts_with("3 "))
        .cloned()
        .unwrap_or_default();
    (
        format!("{}: {}", decision.ondelete, decision.reason),
        relationship_step,
    )
}

/// People with a joined-inheritance subclass: `Engineer(Person)` has its own table
/// `engineers`; `people.company_id` points at `companies`. `engineer` and `company` are lines
/// added to the two classes.
fn joined_people(engineer: &str, company: &str) -> String {
    format!(
        r#"
from typing import Optional
from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import DeclarativeBase, Mapped, backref, mapped_column, relationship

class Base(DeclarativeBase):
    pass

class Company(Base):
    __tablename__ = "companies"
    id: Mapped[int] = mapped_column(primary_key=True)
    {company}

class Person(Base):
    __tablename__ = "people"
    id: Mapped[int] = mapped_column(primary_key=True)
    type: Mapped[str] = mapped_column(String(20))
    company_id: Mapped[Optional[int]] = mapped_column(ForeignKey("companies.id"))
    __mapper_args__ = {{"polymorphic_on": "type", "polymorphic_identity": "person"}}

class Engineer(Person):
    __tablename__ = "engineers"
    id: Mapped[int] = mapped_column(ForeignKey("people.id"), primary_key=True)
    {engineer}
    __mapper_args__ = {{"polymorphic_identity": "engineer"}}
"#
    )
}

fn schema_of(models: String) -> models::Schema {
    let file = parse::parse_text(Path::new("models.py"), models).unwrap();
    models::read_models(&[file])
}

/// The subclass's relationship is over a key of its own (`engineers.company_id`): that key
/// gets CASCADE, and the base table's key is not said to be set aside for it.
#[test]
fn a_joined_subclass_relationship_over_its_own_key_is_not_named_for_the_base_tables_key() {
    let schema = schema_of(joined_people(
        r#"company_id: Mapped[Optional[int]] = mapped_column(ForeignKey("companies.id"))
    company = relationship("Company", foreign_keys=[company_id], backref=backref("engineers", cascade="all"))"#,
        "",
    ));
    assert_eq!(
        decision_and_relationship_step(&schema, "people", "company_id", "companies"),
        (
            "SET NULL: nullable column".into(),
            "3 relationship: no parent-side relationship deletes these rows".into()
        )
    );
    assert_eq!(
        decision_and_relationship_step(&schema, "engineers", "company_id", "companies").0,
        "CASCADE: backref Company.engineers of Engineer.company cascade=\"all\""
    );
}

/// `passive_deletes="all"` on a backref declared on a joined subclass: the ORM leaves the
/// engineers' rows (they live in `people`), so SET NULL on `people.company_id` is a finding.
#[test]
fn passive_deletes_all_on_a_joined_subclass_is_a_finding_for_the_base_tables_key() {
    let schema = schema_of(joined_people(
        r#"company = relationship("Company", backref=backref("engineers", passive_deletes="all"))"#,
        "",
    ));
    let columns = ["company_id".to_string()];
    let referent_columns = ["id".to_string()];
    let key = KeyRef {
        table: "people",
        columns: &columns,
        referent_table: "companies",
        referent_columns: &referent_columns,
        not_null_in_migration: false,
        server_default_in_migration: false,
    };
    let judged = policy::judge(&schema, &Config::default(), key, None, None).unwrap();
    let codes: Vec<&str> = judged.findings.iter().map(|f| f.code).collect();
    assert_eq!(codes, ["passive-deletes-all"], "{:?}", judged.findings);
}
