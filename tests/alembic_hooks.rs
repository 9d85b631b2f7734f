//! fix-migrations as an Alembic post-write hook, end to end: real `alembic revision
//! --autogenerate` (Alembic 1.20.1 from the pinned venv) runs the real binary through
//! `type = exec`, alone and chained before or after black (`type = console_scripts`) and
//! `ruff format` (`type = exec`), configured in alembic.ini or in pyproject.toml. Each test
//! then checks the file Alembic left (nothing pending for the tool, canonical for the
//! formatter), upgrades a SQLite database and reads the ON DELETE rules back.
//!
//! What Alembic does with a hook (alembic/script/write_hooks.py): `subprocess.run([executable,
//! *options])` in Alembic's own working directory, the executable looked up on PATH, stdout and
//! stderr inherited, the exit status ignored. REVISION_SCRIPT_FILENAME is the path Alembic
//! wrote, absolute when script_location uses %(here)s.

mod support;

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use support::{CmdOutput, DbFk, manifest_dir, run, sqlite_fks, tool_bin, venv};

/// flask-notes' initial foreign keys and the rules the policy gives them (tests/e2e.rs has the
/// reasons): (table, column, ON DELETE).
const FLASK_NOTES_RULES: &[(&str, &str, &str)] = &[
    ("note_attachment", "note_id", "CASCADE"),
    ("note_attachment", "uploaded_by_id", "SET NULL"),
    ("note_tags", "note_id", "CASCADE"),
    ("note_tags", "tag_id", "CASCADE"),
    ("notes", "author_id", "CASCADE"),
];

const FIX_HOOK_INI: &str = "\
fix_migrations.type = exec
fix_migrations.executable = fix-migrations
fix_migrations.options = --write REVISION_SCRIPT_FILENAME
";

const BLACK_HOOK_INI: &str = "\
black.type = console_scripts
black.entrypoint = black
black.options = REVISION_SCRIPT_FILENAME
";

const RUFF_HOOK_INI: &str = "\
ruff.type = exec
ruff.executable = ruff
ruff.options = format REVISION_SCRIPT_FILENAME
";

/// A throwaway copy of an example project with an empty versions directory.
struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    fn new(example: &str) -> Result<Project> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("fix-migrations-hook-{example}-"))
            .tempdir()?;
        let source = manifest_dir().join("examples").join(example);
        for f in [
            "alembic.ini",
            "models.py",
            "migrations/env.py",
            "migrations/script.py.mako",
        ] {
            let dest = dir.path().join(f);
            fs::create_dir_all(dest.parent().unwrap())?;
            fs::copy(source.join(f), &dest).with_context(|| format!("copying {f}"))?;
        }
        fs::create_dir_all(dir.path().join("migrations/versions"))?;
        Ok(Project { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn append(&self, file: &str, text: &str) -> Result<()> {
        let path = self.path().join(file);
        let mut content = fs::read_to_string(&path)?;
        content.push_str(text);
        fs::write(&path, content)?;
        Ok(())
    }

    /// `[post_write_hooks]` in alembic.ini running `names` in order.
    fn ini_hooks(&self, names: &[&str]) -> Result<()> {
        let mut section = format!("\n[post_write_hooks]\nhooks = {}\n", names.join(", "));
        for name in names {
            section.push_str(match *name {
                "fix_migrations" => FIX_HOOK_INI,
                "black" => BLACK_HOOK_INI,
                "ruff" => RUFF_HOOK_INI,
                other => bail!("no hook {other}"),
            });
        }
        self.append("alembic.ini", &section)
    }

    /// The user's PATH as after activating the venv with fix-migrations installed: the binary
    /// under test and the venv's scripts (alembic, ruff) first.
    fn path_env(&self) -> Result<OsString> {
        let tool_dir = tool_bin().parent().unwrap().to_path_buf();
        let mut dirs = vec![tool_dir, venv().dir.join("bin")];
        dirs.extend(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        ));
        Ok(std::env::join_paths(dirs)?)
    }

    fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Result<Command> {
        let mut cmd = Command::new(program);
        cmd.current_dir(self.path())
            .env("PATH", self.path_env()?)
            .env(
                "DATABASE_URL",
                format!("sqlite:///{}", self.path().join("app.db").display()),
            )
            .env("BLACK_CACHE_DIR", self.path().join(".black-cache"))
            .env("RUFF_NO_CACHE", "true")
            .env("NO_COLOR", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("PYTHONNOUSERSITE", "1");
        Ok(cmd)
    }

    fn alembic(&self, args: &[&str]) -> Result<CmdOutput> {
        let out = run(self.command(venv().bin("alembic"))?.args(args))?;
        if !out.status.success() {
            bail!("alembic failed:\n{}", out.report());
        }
        Ok(out)
    }

    fn revisions(&self) -> Result<Vec<PathBuf>> {
        let mut v: Vec<PathBuf> = fs::read_dir(self.path().join("migrations/versions"))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "py"))
            .collect();
        v.sort();
        Ok(v)
    }

    /// `alembic revision <args>`; the file it wrote (after its hooks ran) and its output.
    fn revision(&self, args: &[&str]) -> Result<(PathBuf, CmdOutput)> {
        let before = self.revisions()?;
        let out = self.alembic(&[&["revision"], args].concat())?;
        let new: Vec<PathBuf> = self
            .revisions()?
            .into_iter()
            .filter(|p| !before.contains(p))
            .collect();
        match new.as_slice() {
            [one] => Ok((one.clone(), out)),
            other => bail!(
                "expected one new revision, found {other:?}\n{}",
                out.report()
            ),
        }
    }

    fn tool(&self, args: &[&str]) -> Result<CmdOutput> {
        run(self.command(tool_bin())?.args(args))
    }

    /// (table, column, ON DELETE) of every foreign key in the upgraded SQLite database.
    fn database_rules(&self) -> Result<Vec<(String, String, String)>> {
        self.alembic(&["upgrade", "head"])?;
        let fks: Vec<DbFk> = sqlite_fks(venv(), &self.path().join("app.db"))?;
        let mut rules: Vec<(String, String, String)> = fks
            .into_iter()
            .map(|k| (k.table, k.columns.join(","), k.ondelete))
            .collect();
        rules.sort();
        Ok(rules)
    }
}

