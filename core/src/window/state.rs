//! Window contents of one operator instance: windows waiting for the watermark, and fired
//! windows kept for allowed lateness.

use std::collections::BTreeMap;
use std::hash::Hash;

use rustc_hash::FxHashMap;

use super::Window;

/// Where a record's contribution went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placed {
    /// Into a window that has not fired.
    Pending,
    /// Into a fired window still within lateness: it must fire again.
    Refire,
    /// Nowhere: the window is past allowed lateness.
    Late,
}

/// Accumulators by window and key.
#[derive(Debug)]
pub(crate) struct WindowState<K, Acc> {
    pending: BTreeMap<Window, FxHashMap<K, Acc>>,
    fired: BTreeMap<Window, FxHashMap<K, Acc>>,
    watermark: i64,
    lateness_ms: i64,
}

impl<K: Hash + Eq + Clone, Acc> WindowState<K, Acc> {
    pub(crate) fn new(lateness_ms: i64) -> Self {
        Self {
            pending: BTreeMap::new(),
            fired: BTreeMap::new(),
            watermark: i64::MIN,
            lateness_ms,
        }
    }

    /// The current input watermark.
    pub(crate) fn watermark(&self) -> i64 {
        self.watermark
    }

    /// Whether `window` is past allowed lateness.
    #[inline]
    pub(crate) fn is_late(&self, window: Window) -> bool {
        window.max_timestamp().saturating_add(self.lateness_ms) <= self.watermark
    }

    /// Updates the accumulator of (`window`, `key`), creating it with `create`.
    #[inline]
    pub(crate) fn place(
        &mut self,
        window: Window,
        key: &K,
        create: impl FnOnce() -> Acc,
        update: impl FnOnce(&mut Acc),
    ) -> Placed {
        if self.is_late(window) {
            return Placed::Late;
        }
        let (map, placed) = if window.max_timestamp() <= self.watermark {
            (self.fired.entry(window).or_default(), Placed::Refire)
        } else {
            (self.pending.entry(window).or_default(), Placed::Pending)
        };
        match map.get_mut(key) {
            Some(acc) => update(acc),
            None => {
                let mut acc = create();
                update(&mut acc);
                map.insert(key.clone(), acc);
            }
        }
        placed
    }

    /// The accumulator of a fired window (for a re-fire).
    pub(crate) fn fired(&self, window: Window, key: &K) -> Option<&Acc> {
        self.fired.get(&window).and_then(|m| m.get(key))
    }

    /// Advances the watermark: fires every pending window whose end − 1 it reached (in window
    /// order), keeps fired windows for lateness, frees those past it.
    pub(crate) fn advance(&mut self, watermark: i64, mut fire: impl FnMut(Window, &K, &Acc)) {
        debug_assert!(watermark >= self.watermark, "watermarks never go backwards");
        self.watermark = watermark;
        while let Some(entry) = self.pending.first_entry() {
            if entry.key().max_timestamp() > watermark {
                break;
            }
            let (window, contents) = entry.remove_entry();
            for (key, acc) in &contents {
                fire(window, key, acc);
            }
            if !self.is_late(window) {
                self.fired.insert(window, contents);
            }
        }
        let (lateness_ms, watermark) = (self.lateness_ms, self.watermark);
        while let Some(entry) = self.fired.first_entry() {
            if entry.key().max_timestamp().saturating_add(lateness_ms) > watermark {
                break;
            }
            entry.remove();
        }
    }
}
