//! Integration tests for `fix_migrations::discover`: small project trees built in temp dirs.

use std::fs;
use std::path::{Path, PathBuf};

use fix_migrations::discover::{
    Revision, expand_paths, find_project, heads, model_files, project_for, project_start,
    read_revisions,
};

/// A temp dir whose path is canonical (so it compares equal to what discovery resolves).
struct Tree {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl Tree {
    fn new() -> Tree {
        let dir = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(dir.path()).unwrap();
        Tree { _dir: dir, root }
    }

    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let path = self.root.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, text).unwrap();
        path
    }

    fn mkdir(&self, rel: &str) -> PathBuf {
        let path = self.root.join(rel);
        fs::create_dir_all(&path).unwrap();
        path
    }

    fn p(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// Paths relative to the root, as strings, for compact assertions.
    fn rel(&self, paths: &[PathBuf]) -> Vec<String> {
        paths
            .iter()
            .map(|p| {
                p.strip_prefix(&self.root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect()
    }
}

fn migration(id: &str, down: &str) -> String {
    format!(
        "\"\"\"{id}\n\nRevision ID: {id}\n\"\"\"\nfrom alembic import op\nimport sqlalchemy as sa\n\n\
         revision = '{id}'\ndown_revision = {down}\nbranch_labels = None\ndepends_on = None\n\n\n\
         def upgrade():\n    pass\n\n\ndef downgrade():\n    pass\n"
    )
}

fn ids(revisions: &[&Revision]) -> Vec<String> {
    revisions.iter().map(|r| r.id.clone()).collect()
}

// ----- find_project ---------------------------------------------------------------------------

#[test]
fn alembic_ini_defaults_and_search_upward() {
    let t = Tree::new();
    t.write(
        "alembic.ini",
        "# A generic, single database configuration.\n\n[alembic]\n# path to migration scripts\n\
         script_location = migrations\n\n# version_locations = %(here)s/bar\n\
         sqlalchemy.url = driver://user:pass@localhost/dbname\n\n[loggers]\nkeys = root,sqlalchemy\n\n\
         [formatter_generic]\nformat = %(levelname)-5.5s [%(name)s] %(message)s\n",
    );
    let deep = t.mkdir("app/models/sub");
    let project = find_project(&deep).unwrap();
    assert_eq!(project.root, t.root);
    assert_eq!(project.config_file, t.p("alembic.ini"));
    assert_eq!(project.script_location, t.p("migrations"));
    assert_eq!(project.version_dirs, vec![t.p("migrations/versions")]);
    assert_eq!(
        project.sqlalchemy_url.as_deref(),
        Some("driver://user:pass@localhost/dbname")
    );
}

#[test]
fn alembic_ini_here_and_os_separated_version_locations() {
    let t = Tree::new();
    t.write(
        "alembic.ini",
        "[alembic]\nscript_location = %(here)s/db/alembic\n\
         version_locations = %(here)s/db/versions:%(here)s/plugins/versions\n\
         version_path_separator = os\nsqlalchemy.url = postgresql://u:p%%40ss@localhost/app\n",
    );
    let project = find_project(&t.root).unwrap();
    assert_eq!(project.script_location, t.p("db/alembic"));
    assert_eq!(
        project.version_dirs,
        vec![t.p("db/versions"), t.p("plugins/versions")]
    );
    assert_eq!(
        project.sqlalchemy_url.as_deref(),
        Some("postgresql://u:p%40ss@localhost/app")
    );
}

#[test]
fn version_locations_separators() {
    let cases = [
        (
            "version_path_separator = space\nversion_locations = a b\n",
            vec!["a", "b"],
        ),
        (
            "version_path_separator = ;\nversion_locations = a;b\n",
            vec!["a", "b"],
        ),
        (
            "version_path_separator = ,\nversion_locations = a, b\n",
            vec!["a", "b"],
        ),
        (
            "path_separator = :\nversion_locations = a:b\n",
            vec!["a", "b"],
        ),
        (
            "path_separator = newline\nversion_locations =\n    a\n    sub/../b\n",
            vec!["a", "b"],
        ),
        // older inis without the key: spaces and commas
        ("version_locations = a, b c\n", vec!["a", "b", "c"]),
    ];
    for (settings, expected) in cases {
        let t = Tree::new();
        t.write(
            "alembic.ini",
            &format!("[alembic]\nscript_location = alembic\n{settings}"),
        );
        let project = find_project(&t.root).unwrap();
        let expected: Vec<PathBuf> = expected.iter().map(|e| t.p(e)).collect();
        assert_eq!(project.version_dirs, expected, "{settings}");
    }
}

#[test]
fn bad_separator_names_file_and_key() {
    let t = Tree::new();
    t.write(
        "alembic.ini",
        "[alembic]\nscript_location = alembic\nversion_locations = a|b\nversion_path_separator = |\n",
    );
    let err = find_project(&t.root).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "{}: version_path_separator: `|` is not one of os, space, newline, `:`, `;`, `,`",
            t.p("alembic.ini").display()
        )
    );
}

#[test]
fn pyproject_tool_alembic() {
    let t = Tree::new();
    t.write(
        "pyproject.toml",
        "[project]\nname = \"app\"\n\n[tool.alembic]\nscript_location = \"%(here)s/alembic\"\n\
         version_locations = [\"%(here)s/alembic/versions\", \"extra/versions\"]\n",
    );
    let project = find_project(&t.mkdir("src")).unwrap();
    assert_eq!(project.config_file, t.p("pyproject.toml"));
    assert_eq!(project.script_location, t.p("alembic"));
    assert_eq!(
        project.version_dirs,
        vec![t.p("alembic/versions"), t.p("extra/versions")]
    );
    assert_eq!(project.sqlalchemy_url, None);
}

#[test]
fn pyproject_with_alembic_ini_holding_only_the_url() {
    let t = Tree::new();
    t.write(
        "pyproject.toml",
        "[tool.alembic]\nscript_location = \"migrations\"\n",
    );
    t.write(
        "alembic.ini",
        "[alembic]\nsqlalchemy.url = sqlite:///%(here)s/app.db\n",
    );
    let project = find_project(&t.root).unwrap();
    assert_eq!(project.config_file, t.p("pyproject.toml"));
    assert_eq!(project.script_location, t.p("migrations"));
    assert_eq!(project.version_dirs, vec![t.p("migrations/versions")]);
    let url = format!("sqlite:///{}/app.db", t.root.display());
    assert_eq!(project.sqlalchemy_url.as_deref(), Some(url.as_str()));
}

#[test]
fn alembic_ini_with_script_location_wins_over_pyproject() {
    let t = Tree::new();
    t.write(
        "pyproject.toml",
        "[tool.alembic]\nscript_location = \"from_pyproject\"\n",
    );
    t.write("alembic.ini", "[alembic]\nscript_location = from_ini\n");
    let project = find_project(&t.root).unwrap();
    assert_eq!(project.config_file, t.p("alembic.ini"));
    assert_eq!(project.script_location, t.p("from_ini"));
}

#[test]
fn package_resource_script_location() {
    let t = Tree::new();
    t.write(
        "alembic.ini",
        "[alembic]\nscript_location = myapp.db:migrations\n",
    );
    t.mkdir("src/myapp/db/migrations/versions");
    let project = find_project(&t.root).unwrap();
    assert_eq!(project.script_location, t.p("src/myapp/db/migrations"));
    assert_eq!(
        project.version_dirs,
        vec![t.p("src/myapp/db/migrations/versions")]
    );
}

#[test]
fn pyproject_without_tool_alembic_is_passed_over() {
    let t = Tree::new();
    t.write("alembic.ini", "[alembic]\nscript_location = alembic\n");
    t.write("service/pyproject.toml", "[project]\nname = \"service\"\n");
    let project = find_project(&t.p("service")).unwrap();
    assert_eq!(project.config_file, t.p("alembic.ini"));
}

#[test]
fn no_project_names_the_start_dir() {
    let t = Tree::new();
    let start = t.mkdir("nothing/here");
    let err = find_project(&start).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "{}: no Alembic project found (no alembic.ini or pyproject.toml with [tool.alembic] here or in any parent directory)",
            start.display()
        )
    );
}

