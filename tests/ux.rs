//! Fitting a Python team's tooling: settings errors and `--show-config`, suppression comments,
//! SARIF output, and the `import sqlmodel` that Alembic's default template leaves out.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use fix_migrations::config::Config;
use fix_migrations::fix::{self, Status};
use fix_migrations::migrations;
use fix_migrations::models::{self, Schema};
use fix_migrations::parse::{self, SourceFile};
use fix_migrations::report;

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fix-migrations"));
    cmd.env_remove("NO_COLOR").env_remove("CLICOLOR_FORCE");
    cmd
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn run_in(dir: &Path, args: &[&str]) -> Output {
    bin().current_dir(dir).args(args).output().unwrap()
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

/// A copy of a bundled example in a temp dir, so --write can't touch the repo.
fn example(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join(name);
    copy_dir(&manifest().join("examples").join(name), &root);
    (dir, root)
}

fn the_migration(root: &Path) -> PathBuf {
    let versions = root.join("migrations/versions");
    let mut files: Vec<PathBuf> = std::fs::read_dir(versions)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "py"))
        .collect();
    files.sort();
    files.pop().unwrap()
}

macro_rules! snapshot {
    ($name:expr, $value:expr) => {
        insta::with_settings!({snapshot_path => "../snapshots", prepend_module_to_snapshot => false}, {
            insta::assert_snapshot!($name, $value);
        });
    };
}

// ---- the library on fixture migrations -----------------------------------------------------

fn shapes_schema() -> Schema {
    let path = manifest().join("tests/fixtures/shapes/models.py");
    let file = parse::parse_source(&path, std::fs::read(&path).unwrap()).unwrap();
    models::read_models(&[file])
}

fn load(name: &str) -> SourceFile {
    let path = manifest().join("tests/fixtures/ux").join(name);
    parse::parse_source(Path::new(name), std::fs::read(path).unwrap()).unwrap()
}

/// (plan, fixed text, what the user reads: diff, key lines, notes, suppressed, findings, notes)
fn run_fixture(file: &SourceFile, schema: &Schema) -> (fix::FilePlan, String, String) {
    let name = file.path.display().to_string();
    let plan = fix::plan(file, &migrations::scan(file), schema, &Config::default());
    let fixed = fix::fixed_text(file, plan.edits.clone()).unwrap();
    let mut out = report::unified_diff(&file.text, &fixed, &name).replace('\r', "␍");
    for key in &plan.keys {
        out.push_str(&report::key_line_plain(&name, key));
        out.push('\n');
    }
    for (line, note) in &plan.notes {
        out.push_str(&format!("{name}:{line}: {note}\n"));
    }
    for (line, what) in &plan.suppressed {
        out.push_str(&format!("{name}:{line}: suppressed: {what}\n"));
    }
    for f in &plan.findings {
        out.push_str(&format!(
            "{name}:{}: finding[{}] {}\n",
            f.line, f.code, f.message
        ));
    }
    for n in &plan.notices {
        out.push_str(&format!(
            "{name}:{}: note[{}] {}\n",
            n.line, n.code, n.message
        ));
    }
    (plan, fixed, out)
}

fn second_run_changes_nothing(name: &str, fixed: &str, schema: &Schema) {
    let file = parse::parse_text(Path::new(name), fixed.to_string()).unwrap();
    let plan = fix::plan(&file, &migrations::scan(&file), schema, &Config::default());
    let again = fix::fixed_text(&file, plan.edits).unwrap();
    assert_eq!(again, fixed, "{name}: a second run changed the file again");
}

