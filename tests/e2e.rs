//! End-to-end: real Alembic autogenerate, the real `fix-migrations` binary, real
//! SQLite and PostgreSQL, for each example project under `examples/`.
//!
//! Per example and database: round 1 autogenerates the initial migration from
//! `models.py`, round 2 from `tests/fixtures/e2e/<example>/models_v2.py` (new
//! foreign key columns on existing tables), round 3 again with unchanged
//! models. After each `fix-migrations --write` the migration is upgraded and
//! every foreign key's ON DELETE rule is read back from the database and
//! compared with the hand-written oracle below and with the tool's JSON report.
//! Finally `alembic downgrade base` must succeed.
//!
//! Needs python3 (a venv with tests/requirements-e2e.txt is built in
//! target/e2e-venv) and PostgreSQL's initdb/pg_ctl/postgres/psql. Set
//! FIX_MIGRATIONS_E2E_SKIP_POSTGRES=1 to run only the SQLite half,
//! FIX_MIGRATIONS_E2E_KEEP=1 to keep the project directory of a failed run.

mod support;

use support::{DbKind, ExpectedFk, Style, fk, run_scenario, run_scenario_fix_models};

// The oracle. Policy, first evidence wins:
//   model        explicit ondelete in the model's ForeignKey / Field / ForeignKeyConstraint
//   config       [tool.fix-migrations] in pyproject.toml (no example uses it)
//   relationship parent-side relationship with a delete cascade or passive_deletes=True -> CASCADE
//   lookup       referent is a lookup table (statuses, roles, *_statuses, *_types)
//                or the column is status_id / role_id / type_id -> RESTRICT
//   audit        created_by, approved_by, *_by, *_by_id -> SET NULL if nullable, else RESTRICT
//   nullable     -> SET NULL
//   not_null     -> CASCADE (association-table keys: CASCADE, rule "association")

const FLASK_NOTES: &[ExpectedFk] = &[
    // User.notes = relationship('Note', ..., cascade="all, delete-orphan") covers
    // notes.author_id; the column is nullable, but the relationship comes first.
    fk("notes", &["author_id"], "users", "CASCADE", "relationship"),
    // NOT NULL, no relationship on Note for attachments.
    fk(
        "note_attachment",
        &["note_id"],
        "notes",
        "CASCADE",
        "not_null",
    ),
    // *_by_id is an audit column; nullable.
    fk(
        "note_attachment",
        &["uploaded_by_id"],
        "users",
        "SET NULL",
        "audit",
    ),
    // db.Table('note_tags') is the association table of Note.tags.
    fk("note_tags", &["note_id"], "notes", "CASCADE", "association"),
    fk("note_tags", &["tag_id"], "tags", "CASCADE", "association"),
    // v2: new table notebooks; owner_id NOT NULL, no relationship covers it.
    fk("notebooks", &["owner_id"], "users", "CASCADE", "not_null").v2(),
    // v2: Notebook.notes = relationship(..., passive_deletes=True) covers notes.notebook_id
    // (a nullable column added to the existing table notes).
    fk(
        "notes",
        &["notebook_id"],
        "notebooks",
        "CASCADE",
        "relationship",
    )
    .v2(),
    // v2: approved_by is an audit column; nullable.
    fk(
        "note_attachment",
        &["approved_by"],
        "users",
        "SET NULL",
        "audit",
    )
    .v2(),
];

const SQLMODEL_SHOP: &[ExpectedFk] = &[
    // Field(foreign_key="customer.id", ondelete="CASCADE").
    fk("order", &["customer_id"], "customer", "CASCADE", "model"),
    // Optional[int], no ondelete, Product.category is child-side: nullable.
    fk(
        "product",
        &["category_id"],
        "category",
        "SET NULL",
        "nullable",
    ),
    // Order.items sa_relationship_kwargs={"cascade": "all, delete-orphan"}.
    fk(
        "orderitem",
        &["order_id"],
        "order",
        "CASCADE",
        "relationship",
    ),
    // Field(ondelete="RESTRICT").
    fk("orderitem", &["product_id"], "product", "RESTRICT", "model"),
    // ProductTagLink is the link_model of Product.tags / Tag.products.
    fk(
        "producttaglink",
        &["product_id"],
        "product",
        "CASCADE",
        "association",
    ),
    fk(
        "producttaglink",
        &["tag_id"],
        "tag",
        "CASCADE",
        "association",
    ),
    // Product.reviews = Relationship(..., cascade_delete=True).
    fk(
        "review",
        &["product_id"],
        "product",
        "CASCADE",
        "relationship",
    ),
    // Field(ondelete="SET NULL").
    fk("review", &["customer_id"], "customer", "SET NULL", "model"),
    // v2: status_id column pointing at the new orderstatus table (NOT NULL).
    fk("order", &["status_id"], "orderstatus", "RESTRICT", "lookup").v2(),
    // v2: self-referential referred_by_id, *_by_id audit column, nullable.
    fk(
        "customer",
        &["referred_by_id"],
        "customer",
        "SET NULL",
        "audit",
    )
    .v2(),
];

