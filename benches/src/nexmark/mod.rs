//! Nexmark on weir: the standard streaming benchmark's events from the `nexmark` crate's
//! generator, and queries q0, q1, q2, q5, q7 and q8 as defined by Flink's Nexmark (Beam's
//! for q1's integer conversion).
//!
//! - [`generator`]: the allocation-free generator of the crate's events;
//! - [`rng`]: the crate's per-event RNG, seeded without its stalls;
//! - [`source`]: the generator as a partitioned source, and its watermark strategy;
//! - [`model`]: compact events and result rows with their codecs;
//! - [`queries`]: the query jobs and the run;
//! - [`reference`]: the same queries computed directly over the generator's events (tests).

pub mod generator;
pub mod model;
pub mod queries;
pub mod reference;
pub mod rng;
pub mod source;

pub use model::{Auction, Bid, Event, Person, Row};
pub use queries::{
    Aggregation, NexmarkJob, NexmarkRun, Query, RowOutput, SourceRun, Watermarks, run, source_rate,
};
pub use source::{EventsConfig, EventsRead, Generator, NexmarkSource};
