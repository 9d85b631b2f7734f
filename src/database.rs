//! `fix-migrations check-db`: read a live database's foreign keys (SQLite, PostgreSQL) into a
//! `KeySet`, read-only, then hand them to `dbcheck` for the comparison with the models.
//!
//! Never writes: SQLite is opened read-only (and `query_only`), PostgreSQL is read inside a
//! `READ ONLY` transaction. A password never reaches the output: URLs are shown masked and
//! every driver message goes through `DbUrl::scrub`.

use std::error::Error as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use postgres_secrets::PgPass;

use crate::cli::{self, CheckDbArgs, Common, RepairArgs};
use crate::config::Config;
use crate::dbcheck;
use crate::dburl::{self, DbUrl, PgHost, PgTarget, Target};
use crate::discover;
use crate::history::Dialect;
use crate::keyset::{ExistingKey, KeySet};
use crate::repair;

/// What was read from the database.
pub struct Database {
    pub keys: KeySet,
    /// `PostgreSQL 15.4`, `SQLite 3.46.0`.
    pub server: String,
    /// The schema unqualified names resolve to (PostgreSQL's `current_schema()`).
    pub default_schema: Option<String>,
}

/// How long the catalog queries may take once connected.
const READ_LIMIT: Duration = Duration::from_secs(60);

pub fn run(common: &Common, args: &CheckDbArgs) -> Result<ExitCode> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let start = common.project.clone().unwrap_or_else(|| cwd.clone());
    // The models may live in a directory without alembic.ini (`--models`); the URL then has to
    // come from --url or DATABASE_URL.
    let project = discover::find_project(&start).ok();
    let root = project.as_ref().map_or(start, |p| p.root.clone());
    let config = Config::load(common.config.as_deref(), &root)?;
    let url = database_url(args, project.as_ref(), &cwd)?;
    if common.format == crate::cli::Format::Sarif {
        bail!("check-db has no SARIF output; use --format json or github");
    }
    let repair_into = match (&project, args.repair) {
        (Some(project), true) => Some(project),
        (None, true) => bail!(
            "check-db --repair writes a revision into an Alembic project, and none was found from {}",
            root.display()
        ),
        (None | Some(_), false) => None,
    };
    let schema = cli::read_schema(common, &config, &root, project.as_ref(), &cwd)?;
    let shown = url.shown.clone();
    let dialect = match url.target {
        Target::Sqlite { .. } => Dialect::Sqlite,
        Target::Postgres(_) => Dialect::Postgresql,
    };
    let database = read(url, Duration::from_secs(args.connect_timeout.max(1)))?;
    if let Some(project) = repair_into {
        let repair_args = RepairArgs {
            batch: args.batch,
            message: args.message.clone(),
            dialect: Some(dialect),
        };
        return repair::write_repair(
            common,
            &repair_args,
            project,
            &database.keys,
            &schema,
            &config,
            &[],
        );
    }
    let report = dbcheck::compare(&schema, &config, &shown, &database);
    let code = dbcheck::print(&report, common, &cwd)?;
    Ok(ExitCode::from(code))
}

/// `--url`, else `DATABASE_URL`, else `sqlalchemy.url` from alembic.ini. A relative SQLite
/// path is relative to the working directory, or, for alembic.ini's URL, to the project root
/// (where `alembic upgrade` runs).
fn database_url(
    args: &CheckDbArgs,
    project: Option<&discover::Project>,
    cwd: &Path,
) -> Result<DbUrl> {
    let env_url = std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| !u.trim().is_empty());
    let (raw, base, source) = if let Some(url) = &args.url {
        (url.clone(), cwd.to_path_buf(), "--url".to_string())
    } else if let Some(url) = env_url {
        (url, cwd.to_path_buf(), "DATABASE_URL".to_string())
    } else if let Some(project) = project
        && let Some(url) = &project.sqlalchemy_url
    {
        (
            url.clone(),
            project.root.clone(),
            format!("sqlalchemy.url in {}", project.config_file.display()),
        )
    } else {
        bail!(
            "no database URL: pass --url, set DATABASE_URL, or set sqlalchemy.url in alembic.ini"
        );
    };
    dburl::parse(&raw, &base).with_context(|| format!("database URL from {source}"))
}