const TYPED_LOOKUPS: &[ExpectedFk] = &[
    // role_id column, roles table: lookup.
    fk("users", &["role_id"], "roles", "RESTRICT", "lookup"),
    // Mapped[Optional[int]], ForeignKey("files.id", onupdate="CASCADE"): nullable;
    // the model's onupdate must survive.
    fk("users", &["image_id"], "files", "SET NULL", "nullable").onupdate("CASCADE"),
    // ForeignKey("users.id", ondelete="CASCADE").
    fk("projects", &["owner_id"], "users", "CASCADE", "model"),
    // created_by, Mapped[Optional[int]]: audit, nullable.
    fk("projects", &["created_by"], "users", "SET NULL", "audit"),
    // Mapped[int]: NOT NULL dependent row.
    fk(
        "galleries",
        &["project_id"],
        "projects",
        "CASCADE",
        "not_null",
    ),
    // status_id -> statuses: lookup.
    fk(
        "galleries",
        &["status_id"],
        "statuses",
        "RESTRICT",
        "lookup",
    ),
    // Mapped[int]: NOT NULL dependent row.
    fk("items", &["gallery_id"], "galleries", "CASCADE", "not_null"),
    // state_id is not a lookup column name, but item_statuses is a *_statuses table.
    fk(
        "items",
        &["state_id"],
        "item_statuses",
        "RESTRICT",
        "lookup",
    ),
    // Mapped[int | None]: nullable.
    fk("items", &["image_id"], "files", "SET NULL", "nullable"),
    // created_by, Mapped[int] (NOT NULL): audit -> RESTRICT.
    fk("items", &["created_by"], "users", "RESTRICT", "audit"),
    // approved_by, Mapped[Optional[int]]: audit, nullable.
    fk("items", &["approved_by"], "users", "SET NULL", "audit"),
    // v2: status_id Mapped[int] on the existing projects table: lookup.
    fk("projects", &["status_id"], "statuses", "RESTRICT", "lookup").v2(),
    // v2: Mapped[Optional[int]] on the existing galleries table: nullable.
    fk(
        "galleries",
        &["cover_image_id"],
        "files",
        "SET NULL",
        "nullable",
    )
    .v2(),
    // v2: updated_by, Mapped[Optional[int]]: audit, nullable.
    fk("items", &["updated_by"], "users", "SET NULL", "audit").v2(),
];

const DECLARATIVE_BLOG: &[ExpectedFk] = &[
    // ForeignKey("authors.id", ondelete="CASCADE").
    fk("posts", &["author_id"], "authors", "CASCADE", "model"),
    // Post.comments = relationship("Comment", backref="post", cascade="all, delete-orphan").
    fk("comments", &["post_id"], "posts", "CASCADE", "relationship"),
    // Comment.replies = relationship("Comment", backref=backref("parent", remote_side=[id]),
    // cascade="all, delete-orphan"): the one-to-many side covers parent_id (nullable).
    fk(
        "comments",
        &["parent_id"],
        "comments",
        "CASCADE",
        "relationship",
    ),
    // __table_args__ ForeignKeyConstraint(["post_id"], ["posts.id"], ondelete="CASCADE", name=...).
    fk("revisions", &["post_id"], "posts", "CASCADE", "model"),
    // __table_args__ ForeignKeyConstraint(["editor_id"], ["authors.id"]), nullable column.
    fk(
        "revisions",
        &["editor_id"],
        "authors",
        "SET NULL",
        "nullable",
    ),
    // v2: nullable reviewer_id on the existing posts table.
    fk("posts", &["reviewer_id"], "authors", "SET NULL", "nullable").v2(),
    // v2: NOT NULL author_id on the existing comments table.
    fk("comments", &["author_id"], "authors", "CASCADE", "not_null").v2(),
    // v2: deleted_by_id, *_by_id audit column, nullable.
    fk(
        "comments",
        &["deleted_by_id"],
        "authors",
        "SET NULL",
        "audit",
    )
    .v2(),
];

static FLASK_NOTES_STYLE: Style = Style {
    name: "flask-notes",
    oracle: FLASK_NOTES,
};
static SQLMODEL_SHOP_STYLE: Style = Style {
    name: "sqlmodel-shop",
    oracle: SQLMODEL_SHOP,
};
static TYPED_LOOKUPS_STYLE: Style = Style {
    name: "typed-lookups",
    oracle: TYPED_LOOKUPS,
};
static DECLARATIVE_BLOG_STYLE: Style = Style {
    name: "declarative-blog",
    oracle: DECLARATIVE_BLOG,
};

#[test]
fn sqlite_flask_notes() {
    run_scenario(&FLASK_NOTES_STYLE, DbKind::Sqlite);
}

#[test]
fn sqlite_sqlmodel_shop() {
    run_scenario(&SQLMODEL_SHOP_STYLE, DbKind::Sqlite);
}

#[test]
fn sqlite_typed_lookups() {
    run_scenario(&TYPED_LOOKUPS_STYLE, DbKind::Sqlite);
}

#[test]
fn sqlite_declarative_blog() {
    run_scenario(&DECLARATIVE_BLOG_STYLE, DbKind::Sqlite);
}