fn owned(rules: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    let mut v: Vec<(String, String, String)> = rules
        .iter()
        .map(|(t, c, a)| (t.to_string(), c.to_string(), a.to_string()))
        .collect();
    v.sort();
    v
}

/// The revision Alembic left needs nothing more from the tool.
fn assert_nothing_pending(project: &Project, file: &Path) -> Result<()> {
    let out = project.tool(&["--dry-run", &file.to_string_lossy()])?;
    if out.status.code() != Some(0) || !out.stdout.is_empty() {
        bail!(
            "the hook left work for fix-migrations:\n{}\n--- file ---\n{}",
            out.report(),
            fs::read_to_string(file)?
        );
    }
    Ok(())
}

/// The revision Alembic left is in the formatter's canonical shape.
fn assert_formatted(project: &Project, formatter: &str, file: &Path) -> Result<()> {
    let args: Vec<OsString> = match formatter {
        "black" => vec!["--check".into(), "--diff".into(), file.into()],
        "ruff" => vec![
            "format".into(),
            "--check".into(),
            "--diff".into(),
            file.into(),
        ],
        other => bail!("no formatter {other}"),
    };
    let out = run(project.command(venv().bin(formatter))?.args(&args))?;
    if !out.status.success() {
        bail!("{formatter} would reformat the revision:\n{}", out.report());
    }
    Ok(())
}

/// autogenerate with the given hook chain; the file must be fixed, formatted and migrate right.
fn autogenerate_through(chain: &[&str]) -> Result<()> {
    let project = Project::new("flask-notes")?;
    project.ini_hooks(chain)?;
    let (file, out) = project.revision(&["--autogenerate", "-m", "initial"])?;
    for name in chain {
        let announced = format!("Running post write hook '{name}'");
        if !out.stdout.contains(&announced) && !out.stderr.contains(&announced) {
            bail!("alembic did not run hook {name}:\n{}", out.report());
        }
    }
    // The tool's reasons and summary reach the terminal through Alembic's stderr.
    if !out.stderr.contains("5 foreign keys fixed; 1 file written.")
        || !out
            .stderr
            .contains("notes.author_id -> users.id: ondelete CASCADE")
    {
        bail!(
            "fix-migrations' report missing from alembic's stderr:\n{}",
            out.report()
        );
    }
    let text = fs::read_to_string(&file)?;
    assert_nothing_pending(&project, &file)?;
    for formatter in chain.iter().filter(|n| **n != "fix_migrations") {
        assert_formatted(&project, formatter, &file)?;
    }
    let rules = project.database_rules()?;
    if rules != owned(FLASK_NOTES_RULES) {
        bail!("database rules {rules:?}, expected {FLASK_NOTES_RULES:?}\n--- revision ---\n{text}");
    }
    Ok(())
}

#[test]
fn alembic_ini_exec_hook_fixes_the_autogenerated_revision() {
    autogenerate_through(&["fix_migrations"]).unwrap();
}

#[test]
fn hook_after_black_keeps_black_shape() {
    autogenerate_through(&["black", "fix_migrations"]).unwrap();
}

#[test]
fn hook_before_black() {
    autogenerate_through(&["fix_migrations", "black"]).unwrap();
}