/// Every foreign key of the database, read-only.
pub fn read(url: DbUrl, timeout: Duration) -> Result<Database> {
    match url.target.clone() {
        Target::Sqlite { path } => read_sqlite(&url, &path, timeout),
        Target::Postgres(target) => read_postgres(url, &target, timeout),
    }
}

// ---- SQLite ----------------------------------------------------------------------------------

fn read_sqlite(url: &DbUrl, path: &Path, timeout: Duration) -> Result<Database> {
    let fail = |what: &str, err: rusqlite::Error| {
        anyhow!(
            "{}: {what} {}: {}",
            url.shown,
            path.display(),
            url.scrub(&err.to_string())
        )
    };
    if !path.is_file() {
        bail!(
            "{}: no SQLite database file at {}",
            url.shown,
            path.display()
        );
    }
    let flags =
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn =
        rusqlite::Connection::open_with_flags(path, flags).map_err(|e| fail("cannot open", e))?;
    conn.busy_timeout(timeout)
        .map_err(|e| fail("cannot open", e))?;
    conn.pragma_update(None, "query_only", true)
        .map_err(|e| fail("cannot open", e))?;
    let keys = sqlite_keys(&conn).map_err(|e| fail("cannot read the foreign keys of", e))?;
    Ok(Database {
        keys,
        server: format!("SQLite {}", rusqlite::version()),
        default_schema: None,
    })
}

fn sqlite_keys(conn: &rusqlite::Connection) -> rusqlite::Result<KeySet> {
    let tables: Vec<(String, Option<String>)> = conn
        .prepare(
            "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
        )?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut set = KeySet::default();
    for (table, sql) in &tables {
        let names = sql
            .as_deref()
            .map(sqlite_constraint_names)
            .unwrap_or_default();
        let mut by_id: Vec<(i64, ExistingKey)> = Vec::new();
        let mut stmt = conn.prepare(
            "SELECT id, \"table\", \"from\", \"to\", on_update, on_delete FROM pragma_foreign_key_list(?1) ORDER BY id, seq",
        )?;
        let rows = stmt.query_map([table], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, Option<String>>(3)?,
                row.get::<_, String>(4)?,
                row.get::<_, String>(5)?,
            ))
        })?;
        for row in rows {
            let (id, referent, from, to, on_update, on_delete) = row?;
            let key = match by_id.iter_mut().find(|(i, _)| *i == id) {
                Some((_, key)) => key,
                None => {
                    by_id.push((
                        id,
                        ExistingKey {
                            schema: None,
                            table: table.clone(),
                            name: None,
                            columns: vec![],
                            referent_schema: None,
                            referent_table: referent,
                            referent_columns: vec![],
                            ondelete: action(&on_delete),
                            onupdate: action(&on_update),
                            origin: "database".to_string(),
                        },
                    ));
                    &mut by_id.last_mut().expect("just pushed").1
                }
            };
            key.columns.push(from);
            if let Some(to) = to {
                key.referent_columns.push(to);
            }
        }
        for (_, mut key) in by_id {
            if key.referent_columns.is_empty() {
                // `REFERENCES parent` without columns means the parent's primary key.
                key.referent_columns = sqlite_primary_key(conn, &key.referent_table)?;
            }
            key.name = names
                .iter()
                .find(|(_, cols)| same_columns(cols, &key.columns))
                .map(|(name, _)| name.clone());
            set.keys.push(key);
        }
    }
    set.sort();
    Ok(set)
}

fn sqlite_primary_key(conn: &rusqlite::Connection, table: &str) -> rusqlite::Result<Vec<String>> {
    conn.prepare("SELECT name FROM pragma_table_info(?1) WHERE pk > 0 ORDER BY pk")?
        .query_map([table], |row| row.get(0))?
        .collect()
}

/// `NO ACTION` is the default: None, as in `ExistingKey`.
fn action(text: &str) -> Option<String> {
    let upper = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let upper = upper.to_ascii_uppercase();
    (!upper.is_empty() && upper != "NO ACTION").then_some(upper)
}

