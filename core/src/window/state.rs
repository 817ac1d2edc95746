//! Window contents of one operator instance: one accumulator per (window, key) in a hash map
//! (one lookup per record and window), and two ordered indexes of windows: those waiting for
//! the watermark, and fired ones kept for allowed lateness. An operator has one assigner, so
//! its windows all have one size and start order is end order (also for the windows clamped
//! at the ends of `i64`: those at `i64::MIN` share a start and differ in end, those at
//! `i64::MAX` share an end). Firing and clean-up times come from [`arith`].

use std::collections::BTreeMap;
use std::hash::Hash;

use rustc_hash::FxHashMap;

use super::Window;
use crate::time::arith;

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
    /// Fired windows kept until [`arith::cleanup_time`], `end − 1 + lateness`, with their keys.
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
        arith::cleanup_time(window, self.lateness_ms) <= self.watermark
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
            if arith::cleanup_time(*entry.key(), lateness_ms) > watermark {
                break;
            }
            let (window, keys) = entry.remove_entry();
            for key in keys {
                self.accs.remove(&(window, key));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fire_at(state: &mut WindowState<(), u64>, watermark: i64) -> Vec<(Window, u64)> {
        let mut fired = Vec::new();
        state.advance(watermark, |window, _, acc| fired.push((window, *acc)));
        fired
    }

    #[test]
    fn windows_at_the_ends_of_i64_fire_and_are_freed_without_overflow() {
        let first = Window {
            start: i64::MIN,
            end: i64::MIN + 10,
        };
        let last = Window {
            start: i64::MAX - 10,
            end: i64::MAX,
        };
        let mut state = WindowState::<(), u64>::new(i64::MAX);
        for window in [last, first] {
            let placed = state.place(window, &(), || 0, |n| *n += 1);
            assert_eq!(placed, Placed::Pending);
        }
        assert_eq!(fire_at(&mut state, i64::MIN + 9), vec![(first, 1)]);
        assert_eq!(fire_at(&mut state, i64::MAX - 2), vec![]);
        assert_eq!(fire_at(&mut state, i64::MAX - 1), vec![(last, 1)]);
        // The first window's clean-up time is MIN + 9 + MAX = 8; the last one's saturates, so
        // it is kept until the end-of-input watermark.
        assert_eq!(state.place(first, &(), || 0, |n| *n += 1), Placed::Late);
        assert_eq!(state.place(last, &(), || 0, |n| *n += 1), Placed::Refire);
        assert_eq!(fire_at(&mut state, i64::MAX), vec![]);
        assert!(state.accs.is_empty(), "end of input frees every window");
        assert_eq!(state.place(last, &(), || 0, |n| *n += 1), Placed::Late);
    }
}
