//! The model reader against SQLAlchemy itself: the same fixture files are imported by the
//! pinned SQLAlchemy in the test venv, and every mapped table's columns (nullability) and
//! foreign keys (target, ondelete, onupdate) must be what the reader found without running
//! any Python.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use fix_migrations::models::read_models;
use fix_migrations::parse::parse_text;
use support::{manifest_dir, run_ok, venv};

/// One line per column and per key, the same rendering on both sides.
const DUMP: &str = r#"
import importlib, sys
from sqlalchemy import MetaData
tables = set()
for name in sys.argv[1:]:
    module = importlib.import_module(name)
    for value in vars(module).values():
        metadata = value if isinstance(value, MetaData) else getattr(value, "metadata", None)
        if isinstance(metadata, MetaData):
            tables.update(metadata.tables.values())
for table in tables:
    for column in table.columns:
        print(f"col {table.name}.{column.name} {'NULL' if column.nullable else 'NOT NULL'}")
    for key in table.foreign_key_constraints:
        columns = ",".join(c.name for c in key.columns)
        # From the names as written: a target table that is not mapped can't be resolved.
        target = key.elements[0].target_fullname.rsplit(".", 1)[0]
        referred = ",".join(e.target_fullname.rsplit(".", 1)[1] for e in key.elements)
        print(f"fk {table.name}.{columns} -> {target}.{referred} ondelete={key.ondelete} onupdate={key.onupdate}")
"#;

fn by_sqlalchemy(dir: &Path, modules: &[&str]) -> BTreeSet<String> {
    let out = run_ok(
        Command::new(venv().python())
            .arg("-c")
            .arg(DUMP)
            .args(modules)
            .current_dir(dir)
            .env("PYTHONPATH", dir)
            .env("PYTHONDONTWRITEBYTECODE", "1"),
    )
    .unwrap();
    out.stdout.lines().map(str::to_string).collect()
}

fn by_the_reader(dir: &Path, modules: &[&str]) -> BTreeSet<String> {
    let files: Vec<_> = modules
        .iter()
        .map(|m| {
            let path = dir.join(format!("{m}.py"));
            parse_text(
                &PathBuf::from(&path),
                std::fs::read_to_string(&path).unwrap(),
            )
            .unwrap()
        })
        .collect();
    let schema = read_models(&files);
    let mut lines = BTreeSet::new();
    for table in schema.tables.values() {
        for column in table.columns.values() {
            let null = if column.nullable { "NULL" } else { "NOT NULL" };
            lines.insert(format!("col {}.{} {null}", table.name, column.name));
        }
        for fk in &table.foreign_keys {
            let text = |v: &Option<String>| v.clone().unwrap_or_else(|| "None".into());
            lines.insert(format!(
                "fk {}.{} -> {}.{} ondelete={} onupdate={}",
                table.name,
                fk.columns.join(","),
                fk.referent_table,
                fk.referent_columns.join(","),
                text(&fk.ondelete),
                text(&fk.onupdate)
            ));
        }
    }
    lines
}

/// Seed 004's helpers: `Mapped[DbColumnConstants.ForeignKeyInteger(AppTableNames.X, ...)]`
/// with the helpers and the table names in another file. `legacy_id`'s helper computes its
/// target with a call (`table_name.lower() + ".id"`), which the reader does not run: that
/// column (left to the migration) is the only difference, and it is asserted as such.
#[test]
fn column_helpers_read_as_sqlalchemy_maps_them() {
    let dir = manifest_dir().join("tests/fixtures/models");
    let modules = ["helpers_columns", "helpers_models"];
    let expected = by_sqlalchemy(&dir, &modules);
    let read = by_the_reader(&dir, &modules);
    assert!(
        expected.len() > 20,
        "SQLAlchemy mapped the fixture: {expected:?}"
    );
    let missing: Vec<_> = expected.difference(&read).collect();
    let extra: Vec<_> = read.difference(&expected).collect();
    assert_eq!(
        missing,
        vec![
            "col academy_galleries.legacy_id NOT NULL",
            "fk academy_galleries.legacy_id -> users.id ondelete=None onupdate=None"
        ],
        "read: {read:#?}"
    );
    assert!(extra.is_empty(), "the reader found more: {extra:#?}");
}

/// Helpers a second reader found misread before, each now declined: the column is left out of
/// the schema (so the policy reads the migration's own `nullable=`) rather than guessed.
#[test]
fn helpers_the_reader_cannot_follow_are_declined() {
    let dir = manifest_dir().join("tests/fixtures/models");
    let expected = by_sqlalchemy(&dir, &["helpers_declined"]);
    let read = by_the_reader(&dir, &["helpers_declined"]);
    let extra: Vec<&String> = read.difference(&expected).collect();
    assert!(extra.is_empty(), "misread: {extra:#?}");
    let columns: Vec<&str> = read
        .iter()
        .filter_map(|l| l.strip_prefix("col declined."))
        .collect();
    assert_eq!(columns, vec!["i NOT NULL", "id NOT NULL"], "{read:#?}");
    assert!(
        read.contains("fk declined.i -> users.id ondelete=CASCADE onupdate=None"),
        "{read:#?}"
    );
}

/// The other fixtures of `tests/models.rs`, one module each. `typed.py`'s `tag_id` key has a
/// computed target (`"Tag.id".lower()`), which the reader does not run.
#[test]
fn model_fixtures_read_as_sqlalchemy_maps_them() {
    let dir = manifest_dir().join("tests/fixtures/models");
    let cases: &[(&str, &[&str])] = &[
        (
            "typed",
            &["fk posts.tag_id -> tag.id ondelete=None onupdate=None"],
        ),
        ("typed_annotated", &[]),
        ("declarative", &[]),
        ("self_referential", &[]),
        ("schema_tables", &[]),
        ("association", &[]),
        ("sqlmodel_app", &[]),
    ];
    for (module, not_read) in cases {
        let expected = by_sqlalchemy(&dir, &[module]);
        let read = by_the_reader(&dir, &[module]);
        assert!(!expected.is_empty(), "{module}: SQLAlchemy mapped nothing");
        let missing: Vec<&str> = expected.difference(&read).map(String::as_str).collect();
        let extra: Vec<&String> = read.difference(&expected).collect();
        assert_eq!(&missing, not_read, "{module}: read {read:#?}");
        assert!(
            extra.is_empty(),
            "{module}: the reader found more: {extra:#?}"
        );
    }
}
