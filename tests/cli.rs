//! The command line as users meet it: exit codes, --write, a second run, formats, bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fix-migrations"));
    cmd.env_remove("NO_COLOR").env_remove("CLICOLOR_FORCE");
    cmd
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A copy of a bundled example in a temp dir, so --write can't touch the repo.
fn example(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name);
    copy_dir(&src, &dir.path().join(name));
    let root = dir.path().join(name);
    (dir, root)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            if entry.file_name() != "__pycache__" {
                copy_dir(&entry.path(), &target);
            }
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn migration_of(root: &Path) -> PathBuf {
    let versions = root.join("migrations/versions");
    let mut files: Vec<PathBuf> = std::fs::read_dir(versions)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "py"))
        .collect();
    files.sort();
    files.pop().unwrap()
}

fn run_in(dir: &Path, args: &[&str]) -> Output {
    bin().current_dir(dir).args(args).output().unwrap()
}

#[test]
fn dry_run_shows_a_diff_exits_1_and_writes_nothing() {
    let (_tmp, root) = example("flask-notes");
    let before = std::fs::read(migration_of(&root)).unwrap();
    let out = run_in(&root, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(
            "+    sa.ForeignKeyConstraint(['author_id'], ['users.id'], ondelete='CASCADE'),"
        ),
        "{stdout}"
    );
    assert!(!stdout.contains('\x1b'), "piped output must stay plain");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("notes.author_id -> users.id: ondelete CASCADE (relationship User.notes cascade=\"all, delete-orphan\")"),
        "{stderr}"
    );
    assert!(
        stderr.contains("1 file would change (dry run; --write applies)."),
        "{stderr}"
    );
    assert_eq!(std::fs::read(migration_of(&root)).unwrap(), before);
}

#[test]
fn write_applies_and_a_second_run_changes_nothing() {
    let (_tmp, root) = example("flask-notes");
    let out = run_in(&root, &["--write"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let written = std::fs::read_to_string(migration_of(&root)).unwrap();
    assert!(
        written
            .contains("sa.ForeignKeyConstraint(['author_id'], ['users.id'], ondelete='CASCADE'),")
    );
    let again = run_in(&root, &[]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stderr));
    assert_eq!(text(&again.stdout), "");
    assert_eq!(
        std::fs::read_to_string(migration_of(&root)).unwrap(),
        written
    );
}

#[test]
fn the_diff_applies_with_git_apply() {
    let (_tmp, root) = example("declarative-blog");
    let out = run_in(&root, &[]);
    let patch = root.join("fix.patch");
    std::fs::write(&patch, &out.stdout).unwrap();
    let applied = Command::new("git")
        .current_dir(&root)
        .args(["apply", "-p1", "fix.patch"])
        .output()
        .unwrap();
    assert!(applied.status.success(), "{}", text(&applied.stderr));
    std::fs::remove_file(patch).unwrap();
    let after = run_in(&root, &[]);
    assert_eq!(after.status.code(), Some(0), "{}", text(&after.stderr));
}

#[test]
fn project_flag_and_explicit_paths() {
    let (tmp, root) = example("typed-lookups");
    let by_flag = bin()
        .current_dir(tmp.path())
        .args(["--project"])
        .arg(&root)
        .output()
        .unwrap();
    assert_eq!(by_flag.status.code(), Some(1));
    let by_dir_path = bin().current_dir(tmp.path()).arg(&root).output().unwrap();
    assert_eq!(by_dir_path.stdout, by_flag.stdout);
    let file = migration_of(&root);
    let by_file = bin().current_dir(&root).arg(&file).output().unwrap();
    assert_eq!(by_file.status.code(), Some(1));
    assert!(text(&by_file.stdout).contains("ondelete='RESTRICT'"));
}

#[test]
fn json_output_has_a_versioned_schema() {
    let (_tmp, root) = example("sqlmodel-shop");
    let out = run_in(&root, &["--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["schema_version"], 1);
    let keys = json["foreign_keys"].as_array().unwrap();
    let review = keys
        .iter()
        .find(|k| k["table"] == "review" && k["columns"][0] == "product_id")
        .unwrap();
    assert_eq!(review["ondelete"], "CASCADE");
    assert_eq!(review["rule"], "relationship");
    assert_eq!(review["status"], "fixed");
    assert_eq!(
        review["reason"],
        "relationship Product.reviews cascade_delete=True"
    );
    assert_eq!(json["summary"]["changed"], 1);
    assert!(
        json["files"][0]["diff"]
            .as_str()
            .unwrap()
            .contains("+++ b/")
    );
}

#[test]
fn github_format_annotates() {
    let (_tmp, root) = example("flask-notes");
    let out = run_in(&root, &["--format", "github"]);
    let stdout = text(&out.stdout);
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("::warning file=migrations/versions/")
                && l.contains(",line=48::needs ondelete=CASCADE on notes.author_id")),
        "{stdout}"
    );
}

#[test]
fn color_always_colors_and_no_color_wins_over_auto() {
    let (_tmp, root) = example("flask-notes");
    let colored = run_in(&root, &["--color", "always"]);
    assert!(
        text(&colored.stdout).contains("\x1b[32m+"),
        "{}",
        text(&colored.stdout)
    );
    let plain = bin()
        .current_dir(&root)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(!text(&plain.stdout).contains('\x1b'));
}

#[test]
fn findings_exit_1_even_with_write() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("models.py"),
        "from sqlalchemy import Column, ForeignKey, Integer\nfrom sqlalchemy.orm import declarative_base\nBase = declarative_base()\n\nclass User(Base):\n    __tablename__ = 'users'\n    id = Column(Integer, primary_key=True)\n\nclass Note(Base):\n    __tablename__ = 'notes'\n    id = Column(Integer, primary_key=True)\n    user_id = Column(Integer, ForeignKey('users.id', ondelete='SET NULL'), nullable=False)\n",
    )
    .unwrap();
    let migration = dir.path().join("m.py");
    let src = "from alembic import op\nimport sqlalchemy as sa\n\ndef upgrade():\n    op.create_table('notes',\n    sa.Column('user_id', sa.Integer(), nullable=False),\n    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='SET NULL'),\n    )\n";
    std::fs::write(&migration, src).unwrap();
    let out = run_in(dir.path(), &["--write", "--models", "models.py", "m.py"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "m.py:7: finding[set-null-not-null] ON DELETE SET NULL on NOT NULL column notes.user_id"
        ),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&migration).unwrap(), src);
}

