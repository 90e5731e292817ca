//! `cargo xtask <command>`: the one entry point that builds and checks the
//! whole workspace (`.ci/run` calls `cargo xtask test`).

mod bench;
mod cmd;
mod fuzz;
mod mutants;
mod postgres;
mod pwa;
mod steps;
mod wasm;
mod workspace;

use std::process::ExitCode;

use anyhow::{Result, bail};

use crate::workspace::Workspace;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  test                                 every check, in order, stopping at the first failure
  wasm [--target nodejs|web] [--out DIR]
                                       build sync-wasm for wasm32 and generate its JS glue
                                       (default: --target web --out <target dir>/wasm-web)
  bench [ARGS...]                      run the benchmarks of sync-core and the server (ARGS go to `cargo bench`)
  pwa                                  build the browser client into <target dir>/pwa-dist
  run [SQM SERVE ARGS...]              build the browser client, run the server on SQLite with
                                       the demo unit loaded, serving the client at /
  mutants [--iterate] [GROUP...]       mutation testing (cargo-mutants) of the validator, permissions,
                                       workflow, envelope, writer and hub acknowledgement (docs/testing.md);
                                       --iterate tries again only what earlier runs did not catch
  fuzz [--seconds N] [TARGET...]       run the cargo-fuzz targets of fuzz/ for N seconds each (default 60;
                                       nightly; installs cargo-fuzz if missing) and report what libFuzzer measured
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match dispatch(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xtask: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(args: &[String]) -> Result<()> {
    let Some((command, rest)) = args.split_first() else {
        eprint!("{USAGE}");
        bail!("no command given");
    };
    match command.as_str() {
        "test" => {
            no_arguments(command, rest)?;
            steps::test(&Workspace::new()?)
        }
        "wasm" => {
            let ws = Workspace::new()?;
            let options = wasm::Options::parse(&ws, rest)?;
            wasm::build(&ws, &options)
        }
        "bench" => bench::run(&Workspace::new()?, rest),
        "pwa" => {
            no_arguments(command, rest)?;
            pwa::build(&Workspace::new()?)
        }
        "run" => run(&Workspace::new()?, rest),
        "mutants" => mutants::run(&Workspace::new()?, rest),
        "fuzz" => fuzz::run(&Workspace::new()?, &fuzz::Options::parse(rest)?),
        "help" | "-h" | "--help" => {
            print!("{USAGE}");
            Ok(())
        }
        other => {
            eprint!("{USAGE}");
            bail!("unknown command `{other}`")
        }
    }
}

/// `sqm serve --demo`: the server on SQLite under ./data, the demo unit loaded,
/// its URL and logins printed.
fn run(ws: &Workspace, rest: &[String]) -> Result<()> {
    pwa::build(ws)?;
    let web = pwa::web_out(ws)?;
    let mut command = ws.cargo(&[
        "run",
        "--package",
        "server",
        "--bin",
        "sqm",
        "--",
        "serve",
        "--demo",
        "--web",
    ]);
    command.arg(&web);
    command.args(rest);
    cmd::run(&mut command)
}

fn no_arguments(command: &str, rest: &[String]) -> Result<()> {
    if let Some(extra) = rest.first() {
        bail!("`cargo xtask {command}` takes no arguments, got `{extra}`");
    }
    Ok(())
}
