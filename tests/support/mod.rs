//! Real components for the end-to-end tests: a pinned Python venv with Alembic,
//! SQLAlchemy, SQLModel and Flask-SQLAlchemy, a throwaway PostgreSQL cluster,
//! temporary Alembic projects built from `examples/`, and readers for the
//! ON DELETE rules that actually ended up in the database.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;

pub mod sqlite_project;

// ---------------------------------------------------------------------------
// Paths and commands

pub fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The binary under test; `FIX_MIGRATIONS_BIN` may point at another build.
pub fn tool_bin() -> PathBuf {
    match std::env::var_os("FIX_MIGRATIONS_BIN") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_fix-migrations")),
    }
}

/// What a finished command printed, with a description for failure messages.
pub struct CmdOutput {
    pub desc: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl CmdOutput {
    pub fn report(&self) -> String {
        format!(
            "$ {}\n{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.desc,
            self.status,
            self.stdout.trim_end(),
            self.stderr.trim_end()
        )
    }
}

fn describe(cmd: &Command) -> String {
    let mut s = String::new();
    if let Some(dir) = cmd.get_current_dir() {
        let _ = write!(s, "(cd {}) ", dir.display());
    }
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            let _ = write!(s, "{}={} ", k.to_string_lossy(), v.to_string_lossy());
        }
    }
    let _ = write!(s, "{}", cmd.get_program().to_string_lossy());
    for a in cmd.get_args() {
        let a = a.to_string_lossy();
        if a.is_empty() || a.contains(|c: char| c.is_whitespace() || c == '\'' || c == '"') {
            let _ = write!(s, " '{}'", a.replace('\'', "'\\''"));
        } else {
            let _ = write!(s, " {a}");
        }
    }
    s
}

/// How long one command may run before it is killed (FIX_MIGRATIONS_E2E_TIMEOUT, seconds).
fn command_timeout() -> Duration {
    let secs = std::env::var("FIX_MIGRATIONS_E2E_TIMEOUT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    Duration::from_secs(secs)
}

/// Runs a command to completion with no standard input, capturing its output.
/// A command that outlives [`command_timeout`] is killed and reported.
pub fn run(cmd: &mut Command) -> Result<CmdOutput> {
    run_with_timeout(cmd, command_timeout())
}

/// [`run`] with its own limit, for the few commands (release builds) that need longer.
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Result<CmdOutput> {
    use std::io::Read;
    let desc = describe(cmd);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start: {desc}"))?;
    let mut out_pipe = child.stdout.take().expect("piped stdout");
    let mut err_pipe = child.stderr.take().expect("piped stderr");
    let out_reader = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out_pipe.read_to_end(&mut buf);
        buf
    });
    let err_reader = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err_pipe.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            timed_out = true;
            let _ = child.kill();
            break child.wait()?;
        }
        thread::sleep(Duration::from_millis(20));
    };
    let output = CmdOutput {
        desc,
        status,
        stdout: String::from_utf8_lossy(&out_reader.join().unwrap_or_default()).into_owned(),
        stderr: String::from_utf8_lossy(&err_reader.join().unwrap_or_default()).into_owned(),
    };
    if timed_out {
        bail!(
            "command killed after {} s:\n{}",
            timeout.as_secs(),
            output.report()
        );
    }
    Ok(output)
}

/// Like [`run`], but a non-zero exit is an error carrying the whole output.
pub fn run_ok(cmd: &mut Command) -> Result<CmdOutput> {
    let out = run(cmd)?;
    if !out.status.success() {
        bail!("command failed:\n{}", out.report());
    }
    Ok(out)
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn running_as_root() -> bool {
    // /proc/self/status: "Uid:\treal\teffective\tsaved\tfs"
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

// ---------------------------------------------------------------------------
// Python venv

pub struct Venv {
    pub dir: PathBuf,
}

pub const REQUIREMENTS: &str = "tests/requirements-e2e.txt";
/// Copy of the requirements a venv was built from; written last, after pip succeeded.
const PINS_MARKER: &str = ".e2e-requirements.txt";

impl Venv {
    pub fn bin(&self, name: &str) -> PathBuf {
        self.dir.join("bin").join(name)
    }

    pub fn python(&self) -> PathBuf {
        self.bin("python")
    }

    fn ensure() -> Result<Venv> {
        let dir = match std::env::var_os("FIX_MIGRATIONS_E2E_VENV") {
            Some(p) if !p.is_empty() => PathBuf::from(p),
            _ => manifest_dir().join("target").join("e2e-venv"),
        };
        let req_path = manifest_dir().join(REQUIREMENTS);
        let wanted = fs::read_to_string(&req_path)
            .with_context(|| format!("reading {}", req_path.display()))?;
        let venv = Venv { dir };
        let marker = venv.dir.join(PINS_MARKER);
        if fs::read_to_string(&marker).ok().as_deref() == Some(wanted.as_str())
            && venv.python().is_file()
            && venv.bin("alembic").is_file()
        {
            return Ok(venv);
        }
        if venv.dir.exists() {
            fs::remove_dir_all(&venv.dir)
                .with_context(|| format!("removing stale venv {}", venv.dir.display()))?;
        }
        let python = match std::env::var_os("FIX_MIGRATIONS_E2E_PYTHON") {
            Some(p) if !p.is_empty() => PathBuf::from(p),
            _ => which("python3.11")
                .or_else(|| which("python3"))
                .ok_or_else(|| anyhow!("no python3 on PATH (set FIX_MIGRATIONS_E2E_PYTHON)"))?,
        };
        eprintln!(
            "e2e: creating Python venv {} from {}",
            venv.dir.display(),
            REQUIREMENTS
        );
        run_ok(Command::new(&python).arg("-m").arg("venv").arg(&venv.dir))?;
        run_ok(
            Command::new(venv.python())
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--disable-pip-version-check",
                    "--no-input",
                    "-r",
                ])
                .arg(&req_path),
        )
        .context("pip install of the pinned e2e requirements failed")?;
        fs::write(&marker, &wanted)?;
        Ok(venv)
    }
}