#[test]
fn invalid_pyproject_is_one_line() {
    let t = Tree::new();
    t.write("pyproject.toml", "[tool.alembic\nscript_location = 1\n");
    let err = find_project(&t.root).unwrap_err().to_string();
    assert!(!err.contains('\n'), "{err}");
    assert!(
        err.starts_with(&format!(
            "{}: invalid TOML: ",
            t.p("pyproject.toml").display()
        )),
        "{err}"
    );
}

#[test]
fn missing_start_dir_is_one_line() {
    let t = Tree::new();
    let missing = t.p("gone");
    let err = find_project(&missing).unwrap_err().to_string();
    assert_eq!(
        err,
        format!("{}: No such file or directory", missing.display())
    );
}

#[test]
fn missing_script_location_names_file_and_key() {
    let t = Tree::new();
    t.write("alembic.ini", "[alembic]\nsqlalchemy.url = sqlite://\n");
    let err = find_project(&t.root).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "{}: no script_location in [alembic]",
            t.p("alembic.ini").display()
        )
    );

    let t = Tree::new();
    t.write(
        "pyproject.toml",
        "[tool.alembic]\nversion_locations = [\"v\"]\n",
    );
    let err = find_project(&t.root).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "{}: no script_location in [tool.alembic]",
            t.p("pyproject.toml").display()
        )
    );
}

