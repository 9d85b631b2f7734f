//! Shapes found by an adversarial read of the rewriter. Each fixed file must say exactly what is
//! expected, compile under CPython (which refuses repeated keywords tree-sitter accepts), and stay
//! the same on a second run.

use std::path::Path;
use std::process::Command;

use fix_migrations::config::Config;
use fix_migrations::fix;
use fix_migrations::keyset::{ExistingKey, KeySet};
use fix_migrations::migrations;
use fix_migrations::models::{self, Schema};
use fix_migrations::parse;

fn schema(models_file: &str) -> Schema {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/edge")
        .join(models_file);
    let file = parse::parse_source(&path, std::fs::read(&path).unwrap()).unwrap();
    models::read_models(&[file])
}

/// Fix `src` (with the models in `models_file`), check the invariants, return the fixed text.
fn fix_with(models_file: &str, src: &str) -> String {
    let schema = schema(models_file);
    let fix_once = |text: &str| {
        let file = parse::parse_text(Path::new("m.py"), text.to_string()).unwrap();
        let plan = fix::plan(&file, &migrations::scan(&file), &schema, &Config::default());
        fix::fixed_text(&file, plan.edits).unwrap()
    };
    let fixed = fix_once(src);
    assert_eq!(fix_once(&fixed), fixed, "a second run changed the file");
    assert_compiles(&fixed);
    fixed
}

fn fix(src: &str) -> String {
    fix_with("models.py", src)
}

fn assert_compiles(text: &str) {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys; compile(sys.stdin.read(), 'm.py', 'exec')",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(text.as_bytes())?;
            child.wait_with_output()
        })
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "CPython refuses the fixed file:\n{}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn comma_and_paren_on_a_line_below_the_last_argument() {
    let fixed = fix(
        "def upgrade():\n    op.create_table(\"notes\",\n        sa.Column(\"author_id\", sa.Integer()),\n        sa.ForeignKeyConstraint([\"author_id\"],\n                                [\"users.id\"]\n                                ,),\n    )\n",
    );
    assert!(
        fixed.contains(
            "[\"users.id\"]\n                                , ondelete=\"CASCADE\"),\n    )"
        ),
        "{fixed}"
    );
}

#[test]
fn comment_after_the_last_argument_then_comma_and_paren() {
    let fixed = fix(
        "def upgrade():\n    op.create_foreign_key(\"fk_x\", \"notes\", \"users\", [\"editor_id\"], [\"id\"]  # the editor\n        , )\n",
    );
    assert!(
        fixed.contains("[\"id\"]  # the editor\n        , ondelete=\"SET NULL\")\n"),
        "{fixed}"
    );
}

#[test]
fn comment_after_the_last_argument_with_paren_on_its_own_line() {
    let fixed = fix(
        "def upgrade():\n    op.create_foreign_key(\n        \"fk_x\", \"notes\", \"users\", [\"editor_id\"],\n        [\"id\"]  # the editor\n    )\n",
    );
    assert!(
        fixed.contains("        [\"id\"],  # the editor\n        ondelete=\"SET NULL\"\n    )\n"),
        "{fixed}"
    );
}

#[test]
fn drop_with_its_name_on_a_later_line() {
    let fixed = fix(
        "def upgrade():\n    op.create_foreign_key(None, \"notes\", \"users\", [\"editor_id\"], [\"id\"])\n\ndef downgrade():\n    op.drop_constraint(\n        None,\n        \"notes\",\n        type_=\"foreignkey\",\n    )\n",
    );
    assert!(
        fixed.contains(
            "    op.drop_constraint(\n        \"notes_editor_id_fkey\",\n        \"notes\","
        ),
        "{fixed}"
    );
    let fixed = fix(
        "def upgrade():\n    op.create_foreign_key(None, \"notes\", \"users\", [\"editor_id\"], [\"id\"])\n\ndef downgrade():\n    op.drop_constraint \\\n    (None, \"notes\", \"foreignkey\")\n",
    );
    assert!(
        fixed.contains(
            "    op.drop_constraint \\\n    (\"notes_editor_id_fkey\", \"notes\", \"foreignkey\")"
        ),
        "{fixed}"
    );
}

