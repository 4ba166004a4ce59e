//! Refused requests, recorded within bounds. Every refusal (no valid token, a role without the
//! permission) is a `user.unauthorized_access` event, so headquarters sees who tried what; but an
//! anonymous client must not be able to fill the queue with them and crowd out the evidence
//! and case events it exists for. So:
//!
//! - the recorded path is cut to [`RefusalLimits::path_bytes`] (the event says how long it was);
//! - identical refusals (same client, user, method, path and reason) within one window are one
//!   event: the first is recorded at once, and the rest become one summary at the window's end,
//!   with their count and the first and last time;
//! - past [`RefusalLimits::per_client`] recorded refusals per client, or
//!   [`RefusalLimits::global`] in all, in one window, the rest are only counted, and one summary
//!   at the window's end says how many, from how many clients;
//! - refusal events together never hold more than [`RefusalLimits::share_bytes`] of the queue
//!   (5 % of its quota by default): past it, refusals are counted as dropped, and the next
//!   summary that finds room says how many were. What is already queued stays.
//!
//! Every refusal is counted in `/metrics` whatever happened to it ([`RefusalCounts`]).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use casewire_events::{Event, EventType, Metadata};
use casewire_outbox::DeliveryState;
use serde_json::{Map, Value};

use crate::{RequestInfo, SOURCE, User};

/// The bounds on recording refusals.
#[derive(Debug, Clone, Copy)]
pub struct RefusalLimits {
    /// Longest path recorded, in bytes (cut at a character boundary).
    pub path_bytes: usize,
    /// The window over which identical refusals are one event and the rates count.
    pub window: Duration,
    /// Refusal events recorded per client (address) per window.
    pub per_client: u32,
    /// Refusal events recorded in all per window.
    pub global: u32,
    /// Most bytes of the queue that refusal events may hold at once.
    pub share_bytes: u64,
}

impl RefusalLimits {
    /// The defaults, with a share of 5 % of a queue quota of `quota_bytes`.
    pub fn for_quota(quota_bytes: u64) -> RefusalLimits {
        RefusalLimits {
            path_bytes: 256,
            window: Duration::from_secs(60),
            per_client: 20,
            global: 200,
            share_bytes: quota_bytes / 20,
        }
    }
}

impl Default for RefusalLimits {
    fn default() -> RefusalLimits {
        RefusalLimits::for_quota(casewire_outbox::DEFAULT_QUOTA_BYTES)
    }
}

/// What became of every refusal since start, for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RefusalCounts {
    /// Recorded as an event of their own.
    pub recorded: u64,
    /// Folded into an identical refusal's summary.
    pub coalesced: u64,
    /// Past the per-client or global rate: counted, and summarised.
    pub rate_limited: u64,
    /// Past the queue share: counted only.
    pub dropped: u64,
}

/// One refusal as it is recorded: who, what, and why.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    client: Option<String>,
    user: Option<String>,
    role: Option<&'static str>,
    method: String,
    path: String,
    reason: String,
    role_header_sent: bool,
}

/// Identical refusals after the first, in this window.
#[derive(Debug)]
struct Repeats {
    count: u64,
    first_at: i64,
    last_at: i64,
}

#[derive(Debug, Default)]
struct Ledger {
    window_start: i64,
    per_client: HashMap<Option<String>, u32>,
    recorded: u32,
    repeats: HashMap<Key, Repeats>,
    limited: u64,
    limited_clients: HashSet<Option<String>>,
    limited_first_at: i64,
    limited_last_at: i64,
    /// Refusal events this process queued that may still be in the queue, oldest first, with
    /// their sizes.
    queued: VecDeque<(String, u64)>,
    queued_bytes: u64,
    /// Dropped for the share since the last summary that said so.
    dropped_unreported: u64,
    counts: RefusalCounts,
}

/// What to do with one refusal.
pub(crate) enum Admit {
    /// Queue these events (the refusal's own, and summaries of the window that ended).
    Record(Vec<Event>),
    /// Nothing to queue now.
    Counted,
}

/// The refusals' bounds and what they have let through.
#[derive(Debug)]
pub struct Refusals {
    limits: RefusalLimits,
    ledger: Mutex<Ledger>,
}

impl Refusals {
    /// Refusals under `limits`.
    pub fn new(limits: RefusalLimits) -> Refusals {
        Refusals {
            limits,
            ledger: Mutex::new(Ledger::default()),
        }
    }

    /// The bounds in force.
    pub fn limits(&self) -> RefusalLimits {
        self.limits
    }

