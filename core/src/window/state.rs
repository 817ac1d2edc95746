//! Window contents of one operator instance: one accumulator per (window, key) in a hash map
//! (one lookup per record and window), and two ordered indexes of windows: those waiting for
//! the watermark, and fired ones kept for allowed lateness. An operator has one assigner, so
//! its windows all have one size and start order is end order.

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
    accs: FxHashMap<(Window, K), Acc>,
    /// Windows not fired yet, with their keys in first-seen order (the firing order).
    pending: BTreeMap<Window, Vec<K>>,
    /// Fired windows kept until `end − 1 + lateness`, with their keys.
    fired: BTreeMap<Window, Vec<K>>,
    watermark: i64,
    lateness_ms: i64,
}

impl<K: Hash + Eq + Clone, Acc> WindowState<K, Acc> {
    pub(crate) fn new(lateness_ms: i64) -> Self {
        Self {
            accs: FxHashMap::default(),
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
        let placed = if window.max_timestamp() <= self.watermark {
            Placed::Refire
        } else {
            Placed::Pending
        };
        match self.accs.get_mut(&(window, key.clone())) {
            Some(acc) => update(acc),
            None => {
                let mut acc = create();
                update(&mut acc);
                self.accs.insert((window, key.clone()), acc);
                let index = match placed {
                    Placed::Refire => &mut self.fired,
                    _ => &mut self.pending,
                };
                index.entry(window).or_default().push(key.clone());
            }
        }
        placed
    }

    /// The accumulator of (`window`, `key`).
    pub(crate) fn fired(&self, window: Window, key: &K) -> Option<&Acc> {
        self.accs.get(&(window, key.clone()))
    }

    /// Advances the watermark: fires every pending window whose end − 1 it reached (in window
    /// order, keys in first-seen order), keeps fired windows for lateness, frees those past it.
    pub(crate) fn advance(&mut self, watermark: i64, mut fire: impl FnMut(Window, &K, &Acc)) {
        debug_assert!(watermark >= self.watermark, "watermarks never go backwards");
        self.watermark = watermark;
        while let Some(entry) = self.pending.first_entry() {
            if entry.key().max_timestamp() > watermark {
                break;
            }
            let (window, keys) = entry.remove_entry();
            for key in &keys {
                if let Some(acc) = self.accs.get(&(window, key.clone())) {
                    fire(window, key, acc);
                }
            }
            if self.is_late(window) {
                for key in keys {
                    self.accs.remove(&(window, key));
                }
            } else {
                self.fired.entry(window).or_default().extend(keys);
            }
        }
        let (lateness_ms, watermark) = (self.lateness_ms, self.watermark);
        while let Some(entry) = self.fired.first_entry() {
            if entry.key().max_timestamp().saturating_add(lateness_ms) > watermark {
                break;
            }
            let (window, keys) = entry.remove_entry();
            for key in keys {
                self.accs.remove(&(window, key));
            }
        }
    }
}