/// Bad input: one line naming the file (and line), the file untouched, exit 2.
fn assert_bad_input(bytes: &[u8], expected: &str) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("models.py"), "").unwrap();
    let path = dir.path().join("bad.py");
    std::fs::write(&path, bytes).unwrap();
    let out = run_in(dir.path(), &["--write", "--models", "models.py", "bad.py"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    let first = stderr.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("error: ") && first.contains(expected),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}

#[test]
fn syntax_error_names_file_and_line() {
    assert_bad_input(
        b"from alembic import op\n\ndef upgrade(:\n    op.create_foreign_key(None, 'a', 'b', ['x'], ['id'])\n",
        "bad.py:3: syntax error",
    );
}

/// In a project of packages every model file may be called `models.py`: a reason names the
/// model file from the project's root, as the diff does.
#[test]
fn a_reason_names_the_model_file_from_the_project_root() {
    let (_tmp, root) = example("flask-notes");
    let models = std::fs::read_to_string(root.join("models.py")).unwrap();
    std::fs::create_dir_all(root.join("app/notes")).unwrap();
    std::fs::write(
        root.join("app/notes/models.py"),
        models.replace(
            "db.ForeignKey(\"users.id\"))\n",
            "db.ForeignKey(\"users.id\", ondelete=\"CASCADE\"))\n",
        ),
    )
    .unwrap();
    std::fs::remove_file(root.join("models.py")).unwrap();
    let out = run_in(&root, &[]);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("ondelete CASCADE (model: ondelete='CASCADE' at app/notes/models.py:53)"),
        "{stderr}"
    );
}

