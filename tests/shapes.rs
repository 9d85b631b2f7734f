//! Every foreign key shape Alembic and people write, through the whole pipeline: the diff the
//! user sees and the reason line for each key, snapshotted per fixture file.

use std::path::{Path, PathBuf};

use fix_migrations::config::Config;
use fix_migrations::fix;
use fix_migrations::keyset::{ExistingKey, KeySet};
use fix_migrations::migrations;
use fix_migrations::models::{self, Schema};
use fix_migrations::parse::{self, SourceFile};
use fix_migrations::report;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/shapes")
}

fn schema() -> Schema {
    let path = fixtures().join("models.py");
    let file = parse::parse_source(&path, std::fs::read(&path).unwrap()).unwrap();
    models::read_models(&[file])
}

fn load(name: &str) -> SourceFile {
    let path = fixtures().join("migrations").join(name);
    parse::parse_source(Path::new(name), std::fs::read(path).unwrap()).unwrap()
}

/// (fixed text, what the user reads: diff + one line per key + notes + findings)
fn run(name: &str, config: &Config) -> (String, String) {
    let file = load(name);
    let schema = schema();
    let plan = fix::plan(&file, &migrations::scan(&file), &schema, config);
    let fixed = fix::fixed_text(&file, plan.edits.clone()).unwrap();
    let mut out = report::unified_diff(&file.text, &fixed, name).replace('\r', "␍");
    for key in &plan.keys {
        out.push_str(&report::key_line_plain(name, key));
        out.push('\n');
    }
    for (line, note) in &plan.notes {
        out.push_str(&format!("{name}:{line}: {note}\n"));
    }
    for f in &plan.findings {
        out.push_str(&format!(
            "{name}:{}: finding[{}] {}\n",
            f.line, f.code, f.message
        ));
    }
    (fixed, out)
}

fn second_run_changes_nothing(name: &str, fixed: &str, config: &Config) {
    let file = parse::parse_text(Path::new(name), fixed.to_string()).unwrap();
    let plan = fix::plan(&file, &migrations::scan(&file), &schema(), config);
    let again = fix::fixed_text(&file, plan.edits).unwrap();
    assert_eq!(again, fixed, "{name}: a second run changed the file again");
}

/// An inline migration through the pipeline with `config`: its plan and the fixed text.
fn fix_source(src: &str, config: &Config) -> (fix::FilePlan, String) {
    let file = parse::parse_text(Path::new("x.py"), src.to_string()).unwrap();
    let plan = fix::plan(&file, &migrations::scan(&file), &schema(), config);
    let fixed = fix::fixed_text(&file, plan.edits.clone()).unwrap();
    (plan, fixed)
}

macro_rules! shape_test {
    ($test:ident, $file:literal) => {
        #[test]
        fn $test() {
            let config = Config::default();
            let (fixed, out) = run($file, &config);
            second_run_changes_nothing($file, &fixed, &config);
            insta::with_settings!({snapshot_path => "../snapshots", prepend_module_to_snapshot => false}, {
                insta::assert_snapshot!(concat!("shapes__", stringify!($test)), out);
            });
        }
    };
}

shape_test!(autogenerate_one_line_calls, "001_autogenerate.py");
shape_test!(black_multiline_and_inline_keys, "002_black.py");
shape_test!(keys_added_to_existing_tables, "003_add_keys.py");
shape_test!(revert_pair_removed, "004_revert_pair.py");
shape_test!(batch_revert_pairs_removed, "005_batch_revert.py");
shape_test!(calls_that_must_be_skipped, "006_skips.py");
shape_test!(crlf_file, "007_crlf.py");

#[test]
fn crlf_stays_crlf() {
    let (fixed, _) = run("007_crlf.py", &Config::default());
    assert!(fixed.contains("ondelete=\"CASCADE\",\r\n"), "{fixed:?}");
    assert_eq!(
        fixed.matches('\n').count(),
        fixed.matches("\r\n").count(),
        "a bare LF crept in"
    );
}