/// The venv shared by every test of the process, built on first use.
pub fn venv() -> &'static Venv {
    static VENV: OnceLock<Result<Venv, String>> = OnceLock::new();
    match VENV.get_or_init(|| Venv::ensure().map_err(|e| format!("{e:#}"))) {
        Ok(v) => v,
        Err(e) => panic!("cannot prepare the e2e Python venv: {e}"),
    }
}

// ---------------------------------------------------------------------------
// PostgreSQL

fn pg_bin(name: &str) -> Result<PathBuf> {
    if let Some(p) = which(name) {
        return Ok(p);
    }
    // Debian keeps the server binaries off PATH.
    let mut dirs: Vec<PathBuf> = fs::read_dir("/usr/lib/postgresql")
        .map(|rd| rd.flatten().map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    dirs.sort_by_key(|d| {
        d.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    dirs.iter()
        .rev()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| anyhow!("`{name}` not found on PATH nor in /usr/lib/postgresql/*/bin"))
}

/// A private PostgreSQL cluster listening only on a unix socket in its own
/// temporary directory. Dropping it stops the server (by the pid in
/// postmaster.pid) and removes the directory.
pub struct PgCluster {
    root: tempfile::TempDir,
    pub port: u16,
    pid: Option<u32>,
}

impl PgCluster {
    pub fn socket_dir(&self) -> &Path {
        self.root.path()
    }

    fn data_dir(&self) -> PathBuf {
        self.root.path().join("data")
    }

    fn as_server_user(&self, program: &Path) -> Command {
        let mut cmd = if running_as_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        // The server user may not be allowed into the test's working directory.
        cmd.current_dir(self.root.path());
        cmd
    }

    pub fn start() -> Result<PgCluster> {
        Self::start_with(false)
    }

    /// A cluster that also listens on TCP at 127.0.0.1:`port` (a free port), where every
    /// connection must use TLS and give its role's password (scram-sha-256); the unix socket
    /// stays `trust`. The server's certificate names `localhost` only and is signed by a test
    /// CA ([`Self::ca_cert`]). Every statement is logged with its application name (see
    /// [`Self::server_log`]).
    pub fn start_with_tcp() -> Result<PgCluster> {
        Self::start_with(true)
    }

    /// A cluster whose TCP side offers TLS that rustls can't agree to (TLS 1.2 at most, with
    /// only the RSA key exchange cipher `AES256-SHA`) and also takes plain connections, as
    /// some old servers do: libpq's `prefer` falls back to plain there.
    pub fn start_with_legacy_tls() -> Result<PgCluster> {
        let cluster = Self::start_with(true)?;
        let data = cluster.data_dir();
        fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n",
        )?;
        fs::write(
            data.join("postgresql.auto.conf"),
            "ssl_max_protocol_version = 'TLSv1.2'\nssl_ciphers = 'AES256-SHA'\n",
        )?;
        cluster.psql("postgres", "SELECT pg_reload_conf()")?;
        Ok(cluster)
    }

    /// The PEM file of the CA that signed a TCP cluster's server certificate.
    pub fn ca_cert(&self) -> PathBuf {
        self.root.path().join("ca.crt")
    }

    /// A TCP cluster's client certificate and key (PEM) for the role `certuser`, which
    /// pg_hba.conf lets in by certificate only.
    pub fn client_cert(&self) -> (PathBuf, PathBuf) {
        let dir = self.root.path();
        (dir.join("client.crt"), dir.join("client.key"))
    }

    /// A CA, a server certificate it signs for `localhost` (not for 127.0.0.1) and a client
    /// certificate for `certuser`, made with the `openssl` command; the server key belongs to
    /// the server user, mode 0600, as PostgreSQL demands.
    fn make_certificates(&self) -> Result<()> {
        let dir = self.root.path();
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        run_ok(
            Command::new("openssl")
                .current_dir(dir)
                .args(["req", "-x509"])
                .args(ec)
                .args(["-keyout", "ca.key", "-out", "ca.crt", "-days", "2"])
                .args(["-subj", "/CN=fix-migrations test CA"]),
        )
        .context("the openssl command makes the test certificates")?;
        // A key and a certificate for `subject`, signed by the CA (with `extensions`, an X.509
        // v3 certificate; without, v1, as `openssl x509 -req` makes one by default).
        let signed = |name: &str, subject: &str, extensions: Option<&str>| -> Result<()> {
            run_ok(
                Command::new("openssl")
                    .current_dir(dir)
                    .arg("req")
                    .args(ec)
                    .args(["-keyout", &format!("{name}.key")])
                    .args(["-out", &format!("{name}.csr")])
                    .args(["-subj", subject]),
            )?;
            let mut sign = Command::new("openssl");
            sign.current_dir(dir)
                .args(["x509", "-req", "-in", &format!("{name}.csr")])
                .args(["-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial"])
                .args(["-out", &format!("{name}.crt"), "-days", "2"]);
            if let Some(extensions) = extensions {
                fs::write(dir.join(format!("{name}.ext")), extensions)?;
                sign.args(["-extfile", &format!("{name}.ext")]);
            }
            run_ok(&mut sign)?;
            Ok(())
        };
        signed(
            "server",
            "/CN=localhost",
            Some("subjectAltName=DNS:localhost\nbasicConstraints=critical,CA:FALSE\n"),
        )?;
        // A client certificate for the role `certuser` (pg_hba.conf `cert` takes the role from
        // the CN); the key stays the test's, mode 0600 as libpq demands.
        signed("client", "/CN=certuser", None)?;
        if running_as_root() {
            run_ok(
                Command::new("chown")
                    .args(["postgres", "server.key", "server.crt"])
                    .current_dir(dir),
            )?;
        }
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir.join("server.key"), fs::Permissions::from_mode(0o600))?;
        fs::set_permissions(dir.join("client.key"), fs::Permissions::from_mode(0o600))?;
        Ok(())
    }

    /// Replaces a TCP cluster's server certificate with a self-signed one for `localhost`, made
    /// the way PostgreSQL's documentation makes one (`openssl req -new -x509`, so a CA
    /// certificate), and has the server load it. Returns the certificate's path.
    pub fn use_self_signed_certificate(&self) -> Result<PathBuf> {
        let dir = self.root.path();
        run_ok(Command::new("openssl").current_dir(dir).args([
            "req",
            "-new",
            "-x509",
            "-days",
            "2",
            "-nodes",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-keyout",
            "self.key",
            "-out",
            "self.crt",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
        ]))?;
        // In place, so the files keep their owner (the server user).
        fs::write(dir.join("server.crt"), fs::read(dir.join("self.crt"))?)?;
        fs::write(dir.join("server.key"), fs::read(dir.join("self.key"))?)?;
        self.psql("postgres", "SELECT pg_reload_conf()")?;
        Ok(dir.join("self.crt"))
    }

    /// The server's log file so far.
    pub fn server_log(&self) -> String {
        fs::read_to_string(self.root.path().join("server.log")).unwrap_or_default()
    }

    fn start_with(tcp: bool) -> Result<PgCluster> {
        static NEXT: AtomicU16 = AtomicU16::new(0);
        let initdb = pg_bin("initdb")?;
        let pg_ctl = pg_bin("pg_ctl")?;
        let root = tempfile::Builder::new()
            .prefix("fix-migrations-pg-")
            .tempdir_in("/tmp")
            .context("creating the cluster directory")?;
        if running_as_root() {
            run_ok(Command::new("chown").arg("postgres").arg(root.path()))
                .context("PostgreSQL refuses to run as root and needs a `postgres` user")?;
        }
        // Only the socket file name depends on the port: the socket lives in our
        // own directory, so no other server can collide with it.
        let port = if tcp {
            // A TCP port must be free on 127.0.0.1: take one the kernel hands out.
            std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port()
        } else {
            20000 + (std::process::id() % 20000) as u16 + NEXT.fetch_add(1, Ordering::SeqCst)
        };
        let mut cluster = PgCluster {
            root,
            port,
            pid: None,
        };
        let data = cluster.data_dir();
        run_ok(cluster.as_server_user(&initdb).arg("-D").arg(&data).args([
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
        ]))
        .context("initdb failed")?;
        let mut opts = format!(
            "-k {} -c listen_addresses='' -p {} -c fsync=off",
            cluster.socket_dir().display(),
            port
        );
        if tcp {
            // Overwritten in place, so the file keeps its owner (the server user).
            fs::write(
                data.join("pg_hba.conf"),
                "local all all trust\nhostssl all certuser 127.0.0.1/32 cert\nhostssl all all 127.0.0.1/32 scram-sha-256\n",
            )
            .context("writing pg_hba.conf")?;
            cluster.make_certificates()?;
            let dir = cluster.socket_dir().display().to_string();
            opts = format!(
                "-k {dir} -c listen_addresses=127.0.0.1 -p {port} -c fsync=off -c log_statement=all -c log_line_prefix='[%a] ' -c ssl=on -c ssl_cert_file={dir}/server.crt -c ssl_key_file={dir}/server.key -c ssl_ca_file={dir}/ca.crt"
            );
        }
        let log = cluster.root.path().join("server.log");
        let started = run(cluster
            .as_server_user(&pg_ctl)
            .arg("-D")
            .arg(&data)
            .arg("-o")
            .arg(&opts)
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", "60", "start"]))?;
        // Record the pid even when pg_ctl gave up waiting, so Drop can stop it.
        cluster.pid = read_postmaster_pid(&data);
        if !started.status.success() {
            let server_log = fs::read_to_string(&log).unwrap_or_default();
            bail!(
                "pg_ctl start failed:\n{}\n--- server.log ---\n{}",
                started.report(),
                server_log
            );
        }
        if cluster.pid.is_none() {
            bail!(
                "PostgreSQL started but {}/postmaster.pid is unreadable",
                data.display()
            );
        }
        Ok(cluster)
    }

    pub fn psql(&self, db: &str, sql: &str) -> Result<String> {
        let out = run_ok(
            Command::new(pg_bin("psql")?)
                .args(["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h"])
                .arg(self.socket_dir())
                .arg("-p")
                .arg(self.port.to_string())
                .args(["-U", "postgres", "-d", db, "-c", sql]),
        )?;
        Ok(out.stdout)
    }

    pub fn create_database(&self, name: &str) -> Result<()> {
        self.psql("postgres", &format!("DROP DATABASE IF EXISTS \"{name}\""))?;
        self.psql("postgres", &format!("CREATE DATABASE \"{name}\""))?;
        Ok(())
    }

    /// SQLAlchemy URL for a database of this cluster (psycopg2 over the unix socket).
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgresql+psycopg2://postgres@/{db}?host={}&port={}",
            self.socket_dir().display(),
            self.port
        )
    }

    fn stop(&mut self) {
        let data = self.data_dir();
        let Some(pid) = self.pid.take().or_else(|| read_postmaster_pid(&data)) else {
            return;
        };
        // SIGINT = "fast" shutdown: disconnect clients, stop cleanly.
        signal(pid, "INT");
        let deadline = Instant::now() + Duration::from_secs(30);
        while process_alive(pid) && data.join("postmaster.pid").exists() {
            if Instant::now() > deadline {
                eprintln!("e2e: PostgreSQL {pid} ignored SIGINT for 30 s; sending SIGKILL");
                signal(pid, "KILL");
                break;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        self.stop();
    }
}

fn read_postmaster_pid(data: &Path) -> Option<u32> {
    fs::read_to_string(data.join("postmaster.pid"))
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("sh")
        .args(["-c", &format!("kill -{sig} {pid}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

fn process_alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // Field 3 is the state; a zombie has exited already.
        Ok(stat) => !stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.trim_start().starts_with('Z'))
            .unwrap_or(false),
        Err(_) => false,
    }
}

/// One cluster shared by all PostgreSQL tests running at the same time. Each
/// test holds an `Arc`; when the last holder finishes (or panics), the cluster
/// stops. A later test starts a fresh one.
pub fn shared_cluster() -> Arc<PgCluster> {
    static SHARED: Mutex<Weak<PgCluster>> = Mutex::new(Weak::new());
    let mut slot = SHARED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(c) = slot.upgrade() {
        return c;
    }
    let cluster =
        Arc::new(PgCluster::start().unwrap_or_else(|e| panic!("cannot start PostgreSQL: {e:#}")));
    *slot = Arc::downgrade(&cluster);
    cluster
}

// ---------------------------------------------------------------------------
// Foreign keys as the database has them

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbFk {
    pub name: Option<String>,
    pub table: String,
    pub columns: Vec<String>,
    pub referent_table: String,
    pub referent_columns: Vec<String>,
    pub ondelete: String,
    pub onupdate: String,
}

pub fn pg_action(code: &str) -> Result<String> {
    Ok(match code {
        "a" => "NO ACTION",
        "r" => "RESTRICT",
        "c" => "CASCADE",
        "n" => "SET NULL",
        "d" => "SET DEFAULT",
        other => bail!("unknown pg_constraint action code {other:?}"),
    }
    .to_string())
}

fn str_list(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

const SQLITE_FKS_PY: &str = r#"
import json, sqlite3, sys
con = sqlite3.connect(sys.argv[1])
out = []
tables = [r[0] for r in con.execute(
    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
for t in tables:
    keys = {}
    for (kid, seq, ref, frm, to, on_update, on_delete, _match) in con.execute(
            "SELECT * FROM pragma_foreign_key_list(?) ORDER BY id, seq", (t,)):
        k = keys.setdefault(kid, {"table": t, "columns": [], "referent_table": ref,
                                  "referent_columns": [], "onupdate": on_update,
                                  "ondelete": on_delete})
        k["columns"].append(frm)
        k["referent_columns"].append(to)
    out.extend(keys.values())
print(json.dumps(out))
"#;

/// Every foreign key of a SQLite file, from `PRAGMA foreign_key_list`.
pub fn sqlite_fks(venv: &Venv, db_file: &Path) -> Result<Vec<DbFk>> {
    let out = run_ok(
        Command::new(venv.python())
            .arg("-c")
            .arg(SQLITE_FKS_PY)
            .arg(db_file),
    )?;
    let v: Value = serde_json::from_str(out.stdout.trim())
        .with_context(|| format!("parsing PRAGMA output:\n{}", out.stdout))?;
    let mut fks = Vec::new();
    for k in v.as_array().into_iter().flatten() {
        fks.push(DbFk {
            name: None,
            table: k["table"].as_str().unwrap_or_default().to_string(),
            columns: str_list(&k["columns"]),
            referent_table: k["referent_table"].as_str().unwrap_or_default().to_string(),
            referent_columns: str_list(&k["referent_columns"]),
            ondelete: k["ondelete"].as_str().unwrap_or_default().to_uppercase(),
            onupdate: k["onupdate"].as_str().unwrap_or_default().to_uppercase(),
        });
    }
    Ok(fks)
}

const PG_FKS_SQL: &str = "
SELECT coalesce(json_agg(row_to_json(k) ORDER BY k.table_name, k.name), '[]'::json)
FROM (
  SELECT c.conname AS name,
         t.relname AS table_name,
         rt.relname AS referent_table,
         c.confdeltype::text AS del,
         c.confupdtype::text AS upd,
         ARRAY(SELECT a.attname::text
                 FROM unnest(c.conkey) WITH ORDINALITY AS u(attnum, i)
                 JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = u.attnum
                ORDER BY u.i) AS columns,
         ARRAY(SELECT a.attname::text
                 FROM unnest(c.confkey) WITH ORDINALITY AS u(attnum, i)
                 JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = u.attnum
                ORDER BY u.i) AS referent_columns
    FROM pg_constraint c
    JOIN pg_class t ON t.oid = c.conrelid
    JOIN pg_class rt ON rt.oid = c.confrelid
    JOIN pg_namespace n ON n.oid = t.relnamespace
   WHERE c.contype = 'f' AND n.nspname = 'public'
) k";

/// Every foreign key in the public schema, from `pg_constraint`.
pub fn pg_fks(cluster: &PgCluster, db: &str) -> Result<Vec<DbFk>> {
    let out = cluster.psql(db, PG_FKS_SQL)?;
    let v: Value = serde_json::from_str(out.trim())
        .with_context(|| format!("parsing pg_constraint query output:\n{out}"))?;
    let mut fks = Vec::new();
    for k in v.as_array().into_iter().flatten() {
        fks.push(DbFk {
            name: k["name"].as_str().map(str::to_string),
            table: k["table_name"].as_str().unwrap_or_default().to_string(),
            columns: str_list(&k["columns"]),
            referent_table: k["referent_table"].as_str().unwrap_or_default().to_string(),
            referent_columns: str_list(&k["referent_columns"]),
            ondelete: pg_action(k["del"].as_str().unwrap_or_default())?,
            onupdate: pg_action(k["upd"].as_str().unwrap_or_default())?,
        });
    }
    Ok(fks)
}

// ---------------------------------------------------------------------------
// The hand-written oracle

/// One foreign key of an example, with the ON DELETE rule derived by hand from
/// the policy (never from the tool's output).
#[derive(Debug, Clone, Copy)]
pub struct ExpectedFk {
    pub table: &'static str,
    pub columns: &'static [&'static str],
    pub referent_table: &'static str,
    pub referent_columns: &'static [&'static str],
    pub ondelete: &'static str,
    pub onupdate: &'static str,
    /// Which policy step decides it (documentation; not compared with the tool).
    pub rule: &'static str,
    /// Added by models_v2.py (round 2) rather than present from round 1.
    pub in_v2: bool,
}

/// `table.col -> referent.id`, ondelete, the rule that decides it.
pub const fn fk(
    table: &'static str,
    columns: &'static [&'static str],
    referent_table: &'static str,
    ondelete: &'static str,
    rule: &'static str,
) -> ExpectedFk {
    ExpectedFk {
        table,
        columns,
        referent_table,
        referent_columns: &["id"],
        ondelete,
        onupdate: "NO ACTION",
        rule,
        in_v2: false,
    }
}

impl ExpectedFk {
    pub const fn v2(mut self) -> Self {
        self.in_v2 = true;
        self
    }
    pub const fn onupdate(mut self, action: &'static str) -> Self {
        self.onupdate = action;
        self
    }
    fn key(&self) -> (String, Vec<String>) {
        (
            self.table.to_string(),
            self.columns.iter().map(|c| c.to_string()).collect(),
        )
    }
    fn label(&self) -> String {
        format!(
            "{}({}) -> {}({})",
            self.table,
            self.columns.join(", "),
            self.referent_table,
            self.referent_columns.join(", ")
        )
    }
}

/// An example project and the foreign keys its models (v1 and v2) declare.
pub struct Style {
    /// Folder under `examples/` and under `tests/fixtures/e2e/`.
    pub name: &'static str,
    pub oracle: &'static [ExpectedFk],
}

// ---------------------------------------------------------------------------
// A scenario: one example on one database, three autogenerate rounds

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DbKind {
    Sqlite,
    Postgres,
}

pub struct Scenario {
    style: &'static Style,
    venv: &'static Venv,
    pg: Option<(Arc<PgCluster>, String)>,
    project: tempfile::TempDir,
    url: String,
    migration: Option<PathBuf>,
    /// Run the tool with `--fix-models`: the models are fixed too, so `alembic check` must be
    /// clean after every round and round 3's autogenerate must find nothing.
    fix_models: bool,
}

/// Files of an example that the test project takes over (not its versions).
const PROJECT_FILES: &[&str] = &[
    "alembic.ini",
    "models.py",
    "migrations/env.py",
    "migrations/script.py.mako",
];

impl Scenario {
    pub fn new(style: &'static Style, db: DbKind) -> Result<Scenario> {
        Scenario::with_options(style, db, false)
    }

    pub fn with_options(style: &'static Style, db: DbKind, fix_models: bool) -> Result<Scenario> {
        let venv = venv();
        let project = tempfile::Builder::new()
            .prefix(&format!("fix-migrations-e2e-{}-", style.name))
            .tempdir()?;
        let example = manifest_dir().join("examples").join(style.name);
        for f in PROJECT_FILES {
            let dest = project.path().join(f);
            fs::create_dir_all(dest.parent().unwrap())?;
            fs::copy(example.join(f), &dest)
                .with_context(|| format!("copying {}/{f}", example.display()))?;
        }
        fs::create_dir_all(project.path().join("migrations/versions"))?;
        let (pg, url) = match db {
            DbKind::Sqlite => (
                None,
                format!("sqlite:///{}", project.path().join("app.db").display()),
            ),
            DbKind::Postgres => {
                let cluster = shared_cluster();
                let suffix = if fix_models { "_fix_models" } else { "" };
                let dbname = format!("e2e_{}{suffix}", style.name.replace('-', "_"));
                cluster.create_database(&dbname)?;
                let url = cluster.url(&dbname);
                (Some((cluster, dbname)), url)
            }
        };
        Ok(Scenario {
            style,
            venv,
            pg,
            project,
            url,
            migration: None,
            fix_models,
        })
    }

    pub fn dir(&self) -> &Path {
        self.project.path()
    }

    fn versions_dir(&self) -> PathBuf {
        self.dir().join("migrations/versions")
    }

    fn migration_text(&self) -> String {
        match &self.migration {
            Some(p) => format!(
                "--- migration {} ---\n{}",
                p.display(),
                fs::read_to_string(p).unwrap_or_else(|e| format!("<unreadable: {e}>"))
            ),
            None => "(no migration generated yet)".to_string(),
        }
    }

    /// A failed step: the command's output and the current migration file.
    fn fail(&self, what: &str, out: &CmdOutput) -> anyhow::Error {
        anyhow!(
            "{what} failed:\n{}\n{}",
            out.report(),
            self.migration_text()
        )
    }

    fn alembic(&self, args: &[&str]) -> Result<CmdOutput> {
        let out = run(Command::new(self.venv.bin("alembic"))
            .args(args)
            .current_dir(self.dir())
            .env("DATABASE_URL", &self.url)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("PYTHONNOUSERSITE", "1"))?;
        if !out.status.success() {
            return Err(self.fail(&format!("alembic {}", args.join(" ")), &out));
        }
        Ok(out)
    }

    fn python_files(&self) -> Result<Vec<PathBuf>> {
        let mut v: Vec<PathBuf> = fs::read_dir(self.versions_dir())?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "py"))
            .collect();
        v.sort();
        Ok(v)
    }

    /// `alembic revision --autogenerate -m <msg>`; remembers the new file.
    fn autogenerate(&mut self, msg: &str) -> Result<PathBuf> {
        let before = self.python_files()?;
        self.alembic(&["revision", "--autogenerate", "-m", msg])?;
        let new: Vec<PathBuf> = self
            .python_files()?
            .into_iter()
            .filter(|p| !before.contains(p))
            .collect();
        match new.as_slice() {
            [one] => {
                self.migration = Some(one.clone());
                Ok(one.clone())
            }
            other => bail!("expected one new migration file, found {other:?}"),
        }
    }

    /// `fix-migrations --write --format json` in the project directory.
    fn fix(&self) -> Result<(CmdOutput, Option<Value>)> {
        let mut args = vec!["--write", "--format", "json"];
        if self.fix_models {
            args.push("--fix-models");
        }
        let out = run(Command::new(tool_bin())
            .args(args)
            .current_dir(self.dir())
            // As in a user's shell; the tool itself does not need a database.
            .env("DATABASE_URL", &self.url))?;
        let json = serde_json::from_str::<Value>(out.stdout.trim()).ok();
        Ok((out, json))
    }

    fn db_fks(&self) -> Result<Vec<DbFk>> {
        match &self.pg {
            Some((cluster, db)) => pg_fks(cluster, db),
            None => sqlite_fks(self.venv, &self.dir().join("app.db")),
        }
    }

    fn expected(&self, round: u8) -> Vec<&'static ExpectedFk> {
        self.style
            .oracle
            .iter()
            .filter(|e| round >= 2 || !e.in_v2)
            .collect()
    }

    /// Compares the database's keys with the oracle; returns the differences.
    fn check_db(&self, round: u8, problems: &mut Vec<String>) -> Result<()> {
        let fks = self.db_fks()?;
        let expected = self.expected(round);
        for e in &expected {
            let found: Vec<&DbFk> = fks
                .iter()
                .filter(|f| f.table == e.table && f.columns.iter().eq(e.columns.iter()))
                .collect();
            match found.as_slice() {
                [] => problems.push(format!("database: no foreign key {}", e.label())),
                [f] => {
                    if f.referent_table != e.referent_table
                        || !f.referent_columns.iter().eq(e.referent_columns.iter())
                    {
                        problems.push(format!(
                            "database: {} references {}({})",
                            e.label(),
                            f.referent_table,
                            f.referent_columns.join(", ")
                        ));
                    }
                    if f.ondelete != e.ondelete {
                        problems.push(format!(
                            "database: ondelete mismatch on {}: database has ON DELETE {}, oracle expects {} (rule: {})",
                            e.label(),
                            f.ondelete,
                            e.ondelete,
                            e.rule
                        ));
                    }
                    if f.onupdate != e.onupdate {
                        problems.push(format!(
                            "database: onupdate mismatch on {}: database has ON UPDATE {}, oracle expects {}",
                            e.label(),
                            f.onupdate,
                            e.onupdate
                        ));
                    }
                }
                many => problems.push(format!(
                    "database: {} foreign keys on {}({}): {many:?}",
                    many.len(),
                    e.table,
                    e.columns.join(", ")
                )),
            }
        }
        for f in &fks {
            let known = expected
                .iter()
                .any(|e| f.table == e.table && f.columns.iter().eq(e.columns.iter()));
            if !known {
                problems.push(format!("database: unexpected foreign key {f:?}"));
            }
        }
        let right = fks
            .iter()
            .filter(|f| {
                expected.iter().any(|e| {
                    f.table == e.table
                        && f.columns.iter().eq(e.columns.iter())
                        && f.ondelete == e.ondelete
                        && f.onupdate == e.onupdate
                })
            })
            .count();
        eprintln!(
            "e2e: {} on {:?} round {round}: {} foreign keys in the database, {right} with the expected ON DELETE/ON UPDATE rules ({} expected)",
            self.style.name,
            if self.pg.is_some() {
                DbKind::Postgres
            } else {
                DbKind::Sqlite
            },
            fks.len(),
            expected.len()
        );
        Ok(())
    }

    /// Checks the tool's exit status and JSON report against the oracle.
    fn check_tool(
        &self,
        round: u8,
        out: &CmdOutput,
        json: Option<&Value>,
        problems: &mut Vec<String>,
    ) {
        if out.status.code() != Some(0) {
            problems.push(format!(
                "fix-migrations --write exited with {} (expected 0):\n{}",
                out.status,
                out.report()
            ));
        }
        let Some(json) = json else {
            problems.push(format!(
                "fix-migrations --format json did not print one JSON object on stdout:\n{}",
                out.report()
            ));
            return;
        };
        if json["schema_version"] != 1 {
            problems.push(format!(
                "tool JSON: schema_version is {}",
                json["schema_version"]
            ));
        }
        for f in json["files"].as_array().into_iter().flatten() {
            if f["changed"] == Value::Bool(true) && f["written"] != Value::Bool(true) {
                problems.push(format!("tool JSON: changed file not written: {f}"));
            }
        }
        if self.fix_models {
            self.check_model_keys(round, json, problems);
        }
        let mut reported: BTreeMap<(String, Vec<String>), Vec<&Value>> = BTreeMap::new();
        for f in json["foreign_keys"].as_array().into_iter().flatten() {
            if f["function"] != "upgrade" || !matches!(f["status"].as_str(), Some("fixed" | "ok")) {
                continue;
            }
            let key = (
                f["table"].as_str().unwrap_or_default().to_string(),
                str_list(&f["columns"]),
            );
            reported.entry(key).or_default().push(f);
        }
        let expected = self.expected(round);
        for (key, entries) in &reported {
            let Some(e) = expected.iter().find(|e| &e.key() == key) else {
                problems.push(format!(
                    "tool JSON: reports a foreign key the oracle does not know: {}",
                    entries[0]
                ));
                continue;
            };
            for entry in entries {
                let got = entry["ondelete"]
                    .as_str()
                    .unwrap_or("NO ACTION")
                    .to_uppercase();
                if got != e.ondelete {
                    problems.push(format!(
                        "tool JSON: ondelete mismatch on {}: tool says {got} (rule {}, reason {}), oracle expects {} (rule: {})",
                        e.label(),
                        entry["rule"],
                        entry["reason"],
                        e.ondelete,
                        e.rule
                    ));
                }
            }
        }
        // Every key this round's migration creates must be reported.
        for e in expected
            .iter()
            .filter(|e| (round == 1) != e.in_v2 && round < 3)
        {
            if !reported.contains_key(&e.key()) {
                problems.push(format!(
                    "tool JSON: no upgrade() entry with status fixed/ok for {}",
                    e.label()
                ));
            }
        }
    }

    /// `--fix-models`: every key of the models is reported (function "model") with the oracle's
    /// action, and none is left for a human.
    fn check_model_keys(&self, round: u8, json: &Value, problems: &mut Vec<String>) {
        let expected = self.expected(round);
        let mut seen = 0;
        for f in json["foreign_keys"].as_array().into_iter().flatten() {
            if f["function"] != "model" {
                continue;
            }
            seen += 1;
            let key = (
                f["table"].as_str().unwrap_or_default().to_string(),
                str_list(&f["columns"]),
            );
            let Some(e) = expected.iter().find(|e| e.key() == key) else {
                problems.push(format!(
                    "tool JSON: model key the oracle does not know: {f}"
                ));
                continue;
            };
            if !matches!(f["status"].as_str(), Some("fixed" | "ok")) {
                problems.push(format!("tool JSON: model key {} not fixed: {f}", e.label()));
            }
            if f["ondelete"].as_str() != Some(e.ondelete) {
                problems.push(format!(
                    "tool JSON: model key {}: ondelete {} (reason {}), oracle expects {}",
                    e.label(),
                    f["ondelete"],
                    f["reason"],
                    e.ondelete
                ));
            }
        }
        if seen != expected.len() {
            problems.push(format!(
                "tool JSON: {seen} model keys reported, the oracle has {}",
                expected.len()
            ));
        }
    }

    /// `alembic check` against the upgraded database: the models and the database agree.
    fn alembic_check(&self, problems: &mut Vec<String>) {
        match self.alembic(&["check"]) {
            Ok(out) => {
                let printed = format!("{}{}", out.stdout, out.stderr);
                if !printed.contains("No new upgrade operations detected.") {
                    problems.push(format!(
                        "alembic check did not print \"No new upgrade operations detected.\":\n{}",
                        out.report()
                    ));
                } else {
                    eprintln!(
                        "e2e: {}: alembic check: No new upgrade operations detected.",
                        self.style.name
                    );
                }
            }
            Err(e) => problems.push(format!("{e:#}")),
        }
    }

    fn round_result(&self, round: u8, problems: Vec<String>) -> Result<()> {
        if problems.is_empty() {
            return Ok(());
        }
        bail!(
            "round {round}: {} problem(s):\n  - {}\n{}",
            problems.len(),
            problems.join("\n  - "),
            self.migration_text()
        )
    }

    /// autogenerate, fix-migrations --write, upgrade head, compare the rules.
    fn round(&mut self, round: u8) -> Result<()> {
        let generated = self.autogenerate(&format!("r{round}"))?;
        let mut problems = Vec::new();
        let models_before = fs::read(self.dir().join("models.py"))?;
        if self.fix_models && round == 3 {
            // The models carry every rule now: autogenerate itself finds nothing to revert.
            let text = fs::read_to_string(&generated)?;
            for op in fk_operations(function_body(&text, "upgrade")) {
                problems.push(format!(
                    "round 3 autogenerate (before the tool ran) emitted a foreign key operation: {op}"
                ));
            }
        }
        let (out, json) = self.fix()?;
        self.check_tool(round, &out, json.as_ref(), &mut problems);
        if self.fix_models && round == 3 {
            if fs::read(self.dir().join("models.py"))? != models_before {
                problems.push("round 3: --fix-models changed models.py again".into());
            }
            if let Some(json) = &json
                && json["summary"]["changed"] != 0
            {
                problems.push(format!(
                    "round 3: the tool changed files: {}",
                    json["summary"]
                ));
            }
        }
        if round == 3 {
            let text = fs::read_to_string(self.migration.as_ref().unwrap())?;
            for op in fk_operations(function_body(&text, "upgrade")) {
                problems.push(format!(
                    "round 3 migration still has a foreign key operation in upgrade(): {op}"
                ));
            }
        }
        if let Err(e) = self.alembic(&["upgrade", "head"]) {
            problems.push(format!("{e:#}"));
            return self.round_result(round, problems);
        }
        self.check_db(round, &mut problems)?;
        if self.fix_models {
            self.alembic_check(&mut problems);
        }
        self.round_result(round, problems)
    }

    /// The whole scenario: three rounds, then `alembic downgrade base`.
    pub fn run_all(&mut self) -> Result<()> {
        self.round(1)?;
        let v2 = manifest_dir()
            .join("tests/fixtures/e2e")
            .join(self.style.name)
            .join("models_v2.py");
        if self.fix_models {
            // The user's edit (v1 -> v2) lands on the models as --fix-models left them.
            let original = manifest_dir()
                .join("examples")
                .join(self.style.name)
                .join("models.py");
            let current = self.dir().join("models.py");
            let merged = rebase_insertions(
                &fs::read_to_string(&original)?,
                &fs::read_to_string(&current)?,
                &fs::read_to_string(&v2)?,
            )
            .with_context(|| format!("applying {} to the fixed models", v2.display()))?;
            fs::write(&current, merged)?;
        } else {
            fs::copy(&v2, self.dir().join("models.py"))
                .with_context(|| format!("copying {}", v2.display()))?;
        }
        self.round(2)?;
        self.round(3)?;
        self.alembic(&["downgrade", "base"])?;
        let left = self.db_fks()?;
        if !left.is_empty() {
            bail!("after downgrade base, foreign keys are left: {left:?}");
        }
        Ok(())
    }
}

