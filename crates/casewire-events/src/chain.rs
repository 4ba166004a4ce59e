//! The hash chain of a case's events: each event of a case carries, in `metadata.caseChain`,
//! its place in the case's history and a hash that covers the event and the hash before it, so
//! anyone holding a case's events can check that none is missing, moved or changed.
//!
//! ```json
//! "metadata": { …, "caseChain": { "sequence": 3, "previous": "9f2c…", "hash": "41d0…" } }
//! ```
//!
//! - `sequence` counts the case's chained events from 1;
//! - `previous` is the `hash` of the case's event before, or 64 zeros for its first;
//! - `hash` is the SHA-256, in lowercase hex, of the event document with `hash` itself removed
//!   from `caseChain`, canonicalised by RFC 8785 (JSON Canonicalization Scheme): keys sorted, no
//!   whitespace, numbers and strings in their one canonical form. Any JCS implementation in any
//!   language recomputes it from the document as it arrives from Kafka.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::Event;

/// The key of the chain in an event's `metadata`.
pub const CHAIN_KEY: &str = "caseChain";

/// `previous` of a case's first event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An event's place in its case's chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// 1 for the case's first chained event.
    pub sequence: u64,
    /// The hash of the event before, or [`GENESIS`].
    pub previous: String,
    /// This event's hash.
    pub hash: String,
}

/// Why an event's link does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// The event carries no `metadata.caseChain`, or one without its three fields.
    #[error("the event carries no caseChain with sequence, previous and hash")]
    Unchained,
    /// The hash does not recompute: the event was changed after it was chained.
    #[error("its hash does not match its content (recomputed {recomputed})")]
    Altered {
        /// The hash of the event as it is.
        recomputed: String,
    },
}

/// Chains `event` after `previous` at `sequence`: writes `metadata.caseChain` and returns its
/// link.
pub fn link(event: &mut Event, sequence: u64, previous: &str) -> Link {
    event.metadata.extra.insert(
        CHAIN_KEY.to_owned(),
        json!({"sequence": sequence, "previous": previous}),
    );
    let hash = digest(event);
    if let Some(Value::Object(chain)) = event.metadata.extra.get_mut(CHAIN_KEY) {
        chain.insert("hash".to_owned(), hash.clone().into());
    }
    Link {
        sequence,
        previous: previous.to_owned(),
        hash,
    }
}

/// The link `event` claims in its metadata, unchecked.
pub fn claimed(event: &Event) -> Option<Link> {
    let chain = event.metadata.extra.get(CHAIN_KEY)?.as_object()?;
    Some(Link {
        sequence: chain.get("sequence")?.as_u64()?,
        previous: chain.get("previous")?.as_str()?.to_owned(),
        hash: chain.get("hash")?.as_str()?.to_owned(),
    })
}

/// The link `event` carries, once its hash is recomputed and found to match.
pub fn check(event: &Event) -> Result<Link, LinkError> {
    let link = claimed(event).ok_or(LinkError::Unchained)?;
    let mut unhashed = event.clone();
    if let Some(Value::Object(chain)) = unhashed.metadata.extra.get_mut(CHAIN_KEY) {
        chain.remove("hash");
    }
    let recomputed = digest(&unhashed);
    if recomputed != link.hash {
        return Err(LinkError::Altered { recomputed });
    }
    Ok(link)
}

/// SHA-256 of the event's JCS form, in lowercase hex.
fn digest(event: &Event) -> String {
    // An event is strings, numbers and JSON maps: canonicalising it cannot fail. Were it to,
    // the empty document's hash would not match any check, which is the safe way to fail.
    let canonical = serde_json_canonicalizer::to_vec(event).unwrap_or_default();
    hex::encode(Sha256::digest(canonical))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EventType, Metadata};

    fn event(title: &str) -> Event {
        Event::new(
            EventType::CaseUpdated,
            json!({"caseId": "CASE-2026-001", "title": title, "score": 1.0})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            Metadata {
                user_id: Some("analyst@fraud.com".into()),
                ..Metadata::default()
            },
            chrono::Utc::now(),
            &mut rand::rng(),
        )
    }

    #[test]
    fn a_linked_event_checks_and_survives_a_trip_through_its_json() {
        let mut first = event("Drained wallet");
        let one = link(&mut first, 1, GENESIS);
        let mut second = event("Drained wallet, second victim");
        let two = link(&mut second, 2, &one.hash);
        assert_eq!(two.previous, one.hash);
        for (event, expected) in [(&first, &one), (&second, &two)] {
            let back = Event::from_json(&event.to_json()).expect("parses");
            assert_eq!(check(&back).as_ref(), Ok(expected));
        }
    }

    #[test]
    fn a_changed_field_or_a_moved_link_fails_the_check() {
        let mut chained = event("Drained wallet");
        link(&mut chained, 1, GENESIS);

        let mut edited = chained.clone();
        edited
            .data
            .insert("title".into(), "Nothing happened".into());
        assert!(matches!(check(&edited), Err(LinkError::Altered { .. })));

        let mut moved = chained.clone();
        if let Some(Value::Object(chain)) = moved.metadata.extra.get_mut(CHAIN_KEY) {
            chain.insert("sequence".into(), 2.into());
        }
        assert!(matches!(check(&moved), Err(LinkError::Altered { .. })));

        assert_eq!(check(&event("never chained")), Err(LinkError::Unchained));
    }

    #[test]
    fn the_hash_is_sha256_of_the_documents_canonical_form() {
        // What a consumer in another language does: drop the hash, JCS, SHA-256.
        let mut chained = event("Drained wallet");
        let linked = link(&mut chained, 1, GENESIS);
        let mut document: Value = serde_json::from_slice(&chained.to_json()).expect("json");
        document["metadata"][CHAIN_KEY]
            .as_object_mut()
            .expect("chain")
            .remove("hash");
        let canonical = serde_json_canonicalizer::to_string(&document).expect("jcs");
        // JCS writes 1.0 as 1, and sorts keys.
        assert!(canonical.contains(r#""score":1,"#), "{canonical}");
        assert!(canonical.starts_with(r#"{"data":"#), "{canonical}");
        assert_eq!(
            hex::encode(Sha256::digest(canonical.as_bytes())),
            linked.hash
        );
    }
}
