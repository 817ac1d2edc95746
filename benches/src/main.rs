//! The `weir` command: see `weir --help`. Exits 0 when every run completed, 1 when one
//! failed, 130 (SIGINT) or 143 (SIGTERM) when a signal stopped it. Writing into a closed pipe
//! (`weir ... | head`) ends it by SIGPIPE, as other command-line tools.

use clap::Parser;

fn main() {
    // SAFETY: `signal` with `SIG_DFL` only changes the disposition of SIGPIPE; it runs first in
    // `main`, before any other thread exists. Rust starts programs with SIGPIPE ignored, so
    // printing into a closed pipe would panic instead.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = weir_bench::cli::Cli::parse();
    let status = match weir_bench::cli::run(cli) {
        Ok(()) => 0,
        Err(message) => {
            eprintln!("weir: {message}");
            1
        }
    };
    std::process::exit(weir_bench::cli::signals::exit_status().unwrap_or(status));
}
