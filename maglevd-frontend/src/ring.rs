//! The replay ring of the server-sent event stream: the last events, so a browser that lost
//! its stream for a moment gets what it missed from `Last-Event-ID` instead of refetching
//! everything.
//!
//! Event ids are `<epoch>-<seq>`: `epoch` names this process's ring (a frontend restart
//! changes it), `seq` counts from 1. The ring keeps at most [`RingLimits::max_events`] events
//! and none older than [`RingLimits::max_age`]. Time comes in as a value (the age of the ring
//! at the call), so the ring is plain data.
//!
//! What [`EventRing::replay`] answers for a `Last-Event-ID`:
//!
//! | `Last-Event-ID` | answer |
//! |---|---|
//! | absent | [`Replay::Fresh`]: nothing to replay, the client starts from its own fetch |
//! | another epoch, malformed, or a seq not yet issued | [`Replay::Resync`] |
//! | `seq`, and every event after it is still in the ring | [`Replay::Events`] (maybe empty) |
//! | `seq`, but events after it were evicted (too old or too many) | [`Replay::Resync`] |

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

/// How much the ring keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingLimits {
    /// The most events kept.
    pub max_events: usize,
    /// The oldest event kept.
    pub max_age: Duration,
}

impl Default for RingLimits {
    /// 2,000 events or 30 s, whichever is less.
    fn default() -> Self {
        Self {
            max_events: 2000,
            max_age: Duration::from_secs(30),
        }
    }
}

/// One event as the SSE stream sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// Its sequence number in the ring's epoch.
    pub seq: u64,
    /// When it was pushed (the ring's clock).
    pub at: Duration,
    /// The SSE event type (`event:` line).
    pub kind: &'static str,
    /// The JSON payload (`data:` line); one line.
    pub data: String,
}

/// What a reconnecting client gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replay {
    /// The client sent no id: nothing to replay.
    Fresh,
    /// The events after the client's id, oldest first.
    Events(Vec<Arc<StoredEvent>>),
    /// The gap cannot be filled: the client must refetch everything.
    Resync,
}

/// The ring of recent events; see the module doc.
#[derive(Debug)]
pub struct EventRing {
    epoch: u64,
    next_seq: u64,
    limits: RingLimits,
    events: VecDeque<Arc<StoredEvent>>,
}

impl EventRing {
    /// An empty ring of `epoch` (distinct per process; the start time in milliseconds does).
    #[must_use]
    pub fn new(epoch: u64, limits: RingLimits) -> Self {
        Self {
            epoch,
            next_seq: 1,
            limits,
            events: VecDeque::with_capacity(limits.max_events.min(4096)),
        }
    }

    /// The ring's epoch.
    #[must_use]
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The SSE id of `seq` in this ring: `<epoch>-<seq>`.
    #[must_use]
    pub fn id_of(&self, seq: u64) -> String {
        format!("{}-{seq}", self.epoch)
    }

    /// The id of the newest event issued (`<epoch>-0` before the first): a client that
    /// refetched everything now is in sync as of this id.
    #[must_use]
    pub fn latest_id(&self) -> String {
        self.id_of(self.next_seq - 1)
    }

    /// How many events are kept now.
    #[must_use]
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether no event is kept.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Appends an event at `now` (which never goes back), evicting what is over the limits;
    /// the stored event.
    pub fn push(&mut self, now: Duration, kind: &'static str, data: String) -> Arc<StoredEvent> {
        let event = Arc::new(StoredEvent {
            seq: self.next_seq,
            at: now,
            kind,
            data,
        });
        self.next_seq += 1;
        self.events.push_back(Arc::clone(&event));
        self.evict(now);
        event
    }

    /// Drops events older than the age limit at `now`, and the oldest ones over the count
    /// limit.
    pub fn evict(&mut self, now: Duration) {
        while self.events.len() > self.limits.max_events {
            self.events.pop_front();
        }
        while let Some(front) = self.events.front() {
            if now.saturating_sub(front.at) > self.limits.max_age {
                self.events.pop_front();
            } else {
                break;
            }
        }
    }

    /// The replay for a client that last saw `last_event_id`, at `now`; see the module doc.
    pub fn replay(&mut self, now: Duration, last_event_id: Option<&str>) -> Replay {
        self.evict(now);
        let Some(id) = last_event_id else {
            return Replay::Fresh;
        };
        let Some(seq) = self.parse_id(id) else {
            return Replay::Resync;
        };
        if seq >= self.next_seq {
            return Replay::Resync;
        }
        // The first event the client has not seen must still be here (or not exist yet).
        let wanted = seq + 1;
        let first_kept = self.events.front().map_or(self.next_seq, |e| e.seq);
        if wanted < first_kept {
            return Replay::Resync;
        }
        let skip = usize::try_from(wanted - first_kept).unwrap_or(usize::MAX);
        Replay::Events(self.events.iter().skip(skip).cloned().collect())
    }

