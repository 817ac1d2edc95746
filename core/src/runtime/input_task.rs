//! The loop of a subtask fed by an input gate: take the next envelope fairly, decode its
//! elements into the chain, combine watermarks in the valve, end when every channel ended.

use std::time::Instant;

use super::TaskBody;
use super::control::TaskEnv;
use super::ticker::Ticker;
use crate::codec::{Codec, DecodeError};
use crate::error::{JobError, TaskError};
use crate::net::element::{StreamElement, decode_elements};
use crate::net::{Envelope, Event, InputGate};
use crate::operator::Output;
use crate::time::{ValveOutput, WatermarkValve};

/// A subtask reading its input gate.
pub(crate) struct InputTask<T> {
    env: TaskEnv,
    gate: InputGate,
    valve: WatermarkValve,
    chain: Box<dyn Output<T>>,
    ticker: Ticker,
}

enum ElementError {
    Decode(DecodeError),
    Task(TaskError),
}

impl From<DecodeError> for ElementError {
    fn from(e: DecodeError) -> Self {
        Self::Decode(e)
    }
}

impl From<TaskError> for ElementError {
    fn from(e: TaskError) -> Self {
        Self::Task(e)
    }
}

impl<T: Codec> InputTask<T> {
    pub(crate) fn new(
        env: TaskEnv,
        gate: InputGate,
        chain: Box<dyn Output<T>>,
        ticker: Ticker,
    ) -> Self {
        let valve = WatermarkValve::new(gate.len());
        Self {
            env,
            gate,
            valve,
            chain,
            ticker,
        }
    }

    fn forward(&mut self, out: ValveOutput) -> Result<(), TaskError> {
        if let Some(status) = out.status {
            self.chain.status(status)?;
        }
        if let Some(watermark) = out.watermark {
            self.env.metrics().input_watermark.set(watermark.0);
            self.chain.watermark(watermark)?;
        }
        Ok(())
    }

    fn element(&mut self, channel: usize, element: StreamElement<T>) -> Result<(), TaskError> {
        match element {
            StreamElement::Record(record) => {
                self.env.metrics().records_in.add(1);
                self.chain.push(record)
            }
            StreamElement::Watermark(watermark) => {
                let out = self.valve.on_watermark(channel, watermark);
                self.forward(out)
            }
            StreamElement::Status(status) => {
                let out = self.valve.on_status(channel, status);
                self.forward(out)
            }
            StreamElement::LatencyMarker(marker) => self.chain.latency_marker(marker),
        }
    }

    fn tick(&mut self, now: Instant) -> Result<(), TaskError> {
        let due = self.ticker.due(now);
        if due.flush {
            self.chain.flush()?;
        }
        if due.sample {
            self.env.sample_pools(self.gate.usage_ppm());
        }
        Ok(())
    }
}

impl<T: Codec> TaskBody for InputTask<T> {
    fn run(mut self: Box<Self>) -> Result<(), TaskError> {
        while !self.gate.is_finished() {
            self.env.check_cancelled()?;
            match self.gate.poll() {
                Some((channel, Envelope::Buffer(buffer))) => {
                    let result = buffer.read(|bytes| {
                        decode_elements::<T, ElementError>(bytes, |e| {
                            self.element(channel, e).map_err(ElementError::from)
                        })
                    });
                    drop(buffer);
                    match result {
                        Ok(()) => {}
                        Err(ElementError::Task(e)) => return Err(e),
                        Err(ElementError::Decode(source)) => {
                            return Err(TaskError::Failed(JobError::Decode {
                                task: self.env.task_name().to_owned(),
                                subtask: self.env.subtask(),
                                source,
                            }));
                        }
                    }
                    self.tick(Instant::now())?;
                }
                Some((channel, Envelope::Event(Event::EndOfPartition))) => {
                    self.gate.finish(channel);
                    let out = self.valve.on_finished(channel);
                    self.forward(out)?;
                }
                Some((_, Envelope::Event(Event::Barrier(barrier)))) => {
                    return Err(TaskError::Failed(JobError::Invalid(format!(
                        "task '{}' received checkpoint barrier {} but checkpointing is not enabled",
                        self.env.task_name(),
                        barrier.checkpoint_id
                    ))));
                }
                None => {
                    if self.gate.has_abandoned() {
                        // An upstream task ended without end of partition: it failed, and the
                        // job is being cancelled.
                        return Err(TaskError::Cancelled);
                    }
                    let now = Instant::now();
                    self.tick(now)?;
                    let budget = self.ticker.sleep_budget(now);
                    let gate = &self.gate;
                    self.env.notifier().wait(|| gate.has_queued(), budget);
                    self.env
                        .metrics()
                        .idle_ns
                        .add(now.elapsed().as_nanos() as u64);
                }
            }
        }
        self.chain.end_of_input()
    }
}
