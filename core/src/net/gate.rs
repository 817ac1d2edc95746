//! The input gate (Flink's `InputGate`): a task's input channels, polled fairly.
//!
//! Fairness: polling resumes after the channel served last, so a busy channel cannot starve
//! the others. A channel leaves the rotation when its end of partition has been received.
//!
//! Blocking: during an aligned checkpoint the barrier handler blocks each channel that
//! delivered the barrier; a blocked channel is not polled (its data waits in its ring, which
//! is backpressure on its sender) until the handler unblocks it. Priority events (unaligned
//! barriers) are taken first, from any channel, blocked or not, and say which envelopes of
//! their channel they overtook (see [`Position`]).

use std::ops::Range;

use super::channel::{ChannelReceiver, Envelope};

/// Where a polled envelope stood in its channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    /// In order, with its sequence number.
    InOrder(u64),
    /// A priority event; `overtaken` are the sequence numbers of the envelopes sent before it
    /// on its channel and not yet polled (they come next, in order).
    Priority {
        /// The envelopes it overtook.
        overtaken: Range<u64>,
    },
}

/// The input channels of one task.
#[derive(Debug)]
pub struct InputGate {
    channels: Vec<ChannelReceiver>,
    finished: Vec<bool>,
    blocked: Vec<bool>,
    open: usize,
    next: usize,
}

impl InputGate {
    /// A gate over `channels`.
    pub fn new(channels: Vec<ChannelReceiver>) -> Self {
        let open = channels.len();
        Self {
            finished: vec![false; open],
            blocked: vec![false; open],
            channels,
            open,
            next: 0,
        }
    }

    /// Channels in the gate.
    pub fn len(&self) -> usize {
        self.channels.len()
    }

    /// Whether the gate has no channels at all.
    pub fn is_empty(&self) -> bool {
        self.channels.is_empty()
    }

    /// The next envelope of the next channel in turn that has one, with its channel index and
    /// position; priority events first.
    #[inline]
    pub fn poll(&mut self) -> Option<(usize, Envelope, Position)> {
        let n = self.channels.len();
        for ch in 0..n {
            if let Some((event, overtaken)) = self.channels[ch].try_recv_priority() {
                return Some((ch, Envelope::Event(event), Position::Priority { overtaken }));
            }
        }
        for i in 0..n {
            let ch = (self.next + i) % n;
            if self.finished[ch] || self.blocked[ch] {
                continue;
            }
            let seq = self.channels[ch].next_seq();
            if let Some(envelope) = self.channels[ch].try_recv() {
                self.next = (ch + 1) % n;
                return Some((ch, envelope, Position::InOrder(seq)));
            }
        }
        None
    }

    /// Visits the envelopes queued in `channel` now, in order, without polling them.
    pub fn for_each_queued(&mut self, channel: usize, visit: impl FnMut(u64, &Envelope)) {
        self.channels[channel].for_each_queued(visit);
    }

    /// The sequence number of the next envelope `channel` delivers in order.
    pub fn next_seq(&self, channel: usize) -> u64 {
        self.channels[channel].next_seq()
    }

    /// Marks `channel` as ended (its end of partition arrived).
    pub fn finish(&mut self, channel: usize) {
        if !std::mem::replace(&mut self.finished[channel], true) {
            self.open -= 1;
        }
    }

    /// Stops polling `channel` until [`Self::unblock_all`].
    pub fn block(&mut self, channel: usize) {
        self.blocked[channel] = true;
    }

    /// Polls every channel again.
    pub fn unblock_all(&mut self) {
        self.blocked.fill(false);
    }

    /// Whether every channel has ended.
    pub fn is_finished(&self) -> bool {
        self.open == 0
    }

    /// Whether [`Self::poll`] would return something: a priority event on any channel, or an
    /// envelope on an open channel that is not blocked.
    #[inline]
    pub fn has_queued(&self) -> bool {
        self.channels.iter().enumerate().any(|(ch, c)| {
            c.has_priority() || (!self.finished[ch] && !self.blocked[ch] && c.has_queued_in_order())
        })
    }

    /// Whether an open channel lost its sender without an end of partition (its task died).
    pub fn has_abandoned(&self) -> bool {
        self.channels
            .iter()
            .zip(&self.finished)
            .any(|(c, &done)| !done && c.is_abandoned() && !c.has_queued())
    }

    /// Share of the input rings in use, in parts per million (Flink's `inPoolUsage`).
    pub fn usage_ppm(&self) -> u64 {
        let capacity: usize = self.channels.iter().map(ChannelReceiver::capacity).sum();
        let queued: usize = self.channels.iter().map(ChannelReceiver::queued).sum();
        (queued as u64 * 1_000_000)
            .checked_div(capacity as u64)
            .unwrap_or(0)
    }
}
