//! The traffic job's domain, shared by the weir job and its timely dataflow peer.
//!
//! Road cameras emit vehicle pass records, CSV with the columns `ts_ms,plate,checkpoint_id`.
//! The job parses them (every line ends as a record or a [`parse::Rejection`]), keys them
//! by plate, tags each with its [`record::Origin`] relative to a home city and a long-term
//! flag for non-local plates seen on 3 or more distinct UTC days, and counts by origin.
//!
//! - [`record`]: [`record::Plate`], [`record::TrafficRecord`], [`record::Home`],
//!   [`record::Origin`], and their codecs.
//! - [`parse`]: the bounded line reader, [`parse::LineParser`] and rejections.
//! - [`generator`]: the deterministic, partitioned, rush-hour generator.
//! - [`input`]: files or generator, read per partition with a resumable offset.
//! - [`tag`]: the long-term state, [`tag::Tagged`] and [`tag::OriginCounts`].
//! - [`windows`]: the window results, their codecs and the reference totals.
//! - [`json_line`]: output lines that write their own JSON.

pub mod generator;
pub mod input;
pub mod job;
pub mod json_line;
pub mod parse;
pub mod record;
pub mod tag;
pub mod windows;
