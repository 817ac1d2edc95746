//! The watermark of a task with several input channels (Flink's `StatusWatermarkValve`).
//!
//! Contract: the output watermark is the minimum over the channels that are active and
//! *aligned* (their watermark has reached the last output watermark), and it never goes
//! backwards. Idle channels are left out; a channel that becomes active again counts once it
//! has caught up, so it cannot pull the output back. When every channel is idle the output is
//! idle too. A finished channel (end of partition) no longer counts.

use super::{Watermark, WatermarkStatus};

#[derive(Debug, Clone, Copy)]
struct Channel {
    watermark: Watermark,
    idle: bool,
    finished: bool,
}

/// Combines per-channel watermarks and statuses into one monotone output.
#[derive(Debug, Clone)]
pub struct WatermarkValve {
    channels: Vec<Channel>,
    output: Watermark,
    output_idle: bool,
}

/// What the valve tells the task to send on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ValveOutput {
    /// A new output watermark, greater than every earlier one.
    pub watermark: Option<Watermark>,
    /// A change of the output status.
    pub status: Option<WatermarkStatus>,
}

impl WatermarkValve {
    /// A valve over `channels` input channels, all active at [`Watermark::MIN`].
    pub fn new(channels: usize) -> Self {
        Self {
            channels: vec![
                Channel {
                    watermark: Watermark::MIN,
                    idle: false,
                    finished: false,
                };
                channels
            ],
            output: Watermark::MIN,
            output_idle: false,
        }
    }

    /// The current output watermark.
    pub fn current(&self) -> Watermark {
        self.output
    }

    /// A watermark arrived on `channel`. A channel's watermarks never go backwards; an older one
    /// is ignored (and is a bug upstream, caught in debug builds).
    pub fn on_watermark(&mut self, channel: usize, watermark: Watermark) -> ValveOutput {
        let ch = &mut self.channels[channel];
        debug_assert!(
            watermark >= ch.watermark,
            "channel {channel} watermark went backwards: {:?} after {:?}",
            watermark,
            ch.watermark
        );
        let mut out = ValveOutput::default();
        if ch.idle {
            ch.idle = false;
            out.status = self.refresh_status();
        }
        let ch = &mut self.channels[channel];
        if watermark > ch.watermark {
            ch.watermark = watermark;
        }
        out.watermark = self.advance();
        out
    }

    /// `channel` became idle or active.
    pub fn on_status(&mut self, channel: usize, status: WatermarkStatus) -> ValveOutput {
        self.channels[channel].idle = status == WatermarkStatus::Idle;
        ValveOutput {
            status: self.refresh_status(),
            watermark: self.advance(),
        }
    }

    /// `channel` ended: it no longer holds the watermark back.
    pub fn on_finished(&mut self, channel: usize) -> ValveOutput {
        self.channels[channel].finished = true;
        ValveOutput {
            status: None,
            watermark: self.advance(),
        }
    }

    fn refresh_status(&mut self) -> Option<WatermarkStatus> {
        let all_idle = self.channels.iter().all(|c| c.idle || c.finished)
            && self.channels.iter().any(|c| c.idle);
        if all_idle == self.output_idle {
            return None;
        }
        self.output_idle = all_idle;
        Some(if all_idle {
            WatermarkStatus::Idle
        } else {
            WatermarkStatus::Active
        })
    }

    fn advance(&mut self) -> Option<Watermark> {
        let min = self
            .channels
            .iter()
            .filter(|c| !c.idle && !c.finished && c.watermark >= self.output)
            .map(|c| c.watermark)
            .min()?;
        if min > self.output {
            self.output = min;
            Some(min)
        } else {
            None
        }
    }
}

/// One input channel's watermark and whether it was idle, as a checkpoint keeps them.
pub type ChannelState = (Watermark, bool);

impl WatermarkValve {
    /// Every channel's state and the output, for the task's snapshot.
    pub fn state(&self) -> (Vec<ChannelState>, Watermark) {
        (
            self.channels
                .iter()
                .map(|c| (c.watermark, c.idle))
                .collect(),
            self.output,
        )
    }

    /// Restores the channels (when their number is unchanged; otherwise each channel starts
    /// at the lowest restored one) and the output, which then never goes below what it was.
    pub fn restore(&mut self, channels: &[ChannelState], output: Watermark) {
        let lowest = channels.iter().map(|c| c.0).min().unwrap_or(Watermark::MIN);
        let same = channels.len() == self.channels.len();
        for (i, ch) in self.channels.iter_mut().enumerate() {
            let (watermark, idle) = if same { channels[i] } else { (lowest, false) };
            ch.watermark = watermark;
            ch.idle = idle;
        }
        self.output = output;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_the_minimum_over_channels_and_never_goes_back() {
        let mut valve = WatermarkValve::new(2);
        assert_eq!(valve.on_watermark(0, Watermark(10)).watermark, None);
        assert_eq!(
            valve.on_watermark(1, Watermark(5)).watermark,
            Some(Watermark(5))
        );
        assert_eq!(
            valve.on_watermark(1, Watermark(20)).watermark,
            Some(Watermark(10))
        );
        assert_eq!(valve.on_watermark(1, Watermark(20)).watermark, None);
        assert_eq!(valve.current(), Watermark(10));
    }

    #[test]
    fn an_idle_channel_does_not_hold_the_watermark_back() {
        let mut valve = WatermarkValve::new(2);
        valve.on_watermark(0, Watermark(100));
        let out = valve.on_status(1, WatermarkStatus::Idle);
        assert_eq!(out.watermark, Some(Watermark(100)));
        assert_eq!(out.status, None, "channel 0 is still active");
        // Channel 1 comes back behind the output: it does not pull the output back.
        let out = valve.on_watermark(1, Watermark(50));
        assert_eq!(out.watermark, None);
        assert_eq!(valve.current(), Watermark(100));
        // Until it catches up it is not aligned, so channel 0 alone moves the output.
        assert_eq!(
            valve.on_watermark(0, Watermark(200)).watermark,
            Some(Watermark(200))
        );
        assert_eq!(valve.on_watermark(1, Watermark(150)).watermark, None);
        // Caught up: it counts again.
        assert_eq!(valve.on_watermark(1, Watermark(250)).watermark, None);
        assert_eq!(
            valve.on_watermark(0, Watermark(300)).watermark,
            Some(Watermark(250))
        );
    }

    #[test]
    fn all_channels_idle_makes_the_output_idle() {
        let mut valve = WatermarkValve::new(2);
        assert_eq!(valve.on_status(0, WatermarkStatus::Idle).status, None);
        assert_eq!(
            valve.on_status(1, WatermarkStatus::Idle).status,
            Some(WatermarkStatus::Idle)
        );
        assert_eq!(
            valve.on_watermark(0, Watermark(3)).status,
            Some(WatermarkStatus::Active)
        );
    }

    #[test]
    fn a_finished_channel_no_longer_counts() {
        let mut valve = WatermarkValve::new(2);
        valve.on_watermark(0, Watermark(7));
        assert_eq!(valve.on_finished(1).watermark, Some(Watermark(7)));
    }
}
