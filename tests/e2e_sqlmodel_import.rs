//! End-to-end: a SQLModel project with a `str` field and Alembic's *default* script template.
//! Real `alembic revision --autogenerate` writes `sqlmodel.sql.sqltypes.AutoString()` without
//! `import sqlmodel`, so `alembic upgrade head` fails with NameError; after
//! `fix-migrations --write` it succeeds, on SQLite and PostgreSQL, with the foreign keys fixed
//! too. Uses the harness of tests/support (pinned venv, throwaway PostgreSQL cluster).

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::Value;
use support::{DbFk, manifest_dir, pg_fks, run, shared_cluster, sqlite_fks, tool_bin, venv};

struct Project {
    dir: tempfile::TempDir,
    url: String,
}

impl Project {
    fn alembic(&self, args: &[&str]) -> Result<support::CmdOutput> {
        run(Command::new(venv().bin("alembic"))
            .args(args)
            .current_dir(self.dir.path())
            .env("DATABASE_URL", &self.url)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("PYTHONNOUSERSITE", "1"))
    }

    fn fix(&self, args: &[&str]) -> Result<support::CmdOutput> {
        run(Command::new(tool_bin())
            .args(args)
            .current_dir(self.dir.path()))
    }

    fn migration(&self) -> Result<PathBuf> {
        let versions = self.dir.path().join("migrations/versions");
        let files: Vec<PathBuf> = fs::read_dir(versions)?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "py"))
            .collect();
        match files.as_slice() {
            [one] => Ok(one.clone()),
            other => bail!("expected one migration, found {other:?}"),
        }
    }
}

/// Alembic's own `generic` template, as `alembic init` would copy it.
fn default_template() -> Result<PathBuf> {
    let out = run(Command::new(venv().python()).args([
        "-c",
        "import alembic, os; print(os.path.dirname(alembic.__file__))",
    ]))?;
    let path = Path::new(out.stdout.trim()).join("templates/generic/script.py.mako");
    if !path.is_file() {
        bail!("no default template at {}", path.display());
    }
    Ok(path)
}

fn new_project(url_for: impl FnOnce(&Path) -> String) -> Result<Project> {
    let dir = tempfile::Builder::new()
        .prefix("fix-migrations-e2e-sqlmodel-import-")
        .tempdir()?;
    let example = manifest_dir().join("examples/sqlmodel-shop");
    fs::create_dir_all(dir.path().join("migrations/versions"))?;
    for f in ["alembic.ini", "models.py", "migrations/env.py"] {
        fs::copy(example.join(f), dir.path().join(f)).with_context(|| format!("copying {f}"))?;
    }
    fs::copy(
        default_template()?,
        dir.path().join("migrations/script.py.mako"),
    )?;
    let url = url_for(dir.path());
    Ok(Project { dir, url })
}

fn scenario(project: &Project, fks: impl Fn() -> Result<Vec<DbFk>>) -> Result<()> {
    let generated = project.alembic(&["revision", "--autogenerate", "-m", "initial"])?;
    if !generated.status.success() {
        bail!("autogenerate failed:\n{}", generated.report());
    }
    let migration = project.migration()?;
    let text = fs::read_to_string(&migration)?;
    assert!(
        text.contains("sqlmodel.sql.sqltypes.AutoString()"),
        "a str field is rendered as AutoString:\n{text}"
    );
    assert!(!text.contains("import sqlmodel"), "{text}");

    // The problem is real: the unfixed migration cannot be loaded.
    let broken = project.alembic(&["upgrade", "head"])?;
    assert!(!broken.status.success(), "{}", broken.report());
    assert!(
        broken
            .stderr
            .contains("NameError: name 'sqlmodel' is not defined"),
        "{}",
        broken.report()
    );

    let fixed = project.fix(&["--write", "--format", "json"])?;
    assert_eq!(fixed.status.code(), Some(0), "{}", fixed.report());
    let json: Value = serde_json::from_str(&fixed.stdout).context("tool JSON")?;
    assert_eq!(json["imports"][0]["module"], "sqlmodel", "{json:#}");
    assert_eq!(json["imports"][0]["status"], "fixed");
    assert_eq!(json["summary"]["imports"], 1);
    let written = fs::read_to_string(&migration)?;
    assert!(
        written.contains("import sqlalchemy as sa\nimport sqlmodel\n"),
        "{written}"
    );

    let upgraded = project.alembic(&["upgrade", "head"])?;
    assert!(
        upgraded.status.success(),
        "{}\n{written}",
        upgraded.report()
    );
    let keys = fks()?;
    let rule = |table: &str, column: &str| -> String {
        keys.iter()
            .find(|k| k.table == table && k.columns == [column])
            .map(|k| k.ondelete.clone())
            .unwrap_or_else(|| panic!("no key {table}.{column} in {keys:?}"))
    };
    assert_eq!(rule("product", "category_id"), "SET NULL");
    assert_eq!(rule("orderitem", "order_id"), "CASCADE");
    assert_eq!(rule("review", "product_id"), "CASCADE");
    eprintln!(
        "e2e sqlmodel import: upgrade head succeeded after the fix; {} foreign keys in the database",
        keys.len()
    );

    // Idempotent: a second run changes nothing.
    let again = project.fix(&[])?;
    assert_eq!(again.status.code(), Some(0), "{}", again.report());
    assert_eq!(fs::read_to_string(&migration)?, written);

    let down = project.alembic(&["downgrade", "base"])?;
    assert!(down.status.success(), "{}", down.report());
    Ok(())
}

#[test]
fn sqlmodel_import_added_upgrade_runs_on_sqlite() {
    let project = new_project(|dir| format!("sqlite:///{}", dir.join("app.db").display())).unwrap();
    let db = project.dir.path().join("app.db");
    scenario(&project, || sqlite_fks(venv(), &db)).unwrap();
}

#[test]
fn sqlmodel_import_added_upgrade_runs_on_postgres() {
    if std::env::var_os("FIX_MIGRATIONS_E2E_SKIP_POSTGRES").is_some() {
        eprintln!("skipping: FIX_MIGRATIONS_E2E_SKIP_POSTGRES is set");
        return;
    }
    let cluster = shared_cluster();
    let db = "e2e_sqlmodel_import";
    cluster.create_database(db).unwrap();
    let project = new_project(|_| cluster.url(db)).unwrap();
    scenario(&project, || pg_fks(&cluster, db)).unwrap();
}
