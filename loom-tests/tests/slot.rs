//! Loom model of a task slot's park: several subtasks' notifiers on one thread.
//!
//! In a task slot (`runtime::slot`, `--threads per-slot`) every subtask registers its
//! [`TaskNotifier`] to the slot's one thread. A subtask that cannot go on announces its wait
//! ([`TaskNotifier::announce`]) and suspends; the slot parks only after a turn in which every
//! unfinished subtask announced, and any producer's notify unparks it. The model runs that turn
//! by hand (the slot's coroutines do not run under loom): two subtasks, each reading one channel
//! fed by a producer thread of its own, take their input or announce, then the slot thread parks
//! (under loom without a timeout: a lost wake-up is a deadlock) and withdraws both flags.
//!
//! - `one_slot_thread_wakes_for_either_subtask`: both envelopes arrive and the slot ends; the
//!   slot never sleeps through a send to the subtask that is not the last to announce.
#![cfg(weir_loom)]

use loom::sync::Arc;
use loom::thread;
use weir_core::net::{ChannelReceiver, Envelope, Event, TaskNotifier, channel};

/// One subtask of the slot: its input channel and notifier, and whether its input came.
struct Subtask {
    input: ChannelReceiver,
    notifier: Arc<TaskNotifier>,
    done: bool,
}

impl Subtask {
    /// One turn: take the input, or announce the wait. `true`: the subtask made progress (or
    /// its input is queued now), so the slot must not park.
    fn turn(&mut self) -> bool {
        if self.done {
            return false;
        }
        if let Some(envelope) = self.input.try_recv() {
            assert!(matches!(envelope, Envelope::Event(Event::EndOfPartition)));
            self.done = true;
            return true;
        }
        let input = &self.input;
        self.notifier.announce(|| input.has_queued())
    }
}

#[test]
fn one_slot_thread_wakes_for_either_subtask() {
    loom::model(|| {
        let mut subtasks = Vec::new();
        let mut producers = Vec::new();
        for _ in 0..2 {
            let (producer_task, notifier) =
                (Arc::new(TaskNotifier::new()), Arc::new(TaskNotifier::new()));
            let (mut tx, input) = channel(1, Arc::clone(&producer_task), Arc::clone(&notifier));
            subtasks.push(Subtask {
                input,
                notifier,
                done: false,
            });
            producers.push(thread::spawn(move || {
                producer_task.register_current();
                tx.try_send(Envelope::Event(Event::EndOfPartition))
                    .expect("an empty ring has room");
            }));
        }
        let slot = thread::spawn(move || {
            for subtask in &subtasks {
                subtask.notifier.register_current();
            }
            while !subtasks.iter().all(|s| s.done) {
                let mut progressed = false;
                for subtask in &mut subtasks {
                    progressed |= subtask.turn();
                }
                if !progressed {
                    thread::park();
                }
                for subtask in &subtasks {
                    subtask.notifier.withdraw();
                }
            }
        });
        for producer in producers {
            producer.join().expect("producer");
        }
        slot.join().expect("slot");
    });
}