#[test]
fn suppressed_keys_get_no_edit_and_no_finding() {
    let schema = shapes_schema();
    let file = load("suppressions.py");
    let (plan, fixed, out) = run_fixture(&file, &schema);
    second_run_changes_nothing("suppressions.py", &fixed, &schema);
    let status_at = |line: usize| {
        plan.keys
            .iter()
            .find(|k| k.line == line)
            .map(|k| k.status)
            .unwrap()
    };
    // On the line, on the line above, over a finding, over an unnamed create.
    assert_eq!(status_at(16), Status::Suppressed);
    assert_eq!(status_at(18), Status::Suppressed);
    assert_eq!(status_at(19), Status::Suppressed);
    assert_eq!(status_at(22), Status::Suppressed);
    // The revert pair whose create is covered stays in the file, whole.
    assert_eq!(status_at(25), Status::Suppressed);
    assert!(fixed.contains(
        "    op.drop_constraint(op.f('notes_author_id_fkey'), 'notes', type_='foreignkey')\n"
    ));
    assert!(
        fixed
            .contains("    op.create_foreign_key(None, 'notes', 'users', ['author_id'], ['id'])\n")
    );
    assert!(fixed.contains("    op.create_foreign_key(None, 'notes', 'users', ['reviewer_id'], ['id'])  # fix-migrations: ignore\n"));
    // The uncovered unnamed key is still named, and its drop in downgrade() with it.
    assert!(fixed.contains("op.create_foreign_key('notes_created_by_fkey', 'notes', 'users', ['created_by'], ['id'], ondelete='SET NULL')"));
    assert!(plan.findings.is_empty(), "{:?}", plan.findings);
    let codes: Vec<(usize, &str)> = plan.notices.iter().map(|n| (n.line, n.code)).collect();
    assert_eq!(
        codes,
        vec![(27, "unused-suppression"), (29, "unknown-suppression")]
    );
    snapshot!("ux__suppressions", out);
}

#[test]
fn ignore_file_suppresses_everything_and_reports_when_unused() {
    let schema = shapes_schema();
    let (plan, fixed, out) = run_fixture(&load("ignore_file.py"), &schema);
    assert_eq!(
        fixed,
        load("ignore_file.py").text,
        "ignore-file: nothing edited"
    );
    assert!(plan.notices.is_empty(), "{:?}", plan.notices);
    assert_eq!(plan.imports.len(), 1);
    assert_eq!(plan.imports[0].status, Status::Suppressed);
    let (unused, _, unused_out) = run_fixture(&load("ignore_file_unused.py"), &schema);
    assert_eq!(unused.notices.len(), 1);
    assert_eq!(unused.notices[0].line, 5);
    snapshot!("ux__ignore_file", format!("{out}---\n{unused_out}"));
}

// ---- import sqlmodel ----------------------------------------------------------------------

fn sqlmodel_schema() -> Schema {
    let path = manifest().join("examples/sqlmodel-shop/models.py");
    let file = parse::parse_source(&path, std::fs::read(&path).unwrap()).unwrap();
    models::read_models(&[file])
}

#[test]
fn autogenerated_sqlmodel_migration_gets_its_import() {
    // Written by `alembic revision --autogenerate` with Alembic's default script template for
    // examples/sqlmodel-shop: it uses sqlmodel.sql.sqltypes.AutoString() and never imports it.
    let schema = sqlmodel_schema();
    let file = load("sqlmodel_autogenerated.py");
    assert!(!file.text.contains("import sqlmodel"));
    let (plan, fixed, out) = run_fixture(&file, &schema);
    assert!(
        fixed.contains("from alembic import op\nimport sqlalchemy as sa\nimport sqlmodel\n\n\n# revision identifiers"),
        "{fixed}"
    );
    assert_eq!(plan.imports.len(), 1);
    assert_eq!(plan.imports[0].line, 26);
    assert_eq!(plan.imports[0].after_line, 11);
    assert_eq!(plan.imports[0].used, "sqlmodel.sql.sqltypes.AutoString");
    second_run_changes_nothing("sqlmodel_autogenerated.py", &fixed, &schema);
    snapshot!("ux__sqlmodel_import", out);
}

#[test]
fn sqlmodel_import_keeps_crlf() {
    let schema = sqlmodel_schema();
    let original = load("sqlmodel_autogenerated.py").text.replace('\n', "\r\n");
    let file = parse::parse_text(Path::new("crlf.py"), original.clone()).unwrap();
    let (_, fixed, _) = run_fixture(&file, &schema);
    assert!(fixed.contains("import sqlalchemy as sa\r\nimport sqlmodel\r\n"));
    assert_eq!(
        fixed.matches('\n').count(),
        fixed.matches("\r\n").count(),
        "a bare LF crept in"
    );
    second_run_changes_nothing("crlf.py", &fixed, &schema);
}

