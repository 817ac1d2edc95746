//! # weir-loom-tests
//!
//! [loom] models of weir-core's lock-free protocols. They compile the real weir-core code:
//! with `--cfg weir_loom`, weir-core's private `sync` shim swaps its atomics, cells, `Arc`,
//! mutex and parking for loom's, and loom runs every interleaving of the model's threads (up
//! to the preemption bound) and checks each `UnsafeCell` access against the happens-before
//! order.
//!
//! Run them (release mode, a separate target directory so the normal build cache stays):
//!
//! ```sh
//! RUSTFLAGS="--cfg weir_loom" LOOM_MAX_PREEMPTIONS=2 CARGO_TARGET_DIR=target/loom \
//!     cargo test -p weir-loom-tests --release
//! ```
//!
//! Without the cfg every test file compiles to nothing, so a plain `cargo test` passes.
//!
//! One model per protocol, capacity 1 or 2, two or three threads:
//!
//! | File | Model | Checks |
//! |---|---|---|
//! | `tests/pool.rs` | `take_and_return_across_threads` | a buffer dropped on another thread returns; `in_use()` ends at 0 |
//! | | `the_last_buffer_goes_to_exactly_one_taker` | two `try_take`s race for one free buffer: exactly one wins, and the buffer is free again after the winner drops it |
//! | | `bytes_cross_threads_through_a_channel` | bytes written into a buffer on one thread are read on another after the channel hand-off, with no cell access unordered; the reuse after the reader's drop is ordered too |
//! | `tests/backpressure.rs` | `a_returned_buffer_wakes_the_writer` | a writer waiting on an empty pool (`TaskNotifier::wait` around `try_take`) is woken by the reader's `Buffer::drop` |
//! | | `a_popped_slot_wakes_the_writer` | a writer waiting on a full ring (capacity 1, `wait(has_room)`) is woken by the reader's `try_recv`, and the reader by the writer's second send |
//! | `tests/slot.rs` | `one_slot_thread_wakes_for_either_subtask` | two subtasks of one task slot, each reading a channel of its own, register their notifiers to one thread that parks only after both announced their wait (`TaskNotifier::announce`): a send to either wakes it, both inputs arrive |
//! | `tests/end_of_partition.rs` | `raw_channel_ends_after_its_data` | data then `EndOfPartition` then a dropped sender: the downstream receives all in order, stops at end of partition, the pool ends empty |
//! | | `record_writer_finishes_after_its_records` | the same through the real `RecordWriter` (`emit`, `finish`) and `decode_elements`, with the writer waiting for a returned buffer |
//! | `tests/barrier_alignment.rs` | `aligned_barrier_blocks_the_early_channel` | two upstreams into one `InputGate` with an aligned `BarrierHandler` (A: barrier, buffer; B: buffer, barrier; then end of partition): `Aligned` exactly once, B's pre-barrier buffer before it, A's post-barrier buffer after it, all buffers processed, both pools empty, and no wait forever on a blocked channel |
//! | `tests/checkpoint_acks.rs` | `a_late_ack_of_an_aborted_checkpoint_counts_for_nothing` | the real `PendingCheckpoints` and `Signals`, reports on the shim's channel: checkpoint 1 times out while two subtasks acknowledge it, 2 is triggered; a late ack of 1 never completes 1 nor counts towards 2, 2 completes exactly once when both ack it, tasks never read a decreasing or an aborted completed id |
//!
//! Under loom a park has no timeout (see weir-core's `sync::thread::park_timeout`), so a
//! wake-up that can be lost makes loom report a deadlock: the backpressure and shutdown models
//! finishing is the check that `TaskNotifier`'s Dekker handshake never loses one.
//!
//! What the models do not see, and how they are written around it:
//! - **No fair scheduler.** A subtask that spins for a barrier, yielding, would let loom starve
//!   the coordinator forever (two spinners yield to each other); the checkpoint model's
//!   subtasks look a bounded number of times, as a task reads the trigger once per batch.
//! - **No clock.** A checkpoint's timeout is a program point: the coordinator calls the real
//!   `expire` with a zero timeout where its `recv_timeout` would have timed out.
//! - **The ring is not instrumented.** weir's channels are `rtrb` rings built on std atomics,
//!   which loom neither schedules around nor tracks. Loom therefore orders a buffer's bytes
//!   through the channel by the `SeqCst` fences of the `notify` calls in `try_send` and
//!   `try_recv` (loom orders all `SeqCst` fences totally), not by the ring's release/acquire.
//!   The cell check passes for that reason; rtrb's own ordering is covered by rtrb's tests.
//! - **A thread that owns a notifier is never joined from while it may be notified.** loom's
//!   `Thread::unpark` wakes a thread blocked in `JoinHandle::join` (where std would only leave
//!   a park token) and then trips loom's own assertion (`state.notified` in `rt/notify.rs`).
//!   So every thread that registers a notifier is spawned, and the model's main thread, which
//!   owns none, only sets up, joins and asserts.
//!
//! [loom]: https://docs.rs/loom/0.7
