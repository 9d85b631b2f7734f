//! `history`: replaying Alembic revisions into the foreign keys they leave, on the fixture of
//! tests/fixtures/repair (a branch, a merge, a rename, drop_table, drop_column, batch blocks)
//! and on small revisions written here for what the tool must list rather than guess.

use std::fs;
use std::path::Path;

use fix_migrations::discover::{find_project, read_revisions};
use fix_migrations::history::{Dialect, History, graph_order};
use fix_migrations::keyset::ExistingKey;
use fix_migrations::models::Schema;

fn fixture() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/repair")
}

fn key_text(k: &ExistingKey) -> String {
    format!(
        "{}.{} -> {}.{} name={} ondelete={} ({})",
        k.table,
        k.columns.join(","),
        k.referent_table,
        k.referent_columns.join(","),
        k.name.as_deref().unwrap_or("-"),
        k.ondelete.as_deref().unwrap_or("NO ACTION"),
        k.origin
    )
}

#[test]
fn fixture_history_on_both_dialects() {
    let project = find_project(&fixture()).unwrap();
    let revisions = read_revisions(&project).unwrap();
    let order: Vec<&str> = graph_order(&revisions)
        .unwrap()
        .iter()
        .map(|r| r.id.as_str())
        .collect();
    assert_eq!(
        order,
        [
            "1a0000000001",
            "2a0000000002",
            "2b0000000003",
            "3c0000000004",
            "4d0000000005"
        ]
    );
    let history = History::load(&project.root, revisions).unwrap();
    let schema = Schema::default();

    let pg: Vec<String> = history
        .at_head(&schema, Dialect::Postgresql)
        .keys
        .keys
        .iter()
        .map(key_text)
        .collect();
    assert_eq!(
        pg,
        [
            "academy_gallery_materials_attachments.uploaded_material_revision_id -> materials.id name=academy_gallery_materials_att_uploaded_material_revision_i_fkey ondelete=NO ACTION (migrations/versions/4d0000000005_items.py:41)",
            "galleries.cover_id -> files.id name=albums_cover_fk ondelete=SET NULL (migrations/versions/1a0000000001_initial.py:53)",
            "galleries.group_id -> groups.id name=albums_group_id_fkey ondelete=SET NULL (migrations/versions/1a0000000001_initial.py:51)",
            "galleries.status_id -> statuses.id name=albums_status_id_fkey ondelete=SET NULL (migrations/versions/1a0000000001_initial.py:52)",
            "items.created_by -> users.id name=items_created_by_fkey ondelete=NO ACTION (migrations/versions/4d0000000005_items.py:30)",
            "items.gallery_id -> galleries.id name=items_gallery_id_fkey ondelete=NO ACTION (migrations/versions/4d0000000005_items.py:29)",
            "items.material_id -> materials.id name=items_material_id_fkey ondelete=SET NULL (migrations/versions/4d0000000005_items.py:35)",
            "users.role_id -> roles.id name=users_role_id_fkey ondelete=NO ACTION (migrations/versions/1a0000000001_initial.py:35)",
        ]
    );
    // SQLite leaves keys created inside CREATE TABLE unnamed; named ones keep their name.
    let sqlite = history.at_head(&schema, Dialect::Sqlite);
    let named: Vec<(&str, Option<&str>)> = sqlite
        .keys
        .keys
        .iter()
        .map(|k| (k.columns[0].as_str(), k.name.as_deref()))
        .collect();
    assert!(named.contains(&("cover_id", Some("albums_cover_fk"))));
    assert!(named.contains(&("material_id", Some("items_material_id_fkey"))));
    assert!(named.contains(&("group_id", None)));
    assert_eq!(sqlite.unreadable.len(), 1);
    assert!(sqlite.unreadable[0].what.contains("raw SQL"));
    assert_eq!(
        sqlite.unreadable[0].origin,
        "migrations/versions/1a0000000001_initial.py:57"
    );

    // Before the merge's child: both branches, albums already renamed, no items yet.
    let before = history.before("4d0000000005", &schema, Dialect::Postgresql);
    let tables: Vec<&str> = before.keys.keys.iter().map(|k| k.table.as_str()).collect();
    assert_eq!(tables, ["galleries", "galleries", "galleries", "users"]);
    // Before the rename, on one branch only.
    let before = history.before("2b0000000003", &schema, Dialect::Postgresql);
    assert!(before.keys.keys.iter().any(|k| k.table == "albums"));
}

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

#[test]
fn lists_what_it_cannot_read_and_follows_batch_operations() {
    let dir = tempfile::tempdir().unwrap();
    let root = fs::canonicalize(dir.path()).unwrap();
    write(
        &root,
        "alembic.ini",
        "[alembic]\nscript_location = migrations\n",
    );
    write(
        &root,
        "migrations/versions/a1_base.py",
        "from alembic import op\nimport sqlalchemy as sa\nrevision = 'a1'\ndown_revision = None\n\ndef upgrade():\n    op.create_table('t', sa.Column('id', sa.Integer()), sa.Column('p_id', sa.Integer(), sa.ForeignKey('p.id', ondelete='cascade')), sa.Column('q_id', sa.Integer()), sa.Column('r_id', sa.Integer()), sa.ForeignKeyConstraint(['q_id'], ['q.id']), sa.ForeignKeyConstraint(['r_id'], ['r.id'], name=NAME))\n\ndef downgrade():\n    op.drop_table('t')\n",
    );
    write(
        &root,
        "migrations/versions/b2_next.py",
        "from alembic import op\nimport sqlalchemy as sa\nfrom helpers import add_keys\nrevision = 'b2'\ndown_revision = 'a1'\n\ndef upgrade():\n    with op.batch_alter_table('t', naming_convention={'fk': 'fk_%(table_name)s_%(column_0_name)s'}) as b:\n        b.alter_column('q_id', new_column_name='qq_id')\n        b.drop_constraint('fk_t_p_id', type_='foreignkey')\n    add_keys(op)\n    if op.get_context().dialect.name == 'postgresql':\n        op.create_foreign_key('x', 't', 'q', ['id'], ['id'])\n    sa.Enum('a', name='e').create(op.get_bind())\n\ndef downgrade():\n    pass\n",
    );
    let project = find_project(&root).unwrap();
    let history = History::load(&root, read_revisions(&project).unwrap()).unwrap();
    let replay = history.at_head(&Schema::default(), Dialect::Sqlite);
    let keys: Vec<String> = replay.keys.keys.iter().map(key_text).collect();
    assert_eq!(
        keys,
        ["t.qq_id -> q.id name=fk_t_q_id ondelete=NO ACTION (migrations/versions/a1_base.py:7)"],
        "the batch naming_convention named the SQLite keys, the drop removed p_id, alter_column renamed q_id"
    );
    let what: Vec<&str> = replay.unreadable.iter().map(|u| u.what.as_str()).collect();
    assert_eq!(what.len(), 3, "{what:#?}");
    assert!(
        what[0].contains("its name is not a string literal"),
        "{}",
        what[0]
    );
    assert!(
        what[1].contains("`add_keys(op)`: a call the tool can't follow"),
        "{}",
        what[1]
    );
    assert!(
        what[2].contains("inside a `if` statement: not replayed"),
        "{}",
        what[2]
    );
    assert_eq!(
        replay.unreadable[1].origin,
        "migrations/versions/b2_next.py:11"
    );
}
