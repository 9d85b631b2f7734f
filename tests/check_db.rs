//! `fix-migrations check-db` against real databases: SQLite files made by Alembic or by raw
//! SQL, and a throwaway PostgreSQL cluster (unix socket with trust, TCP with scram passwords).
//! Every test runs the built binary and reads its exit status, JSON, text and messages.

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{CmdOutput, PgCluster, manifest_dir, run, tool_bin, venv};

// ---- helpers ---------------------------------------------------------------------------------

/// The binary with a clean environment: no database settings from the machine, a HOME of its
/// own (so no ~/.pgpass of the machine is read).
fn check_db(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> CmdOutput {
    let home = dir.join(".home");
    fs::create_dir_all(&home).unwrap();
    let mut cmd = Command::new(tool_bin());
    cmd.arg("check-db").args(args).current_dir(dir);
    for var in [
        "DATABASE_URL",
        "PGPASSWORD",
        "PGPASSFILE",
        "PGHOST",
        "PGPORT",
        "PGUSER",
        "PGDATABASE",
        "PGSSLMODE",
        "PGSSLROOTCERT",
        "PGSSLCERT",
        "PGSSLKEY",
        "NO_COLOR",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("HOME", &home);
    for (k, v) in env {
        cmd.env(k, v);
    }
    run(&mut cmd).unwrap()
}

fn code(out: &CmdOutput) -> i32 {
    out.status.code().unwrap_or(-1)
}

fn json(out: &CmdOutput) -> Value {
    serde_json::from_str(out.stdout.trim())
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", out.report()))
}

/// The JSON entries by `table(columns)`, e.g. `posts(author_id)`.
fn keys_by_label(json: &Value) -> BTreeMap<String, Value> {
    json["foreign_keys"]
        .as_array()
        .expect("foreign_keys array")
        .iter()
        .map(|k| {
            let table = match k["schema"].as_str() {
                Some(schema) => format!("{schema}.{}", k["table"].as_str().unwrap()),
                None => k["table"].as_str().unwrap().to_string(),
            };
            let columns: Vec<&str> = k["columns"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap())
                .collect();
            (format!("{table}({})", columns.join(",")), k.clone())
        })
        .collect()
}

fn statuses(json: &Value) -> BTreeMap<String, String> {
    keys_by_label(json)
        .into_iter()
        .map(|(label, k)| (label, k["status"].as_str().unwrap().to_string()))
        .collect()
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// A copy of an example project (with its migrations as Alembic wrote them).
fn example_copy(name: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix(&format!("check-db-{name}-"))
        .tempdir()
        .unwrap();
    copy_dir(&manifest_dir().join("examples").join(name), dir.path());
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap().flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if name == ".venv" || name == "__pycache__" || name == "app.db" {
            continue;
        }
        if path.is_dir() {
            copy_dir(&path, &to.join(&name));
        } else {
            fs::copy(&path, to.join(&name)).unwrap();
        }
    }
}

fn alembic(dir: &Path, url: &str, args: &[&str]) {
    let out = run(Command::new(venv().bin("alembic"))
        .args(args)
        .current_dir(dir)
        .env("DATABASE_URL", url)
        .env("PYTHONDONTWRITEBYTECODE", "1"))
    .unwrap();
    assert!(out.status.success(), "{}", out.report());
}

fn fix_write(dir: &Path) {
    let out = run(Command::new(tool_bin())
        .args(["--write", "--quiet"])
        .current_dir(dir))
    .unwrap();
    assert_eq!(code(&out), 0, "{}", out.report());
}

const ALEMBIC_INI: &str = "[alembic]\nscript_location = %(here)s/migrations\n";

/// A project of models only (alembic.ini without a URL), for databases made with raw SQL.
fn models_project(models: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("check-db-raw-")
        .tempdir()
        .unwrap();
    fs::write(dir.path().join("alembic.ini"), ALEMBIC_INI).unwrap();
    fs::create_dir_all(dir.path().join("migrations/versions")).unwrap();
    fs::write(dir.path().join("models.py"), models).unwrap();
    dir
}

// ---- SQLite ----------------------------------------------------------------------------------

#[test]
fn sqlite_alembic_upgrade_before_and_after_the_fix() {
    let project = example_copy("flask-notes");
    let dir = project.path();
    let url = format!("sqlite:///{}", dir.join("app.db").display());

    // As autogenerate wrote it: every key NO ACTION, the policy disagrees on all five.
    alembic(dir, &url, &["upgrade", "head"]);
    let out = check_db(dir, &["--format", "json"], &[("DATABASE_URL", &url)]);
    assert_eq!(code(&out), 1, "{}", out.report());
    let before = json(&out);
    assert_eq!(before["schema_version"], 1);
    let mismatch = "mismatch";
    assert_eq!(
        statuses(&before),
        map(&[
            ("note_attachment(note_id)", mismatch),
            ("note_attachment(uploaded_by_id)", mismatch),
            ("note_tags(note_id)", mismatch),
            ("note_tags(tag_id)", mismatch),
            ("notes(author_id)", mismatch),
        ])
    );
    let author = &keys_by_label(&before)["notes(author_id)"];
    assert_eq!(author["ondelete"], "NO ACTION");
    assert_eq!(author["policy"]["ondelete"], "CASCADE");
    assert_eq!(author["policy"]["rule"], "relationship");
    assert_eq!(author["model"], "models.py:53", "{author}");

    // Fixed and upgraded again: the database agrees, exit 0. The URL comes from alembic.ini.
    alembic(dir, &url, &["downgrade", "base"]);
    fix_write(dir);
    alembic(dir, &url, &["upgrade", "head"]);
    let out = check_db(dir, &[], &[]);
    assert_eq!(code(&out), 0, "{}", out.report());
    let expected_rows = [
        "note_attachment.note_id -> notes.id         CASCADE    NO ACTION  CASCADE   ok      NOT NULL column",
        "notes.author_id -> users.id                 CASCADE    NO ACTION  CASCADE   ok      relationship User.notes cascade=\"all, delete-orphan\"",
    ];
    for row in expected_rows {
        assert!(
            out.stdout.contains(row),
            "missing row {row:?}\n{}",
            out.report()
        );
    }
    assert!(
        out.stderr
            .contains("5 foreign keys in the database: 5 agree."),
        "{}",
        out.report()
    );
    // --quiet with nothing to say says nothing, not even the table's header.
    let out = check_db(dir, &["--quiet"], &[]);
    assert_eq!(code(&out), 0, "{}", out.report());
    assert_eq!(out.stdout, "", "{}", out.report());
}

const RAW_MODELS: &str = r#"
from sqlalchemy import Column, ForeignKey, ForeignKeyConstraint, Integer
from sqlalchemy.orm import declarative_base

Base = declarative_base()


class User(Base):
    __tablename__ = "users"
    id = Column(Integer, primary_key=True)


class Post(Base):
    __tablename__ = "posts"
    id = Column(Integer, primary_key=True)
    author_id = Column(Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    editor_id = Column(Integer, ForeignKey("users.id"), nullable=True)
    reviewer_id = Column(Integer, nullable=True)


class Revision(Base):
    __tablename__ = "revisions"
    post_id = Column(Integer, primary_key=True)
    rev = Column(Integer, primary_key=True)


class Version(Base):
    __tablename__ = "versions"
    __table_args__ = (
        ForeignKeyConstraint(["post_id", "post_rev"], ["revisions.post_id", "revisions.rev"], ondelete="CASCADE"),
    )
    id = Column(Integer, primary_key=True)
    post_id = Column(Integer, nullable=False)
    post_rev = Column(Integer, nullable=False)


class Comment(Base):
    __tablename__ = "comments"
    id = Column(Integer, primary_key=True)
    post_id = Column(Integer, ForeignKey("posts.id"), nullable=False)


class Pin(Base):
    __tablename__ = "pins"
    id = Column(Integer, primary_key=True)
    owner_id = Column(Integer, ForeignKey("users.id"), nullable=True)
    holder_id = Column(Integer, ForeignKey("users.id", ondelete="SET NULL"), nullable=False)
"#;

const RAW_SQLITE: &str = r#"
CREATE TABLE users (id INTEGER PRIMARY KEY);
CREATE TABLE posts (
    id INTEGER PRIMARY KEY,
    author_id INTEGER NOT NULL,
    editor_id INTEGER,
    reviewer_id INTEGER,
    CONSTRAINT fk_posts_author FOREIGN KEY (author_id) REFERENCES users (id) ON DELETE CASCADE,
    FOREIGN KEY (editor_id) REFERENCES users (id),
    FOREIGN KEY (reviewer_id) REFERENCES users
);
CREATE TABLE revisions (post_id INTEGER, rev INTEGER, PRIMARY KEY (post_id, rev));
CREATE TABLE versions (
    id INTEGER PRIMARY KEY,
    post_id INTEGER NOT NULL,
    post_rev INTEGER NOT NULL,
    FOREIGN KEY (post_id, post_rev) REFERENCES revisions (post_id, rev) ON DELETE CASCADE ON UPDATE CASCADE
);
CREATE TABLE comments (id INTEGER PRIMARY KEY, post_id INTEGER NOT NULL);
CREATE TABLE audit_log (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users (id) ON DELETE SET NULL);
CREATE TABLE pins (
    id INTEGER PRIMARY KEY,
    owner_id INTEGER REFERENCES users (id) ON DELETE RESTRICT,
    holder_id INTEGER NOT NULL REFERENCES users (id) ON DELETE SET NULL
);
INSERT INTO users VALUES (1);
"#;

#[test]
fn sqlite_raw_sql_right_wrong_composite_extra_and_missing_keys() {
    let project = models_project(RAW_MODELS);
    let dir = project.path();
    let db = dir.join("raw.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch(RAW_SQLITE)
        .unwrap();
    let bytes_before = fs::read(&db).unwrap();
    let modified_before = fs::metadata(&db).unwrap().modified().unwrap();

    let out = check_db(dir, &["--url", "sqlite:///raw.db", "--format", "json"], &[]);
    assert_eq!(code(&out), 1, "{}", out.report());
    let report = json(&out);
    assert_eq!(
        statuses(&report),
        map(&[
            ("audit_log(user_id)", "not_in_models"),
            ("comments(post_id)", "missing"),
            // A rule someone chose stands against heuristics, as in a migration.
            ("pins(owner_id)", "ok"),
            // The model says SET NULL, the database has it, and every delete fails.
            ("pins(holder_id)", "finding"),
            ("posts(author_id)", "ok"),
            ("posts(editor_id)", "mismatch"),
            ("posts(reviewer_id)", "not_in_models"),
            ("versions(post_id,post_rev)", "ok"),
        ])
    );
    let keys = keys_by_label(&report);
    assert_eq!(keys["posts(author_id)"]["name"], "fk_posts_author");
    assert_eq!(keys["posts(editor_id)"]["ondelete"], "NO ACTION");
    assert_eq!(keys["posts(editor_id)"]["policy"]["ondelete"], "SET NULL");
    assert_eq!(keys["posts(editor_id)"]["policy"]["rule"], "nullable");
    // `REFERENCES users` without columns: the parent's primary key.
    assert_eq!(keys["posts(reviewer_id)"]["referent_columns"][0], "id");
    assert_eq!(keys["versions(post_id,post_rev)"]["onupdate"], "CASCADE");
    assert_eq!(
        keys["versions(post_id,post_rev)"]["referent_columns"],
        serde_json::json!(["post_id", "rev"])
    );
    assert_eq!(keys["comments(post_id)"]["policy"]["ondelete"], "CASCADE");
    assert_eq!(keys["comments(post_id)"]["ondelete"], Value::Null);
    assert_eq!(keys["audit_log(user_id)"]["policy"], Value::Null);
    assert_eq!(
        report["summary"],
        serde_json::json!({"foreign_keys": 7, "ok": 3, "mismatch": 1, "finding": 1, "not_in_models": 2, "missing": 1})
    );
    assert_eq!(keys["pins(owner_id)"]["policy"]["rule"], "existing");
    assert_eq!(
        keys["pins(owner_id)"]["policy"]["reason"],
        "kept existing ondelete; policy alone would say SET NULL (nullable column)"
    );
    assert_eq!(
        keys["pins(holder_id)"]["message"],
        "set-null-not-null: ON DELETE SET NULL on NOT NULL column pins.holder_id: every delete of the parent fails with a NotNullViolation; use CASCADE or RESTRICT"
    );

    // GitHub annotations point at the model line.
    let out = check_db(
        dir,
        &["--url", "sqlite:///raw.db", "--format", "github"],
        &[],
    );
    assert_eq!(code(&out), 1, "{}", out.report());
    assert!(
        out.stdout.contains(
            "::error file=models.py,line=17,title=fix-migrations check-db mismatch::posts.editor_id -> users.id: ON DELETE NO ACTION in the database, the policy says SET NULL (nullable column)"
        ),
        "{}",
        out.report()
    );
    assert!(
        out.stdout
            .contains("::warning file=models.py,line=40,title=fix-migrations check-db missing::comments.post_id -> posts.id: declared in the models, not in the database (migration not written or not applied?); policy: CASCADE (NOT NULL column)"),
        "{}",
        out.report()
    );

    // --quiet: only what disagrees, no summary.
    let out = check_db(dir, &["--url", "sqlite:///raw.db", "--quiet"], &[]);
    assert_eq!(code(&out), 1, "{}", out.report());
    assert!(!out.stdout.contains("fk_posts_author") && !out.stdout.contains(" ok "));
    assert!(
        out.stdout.contains("posts.editor_id -> users.id"),
        "{}",
        out.report()
    );
    assert!(out.stderr.is_empty(), "{}", out.report());

    // Read-only: the file is byte-for-byte what it was.
    assert_eq!(fs::read(&db).unwrap(), bytes_before);
    assert_eq!(
        fs::metadata(&db).unwrap().modified().unwrap(),
        modified_before
    );
}

#[test]
fn sqlite_url_precedence_and_errors() {
    let project = models_project(RAW_MODELS);
    let dir = project.path();
    rusqlite::Connection::open(dir.join("raw.db"))
        .unwrap()
        .execute_batch(RAW_SQLITE)
        .unwrap();

    // --url wins over DATABASE_URL.
    let out = check_db(
        dir,
        &["--url", "sqlite:///raw.db"],
        &[("DATABASE_URL", "sqlite:///absent.db")],
    );
    assert_eq!(code(&out), 1, "{}", out.report());
    // DATABASE_URL wins over alembic.ini.
    fs::write(
        dir.join("alembic.ini"),
        format!("{ALEMBIC_INI}sqlalchemy.url = sqlite:///%(here)s/raw.db\n"),
    )
    .unwrap();
    let out = check_db(dir, &[], &[("DATABASE_URL", "sqlite:///absent.db")]);
    assert_eq!(code(&out), 2, "{}", out.report());
    assert!(
        out.stderr.contains(&format!(
            "sqlite:///absent.db: no SQLite database file at {}",
            dir.join("absent.db").display()
        )),
        "{}",
        out.report()
    );
    // alembic.ini's URL when nothing else is given.
    let out = check_db(dir, &[], &[]);
    assert_eq!(code(&out), 1, "{}", out.report());

    let cases: &[(&[&str], &str)] = &[
        (
            &["--url", "mysql://app:hunter2@db/app"],
            "mysql://app:***@db/app: unsupported database \"mysql\"",
        ),
        (&["--url", "app.db"], "app.db: not a database URL"),
        (
            &["--url", "sqlite://"],
            "an in-memory SQLite database has no tables to check",
        ),
    ];
    for (args, message) in cases {
        let out = check_db(dir, args, &[]);
        assert_eq!(code(&out), 2, "{}", out.report());
        assert!(
            out.stderr.contains(message),
            "{message:?}\n{}",
            out.report()
        );
        assert!(!out.stderr.contains("hunter2"), "{}", out.report());
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.report());
    }

    // A file that is not a database.
    fs::write(
        dir.join("text.db"),
        "not a database, just text\n".repeat(100),
    )
    .unwrap();
    let out = check_db(dir, &["--url", "sqlite:///text.db"], &[]);
    assert_eq!(code(&out), 2, "{}", out.report());
    assert!(out.stderr.contains("text.db"), "{}", out.report());

    // No URL anywhere.
    let bare = models_project(RAW_MODELS);
    let out = check_db(bare.path(), &[], &[]);
    assert_eq!(code(&out), 2, "{}", out.report());
    assert!(
        out.stderr
            .contains("no database URL: pass --url, set DATABASE_URL"),
        "{}",
        out.report()
    );
}

// ---- connecting: refused, silent server ------------------------------------------------------

#[test]
fn refused_connection_is_a_clear_error() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let project = models_project(RAW_MODELS);
    let url = format!("postgresql://app:Refused-Secret-1@127.0.0.1:{port}/app");
    let out = check_db(project.path(), &["--url", &url], &[]);
    assert_eq!(code(&out), 2, "{}", out.report());
    assert!(
        out.stderr.contains(&format!(
            "postgresql://app:***@127.0.0.1:{port}/app: cannot connect to PostgreSQL at 127.0.0.1 port {port}"
        )),
        "{}",
        out.report()
    );
    assert!(
        out.stderr.to_lowercase().contains("connection refused"),
        "{}",
        out.report()
    );
    assert!(!format!("{}{}", out.stdout, out.stderr).contains("Refused-Secret-1"));
}

#[test]
fn silent_server_times_out_instead_of_hanging() {
    // Accepts connections and never says a word.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    let project = models_project(RAW_MODELS);
    let url = format!("postgresql://app:Silent-Secret-2@127.0.0.1:{port}/app");
    let started = Instant::now();
    let out = check_db(
        project.path(),
        &["--url", &url, "--connect-timeout", "1"],
        &[],
    );
    let took = started.elapsed();
    assert_eq!(code(&out), 2, "{}", out.report());
    assert!(
        out.stderr.contains(&format!(
            "cannot connect to PostgreSQL at 127.0.0.1 port {port}: no answer within 1 s (--connect-timeout)"
        )),
        "{}",
        out.report()
    );
    // A bound against hanging (the server never answers), not a speed target.
    assert!(took < Duration::from_secs(30), "took {took:?}");
    assert!(!format!("{}{}", out.stdout, out.stderr).contains("Silent-Secret-2"));
}

// ---- PostgreSQL ------------------------------------------------------------------------------

const CHECKER_PASSWORD: &str = "Checker-Pass-7f3a";

/// One cluster for this file's PostgreSQL tests: unix socket (trust) and TCP (scram), with a
/// role `checker` that has a password. Each test holds an `Arc`; when the last holder is done
/// the cluster stops (a static would never be dropped, and the server would outlive the run).
fn cluster() -> Arc<PgCluster> {
    static SHARED: Mutex<Weak<PgCluster>> = Mutex::new(Weak::new());
    let mut slot = SHARED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(cluster) = slot.upgrade() {
        return cluster;
    }
    let cluster =
        PgCluster::start_with_tcp().unwrap_or_else(|e| panic!("cannot start PostgreSQL: {e:#}"));
    cluster
        .psql(
            "postgres",
            &format!("CREATE ROLE checker LOGIN PASSWORD '{CHECKER_PASSWORD}'; CREATE ROLE certuser LOGIN"),
        )
        .unwrap();
    let cluster = Arc::new(cluster);
    *slot = Arc::downgrade(&cluster);
    cluster
}

fn skip_postgres() -> bool {
    let skip = std::env::var_os("FIX_MIGRATIONS_E2E_SKIP_POSTGRES").is_some();
    if skip {
        eprintln!("skipping: FIX_MIGRATIONS_E2E_SKIP_POSTGRES is set");
    }
    skip
}

fn socket_url(c: &PgCluster, db: &str) -> String {
    format!(
        "postgresql+psycopg2://postgres@/{db}?host={}&port={}",
        c.socket_dir().display(),
        c.port
    )
}

#[test]
fn postgres_alembic_upgrade_of_the_fixed_example_agrees() {
    if skip_postgres() {
        return;
    }
    let c = cluster();
    c.create_database("cdb_typed").unwrap();
    let project = example_copy("typed-lookups");
    let dir = project.path();
    let url = socket_url(&c, "cdb_typed");
    fix_write(dir);
    alembic(dir, &url, &["upgrade", "head"]);
    let out = check_db(dir, &["--format", "json"], &[("DATABASE_URL", &url)]);
    assert_eq!(code(&out), 0, "{}", out.report());
    let report = json(&out);
    let keys = keys_by_label(&report);
    assert!(keys.len() >= 5, "{report}");
    for (label, key) in &keys {
        assert_eq!(key["status"], "ok", "{label}: {key}");
        // PostgreSQL names every constraint; the naming convention's names are read back.
        assert!(
            key["name"].as_str().is_some_and(|n| n.starts_with("fk_")),
            "{label}: {key}"
        );
    }
    assert!(
        report["database"]["server"]
            .as_str()
            .unwrap()
            .starts_with("PostgreSQL "),
        "{report}"
    );
    assert_eq!(report["database"]["default_schema"], "public");
}

const SCHEMA_MODELS: &str = r#"
from sqlalchemy import Column, ForeignKey, ForeignKeyConstraint, Integer
from sqlalchemy.orm import declarative_base

Base = declarative_base()


class Customer(Base):
    __tablename__ = "customers"
    id = Column(Integer, primary_key=True)


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = {"schema": "sales"}
    id = Column(Integer, primary_key=True)
    customer_id = Column(Integer, ForeignKey("customers.id", ondelete="RESTRICT"), nullable=False)


class OrderLine(Base):
    __tablename__ = "order_lines"
    __table_args__ = (
        ForeignKeyConstraint(["order_id"], ["sales.orders.id"], ondelete="CASCADE"),
        {"schema": "sales"},
    )
    order_id = Column(Integer, primary_key=True)
    line_no = Column(Integer, primary_key=True)


class Shipment(Base):
    __tablename__ = "shipments"
    __table_args__ = (
        ForeignKeyConstraint(
            ["order_id", "line_no"],
            ["sales.order_lines.order_id", "sales.order_lines.line_no"],
            ondelete="CASCADE",
            onupdate="CASCADE",
        ),
        {"schema": "sales"},
    )
    id = Column(Integer, primary_key=True)
    order_id = Column(Integer, nullable=False)
    line_no = Column(Integer, nullable=False)
"#;

const SCHEMA_SQL: &str = "
CREATE SCHEMA sales;
CREATE TABLE customers (id integer PRIMARY KEY);
CREATE TABLE sales.orders (id integer PRIMARY KEY,
    customer_id integer NOT NULL CONSTRAINT orders_customer_id_fkey REFERENCES customers (id));
CREATE TABLE sales.order_lines (order_id integer, line_no integer, PRIMARY KEY (order_id, line_no),
    CONSTRAINT order_lines_order_id_fkey FOREIGN KEY (order_id) REFERENCES sales.orders (id) ON DELETE CASCADE);
CREATE TABLE sales.shipments (id integer PRIMARY KEY, order_id integer NOT NULL, line_no integer NOT NULL,
    CONSTRAINT shipments_line_fkey FOREIGN KEY (order_id, line_no)
        REFERENCES sales.order_lines (order_id, line_no) ON DELETE CASCADE);
CREATE TABLE sales.notes (id integer PRIMARY KEY, customer_id integer REFERENCES customers (id) ON DELETE SET NULL);
GRANT USAGE ON SCHEMA sales TO checker;
";

#[test]
fn postgres_raw_sql_second_schema_composite_keys_and_search_path() {
    if skip_postgres() {
        return;
    }
    let c = cluster();
    c.create_database("cdb_schemas").unwrap();
    c.psql("cdb_schemas", SCHEMA_SQL).unwrap();
    let project = models_project(SCHEMA_MODELS);
    let dir = project.path();

    let expected = map(&[
        // Made wrong with raw SQL: NO ACTION where the model says RESTRICT.
        ("sales.orders(customer_id)", "mismatch"),
        ("sales.order_lines(order_id)", "ok"),
        // Composite key: ON DELETE right, ON UPDATE missing.
        ("sales.shipments(order_id,line_no)", "mismatch"),
        ("sales.notes(customer_id)", "not_in_models"),
    ]);
    let out = check_db(
        dir,
        &["--url", &socket_url(&c, "cdb_schemas"), "--format", "json"],
        &[],
    );
    assert_eq!(code(&out), 1, "{}", out.report());
    let report = json(&out);
    assert_eq!(statuses(&report), expected, "{report}");
    let keys = keys_by_label(&report);
    let orders = &keys["sales.orders(customer_id)"];
    assert_eq!(orders["name"], "orders_customer_id_fkey");
    assert_eq!(orders["referent_schema"], Value::Null);
    assert_eq!(orders["policy"]["ondelete"], "RESTRICT");
    assert_eq!(orders["policy"]["rule"], "model");
    let shipments = &keys["sales.shipments(order_id,line_no)"];
    assert_eq!(shipments["onupdate"], "NO ACTION");
    assert_eq!(shipments["policy"]["onupdate"], "CASCADE");
    assert!(
        shipments["message"]
            .as_str()
            .unwrap()
            .contains("ON UPDATE NO ACTION in the database, the policy says CASCADE"),
        "{shipments}"
    );

    // With sales first on the search_path, public's tables are the qualified ones; the
    // answers are the same.
    let url = format!(
        "{}&options=-csearch_path%3Dsales,public",
        socket_url(&c, "cdb_schemas")
    );
    let out = check_db(dir, &["--url", &url, "--format", "json"], &[]);
    assert_eq!(code(&out), 1, "{}", out.report());
    let report = json(&out);
    assert_eq!(report["database"]["default_schema"], "sales");
    let unqualified: BTreeMap<String, String> = expected
        .iter()
        .map(|(k, v)| (k.trim_start_matches("sales.").to_string(), v.clone()))
        .collect();
    assert_eq!(statuses(&report), unqualified, "{report}");
    assert_eq!(
        keys_by_label(&report)["orders(customer_id)"]["referent_schema"],
        "public"
    );

    // Text: the schema-qualified label and the policy's reason.
    let out = check_db(dir, &["--url", &socket_url(&c, "cdb_schemas")], &[]);
    assert_eq!(code(&out), 1, "{}", out.report());
    let row = out
        .stdout
        .lines()
        .find(|l| l.starts_with("sales.orders.customer_id -> customers.id"))
        .unwrap_or_else(|| panic!("{}", out.report()));
    let cells: Vec<&str> = row
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        cells,
        [
            "sales.orders.customer_id -> customers.id",
            "NO ACTION",
            "NO ACTION",
            "RESTRICT",
            "mismatch",
            "model: ondelete='RESTRICT' at models.py:17"
        ]
    );
}

#[test]
fn postgres_passwords_never_leak_and_come_from_pgpassword_or_pgpass() {
    if skip_postgres() {
        return;
    }
    let c = cluster();
    c.create_database("cdb_auth").unwrap();
    c.psql("cdb_auth", "CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY, a_id int REFERENCES a ON DELETE SET NULL)")
        .unwrap();
    let project = models_project(
        "from sqlalchemy import Column, ForeignKey, Integer\nfrom sqlalchemy.orm import declarative_base\nBase = declarative_base()\n\nclass A(Base):\n    __tablename__ = 'a'\n    id = Column(Integer, primary_key=True)\n\nclass B(Base):\n    __tablename__ = 'b'\n    id = Column(Integer, primary_key=True)\n    a_id = Column(Integer, ForeignKey('a.id'), nullable=True)\n",
    );
    let dir = project.path();
    let port = c.port;
    let tcp = |password: Option<&str>, db: &str| match password {
        Some(p) => format!("postgresql://checker:{p}@127.0.0.1:{port}/{db}"),
        None => format!("postgresql://checker@127.0.0.1:{port}/{db}"),
    };
    let leaks = |out: &CmdOutput, secret: &str| {
        assert!(
            !out.stdout.contains(secret) && !out.stderr.contains(secret),
            "the password {secret:?} was printed:\n{}",
            out.report()
        );
    };

    // The right password in the URL: connected over TCP with scram, and the database agrees.
    let out = check_db(
        dir,
        &["--url", &tcp(Some(CHECKER_PASSWORD), "cdb_auth")],
        &[],
    );
    assert_eq!(code(&out), 0, "{}", out.report());
    assert!(
        out.stdout.starts_with(&format!(
            "postgresql://checker:***@127.0.0.1:{port}/cdb_auth (PostgreSQL "
        )),
        "{}",
        out.report()
    );
    leaks(&out, CHECKER_PASSWORD);

    // A wrong password: exit 2, which host, what failed, no password in any output format.
    let wrong = "Wrong-Pass-91c2";
    for format in ["text", "json", "github"] {
        let out = check_db(
            dir,
            &["--url", &tcp(Some(wrong), "cdb_auth"), "--format", format],
            &[],
        );
        assert_eq!(code(&out), 2, "{}", out.report());
        assert!(
            out.stderr.contains(&format!(
                "error: postgresql://checker:***@127.0.0.1:{port}/cdb_auth: cannot connect to PostgreSQL at 127.0.0.1 port {port}: password authentication failed for user \"checker\""
            )),
            "{}",
            out.report()
        );
        leaks(&out, wrong);
    }

    // PGPASSWORD keeps the password off the command line.
    let out = check_db(
        dir,
        &["--url", &tcp(None, "cdb_auth")],
        &[("PGPASSWORD", CHECKER_PASSWORD)],
    );
    assert_eq!(code(&out), 0, "{}", out.report());
    let out = check_db(
        dir,
        &["--url", &tcp(None, "cdb_auth")],
        &[("PGPASSWORD", wrong)],
    );
    assert_eq!(code(&out), 2, "{}", out.report());
    assert!(
        out.stderr.contains("(password from PGPASSWORD)"),
        "{}",
        out.report()
    );
    leaks(&out, wrong);

    // ~/.pgpass (0600) is read; with group/world access it is ignored, as libpq does.
    let home = dir.join(".home");
    fs::create_dir_all(&home).unwrap();
    let pgpass = home.join(".pgpass");
    fs::write(
        &pgpass,
        format!(
            "# comment\nother:*:*:*:nope\n127.0.0.1:{port}:cdb_auth:checker:{CHECKER_PASSWORD}\n"
        ),
    )
    .unwrap();
    set_mode(&pgpass, 0o600);
    let out = check_db(dir, &["--url", &tcp(None, "cdb_auth")], &[]);
    assert_eq!(code(&out), 0, "{}", out.report());
    set_mode(&pgpass, 0o644);
    let out = check_db(dir, &["--url", &tcp(None, "cdb_auth")], &[]);
    assert_eq!(code(&out), 2, "{}", out.report());
    assert!(
        out.stderr
            .contains("has group or world access; permissions should be u=rw (0600)"),
        "{}",
        out.report()
    );
    assert!(
        out.stderr
            .contains("the server asks for a password and none was given"),
        "{}",
        out.report()
    );
    leaks(&out, CHECKER_PASSWORD);
    // PGPASSFILE points elsewhere.
    let elsewhere = dir.join("pgpass-file");
    fs::write(&elsewhere, format!("*:*:*:checker:{wrong}\n")).unwrap();
    set_mode(&elsewhere, 0o600);
    let out = check_db(
        dir,
        &["--url", &tcp(None, "cdb_auth")],
        &[("PGPASSFILE", elsewhere.to_str().unwrap())],
    );
    assert_eq!(code(&out), 2, "{}", out.report());
    assert!(
        out.stderr
            .contains(&format!("(password from {})", elsewhere.display())),
        "{}",
        out.report()
    );
    leaks(&out, wrong);

    // A database that doesn't exist.
    let out = check_db(dir, &["--url", &tcp(Some(CHECKER_PASSWORD), "nope")], &[]);
    assert_eq!(code(&out), 2, "{}", out.report());
    assert!(
        out.stderr.contains("database \"nope\" does not exist"),
        "{}",
        out.report()
    );
    leaks(&out, CHECKER_PASSWORD);
}

/// libpq's `allow` tries a plain connection first and TLS only when the server turns it
/// away; `prefer` starts with TLS. The cluster's TCP side takes TLS only, and its log shows
/// each refused plain attempt.
#[test]
fn postgres_allow_tries_plain_first_and_prefer_tls_first() {
    if skip_postgres() {
        return;
    }
    let c = cluster();
    c.create_database("cdb_allow").unwrap();
    let project = models_project(
        "from sqlalchemy import Column, Integer\nfrom sqlalchemy.orm import declarative_base\nBase = declarative_base()\n\nclass A(Base):\n    __tablename__ = 'a'\n    id = Column(Integer, primary_key=True)\n",
    );
    let dir = project.path();
    let url = |mode: &str| {
        format!(
            "postgresql://checker:{CHECKER_PASSWORD}@127.0.0.1:{}/cdb_allow?sslmode={mode}",
            c.port
        )
    };
    let refused_plain = || {
        c.server_log()
            .matches("user \"checker\", database \"cdb_allow\", no encryption")
            .count()
    };
    let before = refused_plain();
    let out = check_db(dir, &["--url", &url("prefer")], &[]);
    assert_eq!(code(&out), 0, "{}", out.report());
    assert_eq!(refused_plain(), before, "prefer went over TLS at once");
    let out = check_db(dir, &["--url", &url("allow")], &[]);
    assert_eq!(code(&out), 0, "{}", out.report());
    assert_eq!(
        refused_plain(),
        before + 1,
        "allow tried plain first\n{}",
        c.server_log()
    );
}

/// The role `certuser` may log in over TCP by client certificate only (pg_hba.conf `cert`,
/// the CN naming the role): check-db presents the one the URL, the environment or
/// ~/.postgresql names, and refuses a key others may read, as libpq and psql do.
#[test]
fn postgres_client_certificates_authenticate_as_libpq() {
    if skip_postgres() {
        return;
    }
    let c = cluster();
    c.create_database("cdb_cert").unwrap();
    let project = models_project(
        "from sqlalchemy import Column, Integer\nfrom sqlalchemy.orm import declarative_base\nBase = declarative_base()\n\nclass A(Base):\n    __tablename__ = 'a'\n    id = Column(Integer, primary_key=True)\n",
    );
    let dir = project.path();
    let (cert, key) = c.client_cert();
    let (cert, key) = (cert.display().to_string(), key.display().to_string());
    let base = format!("postgresql://certuser@127.0.0.1:{}/cdb_cert", c.port);
    let run = |url: &str, env: &[(&str, &str)]| check_db(dir, &["--url", url], env);

    let with_files = format!("{base}?sslcert={cert}&sslkey={key}");
    let out = run(&with_files, &[]);
    assert_eq!(code(&out), 0, "{}", out.report());
    // psql (libpq) with the same URL agrees that the certificate lets the role in.
    let psql = Command::new("psql")
        .args([&with_files, "-X", "-At", "-c", "SELECT current_user"])
        .env("HOME", dir.join(".home"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&psql.stdout).trim(), "certuser");

    // From the environment, and from ~/.postgresql as libpq's defaults.
    let out = run(&base, &[("PGSSLCERT", &cert), ("PGSSLKEY", &key)]);
    assert_eq!(code(&out), 0, "{}", out.report());
    let home_pg = dir.join(".home/.postgresql");
    fs::create_dir_all(&home_pg).unwrap();
    fs::copy(&cert, home_pg.join("postgresql.crt")).unwrap();
    fs::copy(&key, home_pg.join("postgresql.key")).unwrap();
    let out = run(&base, &[]);
    assert_eq!(code(&out), 0, "{}", out.report());
    fs::remove_file(home_pg.join("postgresql.crt")).unwrap();

    // No certificate: the server's refusal, on one line.
    let out = run(&base, &[]);
    assert_eq!(code(&out), 2, "{}", out.report());
    assert!(
        out.stderr.contains("certificate"),
        "wanted the server's certificate complaint\n{}",
        out.report()
    );
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.report());

    // A key that group or others may read is refused before connecting, as libpq refuses it.
    let open_key = dir.join("open.key");
    fs::copy(&key, &open_key).unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&open_key, fs::Permissions::from_mode(0o644)).unwrap();
    let open_url = format!("{base}?sslcert={cert}&sslkey={}", open_key.display());
    let refusal = format!(
        "private key file {} has group or world access",
        open_key.display()
    );
    let out = run(&format!("{open_url}&sslmode=require"), &[]);
    assert_eq!(code(&out), 2, "{}", out.report());
    assert!(out.stderr.contains(&refusal), "{}", out.report());
    assert!(!out.stderr.contains("pg_hba.conf"), "{}", out.report());
    // With prefer (the default) that ends the TLS attempt only: the connection goes on plain,
    // which this server's pg_hba.conf refuses, and the message says both.
    let out = run(&open_url, &[]);
    assert_eq!(code(&out), 2, "{}", out.report());
    assert!(
        out.stderr.contains("sslmode=prefer, without TLS: ") && out.stderr.contains(&refusal),
        "{}",
        out.report()
    );
    assert!(out.stderr.contains("no encryption"), "{}", out.report());
    let psql = Command::new("psql")
        .args([&open_url, "-X", "-At", "-c", "SELECT 1"])
        .env("HOME", dir.join(".home"))
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&psql.stderr).contains("has group or world access"),
        "{}",
        String::from_utf8_lossy(&psql.stderr)
    );

    // A key that is not the certificate's.
    let other_key = dir.join("other.key");
    fs::copy(c.ca_cert().with_file_name("ca.key"), &other_key).unwrap();
    fs::set_permissions(&other_key, fs::Permissions::from_mode(0o600)).unwrap();
    let out = run(
        &format!(
            "{base}?sslmode=require&sslcert={cert}&sslkey={}",
            other_key.display()
        ),
        &[],
    );
    assert_eq!(code(&out), 2, "{}", out.report());
    assert!(
        out.stderr.contains(&format!(
            "sslkey {} is not the private key of the certificate in sslcert {cert}",
            other_key.display()
        )),
        "{}",
        out.report()
    );

    // A certificate without its key.
    let out = run(
        &format!(
            "{base}?sslmode=verify-ca&sslrootcert={}&sslcert={cert}&sslkey={}/missing.key",
            c.ca_cert().display(),
            dir.display()
        ),
        &[],
    );
    assert_eq!(code(&out), 2, "{}", out.report());
    assert!(
        out.stderr
            .contains("certificate present, but not private key file"),
        "{}",
        out.report()
    );
}