/// tree-sitter's grammar takes these; CPython (so Alembic) can't import them.
#[test]
fn indentation_cpython_refuses_is_a_syntax_error() {
    let upgrade = "from alembic import op\n\ndef upgrade():\n    with op.batch_alter_table('notes') as batch_op:\n        batch_op.add_column(None)\n";
    assert_bad_input(
        format!("{upgrade}      batch_op.create_foreign_key(None, 'users', ['user_id'], ['id'])\n")
            .as_bytes(),
        "bad.py:6: syntax error: unindent does not match any outer indentation level",
    );
    assert_bad_input(
        format!("{upgrade}\tbatch_op.create_foreign_key(None, 'users', ['user_id'], ['id'])\n")
            .as_bytes(),
        "bad.py:6: syntax error: inconsistent use of tabs and spaces in indentation",
    );
}

/// A model file Python can't import is not read as if it said something else.
#[test]
fn a_misindented_model_file_is_a_syntax_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("models.py"),
        "from sqlalchemy import Column, ForeignKey, Integer\nfrom sqlalchemy.orm import declarative_base, relationship\nBase = declarative_base()\n\nclass User(Base):\n    __tablename__ = 'users'\n    id = Column(Integer, primary_key=True)\n   notes = relationship('Note', cascade='all, delete-orphan')\n\nclass Note(Base):\n    __tablename__ = 'notes'\n    id = Column(Integer, primary_key=True)\n    user_id = Column(Integer, ForeignKey('users.id'))\n",
    )
    .unwrap();
    let migration = dir.path().join("m.py");
    let src = "from alembic import op\n\ndef upgrade():\n    op.create_foreign_key('fk_notes_user', 'notes', 'users', ['user_id'], ['id'])\n";
    std::fs::write(&migration, src).unwrap();
    let out = run_in(dir.path(), &["--write", "--models", "models.py", "m.py"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains(
            "models.py:8: syntax error: unindent does not match any outer indentation level"
        ),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(std::fs::read_to_string(&migration).unwrap(), src);
}

#[test]
fn a_bad_file_beside_a_good_one_is_left_alone_and_the_good_one_is_fixed() {
    // As ruff does: the error is reported (exit 2), the file in error untouched, the rest fixed.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("models.py"),
        "from sqlalchemy import Column, ForeignKey, Integer\nfrom sqlalchemy.orm import declarative_base\nBase = declarative_base()\n\nclass User(Base):\n    __tablename__ = 'users'\n    id = Column(Integer, primary_key=True)\n\nclass Note(Base):\n    __tablename__ = 'notes'\n    id = Column(Integer, primary_key=True)\n    author_id = Column(Integer, ForeignKey('users.id'), nullable=False)\n",
    )
    .unwrap();
    let good = "from alembic import op\n\n\ndef upgrade():\n    op.create_foreign_key('fk_notes_author', 'notes', 'users', ['author_id'], ['id'])\n";
    let bad = "from alembic import op\n\ndef upgrade(:\n    op.create_foreign_key(None, 'a', 'b', ['x'], ['id'])\n";
    std::fs::write(dir.path().join("good.py"), good).unwrap();
    std::fs::write(dir.path().join("bad.py"), bad).unwrap();
    let out = run_in(
        dir.path(),
        &["--write", "--models", "models.py", "bad.py", "good.py"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("bad.py:3: syntax error"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("bad.py")).unwrap(),
        bad
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("good.py")).unwrap(),
        good.replace("['id'])", "['id'], ondelete='CASCADE')")
    );
}

#[test]
fn non_utf8_names_file_and_line() {
    assert_bad_input(
        b"from alembic import op\n# caf\xe9\n",
        "bad.py:2: not valid UTF-8",
    );
}

#[test]
fn binary_file_names_file_and_line() {
    assert_bad_input(b"\x7fELF\x02\x01\x00\x00", "bad.py:1: binary file");
}

#[test]
fn missing_path_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_in(dir.path(), &["--models", "nothing*.py", "missing.py"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("missing.py: No such file or directory"),
        "{}",
        text(&out.stderr)
    );
}

