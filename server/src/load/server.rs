//! The load tool's own server: a fresh database (a SQLite file in a new
//! temporary folder, or a new PostgreSQL database), and `sqm serve` as a
//! child process, so that its CPU time and peak memory can be read from /proc.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::db::Db;
use crate::db::accounts::random_id;

/// A fresh database for one run.
#[derive(Debug)]
pub struct FreshDb {
    /// Its URL.
    pub url: String,
    /// The run's folder (the SQLite file, the signing key, the server's log).
    pub dir: PathBuf,
    /// The PostgreSQL database made for the run, and the URL it was made through.
    pg: Option<(String, String)>,
}

impl FreshDb {
    /// A new SQLite file in a fresh temporary folder, or, when `given` is a
    /// PostgreSQL URL, a new database on that server.
    pub async fn create(given: Option<&str>) -> Result<FreshDb> {
        let tag = format!("{}-{}", std::process::id(), &random_id()[..8]);
        let dir = std::env::temp_dir().join(format!("sqm-load-{tag}"));
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot make {}", dir.display()))?;
        let Some(admin_url) = given.filter(|u| u.starts_with("postgres")) else {
            return Ok(FreshDb {
                url: format!("sqlite://{}", dir.join("sqm.db").display()),
                dir,
                pg: None,
            });
        };
        let name = format!("sqm_load_{}", tag.replace('-', "_"));
        let admin = Db::connect(admin_url)
            .await
            .context("cannot reach the PostgreSQL server to make a fresh database")?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(admin.pool())
            .await
            .context("cannot make a fresh PostgreSQL database")?;
        admin.close().await;
        Ok(FreshDb {
            url: with_database(admin_url, &name)?,
            dir,
            pg: Some((name, admin_url.to_owned())),
        })
    }

    /// Drops the run's database and folder.
    pub async fn remove(self) {
        if let Some((name, admin_url)) = &self.pg
            && let Ok(admin) = Db::connect(admin_url).await
        {
            let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
            let _ = sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(admin.pool())
                .await;
            admin.close().await;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `url` with its database name replaced.
fn with_database(url: &str, name: &str) -> Result<String> {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").context("not a URL")? + 3;
    let path_at = base[scheme_end..].find('/').map(|i| scheme_end + i);
    let host = &base[..path_at.unwrap_or(base.len())];
    Ok(match query {
        Some(q) => format!("{host}/{name}?{q}"),
        None => format!("{host}/{name}"),
    })
}

/// `sqm serve` running as a child process.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    /// Its process id.
    pub pid: u32,
    /// Its base URL.
    pub base: String,
}

impl ServerProcess {
    /// Starts this executable as `serve --listen 127.0.0.1:0` on `db`, its
    /// documents going cold after `cool_after` seconds (and past
    /// `hot_documents` loaded, if given), its log in the run's folder, and
    /// reads its address from its first line.
    pub async fn start(
        db: &FreshDb,
        cool_after: u64,
        hot_documents: Option<u64>,
    ) -> Result<ServerProcess> {
        let exe = std::env::current_exe().context("cannot find the sqm executable")?;
        let log = std::fs::File::create(db.dir.join("server.log"))?;
        let mut child = Command::new(exe)
            .arg("--db")
            .arg(&db.url)
            .arg("--data-dir")
            .arg(&db.dir)
            .args(["serve", "--listen", "127.0.0.1:0", "--cool-after"])
            .arg(cool_after.to_string())
            .args(hot_documents.map(|n| format!("--hot-documents={n}")))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .context("cannot start the server")?;
        let pid = child.id().context("the server exited at once")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .context("the server did not start within 60 s")??;
        let Some(first) = first else {
            bail!(
                "the server exited before serving; see {}",
                db.dir.join("server.log").display()
            );
        };
        let base = first
            .split("serving at ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .map(str::to_owned)
            .with_context(|| format!("unexpected first line from the server: {first}"))?;
        // Keep reading, so that a later line never meets a closed pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(ServerProcess { child, pid, base })
    }

    /// Stops the server.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// CPU seconds (user + system) a process has used, from /proc.
pub fn cpu_seconds(pid: u32, ticks_per_s: f64) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of the file (utime, stime); `after` starts at field 3.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / ticks_per_s)
}

/// This process's CPU seconds.
pub fn own_cpu_seconds(ticks_per_s: f64) -> Option<f64> {
    cpu_seconds(std::process::id(), ticks_per_s)
}

/// Samples a process's resident memory until stopped; keeps the highest.
#[derive(Debug)]
pub struct RssSampler {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<f64>,
}

impl RssSampler {
    /// Starts sampling every 50 ms.
    pub fn start(pid: u32) -> RssSampler {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let mut peak: f64 = 0.0;
            while !flag.load(Ordering::Acquire) {
                if let Some(m) = rss_mib(pid) {
                    peak = peak.max(m);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            rss_mib(pid).map_or(peak, |m| peak.max(m))
        });
        RssSampler { stop, task }
    }

    /// Stops; the highest resident memory seen, in MiB.
    pub async fn stop(self) -> f64 {
        self.stop.store(true, std::sync::atomic::Ordering::Release);
        self.task.await.unwrap_or(0.0)
    }
}

/// A process's peak resident memory (VmHWM), in MiB.
pub fn peak_rss_mib(pid: u32) -> Option<f64> {
    memory_mib(pid, "VmHWM:")
}

/// A process's resident memory now (VmRSS), in MiB.
pub fn rss_mib(pid: u32) -> Option<f64> {
    memory_mib(pid, "VmRSS:")
}

fn memory_mib(pid: u32, key: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 if it cannot be asked).
pub fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_name_is_replaced() -> Result<()> {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "x")?,
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "y")?,
            "postgres://u:p@h/y?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h:1", "z")?, "postgres://h:1/z");
        Ok(())
    }

    #[test]
    fn this_process_has_used_some_cpu_and_memory() {
        let ticks = clock_ticks();
        assert!(own_cpu_seconds(ticks).is_some());
        assert!(peak_rss_mib(std::process::id()).is_some_and(|m| m > 0.0));
    }
}
