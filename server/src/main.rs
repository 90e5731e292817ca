//! `sqm`: see [`server::cli`].

/// mimalloc instead of glibc's allocator for the server. The sync hub
/// replaces a whole document copy and frees many small buffers per batch;
/// with glibc, freeing took about a seventh of the hub's time. With `sqm
/// load` (README) the server's CPU per change is about a quarter lower. The
/// tests and benchmarks built on the library keep the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    server::cli::main()
}
