//! Snapshots and restores across the state types: round trips, rescaling, damaged blobs,
//! copy-on-write against a model, and a two-thread stress test.

use std::collections::BTreeMap;
use std::sync::mpsc;

use proptest::prelude::*;

use super::format::write_section;
use super::table::GroupMap;
use super::*;
use crate::keyed::KeyGroups;

fn contents<K: StateKey + Ord, V: StateValue>(table: &KeyedTable<K, V>) -> BTreeMap<K, V> {
    let mut out = BTreeMap::new();
    table.for_each(|k, v| {
        assert!(out.insert(k.clone(), v.clone()).is_none());
    });
    out
}

/// Restores blobs of `key_groups` into a fresh table named `name` owning every group.
fn restored(
    name: &str,
    key_groups: std::ops::Range<usize>,
    blobs: Vec<Vec<u8>>,
) -> KeyedTable<u64, u64> {
    let mut table = KeyedTable::new(name, &KeyGroups::new(128, 1).unwrap(), 0);
    let mut restore = KeyedRestore::new();
    restore.add(key_groups, blobs).unwrap();
    restore.restore(&mut table).unwrap();
    restore.finish().unwrap();
    table
}

use crate::checkpoint::inject::SplitMix;

#[test]
fn every_state_type_round_trips_through_one_operator_snapshot_in_both_modes() {
    let layout = KeyGroups::new(128, 1).unwrap();
    let mut values = ValueState::<String, u64>::new("values", &layout, 0);
    let mut maps = MapState::<u64, String, i64>::new("maps", &layout, 0);
    let mut lists = ListState::<u64, String>::new("lists", &layout, 0);
    let mut sums = ReducingState::new("sums", &layout, 0, |a: &mut u64, v| *a += v);
    for i in 0..500u64 {
        values.insert(format!("k{i}"), i);
        maps.put(&(i % 17), format!("u{i}"), -(i as i64));
        lists.add(&(i % 23), format!("e{i}"));
        sums.add(&(i % 29), i);
    }
    let snapshot_of = |mode| {
        let mut s = KeyedSnapshot::new(0..128, mode);
        s.add(&values).add(&maps).add(&lists).add(&sums);
        s.into_blobs()
    };
    let blobs = snapshot_of(SnapshotMode::Async);
    assert_eq!(
        blobs,
        snapshot_of(SnapshotMode::Sync),
        "both modes write the same bytes"
    );

    let mut values2 = ValueState::<String, u64>::new("values", &layout, 0);
    let mut maps2 = MapState::<u64, String, i64>::new("maps", &layout, 0);
    let mut lists2 = ListState::<u64, String>::new("lists", &layout, 0);
    let mut sums2 = ReducingState::new("sums", &layout, 0, |a: &mut u64, v| *a += v);
    let mut restore = KeyedRestore::new();
    restore.add(0..128, blobs).unwrap();
    assert_eq!(restore.restore(&mut values2), Ok(500));
    assert_eq!(restore.restore(&mut maps2), Ok(17));
    assert_eq!(restore.restore(&mut lists2), Ok(23));
    assert_eq!(restore.restore(&mut sums2), Ok(29));
    restore.finish().unwrap();

    assert_eq!(contents(&values2), contents(&values));
    assert_eq!(contents(maps2.table()), contents(maps.table()));
    assert_eq!(contents(lists2.table()), contents(lists.table()));
    assert_eq!(contents(sums2.table()), contents(sums.table()));
    assert_eq!(lists2.get(&3), lists.get(&3));
    sums2.add(&0, 1);
    assert_eq!(sums2.get(&0), sums.get(&0).map(|s| s + 1));
}