fn same_columns(a: &[String], b: &[String]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.eq_ignore_ascii_case(y))
}

/// SQLite keeps no constraint names in its catalog, only in the CREATE TABLE text:
/// `CONSTRAINT fk_notes_author FOREIGN KEY (author_id) REFERENCES ...`. Returns the named table
/// constraints' names with their columns (what batch mode needs to drop them).
fn sqlite_constraint_names(sql: &str) -> Vec<(String, Vec<String>)> {
    let tokens = sql_tokens(sql);
    let is = |i: usize, word: &str| {
        tokens
            .get(i)
            .is_some_and(|t| !t.quoted && t.text.eq_ignore_ascii_case(word))
    };
    let mut found = Vec::new();
    for i in 0..tokens.len() {
        if !(is(i, "CONSTRAINT") && is(i + 2, "FOREIGN") && is(i + 3, "KEY") && is(i + 4, "(")) {
            continue;
        }
        let columns: Vec<String> = tokens[i + 5..]
            .iter()
            .take_while(|t| t.quoted || t.text != ")")
            .filter(|t| t.quoted || t.text != ",")
            .map(|t| t.text.clone())
            .collect();
        found.push((tokens[i + 1].text.clone(), columns));
    }
    found
}

struct Token {
    text: String,
    quoted: bool,
}

/// Words, quoted identifiers ("x", `x`, [x], 'x') and single punctuation characters.
fn sql_tokens(sql: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '"' | '`' | '[' | '\'' => {
                let close = if c == '[' { ']' } else { c };
                let mut text = String::new();
                while let Some(d) = chars.next() {
                    if d == close {
                        // A doubled quote inside a quoted identifier is one quote.
                        if close != ']' && chars.peek() == Some(&close) {
                            chars.next();
                            text.push(d);
                            continue;
                        }
                        break;
                    }
                    text.push(d);
                }
                tokens.push(Token { text, quoted: true });
            }
            c if c.is_alphanumeric() || c == '_' => {
                let mut text = c.to_string();
                while let Some(&d) = chars.peek() {
                    if !(d.is_alphanumeric() || d == '_' || d == '$') {
                        break;
                    }
                    text.push(d);
                    chars.next();
                }
                tokens.push(Token {
                    text,
                    quoted: false,
                });
            }
            c => tokens.push(Token {
                text: c.to_string(),
                quoted: false,
            }),
        }
    }
    tokens
}

// ---- PostgreSQL ------------------------------------------------------------------------------

const PG_KEYS_SQL: &str = "SELECT n.nspname::text, t.relname::text, c.conname::text,
       ARRAY(SELECT a.attname::text
               FROM unnest(c.conkey) WITH ORDINALITY AS u(attnum, i)
               JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = u.attnum
              ORDER BY u.i),
       rn.nspname::text, rt.relname::text,
       ARRAY(SELECT a.attname::text
               FROM unnest(c.confkey) WITH ORDINALITY AS u(attnum, i)
               JOIN pg_catalog.pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = u.attnum
              ORDER BY u.i),
       c.confdeltype::text, c.confupdtype::text
  FROM pg_catalog.pg_constraint c
  JOIN pg_catalog.pg_class t ON t.oid = c.conrelid
  JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace
  JOIN pg_catalog.pg_class rt ON rt.oid = c.confrelid
  JOIN pg_catalog.pg_namespace rn ON rn.oid = rt.relnamespace
 WHERE c.contype = 'f'
   AND c.conparentid = 0
   AND n.nspname <> 'information_schema'
   AND n.nspname NOT LIKE 'pg\\_%'
 ORDER BY 1, 2, 3";

/// Connection settings derived from the URL and libpq's environment, described for messages.
struct PgConnect {
    config: postgres::Config,
    /// `127.0.0.1 port 5432`, `unix socket /run/postgresql/.s.PGSQL.5432`.
    place: String,
    /// Where the password came from, when not from the URL (for an authentication failure).
    password_source: Option<String>,
    /// None: plain connection (a unix socket, or sslmode=disable).
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    /// sslmode=allow: plain first, TLS only when the server turns that away.
    plain_first: bool,
}