#[test]
fn sqlmodel_import_only_when_the_name_is_unbound() {
    let schema = sqlmodel_schema();
    let plan_of = |src: &str| {
        let file = parse::parse_text(Path::new("m.py"), src.to_string()).unwrap();
        let plan = fix::plan(&file, &migrations::scan(&file), &schema, &Config::default());
        let fixed = fix::fixed_text(&file, plan.edits.clone()).unwrap();
        (plan.imports.len(), fixed)
    };
    let uses = "def upgrade():\n    op.add_column('t', sa.Column('n', sqlmodel.sql.sqltypes.AutoString()))\n";
    // Bound by an import (plain or aliased), or by anything else: nothing to add.
    for bound in [
        "import sqlmodel\n",
        "import sqlmodel.sql.sqltypes\n",
        "sqlmodel = __import__('sqlmodel')\n",
    ] {
        let (n, _) = plan_of(&format!("from alembic import op\n{bound}{uses}"));
        assert_eq!(n, 0, "{bound}");
    }
    // `from sqlmodel import X` does not bind the name `sqlmodel`.
    let (n, fixed) = plan_of(&format!(
        "\"\"\"doc\"\"\"\nfrom alembic import op\nfrom sqlmodel import SQLModel  # models\nx = 1\n{uses}"
    ));
    assert_eq!(n, 1);
    assert!(fixed.starts_with("\"\"\"doc\"\"\"\nfrom alembic import op\nfrom sqlmodel import SQLModel  # models\nimport sqlmodel\nx = 1\n"), "{fixed}");
    // No imports at all: after the docstring.
    let (_, fixed) = plan_of(&format!("\"\"\"doc\"\"\"\n{uses}"));
    assert!(
        fixed.starts_with("\"\"\"doc\"\"\"\nimport sqlmodel\ndef upgrade"),
        "{fixed}"
    );
}

#[test]
fn write_adds_the_import_and_a_second_run_is_clean() {
    let (_tmp, root) = example("sqlmodel-shop");
    let migration = the_migration(&root);
    let without: String = std::fs::read_to_string(&migration)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("import sqlmodel"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&migration, &without).unwrap();
    let out = run_in(&root, &["--write"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("1 missing import added"),
        "summary names the import: {stderr}"
    );
    let written = std::fs::read_to_string(&migration).unwrap();
    assert!(written.contains("import sqlalchemy as sa\nimport sqlmodel\n"));
    let again = run_in(&root, &[]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stderr));
    assert_eq!(std::fs::read_to_string(&migration).unwrap(), written);
}

// ---- settings ------------------------------------------------------------------------------

#[test]
fn config_errors_name_file_line_and_the_nearest_valid_value() {
    let cases: &[(&str, &str)] = &[
        (
            "unknown key",
            "[tool.black]\nline-length = 100\n\n[tool.fix-migrations]\nnullable-on-delete = \"SET NULL\"\n",
        ),
        (
            "misspelled action",
            "[tool.fix-migrations]\nnot-null-ondelete = \"CASCAED\"\n",
        ),
        (
            "bad rule glob",
            "[tool.fix-migrations.rules]\n\"notes.author_id\" = \"CASCADE\"\n\"notes.[author\" = \"CASCADE\"\n",
        ),
        (
            "rule with an unknown key",
            "[tool.fix-migrations.rules]\n\"*.created_by\" = { on_delete = \"SET NULL\" }\n",
        ),
        (
            "wrong type",
            "[tool.fix-migrations]\naudit-columns = \"created_by\"\n",
        ),
        (
            "bad model glob",
            "[tool.fix-migrations]\nmodels = [\"app/**models/*.py\"]\n",
        ),
    ];
    let mut out = String::new();
    for (what, pyproject) in cases {
        let (_tmp, root) = example("flask-notes");
        let migration = the_migration(&root);
        let before = std::fs::read(&migration).unwrap();
        std::fs::write(root.join("pyproject.toml"), pyproject).unwrap();
        let result = run_in(&root, &[]);
        assert_eq!(result.status.code(), Some(2), "{what}");
        assert_eq!(text(&result.stdout), "", "{what}");
        assert_eq!(std::fs::read(&migration).unwrap(), before, "{what}");
        let shown = run_in(&root, &["--show-config"]);
        assert_eq!(
            shown.stderr, result.stderr,
            "{what}: --show-config reads the same"
        );
        out.push_str(&format!("# {what}\n{}", text(&result.stderr)));
    }
    snapshot!("ux__config_errors", out);
}

