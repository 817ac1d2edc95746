//! A progress bar on stderr for runs longer than a second; hidden when stderr is not a
//! terminal (indicatif draws nothing then).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Runs must last this long before a bar appears.
const SHOW_AFTER: Duration = Duration::from_secs(1);
/// How often the bar is redrawn.
const REFRESH: Duration = Duration::from_millis(100);

/// A progress bar fed by a counter, shown from a background thread.
#[derive(Debug)]
pub(super) struct Progress {
    done: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Progress {
    /// Shows `position()` out of `total` (a spinner when the total is unknown) once the run
    /// has lasted [`SHOW_AFTER`].
    pub(super) fn start(total: Option<u64>, position: impl Fn() -> u64 + Send + 'static) -> Self {
        let done = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&done);
        let thread = std::thread::spawn(move || {
            let started = Instant::now();
            while started.elapsed() < SHOW_AFTER {
                if flag.load(Ordering::Relaxed) {
                    return;
                }
                std::thread::park_timeout(REFRESH);
            }
            let bar = match total {
                Some(n) => ProgressBar::with_draw_target(Some(n), ProgressDrawTarget::stderr()),
                None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
            };
            let template = if total.is_some() {
                "{elapsed_precise} [{wide_bar}] {human_pos}/{human_len} records ({per_sec})"
            } else {
                "{elapsed_precise} {spinner} {human_pos} records ({per_sec})"
            };
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style);
            }
            while !flag.load(Ordering::Relaxed) {
                bar.set_position(position());
                std::thread::park_timeout(REFRESH);
            }
            bar.finish_and_clear();
        });
        Self {
            done,
            thread: Some(thread),
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            // Wake it from its wait between redraws: the run ends now, not at the next redraw
            // (a sleep here cost every run up to REFRESH of wall time).
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}
