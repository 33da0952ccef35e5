//! Real PostgreSQL, Redis and nginx processes for the tier tests, from
//! Debian's packages, unprivileged, in temp folders, on loopback ports.
//!
//! Each service runs under a small `sh` watcher that holds a pipe from this
//! test process on its stdin: when the pipe closes — the service is stopped,
//! or the test process ends in any way, even by a panic or a kill — the
//! watcher stops the service (SIGINT: a fast, clean shutdown) and, for
//! services that own it, removes their temp folder. So no test leaves a
//! server behind, and the one PostgreSQL all tests of a run share (each test
//! gets its own database) goes when the run ends.
//!
//! Readiness is awaited (`pg_isready`, `PING`, a TCP connect), never slept.
//! As root (CI), PostgreSQL runs as the `postgres` user (initdb refuses
//! root) through `setpriv`; Redis and nginx run as the caller.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// Where Debian installs PostgreSQL 15's server programs.
pub const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
/// Debian's Redis server.
pub const REDIS_SERVER: &str = "/usr/bin/redis-server";
/// Debian's nginx.
pub const NGINX: &str = "/usr/sbin/nginx";

/// The watcher: starts "$@" in the background, waits for its stdin to close,
/// then stops the service and removes `$VCTTS_TEST_REMOVE` if set.
const WATCHER: &str = r#""$@" & c=$!
cat >/dev/null
kill -INT "$c" 2>/dev/null
wait "$c"
if [ -n "$VCTTS_TEST_REMOVE" ]; then rm -rf "$VCTTS_TEST_REMOVE"; fi"#;

/// A free loopback port (bound, then released for the service to take).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `ready` until it holds ([`crate::common::eventually_blocking`]);
/// after `deadline` the panic names `what` and shows the service's log.
pub fn await_ready(
    deadline: Duration,
    what: &str,
    log: &dyn Fn() -> String,
    mut ready: impl FnMut() -> bool,
) {
    crate::common::eventually_blocking(deadline, &format!("{what} to be ready"), || {
        if ready() {
            Ok(())
        } else {
            Err(format!("its log:\n{}", log()))
        }
    })
}

/// The uid and gid of `user`.
fn ids_of(user: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() > 3 && f[0] == user).then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))?
    })
}

fn is_root() -> bool {
    // The effective uid, without libc: /proc/self/status "Uid: r e s f".
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

/// The user PostgreSQL runs as when we are root.
fn pg_user() -> Option<(u32, u32)> {
    if !is_root() {
        return None;
    }
    Some(
        ids_of("postgres")
            .or_else(|| ids_of("nobody"))
            .expect("a postgres or nobody user"),
    )
}

/// A command, as `ids` when given.
fn command_as(ids: Option<(u32, u32)>, program: &str) -> Command {
    match ids {
        Some((uid, gid)) => {
            let mut c = Command::new("setpriv");
            c.args([
                &format!("--reuid={uid}"),
                &format!("--regid={gid}"),
                "--clear-groups",
                "--",
                program,
            ]);
            c
        }
        None => Command::new(program),
    }
}

/// One service process under its watcher.
pub struct Service {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    logs: Arc<Mutex<Vec<String>>>,
}

impl Service {
    fn spawn(name: &str, ids: Option<(u32, u32)>, argv: &[String], remove: Option<&Path>) -> Service {
        let mut cmd = command_as(ids, "sh");
        cmd.arg("-c").arg(WATCHER).arg("sh").args(argv);
        cmd.env(
            "VCTTS_TEST_REMOVE",
            remove.map(|p| p.as_os_str()).unwrap_or_default(),
        );
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("starting {name}: {e}"));
        let logs = Arc::new(Mutex::new(Vec::new()));
        for out in [
            child.stdout.take().map(|s| Box::new(s) as Box<dyn Read + Send>),
            child.stderr.take().map(|s| Box::new(s) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let l = logs.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    l.lock().unwrap().push(line);
                }
            });
        }
        Service {
            name: name.to_string(),
            stdin: child.stdin.take(),
            child,
            logs,
        }
    }

    /// What it logged.
    pub fn logs(&self) -> String {
        format!(
            "---- {} ----\n{}",
            self.name,
            self.logs.lock().unwrap().join("\n")
        )
    }

    /// Stops it (fast shutdown) and waits until it has exited.
    pub fn stop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
        self.stop();
    }
}

