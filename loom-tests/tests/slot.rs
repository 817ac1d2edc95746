//! Loom model of a task slot's park: several subtasks' notifiers on one thread.
//!
//! In a task slot (`runtime::slot`, `--threads per-slot`) every subtask registers its
//! [`TaskNotifier`] to the slot's one thread. A subtask that cannot go on announces its wait
//! ([`TaskNotifier::announce`]) and suspends; the slot resumes a waiting subtask only once its
//! notifier was woken ([`TaskNotifier::take_woken`]), and parks after a turn that resumed none;
//! a producer's notify marks the notifier woken and unparks the slot. The model runs those turns
//! by hand (the slot's coroutines do not run under loom): two subtasks, each reading one channel
//! fed by a producer thread of its own; a waiting one gets a turn only when woken, a turn takes
//! the input or announces again, and the slot thread parks (under loom without a timeout: a lost
//! wake-up is a deadlock) when no subtask had a turn.
//!
//! - `one_slot_thread_wakes_for_either_subtask`: both envelopes arrive and the slot ends; the
//!   slot never sleeps through a send to either subtask, nor skips a woken one.
#![cfg(weir_loom)]

use loom::sync::Arc;
use loom::thread;
use weir_core::net::{ChannelReceiver, Envelope, Event, TaskNotifier, channel};

/// One subtask of the slot: its input channel and notifier, whether it waits (announced, and
/// suspended), and whether its input came.
struct Subtask {
    input: ChannelReceiver,
    notifier: Arc<TaskNotifier>,
    waiting: bool,
    done: bool,
}

impl Subtask {
    /// The slot's look at the subtask: `true` if it had a turn (it was not waiting, or its
    /// notifier was woken). A turn withdraws an earlier wait, then takes the input or
    /// announces a wait again (which may find the input queued: then it goes on next turn).
    fn turn(&mut self) -> bool {
        if self.done || (self.waiting && !self.notifier.take_woken()) {
            return false;
        }
        self.notifier.withdraw();
        if let Some(envelope) = self.input.try_recv() {
            assert!(matches!(envelope, Envelope::Event(Event::EndOfPartition)));
            self.done = true;
            return true;
        }
        let input = &self.input;
        self.waiting = !self.notifier.announce(|| input.has_queued());
        true
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
                waiting: false,
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
                let mut turns = false;
                for subtask in &mut subtasks {
                    turns |= subtask.turn();
                }
                if !turns {
                    thread::park();
                }
            }
        });
        for producer in producers {
            producer.join().expect("producer");
        }
        slot.join().expect("slot");
    });
}