#[test]
fn project_start_prefers_flag_then_config_dir_then_cwd() {
    let t = Tree::new();
    t.write("svc/alembic.ini", "[alembic]\nscript_location = alembic\n");
    let plain = t.mkdir("plain");
    let cwd = t.mkdir("cwd");
    let flag = t.p("flag");
    assert_eq!(project_start(Some(&flag), &[t.p("svc")], &cwd), flag);
    assert_eq!(
        project_start(None, &[plain.clone(), t.p("svc")], &cwd),
        t.p("svc")
    );
    assert_eq!(project_start(None, &[plain], &cwd), cwd);
    let project = project_for(None, &[t.p("svc")], &cwd).unwrap();
    assert_eq!(project.script_location, t.p("svc/alembic"));
}

// ----- revisions and heads --------------------------------------------------------------------

fn project_with_versions(t: &Tree) -> fix_migrations::discover::Project {
    t.write(
        "alembic.ini",
        "[alembic]\nscript_location = %(here)s/alembic\n",
    );
    t.mkdir("alembic/versions");
    find_project(&t.root).unwrap()
}

#[test]
fn linear_history_has_one_head() {
    let t = Tree::new();
    let project = project_with_versions(&t);
    t.write(
        "alembic/versions/0001_init.py",
        &migration("aaa111", "None"),
    );
    t.write(
        "alembic/versions/0002_users.py",
        &migration("bbb222", "'aaa111'"),
    );
    t.write(
        "alembic/versions/0003_posts.py",
        &migration("ccc333", "\"bbb222\""),
    );
    t.write(
        "alembic/versions/__init__.py",
        "revision = 'not-a-migration'\ndown_revision = None\n",
    );
    t.write(
        "alembic/versions/_helpers.py",
        "revision = 'helper'\ndown_revision = None\n",
    );
    t.write(
        "alembic/versions/.#0003_posts.py",
        "revision = 'lock'\ndown_revision = None\n",
    );
    t.write("alembic/versions/notes.txt", "revision = 'txt'\n");
    t.write(
        "alembic/versions/__pycache__/x.py",
        "revision = 'cache'\ndown_revision = None\n",
    );
    t.write(
        "alembic/versions/util.py",
        "def helper():\n    revision = 'local'\n",
    );
    let revisions = read_revisions(&project).unwrap();
    assert_eq!(
        revisions,
        vec![
            Revision {
                id: "aaa111".into(),
                down_revisions: vec![],
                path: t.p("alembic/versions/0001_init.py"),
            },
            Revision {
                id: "bbb222".into(),
                down_revisions: vec!["aaa111".into()],
                path: t.p("alembic/versions/0002_users.py"),
            },
            Revision {
                id: "ccc333".into(),
                down_revisions: vec!["bbb222".into()],
                path: t.p("alembic/versions/0003_posts.py"),
            },
        ]
    );
    assert_eq!(ids(&heads(&revisions)), vec!["ccc333"]);
}

#[test]
fn annotated_forms() {
    let t = Tree::new();
    let project = project_with_versions(&t);
    t.write(
        "alembic/versions/1_base.py",
        "from typing import Sequence, Union\n\nrevision: str = '1a'\n\
         down_revision: Union[str, None] = None\n\
         branch_labels: Union[str, Sequence[str], None] = None\n",
    );
    t.write(
        "alembic/versions/2_next.py",
        "from typing import Sequence, Union\n\nrevision: str = \"2b\"\n\
         down_revision: Union[str, None] = '1a'\n",
    );
    t.write(
        "alembic/versions/3_merge.py",
        "from typing import Sequence, Union\n\nrevision: str = '3c'\n\
         down_revision: Union[str, Sequence[str], None] = ('2b', '1a')\n",
    );
    let revisions = read_revisions(&project).unwrap();
    let downs: Vec<(String, Vec<String>)> = revisions
        .iter()
        .map(|r| (r.id.clone(), r.down_revisions.clone()))
        .collect();
    assert_eq!(
        downs,
        vec![
            ("1a".to_string(), vec![]),
            ("2b".to_string(), vec!["1a".to_string()]),
            ("3c".to_string(), vec!["2b".to_string(), "1a".to_string()]),
        ]
    );
}