/// A PostgreSQL server of its own (initdb'd in a temp folder).
pub struct Postgres {
    /// Its port on 127.0.0.1.
    pub port: u16,
    service: Option<Service>,
    next_db: AtomicUsize,
    dir: PathBuf,
    ids: Option<(u32, u32)>,
    /// Whether dropping this value removes the folder (else the watcher does
    /// when the test process ends: the shared server is never dropped).
    owned: bool,
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if self.owned {
            self.stop();
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Postgres {
    /// initdb, start, await `pg_isready`.
    pub fn start() -> Postgres {
        Self::init(false)
    }

    /// A server of the caller's own, stoppable and restartable (its data
    /// kept across restarts, removed when it is dropped).
    pub fn start_owned() -> Postgres {
        Self::init(true)
    }

    fn init(owned: bool) -> Postgres {
        let ids = pg_user();
        let dir = tempfile::Builder::new()
            .prefix("vctts-pg-")
            .tempdir()
            .unwrap()
            .keep();
        if let Some((uid, gid)) = ids {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).unwrap();
        }
        let data = dir.join("data");
        let out = command_as(ids, &format!("{PG_BIN}/initdb"))
            .args([
                "-D",
                data.to_str().unwrap(),
                "-U",
                "vctts",
                "--auth=trust",
                "-E",
                "UTF8",
            ])
            .args(["--locale=C", "--no-sync", "--no-instructions"])
            .output()
            .expect("run initdb (apt-get install postgresql)");
        assert!(
            out.status.success(),
            "initdb failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let mut pg = Postgres {
            port: free_port(),
            service: None,
            next_db: AtomicUsize::new(0),
            dir,
            ids,
            owned,
        };
        pg.restart();
        pg
    }

    /// Stops it (fast shutdown: committed data is kept).
    pub fn stop(&mut self) {
        if let Some(mut s) = self.service.take() {
            s.stop();
        }
    }

    /// Starts it (again) on the same port and data; awaits `pg_isready`.
    pub fn restart(&mut self) {
        self.stop();
        let port = self.port;
        let argv: Vec<String> = [
            format!("{PG_BIN}/postgres"),
            "-D".into(),
            self.dir.join("data").to_string_lossy().into_owned(),
            "-h".into(),
            "127.0.0.1".into(),
            "-p".into(),
            port.to_string(),
            "-k".into(),
            self.dir.to_string_lossy().into_owned(),
        ]
        .into_iter()
        .chain(
            [
                "fsync=off",
                "synchronous_commit=off",
                "full_page_writes=off",
                "shared_buffers=16MB",
                "max_connections=200",
            ]
            .iter()
            .flat_map(|s| ["-c".to_string(), s.to_string()]),
        )
        .collect();
        let remove = (!self.owned).then_some(self.dir.as_path());
        let service = Service::spawn("postgres", self.ids, &argv, remove);
        await_ready(Duration::from_secs(60), "PostgreSQL", &|| service.logs(), || {
            Command::new(format!("{PG_BIN}/pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string(), "-U", "vctts"])
                .status()
                .map(|s| s.success())
                .unwrap_or(false)
        });
        self.service = Some(service);
    }

    /// The server every test of this run shares (started on first use,
    /// stopped when the run ends).
    pub fn shared() -> &'static Postgres {
        static PG: OnceLock<Postgres> = OnceLock::new();
        PG.get_or_init(Postgres::start)
    }

    /// A new, empty database; its URL.
    pub fn database(&self) -> String {
        let name = format!(
            "t{}_{}",
            std::process::id(),
            self.next_db.fetch_add(1, Ordering::Relaxed)
        );
        let out = Command::new(format!("{PG_BIN}/createdb"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "vctts",
                &name,
            ])
            .output()
            .expect("run createdb");
        assert!(
            out.status.success(),
            "createdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.url(&name)
    }

    /// The URL of database `name`.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://vctts@127.0.0.1:{}/{name}", self.port)
    }

    /// Its log.
    pub fn logs(&self) -> String {
        self.service.as_ref().map(|s| s.logs()).unwrap_or_default()
    }
}

/// A Redis server (no persistence), stoppable and restartable on its port.
pub struct Redis {
    /// Its port on 127.0.0.1.
    pub port: u16,
    service: Option<Service>,
}

impl Redis {
    /// Starts a Redis and awaits `PING`.
    pub fn start() -> Redis {
        let mut r = Redis {
            port: free_port(),
            service: None,
        };
        r.restart();
        r
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Stops it; its port refuses connections until [`Redis::restart`].
    pub fn stop(&mut self) {
        if let Some(mut s) = self.service.take() {
            s.stop();
        }
    }

    /// Starts it (again) on the same port, empty, and awaits `PING`.
    pub fn restart(&mut self) {
        self.stop();
        let argv: Vec<String> = [
            REDIS_SERVER,
            "--port",
            &self.port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let service = Service::spawn("redis", None, &argv, None);
        let port = self.port;
        await_ready(Duration::from_secs(30), "Redis", &|| service.logs(), || {
            ping(port)
        });
        self.service = Some(service);
    }
}

/// Whether a Redis on `port` answers `PING`.
pub fn ping(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 7];
    s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}

/// nginx with the shipped several-gateways config, on a port of its own.
pub struct Nginx {
    /// Its port on 127.0.0.1.
    pub port: u16,
    service: Service,
    _dir: tempfile::TempDir,
}

impl Nginx {
    /// Starts nginx in front of `upstreams` (`host:port` of each gateway)
    /// with `config/nginx-gateways.conf`, and awaits its port.
    pub fn start(repo: &Path, upstreams: &[&str]) -> Nginx {
        let dir = tempfile::Builder::new().prefix("vctts-nginx-").tempdir().unwrap();
        let port = free_port();
        let shipped = std::fs::read_to_string(repo.join("config/nginx-gateways.conf"))
            .expect("config/nginx-gateways.conf");
        let site = adapt_site(&shipped, upstreams, port, dir.path());
        std::fs::write(dir.path().join("site.conf"), site).unwrap();
        let main = format!(
            "daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n  access_log {d}/access.log;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
             fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
             include {d}/site.conf;\n}}\n",
            d = dir.path().display()
        );
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, main).unwrap();
        let mut argv = vec![
            NGINX.to_string(),
            "-p".into(),
            dir.path().to_string_lossy().into_owned(),
            "-c".into(),
            conf.to_string_lossy().into_owned(),
        ];
        if is_root() {
            // Workers would switch to "nobody"; stay as we are.
            argv.extend(["-g".into(), "user root;".into()]);
        }
        let service = Service::spawn("nginx", None, &argv, None);
        let err_log = dir.path().join("error.log");
        await_ready(
            Duration::from_secs(30),
            "nginx",
            &|| {
                format!(
                    "{}\n{}",
                    service.logs(),
                    std::fs::read_to_string(&err_log).unwrap_or_default()
                )
            },
            || TcpStream::connect(("127.0.0.1", port)).is_ok(),
        );
        Nginx {
            port,
            service,
            _dir: dir,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// The shipped site config with the test's gateway addresses, listen port
/// and log paths: the `server` lines of the upstream are replaced in order,
/// `listen 8080` becomes the test port, `/var/log/nginx` the temp folder.
pub fn adapt_site(shipped: &str, upstreams: &[&str], port: u16, dir: &Path) -> String {
    let mut next = upstreams.iter();
    let mut in_upstream = false;
    let mut out = String::new();
    for line in shipped.lines() {
        let t = line.trim_start();
        if t.starts_with("upstream ") {
            in_upstream = true;
        } else if in_upstream && t.starts_with('}') {
            in_upstream = false;
        }
        let line = if in_upstream && t.starts_with("server ") {
            let addr = next.next().expect("more upstream servers than gateways");
            let rest = t.split_whitespace().skip(2).collect::<Vec<_>>().join(" ");
            format!("    server {addr} {rest}")
        } else if t.starts_with("listen 8080") {
            format!("    listen 127.0.0.1:{port};")
        } else {
            line.replace("/var/log/nginx", &dir.to_string_lossy())
        };
        out.push_str(&line);
        out.push('\n');
    }
    assert!(next.next().is_none(), "fewer upstream servers than gateways");
    out
}

/// A path in the repository.
pub fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().join(rel)
}