    /// The seq of an id of this epoch.
    fn parse_id(&self, id: &str) -> Option<u64> {
        let (epoch, seq) = id.trim().split_once('-')?;
        if epoch.parse::<u64>().ok()? != self.epoch {
            return None;
        }
        seq.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn seqs(replay: &Replay) -> Vec<u64> {
        match replay {
            Replay::Events(events) => events.iter().map(|e| e.seq).collect(),
            other => panic!("expected events, got {other:?}"),
        }
    }

    #[test]
    fn ids_are_epoch_dash_seq_from_one() {
        let mut ring = EventRing::new(77, RingLimits::default());
        let first = ring.push(secs(0), "backend", "{}".into());
        let second = ring.push(secs(0), "backend", "{}".into());
        assert_eq!(ring.id_of(first.seq), "77-1");
        assert_eq!(ring.id_of(second.seq), "77-2");
    }

    #[test]
    fn replays_what_came_after_the_last_id() {
        let mut ring = EventRing::new(5, RingLimits::default());
        for _ in 0..5 {
            ring.push(secs(1), "backend", "{}".into());
        }
        assert_eq!(seqs(&ring.replay(secs(2), Some("5-2"))), vec![3, 4, 5]);
        assert_eq!(seqs(&ring.replay(secs(2), Some("5-5"))), Vec::<u64>::new());
        assert_eq!(
            seqs(&ring.replay(secs(2), Some("5-0"))),
            vec![1, 2, 3, 4, 5]
        );
        assert_eq!(ring.replay(secs(2), None), Replay::Fresh);
    }

    #[test]
    fn another_epoch_a_future_id_or_garbage_resyncs() {
        let mut ring = EventRing::new(5, RingLimits::default());
        ring.push(secs(0), "backend", "{}".into());
        for id in ["4-1", "5-9", "junk", "5-", "-1", "5-x", ""] {
            assert_eq!(ring.replay(secs(0), Some(id)), Replay::Resync, "{id:?}");
        }
    }

    #[test]
    fn a_gap_older_than_the_age_limit_resyncs() {
        let mut ring = EventRing::new(1, RingLimits::default());
        ring.push(secs(0), "backend", "{}".into());
        ring.push(secs(10), "backend", "{}".into());
        ring.push(secs(40), "backend", "{}".into());
        // Event 2 (at 10 s) is gone at 41 s: a client that saw only 1 must resync.
        assert_eq!(ring.replay(secs(41), Some("1-1")), Replay::Resync);
        assert_eq!(seqs(&ring.replay(secs(41), Some("1-2"))), vec![3]);
        // Once everything aged out, a client that saw the last one is still in sync.
        assert_eq!(
            seqs(&ring.replay(secs(100), Some("1-3"))),
            Vec::<u64>::new()
        );
        assert!(ring.is_empty());
    }

    #[test]
    fn the_count_limit_evicts_the_oldest() {
        let limits = RingLimits {
            max_events: 3,
            max_age: secs(30),
        };
        let mut ring = EventRing::new(1, limits);
        for _ in 0..5 {
            ring.push(secs(0), "log", "{}".into());
        }
        assert_eq!(ring.len(), 3);
        assert_eq!(ring.replay(secs(0), Some("1-1")), Replay::Resync);
        assert_eq!(seqs(&ring.replay(secs(0), Some("1-2"))), vec![3, 4, 5]);
    }

    proptest! {
        /// Whatever the pushes and their times, a replay is either exactly the events after
        /// the id (contiguous, in order, within the limits) or a resync, and a resync happens
        /// only when some event after the id is no longer kept.
        #[test]
        fn replay_is_exact_or_resync(
            steps in proptest::collection::vec(0u64..5_000, 1..300),
            max_events in 1usize..50,
            probe in 0u64..400,
        ) {
            let limits = RingLimits { max_events, max_age: Duration::from_millis(2_000) };
            let mut ring = EventRing::new(9, limits);
            let mut now = Duration::ZERO;
            let mut all = Vec::new();
            for step in &steps {
                now += Duration::from_millis(*step % 700);
                all.push(ring.push(now, "backend", step.to_string()));
            }
            prop_assert!(ring.len() <= max_events);
            let last = all.len() as u64;
            let probe = probe.min(last);
            match ring.replay(now, Some(&format!("9-{probe}"))) {
                Replay::Events(events) => {
                    let got: Vec<u64> = events.iter().map(|e| e.seq).collect();
                    let want: Vec<u64> = (probe + 1..=last).collect();
                    prop_assert_eq!(got, want);
                    for e in &events {
                        prop_assert!(now - e.at <= limits.max_age);
                    }
                }
                Replay::Resync => {
                    // The first missed event must really be gone.
                    let missed = &all[probe as usize];
                    let too_old = now - missed.at > limits.max_age;
                    let too_many = last - missed.seq >= max_events as u64;
                    prop_assert!(too_old || too_many);
                }
                Replay::Fresh => prop_assert!(false, "an id never gives Fresh"),
            }
        }
    }
}