#[test]
fn options_passed_positionally_are_left_alone() {
    let src = "def upgrade():\n    op.create_table('notes',\n    sa.Column('author_id', sa.Integer(), sa.ForeignKey('users.id', None, False, None, None, 'RESTRICT'), nullable=False),\n    sa.ForeignKeyConstraint(['editor_id'], ['users.id'], 'fk_ed', None, 'RESTRICT'),\n    )\n";
    assert_eq!(fix(src), src);
}

#[test]
fn skipped_calls_are_not_named_either() {
    let src = "fk_kwargs = {}\n\ndef upgrade():\n    op.create_foreign_key(None, 'notes', 'users', ['author_id'], ['id'], **fk_kwargs)\n    op.create_foreign_key(None, 'notes', *rest)\n    op.create_foreign_key(None, 'notes', 'users', local_cols, ['id'])\n\ndef _helper():\n    op.create_foreign_key(None, 'notes', 'users', ['editor_id'], ['id'])\n\ndef downgrade():\n    pass\n";
    assert_eq!(fix(src), src);
}

#[test]
fn op_imported_under_another_name() {
    let fixed = fix_with(
        "models_naming.py",
        "from alembic import op as alembic_op\n\ndef upgrade():\n    alembic_op.create_foreign_key(None, \"notes\", \"users\", [\"editor_id\"], [\"id\"])\n\ndef downgrade():\n    alembic_op.drop_constraint(None, \"notes\", type_=\"foreignkey\")\n",
    );
    assert!(
        fixed.contains(
            "alembic_op.create_foreign_key(alembic_op.f(\"fk_notes_editor_id_users\"), \"notes\""
        ),
        "{fixed}"
    );
    assert!(
        fixed.contains(
            "alembic_op.drop_constraint(alembic_op.f(\"fk_notes_editor_id_users\"), \"notes\""
        ),
        "{fixed}"
    );
}

#[test]
fn two_keys_never_get_the_same_name() {
    let fixed = fix(
        "def upgrade():\n    op.create_foreign_key(None, 'notes', 'users', ['editor_id'], ['id'])\n    op.create_foreign_key(None, 'notes', 'users', ['author_id'], ['id'])\n    op.create_foreign_key(None, 'notes', 'users', ['editor_id'], ['id'])\n\ndef downgrade():\n    op.drop_constraint(None, 'notes', type_='foreignkey')\n    op.drop_constraint(None, 'notes', type_='foreignkey')\n    op.drop_constraint(None, 'notes', type_='foreignkey')\n",
    );
    let upgrade = fixed.split("def downgrade").next().unwrap();
    assert!(
        upgrade.contains("create_foreign_key('notes_editor_id_fkey', 'notes'"),
        "{fixed}"
    );
    assert!(
        upgrade.contains("create_foreign_key('notes_author_id_fkey', 'notes'"),
        "{fixed}"
    );
    assert!(
        upgrade.contains("create_foreign_key('notes_editor_id_fkey1', 'notes'"),
        "{fixed}"
    );
    // downgrade() undoes them in reverse order.
    let downgrade = fixed.split("def downgrade").nth(1).unwrap();
    let drops: Vec<&str> = downgrade
        .lines()
        .filter(|l| l.contains("drop_constraint"))
        .collect();
    assert_eq!(
        drops,
        [
            "    op.drop_constraint('notes_editor_id_fkey1', 'notes', type_='foreignkey')",
            "    op.drop_constraint('notes_author_id_fkey', 'notes', type_='foreignkey')",
            "    op.drop_constraint('notes_editor_id_fkey', 'notes', type_='foreignkey')",
        ]
    );
}

