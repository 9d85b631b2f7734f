//! `--fix-models`: the decisions written back into model files of every style. Each snapshot is
//! the unified diff (as the CLI prints it) and the reason and finding lines; each fixed file must
//! compile under CPython and a second run must change nothing.

mod support;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use fix_migrations::config::Config;
use fix_migrations::fix;
use fix_migrations::model_fix;
use fix_migrations::models::read_models;
use fix_migrations::parse::{SourceFile, parse_text};
use fix_migrations::report::{key_line_plain, unified_diff};

const FIXTURES: &str = "tests/fixtures/model_fix";

fn load(name: &str) -> SourceFile {
    let text = std::fs::read_to_string(Path::new(FIXTURES).join(name)).unwrap();
    parse_text(&PathBuf::from(name), text).unwrap()
}

/// Plan and apply once: (fixed text, report lines).
fn fix_once(file: &SourceFile, config: &Config) -> (String, String) {
    let schema = read_models(std::slice::from_ref(file));
    let mut plans = model_fix::plan(std::slice::from_ref(file), &schema, config);
    let plan = plans.remove(&file.path).unwrap_or_default();
    let shown = file.path.display().to_string();
    let mut lines = String::new();
    for key in &plan.keys {
        writeln!(lines, "{}", key_line_plain(&shown, key)).unwrap();
    }
    for f in &plan.findings {
        writeln!(
            lines,
            "{shown}:{}: finding[{}] {}",
            f.line, f.code, f.message
        )
        .unwrap();
    }
    (fix::fixed_text(file, plan.edits).unwrap(), lines)
}