#[test]
fn a_restore_at_another_parallelism_puts_every_key_in_its_owner() {
    let keys = 20_000u64;
    let old = KeyGroups::new(128, 2).unwrap();
    let mut tables: Vec<KeyedTable<u64, u64>> =
        (0..2).map(|s| KeyedTable::new("t", &old, s)).collect();
    for k in 0..keys {
        let owner = old.subtask_of_group(old.group_of(&k));
        tables[owner].insert(k, k * 3);
    }
    assert_eq!(tables[0].key_groups(), 0..64);
    // What each old subtask wrote: its groups and one blob per group.
    let snapshots: Vec<(std::ops::Range<usize>, Vec<Vec<u8>>)> = tables
        .iter()
        .map(|t| {
            let mut s = KeyedSnapshot::new(t.key_groups(), SnapshotMode::Async);
            s.add(t);
            (t.key_groups(), s.into_blobs())
        })
        .collect();

    let new = KeyGroups::new(128, 3).unwrap();
    let mut seen = BTreeMap::new();
    for subtask in 0..3 {
        let mut table = KeyedTable::<u64, u64>::new("t", &new, subtask);
        let mine = table.key_groups();
        let mut restore = KeyedRestore::new();
        // A ranged read: from each old subtask, only the groups this one owns.
        for (range, blobs) in &snapshots {
            let from = mine.start.max(range.start);
            let to = mine.end.min(range.end);
            if from < to {
                let part = blobs[from - range.start..to - range.start].to_vec();
                restore.add(from..to, part).unwrap();
            }
        }
        restore.restore(&mut table).unwrap();
        restore.finish().unwrap();
        table.for_each(|k, v| {
            assert_eq!(new.subtask_of_group(new.group_of(k)), subtask);
            assert!(seen.insert(*k, *v).is_none(), "key {k} restored twice");
        });
    }
    let expected: BTreeMap<u64, u64> = (0..keys).map(|k| (k, k * 3)).collect();
    assert_eq!(seen, expected);
}

/// A group's blob holding `map` under `name`.
fn blob_of(name: &str, map: &GroupMap<u64, u64>) -> Vec<u8> {
    let mut blob = Vec::new();
    write_section(&mut blob, name, map);
    blob
}

#[test]
fn a_key_stored_in_the_wrong_key_group_is_refused() {
    let layout = KeyGroups::new(128, 1).unwrap();
    let stray = (0..).find(|k: &u64| layout.group_of(k) != 5).unwrap();
    let mut map = GroupMap::default();
    map.insert(stray, 1);
    let mut restore = KeyedRestore::new();
    let mut blobs = vec![Vec::new(); 128];
    blobs[5] = blob_of("t", &map);
    restore.add(0..128, blobs).unwrap();
    let mut table = KeyedTable::<u64, u64>::new("t", &layout, 0);
    match restore.restore(&mut table) {
        Err(StateError::Corrupt {
            name,
            group: Some(5),
            reason,
        }) => {
            assert_eq!(name, "t");
            assert!(reason.contains("has a key of key group"), "{reason}");
        }
        other => panic!("expected a corrupt entry, got {other:?}"),
    }
}

#[test]
fn a_key_twice_is_refused_and_leaves_the_state_empty() {
    let layout = KeyGroups::new(128, 1).unwrap();
    let in_group = |g: usize| (0..).find(|k: &u64| layout.group_of(k) == g).unwrap();
    let mut blobs = vec![Vec::new(); 128];
    // Group 3 restores fine before group 9 fails: the error must not leave group 3's entry.
    let mut map = GroupMap::default();
    map.insert(in_group(3), 1);
    blobs[3] = blob_of("t", &map);
    // Group 9's section announces two entries, both the same key.
    let key = in_group(9);
    let mut twice = blob_of("t", &GroupMap::from_iter([(key, 1u64)]));
    let entry = twice[twice.len() - 16..].to_vec();
    twice.extend_from_slice(&entry);
    let counts_at = 4 + "t".len();
    twice[counts_at..counts_at + 8].copy_from_slice(&2u64.to_le_bytes());
    twice[counts_at + 8..counts_at + 16].copy_from_slice(&32u64.to_le_bytes());
    blobs[9] = twice;
    let mut restore = KeyedRestore::new();
    restore.add(0..128, blobs).unwrap();
    let mut table = KeyedTable::<u64, u64>::new("t", &layout, 0);
    match restore.restore(&mut table) {
        Err(StateError::Corrupt {
            group: Some(9),
            reason,
            ..
        }) => assert_eq!(reason, "a key appears twice"),
        other => panic!("expected a key twice, got {other:?}"),
    }
    assert!(
        table.is_empty(),
        "a failed restore leaves {} entries",
        table.len()
    );
}

#[test]
fn flipped_header_bytes_are_errors_and_no_flip_panics() {
    let layout = KeyGroups::new(1, 1).unwrap();
    let mut map = GroupMap::default();
    for k in 0..4 {
        map.insert(k, k + 100);
    }
    let blob = blob_of("t", &map);
    // Name length, name, entry count, payload length.
    let header_bytes = 4 + 1 + 16;
    let restore_all = |blob: Vec<u8>| -> Result<usize, StateError> {
        let mut table = KeyedTable::<u64, u64>::new("t", &layout, 0);
        let mut restore = KeyedRestore::new();
        restore.add(0..1, vec![blob])?;
        let entries = restore.restore(&mut table)?;
        restore.finish()?;
        Ok(entries)
    };
    assert_eq!(restore_all(blob.clone()), Ok(4));
    for at in 0..blob.len() {
        for bit in [0x01u8, 0x80] {
            let mut damaged = blob.clone();
            damaged[at] ^= bit;
            let outcome = restore_all(damaged);
            // A flip inside an entry may leave a valid entry (the file's CRC catches it); one
            // in the header never goes unnoticed.
            if at < header_bytes {
                assert!(outcome.is_err(), "flip at header byte {at} went unnoticed");
            }
        }
    }
}

