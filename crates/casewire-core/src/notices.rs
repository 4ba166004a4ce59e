//! What the desktop tells a person unasked (OS notifications), decided from successive looks at
//! the queue: only changes of state, never a steady condition again and again.
//!
//! - A backlog delivered after an outage: "N events delivered".
//! - An event dead-lettered: it will not reach headquarters unless an admin replays it.
//! - The queue past 80 % of its quota: soon new work will be refused.
//!
//! And what the sync badge and the tray icon show at every look: [`SyncState`].

/// One look at the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueLook {
    /// Events waiting (including in flight).
    pub waiting: u64,
    /// Events in the dead letters.
    pub dead_letters: u64,
    /// A broker answered recently.
    pub broker_connected: bool,
    /// Bytes the quota counts.
    pub bytes: u64,
    /// The quota.
    pub quota_bytes: u64,
}

/// Something worth a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// The events that waited through an outage have all been delivered.
    BacklogDelivered {
        /// How many waited at most during the outage.
        count: u64,
    },
    /// Events were moved to the dead letters since the last look.
    DeadLettered {
        /// How many.
        count: u64,
    },
    /// The queue crossed 80 % of its quota.
    QueueNearlyFull {
        /// Percent used.
        percent: u64,
    },
}

/// Follows the queue from look to look.
#[derive(Debug, Default)]
pub struct NoticeWatch {
    last: Option<QueueLook>,
    /// The largest backlog seen since the broker was last lost; `None` while connected.
    outage_backlog: Option<u64>,
    nearly_full: bool,
}

impl NoticeWatch {
    /// What changed since the last look that a person should hear about.
    pub fn observe(&mut self, look: QueueLook) -> Vec<Notice> {
        let mut notices = Vec::new();
        let Some(last) = self.last.replace(look) else {
            // The first look sets the scene: an app started offline with a backlog will tell
            // when that backlog is delivered.
            if !look.broker_connected && look.waiting > 0 {
                self.outage_backlog = Some(look.waiting);
            }
            self.nearly_full = percent(look) >= 80;
            return notices;
        };
        if !look.broker_connected && look.waiting > 0 {
            let seen = self.outage_backlog.unwrap_or(0).max(look.waiting);
            self.outage_backlog = Some(seen);
        } else if let Some(seen) = self.outage_backlog
            && look.waiting == 0
        {
            notices.push(Notice::BacklogDelivered { count: seen });
            self.outage_backlog = None;
        }
        if look.dead_letters > last.dead_letters {
            notices.push(Notice::DeadLettered {
                count: look.dead_letters - last.dead_letters,
            });
        }
        let used = percent(look);
        if used >= 80 && !self.nearly_full {
            notices.push(Notice::QueueNearlyFull { percent: used });
        }
        // Told again only after falling back under 70 %, so hovering at 80 % is one notice.
        self.nearly_full = used >= 80 || (self.nearly_full && used >= 70);
        notices
    }
}

/// How delivery to Kafka is going, as the sync badge and the tray icon show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncState {
    /// Nothing waits: everything reached Kafka.
    Synced,
    /// A broker is reachable and events are on their way.
    Sending,
    /// No broker reachable: events wait on this machine.
    Offline,
    /// The relay reports an error an admin must look at (say, credentials refused) while
    /// events wait.
    Error,
    /// No Kafka brokers are configured: events wait on this machine.
    NotConfigured,
}

impl SyncState {
    /// The state for a look at the queue, whether a relay runs, and whether it reports an
    /// error (an outage is not one: it is told by the broker being unreachable).
    ///
    /// An error counts only while events wait: the relay clears it at the next delivery, and a
    /// stale one (an idle connection dropped, say) must not paint an empty queue red.
    pub fn of(look: QueueLook, relay_running: bool, relay_error: bool) -> SyncState {
        match (
            relay_running,
            look.waiting,
            relay_error,
            look.broker_connected,
        ) {
            (false, _, _, _) => SyncState::NotConfigured,
            (true, 0, _, _) => SyncState::Synced,
            (true, _, true, _) => SyncState::Error,
            (true, _, false, false) => SyncState::Offline,
            (true, _, false, true) => SyncState::Sending,
        }
    }
}

fn percent(look: QueueLook) -> u64 {
    (look.bytes.saturating_mul(100))
        .checked_div(look.quota_bytes)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn look(waiting: u64, connected: bool) -> QueueLook {
        QueueLook {
            waiting,
            broker_connected: connected,
            quota_bytes: 1000,
            ..QueueLook::default()
        }
    }

    #[test]
    fn the_sync_state_names_what_holds_the_waiting_events_back() {
        use SyncState::*;
        let cases = [
            // (waiting, connected, relay running, relay error) → state
            ((0, true, true, false), Synced),
            ((3, true, true, false), Sending),
            ((3, false, true, false), Offline),
            ((3, true, true, true), Error),
            ((3, false, true, true), Error),
            // A stale error with nothing waiting is not shown.
            ((0, true, true, true), Synced),
            // Without a relay nothing leaves, queue or not.
            ((3, false, false, false), NotConfigured),
            ((0, false, false, true), NotConfigured),
        ];
        for ((waiting, connected, running, error), expected) in cases {
            assert_eq!(
                SyncState::of(look(waiting, connected), running, error),
                expected,
                "{waiting} waiting, connected {connected}, running {running}, error {error}"
            );
        }
    }

    #[test]
    fn a_backlog_delivered_after_an_outage_is_told_once_with_its_size() {
        let mut watch = NoticeWatch::default();
        assert!(watch.observe(look(0, true)).is_empty());
        assert!(watch.observe(look(3, false)).is_empty());
        assert!(watch.observe(look(7, false)).is_empty());
        // Reconnected, still draining: nothing yet.
        assert!(watch.observe(look(4, true)).is_empty());
        assert_eq!(
            watch.observe(look(0, true)),
            [Notice::BacklogDelivered { count: 7 }]
        );
        assert!(watch.observe(look(0, true)).is_empty());
    }

    #[test]
    fn steady_sending_while_connected_tells_nothing() {
        let mut watch = NoticeWatch::default();
        for waiting in [0, 5, 2, 0, 1, 0] {
            assert!(watch.observe(look(waiting, true)).is_empty());
        }
    }

    #[test]
    fn new_dead_letters_are_told_as_they_appear() {
        let mut watch = NoticeWatch::default();
        watch.observe(look(1, true));
        let mut dead = look(0, true);
        dead.dead_letters = 2;
        assert_eq!(watch.observe(dead), [Notice::DeadLettered { count: 2 }]);
        assert!(watch.observe(dead).is_empty());
    }

    #[test]
    fn a_nearly_full_queue_is_told_on_crossing_not_while_it_hovers() {
        let mut watch = NoticeWatch::default();
        let at = |bytes| QueueLook {
            bytes,
            ..look(1, false)
        };
        watch.observe(at(500));
        assert_eq!(
            watch.observe(at(810)),
            [Notice::QueueNearlyFull { percent: 81 }]
        );
        assert!(watch.observe(at(790)).is_empty());
        assert!(watch.observe(at(820)).is_empty());
        watch.observe(at(600));
        assert_eq!(
            watch.observe(at(900)),
            [Notice::QueueNearlyFull { percent: 90 }]
        );
    }
}