fn assert_compiles(text: &str) {
    let mut child = Command::new("python3")
        .args([
            "-c",
            "import sys; compile(sys.stdin.read(), 'models.py', 'exec')",
        ])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "CPython refuses the fixed file:\n{}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Fix, check the invariants, snapshot diff + reasons. Returns the fixed text.
fn check(name: &str, config: &Config) -> String {
    let file = load(name);
    let (fixed, lines) = fix_once(&file, config);
    assert_compiles(&fixed);
    let again = parse_text(&file.path, fixed.clone()).unwrap();
    let (second, _) = fix_once(&again, config);
    assert_eq!(second, fixed, "a second run changed {name}");
    let snapshot = format!("{}\n{lines}", unified_diff(&file.text, &fixed, name));
    insta::with_settings!({snapshot_path => "../snapshots", prepend_module_to_snapshot => false}, {
        insta::assert_snapshot!(format!("model_fix_{}", name.trim_end_matches(".py")), snapshot);
    });
    fixed
}

#[test]
fn declarative_column_table_and_table_args() {
    let fixed = check("declarative.py", &Config::default());
    // black's trailing-comma shape gets a new line, the comment stays on its argument.
    assert!(
        fixed.contains(
            "        ForeignKey(\n            \"authors.id\",  # who wrote it\n            ondelete=\"CASCADE\",\n        ),"
        ),
        "{fixed}"
    );
    // the call's own quotes; the comment after the call untouched.
    assert!(
        fixed.contains(
            "editor_id = Column(Integer, ForeignKey('authors.id', ondelete='SET NULL'))  # optional editor"
        ),
        "{fixed}"
    );
    assert!(fixed.contains("ForeignKey(\"authors.id\", ondelete=\"RESTRICT\")"));
}

#[test]
fn typed_mapped_column_and_annotated_aliases() {
    let fixed = check("typed.py", &Config::default());
    // The shared alias both columns agree on is edited once.
    assert!(
        fixed.contains(
            "status_fk = Annotated[int, mapped_column(ForeignKey(\"statuses.id\", ondelete=\"RESTRICT\"))]"
        ),
        "{fixed}"
    );
    // The alias whose columns disagree is left alone.
    assert!(fixed.contains("user_ref = Annotated[int, mapped_column(ForeignKey(\"users.id\"))]"));
}

#[test]
fn project_helpers_get_the_decision_as_their_own_parameter() {
    let fixed = check("helpers.py", &Config::default());
    for written in [
        "group_id: Mapped[DbColumnConstants.ForeignKeyInteger(AppTableNames.GroupTableName, ondelete=\"CASCADE\")]",
        // statuses is a lookup table.
        "            onupdate=\"CASCADE\",\n            ondelete=\"RESTRICT\",\n        )",
        "ForeignKeyNullableInteger(AppTableNames.GroupTableName, on_delete=\"SET NULL\")",
        "ForeignKeyInteger(AppTableNames.UserTableName, ondelete=\"RESTRICT\")",
        "owner_id: Mapped[DbColumnConstants.OwnedBy(AppTableNames.UserTableName)]",
        "created_by_id: Mapped[audit_key(ondelete=\"SET NULL\")]",
        "shared_id: Mapped[both(AppTableNames.UserTableName)]",
        "positional_id: Mapped[positional(AppTableNames.UserTableName)]",
    ] {
        assert!(fixed.contains(written), "{written}\n{fixed}");
    }
}

#[test]
fn flask_db_column_and_db_table() {
    let fixed = check("flask.py", &Config::default());
    assert!(
        fixed.contains("db.ForeignKey('notes.id', ondelete='cascade'), nullable=False"),
        "lower case follows the file: {fixed}"
    );
}

#[test]
fn sqlmodel_field() {
    let fixed = check("sqlmodel_app.py", &Config::default());
    assert!(fixed.contains(
        "team_id: Optional[int] = Field(default=None, foreign_key=\"team.id\", ondelete=\"CASCADE\")"
    ));
}

#[test]
fn sqlmodel_set_null_on_a_field_that_is_not_optional() {
    let fixed = check("sqlmodel_set_null.py", &Config::default());
    assert_eq!(fixed, load("sqlmodel_set_null.py").text);
}

#[test]
fn sqlmodel_field_cannot_take_onupdate() {
    let config = Config::from_toml_str("default-onupdate = \"CASCADE\"\n").unwrap();
    let file = load("sqlmodel_app.py");
    let (fixed, lines) = fix_once(&file, &config);
    assert_compiles(&fixed);
    assert!(
        lines.contains("finding[field-onupdate-unsupported]"),
        "{lines}"
    );
    // ondelete is still written into Field(); onupdate only where a ForeignKey() takes it.
    assert!(fixed.contains("foreign_key=\"team.id\", ondelete=\"CASCADE\")"));
    assert!(
        !fixed.contains(
            "Field(default=None, foreign_key=\"team.id\", ondelete=\"CASCADE\", onupdate"
        )
    );
    assert!(
        fixed.contains("ForeignKey(\"team.id\", ondelete=\"SET NULL\", onupdate=\"CASCADE\")"),
        "{fixed}"
    );
}

#[test]
fn sqlmodel_field_takes_three_actions_only() {
    let config = Config::from_toml_str("nullable-ondelete = \"NO ACTION\"\n").unwrap();
    let (fixed, lines) = fix_once(&load("sqlmodel_app.py"), &config);
    assert!(
        lines.contains("finding[field-ondelete-unsupported]"),
        "{lines}"
    );
    assert!(!fixed.contains("ondelete=\"NO ACTION\")\n    status_id"));
    assert!(!fixed.contains("foreign_key=\"hero.id\", index=True, ondelete"));
}

#[test]
fn misplaced_ondelete_moves_into_foreign_key() {
    let fixed = check("misplaced.py", &Config::default());
    assert!(fixed.contains(
        "account_id = Column(Integer, ForeignKey(\"accounts.id\", ondelete=\"CASCADE\"), nullable=False)"
    ));
    assert!(fixed.contains(
        "    owner_id = mapped_column(\n        Integer,\n        ForeignKey(\"accounts.id\", ondelete=\"RESTRICT\"),\n    )"
    ), "{fixed}");
}

#[test]
fn misplaced_ondelete_left_where_moving_is_not_safe() {
    let fixed = check("misplaced_ambiguous.py", &Config::default());
    assert_eq!(fixed, load("misplaced_ambiguous.py").text);
}

#[test]
fn crlf_file_stays_crlf() {
    let fixed = check("crlf.py", &Config::default());
    assert!(
        !fixed.replace("\r\n", "").contains('\n'),
        "a bare LF crept in"
    );
    assert!(fixed.contains("            \"users.id\", ondelete=\"CASCADE\"\r\n        ),"));
}

/// The fixed files import with the real SQLAlchemy / SQLModel / Flask-SQLAlchemy, and each
/// key's ondelete is what the tool decided (seed 000's file raised TypeError before).
#[test]
fn fixed_models_import_with_the_real_libraries() {
    let venv = support::venv();
    let script = r#"
import importlib.util, sys
spec = importlib.util.spec_from_file_location("m", sys.argv[1])
m = importlib.util.module_from_spec(spec)
try:
    spec.loader.exec_module(m)
except (TypeError, RuntimeError) as e:
    print(type(e).__name__ + ":", e)
    sys.exit(0)
md = getattr(m, "Base", None)
md = md.metadata if md is not None else (m.db.metadata if hasattr(m, "db") else m.SQLModel.metadata)
for t in sorted(md.tables.values(), key=lambda t: t.name):
    for fk in sorted(t.foreign_keys, key=lambda f: f.parent.name):
        print(f"{t.name}.{fk.parent.name} -> {fk.target_fullname}: {fk.ondelete} {fk.onupdate}")
"#;
    let dir = tempfile::tempdir().unwrap();
    let mut printed = String::new();
    for name in [
        "misplaced.py",
        "declarative.py",
        "typed.py",
        "flask.py",
        "sqlmodel_app.py",
        "sqlmodel_set_null.py",
        "helpers.py",
    ] {
        let file = load(name);
        for (label, text) in [
            ("before", file.text.clone()),
            ("after", fix_once(&file, &Config::default()).0),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, &text).unwrap();
            let out = Command::new(venv.python())
                .args(["-c", script, path.to_str().unwrap()])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{name} {label}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            writeln!(
                printed,
                "== {name} {label}\n{}",
                String::from_utf8_lossy(&out.stdout)
            )
            .unwrap();
        }
    }
    insta::with_settings!({snapshot_path => "../snapshots", prepend_module_to_snapshot => false}, {
        insta::assert_snapshot!("model_fix_imported", printed);
    });
}