#[test]
fn revert_pair_at_end_of_file_without_newline_and_multibyte_text() {
    let fixed = fix(
        "def upgrade():\n    with op.batch_alter_table('notes', schema=None) as batch_op:\n        batch_op.drop_constraint(None, type_='foreignkey')\n        batch_op.create_foreign_key(None, 'users', ['author_id'], ['id'])\n\ndef downgrade():\n    with op.batch_alter_table('notes', schema=None) as batch_op:\n        batch_op.drop_constraint(None, type_='foreignkey')\n        batch_op.create_foreign_key(None, 'users', ['author_id'], ['id'], ondelete='CASCADE')  # é",
    );
    assert_eq!(
        fixed,
        "def upgrade():\n    pass\n\ndef downgrade():\n    pass\n"
    );
}

#[test]
fn blank_line_between_functions_survives_block_removal() {
    let fixed = fix(
        "def upgrade():\n    with op.batch_alter_table('notes', schema=None) as batch_op:\n        batch_op.drop_constraint(None, type_='foreignkey')\n        batch_op.create_foreign_key(None, 'users', ['author_id'], ['id'])\n\ndef downgrade():\n    with op.batch_alter_table('notes', schema=None) as batch_op:\n        batch_op.drop_constraint(None, type_='foreignkey')\n        batch_op.create_foreign_key(None, 'users', ['author_id'], ['id'], ondelete='CASCADE')\n",
    );
    assert_eq!(
        fixed,
        "def upgrade():\n    pass\n\ndef downgrade():\n    pass\n"
    );
}

#[test]
fn cpython_rejections_are_syntax_errors() {
    let repeated = parse::parse_text(Path::new("m.py"), "f(ondelete=1, ondelete=2)\n".into())
        .err()
        .unwrap();
    assert_eq!(
        repeated.to_string(),
        "m.py:1: syntax error: keyword argument repeated: ondelete"
    );
    let py2 = parse::parse_text(Path::new("m.py"), "x = 1\nprint \"hi\"\n".into())
        .err()
        .unwrap();
    assert_eq!(
        py2.to_string(),
        "m.py:2: syntax error: Python 2 `print` statement"
    );
}

/// tree-sitter's error recovery can wrap a whole file in one error node (here: a migration
/// of batch blocks, as autogenerate writes for SQLite); the error named is the innermost
/// damaged part, at the line CPython names, not the file's first line.
#[test]
fn a_syntax_error_is_named_at_its_own_line() {
    let migration = |def_upgrade: &str, stray: &str| {
        let blocks = |call: &str| {
            (0..6)
                .map(|i| {
                    format!(
                        "    with op.batch_alter_table('t{i}', schema=None) as batch_op:\n        batch_op.{call}\n\n"
                    )
                })
                .collect::<String>()
        };
        format!(
            "\"\"\"add keys\n\nRevision ID: 381ffb76889e\n\"\"\"\nfrom alembic import op\nimport sqlalchemy as sa\n\n# revision identifiers, used by Alembic.\nrevision = '381ffb76889e'\ndown_revision = None\n\n\n{def_upgrade}\n    \"\"\"Upgrade schema.\"\"\"\n{stray}{}\n\ndef downgrade() -> None:\n{}",
            blocks("create_foreign_key(None, 'users', ['user_id'], ['id'])"),
            blocks("drop_constraint(None, type_='foreignkey')"),
        )
    };
    let error = |text: String| {
        parse::parse_text(Path::new("m.py"), text)
            .err()
            .map(|e| e.to_string())
    };
    // CPython: line 13, "expected ':'".
    assert_eq!(
        error(migration("def upgrade() -> None", "")).as_deref(),
        Some("m.py:13: syntax error: unexpected `None`")
    );
    // CPython: line 15, "unmatched ')'".
    assert_eq!(
        error(migration("def upgrade() -> None:", ")\n")).as_deref(),
        Some("m.py:15: syntax error: unexpected `)`")
    );
}

