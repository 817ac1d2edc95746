//! SIGINT (Ctrl-C) and SIGTERM stop a run the same way: the first asks the running job to stop
//! (sources end their input, everything read is processed, the report is written with
//! `"status": "stopped_early"`); a second, or one while no job runs, exits at once. Either way
//! the command exits with 128 + the first signal's number: 130 for SIGINT, 143 for SIGTERM.

use std::sync::atomic::{AtomicI32, Ordering};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use super::current_job;

/// The first signal received; 0: none.
static RECEIVED: AtomicI32 = AtomicI32::new(0);

/// Handles SIGINT and SIGTERM on a thread of their own from now on.
pub(super) fn install() {
    let spawned = Signals::new([SIGINT, SIGTERM])
        .map_err(|e| e.to_string())
        .and_then(|mut signals| {
            std::thread::Builder::new()
                .name("weir-signals".into())
                .spawn(move || {
                    for signal in signals.forever() {
                        on_signal(signal);
                    }
                })
                .map_err(|e| e.to_string())
        });
    if let Err(e) = spawned {
        eprintln!("weir: Ctrl-C and SIGTERM will not stop jobs cleanly: {e}");
    }
}

fn on_signal(signal: i32) {
    let _ = RECEIVED.compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst);
    let current = current_job().lock().unwrap_or_else(|p| p.into_inner());
    match current.as_ref() {
        Some(control) if !control.stop_requested() => {
            let name = if signal == SIGTERM {
                "SIGTERM"
            } else {
                "Ctrl-C"
            };
            eprintln!("\nweir: {name}: stopping (Ctrl-C or SIGTERM again to exit now)");
            control.request_stop();
        }
        _ => std::process::exit(128 + signal),
    }
}

/// The exit status of a command a signal stopped: 128 + the first signal's number; `None`
/// when no signal came.
pub fn exit_status() -> Option<i32> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        signal => Some(128 + signal),
    }
}
