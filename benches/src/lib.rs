//! weir-bench: the `weir` command's library: the command line, the reference jobs, the peer
//! engines they are measured against, and the reports they write.

pub mod acking;
pub mod cli;
pub mod nexmark;
pub mod output_dir;
pub mod peer;
pub mod report;
pub mod traffic;
