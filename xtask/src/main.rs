//! `cargo xtask <command>`: the one entry point that builds and checks the
//! whole workspace (`.ci/run` calls `cargo xtask test`).

mod bench;
mod cmd;
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
  bench [ARGS...]                      run the sync-core benchmarks (ARGS go to `cargo bench`)
  run                                  run the server (arrives with the server)
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
        "run" => {
            no_arguments(command, rest)?;
            bail!(
                "`cargo xtask run` arrives with the server (see README.md, \"Run\"); \
                 there is no server to run yet"
            )
        }
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

fn no_arguments(command: &str, rest: &[String]) -> Result<()> {
    if let Some(extra) = rest.first() {
        bail!("`cargo xtask {command}` takes no arguments, got `{extra}`");
    }
    Ok(())
}