#[test]
fn branches_give_two_heads_and_a_merge_collapses_them() {
    let t = Tree::new();
    let project = project_with_versions(&t);
    t.write("alembic/versions/base.py", &migration("base", "None"));
    t.write(
        "alembic/versions/feature_b.py",
        &migration("zzz_b", "'base'"),
    );
    t.write(
        "alembic/versions/feature_a.py",
        &migration("aaa_a", "'base'"),
    );
    let revisions = read_revisions(&project).unwrap();
    assert_eq!(ids(&heads(&revisions)), vec!["aaa_a", "zzz_b"]);

    t.write(
        "alembic/versions/merge.py",
        &migration("merge1", "('aaa_a', 'zzz_b')"),
    );
    let revisions = read_revisions(&project).unwrap();
    let merged = heads(&revisions);
    assert_eq!(ids(&merged), vec!["merge1"]);
    assert_eq!(
        merged[0].down_revisions,
        vec!["aaa_a".to_string(), "zzz_b".to_string()]
    );
    assert_eq!(merged[0].path, t.p("alembic/versions/merge.py"));
}

#[test]
fn recursive_and_multiple_version_locations() {
    let t = Tree::new();
    t.write(
        "alembic.ini",
        "[alembic]\nscript_location = alembic\nversion_locations = %(here)s/alembic/versions %(here)s/plugin\nversion_path_separator = space\n",
    );
    t.write("alembic/versions/2024/01/a.py", &migration("a", "None"));
    t.write("alembic/versions/2024/02/b.py", &migration("b", "['a']"));
    t.write("plugin/p.py", &migration("p", "None"));
    t.write("alembic/versions/.hidden/h.py", &migration("h", "None"));
    let project = find_project(&t.root).unwrap();
    let revisions = read_revisions(&project).unwrap();
    let paths: Vec<PathBuf> = revisions.iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        t.rel(&paths),
        vec![
            "alembic/versions/2024/01/a.py",
            "alembic/versions/2024/02/b.py",
            "plugin/p.py"
        ]
    );
    assert_eq!(ids(&heads(&revisions)), vec!["b", "p"]);
}

#[test]
fn revision_errors_carry_the_path() {
    let t = Tree::new();
    let project = project_with_versions(&t);
    let bad = t.write(
        "alembic/versions/broken.py",
        "revision = 'x'\ndown_revision = (\n",
    );
    let err = read_revisions(&project).unwrap_err().to_string();
    assert!(err.starts_with(&format!("{}:", bad.display())), "{err}");

    fs::remove_file(&bad).unwrap();
    let computed = t.write(
        "alembic/versions/computed.py",
        "revision = make_id()\ndown_revision = None\n",
    );
    let err = read_revisions(&project).unwrap_err().to_string();
    assert_eq!(
        err,
        format!("{}:1: revision is not a string literal", computed.display())
    );

    fs::remove_file(&computed).unwrap();
    let orphan = t.write("alembic/versions/orphan.py", "revision = 'o'\n");
    let err = read_revisions(&project).unwrap_err().to_string();
    assert_eq!(
        err,
        format!("{}: revision \"o\" has no down_revision", orphan.display())
    );
}

#[test]
fn missing_versions_dir_is_an_error() {
    let t = Tree::new();
    t.write("alembic.ini", "[alembic]\nscript_location = alembic\n");
    let project = find_project(&t.root).unwrap();
    let err = read_revisions(&project).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "{}: versions directory does not exist (from {})",
            t.p("alembic/versions").display(),
            t.p("alembic.ini").display()
        )
    );
}

// ----- expand_paths ---------------------------------------------------------------------------

