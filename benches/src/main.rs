//! The `weir` command: see `weir --help`.

use clap::Parser;

fn main() {
    let cli = weir_bench::cli::Cli::parse();
    if let Err(message) = weir_bench::cli::run(cli) {
        eprintln!("weir: {message}");
        std::process::exit(1);
    }
}