    /// What became of every refusal since start.
    pub fn counts(&self) -> RefusalCounts {
        lock(&self.ledger).counts
    }

    /// Decides what one refusal at `now_ms` becomes.
    pub(crate) fn admit(
        &self,
        from: &RequestInfo,
        user: Option<&User>,
        reason: &str,
        now_ms: i64,
    ) -> Admit {
        let key = Key {
            client: from.ip_address.clone(),
            user: user.map(|u| u.username.clone()),
            role: user.map(|u| u.role.as_str()),
            method: cut(&from.method, 16).0,
            path: from.path.clone(),
            reason: reason.to_owned(),
            role_header_sent: from.role_header_sent,
        };
        let mut ledger = lock(&self.ledger);
        let mut events = self.roll(&mut ledger, now_ms);
        if let Some(repeats) = ledger.repeats.get_mut(&key) {
            repeats.count += 1;
            repeats.last_at = now_ms;
            ledger.counts.coalesced += 1;
        } else {
            let client_count = ledger.per_client.get(&key.client).copied().unwrap_or(0);
            if client_count >= self.limits.per_client || ledger.recorded >= self.limits.global {
                if ledger.limited == 0 {
                    ledger.limited_first_at = now_ms;
                }
                ledger.limited += 1;
                ledger.limited_last_at = now_ms;
                ledger.limited_clients.insert(key.client.clone());
                ledger.counts.rate_limited += 1;
            } else {
                let event = self.event(&key, Map::new(), now_ms);
                if self.fits(&mut ledger, &event) {
                    *ledger.per_client.entry(key.client.clone()).or_default() += 1;
                    ledger.recorded += 1;
                    ledger.counts.recorded += 1;
                    events.push(event);
                } else {
                    ledger.dropped_unreported += 1;
                    ledger.counts.dropped += 1;
                }
                ledger.repeats.insert(
                    key,
                    Repeats {
                        count: 0,
                        first_at: now_ms,
                        last_at: now_ms,
                    },
                );
            }
        }
        if events.is_empty() {
            Admit::Counted
        } else {
            Admit::Record(events)
        }
    }

    /// The summaries of a window that has ended by `now_ms`, if any (for a periodic flush when
    /// no refusal comes to roll the window).
    pub(crate) fn flush(&self, now_ms: i64) -> Vec<Event> {
        let mut ledger = lock(&self.ledger);
        self.roll(&mut ledger, now_ms)
    }

    /// Forgets the queued refusal events that have left the queue, by asking `states` about
    /// the oldest `at_most` of them.
    pub(crate) fn prune(
        &self,
        at_most: usize,
        states: impl FnOnce(&[String]) -> Result<HashMap<String, DeliveryState>, casewire_outbox::Error>,
    ) -> Result<(), casewire_outbox::Error> {
        let oldest: Vec<String> = lock(&self.ledger)
            .queued
            .iter()
            .take(at_most)
            .map(|(id, _)| id.clone())
            .collect();
        if oldest.is_empty() {
            return Ok(());
        }
        let states = states(&oldest)?;
        let gone: HashSet<&String> = oldest
            .iter()
            .filter(|id| matches!(states.get(*id), None | Some(DeliveryState::Delivered)))
            .collect();
        let mut ledger = lock(&self.ledger);
        let mut freed = 0;
        ledger.queued.retain(|(id, bytes)| {
            let keep = !gone.contains(id);
            if !keep {
                freed += bytes;
            }
            keep
        });
        ledger.queued_bytes -= freed.min(ledger.queued_bytes);
        Ok(())
    }

    /// Counts refusal events already in the queue at start against the share (their ids and
    /// sizes), so a restart does not grant a fresh one.
    pub(crate) fn adopt(&self, queued: Vec<(String, u64)>) {
        let mut ledger = lock(&self.ledger);
        for (id, bytes) in queued {
            ledger.queued_bytes += bytes;
            ledger.queued.push_back((id, bytes));
        }
    }

    /// Bytes of the queue the refusal events this process knows of hold.
    pub fn queued_bytes(&self) -> u64 {
        lock(&self.ledger).queued_bytes
    }

