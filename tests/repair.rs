//! End-to-end for `fix-migrations repair` (seed 004): a project whose history created keys with
//! SET NULL / NO ACTION where the policy wants CASCADE / RESTRICT / SET NULL, real Alembic, real
//! SQLite and PostgreSQL.
//!
//! 1. `alembic upgrade head` builds the wrong database; the tool's replay of the history must
//!    equal what the database holds (rules, and names on PostgreSQL).
//! 2. `repair --write`, `alembic upgrade head`: every rule is right (hand-written oracle below).
//! 3. `repair` again: nothing to repair (exit 0).
//! 4. `alembic downgrade -1`: the old rules (and names) exactly; `upgrade head` again.
//! 5. Two autogenerate rounds with unchanged models, whose downgrade() is hand-edited to `pass`
//!    (no mirror: revert pairs must be judged from history), `fix-migrations --write`: no
//!    foreign key operation left in upgrade(), and the rules stay right.

mod support;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use serde_json::Value;
use support::{CmdOutput, DbFk, PgCluster, Venv};

/// (table, column, referent, ON DELETE) as the history leaves them.
const BEFORE: &[(&str, &str, &str, &str)] = &[
    (
        "academy_gallery_materials_attachments",
        "uploaded_material_revision_id",
        "materials",
        "NO ACTION",
    ),
    ("galleries", "cover_id", "files", "SET NULL"),
    ("galleries", "group_id", "groups", "SET NULL"),
    ("galleries", "status_id", "statuses", "SET NULL"),
    ("items", "created_by", "users", "NO ACTION"),
    ("items", "gallery_id", "galleries", "NO ACTION"),
    ("items", "material_id", "materials", "SET NULL"),
    ("users", "role_id", "roles", "NO ACTION"),
];

/// The policy's answer, by hand: models.py's comments give the rule for each.
const AFTER: &[(&str, &str, &str, &str)] = &[
    // nullable
    (
        "academy_gallery_materials_attachments",
        "uploaded_material_revision_id",
        "materials",
        "SET NULL",
    ),
    // nullable, already right
    ("galleries", "cover_id", "files", "SET NULL"),
    // model ondelete="CASCADE"
    ("galleries", "group_id", "groups", "CASCADE"),
    // model ondelete="RESTRICT"
    ("galleries", "status_id", "statuses", "RESTRICT"),
    // audit column, nullable
    ("items", "created_by", "users", "SET NULL"),
    // NOT NULL
    ("items", "gallery_id", "galleries", "CASCADE"),
    // model ondelete="CASCADE"
    ("items", "material_id", "materials", "CASCADE"),
    // lookup table roles
    ("users", "role_id", "roles", "RESTRICT"),
];

/// PostgreSQL's names for the keys the history created without one; albums was renamed to
/// galleries, the names stay; the long one is cut to 63 bytes the way PostgreSQL cuts it.
const PG_NAMES: &[(&str, &str, &str)] = &[
    (
        "academy_gallery_materials_attachments",
        "uploaded_material_revision_id",
        "academy_gallery_materials_att_uploaded_material_revision_i_fkey",
    ),
    ("galleries", "cover_id", "albums_cover_fk"),
    ("galleries", "group_id", "albums_group_id_fkey"),
    ("galleries", "status_id", "albums_status_id_fkey"),
    ("items", "created_by", "items_created_by_fkey"),
    ("items", "gallery_id", "items_gallery_id_fkey"),
    ("items", "material_id", "items_material_id_fkey"),
    ("users", "role_id", "users_role_id_fkey"),
];

