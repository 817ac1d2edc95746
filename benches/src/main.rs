//! The `weir` command: see `weir --help`. Exits 0 when every run completed, 1 when one
//! failed, 130 (SIGINT) or 143 (SIGTERM) when a signal stopped it.

use clap::Parser;

fn main() {
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