#[test]
fn a_restore_that_does_not_fit_is_a_layout_error() {
    let layout = KeyGroups::new(128, 2).unwrap();
    let mut restore = KeyedRestore::new();
    assert!(matches!(
        restore.add(0..64, vec![Vec::new(); 3]),
        Err(StateError::Layout(_))
    ));
    restore.add(0..32, vec![Vec::new(); 32]).unwrap();
    assert!(matches!(
        restore.add(31..33, vec![Vec::new(); 2]),
        Err(StateError::Layout(_))
    ));
    let mut table = KeyedTable::<u64, u64>::new("t", &layout, 0);
    let missing = restore.restore(&mut table).unwrap_err();
    assert_eq!(
        missing.to_string(),
        "key group 32 of state \"t\" is in none of the snapshots"
    );

    let mut restore = KeyedRestore::new();
    restore.add(0..64, vec![Vec::new(); 64]).unwrap();
    let mut full = KeyedTable::<u64, u64>::new("t", &layout, 0);
    let k = (0..).find(|k: &u64| layout.group_of(k) < 64).unwrap();
    full.insert(k, 1);
    assert!(matches!(
        restore.restore(&mut full),
        Err(StateError::Layout(_))
    ));
}

#[test]
fn state_nobody_restores_is_reported() {
    let layout = KeyGroups::new(128, 1).unwrap();
    let mut a = KeyedTable::<u64, u64>::new("a", &layout, 0);
    let mut b = KeyedTable::<u64, u64>::new("renamed", &layout, 0);
    a.insert(1, 1);
    b.insert(1, 1);
    let mut s = KeyedSnapshot::new(0..128, SnapshotMode::Sync);
    s.add(&a).add(&b);
    let mut restore = KeyedRestore::new();
    restore.add(0..128, s.into_blobs()).unwrap();
    let mut a2 = KeyedTable::<u64, u64>::new("a", &layout, 0);
    let mut b2 = KeyedTable::<u64, u64>::new("b", &layout, 0);
    restore.restore(&mut a2).unwrap();
    assert_eq!(restore.restore(&mut b2), Ok(0));
    assert_eq!(
        restore.finish(),
        Err(StateError::Unclaimed("renamed".to_owned()))
    );
}

#[derive(Debug, Clone)]
enum Op {
    Insert(u64, u64),
    Remove(u64),
    Add(u64, u64),
    Retain(u64),
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0u64..300;
    prop_oneof![
        4 => (key.clone(), any::<u64>()).prop_map(|(k, v)| Op::Insert(k, v)),
        2 => key.clone().prop_map(Op::Remove),
        3 => (key, 0u64..1000).prop_map(|(k, v)| Op::Add(k, v)),
        1 => (2u64..7).prop_map(Op::Retain),
    ]
}

fn apply(op: &Op, table: &mut KeyedTable<u64, u64>, model: &mut BTreeMap<u64, u64>) {
    match *op {
        Op::Insert(k, v) => {
            assert_eq!(table.insert(k, v), model.insert(k, v));
        }
        Op::Remove(k) => {
            assert_eq!(table.remove(&k), model.remove(&k));
        }
        Op::Add(k, v) => {
            table.merge(&k, v, |a, v| *a = a.wrapping_add(v));
            let m = model.entry(k).or_insert(0);
            *m = m.wrapping_add(v);
        }
        Op::Retain(m) => {
            table.retain(|k, _| k % m != 0);
            model.retain(|k, _| k % m != 0);
        }
    }
}

proptest! {
    #[test]
    fn a_snapshot_keeps_the_state_of_its_moment_whatever_follows(
        before in proptest::collection::vec(op(), 0..300),
        after in proptest::collection::vec(op(), 0..300),
        mode_sync in any::<bool>(),
    ) {
        let layout = KeyGroups::new(128, 1).unwrap();
        let mut table = KeyedTable::new("t", &layout, 0);
        let mut model = BTreeMap::new();
        for op in &before {
            apply(op, &mut table, &mut model);
        }
        let at_snapshot = model.clone();
        let mode = if mode_sync { SnapshotMode::Sync } else { SnapshotMode::Async };
        let mut snapshot = KeyedSnapshot::new(0..128, mode);
        snapshot.add(&table);
        let view = table.snapshot();
        for op in &after {
            apply(op, &mut table, &mut model);
        }
        prop_assert_eq!(view.len(), at_snapshot.len());
        prop_assert_eq!(contents(&restored("t", 0..128, snapshot.into_blobs())), at_snapshot);
        prop_assert_eq!(contents(&table), model);
    }
}

