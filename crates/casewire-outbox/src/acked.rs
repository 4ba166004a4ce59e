//! Delivered events whose rows are not yet deleted.
//!
//! Deleting a queue row is the dearest thing the outbox does: SQLite removes it from the table
//! and from the `event_id` index, rebalances the pages it leaves underfull, and writes each of
//! them to the WAL. Done as each delivery report arrived, it halved the rate at which the relay
//! drained a backlog. So [`Outbox::ack`](crate::Outbox::ack) only sets the delivered order keys'
//! bits in `outbox_delivered` (one 512-byte bitmap per block of 4,096 order keys, so a burst of
//! reports from several partitions, interleaved, still touches one or two rows) and moves the
//! events' counts from their priority buckets to the "delivered" bucket. A row whose bit is set
//! is no longer queued: claims, stats and failures skip it.
//!
//! The rows are deleted later, a chunk per transaction ([`WriteTx::sweep`]):
//! - by the writer, when no backlog is being drained (the last claim did not fill its window,
//!   so sweeping never competes with a drain) and it has been idle for a moment
//!   ([`OutboxConfig::sweep_after_idle`](crate::OutboxConfig::sweep_after_idle)) or has not
//!   swept for 100 ms (a steady load leaves it no idle moment);
//! - by an enqueue that would otherwise be refused for want of space: the quota counts the
//!   delivered rows too, so the file never outgrows it to make a drain faster.
//!
//! Each sweep is all or nothing (a savepoint of its own). Acknowledgements trust what a claim
//! recorded of an event (priority, size) only if no rows were deleted since that claim's
//! snapshot, committed or not (`Shared::removals` against `InFlight::removals_committed`);
//! otherwise they read the row.

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, params};

use crate::Error;
use crate::schema::DELIVERED_BUCKET;
use crate::writer::WriteTx;

/// How long the writer waits with nothing to do before it deletes delivered rows, by default.
pub const DEFAULT_SWEEP_AFTER_IDLE: Duration = Duration::from_millis(2);

/// Most rows one sweep transaction deletes: a bound on how long it holds the writer (a few
/// milliseconds).
pub(crate) const SWEEP_CHUNK: usize = 1_000;

/// Order keys per bitmap row.
const BLOCK: i64 = 4_096;
const WORDS: usize = (BLOCK / 64) as usize;

type Bits = Box<[u64; WORDS]>;

fn split(seq: i64) -> (i64, usize) {
    (seq.div_euclid(BLOCK), seq.rem_euclid(BLOCK) as usize)
}

fn decode(blob: &[u8]) -> Bits {
    let mut bits = Box::new([0u64; WORDS]);
    for (word, chunk) in bits.iter_mut().zip(blob.chunks_exact(8)) {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(chunk);
        *word = u64::from_le_bytes(bytes);
    }
    bits
}

fn encode(bits: &[u64; WORDS]) -> Vec<u8> {
    bits.iter().flat_map(|w| w.to_le_bytes()).collect()
}

fn is_set(bits: &[u64; WORDS], offset: usize) -> bool {
    bits[offset / 64] & (1 << (offset % 64)) != 0
}

/// Reads one block's bitmap as the connection sees it.
fn read_block(conn: &Connection, block: i64) -> Result<Option<Bits>, Error> {
    Ok(conn
        .prepare_cached("SELECT bits FROM outbox_delivered WHERE block = ?1")?
        .query_row([block], |r| r.get::<_, Vec<u8>>(0))
        .optional()?
        .map(|blob| decode(&blob)))
}

/// The delivered order keys as committed: the outbox mirrors them in memory for claims and
/// stats, and a tool reading an outbox file through a connection of its own (a test looking at
/// the queue while the outbox is open) uses them to tell queued rows from delivered ones.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Delivered(BTreeMap<i64, Bits>);

impl Delivered {
    /// Reads every block as `conn` sees it.
    pub fn load(conn: &Connection) -> Result<Delivered, Error> {
        let mut stmt = conn.prepare_cached("SELECT block, bits FROM outbox_delivered")?;
        let blocks = stmt
            .query_map([], |r| Ok((r.get(0)?, decode(&r.get::<_, Vec<u8>>(1)?))))?
            .collect::<Result<_, _>>()?;
        Ok(Delivered(blocks))
    }

    /// Re-reads what a commit changed.
    pub(crate) fn reload(&mut self, conn: &Connection, touched: &Touched) -> Result<(), Error> {
        match touched {
            Touched::Nothing => {}
            Touched::Blocks(blocks) => {
                for &block in blocks {
                    match read_block(conn, block)? {
                        Some(bits) => self.0.insert(block, bits),
                        None => self.0.remove(&block),
                    };
                }
            }
            Touched::All => *self = Delivered::load(conn)?,
        }
        Ok(())
    }

    /// Whether the event with order key `seq` was delivered (its row awaits deletion).
    pub fn contains(&self, seq: i64) -> bool {
        let (block, offset) = split(seq);
        self.0.get(&block).is_some_and(|bits| is_set(bits, offset))
    }