/// The check enters only what can hold a rejection (the same `name=` twice for a repeated
/// keyword, the word `print` / `exec`); these sit deep, in an f-string, across lines, or among
/// many harmless `=`.
#[test]
fn cpython_rejections_are_found_wherever_they_sit() {
    // (source, the error it gets; None: nothing to refuse)
    let cases = [
        (
            "x = [{'k': g(h(a=1, b=2), i(c=3, c=4))}]\n",
            Some("m.py:1: syntax error: keyword argument repeated: c"),
        ),
        (
            "y = 1\nx = f'{g(a=1, a=2)}'\n",
            Some("m.py:2: syntax error: keyword argument repeated: a"),
        ),
        (
            "def f():\n    if x:\n        exec 'code'\n",
            Some("m.py:3: syntax error: Python 2 `exec` statement"),
        ),
        // The name on another line than its `=`, past a comment or a line continuation.
        (
            "x = g(\n    a=1,\n    a  # the same\n    =2,\n)\n",
            Some("m.py:3: syntax error: keyword argument repeated: a"),
        ),
        (
            "x = g(a=1, a \\\n=2)\n",
            Some("m.py:1: syntax error: keyword argument repeated: a"),
        ),
        (
            "x = g(ondelete = 'CASCADE', name=None, ondelete\t= 'SET NULL')\n",
            Some("m.py:1: syntax error: keyword argument repeated: ondelete"),
        ),
        // Many `=` in strings, comparisons and separate calls: nothing to refuse.
        (
            "x = g(a='b=c=d', e=1 == 2)\ny = h(a=1) + h(a=2)  # a=1, a=1\n",
            None,
        ),
        (
            "x = g(a=1, b=2, c=h(a=3, b=4), d=[i(a=5)], x=y <= z, w=v != 1)\n",
            None,
        ),
    ];
    for (src, expected) in cases {
        let error = parse::parse_text(Path::new("m.py"), src.into())
            .err()
            .map(|e| e.to_string());
        assert_eq!(error.as_deref(), expected, "{src:?}");
    }
}

#[test]
fn mixed_line_endings_follow_the_edited_line() {
    let fixed = fix(
        "def downgrade():\r\n    pass\r\n\ndef upgrade():\n    op.create_foreign_key(\n        'fk', 'notes', 'users', ['editor_id'], ['id'],\n    )\n",
    );
    assert!(
        fixed.contains("['id'],\n        ondelete='SET NULL',\n    )\n"),
        "{fixed:?}"
    );
}

/// A model read wrong, or changed since, must not put SET NULL on a column the migration makes
/// NOT NULL (`nullable=False` or a primary key in `create_table` or `add_column`, or a later
/// `alter_column`, batch forms too): every delete would fail. A column the migration makes
/// nullable keeps the model's NOT NULL answer, CASCADE, which no later NOT NULL can break.
#[test]
fn the_migrations_own_nullability_decides() {
    let fixed = fix_with(
        "out_of_step.py",
        "from alembic import op\nimport sqlalchemy as sa\n\n\ndef upgrade():\n    op.create_table('posts',\n    sa.Column('id', sa.Integer(), nullable=False),\n    sa.Column('author_id', sa.Integer(), nullable=False),\n    sa.Column('editor_id', sa.Integer(), nullable=True),\n    sa.Column('parent_id', sa.Integer()),\n    sa.ForeignKeyConstraint(['author_id'], ['users.id'], ),\n    sa.ForeignKeyConstraint(['editor_id'], ['users.id'], ),\n    sa.ForeignKeyConstraint(['parent_id'], ['posts.id'], ),\n    sa.PrimaryKeyConstraint('id')\n    )\n    with op.batch_alter_table('posts') as batch_op:\n        batch_op.add_column(sa.Column('owner_id', sa.Integer(), nullable=True))\n        batch_op.alter_column('owner_id', existing_type=sa.Integer(), nullable=False)\n        batch_op.create_foreign_key('fk_posts_owner_id', 'users', ['owner_id'], ['id'])\n    op.alter_column('posts', 'old_editor', new_column_name='reviewer_id', nullable=False)\n    op.create_foreign_key(None, 'posts', 'users', ['reviewer_id'], ['id'])\n    op.alter_column('posts', 'mentor_id', existing_nullable=False, type_=sa.BigInteger())\n    op.create_foreign_key(None, 'posts', 'users', ['mentor_id'], ['id'])\n\n\ndef downgrade():\n    op.drop_table('posts')\n",
    );
    for (line, action) in [
        (
            "sa.ForeignKeyConstraint(['author_id'], ['users.id'], ondelete='CASCADE'),",
            "NOT NULL in the migration, Optional in the model",
        ),
        (
            "sa.ForeignKeyConstraint(['editor_id'], ['users.id'], ondelete='CASCADE'),",
            "nullable in the migration, Mapped[int] in the model: the model's NOT NULL stands (a later revision may make it so)",
        ),
        (
            "sa.ForeignKeyConstraint(['parent_id'], ['posts.id'], ondelete='SET NULL'),",
            "no nullable= in the migration: the model (Optional) decides",
        ),
        (
            "op.create_foreign_key('posts_reviewer_id_fkey', 'posts', 'users', ['reviewer_id'], ['id'], ondelete='CASCADE')",
            "renamed by alter_column(new_column_name=...), nullable=False",
        ),
        (
            "op.create_foreign_key('posts_mentor_id_fkey', 'posts', 'users', ['mentor_id'], ['id'], ondelete='CASCADE')",
            "alter_column keeping existing_nullable=False",
        ),
        (
            "batch_op.create_foreign_key('fk_posts_owner_id', 'users', ['owner_id'], ['id'], ondelete='CASCADE')",
            "altered to NOT NULL after add_column",
        ),
    ] {
        assert!(fixed.contains(line), "{action}: {line}\n{fixed}");
    }
}

