//! The built-in generator's partitions as CSV files, for the tests that read files.

use std::fs;
use std::path::{Path, PathBuf};

use weir_bench::traffic::generator::{GeneratorConfig, PartitionGenerator};

/// Writes each partition of `config` as the CSV file `p{p}.csv` in `dir`, header included.
pub fn write_partitions(config: &GeneratorConfig, dir: &Path) -> Vec<PathBuf> {
    (0..config.partitions)
        .map(|p| {
            let mut generator = PartitionGenerator::new(config, p).unwrap();
            let mut text = Vec::new();
            let mut line = Vec::new();
            while generator.next_line(&mut line) {
                text.extend_from_slice(&line);
                text.push(b'\n');
            }
            let path = dir.join(format!("p{p}.csv"));
            fs::write(&path, text).unwrap();
            path
        })
        .collect()
}