#[test]
fn expand_paths_files_dirs_and_missing() {
    let t = Tree::new();
    t.write("pkg/b.py", "");
    t.write("pkg/a.py", "");
    t.write("pkg/sub/c.py", "");
    t.write("pkg/readme.md", "");
    t.write("pkg/__pycache__/a.cpython-312.py", "");
    t.write("pkg/.hidden/d.py", "");
    let single = t.write("other/one.txt", "");
    let got = expand_paths(&[single.clone(), t.p("pkg"), t.p("pkg/a.py")]).unwrap();
    assert_eq!(
        t.rel(&got),
        vec!["other/one.txt", "pkg/a.py", "pkg/b.py", "pkg/sub/c.py"]
    );

    let missing = t.p("nope.py");
    let err = expand_paths(&[single, missing.clone()])
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!("{}: No such file or directory", missing.display())
    );
}

// ----- model_files ----------------------------------------------------------------------------

const MODEL: &str =
    "from sqlalchemy.orm import DeclarativeBase\n\nclass Base(DeclarativeBase):\n    pass\n";

#[test]
fn model_walk_skips_ignored_envs_and_versions() {
    let t = Tree::new();
    t.write(".gitignore", "generated/\n*.gen.py\n");
    t.write(
        "app/models.py",
        "class User(Base):\n    __tablename__ = 'users'\n",
    );
    t.write(
        "app/sqlmodels.py",
        "class Hero(SQLModel, table=True):\n    id: int\n",
    );
    t.write("app/core.py", "t = Table('t', metadata)\n");
    t.write("app/flask.py", "class A(db.Model):\n    pass\n");
    t.write("app/base.py", MODEL);
    t.write("app/fk.py", "x = mapped_column(ForeignKey('users.id'))\n");
    t.write(
        "app/rels.py",
        "User.addresses = relationship('Address', cascade='all')\n",
    );
    t.write(
        "app/orm.py",
        "def start_mappers():\n    registry.map_imperatively(Order, orders)\n",
    );
    t.write("app/views.py", "def index():\n    return 'hello'\n");
    t.write("app/data.gen.py", "__tablename__ = 'gen'\n");
    t.write("generated/models.py", "__tablename__ = 'gen'\n");
    t.write(
        "venv/lib/python3.12/site-packages/lib.py",
        "__tablename__ = 'x'\n",
    );
    t.write(".venv/lib.py", "__tablename__ = 'x'\n");
    t.write("myenv/pyvenv.cfg", "home = /usr/bin\n");
    t.write("myenv/lib/mod.py", "__tablename__ = 'x'\n");
    t.write("node_modules/x.py", "__tablename__ = 'x'\n");
    t.write("build/lib/app/models.py", "__tablename__ = 'x'\n");
    t.write(".hidden/models.py", "__tablename__ = 'x'\n");
    t.write(
        "alembic/versions/0001.py",
        "op.create_table('users')\nsa.ForeignKey('a.id')\n",
    );
    t.write("alembic/env.py", "target_metadata = None\n");
    t.write("app/models.txt", "__tablename__ = 'x'\n");

    let got = model_files(&t.root, &[], &[t.p("alembic/versions")]).unwrap();
    assert_eq!(
        t.rel(&got),
        vec![
            "app/base.py",
            "app/core.py",
            "app/fk.py",
            "app/flask.py",
            "app/models.py",
            "app/orm.py",
            "app/rels.py",
            "app/sqlmodels.py"
        ]
    );

    // Without the exclusion the versions dir is read like any other.
    let got = model_files(&t.root, &[], &[]).unwrap();
    assert!(got.contains(&t.p("alembic/versions/0001.py")));
}

#[test]
fn model_globs() {
    let t = Tree::new();
    t.write("app/models/user.py", "class User: pass\n");
    t.write("app/models/post.py", "class Post: pass\n");
    t.write("app/models/sub/tag.py", "class Tag: pass\n");
    t.write("lib/schema.py", "");
    let got = model_files(
        &t.root,
        &[
            "app/models/*.py".to_string(),
            "lib".to_string(),
            "app/**/tag.py".to_string(),
        ],
        &[],
    )
    .unwrap();
    assert_eq!(
        t.rel(&got),
        vec![
            "app/models/post.py",
            "app/models/sub/tag.py",
            "app/models/user.py",
            "lib/schema.py"
        ]
    );

    let abs = format!("{}/app/models/u*.py", t.root.display());
    let got = model_files(Path::new("/"), &[abs], &[]).unwrap();
    assert_eq!(got, vec![t.p("app/models/user.py")]);

    let err = model_files(&t.root, &["nothing/*.py".to_string()], &[])
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!(
            "models glob `nothing/*.py` matched no files (relative to {})",
            t.root.display()
        )
    );
}