#[test]
fn everything_outside_the_edits_is_byte_identical() {
    for name in [
        "001_autogenerate.py",
        "002_black.py",
        "003_add_keys.py",
        "007_crlf.py",
    ] {
        let file = load(name);
        let plan = fix::plan(
            &file,
            &migrations::scan(&file),
            &schema(),
            &Config::default(),
        );
        let fixed = fix::fixed_text(&file, plan.edits.clone()).unwrap();
        // Undo each edit on the fixed text, back to front: the original must come back exactly.
        let mut edits = plan.edits.clone();
        edits.sort_by_key(|e| e.range.start);
        let mut rebuilt = String::new();
        let mut cursor = 0;
        let mut shift: isize = 0;
        for edit in &edits {
            let start = (edit.range.start as isize + shift) as usize;
            rebuilt.push_str(&fixed[cursor..start]);
            rebuilt.push_str(&file.text[edit.range.clone()]);
            cursor = start + edit.content.len();
            shift += edit.content.len() as isize - edit.range.len() as isize;
        }
        rebuilt.push_str(&fixed[cursor..]);
        assert_eq!(rebuilt, file.text, "{name}");
    }
}

#[test]
fn config_rules_override_inference_and_replace_existing_values() {
    let config = Config::from_toml_str(
        r#"
default-onupdate = "CASCADE"
[rules]
"notes.reviewer_id" = "RESTRICT"
[referents]
statuses = { ondelete = "NO ACTION" }
"#,
    )
    .unwrap();
    let (fixed, out) = run("001_autogenerate.py", &config);
    second_run_changes_nothing("001_autogenerate.py", &fixed, &config);
    assert!(
        fixed.contains("['reviewer_id'], ['users.id'], onupdate='CASCADE', ondelete='RESTRICT')"),
        "{out}"
    );
    assert!(
        fixed.contains("['status_id'], ['statuses.id'], onupdate='CASCADE', ondelete='NO ACTION')"),
        "{out}"
    );
    assert!(
        out.contains("config: rules.\"notes.reviewer_id\" = \"RESTRICT\""),
        "{out}"
    );
    // A model's explicit value beats the config's default onupdate only where the model has one.
    assert!(
        fixed.contains("['parent_id'], ['notes.id'], ondelete='RESTRICT', onupdate='CASCADE')"),
        "{out}"
    );
}

#[test]
fn lowercase_files_get_lowercase_actions() {
    let src = "from alembic import op\n\ndef upgrade():\n    op.create_foreign_key('a', 'notes', 'users', ['reviewer_id'], ['id'], ondelete='set null')\n    op.create_foreign_key('b', 'notes', 'users', ['author_id'], ['id'])\n";
    let (_, fixed) = fix_source(src, &Config::default());
    assert!(
        fixed.contains("['author_id'], ['id'], ondelete='cascade')"),
        "{fixed}"
    );
}

/// `ondelete=None` is SQLAlchemy's default spelled out: NO ACTION, a value the file chose. It
/// is kept like any existing value, a config rule replaces it in place, and it casts no vote
/// on the file's spelling of actions.
#[test]
fn ondelete_none_reads_as_no_action() {
    let src = "from alembic import op\n\ndef upgrade():\n    op.create_foreign_key('a', 'notes', 'users', ['reviewer_id'], ['id'], ondelete=None)\n    op.create_foreign_key('b', 'notes', 'users', ['author_id'], ['id'], ondelete='set null')\n";
    let (plan, fixed) = fix_source(src, &Config::default());
    let kept = report::key_line_plain("x.py", &plan.keys[0]);
    assert!(
        kept.contains("ondelete NO ACTION (kept existing ondelete"),
        "{kept}"
    );
    assert_eq!(fixed, src);

    let config = Config::from_toml_str("[rules]\n\"notes.reviewer_id\" = \"RESTRICT\"\n").unwrap();
    let (_, fixed) = fix_source(src, &config);
    assert!(
        fixed.contains("['reviewer_id'], ['id'], ondelete='restrict')"),
        "{fixed}"
    );
    second_run_changes_nothing("x.py", &fixed, &config);

    // A real 'NO ACTION' does vote: with 'set null' beside it the file is mixed, so upper case.
    let src = src.replace("ondelete=None", "ondelete='NO ACTION'")
        + "    op.create_foreign_key('c', 'notes', 'users', ['editor_id'], ['id'])\n";
    let (_, fixed) = fix_source(&src, &Config::default());
    assert!(
        fixed.contains("['editor_id'], ['id'], ondelete='SET NULL')"),
        "{fixed}"
    );
}

