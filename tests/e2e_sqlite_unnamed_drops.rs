//! End-to-end: SQLite keeps a key made inside CREATE TABLE without a name, so when the model
//! later sets its ondelete, the next `alembic revision --autogenerate` drops it with
//! `batch_op.drop_constraint(None, type_='foreignkey')`, which Alembic cannot run ("Constraint
//! must have a name"). After `fix-migrations --write`, real `alembic upgrade head` and
//! `downgrade -1` run, and SQLite reports the rules each direction should leave.

mod support;

use std::fs;

use support::sqlite_project::SqliteProject;
use support::{sqlite_fks, venv};

const MODELS: &str = "from sqlalchemy import Column, ForeignKey, Integer
from sqlalchemy.orm import declarative_base

Base = declarative_base()


class User(Base):
    __tablename__ = \"users\"
    id = Column(Integer, primary_key=True)


class Tag(Base):
    __tablename__ = \"tags\"
    id = Column(Integer, primary_key=True)


class Post(Base):
    __tablename__ = \"posts\"
    id = Column(Integer, primary_key=True)
    user_id = Column(Integer, ForeignKey(\"users.id\"), nullable=True)
    tag_id = Column(Integer, ForeignKey(\"tags.id\"), nullable=True)
    editor_id = Column(Integer, ForeignKey(\"users.id\"), nullable=True)
";

fn rules(project: &SqliteProject) -> Vec<(String, String)> {
    let mut rules: Vec<_> = sqlite_fks(venv(), &project.path().join("app.db"))
        .unwrap()
        .into_iter()
        .map(|fk| (fk.columns.join(","), fk.ondelete))
        .collect();
    rules.sort();
    rules
}

#[test]
fn unnamed_sqlite_keys_dropped_in_upgrade_are_named_through_the_batch_naming_convention() {
    let project = SqliteProject::new("e2e-unnamed-drops", "");
    project.models(MODELS);
    project.autogenerate("posts");
    let (code, report) = project.fix();
    assert_eq!(code, 0, "{report:#}");
    project.alembic(&["upgrade", "head"]);
    // editor_id keeps SET NULL throughout; the other two change.
    let on_delete = |rule: &str| {
        vec![
            ("editor_id".to_string(), "SET NULL".to_string()),
            ("tag_id".to_string(), rule.to_string()),
            ("user_id".to_string(), rule.to_string()),
        ]
    };
    assert_eq!(rules(&project), on_delete("SET NULL"));

    // The model now says what it wants for two keys: autogenerate drops all three to create
    // them again, editor_id's pair only reverting the SET NULL the tool wrote into r1.
    project.models(
        &MODELS
            .replace(
                "\"users.id\"), nullable=True)\n    tag_id",
                "\"users.id\", ondelete=\"CASCADE\"), nullable=True)\n    tag_id",
            )
            .replace("\"tags.id\")", "\"tags.id\", ondelete=\"CASCADE\")"),
    );
    let cascade = project.autogenerate("cascade");
    let written = fs::read_to_string(&cascade).unwrap();
    let upgrade = written.split("def downgrade").next().unwrap();
    assert_eq!(
        upgrade
            .matches("batch_op.drop_constraint(None, type_='foreignkey')")
            .count(),
        3,
        "{written}"
    );

    let (code, report) = project.fix();
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["summary"]["reverts"], 1, "{report:#}");
    let fixed = fs::read_to_string(&cascade).unwrap();
    assert!(
        fixed.contains("with op.batch_alter_table('posts', schema=None, naming_convention={'fk': '%(table_name)s_%(column_0_N_name)s_fkey'}) as batch_op:"),
        "{fixed}"
    );
    assert!(!fixed.contains("drop_constraint(None"), "{fixed}");
    assert!(
        !fixed.contains("WARNING: constraint name is None"),
        "{fixed}"
    );

    // Alembic runs both directions; each leaves the rules it should.
    project.alembic(&["upgrade", "head"]);
    assert_eq!(rules(&project), on_delete("CASCADE"));
    project.alembic(&["downgrade", "-1"]);
    assert_eq!(rules(&project), on_delete("SET NULL"));
    project.alembic(&["upgrade", "head"]);
    assert_eq!(rules(&project), on_delete("CASCADE"));

    // A second run changes nothing.
    let (code, report) = project.fix();
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["summary"]["changed"], 0, "{report:#}");
    assert_eq!(fs::read_to_string(&cascade).unwrap(), fixed);
    eprintln!(
        "e2e: two unnamed SQLite keys dropped in upgrade(): upgrade, downgrade and upgrade ran; rules {:?}",
        rules(&project)
    );
}