#[test]
fn backslash_continuations_inside_the_arguments() {
    // A `\` line continuation is no argument: the table and columns keep their places.
    let fixed = fix(
        "from alembic import op\nimport sqlalchemy as sa\n\n\ndef upgrade():\n    op.create_table('notes',\n    sa.Column('id', sa.Integer(), nullable=False),\n    sa.Column('author_id', sa.Integer(), nullable=False),\n    sa.ForeignKeyConstraint(['author_id'], \\\n        ['users.id'], ),\n    sa.PrimaryKeyConstraint('id')\n    )\n    op.create_foreign_key('fk_notes_editor', 'notes', \\\n        'users', ['editor_id'], ['id'])\n\n\ndef downgrade():\n    op.drop_table('notes')\n",
    );
    for line in [
        "        ['users.id'], ondelete='CASCADE'),",
        "        'users', ['editor_id'], ['id'], ondelete='SET NULL')",
    ] {
        assert!(fixed.contains(line), "{line}\n{fixed}");
    }
}

#[test]
fn drop_and_create_pairs_that_do_more_than_revert_stay() {
    // Each upgrade() drops a key and creates it again, and downgrade() puts back SET NULL, the
    // rule the policy gives editor_id: shaped like autogenerate's revert, but each pair also
    // renames the key, adds an option, brackets a type change, or sets the rule on purpose.
    let cases = [
        (
            "renames the key",
            "    op.drop_constraint('old_editor_fk', 'notes', type_='foreignkey')\n    op.create_foreign_key('fk_notes_editor', 'notes', 'users', ['editor_id'], ['id'])\n",
            "    op.drop_constraint('fk_notes_editor', 'notes', type_='foreignkey')\n    op.create_foreign_key('old_editor_fk', 'notes', 'users', ['editor_id'], ['id'], ondelete='SET NULL')\n",
        ),
        (
            "makes it deferrable",
            "    op.drop_constraint('notes_editor_id_fkey', 'notes', type_='foreignkey')\n    op.create_foreign_key(None, 'notes', 'users', ['editor_id'], ['id'], deferrable=True)\n",
            "    op.drop_constraint(None, 'notes', type_='foreignkey')\n    op.create_foreign_key('notes_editor_id_fkey', 'notes', 'users', ['editor_id'], ['id'], ondelete='SET NULL')\n",
        ),
        (
            "adds ON UPDATE",
            "    op.drop_constraint('notes_editor_id_fkey', 'notes', type_='foreignkey')\n    op.create_foreign_key(None, 'notes', 'users', ['editor_id'], ['id'], onupdate='CASCADE')\n",
            "    op.drop_constraint(None, 'notes', type_='foreignkey')\n    op.create_foreign_key('notes_editor_id_fkey', 'notes', 'users', ['editor_id'], ['id'], ondelete='SET NULL')\n",
        ),
        (
            "changes the column's type in between",
            "    op.drop_constraint('notes_editor_id_fkey', 'notes', type_='foreignkey')\n    op.alter_column('notes', 'editor_id', type_=sa.BigInteger())\n    op.create_foreign_key(None, 'notes', 'users', ['editor_id'], ['id'])\n",
            "    op.drop_constraint(None, 'notes', type_='foreignkey')\n    op.alter_column('notes', 'editor_id', type_=sa.Integer())\n    op.create_foreign_key('notes_editor_id_fkey', 'notes', 'users', ['editor_id'], ['id'], ondelete='SET NULL')\n",
        ),
        (
            "sets the rule the downgrade restores",
            "    op.drop_constraint('notes_editor_id_fkey', 'notes', type_='foreignkey')\n    op.create_foreign_key(None, 'notes', 'users', ['editor_id'], ['id'], ondelete='SET NULL')\n",
            "    op.drop_constraint(None, 'notes', type_='foreignkey')\n    op.create_foreign_key('notes_editor_id_fkey', 'notes', 'users', ['editor_id'], ['id'], ondelete='SET NULL')\n",
        ),
    ];
    for (what, upgrade, downgrade) in cases {
        let src = format!(
            "from alembic import op\nimport sqlalchemy as sa\n\n\ndef upgrade():\n{upgrade}\n\ndef downgrade():\n{downgrade}"
        );
        let fixed = fix(&src);
        let (up, down) = fixed.split_once("def downgrade").unwrap();
        for part in [up, down] {
            assert!(
                part.contains("op.drop_constraint(") && part.contains("op.create_foreign_key("),
                "a pair that {what} was removed:\n{fixed}"
            );
        }
    }
}