/// A revert pair over a SET NULL (from an earlier run, or by hand) on a column the model makes
/// NOT NULL is the way out of a rule that fails every delete: it stays and gets CASCADE.
#[test]
fn a_revert_pair_over_a_failing_rule_stays_with_the_policys_rule() {
    let src = "from alembic import op\n\ndef upgrade():\n    op.drop_constraint(op.f('notes_author_id_fkey'), 'notes', type_='foreignkey')\n    op.create_foreign_key(None, 'notes', 'users', ['author_id'], ['id'])\n\ndef downgrade():\n    op.drop_constraint(None, 'notes', type_='foreignkey')\n    op.create_foreign_key(op.f('notes_author_id_fkey'), 'notes', 'users', ['author_id'], ['id'], ondelete='SET NULL')\n";
    let (_, fixed) = fix_source(src, &Config::default());
    assert!(
        fixed.contains(
            "op.create_foreign_key('notes_author_id_fkey', 'notes', 'users', ['author_id'], ['id'], ondelete='CASCADE')"
        ),
        "{fixed}"
    );
    second_run_changes_nothing("x.py", &fixed, &Config::default());
}

/// The next autogenerate's pair over a rule someone chose (a hand-set RESTRICT the model
/// doesn't state) would revert it. The pair goes when only heuristics say otherwise
/// (`notes.reviewer_id`: nullable), as a written ondelete stands against them in the migration
/// that set it. It stays, with the new rule, when the model states one (`comments.editor_id`:
/// SET NULL) or a relationship deletes the rows (`notes.author_id`: `User.notes` cascades):
/// evidence added since the rule was chosen reaches the database.
#[test]
fn revert_pairs_over_a_chosen_rule_go_unless_the_model_or_a_relationship_says_otherwise() {
    let pair = |table: &str, column: &str| {
        format!(
            "    op.drop_constraint(op.f('{table}_{column}_fkey'), '{table}', type_='foreignkey')\n    op.create_foreign_key(None, '{table}', 'users', ['{column}'], ['id'])\n"
        )
    };
    let mirror = |table: &str, column: &str| {
        format!(
            "    op.drop_constraint(None, '{table}', type_='foreignkey')\n    op.create_foreign_key(op.f('{table}_{column}_fkey'), '{table}', 'users', ['{column}'], ['id'], ondelete='RESTRICT')\n"
        )
    };
    let keys = [
        ("notes", "reviewer_id"),
        ("comments", "editor_id"),
        ("notes", "author_id"),
    ];
    let src = format!(
        "from alembic import op\n\ndef upgrade():\n{}\ndef downgrade():\n{}",
        keys.iter().map(|(t, c)| pair(t, c)).collect::<String>(),
        keys.iter()
            .rev()
            .map(|(t, c)| mirror(t, c))
            .collect::<String>(),
    );
    let (plan, fixed) = fix_source(&src, &Config::default());
    assert!(!fixed.contains("notes_reviewer_id_fkey"), "{fixed}");
    for kept in [
        "op.create_foreign_key('comments_editor_id_fkey', 'comments', 'users', ['editor_id'], ['id'], ondelete='SET NULL')",
        "op.create_foreign_key('notes_author_id_fkey', 'notes', 'users', ['author_id'], ['id'], ondelete='CASCADE')",
    ] {
        assert!(fixed.contains(kept), "{kept}\n{fixed}");
    }
    let removed = report::key_line_plain("x.py", &plan.keys[0]);
    assert!(
        removed.contains("revert pair removed: the database already has ON DELETE RESTRICT (downgrade() restores it), a rule someone chose, which heuristics do not override (the policy alone would say SET NULL: nullable column)"),
        "{removed}"
    );
    second_run_changes_nothing("x.py", &fixed, &Config::default());
}