#[test]
fn the_task_thread_mutates_while_another_thread_serializes_the_snapshot() {
    let layout = KeyGroups::new(128, 1).unwrap();
    let keys = 50_000u64;
    let mut table = KeyedTable::<u64, u64>::new("t", &layout, 0);
    let mut model = BTreeMap::new();
    for k in 0..keys {
        table.insert(k, k);
        model.insert(k, k);
    }
    let mut rng = SplitMix(7);
    let (to_writer, views) = mpsc::channel::<KeyedSnapshot>();
    let (to_task, written) = mpsc::channel::<Vec<Vec<u8>>>();
    std::thread::scope(|s| {
        s.spawn(move || {
            for snapshot in views {
                to_task.send(snapshot.into_blobs()).unwrap();
            }
        });
        for _round in 0..4 {
            let at_snapshot = model.clone();
            let mut snapshot = KeyedSnapshot::new(0..128, SnapshotMode::Async);
            snapshot.add(&table);
            to_writer.send(snapshot).unwrap();
            // Mutate until the writer is done: at least 20 000 operations, more while it runs.
            let mut ops = 0u64;
            let blobs = loop {
                for _ in 0..1000 {
                    let k = rng.next() % (keys + keys / 4);
                    let op = match rng.next() % 4 {
                        0 => Op::Remove(k),
                        1 => Op::Add(k, rng.next() % 100),
                        _ => Op::Insert(k, rng.next()),
                    };
                    apply(&op, &mut table, &mut model);
                    ops += 1;
                }
                if ops >= 20_000
                    && let Ok(blobs) = written.try_recv()
                {
                    break blobs;
                }
            };
            assert_eq!(contents(&restored("t", 0..128, blobs)), at_snapshot);
        }
        drop(to_writer);
    });
    assert_eq!(contents(&table), model);
}

/// Restores blobs of every group into a fresh table of strings named `name`.
fn restored_strings(name: &str, blobs: Vec<Vec<u8>>) -> KeyedTable<u64, String> {
    let mut table = KeyedTable::new(name, &KeyGroups::new(128, 1).unwrap(), 0);
    let mut restore = KeyedRestore::new();
    restore.add(0..128, blobs).unwrap();
    restore.restore(&mut table).unwrap();
    restore.finish().unwrap();
    table
}

#[test]
fn every_group_is_copied_while_the_snapshot_thread_reads_it() {
    let layout = KeyGroups::new(128, 1).unwrap();
    let mut table = KeyedTable::<u64, String>::new("t", &layout, 0);
    let mut model = BTreeMap::new();
    for k in 0..20_000u64 {
        table.insert(k, format!("v{k}"));
        model.insert(k, format!("v{k}"));
    }
    // One key of each group: writing them all copies every group the snapshot shares.
    let one_per_group: Vec<u64> = (0..128)
        .map(|g| (0..).find(|k: &u64| layout.group_of(k) == g).unwrap())
        .collect();
    // Round by round, a different change of every group while the writer reads: an
    // update in place of a value that owns heap memory, an insertion, a retain, a clear.
    for round in 0..4 {
        let at_snapshot = model.clone();
        let mut snapshot = KeyedSnapshot::new(0..128, SnapshotMode::Async);
        snapshot.add(&table);
        let (started, reading) = mpsc::channel();
        let blobs = std::thread::scope(|s| {
            let writer = s.spawn(move || {
                started.send(()).unwrap();
                snapshot.into_blobs()
            });
            reading.recv().unwrap();
            match round {
                0 => {
                    for k in &one_per_group {
                        table.upsert_with(k, String::new, |v| v.push('!'));
                        model.entry(*k).or_default().push('!');
                    }
                }
                1 => {
                    for k in 0..128u64 {
                        table.insert(1_000_000 + k, format!("n{k}"));
                        model.insert(1_000_000 + k, format!("n{k}"));
                    }
                }
                2 => {
                    table.retain(|k, _| k % 3 != 0);
                    model.retain(|k, _| k % 3 != 0);
                }
                _ => {
                    table.clear();
                    model.clear();
                }
            }
            writer.join().unwrap()
        });
        assert_eq!(contents(&restored_strings("t", blobs)), at_snapshot);
        assert_eq!(contents(&table), model);
    }
}