/// `edited` is `base` with lines inserted (a user's next edit); `fixed` is `base` with some lines
/// replaced (what the tool wrote). The result: `fixed` with the same insertions, the way the user
/// would have typed them into the fixed file.
pub fn rebase_insertions(base: &str, fixed: &str, edited: &str) -> Result<String> {
    use similar::{DiffOp, TextDiff};
    let base_lines: Vec<&str> = base.split_inclusive('\n').collect();
    let fixed_lines: Vec<&str> = fixed.split_inclusive('\n').collect();
    let edited_lines: Vec<&str> = edited.split_inclusive('\n').collect();
    // Which line of `edited` each line of `base` became.
    let mut to_edited: Vec<Option<usize>> = vec![None; base_lines.len()];
    for op in TextDiff::from_slices(&base_lines, &edited_lines).ops() {
        match *op {
            DiffOp::Equal {
                old_index,
                new_index,
                len,
            } => {
                for k in 0..len {
                    to_edited[old_index + k] = Some(new_index + k);
                }
            }
            DiffOp::Insert { .. } => {}
            _ => bail!("the v2 edit does more than insert lines: {op:?}"),
        }
    }
    // Replace, in `edited`, each base line the tool changed with the tool's lines.
    let mut replaced: BTreeMap<usize, (usize, Vec<&str>)> = BTreeMap::new();
    for op in TextDiff::from_slices(&base_lines, &fixed_lines).ops() {
        let (old, new) = match *op {
            DiffOp::Equal { .. } => continue,
            DiffOp::Replace {
                old_index,
                old_len,
                new_index,
                new_len,
            } => (
                old_index..old_index + old_len,
                new_index..new_index + new_len,
            ),
            other => bail!("the tool did more than replace lines: {other:?}"),
        };
        let start = to_edited[old.start].context("a fixed line was edited by v2")?;
        let end = to_edited[old.end - 1].context("a fixed line was edited by v2")?;
        if end - start + 1 != old.len() {
            bail!("v2 inserted lines inside a block the tool changed");
        }
        replaced.insert(start, (old.len(), fixed_lines[new].to_vec()));
    }
    let mut out = String::new();
    let mut i = 0;
    while i < edited_lines.len() {
        match replaced.get(&i) {
            Some((len, lines)) => {
                out.extend(lines.iter().copied());
                i += len;
            }
            None => {
                out.push_str(edited_lines[i]);
                i += 1;
            }
        }
    }
    Ok(out)
}

