//! End-to-end: two branches of a team's history, as real Alembic writes them. Two developers
//! each ran `alembic revision --autogenerate` from the same base, so the history has two heads,
//! and the project names its files with a custom `file_template`. `fix-migrations --write`
//! (heads only, the post-write-hook mode) must fix both heads and leave the base alone; then
//! real `alembic upgrade heads` on SQLite gives the ON DELETE rules read back from the file.

mod support;

use std::fs;
use std::path::Path;
use std::process::Command;

use support::sqlite_project::SqliteProject;
use support::{run, tool_bin};

/// A custom file_template.
const FILE_TEMPLATE: &str = "file_template = %%(year)d%%(month).2d%%(day).2d_%%(hour).2d%%(minute).2d_%%(rev)s_%%(slug)s\ntruncate_slug_length = 20\n";

const USERS: &str = "from sqlalchemy import Column, ForeignKey, Integer, String
from sqlalchemy.orm import declarative_base, relationship

Base = declarative_base()


class User(Base):
    __tablename__ = \"users\"
    id = Column(Integer, primary_key=True)
    manager_id = Column(Integer, ForeignKey(\"users.id\"), nullable=True)
";

/// Branch A: notes belong to their user (`delete-orphan` means CASCADE).
const NOTES: &str = "

class Note(Base):
    __tablename__ = \"notes\"
    id = Column(Integer, primary_key=True)
    user_id = Column(Integer, ForeignKey(\"users.id\"), nullable=False)


User.notes = relationship(Note, cascade=\"all, delete-orphan\")
";

/// Branch B: a tag outlives its owner (nullable: SET NULL).
const TAGS: &str = "

class Tag(Base):
    __tablename__ = \"tags\"
    id = Column(Integer, primary_key=True)
    label = Column(String(40), nullable=False)
    owner_id = Column(Integer, ForeignKey(\"users.id\"), nullable=True)
";

fn name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn both_heads_of_a_branched_history_are_fixed_and_the_base_is_left_alone() {
    let project = SqliteProject::new("e2e-branches", FILE_TEMPLATE);
    project.models(USERS);
    let base = project.autogenerate("base");
    project.alembic(&["upgrade", "head"]);

    // Developer A adds notes. Their file is set aside (on A's branch) while developer B,
    // from the same database state, adds tags; then both branches meet.
    project.models(&format!("{USERS}{NOTES}"));
    let notes = project.autogenerate("add notes");
    let aside = project.path().join("notes-branch.py");
    fs::rename(&notes, &aside).unwrap();
    project.models(&format!("{USERS}{TAGS}"));
    let tags = project.autogenerate("add tags");
    fs::rename(&aside, &notes).unwrap();
    project.models(&format!("{USERS}{NOTES}{TAGS}"));

    let heads = project.alembic(&["heads"]).stdout;
    assert_eq!(heads.matches("(head)").count(), 2, "{heads}");
    // The custom file_template: date, time, revision id, slug.
    for file in [&base, &notes, &tags] {
        let n = name(file);
        let (stamp, rest) = n.split_at(13);
        assert!(
            stamp.len() == 13
                && stamp[..8].bytes().all(|b| b.is_ascii_digit())
                && &stamp[8..9] == "_"
                && stamp[9..13].bytes().all(|b| b.is_ascii_digit())
                && rest.starts_with('_'),
            "{n} does not follow the file_template"
        );
    }
    let base_text = fs::read_to_string(&base).unwrap();

    let (code, report) = project.fix();
    assert_eq!(code, 0, "{report:#}");
    let mut changed: Vec<String> = report["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["changed"] == true)
        .map(|f| {
            f["path"]
                .as_str()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    changed.sort();
    let mut both = vec![name(&notes), name(&tags)];
    both.sort();
    assert_eq!(changed, both, "{report:#}");
    assert_eq!(fs::read_to_string(&base).unwrap(), base_text);
    assert!(
        fs::read_to_string(&notes)
            .unwrap()
            .contains("ondelete='CASCADE'")
    );
    assert!(
        fs::read_to_string(&tags)
            .unwrap()
            .contains("ondelete='SET NULL'")
    );

    // The second run: nothing left to change.
    let texts: Vec<String> = [&notes, &tags]
        .iter()
        .map(|p| fs::read_to_string(p).unwrap())
        .collect();
    let (code, report) = project.fix();
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["summary"]["changed"], 0, "{report:#}");
    for (path, text) in [&notes, &tags].iter().zip(&texts) {
        assert_eq!(&fs::read_to_string(path).unwrap(), text);
    }

    // Real Alembic applies both branches; SQLite reports the rules.
    project.alembic(&["upgrade", "heads"]);
    let rules = project.on_delete_rules();
    let expected = [
        ("notes.user_id", "CASCADE"),
        ("tags.owner_id", "SET NULL"),
        // The base is not a head: its key stays as Alembic wrote it.
        ("users.manager_id", "NO ACTION"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(rules, expected);
    eprintln!(
        "e2e: two heads on SQLite: {} foreign keys in the database, {} with the expected ON DELETE rules",
        rules.len(),
        rules.iter().filter(|r| expected.contains(r)).count()
    );

    // `--all` still has the base's key to fix: heads-only mode really left it alone.
    let out = run(Command::new(tool_bin())
        .args(["--all", "--dry-run"])
        .current_dir(project.path()))
    .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", out.report());
    assert!(out.stdout.contains(&name(&base)), "{}", out.report());
}
