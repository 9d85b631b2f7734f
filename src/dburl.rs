//! Database URLs as SQLAlchemy writes them, for `check-db`: which database to open, and how to
//! show the URL without its password.
//!
//! `sqlite:///app.db` (relative), `sqlite:////abs/app.db`, `postgresql://user:pass@host:5432/db`,
//! `postgresql+psycopg2://user@/db?host=/run/postgresql` (a unix socket directory). The driver
//! suffix (`+psycopg2`, `+psycopg`, `+asyncpg`, `+pg8000`, `+pysqlite`) doesn't matter here.

use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow, bail};
use percent_encoding::percent_decode_str;
use url::Url;

/// A parsed URL. Holds the password so it can connect, and can strip it from any text.
#[derive(Debug, Clone)]
pub struct DbUrl {
    pub target: Target,
    /// The URL as it may be printed: `postgresql://user:***@host/db`.
    pub shown: String,
    /// Every spelling of the password that could appear in a message (raw and decoded).
    secrets: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Sqlite { path: PathBuf },
    Postgres(Box<PgTarget>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgTarget {
    pub user: Option<String>,
    pub password: Option<String>,
    /// None: libpq's default (PGHOST, else the local unix socket).
    pub host: Option<PgHost>,
    pub port: Option<u16>,
    pub dbname: Option<String>,
    /// libpq `options` (`-csearch_path=app,public`).
    pub options: Option<String>,
    pub sslmode: Option<String>,
    /// A PEM file of root certificates, or `system`.
    pub sslrootcert: Option<String>,
    /// The client certificate (PEM) and its private key, for servers that authenticate
    /// clients by certificate.
    pub sslcert: Option<String>,
    pub sslkey: Option<String>,
    /// Query parameters this tool does not use (passed through by psycopg2, not by us).
    pub ignored: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PgHost {
    Tcp(String),
    /// A directory holding the server's unix socket.
    Socket(PathBuf),
}

impl PgHost {
    /// A host given as an absolute path is a unix socket directory, as in libpq.
    pub fn from_text(text: &str) -> PgHost {
        if text.starts_with('/') {
            PgHost::Socket(PathBuf::from(text))
        } else {
            PgHost::Tcp(text.to_string())
        }
    }
}

impl std::fmt::Display for PgHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PgHost::Tcp(host) => f.write_str(host),
            PgHost::Socket(dir) => write!(f, "unix socket in {}", dir.display()),
        }
    }
}

impl DbUrl {
    /// `text` with every occurrence of the password replaced by `***`: for driver messages,
    /// which may echo what they were given.
    pub fn scrub(&self, text: &str) -> String {
        self.secrets
            .iter()
            .fold(text.to_string(), |acc, secret| acc.replace(secret, "***"))
    }

    /// Another password (from PGPASSWORD or a password file) that must never be printed either.
    pub fn add_secret(&mut self, secret: &str) {
        if !secret.is_empty() && !self.secrets.iter().any(|s| s == secret) {
            self.secrets.push(secret.to_string());
            // Longest first, so a password containing another is replaced whole.
            self.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }
}

/// Parse `raw`; a relative SQLite path is resolved against `base` (SQLAlchemy resolves it
/// against the working directory of the process that runs it). Errors show the masked URL only.
pub fn parse(raw: &str, base: &Path) -> Result<DbUrl> {
    let raw = raw.trim();
    let shown = mask(raw);
    let (scheme, rest) = raw
        .split_once("://")
        .ok_or_else(|| anyhow!("{shown}: not a database URL (expected dialect://...)"))?;
    let dialect = scheme
        .split('+')
        .next()
        .unwrap_or(scheme)
        .to_ascii_lowercase();
    let target = match dialect.as_str() {
        "sqlite" => sqlite_target(rest, base).map_err(|e| anyhow!("{shown}: {e}"))?,
        "postgresql" | "postgres" => Target::Postgres(Box::new(
            pg_target(rest).map_err(|e| anyhow!("{shown}: {e}"))?,
        )),
        other => bail!(
            "{shown}: unsupported database {other:?}; check-db reads sqlite and postgresql URLs"
        ),
    };
    let mut url = DbUrl {
        target,
        shown,
        secrets: Vec::new(),
    };
    // The password as SQLAlchemy reads it, and as the (wider) mask reads it.
    let sqlalchemy_password = split_credentials(rest).0.and_then(|(_, p)| p);
    let masked_password = userinfo(raw)
        .and_then(|u| u.split_once(':'))
        .map(|(_, p)| p);
    for raw_password in [sqlalchemy_password, masked_password].into_iter().flatten() {
        url.add_secret(raw_password);
        url.add_secret(&percent_decode_str(raw_password).decode_utf8_lossy());
    }
    if let Target::Postgres(target) = &url.target
        && let Some(password) = &target.password
    {
        let password = password.clone();
        url.add_secret(&password);
    }
    Ok(url)
}

/// The URL with its password replaced by `***`. Works on any text that looks like a URL,
/// also one that fails to parse, so error messages never carry the password.
pub fn mask(raw: &str) -> String {
    let masked = match userinfo(raw).and_then(|info| Some((info, info.split_once(':')?.0))) {
        Some((info, user)) => {
            let start = raw.find("://").map_or(0, |i| i + 3);
            format!("{}{user}:***{}", &raw[..start], &raw[start + info.len()..])
        }
        None => raw.to_string(),
    };
    mask_query_password(&masked)
}

/// `?password=...` (libpq and psycopg2 accept it) -> `?password=***`.
fn mask_query_password(url: &str) -> String {
    let Some(query_start) = url.find('?') else {
        return url.to_string();
    };
    let (head, query) = url.split_at(query_start + 1);
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if key == "password" => format!("{key}=***"),
            _ => pair.to_string(),
        })
        .collect();
    format!("{head}{}", pairs.join("&"))
}