/// Runs one example against one database with `--fix-models`; panics with a full report.
pub fn run_scenario_fix_models(style: &'static Style, db: DbKind) {
    run_scenario_with(style, db, true)
}

/// Runs one example against one database; panics with a full report.
pub fn run_scenario(style: &'static Style, db: DbKind) {
    run_scenario_with(style, db, false)
}

fn run_scenario_with(style: &'static Style, db: DbKind, fix_models: bool) {
    if db == DbKind::Postgres && std::env::var_os("FIX_MIGRATIONS_E2E_SKIP_POSTGRES").is_some() {
        eprintln!(
            "skipping {} on PostgreSQL: FIX_MIGRATIONS_E2E_SKIP_POSTGRES is set",
            style.name
        );
        return;
    }
    let started = Instant::now();
    let result = Scenario::with_options(style, db, fix_models).and_then(|mut s| {
        let r = s.run_all();
        if r.is_err() && std::env::var_os("FIX_MIGRATIONS_E2E_KEEP").is_some() {
            let kept = s.project.keep();
            eprintln!("e2e: kept project directory {}", kept.display());
        }
        r
    });
    eprintln!(
        "e2e: {} on {db:?} took {:.1} s",
        style.name,
        started.elapsed().as_secs_f64()
    );
    if let Err(e) = result {
        panic!("e2e {} on {db:?} failed:\n{e:#}", style.name);
    }
}