fn read_postgres(mut url: DbUrl, target: &PgTarget, timeout: Duration) -> Result<Database> {
    if !target.ignored.is_empty() {
        eprintln!(
            "warning: {}: ignoring URL parameter(s) {} (not used by check-db)",
            url.shown,
            target.ignored.join(", ")
        );
    }
    let connect = pg_connect(&mut url, target, timeout)?;
    let PgConnect {
        mut config,
        place,
        password_source,
        tls,
        plain_first,
    } = connect;
    let fail = |what: &str, detail: String| {
        let from = password_source
            .as_ref()
            .filter(|_| detail.contains("password"))
            .map(|s| format!(" (password from {s})"))
            .unwrap_or_default();
        anyhow!(
            "{}: {what} PostgreSQL at {place}: {}{from}",
            url.shown,
            url.scrub(&detail)
        )
    };

    // The driver's own timeout covers the socket connect only; a server that accepts and
    // then never answers would hang the handshake. The whole connect runs on a thread that
    // is abandoned (and the process exits) when it outlives the timeout.
    let (sender, receiver) = mpsc::channel::<Event>();
    std::thread::spawn(move || {
        use postgres::config::SslMode;
        let connected = match tls {
            // libpq's allow: a server that answers the plain attempt with an error (pg_hba.conf
            // `hostssl` only) is asked again with TLS if it offers TLS, else plain again, so a
            // server without TLS reports its own error (a wrong password) a second time rather
            // than a TLS one. A socket that can't connect at all is not asked again.
            Some(tls) if plain_first => {
                config.ssl_mode(SslMode::Disable);
                match config.connect(postgres::NoTls) {
                    Err(err) if err.as_db_error().is_some() => {
                        config.ssl_mode(SslMode::Prefer);
                        config.connect(tls)
                    }
                    other => other,
                }
            }
            Some(tls) => match config.connect(tls) {
                // libpq's prefer / allow: a server whose TLS can't be agreed on (an old
                // cipher, a key rustls refuses) is tried again without TLS.
                Err(err)
                    if config.get_ssl_mode() == SslMode::Prefer
                        && err
                            .to_string()
                            .starts_with("error performing TLS handshake") =>
                {
                    config.ssl_mode(SslMode::Disable);
                    config.connect(postgres::NoTls)
                }
                other => other,
            },
            None => config.connect(postgres::NoTls),
        };
        let mut client = match connected {
            Ok(client) => client,
            Err(err) => {
                let _ = sender.send(Event::ConnectFailed(pg_error_text(&err)));
                return;
            }
        };
        let _ = sender.send(Event::Connected);
        let read = pg_keys(&mut client).map_err(|e| pg_error_text(&e));
        let _ = sender.send(Event::Read(read));
    });
    match receiver.recv_timeout(timeout + Duration::from_millis(500)) {
        Ok(Event::Connected) => {}
        Ok(Event::ConnectFailed(detail)) => return Err(fail("cannot connect to", detail)),
        Ok(Event::Read(_)) => unreachable!("reading starts after connecting"),
        Err(_) => {
            return Err(fail(
                "cannot connect to",
                format!(
                    "no answer within {} s (--connect-timeout)",
                    timeout.as_secs()
                ),
            ));
        }
    }
    match receiver.recv_timeout(READ_LIMIT) {
        Ok(Event::Read(Ok(database))) => Ok(database),
        Ok(Event::Read(Err(detail))) => Err(fail("cannot read the foreign keys from", detail)),
        _ => Err(fail(
            "cannot read the foreign keys from",
            format!("no answer within {} s", READ_LIMIT.as_secs()),
        )),
    }
}

enum Event {
    Connected,
    ConnectFailed(String),
    Read(std::result::Result<Database, String>),
}

