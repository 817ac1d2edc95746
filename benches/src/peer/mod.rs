//! Peer engines that run weir's reference jobs, so that weir is measured against them on the
//! same input and must produce the same answers.
//!
//! - [`timely_traffic`]: the traffic job on timely dataflow, tuned (the project's peer).
//! - [`plain_timely`]: the traffic job as a plain, untuned timely program (issue 9's
//!   reference).

pub mod plain_timely;
pub mod timely_traffic;