/// A key left as it is in its migration (`# fix-migrations: ignore`) needs the same in its
/// model, or `--fix-models` writes the policy's rule there and `alembic check` finds the model
/// and the database apart. The comment works in a model file as in a migration.
#[test]
fn a_suppressed_model_key_gets_no_edit() {
    let text = r#"from sqlalchemy import Column, ForeignKey, Integer
from sqlalchemy.orm import declarative_base

Base = declarative_base()


class Post(Base):
    __tablename__ = "posts"
    id = Column(Integer, primary_key=True)


class Like(Base):
    __tablename__ = "likes"
    id = Column(Integer, primary_key=True)
    post_id = Column(Integer, ForeignKey("posts.id"), nullable=False)  # fix-migrations: ignore  purged by a nightly job
    # fix-migrations: ignore
    other_id = Column(Integer, ForeignKey("posts.id"), nullable=False)
    third_id = Column(Integer, ForeignKey("posts.id"), nullable=False)
    # fix-migrations: ignore
    kept_id = Column(Integer, ForeignKey("posts.id", ondelete="RESTRICT"), nullable=False)
"#;
    let file = parse_text(&PathBuf::from("models.py"), text.to_string()).unwrap();
    let schema = read_models(std::slice::from_ref(&file));
    let mut plans = model_fix::plan(std::slice::from_ref(&file), &schema, &Config::default());
    let plan = plans.remove(&file.path).unwrap();
    let lines: Vec<String> = plan
        .keys
        .iter()
        .map(|k| key_line_plain("models.py", k))
        .collect();
    assert_eq!(
        lines,
        [
            "models.py:15: likes.post_id -> posts.id: suppressed by `# fix-migrations: ignore` on line 15 (purged by a nightly job); would set ondelete CASCADE",
            "models.py:17: likes.other_id -> posts.id: suppressed by `# fix-migrations: ignore` on line 16; would set ondelete CASCADE",
            "models.py:18: likes.third_id -> posts.id: ondelete CASCADE (NOT NULL column)",
            "models.py:20: likes.kept_id -> posts.id: ondelete RESTRICT (model: ondelete='RESTRICT' at models.py:20) already right",
        ]
    );
    let fixed = fix::fixed_text(&file, plan.edits).unwrap();
    assert_eq!(
        fixed,
        text.replace(
            "third_id = Column(Integer, ForeignKey(\"posts.id\"), nullable=False)",
            "third_id = Column(Integer, ForeignKey(\"posts.id\", ondelete=\"CASCADE\"), nullable=False)"
        )
    );
    // The comment above an already-right key suppresses nothing: a note, as in a migration.
    let notices: Vec<String> = plan
        .notices
        .iter()
        .map(|n| format!("{}: {}", n.line, n.message))
        .collect();
    assert_eq!(
        notices,
        [
            "19: `# fix-migrations: ignore` suppresses nothing: no foreign key on line 20 needs a change"
        ]
    );
}