fn pg_keys(client: &mut postgres::Client) -> std::result::Result<Database, postgres::Error> {
    let mut tx = client.build_transaction().read_only(true).start()?;
    tx.batch_execute(&format!(
        "SET LOCAL statement_timeout = {}",
        READ_LIMIT.as_millis()
    ))?;
    let version: String = tx.query_one("SHOW server_version", &[])?.get(0);
    let default_schema: Option<String> = tx.query_one("SELECT current_schema()::text", &[])?.get(0);
    let mut set = KeySet::default();
    for row in tx.query(PG_KEYS_SQL, &[])? {
        let schema: String = row.get(0);
        let referent_schema: String = row.get(4);
        let qualify = |s: String| (Some(&s) != default_schema.as_ref()).then_some(s);
        set.keys.push(ExistingKey {
            schema: qualify(schema),
            table: row.get(1),
            name: Some(row.get(2)),
            columns: row.get(3),
            referent_schema: qualify(referent_schema),
            referent_table: row.get(5),
            referent_columns: row.get(6),
            ondelete: pg_action(&row.get::<_, String>(7)),
            onupdate: pg_action(&row.get::<_, String>(8)),
            origin: "database".to_string(),
        });
    }
    tx.rollback()?;
    set.sort();
    Ok(Database {
        keys: set,
        server: format!("PostgreSQL {version}"),
        default_schema,
    })
}

/// pg_constraint's one-letter action codes.
fn pg_action(code: &str) -> Option<String> {
    match code {
        "r" => Some("RESTRICT"),
        "c" => Some("CASCADE"),
        "n" => Some("SET NULL"),
        "d" => Some("SET DEFAULT"),
        _ => None,
    }
    .map(str::to_string)
}

/// The driver's message with its causes (`error connecting to server: Connection refused`),
/// or the server's own words for a database error.
fn pg_error_text(err: &postgres::Error) -> String {
    if let Some(db) = err.as_db_error() {
        return format!("{} ({})", db.message(), db.code().code());
    }
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    if text.ends_with("password missing") {
        return "the server asks for a password and none was given (in the URL, PGPASSWORD, PGPASSFILE or ~/.pgpass)".to_string();
    }
    text
}

/// The URL's settings, completed as libpq completes them: PGHOST, PGPORT, PGUSER, PGDATABASE,
/// and a password from PGPASSWORD or the password file when the URL has none.
fn pg_connect(url: &mut DbUrl, target: &PgTarget, timeout: Duration) -> Result<PgConnect> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let port = match target.port {
        Some(port) => port,
        None => match env("PGPORT") {
            Some(p) => p
                .parse()
                .map_err(|_| anyhow!("{}: PGPORT={p:?} is not a port number", url.shown))?,
            None => 5432,
        },
    };
    let host = target
        .host
        .clone()
        .or_else(|| env("PGHOST").map(|h| PgHost::from_text(&h)))
        .unwrap_or_else(|| PgHost::Socket(default_socket_dir(port)));
    let user = target
        .user
        .clone()
        .or_else(|| env("PGUSER"))
        .or_else(|| env("USER"))
        .or_else(|| env("LOGNAME"))
        .ok_or_else(|| anyhow!("{}: no user name in the URL, PGUSER or USER", url.shown))?;
    let dbname = target
        .dbname
        .clone()
        .or_else(|| env("PGDATABASE"))
        .unwrap_or_else(|| user.clone());

    let mut config = postgres::Config::new();
    config
        .user(&user)
        .dbname(&dbname)
        .port(port)
        .connect_timeout(timeout)
        .application_name("fix-migrations check-db");
    let place = match &host {
        PgHost::Tcp(name) => {
            config.host(name);
            format!("{name} port {port}")
        }
        PgHost::Socket(dir) => {
            config.host_path(dir);
            format!("unix socket {}/.s.PGSQL.{port}", dir.display())
        }
    };
    if let Some(options) = &target.options {
        config.options(options);
    }
    let home = env("HOME").map(PathBuf::from);
    let tls = crate::pgtls::resolve(
        &crate::pgtls::Settings {
            sslmode: target.sslmode.as_deref(),
            sslrootcert: target.sslrootcert.as_deref(),
            sslcert: target.sslcert.as_deref(),
            sslkey: target.sslkey.as_deref(),
        },
        home.as_deref(),
        matches!(host, PgHost::Tcp(_)),
    )
    .map_err(|e| anyhow!("{}: {e:#}", url.shown))?;
    let place = match &tls.described {
        Some(described) => format!("{place} ({described})"),
        None => place,
    };
    config.ssl_mode(tls.mode);

    let mut password_source = None;
    let password = match &target.password {
        Some(password) => Some(password.clone()),
        None => match env("PGPASSWORD") {
            Some(password) => {
                password_source = Some("PGPASSWORD".to_string());
                Some(password)
            }
            None => password_file(&host, port, &dbname, &user).map(|(password, file)| {
                password_source = Some(file.display().to_string());
                password
            }),
        },
    };
    if let Some(password) = password {
        url.add_secret(&password);
        config.password(password);
    }
    Ok(PgConnect {
        config,
        place,
        password_source,
        tls: tls.connector,
        plain_first: tls.plain_first,
    })
}

