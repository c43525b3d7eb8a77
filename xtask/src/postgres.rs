//! A throwaway PostgreSQL server for the tests and benches that need one: installed if it is
//! missing (Debian's `postgresql-15`), initialised in a temp directory, started on 127.0.0.1
//! and a free port as the `postgres` user, and stopped (its directory removed) when the
//! [`Server`] is dropped, also when a step failed.
//!
//! `SWARM_POSTGRES_URL` set in the environment means a server is given: none is started.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cmd::{self, Error};

/// The environment variable that points tests at a server.
pub(crate) const URL_VAR: &str = "SWARM_POSTGRES_URL";
/// Set by xtask for the tests it runs: a test that needs the server fails without one instead
/// of skipping.
pub(crate) const REQUIRED_VAR: &str = "SWARM_POSTGRES_REQUIRED";

/// A running server, or one given by the environment.
#[derive(Debug)]
pub(crate) struct Server {
    url: String,
    /// What was started here (none for a given server).
    owned: Option<Owned>,
}

#[derive(Debug)]
struct Owned {
    bin: PathBuf,
    dir: PathBuf,
    as_postgres: bool,
}

impl Server {
    /// The server to use: the one `SWARM_POSTGRES_URL` names, or a new throwaway one.
    pub(crate) fn start() -> cmd::Result<Self> {
        if let Ok(url) = std::env::var(URL_VAR) {
            eprintln!("xtask: PostgreSQL from {URL_VAR}");
            return Ok(Self { url, owned: None });
        }
        let bin = find_or_install()?;
        let as_postgres = is_root();
        let dir = std::env::temp_dir().join(format!("swarm-pg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::Failed(format!("cannot create {}: {e}", dir.display())))?;
        if as_postgres {
            run(Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir))?;
        }
        let port = free_port()?;
        let owned = Owned {
            bin,
            dir: dir.clone(),
            as_postgres,
        };
        let data = dir.join("data");
        let started = std::time::Instant::now();
        run(owned
            .pg("initdb")
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"])
            .arg("--locale=C.UTF-8"))?;
        // From here on, dropping the server stops it.
        let server = Self {
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            owned: Some(owned),
        };
        let owned = server.owned.as_ref().expect("just set");
        run(owned
            .pg("pg_ctl")
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(dir.join("log"))
            .args(["-w", "-o"])
            .arg(format!(
                "-c listen_addresses=127.0.0.1 -p {port} -k {} -c max_connections=200",
                dir.display()
            ))
            .arg("start"))?;
        eprintln!(
            "xtask: PostgreSQL started on 127.0.0.1:{port} in {:.1} s ({})",
            started.elapsed().as_secs_f64(),
            dir.display()
        );
        Ok(server)
    }

    /// Where the server listens.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// The environment a test run gets: the server's URL, and that it is required.
    pub(crate) fn env(&self) -> [(&str, &str); 2] {
        [(URL_VAR, self.url.as_str()), (REQUIRED_VAR, "1")]
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let Some(owned) = &self.owned else { return };
        let status = owned
            .pg("pg_ctl")
            .arg("-D")
            .arg(owned.dir.join("data"))
            .args(["-m", "fast", "-w", "stop"])
            .output();
        match status {
            Ok(out) if out.status.success() => eprintln!("xtask: PostgreSQL stopped"),
            Ok(out) => eprintln!(
                "xtask: pg_ctl stop failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            Err(e) => eprintln!("xtask: cannot run pg_ctl stop: {e}"),
        }
        let _ = std::fs::remove_dir_all(&owned.dir);
    }
}

impl Owned {
    /// The server program `name`, run as `postgres` when this process is root (initdb and
    /// pg_ctl refuse to run as root).
    fn pg(&self, name: &str) -> Command {
        let program = self.bin.join(name);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        }
    }
}

fn run(c: &mut Command) -> cmd::Result {
    let out = c
        .output()
        .map_err(|e| Error::Failed(format!("cannot run {:?}: {e}", c.get_program())))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::Failed(format!(
            "{:?} failed ({}): {}{}",
            c.get_program(),
            out.status,
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn free_port() -> cmd::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .map_err(|e| Error::Failed(format!("cannot find a free port: {e}")))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| Error::Failed(format!("cannot find a free port: {e}")))
}

/// The directory of the server binaries: PostgreSQL 15 (or the newest installed), installed
/// from Debian's packages if there is none.
fn find_or_install() -> cmd::Result<PathBuf> {
    if let Some(bin) = find() {
        return Ok(bin);
    }
    eprintln!("xtask: PostgreSQL is not installed; installing postgresql-15 with apt-get");
    let apt = |args: &[&str]| {
        run(Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive"))
    };
    if apt(&["install", "-y", "--no-install-recommends", "postgresql-15"]).is_err() {
        apt(&["update"])?;
        apt(&["install", "-y", "--no-install-recommends", "postgresql-15"])?;
    }
    find().ok_or_else(|| {
        Error::Failed(
            "postgresql-15 was installed but no initdb was found under /usr/lib/postgresql".into(),
        )
    })
}

fn find() -> Option<PathBuf> {
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions
        .iter()
        .find(|(v, _)| *v == 15)
        .or(versions.last())
        .map(|(_, b)| b.clone())
}