/// A create that writes its own rule is a change someone asked for (autogenerate writes none
/// when the model states none): the pair is no revert, whatever the heuristics say.
#[test]
fn a_pair_whose_create_writes_another_rule_is_a_change_not_a_revert() {
    for written in ["CASCADE", "SET NULL"] {
        let src = format!(
            "from alembic import op\n\ndef upgrade():\n    op.drop_constraint('notes_reviewer_id_fkey', 'notes', type_='foreignkey')\n    op.create_foreign_key('notes_reviewer_id_fkey', 'notes', 'users', ['reviewer_id'], ['id'], ondelete='{written}')\n\ndef downgrade():\n    op.drop_constraint('notes_reviewer_id_fkey', 'notes', type_='foreignkey')\n    op.create_foreign_key('notes_reviewer_id_fkey', 'notes', 'users', ['reviewer_id'], ['id'], ondelete='RESTRICT')\n"
        );
        let (plan, fixed) = fix_source(&src, &Config::default());
        assert_eq!(fixed, src, "{written}");
        assert!(
            plan.keys.iter().all(|k| k.status == fix::Status::Ok),
            "{written}: {:?}",
            plan.keys
        );
    }
}

/// In a batch block (SQLite recreates the table) `ForeignKey(..., name=None)` fails as a key
/// with no name does ("Constraint must have a name"): both get the name PostgreSQL would give.
#[test]
fn batch_inline_keys_named_none_get_a_name() {
    let src = "from alembic import op\nimport sqlalchemy as sa\n\ndef upgrade():\n    with op.batch_alter_table('notes') as batch_op:\n        batch_op.add_column(sa.Column('reviewer_id', sa.Integer(), sa.ForeignKey('users.id', name=None), nullable=True))\n        batch_op.add_column(sa.Column('created_by', sa.Integer(), sa.ForeignKey('users.id'), nullable=True))\n";
    let (plan, fixed) = fix_source(src, &Config::default());
    assert!(
        fixed.contains(
            "sa.ForeignKey('users.id', name='notes_reviewer_id_fkey', ondelete='SET NULL')"
        ),
        "{fixed}"
    );
    assert!(
        fixed.contains(
            "sa.ForeignKey('users.id', name='notes_created_by_fkey', ondelete='SET NULL')"
        ),
        "{fixed}"
    );
    assert_eq!(plan.notes.len(), 2, "{:?}", plan.notes);
    second_run_changes_nothing("x.py", &fixed, &Config::default());
}

/// An unnamed key of `posts` as SQLite holds it, for the history before a revision.
fn unnamed_key(column: &str, referent: &str) -> ExistingKey {
    ExistingKey {
        schema: None,
        table: "posts".into(),
        name: None,
        columns: vec![column.into()],
        referent_schema: None,
        referent_table: referent.into(),
        referent_columns: vec!["id".into()],
        ondelete: Some("SET NULL".into()),
        onupdate: None,
        origin: "versions/001_posts.py:20".into(),
    }
}

