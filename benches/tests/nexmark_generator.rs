//! weir's allocation-free Nexmark generator against the `nexmark` crate's: the same events,
//! field for field, for the same configuration and event offsets.

use ::nexmark::EventGenerator;
use ::nexmark::config::NexmarkConfig;
use rand08::rngs::SmallRng;
use rand08::{RngCore, SeedableRng};
use weir_bench::nexmark::generator::{EventModel, round_to_u64};
use weir_bench::nexmark::rng::EventRng;
use weir_bench::nexmark::{Event, EventsConfig};

/// The first `events` events from offset `start` with `step`, by both generators.
fn both(cfg: &NexmarkConfig, start: u64, step: u64, events: usize) -> (Vec<Event>, Vec<Event>) {
    let model = EventModel::new(cfg).unwrap();
    let ours = (0..events as u64)
        .map(|i| model.event(start + i * step))
        .collect();
    let theirs = EventGenerator::new(cfg.clone())
        .with_offset(start)
        .with_step(step)
        .take(events)
        .map(|e| Event::from_crate(e).unwrap())
        .collect();
    (ours, theirs)
}

fn assert_same(cfg: &NexmarkConfig, start: u64, step: u64, events: usize) {
    let (ours, theirs) = both(cfg, start, step, events);
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        assert_eq!(a, b, "event {i} from offset {start} step {step}");
    }
    assert_eq!(ours.len(), theirs.len());
}

#[test]
fn the_events_are_the_crates_for_the_jobs_configurations() {
    for rate in [1, 2_000, 10_000, 10_000_000] {
        let cfg = EventsConfig {
            rate,
            ..EventsConfig::default()
        }
        .nexmark();
        assert_same(&cfg, 0, 1, 20_000);
        // A partition (2 of 5) resumed at its event 3 000.
        assert_same(&cfg, 2 + 3_000 * 5, 5, 2_000);
    }
}

#[test]
fn every_kind_and_branch_of_the_crate_is_met() {
    let cfg = EventsConfig::default().nexmark();
    let (ours, _) = both(&cfg, 0, 1, 10_000);
    let people = ours
        .iter()
        .filter(|e| matches!(e, Event::Person(_)))
        .count();
    let auctions = ours
        .iter()
        .filter(|e| matches!(e, Event::Auction(_)))
        .count();
    // 1:3:46 of every 50 events.
    assert_eq!((people, auctions), (200, 600));
    // Far into the stream: the hot and cold ids, the active people window and the
    // auctions in flight all past their start-up phase.
    assert_same(&cfg, 1_000_000_000, 1, 5_000);
}

#[test]
fn other_settings_of_the_crate_give_its_events_too() {
    let cfg = NexmarkConfig {
        base_time: 0,
        first_rate: 777,
        next_rate: 777,
        out_of_order_group_size: 7,
        hot_seller_ratio: 1,
        hot_auction_ratio: 3,
        hot_bidder_ratio: 1,
        person_proportion: 2,
        auction_proportion: 5,
        bid_proportion: 13,
        first_event_id: 123,
        first_event_number: 45,
        active_people: 50,
        in_flight_auctions: 20,
        num_event_generators: 3,
        ..NexmarkConfig::default()
    };
    assert_same(&cfg, 0, 1, 10_000);
    assert_same(&cfg, 9, 4, 2_000);
}

#[test]
fn what_the_model_cannot_make_is_refused() {
    let cfg = NexmarkConfig {
        first_rate: 10_000,
        next_rate: 5_000,
        ..NexmarkConfig::default()
    };
    let err = EventModel::new(&cfg).unwrap_err();
    assert!(err.contains("one rate"), "{err}");
    let cfg = NexmarkConfig {
        us_cities: vec!["paris".into()],
        ..NexmarkConfig::default()
    };
    let err = EventModel::new(&cfg).unwrap_err();
    assert!(err.contains("word lists"), "{err}");
}

/// The next outputs of `rng` by every method: equal for two RNGs in the same state.
fn outputs(mut rng: impl RngCore) -> (Vec<u64>, u32, Vec<u8>) {
    let words = (0..8).map(|_| rng.next_u64()).collect();
    let half = rng.next_u32();
    let mut bytes = vec![0; 8 + 5 + 3];
    let (whole, rest) = bytes.split_at_mut(8 + 5);
    rng.fill_bytes(whole);
    rng.fill_bytes(rest);
    (words, half, bytes)
}

#[test]
fn the_seeding_is_the_crates_at_the_edges() {
    for seed in [0, 1, 2, 49, 50, u64::from(u32::MAX), u64::MAX - 1, u64::MAX] {
        assert_eq!(
            outputs(EventRng::seeded(seed)),
            outputs(SmallRng::seed_from_u64(seed)),
            "seed {seed}"
        );
    }
}

#[test]
fn a_seed_is_rands_seed_and_the_all_zero_one_is_replaced_as_rand_replaces_it() {
    // No PCG32 expansion is known to give the all-zero seed: it is checked from the seed.
    let words = [1, 2, 3, u64::MAX];
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    assert_eq!(
        outputs(EventRng::from_seed_words(words)),
        outputs(SmallRng::from_seed(bytes.try_into().unwrap()))
    );
    assert_eq!(
        outputs(EventRng::from_seed_words([0; 4])),
        outputs(SmallRng::from_seed([0; 32]))
    );
}

proptest::proptest! {
    #[test]
    fn the_seeding_is_the_crates(seed in proptest::prelude::any::<u64>()) {
        proptest::prop_assert_eq!(outputs(EventRng::seeded(seed)), outputs(SmallRng::seed_from_u64(seed)));
    }

    #[test]
    fn rounding_without_libm_is_rounding(bits in proptest::prelude::any::<u32>(), small in 0.0f32..1e7) {
        for x in [f32::from_bits(bits), small, small.trunc() + 0.5] {
            proptest::prop_assert_eq!(round_to_u64(x), x.round() as u64, "{}", x);
        }
    }
}
