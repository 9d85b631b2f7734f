//! A throwaway Alembic project on SQLite, built from the declarative-blog example's env.py and
//! script template (batch mode on SQLite), driven by the venv's real `alembic` and the tool.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::{CmdOutput, manifest_dir, run, sqlite_fks, tool_bin, venv};

/// The example's alembic.ini (its logging sections are what env.py's fileConfig reads) with
/// `settings` added to `[alembic]`.
fn alembic_ini(settings: &str) -> String {
    let example =
        fs::read_to_string(manifest_dir().join("examples/declarative-blog/alembic.ini")).unwrap();
    let with_settings = example.replacen("[alembic]\n", &format!("[alembic]\n{settings}"), 1);
    assert!(settings.is_empty() || with_settings != example);
    with_settings
}

pub struct SqliteProject {
    dir: tempfile::TempDir,
}

impl SqliteProject {
    /// A project named `name`, whose alembic.ini has `settings` (lines) added to `[alembic]`.
    pub fn new(name: &str, settings: &str) -> SqliteProject {
        let dir = tempfile::Builder::new()
            .prefix(&format!("fix-migrations-{name}-"))
            .tempdir()
            .unwrap();
        let example = manifest_dir().join("examples/declarative-blog/migrations");
        let migrations = dir.path().join("migrations");
        fs::create_dir_all(migrations.join("versions")).unwrap();
        for file in ["env.py", "script.py.mako"] {
            fs::copy(example.join(file), migrations.join(file)).unwrap();
        }
        fs::write(dir.path().join("alembic.ini"), alembic_ini(settings)).unwrap();
        SqliteProject { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn models(&self, text: &str) {
        fs::write(self.path().join("models.py"), text).unwrap();
    }

    pub fn alembic(&self, args: &[&str]) -> CmdOutput {
        let out = run(Command::new(venv().bin("alembic"))
            .args(args)
            .current_dir(self.path())
            .env_remove("DATABASE_URL")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("PYTHONNOUSERSITE", "1"))
        .unwrap();
        assert!(out.status.success(), "alembic {args:?}\n{}", out.report());
        out
    }

    pub fn versions(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = fs::read_dir(self.path().join("migrations/versions"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "py"))
            .collect();
        files.sort();
        files
    }

    /// `alembic revision --autogenerate -m MESSAGE`: the one new file.
    pub fn autogenerate(&self, message: &str) -> PathBuf {
        let before = self.versions();
        self.alembic(&["revision", "--autogenerate", "-m", message]);
        let new: Vec<PathBuf> = self
            .versions()
            .into_iter()
            .filter(|p| !before.contains(p))
            .collect();
        assert_eq!(new.len(), 1, "{new:?}");
        new[0].clone()
    }

    /// Each foreign key's ON DELETE rule in the project's app.db as SQLite reports it, by
    /// `table.column[,column]`, sorted.
    pub fn on_delete_rules(&self) -> Vec<(String, String)> {
        let mut rules: Vec<(String, String)> = sqlite_fks(venv(), &self.path().join("app.db"))
            .unwrap()
            .into_iter()
            .map(|fk| {
                (
                    format!("{}.{}", fk.table, fk.columns.join(",")),
                    fk.ondelete,
                )
            })
            .collect();
        rules.sort();
        rules
    }

    pub fn fix(&self) -> (i32, Value) {
        let out = run(Command::new(tool_bin())
            .args(["--write", "--format", "json"])
            .current_dir(self.path())
            .env_remove("DATABASE_URL"))
        .unwrap();
        let json =
            serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}\n{}", out.report()));
        (out.status.code().unwrap_or(-1), json)
    }
}