/// (plan, fixed text) with `keys` as the history before the file.
fn fix_with_history(src: &str, keys: Vec<ExistingKey>) -> (fix::FilePlan, String) {
    let file = parse::parse_text(Path::new("x.py"), src.to_string()).unwrap();
    let migration = migrations::scan(&file);
    let before = KeySet { keys };
    let plan = fix::plan_with_history(
        &file,
        &migration,
        &schema(),
        &Config::default(),
        Some(&before),
    );
    let fixed = fix::fixed_text(&file, plan.edits.clone()).unwrap();
    (plan, fixed)
}

fn unnamed_drop_findings(plan: &fix::FilePlan) -> Vec<&str> {
    plan.findings
        .iter()
        .filter(|f| f.code == "unnamed-drop")
        .map(|f| f.message.as_str())
        .collect()
}

/// A models' convention that names referred columns can't be filled in by a batch, which
/// reflects the table alone; history names the keys by it, so the drop stays a finding that
/// says so.
#[test]
fn a_convention_naming_referred_columns_leaves_an_unnamed_batch_drop_a_finding() {
    let src = "from alembic import op\n\n\ndef upgrade():\n    with op.batch_alter_table('posts') as batch_op:\n        batch_op.drop_constraint(None, type_='foreignkey')\n        batch_op.create_foreign_key(None, 'users', ['user_id'], ['id'], ondelete='CASCADE')\n\n\ndef downgrade():\n    with op.batch_alter_table('posts') as batch_op:\n        batch_op.drop_constraint(None, type_='foreignkey')\n        batch_op.create_foreign_key(None, 'users', ['user_id'], ['id'])\n";
    let convention =
        "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s_%(referred_column_0_name)s";
    let mut schema = schema();
    schema.fk_naming_convention = Some(convention.into());
    let mut key = unnamed_key("user_id", "users");
    key.name = Some("fk_posts_user_id_users_id".into());
    let file = parse::parse_text(Path::new("x.py"), src.to_string()).unwrap();
    let migration = migrations::scan(&file);
    let before = KeySet { keys: vec![key] };
    let plan = fix::plan_with_history(
        &file,
        &migration,
        &schema,
        &Config::default(),
        Some(&before),
    );
    let findings = unnamed_drop_findings(&plan);
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert!(
        findings[0].ends_with(&format!("(the models' naming convention {convention:?} can't name the keys a batch reflects (it names referred columns, or leaves a key of the table unnamed))")),
        "{findings:?}"
    );
}

