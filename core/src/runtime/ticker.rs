//! A task's processing-time duties: the buffer timeout (Flink's output flusher), latency
//! markers, periodic watermarks (sources), and pool-usage samples. The task loop asks [`Ticker::due`] once per batch of work,
//! so the clock is read once per buffer, not once per record.

use std::time::{Duration, Instant};

/// How often pool usage is sampled.
pub(crate) const SAMPLE_EVERY: Duration = Duration::from_millis(10);

/// Which duties are due now.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Due {
    pub(crate) flush: bool,
    pub(crate) latency_marker: bool,
    pub(crate) watermark: bool,
    pub(crate) sample: bool,
}

/// Deadlines of one task.
#[derive(Debug)]
pub(crate) struct Ticker {
    buffer_timeout: Duration,
    /// Flush when the task runs out of work ([`Ticker::flush_when_idle`]).
    flush_on_idle: bool,
    next_flush: Instant,
    latency_interval: Option<Duration>,
    next_marker: Instant,
    watermark_interval: Option<Duration>,
    next_watermark: Instant,
    next_sample: Instant,
}

impl Ticker {
    pub(crate) fn new(buffer_timeout: Duration, latency_interval: Option<Duration>) -> Self {
        let now = Instant::now();
        Self {
            buffer_timeout,
            flush_on_idle: false,
            next_flush: now + buffer_timeout,
            latency_interval,
            next_marker: now + latency_interval.unwrap_or_default(),
            watermark_interval: None,
            next_watermark: now,
            next_sample: now + SAMPLE_EVERY,
        }
    }

    /// Sets whether the task flushes its partly filled buffers when it runs out of work
    /// (`RuntimeConfig::flush_on_idle`); off unless set.
    pub(crate) fn with_flush_on_idle(mut self, on: bool) -> Self {
        self.flush_on_idle = on;
        self
    }

    /// Whether a task about to wait for work (input, or its source's rate) flushes first.
    /// With a zero buffer timeout every record is sent at once already: nothing to flush.
    pub(crate) fn flush_when_idle(&self) -> bool {
        self.flush_on_idle && !self.buffer_timeout.is_zero()
    }

    /// Adds the duty of periodic watermarks (and idleness checks) every `interval`.
    pub(crate) fn with_watermarks(mut self, interval: Duration) -> Self {
        self.watermark_interval = Some(interval);
        self.next_watermark = Instant::now() + interval;
        self
    }

    /// The duties due at `now`; each one's deadline moves on.
    pub(crate) fn due(&mut self, now: Instant) -> Due {
        let mut due = Due::default();
        if !self.buffer_timeout.is_zero() && now >= self.next_flush {
            due.flush = true;
            self.next_flush = now + self.buffer_timeout;
        }
        if let Some(interval) = self.latency_interval
            && now >= self.next_marker
        {
            due.latency_marker = true;
            self.next_marker = now + interval;
        }
        if let Some(interval) = self.watermark_interval
            && now >= self.next_watermark
        {
            due.watermark = true;
            self.next_watermark = now + interval;
        }
        if now >= self.next_sample {
            due.sample = true;
            self.next_sample = now + SAMPLE_EVERY;
        }
        due
    }

    /// How long the task may sleep before its next duty.
    pub(crate) fn sleep_budget(&self, now: Instant) -> Duration {
        let mut next = self.next_sample;
        if !self.buffer_timeout.is_zero() {
            next = next.min(self.next_flush);
        }
        if self.latency_interval.is_some() {
            next = next.min(self.next_marker);
        }
        if self.watermark_interval.is_some() {
            next = next.min(self.next_watermark);
        }
        next.saturating_duration_since(now)
            .max(Duration::from_micros(50))
    }
}