    /// Ends the window if it is over: returns its summaries, and starts the next.
    fn roll(&self, ledger: &mut Ledger, now_ms: i64) -> Vec<Event> {
        let window = i64::try_from(self.limits.window.as_millis()).unwrap_or(i64::MAX);
        if now_ms < ledger.window_start.saturating_add(window) {
            return Vec::new();
        }
        // Each summary with the number of refusals it stands for.
        let mut summaries: Vec<(Event, u64)> = Vec::new();
        let repeats = std::mem::take(&mut ledger.repeats);
        for (key, r) in repeats.into_iter().filter(|(_, r)| r.count > 0) {
            let mut extra = Map::new();
            extra.insert("coalesced".into(), true.into());
            extra.insert("count".into(), r.count.into());
            extra.insert("firstAt".into(), crate::rfc3339(r.first_at).into());
            extra.insert("lastAt".into(), crate::rfc3339(r.last_at).into());
            summaries.push((self.event(&key, extra, now_ms), r.count));
        }
        if ledger.limited > 0 {
            let key = Key {
                client: None,
                user: None,
                role: None,
                method: "*".into(),
                path: "*".into(),
                reason: format!(
                    "{} more refusals from {} clients came faster than recorded ({} a client, {} in all, per {} s) and were only counted",
                    ledger.limited,
                    ledger.limited_clients.len(),
                    self.limits.per_client,
                    self.limits.global,
                    self.limits.window.as_secs(),
                ),
                role_header_sent: false,
            };
            let mut extra = Map::new();
            extra.insert("rateLimited".into(), ledger.limited.into());
            extra.insert("clients".into(), ledger.limited_clients.len().into());
            extra.insert(
                "firstAt".into(),
                crate::rfc3339(ledger.limited_first_at).into(),
            );
            extra.insert(
                "lastAt".into(),
                crate::rfc3339(ledger.limited_last_at).into(),
            );
            summaries.push((self.event(&key, extra, now_ms), ledger.limited));
        }
        let mut kept = Vec::with_capacity(summaries.len());
        for (mut summary, stands_for) in summaries {
            if ledger.dropped_unreported > 0 {
                summary
                    .data
                    .insert("droppedForShare".into(), ledger.dropped_unreported.into());
            }
            if self.fits(ledger, &summary) {
                ledger.dropped_unreported = 0;
                kept.push(summary);
            } else {
                ledger.dropped_unreported += stands_for;
            }
        }
        ledger.window_start = now_ms;
        ledger.per_client.clear();
        ledger.recorded = 0;
        ledger.limited = 0;
        ledger.limited_clients.clear();
        kept
    }

    /// Whether `event` fits in the share; if it does, it is counted in it.
    fn fits(&self, ledger: &mut Ledger, event: &Event) -> bool {
        let bytes = serde_json::to_vec(event).map_or(4096, |b| b.len() as u64);
        if ledger.queued_bytes + bytes > self.limits.share_bytes {
            return false;
        }
        ledger.queued_bytes += bytes;
        ledger
            .queued
            .push_back((event.event_id.as_str().to_owned(), bytes));
        true
    }

    fn event(&self, key: &Key, extra: Map<String, Value>, now_ms: i64) -> Event {
        let (path, cut_from) = cut(&key.path, self.limits.path_bytes);
        let mut data = Map::new();
        data.insert("path".into(), path.into());
        if let Some(length) = cut_from {
            data.insert("pathLength".into(), length.into());
        }
        data.insert("method".into(), key.method.clone().into());
        data.insert("reason".into(), key.reason.clone().into());
        data.insert("roleHeaderSent".into(), key.role_header_sent.into());
        if let Some(role) = key.role {
            data.insert("role".into(), role.into());
        }
        data.extend(extra);
        Event::new(
            EventType::UserUnauthorizedAccess,
            data,
            Metadata {
                source: Some(SOURCE.into()),
                user_id: key.user.clone(),
                ip_address: key.client.clone(),
                ..Metadata::default()
            },
            chrono::DateTime::from_timestamp_millis(now_ms).unwrap_or_default(),
            &mut rand::rng(),
        )
    }
}