#[test]
fn autogenerates_revert_pair_is_still_removed() {
    // As Alembic 1.20.1 wrote them on PostgreSQL: the create carries the model's options as
    // written, the mirror the database's (no `match`, `initially` in upper case).
    for (create_options, mirror_options) in [
        ("", ""),
        (", match='FULL'", ""),
        (
            ", deferrable=True, initially='deferred'",
            ", deferrable=True, initially='DEFERRED'",
        ),
        (", onupdate='cascade'", ", onupdate='CASCADE'"),
    ] {
        let fixed = fix(&format!(
            "from alembic import op\nimport sqlalchemy as sa\n\n\ndef upgrade():\n    op.drop_constraint(op.f('notes_editor_id_fkey'), 'notes', type_='foreignkey')\n    op.create_foreign_key(None, 'notes', 'users', ['editor_id'], ['id']{create_options})\n\n\ndef downgrade():\n    op.drop_constraint(None, 'notes', type_='foreignkey')\n    op.create_foreign_key(op.f('notes_editor_id_fkey'), 'notes', 'users', ['editor_id'], ['id'], ondelete='SET NULL'{mirror_options})\n"
        ));
        assert!(
            !fixed.contains("create_foreign_key") && !fixed.contains("drop_constraint"),
            "{create_options}\n{fixed}"
        );
    }
}