/// On SQLite a key made inside CREATE TABLE has no name, so autogenerate drops it with
/// `batch_op.drop_constraint(None, ...)` (Alembic 1.20.1's output below). The batch block then
/// names the keys it reflects by a naming_convention, and each drop gives such a name: the
/// keys downgrade() creates again are the keys upgrade() drops.
#[test]
fn unnamed_drops_in_upgrade_are_named_through_the_batch_naming_convention() {
    let warning = "        # WARNING: constraint name is None; this directive will fail as\n        # rendered.  Add a name, or use a naming convention; see\n        # https://alembic.sqlalchemy.org/en/latest/naming.html\n";
    let drop = format!("{warning}        batch_op.drop_constraint(None, type_='foreignkey')\n");
    let pair = |with: &str, restored: &str| {
        format!(
            "from alembic import op\nimport sqlalchemy as sa\n\n\ndef upgrade():\n    {with}\n{drop}{drop}        batch_op.create_foreign_key(None, 'users', ['user_id'], ['id'], ondelete='CASCADE')\n        batch_op.create_foreign_key(None, 'tags', ['tag_id'], ['id'], ondelete='CASCADE')\n\n\ndef downgrade():\n    with op.batch_alter_table('posts', schema=None) as batch_op:\n{drop}{drop}{restored}"
        )
    };
    let restored = "        batch_op.create_foreign_key(None, 'users', ['user_id'], ['id'])\n        batch_op.create_foreign_key(None, 'tags', ['tag_id'], ['id'])\n";
    let sqlite_keys = || {
        vec![
            unnamed_key("user_id", "users"),
            unnamed_key("tag_id", "tags"),
        ]
    };
    for (with, named_with) in [
        (
            "with op.batch_alter_table('posts', schema=None) as batch_op:",
            "with op.batch_alter_table('posts', schema=None, naming_convention={'fk': '%(table_name)s_%(column_0_N_name)s_fkey'}) as batch_op:",
        ),
        // black's layout: the keyword goes on a line of its own.
        (
            "with op.batch_alter_table(\n        'posts',\n        schema=None,\n    ) as batch_op:",
            "with op.batch_alter_table(\n        'posts',\n        schema=None,\n        naming_convention={'fk': '%(table_name)s_%(column_0_N_name)s_fkey'},\n    ) as batch_op:",
        ),
    ] {
        let (plan, fixed) = fix_with_history(&pair(with, restored), sqlite_keys());
        let upgrade = fixed.split("def downgrade").next().unwrap();
        assert!(upgrade.contains(named_with), "{fixed}");
        assert!(
            upgrade.contains("        batch_op.drop_constraint('posts_user_id_fkey', type_='foreignkey')\n        batch_op.drop_constraint('posts_tag_id_fkey', type_='foreignkey')\n"),
            "{fixed}"
        );
        assert!(
            !fixed.contains("WARNING") && !fixed.contains("(None"),
            "{fixed}"
        );
        assert_eq!(unnamed_drop_findings(&plan), Vec::<&str>::new());
        // The second run, with the history the first one's upgrade() leaves.
        let (again, refixed) = fix_with_history(&fixed, sqlite_keys());
        assert_eq!(refixed, fixed, "{:?}", again.edits);
    }

    // What the tool can't name stays a finding that says why.
    let kept_owner = |referent: &str| {
        let mut keys = sqlite_keys();
        keys.push(unnamed_key("owner_id", referent));
        keys
    };
    let long_name = "from alembic import op\n\n\ndef upgrade():\n    with op.batch_alter_table('posts') as batch_op:\n        batch_op.drop_constraint(None, type_='foreignkey')\n        batch_op.create_foreign_key(None, 'a_really_quite_long_referent_table', ['owner_account_identifier_column_name_that_is_rather_long'], ['id'], ondelete='CASCADE')\n\n\ndef downgrade():\n    with op.batch_alter_table('posts') as batch_op:\n        batch_op.drop_constraint(None, type_='foreignkey')\n        batch_op.create_foreign_key(None, 'a_really_quite_long_referent_table', ['owner_account_identifier_column_name_that_is_rather_long'], ['id'])\n";
    let long_key = unnamed_key(
        "owner_account_identifier_column_name_that_is_rather_long",
        "a_really_quite_long_referent_table",
    );
    let with = "with op.batch_alter_table('posts', schema=None) as batch_op:";
    for (src, keys, why) in [
        (
            pair(with, "        batch_op.create_foreign_key(None, 'users', ['user_id'], ['id'])\n"),
            sqlite_keys(),
            "downgrade() does not create exactly the keys it drops again",
        ),
        (
            pair(
                "with op.batch_alter_table('posts', naming_convention={'fk': 'fk_%(column_0_name)s'}) as batch_op:",
                restored,
            ),
            sqlite_keys(),
            "batch_alter_table already passes naming_convention",
        ),
        (
            "from alembic import op\n\n\ndef upgrade():\n    op.drop_constraint(None, 'posts', type_='foreignkey')\n\n\ndef downgrade():\n    op.create_foreign_key(None, 'posts', 'users', ['user_id'], ['id'])\n".to_string(),
            sqlite_keys(),
            "not in a batch block",
        ),
        // A kept key on the same column: the default template names it as the dropped one,
        // and the batch would keep only one of the two.
        (
            pair(with, restored),
            kept_owner("users").into_iter().chain([unnamed_key("user_id", "accounts")]).collect(),
            "two keys of posts would get the name posts_user_id_fkey",
        ),
        // PostgreSQL cuts the name downgrade() gives the key back to 63 bytes; the template
        // does not, so upgrade() after downgrade() would not find it.
        (
            long_name.to_string(),
            vec![long_key],
            "the batch would name the key posts_owner_account_identifier_column_name_that_is_rather_long_fkey, but downgrade() gives it back as",
        ),
        // History holds the keys under names the batch would not give them: a drop by the
        // convention's name might miss.
        (
            pair(with, restored),
            sqlite_keys()
                .into_iter()
                .map(|mut k| {
                    k.name = Some(format!("custom_{}", k.columns[0]));
                    k
                })
                .collect(),
            "history does not hold the keys it drops as unnamed",
        ),
    ] {
        let (plan, fixed) = fix_with_history(&src, keys);
        let upgrade = fixed.split("def downgrade").next().unwrap();
        assert!(upgrade.contains("drop_constraint(None"), "{why}\n{fixed}");
        let findings = unnamed_drop_findings(&plan);
        assert!(
            !findings.is_empty() && findings.iter().all(|m| m.contains(why)),
            "{why}: {findings:?}"
        );
    }
    // Without history the table's other keys are unknown.
    let (plan, _) = fix_source(&pair(with, restored), &Config::default());
    assert!(
        unnamed_drop_findings(&plan)
            .iter()
            .all(|m| m.contains("no history before this revision")),
        "{:?}",
        plan.findings
    );
}

