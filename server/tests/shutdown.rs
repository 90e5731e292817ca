//! `sqm serve` stops on SIGTERM only after answering the request in flight.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};
use common::{Backend, drop_database, fresh_database};

#[tokio::test]
async fn sigterm_finishes_the_request_in_flight_then_exits() -> Result<()> {
    let (url, dir, pg) = fresh_database(Backend::Sqlite).await?;
    let mut child = Command::new(env!("CARGO_BIN_EXE_sqm"))
        .args(["--db", &url, "--data-dir"])
        .arg(&dir)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("SQM_LOG", "warn")
        .env_remove("SQM_JWT_SECRET")
        .stdout(Stdio::piped())
        .spawn()?;
    let mut out = BufReader::new(child.stdout.take().context("no stdout")?);
    let mut line = String::new();
    out.read_line(&mut line)?;
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .with_context(|| format!("no address in {line:?}"))?
        .to_owned();
    assert!(
        dir.join("jwt.key").exists(),
        "the signing key is made on first serve"
    );

    // Half a request on the wire, then SIGTERM, then the rest.
    let body = r#"{"username":"k.iyer","password":"not the password"}"#;
    let mut conn = TcpStream::connect(&addr)?;
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        conn,
        "POST /api/v1/auth/login HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        body.len(),
        &body[..10]
    )?;
    conn.flush()?;
    std::thread::sleep(Duration::from_millis(200));
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()?;
    assert!(killed.success());
    std::thread::sleep(Duration::from_millis(200));
    conn.write_all(&body.as_bytes()[10..])?;
    let mut response = String::new();
    conn.read_to_string(&mut response)?;
    assert!(
        response.starts_with("HTTP/1.1 401"),
        "the request in flight was answered: {response:?}"
    );

    let status = child.wait()?;
    assert!(status.success(), "sqm serve exited with {status}");
    let mut rest = String::new();
    out.read_to_string(&mut rest)?;
    assert!(rest.contains("Stopped"), "{rest}");
    // New connections are refused once it has stopped.
    assert!(TcpStream::connect(&addr).is_err());
    drop_database(&dir, pg.as_deref()).await;
    Ok(())
}