/// A run that stops before any file still gives a machine reader its document: the error is
/// in it, attributed to the path the message names; the stderr line stays for people.
#[test]
fn errors_before_any_file_are_in_the_json_github_and_sarif_output() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["--models", "nothing*.py", "missing.py", "--format"];
    let out = run_in(dir.path(), &[&args[..], &["json"]].concat());
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("error: missing.py: No such file or directory"));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        json["errors"],
        serde_json::json!([{"file": "missing.py", "message": "missing.py: No such file or directory"}])
    );
    assert_eq!(json["summary"]["errors"], 1);
    assert_eq!(json["foreign_keys"], serde_json::json!([]));
    // No file was read: none is listed, none counted.
    assert_eq!(json["files"], serde_json::json!([]));
    assert_eq!(json["summary"]["files"], 0);

    let out = run_in(dir.path(), &[&args[..], &["github"]].concat());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stdout)
            .starts_with("::error file=missing.py::missing.py: No such file or directory\n"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        text(&out.stdout).ends_with("\n1 error; no file checked.\n"),
        "{}",
        text(&out.stdout)
    );

    // A property value escapes what would end it (`,` and `:`), as GitHub's toolkit does.
    let out = run_in(
        dir.path(),
        &["--models", "nothing*.py", "a,b:c.py", "--format", "github"],
    );
    assert!(
        text(&out.stdout).starts_with("::error file=a%2Cb%3Ac.py::a,b:c.py: No such file"),
        "{}",
        text(&out.stdout)
    );
    // An error about the directory itself names `.`.
    let out = run_in(dir.path(), &["--format", "github"]);
    assert!(
        text(&out.stdout).starts_with("::error file=.::"),
        "{}",
        text(&out.stdout)
    );

    // No project at all: the error is the run's, reported as a failed SARIF invocation.
    let out = run_in(dir.path(), &["--format", "sarif"]);
    assert_eq!(out.status.code(), Some(2));
    let sarif: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let invocation = &sarif["runs"][0]["invocations"][0];
    assert_eq!(invocation["executionSuccessful"], false);
    assert!(
        invocation["toolExecutionNotifications"][0]["message"]["text"]
            .as_str()
            .unwrap()
            .contains("no Alembic project found"),
        "{sarif}"
    );
    // Text stays one line on stderr and nothing on stdout.
    let out = run_in(dir.path(), &[]);
    assert!(out.stdout.is_empty());
}