/// `text` cut to at most `bytes` bytes at a character boundary, with `…` added, and its
/// original length when it was cut.
fn cut(text: &str, bytes: usize) -> (String, Option<usize>) {
    if text.len() <= bytes {
        return (text.to_owned(), None);
    }
    let mut end = bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (format!("{}…", &text[..end]), Some(text.len()))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn from(client: &str, path: &str) -> RequestInfo {
        RequestInfo {
            ip_address: Some(client.into()),
            method: "GET".into(),
            path: path.into(),
            role_header_sent: false,
        }
    }

    fn recorded(admit: Admit) -> Vec<Event> {
        match admit {
            Admit::Record(events) => events,
            Admit::Counted => Vec::new(),
        }
    }

    const T0: i64 = 1_704_672_000_000;

    #[test]
    fn a_long_path_is_cut_at_a_character_boundary_and_its_length_kept() {
        let refusals = Refusals::new(RefusalLimits::default());
        let path = format!("/api/cases/{}", "é".repeat(40_000));
        let events = recorded(refusals.admit(&from("10.0.0.1", &path), None, "no token", T0));
        let data = &events[0].data;
        let recorded = data["path"].as_str().expect("path");
        assert!(recorded.len() <= 256 + '…'.len_utf8(), "{}", recorded.len());
        assert!(recorded.ends_with('…'));
        assert_eq!(data["pathLength"], json!(path.len()));
    }

    #[test]
    fn identical_refusals_in_a_window_are_one_event_and_one_summary() {
        let refusals = Refusals::new(RefusalLimits::default());
        let first = recorded(refusals.admit(&from("10.0.0.1", "/api/cases"), None, "no token", T0));
        assert_eq!(first.len(), 1);
        for i in 1..=299 {
            let again = refusals.admit(&from("10.0.0.1", "/api/cases"), None, "no token", T0 + i);
            assert!(recorded(again).is_empty(), "repeat {i} is folded");
        }
        let summary = refusals.flush(T0 + 60_000);
        assert_eq!(summary.len(), 1);
        let data = &summary[0].data;
        assert_eq!(
            (&data["count"], &data["coalesced"]),
            (&json!(299), &json!(true))
        );
        assert_eq!(data["firstAt"], "2024-01-08T00:00:00.000Z");
        assert_eq!(data["lastAt"], "2024-01-08T00:00:00.299Z");
        assert_eq!(
            refusals.counts(),
            RefusalCounts {
                recorded: 1,
                coalesced: 299,
                ..RefusalCounts::default()
            }
        );
        // Nothing more to say once said.
        assert!(refusals.flush(T0 + 120_000).is_empty());
    }

    #[test]
    fn past_the_rates_refusals_are_counted_and_summarised_per_window() {
        let refusals = Refusals::new(RefusalLimits::default());
        let mut events = 0;
        // One client, many paths: 20 recorded, the rest counted.
        for i in 0..100 {
            let admit = refusals.admit(
                &from("10.0.0.1", &format!("/api/cases/{i}")),
                None,
                "no token",
                T0,
            );
            events += recorded(admit).len();
        }
        assert_eq!(events, 20);
        // Many clients: the global 200 caps them.
        for c in 0..50 {
            for i in 0..10 {
                let admit = refusals.admit(
                    &from(&format!("10.0.1.{c}"), &format!("/p/{i}")),
                    None,
                    "no token",
                    T0,
                );
                events += recorded(admit).len();
            }
        }
        assert_eq!(events, 200);
        let summary = refusals.flush(T0 + 60_000);
        let limited = summary
            .iter()
            .find(|e| e.data.contains_key("rateLimited"))
            .expect("summary");
        assert_eq!(limited.data["rateLimited"], json!(80 + 320));
        assert_eq!(limited.data["clients"], json!(1 + 32));
        // A new window lets a client through again.
        assert_eq!(
            recorded(refusals.admit(&from("10.0.0.1", "/x"), None, "no token", T0 + 60_001)).len(),
            1
        );
    }

    #[test]
    fn the_share_bounds_what_refusals_hold_and_the_next_summary_says_what_was_dropped() {
        let refusals = Refusals::new(RefusalLimits {
            share_bytes: 4_000,
            ..RefusalLimits::default()
        });
        let mut ids = Vec::new();
        for i in 0..20 {
            for event in recorded(refusals.admit(
                &from("10.0.0.1", &format!("/p/{i}")),
                None,
                "no token",
                T0,
            )) {
                ids.push(event.event_id.as_str().to_owned());
            }
        }
        assert!(!ids.is_empty() && ids.len() < 20, "{} recorded", ids.len());
        assert!(refusals.queued_bytes() <= 4_000);
        let dropped = refusals.counts().dropped;
        assert_eq!(dropped as usize, 20 - ids.len());
        // Headquarters has them now: the share has room again, and the next summary says how
        // many refusals went unrecorded.
        refusals
            .prune(100, |asked| {
                Ok(asked
                    .iter()
                    .map(|id| (id.clone(), DeliveryState::Delivered))
                    .collect())
            })
            .expect("pruned");
        assert_eq!(refusals.queued_bytes(), 0);
        refusals.admit(&from("10.0.0.1", "/again"), None, "no token", T0 + 60_000);
        refusals.admit(&from("10.0.0.1", "/again"), None, "no token", T0 + 60_001);
        let summary = refusals.flush(T0 + 120_000);
        assert_eq!(summary[0].data["droppedForShare"], json!(dropped));
    }
}
