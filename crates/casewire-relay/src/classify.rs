//! Which delivery errors are worth retrying, and which attempts count.

use casewire_outbox::FailKind;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// Errors after which the broker will never accept the message as it is.
fn is_permanent(code: RDKafkaErrorCode) -> bool {
    use RDKafkaErrorCode::*;
    matches!(
        code,
        MessageSizeTooLarge
            | InvalidMessage
            | InvalidMessageSize
            | InvalidRecord
            | MessageBatchTooLarge
            | BadMessage
            | UnknownTopic
            | UnknownTopicOrPartition
            | InvalidTopic
            | PolicyViolation
            | UnsupportedForMessageFormat
            | InvalidRequiredAcks
    )
}

/// Errors that say the cluster refuses this client, not this event: wrong credentials, a
/// certificate that does not verify, an ACL that does not let it write. Every event would meet
/// the same refusal, and the cure is in the settings or the cluster: the attempt does not
/// count, nothing is dead-lettered, and the relay reports the refusal for an admin to act on.
pub(crate) fn is_refused_client(code: RDKafkaErrorCode) -> bool {
    use RDKafkaErrorCode::*;
    matches!(
        code,
        SaslAuthenticationFailed
            | Authentication
            | SSL
            | TopicAuthorizationFailed
            | ClusterAuthorizationFailed
            | TransactionalIdAuthorizationFailed
    )
}

/// Errors that say nothing against the event: no broker could be reached, or the producer itself
/// failed (a fatal idempotence error) and purged its queue to start afresh. The attempt does not
/// count.
fn is_unreachable(code: RDKafkaErrorCode) -> bool {
    use RDKafkaErrorCode::*;
    matches!(
        code,
        AllBrokersDown | BrokerTransportFailure | Resolve | Fatal | PurgeQueue | PurgeInflight
    )
}

/// The idempotent producer's own state out of step with the broker's: a sequence gap or an old
/// epoch after requests were lost on a flapping link, a broker that no longer knows the
/// producer id. librdkafka bumps the epoch (or the relay replaces the producer) and the events
/// go again: nothing against them, so the attempt does not count.
fn is_producer_state(code: RDKafkaErrorCode) -> bool {
    use RDKafkaErrorCode::*;
    matches!(
        code,
        OutOfOrderSequenceNumber
            | DuplicateSequenceNumber
            | InvalidProducerEpoch
            | InvalidProducerIdMapping
            | UnknownProducerId
            | GaplessGuarantee
            | Inconsistent
            | Retry
    )
}

/// Timeouts: the message's own (`message.timeout.ms`), an in-flight request's, one in a local
/// queue, and the broker's (a replication that took too long). Each says the link or the
/// cluster was slow, nothing against the event, and a link that flaps reports them once it is
/// back up, when a broker is reachable again: none counts.
fn is_timeout(code: RDKafkaErrorCode) -> bool {
    use RDKafkaErrorCode::*;
    matches!(
        code,
        MessageTimedOut | OperationTimedOut | TimedOutQueue | RequestTimedOut
    )
}

/// The error code inside a produce or delivery error, if it carries one.
pub(crate) fn code_of(error: &KafkaError) -> Option<RDKafkaErrorCode> {
    error.rdkafka_error_code()
}

/// How the outbox should treat a failed delivery. `reachable` is whether a broker was reachable
/// when the failure was reported: a message that timed out while no broker was reachable was
/// never refused by a broker, so the attempt does not count.
pub(crate) fn classify(error: &KafkaError, reachable: bool) -> FailKind {
    let Some(code) = code_of(error) else {
        return if reachable {
            FailKind::Retriable
        } else {
            FailKind::Unreachable
        };
    };
    if is_permanent(code) {
        FailKind::Permanent
    } else if is_refused_client(code)
        || is_unreachable(code)
        || is_producer_state(code)
        || is_timeout(code)
        || !reachable
    {
        FailKind::Unreachable
    } else {
        FailKind::Retriable
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::types::RDKafkaErrorCode as C;

    fn delivery(code: C) -> KafkaError {
        KafkaError::MessageProduction(code)
    }

    #[test]
    fn refusals_a_retry_cannot_fix_are_permanent() {
        for code in [C::MessageSizeTooLarge, C::InvalidMessage, C::UnknownTopic] {
            assert_eq!(
                classify(&delivery(code), true),
                FailKind::Permanent,
                "{code:?}"
            );
            assert_eq!(
                classify(&delivery(code), false),
                FailKind::Permanent,
                "{code:?}"
            );
        }
    }

    #[test]
    fn a_cluster_refusing_this_client_burns_no_attempt_and_dead_letters_nothing() {
        for code in [
            C::SaslAuthenticationFailed,
            C::Authentication,
            C::SSL,
            C::TopicAuthorizationFailed,
            C::ClusterAuthorizationFailed,
        ] {
            for reachable in [true, false] {
                assert_eq!(
                    classify(&delivery(code), reachable),
                    FailKind::Unreachable,
                    "{code:?}"
                );
            }
        }
    }

    #[test]
    fn passing_broker_trouble_is_retriable() {
        for code in [
            C::NotLeaderForPartition,
            C::NotEnoughReplicas,
            C::NotEnoughReplicasAfterAppend,
            C::LeaderNotAvailable,
            C::QueueFull,
        ] {
            assert_eq!(
                classify(&delivery(code), true),
                FailKind::Retriable,
                "{code:?}"
            );
        }
    }

    #[test]
    fn a_timeout_reported_once_a_broker_is_back_does_not_count() {
        for code in [
            C::MessageTimedOut,
            C::OperationTimedOut,
            C::TimedOutQueue,
            C::RequestTimedOut,
        ] {
            assert_eq!(
                classify(&delivery(code), true),
                FailKind::Unreachable,
                "{code:?}"
            );
        }
    }

    #[test]
    fn the_producer_out_of_step_with_the_broker_does_not_count() {
        for code in [
            C::OutOfOrderSequenceNumber,
            C::DuplicateSequenceNumber,
            C::InvalidProducerEpoch,
            C::InvalidProducerIdMapping,
            C::UnknownProducerId,
            C::GaplessGuarantee,
            C::Inconsistent,
            C::Retry,
        ] {
            assert_eq!(
                classify(&delivery(code), true),
                FailKind::Unreachable,
                "{code:?}"
            );
        }
    }

    #[test]
    fn failures_without_a_reachable_broker_do_not_count() {
        assert_eq!(
            classify(&delivery(C::MessageTimedOut), false),
            FailKind::Unreachable
        );
        assert_eq!(
            classify(&delivery(C::AllBrokersDown), true),
            FailKind::Unreachable
        );
        assert_eq!(
            classify(&delivery(C::BrokerTransportFailure), true),
            FailKind::Unreachable
        );
        // A producer reset after a fatal idempotence error purges its queue: not the event's fault.
        for code in [C::Fatal, C::PurgeQueue, C::PurgeInflight] {
            assert_eq!(
                classify(&delivery(code), true),
                FailKind::Unreachable,
                "{code:?}"
            );
        }
    }
}