/// sslmode as libpq reads it. The cluster's TCP side takes TLS connections only, with a
/// certificate for `localhost` (not 127.0.0.1) signed by a test CA, so every success here
/// went over TLS.
#[test]
fn postgres_sslmodes_behave_as_libpq() {
    if skip_postgres() {
        return;
    }
    let c = cluster();
    c.create_database("cdb_tls").unwrap();
    let project = models_project(
        "from sqlalchemy import Column, Integer\nfrom sqlalchemy.orm import declarative_base\nBase = declarative_base()\n\nclass A(Base):\n    __tablename__ = 'a'\n    id = Column(Integer, primary_key=True)\n",
    );
    let dir = project.path();
    let port = c.port;
    let ca = c.ca_cert().display().to_string();
    // A certificate that signed nothing the server presents.
    let stranger = c.socket_dir().join("server.crt").display().to_string();
    let url = |host: &str, query: &str| {
        format!("postgresql://checker:{CHECKER_PASSWORD}@{host}:{port}/cdb_tls{query}")
    };
    let connects = |url: String, env: &[(&str, &str)]| {
        let out = check_db(dir, &["--url", &url], env);
        assert_eq!(code(&out), 0, "{url}\n{}", out.report());
    };
    let refused = |url: String, env: &[(&str, &str)], message: &str| {
        let out = check_db(dir, &["--url", &url], env);
        assert_eq!(code(&out), 2, "{url}\n{}", out.report());
        assert!(
            out.stderr.contains(message),
            "{url}: wanted {message:?}\n{}",
            out.report()
        );
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.report());
    };

    // The default (prefer) and require encrypt without checking the certificate.
    connects(url("127.0.0.1", ""), &[]);
    connects(url("127.0.0.1", "?sslmode=require"), &[]);
    // No TLS: the server's pg_hba.conf refuses it, and the message says which sslmode.
    refused(
        url("127.0.0.1", "?sslmode=disable"),
        &[],
        &format!(
            "127.0.0.1 port {port} (sslmode=disable): no pg_hba.conf entry for host \"127.0.0.1\", user \"checker\", database \"cdb_tls\", no encryption"
        ),
    );
    refused(
        url("127.0.0.1", ""),
        &[("PGSSLMODE", "disable")],
        "no encryption",
    );
    // verify-ca checks the chain only; verify-full the name as well.
    connects(
        url("127.0.0.1", &format!("?sslmode=verify-ca&sslrootcert={ca}")),
        &[],
    );
    connects(
        url(
            "localhost",
            &format!("?sslmode=verify-full&sslrootcert={ca}"),
        ),
        &[],
    );
    connects(
        url("localhost", "?sslmode=verify-full"),
        &[("PGSSLROOTCERT", &ca)],
    );
    refused(
        url(
            "127.0.0.1",
            &format!("?sslmode=verify-full&sslrootcert={ca}"),
        ),
        &[],
        "certificate not valid for name \"127.0.0.1\"",
    );
    refused(
        url(
            "localhost",
            &format!("?sslmode=verify-ca&sslrootcert={stranger}"),
        ),
        &[],
        "invalid peer certificate: UnknownIssuer",
    );
    refused(
        url("localhost", "?sslmode=verify-full"),
        &[],
        "sslmode=verify-full needs a root certificate: set sslrootcert=<file> in the URL (or PGSSLROOTCERT)",
    );
    refused(
        url(
            "localhost",
            "?sslmode=verify-ca&sslrootcert=/nonexistent/root.crt",
        ),
        &[],
        "sslrootcert /nonexistent/root.crt: cannot read a PEM certificate",
    );
    // libpq reads a root file for `require` only when it exists.
    connects(
        url(
            "127.0.0.1",
            "?sslmode=require&sslrootcert=/nonexistent/root.crt",
        ),
        &[],
    );
    // The system's roots: verify-full is the default (the test CA is not among them, so the
    // chain fails), and a weaker mode is refused before connecting.
    refused(
        url("localhost", "?sslrootcert=system"),
        &[],
        "UnknownIssuer",
    );
    refused(
        url("localhost", "?sslmode=require&sslrootcert=system"),
        &[],
        "sslmode=require may not be used with sslrootcert=system; use sslmode=verify-full",
    );
    refused(
        url("localhost", "?sslmode=bogus"),
        &[],
        "sslmode=bogus is not one of disable, allow, prefer, require, verify-ca, verify-full",
    );
    // libpq: with ~/.postgresql/root.crt present, require checks the chain against it.
    let home_root = dir.join(".home/.postgresql/root.crt");
    fs::create_dir_all(home_root.parent().unwrap()).unwrap();
    fs::copy(&stranger, &home_root).unwrap();
    refused(url("localhost", "?sslmode=require"), &[], "UnknownIssuer");
    fs::copy(c.ca_cert(), &home_root).unwrap();
    connects(url("127.0.0.1", "?sslmode=require"), &[]);
    fs::remove_file(&home_root).unwrap();
    // A unix socket never speaks TLS; libpq ignores sslmode there, and so does check-db.
    connects(
        format!("{}&sslmode=verify-full", socket_url(&c, "cdb_tls")),
        &[],
    );
}