#[test]
fn an_unnamed_key_in_a_batch_add_column_gets_a_name() {
    // SQLite recreates the table in batch mode, where Alembic 1.20.1 raised
    // `ValueError: Constraint must have a name` for the unnamed ForeignKey.
    let fixed = fix(
        "from alembic import op\nimport sqlalchemy as sa\n\n\ndef upgrade():\n    with op.batch_alter_table('notes') as batch_op:\n        batch_op.add_column(sa.Column('editor_id', sa.Integer(), sa.ForeignKey('users.id'), nullable=True))\n        batch_op.add_column(sa.Column('author_id', sa.Integer(), sa.ForeignKey('users.id', ondelete='CASCADE'), nullable=False))\n    op.add_column('notes', sa.Column('owner_id', sa.Integer(), sa.ForeignKey('users.id'), nullable=True))\n\n\ndef downgrade():\n    pass\n",
    );
    // A key whose rules need a human (SET NULL on a NOT NULL column) still gets its name.
    let flagged = fix(
        "from alembic import op\nimport sqlalchemy as sa\n\n\ndef upgrade():\n    with op.batch_alter_table('notes') as batch_op:\n        batch_op.add_column(sa.Column('author_id', sa.Integer(), sa.ForeignKey('users.id', ondelete='SET NULL'), nullable=False))\n\n\ndef downgrade():\n    pass\n",
    );
    assert!(
        flagged.contains(
            "sa.ForeignKey('users.id', ondelete='SET NULL', name='notes_author_id_fkey')"
        ),
        "{flagged}"
    );
    for line in [
        "sa.ForeignKey('users.id', name='notes_editor_id_fkey', ondelete='SET NULL')",
        "sa.ForeignKey('users.id', ondelete='CASCADE', name='notes_author_id_fkey')",
        // Outside a batch block the key is created with the table's ALTER: no name needed.
        "sa.Column('owner_id', sa.Integer(), sa.ForeignKey('users.id', ondelete='SET NULL'), nullable=True)",
    ] {
        assert!(fixed.contains(line), "{line}\n{fixed}");
    }
}

#[test]
fn history_is_believed_over_a_downgrade_that_says_otherwise() {
    // downgrade() claims the key had SET NULL (copied by hand), but the history before this
    // revision holds it with NO ACTION: the pair sets a rule, it reverts nothing.
    let src = "from alembic import op\nimport sqlalchemy as sa\n\n\ndef upgrade():\n    op.drop_constraint('notes_editor_id_fkey', 'notes', type_='foreignkey')\n    op.create_foreign_key(None, 'notes', 'users', ['editor_id'], ['id'])\n\n\ndef downgrade():\n    op.drop_constraint(None, 'notes', type_='foreignkey')\n    op.create_foreign_key('notes_editor_id_fkey', 'notes', 'users', ['editor_id'], ['id'], ondelete='SET NULL')\n";
    let file = parse::parse_text(Path::new("m.py"), src.to_string()).unwrap();
    let migration = migrations::scan(&file);
    let schema = schema("models.py");
    let config = Config::default();
    let before = |ondelete: Option<&str>| KeySet {
        keys: vec![ExistingKey {
            schema: None,
            table: "notes".into(),
            name: Some("notes_editor_id_fkey".into()),
            columns: vec!["editor_id".into()],
            referent_schema: None,
            referent_table: "users".into(),
            referent_columns: vec!["id".into()],
            ondelete: ondelete.map(str::to_string),
            onupdate: None,
            origin: "versions/001_notes.py:12".into(),
        }],
    };
    let fixed = |keys: &KeySet| {
        let plan = fix::plan_with_history(&file, &migration, &schema, &config, Some(keys));
        fix::fixed_text(&file, plan.edits).unwrap()
    };
    let kept = fixed(&before(None));
    assert!(
        kept.contains("op.drop_constraint('notes_editor_id_fkey'")
            && kept.contains("['editor_id'], ['id'], ondelete='SET NULL')\n\n\ndef downgrade"),
        "{kept}"
    );
    // downgrade() gives the key back as history has it, and the report says which rule went.
    assert!(
        kept.ends_with("['editor_id'], ['id'], ondelete='NO ACTION')\n"),
        "{kept}"
    );
    let plan = fix::plan_with_history(&file, &migration, &schema, &config, Some(&before(None)));
    let restored: Vec<&str> = plan
        .keys
        .iter()
        .filter(|k| k.line == 12)
        .map(|k| k.reason.as_str())
        .collect();
    assert_eq!(
        restored,
        [
            "downgrade() restores the rules the key had before (history: versions/001_notes.py:12), not the ondelete='SET NULL' it said (the rule of the database autogenerate compared against, where the migrations give the key another)"
        ]
    );
    // With history agreeing with downgrade(), the pair only reverts: it goes.
    let removed = fixed(&before(Some("SET NULL")));
    assert!(!removed.contains("create_foreign_key"), "{removed}");
}
