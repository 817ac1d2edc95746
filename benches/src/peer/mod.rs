//! Peer engines that run weir's reference jobs, so that weir is measured against them on the
//! same input and must produce the same answers.
//!
//! - [`timely_traffic`]: the traffic job on timely dataflow.

pub mod timely_traffic;
