//! The `sqm` binary, on SQLite and PostgreSQL: `seed demo` twice is
//! idempotent; `verify` passes on a seeded database and fails, naming the
//! change, once a change's bytes are altered; `user` manages accounts.

mod common;

use std::process::{Command, Output};

use anyhow::{Context, Result};
use common::{Backend, drop_database, fresh_database};
use server::db::Db;

fn sqm(url: &str, dir: &std::path::Path, args: &[&str], password: Option<&str>) -> Result<Output> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sqm"));
    cmd.arg("--db")
        .arg(url)
        .arg("--data-dir")
        .arg(dir)
        .args(args);
    cmd.env_remove("DATABASE_URL").env("SQM_LOG", "warn");
    if let Some(p) = password {
        cmd.env("SQM_PASSWORD", p);
    }
    cmd.output().context("cannot run sqm")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

on_both! {
    async fn seeding_twice_changes_nothing_and_verify_catches_tampering(backend: Backend) -> Result<()> {
        let (url, dir, pg) = fresh_database(backend).await?;
        let first = sqm(&url, &dir, &["seed", "demo"], None)?;
        assert!(first.status.success(), "{first:?}");
        assert!(stdout(&first).contains("14 new accounts, 12 documents, 194 new changes"), "{}", stdout(&first));
        assert!(stdout(&first).contains("k.iyer"), "the logins are printed");
        let second = sqm(&url, &dir, &["seed", "demo"], None)?;
        assert!(stdout(&second).contains("0 new accounts, 12 documents, 0 new changes"), "{}", stdout(&second));
        let ok = sqm(&url, &dir, &["verify"], None)?;
        assert!(ok.status.success(), "{}", stdout(&ok));
        assert!(stdout(&ok).contains("Checked 12 documents, 194 changes and 194 receipts."), "{}", stdout(&ok));

        // Flip one byte inside the tenth change's operations.
        let db = Db::connect(&url).await?;
        let bytes: Vec<u8> = sqlx::query_scalar("SELECT bytes FROM changes WHERE seq = 10").fetch_one(db.pool()).await?;
        let mut bad = bytes.clone();
        let at = bad.len() - 3;
        bad[at] ^= 0x55;
        sqlx::query("UPDATE changes SET bytes = $1 WHERE seq = 10").bind(bad).execute(db.pool()).await?;
        db.close().await;
        let failed = sqm(&url, &dir, &["verify"], None)?;
        assert!(!failed.status.success(), "verify passed a tampered database");
        let out = stdout(&failed);
        assert!(out.contains("FAILED") && out.contains("change #10"), "{out}");
        drop_database(&dir, pg.as_deref()).await;
        Ok(())
    }
}

on_both! {
    async fn verify_catches_an_altered_receipt(backend: Backend) -> Result<()> {
        let (url, dir, pg) = fresh_database(backend).await?;
        assert!(sqm(&url, &dir, &["seed", "demo"], None)?.status.success());
        let db = Db::connect(&url).await?;
        sqlx::query("UPDATE receipts SET username = 'a.rao' WHERE seq = 3").execute(db.pool()).await?;
        db.close().await;
        let out = stdout(&sqm(&url, &dir, &["verify"], None)?);
        assert!(out.contains("receipt #3") && out.contains("altered"), "{out}");
        drop_database(&dir, pg.as_deref()).await;
        Ok(())
    }
}

on_both! {
    async fn user_commands_manage_accounts(backend: Backend) -> Result<()> {
        let (url, dir, pg) = fresh_database(backend).await?;
        assert!(sqm(&url, &dir, &["migrate"], None)?.status.success());
        let add = sqm(&url, &dir, &["user", "add", "r.kumar", "--name", "R. Kumar"], Some("a long password"))?;
        assert!(add.status.success(), "{add:?}");
        let again = sqm(&url, &dir, &["user", "add", "r.kumar", "--name", "R. Kumar"], Some("a long password"))?;
        assert!(!again.status.success());
        assert!(String::from_utf8_lossy(&again.stderr).contains("already an account"));
        let short = sqm(&url, &dir, &["user", "add", "x.y", "--name", "X"], Some("short"))?;
        assert!(!short.status.success(), "a short password is refused");
        assert!(sqm(&url, &dir, &["user", "disable", "r.kumar"], None)?.status.success());
        let list = stdout(&sqm(&url, &dir, &["user", "list"], None)?);
        assert!(list.contains("r.kumar") && list.contains("disabled"), "{list}");
        assert!(!list.contains("x.y"));
        let missing = sqm(&url, &dir, &["user", "passwd", "nobody"], Some("a long password"))?;
        assert!(!missing.status.success());
        drop_database(&dir, pg.as_deref()).await;
        Ok(())
    }
}