/// `from sqlalchemy import *` and bare names get the same keys, and the same fixes, as the
/// `sa.`-prefixed spelling Alembic writes.
#[test]
fn star_imports_are_read_like_prefixed_names() {
    let body = |prefix: &str| {
        format!(
            "def upgrade():\n    op.create_table('notes',\n    {prefix}Column('id', {prefix}Integer(), nullable=False),\n    {prefix}Column('author_id', {prefix}Integer(), nullable=False),\n    {prefix}Column('reviewer_id', {prefix}Integer(), nullable=True),\n    {prefix}ForeignKeyConstraint(['author_id'], ['users.id'], ),\n    {prefix}ForeignKeyConstraint(['reviewer_id'], ['users.id'], ),\n    )\n"
        )
    };
    let fix = |src: String| {
        let (plan, fixed) = fix_source(&src, &Config::default());
        assert_eq!(plan.keys.len(), 2, "{:?}", plan.keys);
        fixed
    };
    let header = "from alembic import op\n";
    let prefixed = fix(format!(
        "{header}import sqlalchemy as sa\n\n{}",
        body("sa.")
    ));
    let starred = fix(format!("{header}from sqlalchemy import *\n\n{}", body("")));
    assert!(prefixed.contains("ondelete="), "{prefixed}");
    let after_imports = |text: &str| text.split_once("\n\n").unwrap().1.to_string();
    assert_eq!(
        after_imports(&starred),
        after_imports(&prefixed).replace("sa.", "")
    );
    // A name the file defines itself is its own, star import or not; and sqlalchemy.orm's
    // star brings no ForeignKey.
    for header in [
        "from sqlalchemy import *\ndef ForeignKeyConstraint(*args):\n    return args\n",
        "from sqlalchemy.orm import *\n",
    ] {
        let src = format!("from alembic import op\n{header}\n{}", body(""));
        let (plan, _) = fix_source(&src, &Config::default());
        assert!(plan.keys.is_empty(), "{header}: {:?}", plan.keys);
        assert!(plan.edits.is_empty(), "{header}");
    }
}