#[test]
fn no_alembic_project_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_in(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no Alembic project found"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn unreadable_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("models.py"), "").unwrap();
    // A directory where a file is expected can't be read by anyone, root included.
    let path = dir.path().join("locked.py");
    std::fs::write(&path, "x = 1\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).unwrap();
    let out = if is_root() {
        // root reads anything; drop to nobody for the run.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        Command::new("runuser")
            .args(["-u", "nobody", "--"])
            .arg(env!("CARGO_BIN_EXE_fix-migrations"))
            .args(["--models", "models.py", "locked.py"])
            .current_dir(dir.path())
            .output()
            .unwrap()
    } else {
        run_in(dir.path(), &["--models", "models.py", "locked.py"])
    };
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("locked.py: Permission denied"),
        "{}",
        text(&out.stderr)
    );
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| text(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

#[test]
fn fix_models_dry_run_shows_both_diffs_and_writes_nothing() {
    let (_tmp, root) = example("flask-notes");
    let models_before = std::fs::read(root.join("models.py")).unwrap();
    let migration_before = std::fs::read(migration_of(&root)).unwrap();
    let out = run_in(&root, &["--fix-models"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("+    author_id = db.Column(db.Integer, db.ForeignKey(\"users.id\", ondelete=\"CASCADE\"))"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "+    sa.ForeignKeyConstraint(['author_id'], ['users.id'], ondelete='CASCADE'),"
        ),
        "{stdout}"
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("models.py:53: notes.author_id -> users.id: ondelete CASCADE (relationship User.notes cascade=\"all, delete-orphan\")"),
        "{stderr}"
    );
    assert!(
        stderr.contains("2 files would change (dry run; --write applies)."),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(root.join("models.py")).unwrap(),
        models_before
    );
    assert_eq!(
        std::fs::read(migration_of(&root)).unwrap(),
        migration_before
    );
}

#[test]
fn a_changed_setting_is_not_answered_from_the_cache() {
    let (_tmp, root) = example("typed-lookups");
    let reasons = |pattern: &str| {
        // Same file, same lines: only the pattern differs between the runs.
        std::fs::write(
            root.join("fix-migrations.toml"),
            format!("lookup-tables = [\"{pattern}\"]\n"),
        )
        .unwrap();
        let out = run_in(&root, &[]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        text(&out.stderr)
    };
    let first = reasons("roles");
    assert!(
        first.contains(
            "users.role_id -> roles.id: ondelete RESTRICT (lookup table roles (matches \"roles\"))"
        ),
        "{first}"
    );
    assert!(root.join(".fix-migrations-cache").is_dir());
    let second = reasons("role?");
    assert!(
        second.contains(
            "users.role_id -> roles.id: ondelete RESTRICT (lookup table roles (matches \"role?\"))"
        ),
        "{second}"
    );
    let third = reasons("nothing");
    assert!(
        !third.contains("lookup table roles"),
        "a pattern that no longer matches still gave the cached reason: {third}"
    );
}

#[test]
fn fix_models_write_then_a_second_run_changes_nothing() {
    let (_tmp, root) = example("sqlmodel-shop");
    let out = run_in(&root, &["--fix-models", "--write"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let models = std::fs::read_to_string(root.join("models.py")).unwrap();
    assert!(
        models.contains("order_id: int = Field(foreign_key=\"order.id\", ondelete=\"CASCADE\")"),
        "{models}"
    );
    let migration = std::fs::read_to_string(migration_of(&root)).unwrap();
    let again = run_in(&root, &["--fix-models"]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stderr));
    assert_eq!(text(&again.stdout), "");
    assert!(
        text(&again.stderr).contains("nothing to change."),
        "{}",
        text(&again.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(root.join("models.py")).unwrap(),
        models
    );
    assert_eq!(
        std::fs::read_to_string(migration_of(&root)).unwrap(),
        migration
    );
}

#[test]
fn fix_models_json_reports_model_keys() {
    let (_tmp, root) = example("typed-lookups");
    let out = run_in(&root, &["--fix-models", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let model_keys: Vec<&serde_json::Value> = json["foreign_keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["function"] == "model")
        .collect();
    assert_eq!(model_keys.len(), 11, "{json:#}");
    let role = model_keys
        .iter()
        .find(|k| k["table"] == "users" && k["columns"][0] == "role_id")
        .unwrap();
    assert_eq!(role["kind"], "model_foreign_key");
    assert_eq!(role["ondelete"], "RESTRICT");
    assert_eq!(role["status"], "fixed");
    assert_eq!(role["file"], "models.py");
}

/// The revision pass reads every revision for its ids and hands what it read on, so that a
/// whole history is read once. A revision it could read ids from but whose text is not valid
/// (no key marker in it either) is still reported by file and line, with `--all` and without a
/// cache as with one, and left as it was.
#[test]
fn an_invalid_revision_found_by_the_revision_pass_is_reported_by_file_and_line() {
    let (_tmp, root) = example("flask-notes");
    let head = migration_of(&root);
    let head_id = head.file_name().unwrap().to_str().unwrap()[..12].to_string();
    let bad = root.join("migrations/versions/ffff00000000_bad.py");
    // A Latin-1 é: one byte that is not UTF-8, on line 10.
    let bytes = [
        format!(
            "\"\"\"data fix\n\nRevision ID: ffff00000000\n\"\"\"\nrevision = 'ffff00000000'\n\
             down_revision = '{head_id}'\n\n\ndef upgrade():\n    pass  # caf"
        )
        .as_bytes(),
        b"\xe9\n",
    ]
    .concat();
    std::fs::write(&bad, &bytes).unwrap();
    for extra in [&["--no-cache"][..], &[][..]] {
        let mut args = vec!["--all", "--write"];
        args.extend_from_slice(extra);
        let out = run_in(&root, &args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {stderr}");
        assert!(
            stderr.contains("ffff00000000_bad.py:10: not valid UTF-8"),
            "{extra:?}: {stderr}"
        );
        assert_eq!(std::fs::read(&bad).unwrap(), bytes);
    }
}