/// The `user:password` part between `://` and the last `@` of the authority.
fn userinfo(raw: &str) -> Option<&str> {
    let start = raw.find("://")? + 3;
    let rest = &raw[start..];
    // Passwords may hold '/', '?' or '#' unencoded; the last '@' ends the userinfo.
    let at = rest.rfind('@')?;
    Some(&rest[..at])
}

fn sqlite_target(rest: &str, base: &Path) -> Result<Target> {
    // sqlite:///relative.db -> rest "/relative.db"; sqlite:////abs.db -> rest "//abs.db".
    let without_query = rest.split('?').next().unwrap_or(rest);
    let Some(path) = without_query.strip_prefix('/') else {
        if without_query.is_empty() {
            bail!("an in-memory SQLite database has no tables to check");
        }
        bail!("SQLite URLs have no host: write sqlite:///relative.db or sqlite:////absolute.db");
    };
    if path.is_empty() || path == ":memory:" {
        bail!("an in-memory SQLite database has no tables to check");
    }
    let path = PathBuf::from(percent_decode_str(path).decode_utf8_lossy().into_owned());
    Ok(Target::Sqlite {
        path: if path.is_absolute() {
            path
        } else {
            base.join(path)
        },
    })
}

fn pg_target(rest: &str) -> Result<PgTarget> {
    let (credentials, location) = split_credentials(rest);
    // `user@/db` (no host: the unix socket) is valid for SQLAlchemy; give the URL parser a
    // stand-in host and drop it afterwards.
    const STAND_IN: &str = "no-host.invalid";
    let no_host = location.is_empty() || location.starts_with([':', '/', '?']);
    let text = if no_host {
        format!("postgresql://{STAND_IN}{location}")
    } else {
        format!("postgresql://{location}")
    };
    let url = Url::parse(&text).map_err(|e| anyhow!("cannot parse the URL: {e}"))?;
    let decode = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
    let (user, password) = match credentials {
        Some((user, password)) => (Some(decode(user)), password.map(decode)),
        None => (None, None),
    };
    let mut target = PgTarget {
        user: user.filter(|u| !u.is_empty()),
        password,
        host: match url.host_str() {
            Some(h) if !no_host => Some(PgHost::from_text(h.trim_matches(['[', ']']))),
            _ => None,
        },
        port: url.port(),
        dbname: Some(decode(url.path().trim_start_matches('/'))).filter(|d| !d.is_empty()),
        options: None,
        sslmode: None,
        sslrootcert: None,
        sslcert: None,
        sslkey: None,
        ignored: Vec::new(),
    };
    for (key, value) in url.query_pairs() {
        let value = value.into_owned();
        match key.as_ref() {
            "host" => target.host = Some(PgHost::from_text(&value)),
            "port" => {
                target.port = Some(
                    value
                        .parse()
                        .map_err(|_| anyhow!("port={value:?} is not a port number"))?,
                )
            }
            "user" => target.user = Some(value),
            "password" => target.password = Some(value),
            "dbname" | "database" => target.dbname = Some(value),
            "options" => target.options = Some(value),
            "sslmode" => target.sslmode = Some(value),
            "sslrootcert" => target.sslrootcert = Some(value),
            "sslcert" => target.sslcert = Some(value),
            "sslkey" => target.sslkey = Some(value),
            other => target.ignored.push(other.to_string()),
        }
    }
    Ok(target)
}

