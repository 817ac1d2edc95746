//! Timeoutable barriers (Flink's aligned barriers with `aligned-checkpoint-timeout`, which
//! `PipelinedSubpartition` moves to the head of its queue once the timeout passed): an aligned
//! barrier a writer sent in band that is still queued when its checkpoint's start delay
//! passes the timeout overtakes the buffers ahead of it.
//!
//! An envelope already in an SPSC ring cannot move, so the writer sends a *priority copy*
//! that names the in-band original's sequence number: the receiver learns it overtook exactly
//! the envelopes ahead of the original (not those sent after it), and ignores whichever of
//! the two barriers arrives second. If the receiver takes the original while the copy is on
//! its way, the copy overtakes nothing (see `ChannelSender::try_send_priority_before`).
//!
//! O(channels) per check; no allocation after the barrier was sent.

use super::channel::{ChannelSender, CheckpointBarrier, Event};

/// An aligned barrier sent in band on every channel, that may still have to overtake.
#[derive(Debug)]
pub struct TimeoutableBarrier {
    barrier: CheckpointBarrier,
    deadline_ms: u64,
    /// Per channel: the sequence number of the in-band barrier while it may have to
    /// overtake; `None` once its copy was sent (or the original was received).
    queued: Vec<Option<u64>>,
}

impl TimeoutableBarrier {
    /// Remembers where `barrier` goes in band on each of `senders` (call right before sending
    /// it there), overtaking from `deadline_ms` (ms since the Unix epoch).
    pub fn before_send(
        barrier: CheckpointBarrier,
        deadline_ms: u64,
        senders: &[ChannelSender],
    ) -> Self {
        Self {
            barrier,
            deadline_ms,
            queued: senders.iter().map(|s| Some(s.sent())).collect(),
        }
    }

    /// At `now_ms`, past the deadline: every original still queued gets its priority copy
    /// (a full priority ring is tried again at the next check). Returns `true` when nothing
    /// is left to overtake.
    pub fn overtake_if_due(&mut self, now_ms: u64, senders: &mut [ChannelSender]) -> bool {
        if now_ms < self.deadline_ms {
            return false;
        }
        let mut copy = self.barrier;
        copy.unaligned = true;
        for (sender, queued) in senders.iter_mut().zip(&mut self.queued) {
            let Some(seq) = *queued else { continue };
            if !sender.may_be_queued(seq)
                || sender
                    .try_send_priority_before(Event::Barrier(copy), seq)
                    .is_ok()
            {
                *queued = None;
            }
        }
        self.queued.iter().all(Option::is_none)
    }
}