#[test]
fn postgres_flask_notes() {
    run_scenario(&FLASK_NOTES_STYLE, DbKind::Postgres);
}

#[test]
fn postgres_sqlmodel_shop() {
    run_scenario(&SQLMODEL_SHOP_STYLE, DbKind::Postgres);
}

#[test]
fn postgres_typed_lookups() {
    run_scenario(&TYPED_LOOKUPS_STYLE, DbKind::Postgres);
}

#[test]
fn postgres_declarative_blog() {
    run_scenario(&DECLARATIVE_BLOG_STYLE, DbKind::Postgres);
}

// --fix-models: the user's loop. Each round: edit the models (round 2 types the v2 additions into
// the models as --fix-models left them), autogenerate, `fix-migrations --write --fix-models`,
// upgrade head; the database must hold the oracle's rules and `alembic check` must print
// "No new upgrade operations detected.". Round 3's autogenerate must emit no foreign key
// operation at all, and the tool must change nothing.

#[test]
fn fix_models_sqlite_flask_notes() {
    run_scenario_fix_models(&FLASK_NOTES_STYLE, DbKind::Sqlite);
}

#[test]
fn fix_models_sqlite_sqlmodel_shop() {
    run_scenario_fix_models(&SQLMODEL_SHOP_STYLE, DbKind::Sqlite);
}

#[test]
fn fix_models_sqlite_typed_lookups() {
    run_scenario_fix_models(&TYPED_LOOKUPS_STYLE, DbKind::Sqlite);
}

#[test]
fn fix_models_sqlite_declarative_blog() {
    run_scenario_fix_models(&DECLARATIVE_BLOG_STYLE, DbKind::Sqlite);
}

#[test]
fn fix_models_postgres_flask_notes() {
    run_scenario_fix_models(&FLASK_NOTES_STYLE, DbKind::Postgres);
}

#[test]
fn fix_models_postgres_sqlmodel_shop() {
    run_scenario_fix_models(&SQLMODEL_SHOP_STYLE, DbKind::Postgres);
}

#[test]
fn fix_models_postgres_typed_lookups() {
    run_scenario_fix_models(&TYPED_LOOKUPS_STYLE, DbKind::Postgres);
}

#[test]
fn fix_models_postgres_declarative_blog() {
    run_scenario_fix_models(&DECLARATIVE_BLOG_STYLE, DbKind::Postgres);
}

#[test]
fn rebase_insertions_keeps_the_fix_and_the_edit() {
    let base = "a\nb\nc\n";
    let fixed = "a\nB1\nB2\nc\n";
    let edited = "# v2\na\nb\nnew\nc\n";
    assert_eq!(
        support::rebase_insertions(base, fixed, edited).unwrap(),
        "# v2\na\nB1\nB2\nnew\nc\n"
    );
    assert!(support::rebase_insertions(base, fixed, "a\nx\nc\n").is_err());
}

/// The oracle itself: every key of every example's models appears once, and
/// no rule yields an action the policy cannot produce for it.
#[test]
fn oracle_is_consistent() {
    for style in [
        &FLASK_NOTES_STYLE,
        &SQLMODEL_SHOP_STYLE,
        &TYPED_LOOKUPS_STYLE,
        &DECLARATIVE_BLOG_STYLE,
    ] {
        let mut seen = std::collections::BTreeSet::new();
        for e in style.oracle {
            assert!(
                seen.insert((e.table, e.columns)),
                "{}: {}({}) listed twice",
                style.name,
                e.table,
                e.columns.join(",")
            );
            let ok = match e.rule {
                "relationship" | "association" | "not_null" => e.ondelete == "CASCADE",
                "lookup" => e.ondelete == "RESTRICT",
                "audit" => matches!(e.ondelete, "SET NULL" | "RESTRICT"),
                "nullable" => e.ondelete == "SET NULL",
                "model" | "config" => true,
                _ => false,
            };
            assert!(
                ok,
                "{}: {e:?} is not what rule {} gives",
                style.name, e.rule
            );
        }
    }
}

#[test]
fn fk_operation_scanner() {
    let text = "def upgrade() -> None:\n    with op.batch_alter_table('c', schema=None) as batch_op:\n        batch_op.drop_constraint(None, type_='foreignkey')\n        batch_op.create_foreign_key(None, 'tasks', ['t'], ['id'])\n        batch_op.drop_constraint('uq_x', type_='unique')\n    # op.create_foreign_key('x', 'a', 'b', ['c'], ['d'])\n\n\ndef downgrade() -> None:\n    op.create_foreign_key('x', 'a', 'b', ['c'], ['d'])\n";
    let body = support::function_body(text, "upgrade");
    assert!(!body.contains("def downgrade"));
    let ops = support::fk_operations(body);
    assert_eq!(
        ops,
        vec![
            "create_foreign_key(None, 'tasks', ['t'], ['id'])".to_string(),
            "drop_constraint(None, type_='foreignkey')".to_string(),
        ]
    );
    assert!(
        support::fk_operations(support::function_body(
            "def upgrade() -> None:\n    pass\n",
            "upgrade"
        ))
        .is_empty()
    );
}