// ---------------------------------------------------------------------------
// Reading migration text

/// The text of `def <name>(...)` up to the next top-level statement.
pub fn function_body<'a>(text: &'a str, name: &str) -> &'a str {
    let header = format!("def {name}(");
    let Some(start) = text.find(&header) else {
        return "";
    };
    let rest = &text[start..];
    let mut end = rest.len();
    let mut offset = 0;
    for (i, line) in rest.split_inclusive('\n').enumerate() {
        if i > 0 && !line.trim().is_empty() && !line.starts_with([' ', '\t', '#', ')']) {
            end = offset;
            break;
        }
        offset += line.len();
    }
    &rest[..end]
}

/// Foreign key operations in a piece of migration code: create_foreign_key
/// calls, ForeignKeyConstraint(...) and drop_constraint(..., type_="foreignkey").
pub fn fk_operations(code: &str) -> Vec<String> {
    let mut ops = Vec::new();
    for needle in [
        "create_foreign_key(",
        "ForeignKeyConstraint(",
        "drop_constraint(",
    ] {
        let mut from = 0;
        while let Some(pos) = code[from..].find(needle) {
            let start = from + pos;
            let call = call_text(&code[start..]);
            // Skip commented-out lines.
            let line_start = code[..start].rfind('\n').map_or(0, |i| i + 1);
            let commented = code[line_start..start].trim_start().starts_with('#');
            let is_fk = needle != "drop_constraint(" || call.to_lowercase().contains("foreignkey");
            if is_fk && !commented {
                ops.push(call.split_whitespace().collect::<Vec<_>>().join(" "));
            }
            from = start + needle.len();
        }
    }
    ops
}

/// From a call's name to its closing parenthesis (strings are not special-cased;
/// Alembic's output has no parentheses inside string literals here).
fn call_text(s: &str) -> &str {
    let mut depth = 0usize;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return &s[..=i];
                }
            }
            _ => {}
        }
    }
    s
}