#[test]
fn scanner_sites() {
    let mut out = String::new();
    let mut names: Vec<String> = std::fs::read_dir(fixtures().join("migrations"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for name in names {
        let file = load(&name);
        let scanned = migrations::scan(&file);
        out.push_str(&format!("# {name}\n"));
        for s in &scanned.sites {
            let value = |k: &Option<migrations::Keyword>| match k {
                None => "-".to_string(),
                Some(k) => k.value.clone().unwrap_or_else(|| "<expr>".into()),
            };
            out.push_str(&format!(
                "{}: {:?} {:?} {}.{:?} -> {}.{:?} name={:?} ondelete={} onupdate={}{}\n",
                s.line,
                s.section,
                s.kind,
                s.table.as_deref().unwrap_or("?"),
                s.columns,
                s.referent_table.as_deref().unwrap_or("?"),
                s.referent_columns,
                s.name,
                value(&s.ondelete),
                value(&s.onupdate),
                s.skip
                    .as_ref()
                    .map(|r| format!(" SKIP: {r}"))
                    .unwrap_or_default()
            ));
        }
        for d in &scanned.drops {
            out.push_str(&format!(
                "{}: {:?} drop {} name={:?}\n",
                d.line,
                d.section,
                d.table.as_deref().unwrap_or("?"),
                d.name
            ));
        }
    }
    insta::with_settings!({snapshot_path => "../snapshots", prepend_module_to_snapshot => false}, {
        insta::assert_snapshot!("shapes__scanner_sites", out);
    });
}

/// SET DEFAULT needs a server default; one upgrade() gives the key column counts as much as
/// the models' (a hand-written `server_default=` autogenerate does not compare), and an
/// `alter_column(..., server_default=None)` takes it away again.
#[test]
fn a_server_default_the_migration_gives_the_key_column_answers_set_default() {
    let models = parse::parse_text(
        Path::new("models.py"),
        "from sqlalchemy import Column, ForeignKey, Integer\nfrom sqlalchemy.orm import declarative_base\nBase = declarative_base()\n\nclass User(Base):\n    __tablename__ = 'users'\n    id = Column(Integer, primary_key=True)\n\nclass Note(Base):\n    __tablename__ = 'notes'\n    id = Column(Integer, primary_key=True)\n    user_id = Column(Integer, ForeignKey('users.id', ondelete='SET DEFAULT'), nullable=False)\n".to_string(),
    )
    .unwrap();
    let schema = models::read_models(&[models]);
    let create = |column: &str, after: &str| {
        format!(
            "from alembic import op\nimport sqlalchemy as sa\n\ndef upgrade():\n    op.create_table('notes',\n    sa.Column('id', sa.Integer(), nullable=False),\n    {column},\n    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='SET DEFAULT'),\n    sa.PrimaryKeyConstraint('id')\n    )\n{after}"
        )
    };
    let findings = |src: &str| -> Vec<&'static str> {
        let file = parse::parse_text(Path::new("x.py"), src.to_string()).unwrap();
        let plan = fix::plan(&file, &migrations::scan(&file), &schema, &Config::default());
        plan.findings.iter().map(|f| f.code).collect()
    };
    let with_default = "sa.Column('user_id', sa.Integer(), server_default='1', nullable=False)";
    let without = "sa.Column('user_id', sa.Integer(), nullable=False)";
    assert_eq!(findings(&create(with_default, "")), Vec::<&str>::new());
    assert_eq!(findings(&create(without, "")), ["set-default-no-default"]);
    assert_eq!(
        findings(&create(
            without,
            "    op.alter_column('notes', 'user_id', existing_type=sa.Integer(), server_default=sa.text('1'))\n"
        )),
        Vec::<&str>::new()
    );
    assert_eq!(
        findings(&create(
            with_default,
            "    op.alter_column('notes', 'user_id', server_default=None)\n"
        )),
        ["set-default-no-default"]
    );
    // alter_column's server_default=False (its default) changes nothing.
    assert_eq!(
        findings(&create(
            with_default,
            "    op.alter_column('notes', 'user_id', nullable=False, server_default=False)\n"
        )),
        Vec::<&str>::new()
    );
}
