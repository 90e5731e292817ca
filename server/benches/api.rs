//! API benchmark: login throughput, login time for an unknown user beside a
//! wrong password, and the p50/p99 of the reference-data call for the demo
//! unit grown to 500 users and 200 processes. A real server on port 0 over a
//! SQLite file, as `sqm serve` runs.
//!
//! Run: `cargo bench -p server --bench api`

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::json;
use server::auth::Auth;
use server::auth::password::hash_blocking;
use server::config::Config;
use server::db::Db;
use server::db::accounts::{self, Assignment, User};
use server::db::reference::{self, Process};
use server::http::{self, AppState};
use server::secret::Secret;
use sync_core::permissions::Role;

const USERS: usize = 500;
const PROCESSES: usize = 200;
const LOGINS: usize = 64;
const LOGIN_CONCURRENCY: usize = 8;
const TIMING_SAMPLES: usize = 40;
const REFERENCE_CALLS: usize = 300;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn grow_unit(db: &Db) -> Result<()> {
    let hash = hash_blocking(&Secret::from(server::seed::DEMO_PASSWORD.to_owned()))?;
    let mut tx = db.begin().await?;
    for i in 0..USERS - 14 {
        let username = format!("staff.{i:03}");
        let user = User {
            username: username.parse().map_err(|e| anyhow::anyhow!("{e}"))?,
            display_name: format!("Staff member {i}"),
            designation: "Inspector".into(),
            disabled_at: None,
        };
        accounts::insert_user(&mut tx, &user, &hash).await?;
        let role = [Role::Auditor, Role::ProcessOwner][i % 2];
        accounts::insert_assignment(
            &mut tx,
            &Assignment {
                id: format!("bench-{i}"),
                username: user.username.clone(),
                unit: "DEMO-I".parse().map_err(|e| anyhow::anyhow!("{e}"))?,
                role,
                valid_from: "2025-04-01".parse().map_err(|e| anyhow::anyhow!("{e}"))?,
                valid_until: None,
                office_order: "OO 99/2025".into(),
            },
            "bench",
        )
        .await?;
    }
    for i in 11..=PROCESSES {
        let p = Process {
            unit: "DEMO-I".into(),
            code: format!("P{i:03}"),
            clause: "3.2.1".into(),
            name: format!("Charter service {i}"),
            standard: "15 d".into(),
            owner: format!("staff.{:03}", (i * 2 + 1) % (USERS - 14)),
            deputy: None,
        };
        reference::upsert_process(&mut tx, &p).await?;
    }
    tx.commit().await?;
    Ok(())
}

async fn login(
    client: &reqwest::Client,
    base: &str,
    user: &str,
    password: &str,
) -> Result<(u16, Duration)> {
    let started = Instant::now();
    let res = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": user, "password": password}))
        .send()
        .await?;
    let status = res.status().as_u16();
    let _ = res.bytes().await?;
    Ok((status, started.elapsed()))
}

#[tokio::main]
async fn main() -> Result<()> {
    let dir = std::env::temp_dir().join(format!("sqm-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let db = Db::connect(&format!("sqlite://{}", dir.join("sqm.db").display())).await?;
    db.migrate().await?;
    server::seed::demo(&db).await?;
    grow_unit(&db).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let state = AppState::new(
        db.clone(),
        Auth::new(&Secret::new(vec![42; 32]))?,
        Config::new(listener.local_addr()?),
    );
    tokio::spawn(http::serve(listener, state, std::future::pending()));
    let client = reqwest::Client::new();
    let pw = server::seed::DEMO_PASSWORD;

    // Login throughput: LOGINS logins, LOGIN_CONCURRENCY at a time.
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..LOGIN_CONCURRENCY {
        let (client, base) = (client.clone(), base.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..LOGINS / LOGIN_CONCURRENCY {
                let user = format!("staff.{:03}", w * 50 + i);
                let (status, _) = login(&client, &base, &user, pw).await?;
                anyhow::ensure!(status == 200, "login of {user}: {status}");
            }
            Ok::<(), anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let throughput = LOGINS as f64 / started.elapsed().as_secs_f64();

    // An unknown user against a wrong password, interleaved (different accounts, to stay under the limit).
    let mut unknown = Vec::new();
    let mut wrong = Vec::new();
    for i in 0..TIMING_SAMPLES {
        unknown.push(
            login(&client, &base, &format!("ghost.{i:03}"), "wrong password")
                .await?
                .1,
        );
        wrong.push(
            login(
                &client,
                &base,
                &format!("staff.{:03}", 200 + i),
                "wrong password",
            )
            .await?
            .1,
        );
    }
    unknown.sort();
    wrong.sort();

    // Reference data: the nodal officer's bundle (the whole unit) and an auditor's.
    let mut figures = Vec::new();
    for who in ["a.rao", "k.iyer"] {
        let (status, _) = login(&client, &base, who, pw).await?;
        anyhow::ensure!(status == 200);
        let token = client
            .post(format!("{base}/api/v1/auth/login"))
            .json(&json!({"username": who, "password": pw}))
            .send()
            .await?
            .json::<serde_json::Value>()
            .await?["access_token"]
            .as_str()
            .context("no token")?
            .to_owned();
        let mut times = Vec::new();
        let mut size = 0;
        for _ in 0..REFERENCE_CALLS {
            let t = Instant::now();
            let res = client
                .get(format!("{base}/api/v1/reference"))
                .bearer_auth(&token)
                .send()
                .await?;
            anyhow::ensure!(res.status() == 200);
            size = res.bytes().await?.len();
            times.push(t.elapsed());
        }
        times.sort();
        figures.push((who, size, percentile(&times, 0.5), percentile(&times, 0.99)));
    }

    println!("API benchmark: SQLite, {USERS} users and {PROCESSES} processes in the demo unit");
    println!(
        "  login throughput         {throughput:8.1} logins/s ({LOGINS} logins, {LOGIN_CONCURRENCY} at a time)"
    );
    println!(
        "  login, unknown user      p50 {:6.1} ms   p99 {:6.1} ms",
        ms(percentile(&unknown, 0.5)),
        ms(percentile(&unknown, 0.99))
    );
    println!(
        "  login, wrong password    p50 {:6.1} ms   p99 {:6.1} ms   (ratio of p50s {:.2})",
        ms(percentile(&wrong, 0.5)),
        ms(percentile(&wrong, 0.99)),
        percentile(&unknown, 0.5).as_secs_f64() / percentile(&wrong, 0.5).as_secs_f64()
    );
    for (who, size, p50, p99) in figures {
        println!(
            "  GET /api/v1/reference    p50 {:6.1} ms   p99 {:6.1} ms   as {who} ({} KiB, {REFERENCE_CALLS} calls)",
            ms(p50),
            ms(p99),
            size / 1024
        );
    }
    println!("Reproduce: cargo bench -p server --bench api");
    db.close().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