/// A self-signed server certificate (PostgreSQL's documented recipe: a CA certificate) given
/// as its own root is trusted, as libpq trusts it; the name check still applies.
#[test]
fn postgres_self_signed_server_certificate_is_its_own_root() {
    if skip_postgres() {
        return;
    }
    let c =
        PgCluster::start_with_tcp().unwrap_or_else(|e| panic!("cannot start PostgreSQL: {e:#}"));
    c.psql(
        "postgres",
        &format!("CREATE ROLE checker LOGIN PASSWORD '{CHECKER_PASSWORD}'"),
    )
    .unwrap();
    c.create_database("cdb_self").unwrap();
    let cert = c
        .use_self_signed_certificate()
        .unwrap()
        .display()
        .to_string();
    let project = models_project(
        "from sqlalchemy import Column, Integer\nfrom sqlalchemy.orm import declarative_base\nBase = declarative_base()\n\nclass A(Base):\n    __tablename__ = 'a'\n    id = Column(Integer, primary_key=True)\n",
    );
    let dir = project.path();
    let port = c.port;
    let url = |host: &str, query: &str| {
        format!("postgresql://checker:{CHECKER_PASSWORD}@{host}:{port}/cdb_self{query}")
    };
    let run = |url: String| {
        let out = check_db(dir, &["--url", &url], &[]);
        (code(&out), out)
    };
    let (status, out) = run(url(
        "localhost",
        &format!("?sslmode=verify-full&sslrootcert={cert}"),
    ));
    assert_eq!(status, 0, "{}", out.report());
    let (status, out) = run(url(
        "127.0.0.1",
        &format!("?sslmode=verify-ca&sslrootcert={cert}"),
    ));
    assert_eq!(status, 0, "{}", out.report());
    let (status, out) = run(url(
        "127.0.0.1",
        &format!("?sslmode=verify-full&sslrootcert={cert}"),
    ));
    assert_eq!(status, 2, "{}", out.report());
    assert!(
        out.stderr.contains("not valid for name"),
        "{}",
        out.report()
    );
    // As ~/.postgresql/root.crt it makes `require` check the chain, which it passes.
    let home_root = dir.join(".home/.postgresql/root.crt");
    fs::create_dir_all(home_root.parent().unwrap()).unwrap();
    fs::copy(&cert, &home_root).unwrap();
    let (status, out) = run(url("127.0.0.1", "?sslmode=require"));
    assert_eq!(status, 0, "{}", out.report());
    // The CA that signed the cluster's first certificate does not vouch for this one.
    let (status, out) = run(url(
        "localhost",
        &format!("?sslmode=verify-full&sslrootcert={}", c.ca_cert().display()),
    ));
    assert_eq!(status, 2, "{}", out.report());
    assert!(
        out.stderr.contains("invalid peer certificate"),
        "{}",
        out.report()
    );
}