struct Project {
    dir: tempfile::TempDir,
    venv: &'static Venv,
    url: String,
    pg: Option<(Arc<PgCluster>, String)>,
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

impl Project {
    /// `name`: the PostgreSQL database, one per test (tests run in parallel on one cluster).
    fn new(postgres: bool, name: &str) -> Project {
        let venv = support::venv();
        let dir = tempfile::Builder::new()
            .prefix("fix-migrations-repair-")
            .tempdir()
            .unwrap();
        copy_tree(
            &support::manifest_dir().join("tests/fixtures/repair"),
            dir.path(),
        );
        let (pg, url) = if postgres {
            let cluster = support::shared_cluster();
            cluster.create_database(name).unwrap();
            let url = cluster.url(name);
            (Some((cluster, name.to_string())), url)
        } else {
            let url = format!("sqlite:///{}", dir.path().join("app.db").display());
            (None, url)
        };
        Project { dir, venv, url, pg }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn alembic(&self, args: &[&str]) -> CmdOutput {
        support::run_ok(
            Command::new(self.venv.bin("alembic"))
                .args(args)
                .current_dir(self.path())
                .env("DATABASE_URL", &self.url)
                .env("PYTHONDONTWRITEBYTECODE", "1"),
        )
        .unwrap_or_else(|e| panic!("{e:#}"))
    }

    fn tool(&self, args: &[&str]) -> CmdOutput {
        support::run(
            Command::new(support::tool_bin())
                .args(args)
                .current_dir(self.path())
                .env("DATABASE_URL", &self.url),
        )
        .unwrap()
    }

    fn fks(&self) -> Vec<DbFk> {
        match &self.pg {
            Some((cluster, db)) => support::pg_fks(cluster, db).unwrap(),
            None => support::sqlite_fks(self.venv, &self.path().join("app.db")).unwrap(),
        }
    }

    fn versions(&self) -> BTreeSet<PathBuf> {
        fs::read_dir(self.path().join("migrations/versions"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "py"))
            .collect()
    }

    fn new_version(&self, before: &BTreeSet<PathBuf>) -> PathBuf {
        let new: Vec<PathBuf> = self.versions().difference(before).cloned().collect();
        assert_eq!(new.len(), 1, "expected one new revision file: {new:?}");
        new[0].clone()
    }
}

/// (table, column, referent, ON DELETE, ON UPDATE) of every single-column key.
fn rules(fks: &[DbFk]) -> BTreeSet<(String, String, String, String, String)> {
    fks.iter()
        .map(|f| {
            (
                f.table.clone(),
                f.columns.join(","),
                f.referent_table.clone(),
                f.ondelete.clone(),
                f.onupdate.clone(),
            )
        })
        .collect()
}

fn expected(
    table: &[(&str, &str, &str, &str)],
) -> BTreeSet<(String, String, String, String, String)> {
    table
        .iter()
        .map(|(t, c, r, d)| {
            (
                t.to_string(),
                c.to_string(),
                r.to_string(),
                d.to_string(),
                "NO ACTION".to_string(),
            )
        })
        .collect()
}

fn names(fks: &[DbFk]) -> BTreeSet<(String, String, String)> {
    fks.iter()
        .map(|f| {
            (
                f.table.clone(),
                f.columns.join(","),
                f.name.clone().unwrap_or_default(),
            )
        })
        .collect()
}

fn scenario(postgres: bool) {
    if postgres && std::env::var_os("FIX_MIGRATIONS_E2E_SKIP_POSTGRES").is_some() {
        eprintln!("skipping the PostgreSQL half: FIX_MIGRATIONS_E2E_SKIP_POSTGRES is set");
        return;
    }
    let db = if postgres { "PostgreSQL" } else { "SQLite" };
    let project = Project::new(postgres, "repair_e2e");

    // 1. The wrong database, and the replay of its history.
    project.alembic(&["upgrade", "head"]);
    let before = project.fks();
    assert_eq!(rules(&before), expected(BEFORE), "{db}: history's database");
    if postgres {
        let want: BTreeSet<_> = PG_NAMES
            .iter()
            .map(|(t, c, n)| (t.to_string(), c.to_string(), n.to_string()))
            .collect();
        assert_eq!(names(&before), want, "{db}: PostgreSQL's names");
    }
    let dry = project.tool(&["repair", "--format", "json"]);
    assert_eq!(dry.status.code(), Some(1), "{}", dry.report());
    let json: Value = serde_json::from_str(&dry.stdout).unwrap();
    let replayed: BTreeSet<_> = json["foreign_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            let list = |v: &Value| {
                v.as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_str().unwrap())
                    .collect::<Vec<_>>()
                    .join(",")
            };
            let action = |v: &Value| v.as_str().unwrap_or("NO ACTION").to_string();
            (
                k["table"].as_str().unwrap().to_string(),
                list(&k["columns"]),
                k["referent_table"].as_str().unwrap().to_string(),
                action(&k["ondelete"]),
                action(&k["onupdate"]),
            )
        })
        .collect();
    assert_eq!(replayed, rules(&before), "{db}: replay vs database");
    if postgres {
        let replayed_names: BTreeSet<_> = json["foreign_keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| {
                (
                    k["table"].as_str().unwrap().to_string(),
                    k["columns"][0].as_str().unwrap().to_string(),
                    k["name"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        assert_eq!(replayed_names, names(&before), "{db}: replayed names");
    }
    assert_eq!(json["summary"]["repair"], 7, "{}", dry.stdout);
    assert_eq!(json["unreadable"].as_array().unwrap().len(), 1);
    assert_eq!(json["batch"], Value::Bool(!postgres));
    eprintln!(
        "repair e2e {db}: replay equals the database ({} keys); {} to repair",
        before.len(),
        json["summary"]["repair"]
    );

    // 2. Write and apply the repair.
    let versions = project.versions();
    let wrote = project.tool(&["repair", "--write"]);
    assert_eq!(wrote.status.code(), Some(0), "{}", wrote.report());
    let repair_file = project.new_version(&versions);
    let text = fs::read_to_string(&repair_file).unwrap();
    let name = repair_file
        .file_name()
        .unwrap()
        .to_string_lossy()
        .to_string();
    assert!(
        name[..12].chars().all(|c| c.is_ascii_hexdigit())
            && name[12..] == *"_repair_foreign_key_rules.py",
        "{name}"
    );
    assert!(text.contains("down_revision: Union[str, Sequence[str], None] = '4d0000000005'"));
    assert!(text.contains(&format!("Revision ID: {}\n", &name[..12])));
    assert_eq!(text.contains("batch_alter_table"), !postgres, "{text}");
    assert_eq!(
        text.contains("naming_convention={'fk': '%(table_name)s_%(column_0_N_name)s_fkey'}"),
        !postgres,
        "{text}"
    );
    project.alembic(&["upgrade", "head"]);
    let after = project.fks();
    assert_eq!(rules(&after), expected(AFTER), "{db}: after repair\n{text}");
    eprintln!(
        "repair e2e {db}: after `repair --write` + `alembic upgrade head`: {} of {} rules right",
        rules(&after).intersection(&expected(AFTER)).count(),
        AFTER.len()
    );

    // 3. Nothing left to repair.
    let again = project.tool(&["repair"]);
    assert_eq!(again.status.code(), Some(0), "{}", again.report());
    assert!(
        again.stderr.contains("nothing to repair"),
        "{}",
        again.stderr
    );
    assert!(again.stdout.is_empty(), "{}", again.stdout);

    // 4. downgrade -1 restores the old rules exactly.
    project.alembic(&["downgrade", "-1"]);
    let restored = project.fks();
    assert_eq!(rules(&restored), rules(&before), "{db}: after downgrade -1");
    if postgres {
        assert_eq!(
            names(&restored),
            names(&before),
            "{db}: names after downgrade"
        );
    }
    eprintln!(
        "repair e2e {db}: `alembic downgrade -1` restored all {} old rules",
        before.len()
    );
    project.alembic(&["upgrade", "head"]);

    // 5. Autogenerate with unchanged models; downgrade() hand-edited away (no mirror).
    for round in 2..=3 {
        let versions = project.versions();
        project.alembic(&["revision", "--autogenerate", "-m", &format!("r{round}")]);
        let file = project.new_version(&versions);
        let generated = fs::read_to_string(&file).unwrap();
        let at = generated.find("def downgrade").unwrap();
        let edited = format!(
            "{}def downgrade() -> None:\n    \"\"\"Downgrade schema.\"\"\"\n    pass\n",
            &generated[..at]
        );
        fs::write(&file, &edited).unwrap();
        let fixed = project.tool(&["--write"]);
        assert_eq!(fixed.status.code(), Some(0), "{}", fixed.report());
        let text = fs::read_to_string(&file).unwrap();
        let left = support::fk_operations(support::function_body(&text, "upgrade"));
        assert!(
            left.is_empty(),
            "{db} round {round}: foreign key operations left: {left:?}\n{text}\n{}",
            fixed.report()
        );
        project.alembic(&["upgrade", "head"]);
        assert_eq!(
            rules(&project.fks()),
            expected(AFTER),
            "{db} round {round}: rules after upgrade"
        );
        let ops = support::fk_operations(support::function_body(&generated, "upgrade")).len();
        eprintln!(
            "repair e2e {db} round {round}: autogenerate wrote {ops} foreign key operations, none left after fix-migrations; rules right"
        );
    }
}

#[test]
fn repair_sqlite() {
    scenario(false);
}

#[test]
fn repair_postgres() {
    scenario(true);
}

/// Part 4: a downgrade() `create_foreign_key` that puts back a key upgrade() dropped gets the
/// rules history says the key had (SET NULL), not NO ACTION as hand-written, nor the policy's.
fn downgrade_scenario(postgres: bool) {
    if postgres && std::env::var_os("FIX_MIGRATIONS_E2E_SKIP_POSTGRES").is_some() {
        return;
    }
    let db = if postgres { "PostgreSQL" } else { "SQLite" };
    let project = Project::new(postgres, "repair_downgrade_e2e");
    let revision = project
        .path()
        .join("migrations/versions/5e0000000006_material_cascade.py");
    let original = fs::read_to_string(
        project
            .path()
            .join("migrations/versions/3c0000000004_merge.py"),
    )
    .unwrap()
    .replace("3c0000000004", "5e0000000006")
    .replace("('2a0000000002', '2b0000000003')", "'4d0000000005'")
    .replace("2a0000000002, 2b0000000003", "4d0000000005")
    .replace("\"\"\"merge", "\"\"\"material cascade");
    let at = original.find("def upgrade").unwrap();
    let text = format!(
        "{}def upgrade() -> None:\n    with op.batch_alter_table('items', schema=None) as batch_op:\n        batch_op.drop_constraint('items_material_id_fkey', type_='foreignkey')\n        batch_op.create_foreign_key('items_material_id_fkey', 'materials', ['material_id'], ['id'], ondelete='CASCADE')\n\n\ndef downgrade() -> None:\n    with op.batch_alter_table('items', schema=None) as batch_op:\n        batch_op.drop_constraint('items_material_id_fkey', type_='foreignkey')\n        batch_op.create_foreign_key('items_material_id_fkey', 'materials', ['material_id'], ['id'])\n",
        &original[..at]
    );
    fs::write(&revision, &text).unwrap();

    let fixed = project.tool(&["--write"]);
    assert_eq!(fixed.status.code(), Some(0), "{}", fixed.report());
    let after = fs::read_to_string(&revision).unwrap();
    let downgrade = support::function_body(&after, "downgrade");
    assert!(
        downgrade.contains(
            "batch_op.create_foreign_key('items_material_id_fkey', 'materials', ['material_id'], ['id'], ondelete='SET NULL')"
        ),
        "{after}\n{}",
        fixed.report()
    );
    assert!(
        fixed
            .stderr
            .contains("downgrade() restores the rules the key had before (history: migrations/versions/4d0000000005_items.py:35)"),
        "{}",
        fixed.stderr
    );
    // Everything but that one keyword is byte-identical.
    assert_eq!(
        after.replacen(", ondelete='SET NULL')\n", ")\n", 1).len(),
        text.len()
    );

    project.alembic(&["upgrade", "head"]);
    let material = |fks: &[DbFk]| {
        fks.iter()
            .find(|f| f.table == "items" && f.columns == ["material_id"])
            .map(|f| f.ondelete.clone())
    };
    assert_eq!(material(&project.fks()).as_deref(), Some("CASCADE"), "{db}");
    project.alembic(&["downgrade", "-1"]);
    assert_eq!(
        material(&project.fks()).as_deref(),
        Some("SET NULL"),
        "{db}"
    );
    eprintln!("downgrade e2e {db}: downgrade -1 put back ON DELETE SET NULL from history");
}

#[test]
fn downgrade_restores_history_rules_sqlite() {
    downgrade_scenario(false);
}

#[test]
fn downgrade_restores_history_rules_postgres() {
    downgrade_scenario(true);
}