/// `user[:password]@` as SQLAlchemy reads it: the user holds no ':' or '/', the password runs
/// to the first '@' (so it may hold '/' or '?' unencoded, but not '@'). Returns the
/// credentials and the rest (host, port, path, query).
fn split_credentials(rest: &str) -> (Option<(&str, Option<&str>)>, &str) {
    let Some(at) = rest.find('@') else {
        return (None, rest);
    };
    let info = &rest[..at];
    let (user, password) = match info.split_once(':') {
        Some((user, password)) => (user, Some(password)),
        None => (info, None),
    };
    if user.contains('/') {
        return (None, rest);
    }
    (Some((user, password)), &rest[at + 1..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pg(raw: &str) -> PgTarget {
        match parse(raw, Path::new("/base")).unwrap().target {
            Target::Postgres(t) => *t,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn sqlite_paths() {
        let path = |raw: &str| match parse(raw, Path::new("/base")).unwrap().target {
            Target::Sqlite { path } => path,
            other => panic!("{other:?}"),
        };
        assert_eq!(path("sqlite:///app.db"), PathBuf::from("/base/app.db"));
        assert_eq!(path("sqlite:////srv/app.db"), PathBuf::from("/srv/app.db"));
        assert_eq!(
            path("sqlite+pysqlite:///d/app.db"),
            PathBuf::from("/base/d/app.db")
        );
        assert!(parse("sqlite://", Path::new("/")).is_err());
        assert!(parse("sqlite:///:memory:", Path::new("/")).is_err());
    }

    #[test]
    fn postgres_forms() {
        let t = pg("postgresql://user:pass@db.example.com:6543/app");
        assert_eq!(t.user.as_deref(), Some("user"));
        assert_eq!(t.password.as_deref(), Some("pass"));
        assert_eq!(t.host, Some(PgHost::Tcp("db.example.com".into())));
        assert_eq!(t.port, Some(6543));
        assert_eq!(t.dbname.as_deref(), Some("app"));

        let t = pg("postgresql+psycopg2://user@/db?host=/run/postgresql");
        assert_eq!(t.user.as_deref(), Some("user"));
        assert_eq!(t.password, None);
        assert_eq!(t.host, Some(PgHost::Socket("/run/postgresql".into())));
        assert_eq!(t.dbname.as_deref(), Some("db"));

        let t = pg("postgresql://u:p@/db?host=/tmp/x&port=5433&sslmode=disable&foo=1");
        assert_eq!(t.host, Some(PgHost::Socket("/tmp/x".into())));
        assert_eq!(t.port, Some(5433));
        assert_eq!(t.sslmode.as_deref(), Some("disable"));
        assert_eq!(t.ignored, vec!["foo".to_string()]);

        let t = pg("postgres:///db");
        assert_eq!(
            (t.user, t.host, t.dbname.as_deref()),
            (None, None, Some("db"))
        );

        // Percent-encoded and unencoded special characters in the password.
        let t = pg("postgresql://app:p%40ss%2Fw@localhost/app");
        assert_eq!(t.password.as_deref(), Some("p@ss/w"));
        let t = pg("postgresql://app:p/w?x@localhost/app?application_name=a@b");
        assert_eq!(t.password.as_deref(), Some("p/w?x"));
        assert_eq!(t.host, Some(PgHost::Tcp("localhost".into())));
        let t = pg("postgresql://localhost/app?application_name=a@b");
        assert_eq!(
            (t.user, t.host),
            (None, Some(PgHost::Tcp("localhost".into())))
        );

        let t = pg("postgresql://app@[::1]:5432/app");
        assert_eq!(t.host, Some(PgHost::Tcp("::1".into())));
    }

    #[test]
    fn masking() {
        assert_eq!(
            mask("postgresql://user:s3cret@host/db"),
            "postgresql://user:***@host/db"
        );
        assert_eq!(
            mask("postgresql+psycopg2://user:p@ss/w@host:5432/db?x=1"),
            "postgresql+psycopg2://user:***@host:5432/db?x=1"
        );
        assert_eq!(
            mask("postgresql://user@host/db"),
            "postgresql://user@host/db"
        );
        assert_eq!(mask("sqlite:///app.db"), "sqlite:///app.db");
        assert_eq!(
            mask("postgresql:///db?host=/tmp&password=x1&port=1"),
            "postgresql:///db?host=/tmp&password=***&port=1"
        );
        let url = parse("postgresql://u:p%40ss@h/db", Path::new("/")).unwrap();
        assert_eq!(url.shown, "postgresql://u:***@h/db");
        assert_eq!(
            url.scrub("failed for p@ss and p%40ss"),
            "failed for *** and ***"
        );
        let err = parse("mysql://u:hunter2@h/db", Path::new("/")).unwrap_err();
        assert!(!format!("{err:#}").contains("hunter2"), "{err:#}");
    }
}