/// libpq's `prefer` takes TLS when it can and plain TCP when the TLS offered can't be agreed
/// on (an old server: TLS 1.2 with only an RSA key exchange cipher, which rustls refuses);
/// `require` must not fall back.
#[test]
fn postgres_prefer_falls_back_to_plain_when_tls_cannot_be_agreed() {
    if skip_postgres() {
        return;
    }
    let c = PgCluster::start_with_legacy_tls()
        .unwrap_or_else(|e| panic!("cannot start PostgreSQL: {e:#}"));
    c.psql(
        "postgres",
        &format!("CREATE ROLE checker LOGIN PASSWORD '{CHECKER_PASSWORD}'"),
    )
    .unwrap();
    c.create_database("cdb_legacy").unwrap();
    let project = models_project(
        "from sqlalchemy import Column, Integer\nfrom sqlalchemy.orm import declarative_base\nBase = declarative_base()\n\nclass A(Base):\n    __tablename__ = 'a'\n    id = Column(Integer, primary_key=True)\n",
    );
    let dir = project.path();
    let port = c.port;
    let url = |query: &str| {
        format!("postgresql://checker:{CHECKER_PASSWORD}@127.0.0.1:{port}/cdb_legacy{query}")
    };
    let out = check_db(dir, &["--url", &url("")], &[]);
    assert_eq!(code(&out), 0, "{}", out.report());
    let out = check_db(dir, &["--url", &url("?sslmode=require")], &[]);
    assert_eq!(code(&out), 2, "{}", out.report());
    assert!(
        out.stderr.contains(&format!(
            "127.0.0.1 port {port} (sslmode=require): error performing TLS handshake"
        )),
        "{}",
        out.report()
    );
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn postgres_reads_in_a_read_only_transaction() {
    if skip_postgres() {
        return;
    }
    let c = cluster();
    c.create_database("cdb_readonly").unwrap();
    c.psql(
        "cdb_readonly",
        "CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY, a_id int NOT NULL REFERENCES a)",
    )
    .unwrap();
    let project = models_project(
        "from sqlalchemy import Column, ForeignKey, Integer\nfrom sqlalchemy.orm import declarative_base\nBase = declarative_base()\n\nclass A(Base):\n    __tablename__ = 'a'\n    id = Column(Integer, primary_key=True)\n\nclass B(Base):\n    __tablename__ = 'b'\n    id = Column(Integer, primary_key=True)\n    a_id = Column(Integer, ForeignKey('a.id'), nullable=False)\n",
    );
    let out = check_db(
        project.path(),
        &["--url", &socket_url(&c, "cdb_readonly")],
        &[],
    );
    assert_eq!(code(&out), 1, "{}", out.report());
    assert!(out.stdout.contains("b.a_id -> a.id"), "{}", out.report());

    // Every statement the tool sent, from the server's log (log_statement=all, prefixed with
    // the application name).
    let log = c.server_log();
    let statements: Vec<&str> = log
        .lines()
        .filter_map(|l| l.strip_prefix("[fix-migrations check-db] LOG:"))
        .filter_map(|l| {
            let l = l.trim_start();
            // Simple queries: `statement: ...`; prepared ones: `execute s0: ...`.
            l.strip_prefix("statement: ")
                .or_else(|| {
                    l.strip_prefix("execute ")
                        .and_then(|e| e.split_once(": "))
                        .map(|(_, s)| s)
                })
                .map(str::trim)
        })
        .collect();
    eprintln!("statements sent by check-db: {statements:#?}");
    assert!(
        statements.first() == Some(&"START TRANSACTION READ ONLY")
            || statements.contains(&"START TRANSACTION READ ONLY"),
        "{statements:#?}\n{log}"
    );
    assert!(
        statements.iter().any(|s| s.starts_with("SELECT n.nspname")),
        "the catalog query is not in the log: {statements:#?}"
    );
    for statement in &statements {
        let first = statement
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_uppercase();
        assert!(
            ["START", "SET", "SHOW", "SELECT", "ROLLBACK"].contains(&first.as_str()),
            "unexpected statement {statement:?}"
        );
    }
}

// ---- check-db --repair -----------------------------------------------------------------------

/// `check-db --repair --write` on a database upgraded from the unfixed example, then `alembic
/// upgrade head` (check-db agrees) and `alembic downgrade -1` (the old rules are back). SQLite
/// keys made inside CREATE TABLE have no name, and batch mode recreates them named, so names are
/// compared on PostgreSQL only.
fn repair_from_database(dir: &Path, url: &str, compare_names: bool) -> (Value, Value) {
    alembic(dir, url, &["upgrade", "head"]);
    let before = check_db(dir, &["--format", "json"], &[("DATABASE_URL", url)]);
    assert_eq!(code(&before), 1, "{}", before.report());
    let before = json(&before);

    let dry = check_db(dir, &["--repair"], &[("DATABASE_URL", url)]);
    assert_eq!(
        code(&dry),
        1,
        "dry run: a repair is pending\n{}",
        dry.report()
    );
    let versions = dir.join("migrations/versions");
    let count = || fs::read_dir(&versions).unwrap().count();
    let files_before = count();
    assert_eq!(files_before, count(), "a dry run writes nothing");

    let written = check_db(dir, &["--repair", "--write"], &[("DATABASE_URL", url)]);
    assert_eq!(code(&written), 0, "{}", written.report());
    assert_eq!(count(), files_before + 1, "{}", written.report());

    alembic(dir, url, &["upgrade", "head"]);
    let after = check_db(dir, &["--format", "json"], &[("DATABASE_URL", url)]);
    assert_eq!(code(&after), 0, "after the repair\n{}", after.report());
    let after = json(&after);

    alembic(dir, url, &["downgrade", "-1"]);
    let restored = check_db(dir, &["--format", "json"], &[("DATABASE_URL", url)]);
    assert_eq!(code(&restored), 1, "{}", restored.report());
    let restored = json(&restored);
    let rules = |report: &Value| -> BTreeMap<String, (Value, Value, Value)> {
        keys_by_label(report)
            .into_iter()
            .map(|(label, k)| {
                (
                    label,
                    (
                        k["ondelete"].clone(),
                        k["onupdate"].clone(),
                        if compare_names {
                            k["name"].clone()
                        } else {
                            Value::Null
                        },
                    ),
                )
            })
            .collect()
    };
    assert_eq!(
        rules(&restored),
        rules(&before),
        "downgrade -1 restores the old rules"
    );
    (before, after)
}

#[test]
fn sqlite_check_db_repair_fixes_the_database_and_downgrade_restores_it() {
    let project = example_copy("flask-notes");
    let dir = project.path();
    let url = format!("sqlite:///{}", dir.join("app.db").display());
    let (before, after) = repair_from_database(dir, &url, false);
    assert_eq!(statuses(&before).len(), 5, "{before}");
    assert!(statuses(&after).values().all(|s| s == "ok"), "{after}");
    eprintln!(
        "check-db --repair on SQLite: {} mismatches before, all {} ok after upgrade, old rules back after downgrade -1",
        statuses(&before)
            .values()
            .filter(|s| *s == "mismatch")
            .count(),
        statuses(&after).len()
    );
}

#[test]
fn postgres_check_db_repair_keeps_the_names_the_database_has() {
    if skip_postgres() {
        return;
    }
    let c = cluster();
    c.create_database("cdb_repair").unwrap();
    let project = example_copy("flask-notes");
    let dir = project.path();
    let url = socket_url(&c, "cdb_repair");
    // A name no history replay can know: the repair must drop the key under this name.
    alembic(dir, &url, &["upgrade", "head"]);
    c.psql(
        "cdb_repair",
        "ALTER TABLE notes RENAME CONSTRAINT notes_author_id_fkey TO renamed_by_hand_fk",
    )
    .unwrap();
    let (before, after) = repair_from_database(dir, &url, true);
    let author = &keys_by_label(&after)["notes(author_id)"];
    assert_eq!(author["name"], "renamed_by_hand_fk", "{after}");
    assert_eq!(author["ondelete"], "CASCADE", "{after}");
    assert!(statuses(&after).values().all(|s| s == "ok"), "{after}");
    eprintln!(
        "check-db --repair on PostgreSQL: {} mismatches before, all {} ok after upgrade (names kept), old rules back after downgrade -1",
        statuses(&before)
            .values()
            .filter(|s| *s == "mismatch")
            .count(),
        statuses(&after).len()
    );
}