#[test]
fn hook_after_ruff_format_keeps_ruff_shape() {
    autogenerate_through(&["ruff", "fix_migrations"]).unwrap();
}

#[test]
fn hook_before_ruff_format() {
    autogenerate_through(&["fix_migrations", "ruff"]).unwrap();
}

#[test]
fn pyproject_post_write_hooks_table() {
    let project = Project::new("flask-notes").unwrap();
    // Alembic 1.16+ reads [tool.alembic] from pyproject.toml; alembic.ini keeps only logging and
    // the URL. Alembic reads the pyproject hooks only when alembic.ini has no [post_write_hooks].
    let ini = fs::read_to_string(project.path().join("alembic.ini")).unwrap();
    let ini: String = ini
        .lines()
        .filter(|l| {
            !["script_location", "prepend_sys_path", "path_separator"]
                .iter()
                .any(|k| l.starts_with(k))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    fs::write(project.path().join("alembic.ini"), ini).unwrap();
    fs::write(
        project.path().join("pyproject.toml"),
        r#"[tool.alembic]
script_location = "%(here)s/migrations"
prepend_sys_path = ["."]

[[tool.alembic.post_write_hooks]]
name = "fix-migrations"
type = "exec"
executable = "fix-migrations"
options = "--write REVISION_SCRIPT_FILENAME"
"#,
    )
    .unwrap();
    let (file, out) = project
        .revision(&["--autogenerate", "-m", "initial"])
        .unwrap();
    assert!(
        out.stdout
            .contains("Running post write hook 'fix-migrations'"),
        "{}",
        out.report()
    );
    assert!(
        out.stderr.contains("5 foreign keys fixed; 1 file written."),
        "{}",
        out.report()
    );
    assert_nothing_pending(&project, &file).unwrap();
    assert_eq!(project.database_rules().unwrap(), owned(FLASK_NOTES_RULES));
}

#[test]
fn empty_revision_is_a_quiet_no_op() {
    let project = Project::new("flask-notes").unwrap();
    project.ini_hooks(&["fix_migrations"]).unwrap();
    let (first, _) = project
        .revision(&["--autogenerate", "-m", "initial"])
        .unwrap();
    let (empty, out) = project.revision(&["-m", "nothing yet"]).unwrap();
    assert!(
        out.stdout
            .contains("Running post write hook 'fix_migrations'"),
        "{}",
        out.report()
    );
    // No foreign key: nothing written, exit status 0, and no diff printed.
    assert!(
        out.stderr.contains("1 file checked, nothing to change."),
        "{}",
        out.report()
    );
    assert!(!out.stdout.contains("+++ "), "{}", out.report());
    let text = fs::read_to_string(&empty).unwrap();
    assert!(
        text.contains("def upgrade() -> None:\n    \"\"\"Upgrade schema.\"\"\"\n    pass"),
        "{text}"
    );
    assert_nothing_pending(&project, &empty).unwrap();
    // The hook checked only the new file, not the earlier revision.
    assert!(
        !out.stderr
            .contains(&*first.file_name().unwrap().to_string_lossy())
    );
}

#[test]
fn findings_reach_stderr_though_alembic_ignores_the_exit_status() {
    let project = Project::new("flask-notes").unwrap();
    // A model that asks for SET NULL on a NOT NULL column: every delete of a note would fail.
    project
        .append(
            "models.py",
            r#"

class Reminder(db.Model):
    __tablename__ = "reminders"
    id = db.Column(db.Integer, primary_key=True)
    note_id = db.Column(
        db.Integer, db.ForeignKey("notes.id", ondelete="SET NULL"), nullable=False
    )
"#,
        )
        .unwrap();
    project.ini_hooks(&["fix_migrations"]).unwrap();
    let (file, out) = project
        .revision(&["--autogenerate", "-m", "initial"])
        .unwrap();
    // The tool exits 1 (a finding needs a human); Alembic still succeeds, so the finding
    // must be in what the user reads.
    assert!(out.status.success(), "{}", out.report());
    let name = file.file_name().unwrap().to_string_lossy().into_owned();
    let finding = out
        .stderr
        .lines()
        .find(|l| l.contains("finding[set-null-not-null]") && l.contains(&name))
        .unwrap_or_else(|| panic!("no finding for reminders.note_id:\n{}", out.report()));
    assert!(finding.contains("reminders.note_id"), "{}", out.report());
    // The other keys were still fixed in place.
    assert!(
        out.stderr.contains("5 foreign keys fixed"),
        "{}",
        out.report()
    );
    let rerun = project
        .tool(&["--dry-run", &file.to_string_lossy()])
        .unwrap();
    assert_eq!(rerun.status.code(), Some(1), "{}", rerun.report());
    assert!(rerun.stdout.is_empty(), "{}", rerun.report());
}
