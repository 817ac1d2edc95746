//! What several benches build the same way: a record writer over one channel.

use std::sync::Arc;
use std::time::Duration;

use weir_core::codec::Codec;
use weir_core::net::pool::{
    DEFAULT_EXCLUSIVE_PER_CHANNEL, DEFAULT_FLOATING_PER_GATE, DEFAULT_SEGMENT_BYTES,
};
use weir_core::net::{
    ChannelReceiver, NetworkBufferPool, Partitioner, RecordWriter, TaskNotifier, channel,
};
use weir_core::runtime::{EVENT_SLOTS, JobControl, TaskEnv};

/// A writer named `task` over one channel (rebalance, the default pool quota, `buffer_timeout`),
/// its buffers owned by `writer_task`; with the channel's receiving end and the reader's
/// notifier (which the writer wakes when it sends).
pub fn one_channel_writer<T: Codec>(
    task: &str,
    writer_task: Arc<TaskNotifier>,
    buffer_timeout: Duration,
) -> (RecordWriter<T>, ChannelReceiver, Arc<TaskNotifier>) {
    let buffers = DEFAULT_EXCLUSIVE_PER_CHANNEL + DEFAULT_FLOATING_PER_GATE;
    let mut global = NetworkBufferPool::new(DEFAULT_SEGMENT_BYTES, buffers).expect("pool");
    let pool = global
        .local_pool(
            1,
            DEFAULT_EXCLUSIVE_PER_CHANNEL,
            DEFAULT_FLOATING_PER_GATE,
            Arc::clone(&writer_task),
        )
        .expect("local pool");
    let reader_task = Arc::new(TaskNotifier::new());
    let (tx, rx) = channel(
        buffers + EVENT_SLOTS,
        Arc::clone(&writer_task),
        Arc::clone(&reader_task),
    );
    let env = TaskEnv::new(
        task.to_owned(),
        0,
        writer_task,
        Arc::new(JobControl::new()),
        Some(pool.clone()),
    );
    let writer = RecordWriter::new(
        vec![tx],
        pool,
        0,
        Partitioner::Rebalance { next: 0 },
        env,
        buffer_timeout,
    );
    (writer, rx, reader_task)
}