/// libpq's compiled-in socket directory differs between builds; use the one that holds the
/// server's socket.
fn default_socket_dir(port: u16) -> PathBuf {
    ["/var/run/postgresql", "/run/postgresql", "/tmp"]
        .iter()
        .map(PathBuf::from)
        .find(|dir| dir.join(format!(".s.PGSQL.{port}")).exists())
        .unwrap_or_else(|| PathBuf::from("/var/run/postgresql"))
}

/// A password from PGPASSFILE or ~/.pgpass, as libpq reads it: the first matching line wins,
/// and a file that group or others may read is ignored (with a warning).
fn password_file(host: &PgHost, port: u16, dbname: &str, user: &str) -> Option<(String, PathBuf)> {
    let path = PgPass::locate()?;
    let metadata = std::fs::metadata(&path).ok()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if metadata.permissions().mode() & 0o077 != 0 {
            eprintln!(
                "warning: password file {} has group or world access; permissions should be u=rw (0600) or less (ignored)",
                path.display()
            );
            return None;
        }
    }
    if !metadata.is_file() {
        return None;
    }
    let Ok(file) = PgPass::open(&path) else {
        // The parser's message may quote part of a line; say only where.
        eprintln!(
            "warning: password file {} is not in the hostname:port:database:username:password format (ignored)",
            path.display()
        );
        return None;
    };
    // libpq matches a socket connection in the default directory as "localhost".
    let hostname = match host {
        PgHost::Tcp(name) => name.clone(),
        PgHost::Socket(dir)
            if ["/var/run/postgresql", "/run/postgresql", "/tmp"]
                .iter()
                .any(|d| dir == Path::new(d)) =>
        {
            "localhost".to_string()
        }
        PgHost::Socket(dir) => dir.display().to_string(),
    };
    let credentials = file
        .query()
        .hostname(&hostname)
        .ok()?
        .port(port)
        .ok()?
        .database(dbname)
        .ok()?
        .username(user)
        .ok()?
        .find()
        .ok()??;
    Some((credentials.password, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_names_from_create_table() {
        let sql = r#"CREATE TABLE "notes" (
            id INTEGER NOT NULL,
            author_id INTEGER,
            a INT, "b c" INT,
            PRIMARY KEY (id),
            CONSTRAINT fk_notes_author_id_users FOREIGN KEY(author_id) REFERENCES users (id) ON DELETE CASCADE,
            CONSTRAINT "fk two" FOREIGN KEY (a, "b c") REFERENCES pairs (x, y),
            FOREIGN KEY (id) REFERENCES other (id),
            CONSTRAINT uq UNIQUE (a)
        )"#;
        assert_eq!(
            sqlite_constraint_names(sql),
            vec![
                (
                    "fk_notes_author_id_users".to_string(),
                    vec!["author_id".to_string()]
                ),
                (
                    "fk two".to_string(),
                    vec!["a".to_string(), "b c".to_string()]
                ),
            ]
        );
    }

    #[test]
    fn actions() {
        assert_eq!(action("NO ACTION"), None);
        assert_eq!(action("set null").as_deref(), Some("SET NULL"));
        assert_eq!(pg_action("a"), None);
        assert_eq!(pg_action("c").as_deref(), Some("CASCADE"));
    }
}
