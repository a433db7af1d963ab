//! A private `PostgreSQL` cluster for tests that restart, restore or fail
//! over the database: they must never touch the shared server other tests
//! run on. A local copy of `nexus-tests`' `throwaway_pg` (this crate cannot
//! depend on that one), with a base backup and a promotion added.
//!
//! [`ThrowawayPostgres::start_new`] runs `initdb` into a fresh directory
//! under the system's temporary directory, picks a free loopback port and
//! starts the server with `pg_ctl`; dropping the value stops the server and
//! removes the directory. `initdb` refuses to run as root, so as root every
//! `PostgreSQL` program runs as the `postgres` user (`runuser -u postgres --`),
//! as `scripts/test` does.

use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// How the binaries are found and how to get them when they are missing.
const MISSING: &str = "PostgreSQL's binaries (initdb, pg_ctl) are not installed: \
                       install them (Debian: apt-get install postgresql) to run this test";

/// A running (or stopped) private `PostgreSQL` cluster; see the
/// [module docs](self).
#[derive(Debug)]
pub struct ThrowawayPostgres {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    as_postgres: bool,
    running: bool,
}

impl ThrowawayPostgres {
    /// Creates a cluster in a fresh directory and starts it.
    ///
    /// # Panics
    ///
    /// When the binaries are missing (with one line saying how to get them)
    /// or `initdb` or `pg_ctl` fail (with their output).
    pub fn start_new() -> Self {
        let mut cluster = Self::empty();
        let data = cluster.data_dir();
        run(cluster.command("initdb").arg("-D").arg(&data).args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "--no-sync",
        ]));
        cluster.start();
        cluster
    }

    /// A cluster directory without a data directory yet, on a free port.
    fn empty() -> Self {
        let bin = find_bin().unwrap_or_else(|| panic!("{MISSING}"));
        let dir = std::env::temp_dir().join(format!("nexus-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("create the cluster directory");
        let as_postgres = std::fs::metadata(&dir).expect("stat").uid() == 0;
        if as_postgres {
            run(Command::new("chown").args(["-R", "postgres"]).arg(&dir));
        }
        Self {
            bin,
            dir,
            port: free_port(),
            as_postgres,
            running: false,
        }
    }

    /// A base backup of this running server (`pg_basebackup`, with the WAL
    /// it needs), as a stopped cluster of its own directory and port: the
    /// same system identifier, the history up to now.
    ///
    /// # Panics
    ///
    /// When `pg_basebackup` fails.
    pub fn base_backup(&self) -> Self {
        let backup = Self::empty();
        let data = backup.data_dir();
        run(self.command("pg_basebackup").arg("-D").arg(&data).args([
            "-h",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-U",
            "postgres",
            "-X",
            "stream",
            "-c",
            "fast",
            "--no-sync",
        ]));
        backup
    }

    /// Starts this (stopped) copy as a standby that follows nobody: it
    /// replays the WAL it has and waits, read-only.
    pub fn start_standby(&mut self) {
        std::fs::write(self.data_dir().join("standby.signal"), b"").expect("standby.signal");
        if self.as_postgres {
            run(Command::new("chown")
                .args(["postgres"])
                .arg(self.data_dir().join("standby.signal")));
        }
        self.start();
    }

    /// Promotes the standby: it leaves recovery on a new timeline and
    /// accepts writes, as after a failover.
    pub fn promote(&self) {
        let data = self.data_dir();
        run(self
            .command("pg_ctl")
            .arg("-D")
            .arg(&data)
            .args(["-w", "-t", "60", "promote"]));
    }

    /// `pg_dump` of one schema of the `postgres` database, as SQL.
    pub fn pg_dump(&self, schema: &str) -> Vec<u8> {
        let port = self.port.to_string();
        run(self.command("pg_dump").args([
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-U",
            "postgres",
            "-n",
            schema,
            "postgres",
        ]))
        .stdout
    }

    /// Runs `sql` with `psql` on the `postgres` database, stopping at the
    /// first error.
    pub fn psql(&self, sql: &[u8]) {
        use std::io::Write;
        let port = self.port.to_string();
        let mut child = self
            .command("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "postgres",
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn psql");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(sql)
            .expect("write to psql");
        let output = child.wait_with_output().expect("psql");
        assert!(
            output.status.success(),
            "psql failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The loopback port the server listens on, the same across restarts.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The cluster's directory (data, socket and server log), removed on drop.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Starts the stopped server again on the same data directory and port,
    /// returning once it accepts connections.
    pub fn start(&mut self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off",
            self.port,
            self.dir.display()
        );
        let (data, log) = (self.data_dir(), self.dir.join("server.log"));
        run(self
            .command("pg_ctl")
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", "60", "-o", &options, "start"]));
        self.running = true;
    }

    /// Stops the server at once, as a crash would (`-m immediate`): open
    /// connections break, and the next start recovers from the WAL.
    pub fn stop(&mut self) {
        let data = self.data_dir();
        run(self.command("pg_ctl").arg("-D").arg(&data).args([
            "-w",
            "-t",
            "60",
            "-m",
            "immediate",
            "stop",
        ]));
        self.running = false;
    }

    /// A crash-restart: [`stop`](Self::stop) then [`start`](Self::start),
    /// same data directory and port.
    pub fn restart(&mut self) {
        self.stop();
        self.start();
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn command(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        }
    }
}

impl Drop for ThrowawayPostgres {
    fn drop(&mut self) {
        if self.running {
            let _ = self
                .command("pg_ctl")
                .arg("-D")
                .arg(self.data_dir())
                .args(["-w", "-m", "immediate", "stop"])
                .output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The directory holding `initdb`, `pg_ctl`, `pg_basebackup`, `pg_dump` and `psql`: on the `PATH`, else the
/// newest `/usr/lib/postgresql/*/bin`, else `/usr/local/pgsql/bin`.
fn find_bin() -> Option<PathBuf> {
    let has_both = |dir: &Path| {
        ["initdb", "pg_ctl", "pg_basebackup", "pg_dump", "psql"]
            .iter()
            .all(|tool| dir.join(tool).is_file())
    };
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>());
    let mut versioned: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .collect();
    versioned.sort_unstable_by_key(|(version, _)| std::cmp::Reverse(*version));
    on_path
        .chain(versioned.into_iter().map(|(_, dir)| dir))
        .chain([PathBuf::from("/usr/local/pgsql/bin")])
        .find(|dir| has_both(dir))
}

/// A loopback port nothing listens on right now.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

fn run(command: &mut Command) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("running {command:?}: {error}"));
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    output
}