    /// The first order key from `seq` on that is not delivered.
    pub(crate) fn next_undelivered(&self, seq: i64) -> i64 {
        let mut at = seq;
        loop {
            let (block, offset) = split(at);
            let Some(bits) = self.0.get(&block) else {
                return at;
            };
            let mut word = offset / 64;
            let mut mask = u64::MAX << (offset % 64);
            while word < WORDS {
                let clear = !bits[word] & mask;
                if clear != 0 {
                    return block * BLOCK + (word * 64) as i64 + i64::from(clear.trailing_zeros());
                }
                word += 1;
                mask = u64::MAX;
            }
            at = (block + 1) * BLOCK;
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Which blocks a write changed, to re-read after its commit.
#[derive(Debug, Default)]
pub(crate) enum Touched {
    #[default]
    Nothing,
    Blocks(BTreeSet<i64>),
    All,
}

impl Touched {
    fn add(&mut self, block: i64) {
        match self {
            Touched::Nothing => *self = Touched::Blocks(BTreeSet::from([block])),
            Touched::Blocks(blocks) => {
                blocks.insert(block);
            }
            Touched::All => {}
        }
    }

    pub(crate) fn merge(&mut self, other: Touched) {
        match other {
            Touched::Nothing => {}
            Touched::All => *self = Touched::All,
            Touched::Blocks(blocks) => blocks.into_iter().for_each(|b| self.add(b)),
        }
    }

    pub(crate) fn is_nothing(&self) -> bool {
        matches!(self, Touched::Nothing)
    }
}

impl WriteTx<'_> {
    /// Marks the queued rows among `seqs` delivered. Returns how many were queued; order keys
    /// not queued (unknown, already delivered, dead-lettered) are ignored.
    pub(crate) fn mark_delivered(&self, seqs: &[i64]) -> Result<usize, Error> {
        // An event in flight since the last deletion of rows still has its row, as its claim
        // saw it: no need to read it again (reading was half the cost of an acknowledgement).
        // The rest are looked up, in one statement (`rarray`).
        let removals = self.shared.removals.load(Ordering::SeqCst);
        let mut rows: Vec<(i64, i64, i64)> = Vec::with_capacity(seqs.len());
        let mut unknown = Vec::new();
        {
            let in_flight = self.shared.in_flight();
            for &seq in seqs {
                match in_flight.events.get(&seq) {
                    Some(claimed) if claimed.removals == removals => {
                        rows.push((seq, i64::from(claimed.priority), claimed.size));
                    }
                    _ => unknown.push(SqlValue::Integer(seq)),
                }
            }
        }
        if !unknown.is_empty() {
            let mut stmt = self.prepare_cached(
                "SELECT seq, priority, length(payload) FROM outbox_events WHERE seq IN rarray(?1)",
            )?;
            let found = stmt.query_map([Rc::new(unknown)], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?;
            for row in found {
                rows.push(row?);
            }
        }
        rows.sort_unstable_by_key(|r| r.0);
        rows.dedup_by_key(|r| r.0);
        let mut by_priority = [(0i64, 0i64); 4];
        let mut marked = 0;
        for same_block in rows.chunk_by(|a, b| split(a.0).0 == split(b.0).0) {
            let block = split(same_block[0].0).0;
            let mut bits = read_block(self, block)?.unwrap_or_else(|| Box::new([0; WORDS]));
            let mut changed = false;
            for &(seq, priority, len) in same_block {
                let offset = split(seq).1;
                if is_set(&bits, offset) {
                    continue;
                }
                bits[offset / 64] |= 1 << (offset % 64);
                changed = true;
                marked += 1;
                let bucket = &mut by_priority[usize::try_from(priority).unwrap_or(3).min(3)];
                bucket.0 += 1;
                bucket.1 += len;
            }
            if changed {
                self.store_block(block, &bits)?;
            }
        }
        if marked == 0 {
            return Ok(0);
        }
        let (events, bytes) = by_priority
            .iter()
            .fold((0, 0), |(e, b), &(de, db)| (e + de, b + db));
        for (priority, &(events, bytes)) in by_priority.iter().enumerate() {
            if events > 0 {
                self.add_to_counter(priority as i64, -events, -bytes)?;
            }
        }
        self.add_to_counter(DELIVERED_BUCKET, events, bytes)?;
        Ok(marked)
    }

    /// Whether the event `seq` was delivered (as this transaction sees it).
    pub(crate) fn is_delivered(&self, seq: i64) -> Result<bool, Error> {
        let (block, offset) = split(seq);
        Ok(read_block(self, block)?.is_some_and(|bits| is_set(&bits, offset)))
    }

    /// Deletes up to `max_rows` delivered rows, lowest order keys first. Returns how many. All or
    /// nothing, in a savepoint of its own (an enqueue sweeps without one of its caller's).
    pub(crate) fn sweep(&self, max_rows: usize) -> Result<usize, Error> {
        self.prepare_cached("SAVEPOINT sweep")?.execute([])?;
        let result = self.sweep_unguarded(max_rows);
        if result.is_err() && !self.is_autocommit() {
            self.prepare_cached("ROLLBACK TO sweep")?.execute([])?;
        }
        if !self.is_autocommit() {
            self.prepare_cached("RELEASE sweep")?.execute([])?;
        }
        if result.is_err() {
            // What was read back into the claims' copy may be gone again.
            *self.delivered_touched.borrow_mut() = Touched::All;
        }
        result
    }

    fn sweep_unguarded(&self, max_rows: usize) -> Result<usize, Error> {
        let mut swept = 0;
        let mut found = false;
        let mut after = i64::MIN;
        while swept < max_rows {
            let Some((block, blob)): Option<(i64, Vec<u8>)> = self
                .prepare_cached(
                    "SELECT block, bits FROM outbox_delivered WHERE block > ?1
                      ORDER BY block LIMIT 1",
                )?
                .query_row([after], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?
            else {
                break;
            };
            found = true;
            after = block;
            let mut bits = decode(&blob);
            let mut seqs = Vec::new();
            'words: for (w, word) in bits.iter_mut().enumerate() {
                while *word != 0 {
                    if swept + seqs.len() == max_rows {
                        break 'words;
                    }
                    let bit = word.trailing_zeros();
                    *word &= !(1 << bit);
                    seqs.push(SqlValue::Integer(
                        block * BLOCK + (w * 64) as i64 + i64::from(bit),
                    ));
                }
            }
            swept += seqs.len();
            self.note_removal();
            let sizes: Vec<i64> = self
                .prepare_cached(
                    "DELETE FROM outbox_events WHERE seq IN rarray(?1) RETURNING length(payload)",
                )?
                .query_map([Rc::new(seqs)], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            self.add_to_counter(
                DELIVERED_BUCKET,
                -(sizes.len() as i64),
                -sizes.iter().sum::<i64>(),
            )?;
            self.store_block(block, &bits)?;
        }
        if !found {
            // Nothing to sweep, yet the writer thought there was: re-read every mark.
            *self.delivered_touched.borrow_mut() = Touched::All;
        }
        Ok(swept)
    }

    /// Clears `seq`'s delivered bit if it is set, giving its counts back to its priority.
    pub(crate) fn unmark_delivered(&self, seq: i64, priority: i64, size: i64) -> Result<(), Error> {
        let (block, offset) = split(seq);
        let Some(mut bits) = read_block(self, block)? else {
            return Ok(());
        };
        if !is_set(&bits, offset) {
            return Ok(());
        }
        tracing::error!(
            seq,
            "a dead letter was marked delivered; unmarked on replay"
        );
        bits[offset / 64] &= !(1 << (offset % 64));
        self.store_block(block, &bits)?;
        self.add_to_counter(DELIVERED_BUCKET, -1, -size)?;
        self.add_to_counter(priority, 1, size)?;
        Ok(())
    }

    /// Writes one block's bitmap back (a block with no bit left is deleted), for the claims'
    /// copy to re-read after the commit.
    fn store_block(&self, block: i64, bits: &[u64; WORDS]) -> Result<(), Error> {
        if bits.iter().all(|&w| w == 0) {
            self.prepare_cached("DELETE FROM outbox_delivered WHERE block = ?1")?
                .execute([block])?;
        } else {
            self.prepare_cached(
                "INSERT OR REPLACE INTO outbox_delivered (block, bits) VALUES (?1, ?2)",
            )?
            .execute(params![block, encode(bits)])?;
        }
        self.delivered_touched.borrow_mut().add(block);
        Ok(())
    }

    /// Records that this job deletes queue rows, so acknowledgements stop trusting older claims.
    pub(crate) fn note_removal(&self) {
        self.shared.removals.fetch_add(1, Ordering::SeqCst);
    }

    /// Forgets every delivered mark (the rows are being deleted with the queue).
    pub(crate) fn forget_delivered(&self) -> Result<(), Error> {
        self.execute("DELETE FROM outbox_delivered", [])?;
        *self.delivered_touched.borrow_mut() = Touched::All;
        Ok(())
    }

    /// Bytes of delivered rows not yet deleted.
    pub(crate) fn delivered_bytes(&self) -> Result<i64, Error> {
        Ok(self
            .prepare_cached("SELECT bytes FROM outbox_counters WHERE bucket = ?1")?
            .query_row([DELIVERED_BUCKET], |r| r.get(0))?)
    }

    /// Adds to a counter row: deletes from `outbox_events` are counted here, not by trigger,
    /// since whether a deleted row was queued or delivered is known only to the outbox.
    pub(crate) fn add_to_counter(&self, bucket: i64, events: i64, bytes: i64) -> Result<(), Error> {
        self.prepare_cached(
            "UPDATE outbox_counters SET events = events + ?2, bytes = bytes + ?3 WHERE bucket = ?1",
        )?
        .execute(params![bucket, events, bytes])?;
        Ok(())
    }
}
