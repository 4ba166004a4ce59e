//! Properties of generated events: ids, construction and serialisation.

use std::collections::HashSet;

use casewire_events::{Event, EventId, EventType, Metadata, Priority};
use chrono::{DateTime, Utc};
use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::{Map, Value, json};

#[test]
fn generated_ids_keep_the_guides_shape_with_64_random_bits() {
    let mut rng = StdRng::seed_from_u64(7);
    let id = EventId::generate(1_704_672_000_000, &mut rng);
    let (prefix, hex) = id.as_str().rsplit_once('_').expect("two underscores");
    assert_eq!(prefix, "evt_1704672000000");
    assert_eq!(hex.len(), 16);
    assert_eq!(EventId::parse(id.as_str()).expect("parses"), id);
}

#[test]
fn ids_generated_in_one_millisecond_do_not_collide() {
    let mut rng = StdRng::from_os_rng();
    let ids: HashSet<_> = (0..200_000)
        .map(|_| EventId::generate(1_704_672_000_000, &mut rng))
        .collect();
    assert_eq!(ids.len(), 200_000);
}

#[test]
fn malformed_ids_are_refused() {
    for bad in [
        "",
        "evt_",
        "evt_1_",
        "evt__abcdef",
        "evt_1_abcde",
        "evt_1_ABCDEF",
        "id_1_abcdef",
        "evt_1a_abcdef",
    ] {
        assert!(EventId::parse(bad).is_err(), "{bad:?}");
    }
}

fn any_type() -> impl Strategy<Value = EventType> {
    proptest::sample::select(EventType::ALL.to_vec())
}

fn any_priority() -> impl Strategy<Value = Priority> {
    proptest::sample::select(Priority::ALL.to_vec())
}

fn any_data() -> impl Strategy<Value = Map<String, Value>> {
    proptest::collection::btree_map("[a-zA-Z]{1,8}", "[ -~]{0,12}", 0..6)
        .prop_map(|m| m.into_iter().map(|(k, v)| (k, Value::String(v))).collect())
}

proptest! {
    #[test]
    fn any_event_survives_a_json_round_trip(
        event_type in any_type(),
        priority in any_priority(),
        data in any_data(),
        ms in 0i64..4_102_444_800_000,
        seed in any::<u64>(),
        user in proptest::option::of("[a-z@.]{1,12}"),
    ) {
        let now: DateTime<Utc> = DateTime::from_timestamp_millis(ms).expect("in range");
        let metadata = Metadata { user_id: user, extra: Map::from_iter([("trace".to_owned(), json!(1))]), ..Metadata::default() };
        let event = Event::new(event_type, data, metadata, now, &mut StdRng::seed_from_u64(seed))
            .with_priority(priority);
        let back = Event::from_json(&event.to_json()).expect("parses");
        prop_assert_eq!(back, event);
    }
}
