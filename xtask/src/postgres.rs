//! The PostgreSQL the tests use (127.0.0.1:5432, trust authentication): if it
//! does not answer, start the machine's cluster and wait for it.

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::cmd;
use crate::workspace::Workspace;

const ADDR: &str = "127.0.0.1:5432";

fn answers() -> bool {
    ADDR.parse::<SocketAddr>()
        .is_ok_and(|a| TcpStream::connect_timeout(&a, Duration::from_secs(1)).is_ok())
}

pub(crate) fn ensure(ws: &Workspace) -> Result<()> {
    if answers() {
        eprintln!("PostgreSQL answers on {ADDR}");
        return Ok(());
    }
    eprintln!("PostgreSQL does not answer on {ADDR}: starting the local cluster");
    cmd::run(ws.command("sh").args([
        "-c",
        "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    ]))?;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        if answers() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    bail!("PostgreSQL still does not answer on {ADDR} after 30 s")
}