#[test]
fn show_config_lists_every_setting_and_its_source() {
    let (_tmp, root) = example("typed-lookups");
    std::fs::write(
        root.join("pyproject.toml"),
        "[project]\nname = \"shop\"\n\n[tool.fix-migrations]\nnullable-ondelete = \"restrict\"\naudit-columns = [\"*_by\"]\n\n[tool.fix-migrations.rules]\n\"notes.author_id\" = \"CASCADE\"\n\"*.created_by\" = { ondelete = \"SET NULL\", onupdate = \"CASCADE\" }\n",
    )
    .unwrap();
    std::fs::write(
        root.join("custom.toml"),
        "not-null-ondelete = \"RESTRICT\"\n",
    )
    .unwrap();
    let from_pyproject = run_in(&root, &["--show-config"]);
    assert_eq!(from_pyproject.status.code(), Some(0));
    let explicit = run_in(
        &root,
        &[
            "--show-config",
            "--config",
            "custom.toml",
            "--models",
            "app/*.py",
        ],
    );
    assert_eq!(explicit.status.code(), Some(0));
    let json = run_in(&root, &["--show-config", "--format", "json"]);
    assert_eq!(json.status.code(), Some(0));
    let parsed: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(parsed["config_file"], "pyproject.toml");
    let settings = parsed["settings"].as_array().unwrap();
    let find = |key: &str| settings.iter().find(|s| s["key"] == key).unwrap();
    assert_eq!(find("nullable-ondelete")["value"], "RESTRICT");
    assert_eq!(find("nullable-ondelete")["source"], "pyproject.toml:5");
    assert_eq!(
        find("rules.\"*.created_by\"")["value"]["onupdate"],
        "CASCADE"
    );
    assert_eq!(find("lookup-tables")["source"], "default");
    // Every documented top-level key is listed.
    for key in fix_migrations::config::KEYS
        .iter()
        .filter(|k| !matches!(**k, "rules" | "referents"))
    {
        assert!(settings.iter().any(|s| s["key"] == *key), "{key}");
    }
    snapshot!(
        "ux__show_config",
        format!(
            "$ fix-migrations --show-config\n{}\n$ fix-migrations --show-config --config custom.toml --models 'app/*.py'\n{}\n$ fix-migrations --show-config --format json\n{}",
            text(&from_pyproject.stdout),
            text(&explicit.stdout),
            text(&json.stdout)
        )
    );
}

#[test]
fn every_config_key_is_documented_in_the_readme() {
    let readme = std::fs::read_to_string(manifest().join("README.md")).unwrap();
    for key in fix_migrations::config::KEYS {
        assert!(
            readme.contains(&format!("`{key}`")),
            "README does not document `{key}`"
        );
    }
}

#[test]
fn every_finding_code_is_documented_in_the_readme() {
    let readme = std::fs::read_to_string(manifest().join("README.md")).unwrap();
    for (code, _, _) in fix_migrations::sarif::RULES {
        assert!(
            readme.contains(&format!("`{code}`")),
            "README does not document `{code}`"
        );
    }
}

// ---- SARIF ---------------------------------------------------------------------------------

/// The sqlmodel-shop example with its `import sqlmodel` removed, one suppressed key and one
/// unused suppression: every kind of result in one run.
fn sarif_run() -> (tempfile::TempDir, PathBuf, serde_json::Value, String) {
    let (tmp, root) = example("sqlmodel-shop");
    let migration = the_migration(&root);
    let edited: String = std::fs::read_to_string(&migration)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("import sqlmodel"))
        .map(|l| {
            let l = l.replace(
                "['category.id'], ),",
                "['category.id'], ),  # fix-migrations: ignore  the app clears it",
            );
            if l.contains("['customer.id'], ondelete='CASCADE'),") {
                format!("{l}  # fix-migrations: ignore\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(&migration, edited).unwrap();
    let out = run_in(&root, &["--format", "sarif"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    (tmp, root, json, stdout)
}

#[test]
fn sarif_validates_against_the_official_schema() {
    let (_tmp, _root, sarif, _) = sarif_run();
    let mut schema: serde_json::Value = serde_json::from_slice(
        &std::fs::read(manifest().join("tests/fixtures/sarif/sarif-schema-2.1.0.json")).unwrap(),
    )
    .unwrap();
    // The official 2.1.0 schema's `language` patterns have a stray `]`
    // (`^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$`), which the draft-07 meta-schema rejects as a
    // regex. They are meant as language tags; our output never sets `language`.
    fn fix_language_patterns(value: &mut serde_json::Value) -> usize {
        match value {
            serde_json::Value::String(s) if s == "^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$" => {
                *s = "^[a-zA-Z]{2}(-[a-zA-Z]{2})?$".into();
                1
            }
            serde_json::Value::Object(map) => map.values_mut().map(fix_language_patterns).sum(),
            serde_json::Value::Array(items) => items.iter_mut().map(fix_language_patterns).sum(),
            _ => 0,
        }
    }
    assert!(fix_language_patterns(&mut schema) > 0);
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&sarif)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    // The validator does reject a broken log.
    let mut broken = sarif.clone();
    broken["version"] = "2.0.0".into();
    broken["runs"][0]["results"][0]["level"] = "fatal".into();
    assert_eq!(validator.iter_errors(&broken).count(), 2);
    // The schema makes little required; what code scanning needs is asserted here.
    assert_eq!(sarif["version"], "2.1.0");
    assert!(sarif["$schema"].as_str().unwrap().contains("sarif-2.1.0"));
    let run = &sarif["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "fix-migrations");
    let rules: Vec<&str> = run["tool"]["driver"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    let results = run["results"].as_array().unwrap();
    assert!(!results.is_empty());
    for result in results {
        let rule = result["ruleId"].as_str().unwrap();
        let index = result["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[index], rule);
        assert!(!result["message"]["text"].as_str().unwrap().is_empty());
        let location = &result["locations"][0]["physicalLocation"];
        assert_eq!(
            location["artifactLocation"]["uri"],
            "migrations/versions/bb8db577b4f2_initial.py"
        );
        assert_eq!(location["artifactLocation"]["uriBaseId"], "PROJECTROOT");
        assert!(location["region"]["startLine"].as_u64().unwrap() > 0);
    }
    let by_rule = |rule: &str| -> Vec<&serde_json::Value> {
        results.iter().filter(|r| r["ruleId"] == rule).collect()
    };
    assert_eq!(by_rule("fk-ondelete").len(), 5, "4 to fix and 1 suppressed");
    assert_eq!(by_rule("missing-import").len(), 1);
    assert_eq!(by_rule("unused-suppression").len(), 1);
    let suppressed: Vec<_> = results
        .iter()
        .filter(|r| r["suppressions"].is_array())
        .collect();
    assert_eq!(suppressed.len(), 1);
    assert_eq!(suppressed[0]["suppressions"][0]["kind"], "inSource");
}

#[test]
fn sarif_fixes_rebuild_the_fixed_file() {
    let (_tmp, root, sarif, stdout) = sarif_run();
    let migration = the_migration(&root);
    let original = std::fs::read(&migration).unwrap();
    // Apply every fix's byte replacements, back to front, and compare with --write's result.
    let mut replacements: Vec<(usize, usize, String)> = vec![];
    for result in sarif["runs"][0]["results"].as_array().unwrap() {
        for fix in result["fixes"].as_array().into_iter().flatten() {
            for change in fix["artifactChanges"].as_array().unwrap() {
                for r in change["replacements"].as_array().unwrap() {
                    replacements.push((
                        r["deletedRegion"]["byteOffset"].as_u64().unwrap() as usize,
                        r["deletedRegion"]["byteLength"].as_u64().unwrap() as usize,
                        r["insertedContent"]["text"].as_str().unwrap().to_string(),
                    ));
                }
            }
        }
    }
    replacements.sort_by_key(|r| std::cmp::Reverse(r.0));
    let mut rebuilt = original.clone();
    for (offset, length, content) in replacements {
        rebuilt.splice(offset..offset + length, content.bytes());
    }
    let out = run_in(&root, &["--write"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&rebuilt), std::fs::read_to_string(&migration).unwrap());
    let root_uri = format!("file://{}/", root.display());
    snapshot!("ux__sarif", stdout.replace(&root_uri, "file:///<project>/"));
}
