//! The log records WatchEvents subscribers ask for: a `tracing` layer that hands maglevd's
//! records to any number of subscribers, each at its own level, independent of `--log-level`.
//!
//! The layer sits beside the stdout layer with its own per-layer filter, so `--log-level`
//! filters only stdout. Its filter answers from one atomic, the most verbose level any
//! subscriber wants (or off): with nobody subscribed no record is looked at, let alone
//! formatted, and the global max-level hint stays at what `--log-level` allows, so disabled
//! callsites stay disabled. The hint is rebuilt whenever that most verbose level changes.
//!
//! | subscribers | the layer's filter | cost of a record |
//! |---|---|---|
//! | none | off | none beyond `--log-level`'s |
//! | some, at levels L1..Ln | `level <= max(Li)` and a maglevd target | one broadcast send per record that passes |
//!
//! Only records of this workspace's crates are fed (targets `maglevd`, `maglev_*`, `vpp_*`):
//! the gRPC stack's own records would otherwise describe the sending of themselves.
//! Records go out on a bounded broadcast channel: the layer never waits, and a subscriber that
//! falls behind is told how many it missed.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::SystemTime;

use tokio::sync::broadcast;
use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Filter, Layer};

/// Records buffered for the subscribers of a feed.
pub const FEED_CAPACITY: usize = 1024;

/// One log record, as fed to subscribers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// When it was recorded.
    pub at: SystemTime,
    /// Its level.
    pub level: Level,
    /// Its stable event name (`tracing`'s `name:`).
    pub name: &'static str,
    /// The module that logged it.
    pub target: &'static str,
    /// The structured fields in recording order, values as text (`message` left out when it
    /// repeats the name).
    pub fields: Vec<(&'static str, String)>,
}

/// A feed of log records: cheap to clone; [`LogFeed::layer`] installs it, [`LogFeed::subscribe`]
/// reads it.
#[derive(Clone, Debug)]
pub struct LogFeed {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    records: broadcast::Sender<Arc<LogRecord>>,
    /// The most verbose level subscribed, as [`rank`]; 0 when nobody subscribes.
    max: AtomicU8,
    /// How many subscribers want each level (index `rank - 1`).
    counts: Mutex<[usize; 5]>,
}

/// `ERROR` 1 ... `TRACE` 5: higher is more verbose.
fn rank(level: Level) -> u8 {
    match level {
        Level::ERROR => 1,
        Level::WARN => 2,
        Level::INFO => 3,
        Level::DEBUG => 4,
        Level::TRACE => 5,
    }
}

fn filter_of(rank: u8) -> LevelFilter {
    match rank {
        0 => LevelFilter::OFF,
        1 => LevelFilter::ERROR,
        2 => LevelFilter::WARN,
        3 => LevelFilter::INFO,
        4 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    }
}

/// Whether `target` belongs to this workspace.
fn ours(target: &str) -> bool {
    ["maglevd", "maglev_", "vpp_"]
        .iter()
        .any(|prefix| target.starts_with(prefix))
}

impl Default for LogFeed {
    fn default() -> Self {
        Self::new(FEED_CAPACITY)
    }
}

impl LogFeed {
    /// A feed buffering `capacity` records per subscriber.
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        let (records, _) = broadcast::channel(capacity.max(1));
        Self {
            inner: Arc::new(Inner {
                records,
                max: AtomicU8::new(0),
                counts: Mutex::new([0; 5]),
            }),
        }
    }

    /// The process-wide feed that [`crate::logging::init`] installs.
    pub fn global() -> &'static Self {
        static GLOBAL: OnceLock<LogFeed> = OnceLock::new();
        GLOBAL.get_or_init(Self::default)
    }

    /// The `tracing` layer that feeds this feed, with its per-layer filter.
    pub fn layer<S>(&self) -> impl Layer<S> + Send + Sync + 'static
    where
        S: Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        FeedLayer {
            inner: Arc::clone(&self.inner),
        }
        .with_filter(FeedFilter {
            inner: Arc::clone(&self.inner),
        })
    }

    /// Records at `level` or above from now on, until the subscription is dropped.
    #[must_use]
    pub fn subscribe(&self, level: Level) -> LogSubscription {
        let records = self.inner.records.subscribe();
        let rank = rank(level);
        self.inner.adjust(rank, true);
        LogSubscription {
            records,
            rank,
            inner: Arc::clone(&self.inner),
        }
    }

    /// The most verbose level subscribed now, `OFF` when nobody subscribes.
    #[must_use]
    pub fn max_level(&self) -> LevelFilter {
        filter_of(self.inner.max.load(Ordering::Relaxed))
    }
}

impl Inner {
    /// Counts a subscriber in or out, and rebuilds `tracing`'s interest when the most verbose
    /// level changed.
    fn adjust(&self, rank: u8, add: bool) {
        let changed = {
            let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
            let slot = &mut counts[usize::from(rank - 1)];
            *slot = if add {
                *slot + 1
            } else {
                slot.saturating_sub(1)
            };
            let max = (1..=5u8)
                .rev()
                .find(|r| counts[usize::from(r - 1)] > 0)
                .unwrap_or(0);
            self.max.swap(max, Ordering::Relaxed) != max
        };
        if changed {
            tracing::callsite::rebuild_interest_cache();
        }
    }
}

/// A subscription to a [`LogFeed`]: receive from `records`; records below the subscription's
/// level are the receiver's to skip ([`LogSubscription::wants`]).
#[derive(Debug)]
pub struct LogSubscription {
    /// The records.
    pub records: broadcast::Receiver<Arc<LogRecord>>,
    rank: u8,
    inner: Arc<Inner>,
}

impl LogSubscription {
    /// Whether `record` is at this subscription's level or above.
    #[must_use]
    pub fn wants(&self, record: &LogRecord) -> bool {
        rank(record.level) <= self.rank
    }
}

impl Drop for LogSubscription {
    fn drop(&mut self) {
        self.inner.adjust(self.rank, false);
    }
}

struct FeedFilter {
    inner: Arc<Inner>,
}

impl<S> Filter<S> for FeedFilter {
    fn enabled(&self, meta: &Metadata<'_>, _: &Context<'_, S>) -> bool {
        meta.is_event()
            && rank(*meta.level()) <= self.inner.max.load(Ordering::Relaxed)
            && ours(meta.target())
    }

    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> tracing::subscriber::Interest {
        if meta.is_event() && ours(meta.target()) {
            tracing::subscriber::Interest::sometimes()
        } else {
            tracing::subscriber::Interest::never()
        }
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(filter_of(self.inner.max.load(Ordering::Relaxed)))
    }
}

struct FeedLayer {
    inner: Arc<Inner>,
}

impl<S: Subscriber> Layer<S> for FeedLayer {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let meta = event.metadata();
        let mut fields = Fields {
            name: meta.name(),
            fields: Vec::new(),
        };
        event.record(&mut fields);
        let record = LogRecord {
            at: SystemTime::now(),
            level: *meta.level(),
            name: meta.name(),
            target: meta.target(),
            fields: fields.fields,
        };
        // No receiver is not an error: the last subscriber may have just left.
        let _ = self.inner.records.send(Arc::new(record));
    }
}

/// Collects an event's fields as text.
struct Fields {
    name: &'static str,
    fields: Vec<(&'static str, String)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let mut text = String::new();
        let _ = write!(text, "{value:?}");
        self.push(field, text);
    }
}

impl Fields {
    fn push(&mut self, field: &Field, value: String) {
        if field.name() == "message" && value == self.name {
            return;
        }
        self.fields.push((field.name(), value));
    }
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    fn collect(sub: &mut LogSubscription) -> Vec<Arc<LogRecord>> {
        let mut out = Vec::new();
        while let Ok(r) = sub.records.try_recv() {
            if sub.wants(&r) {
                out.push(r);
            }
        }
        out
    }

    #[test]
    fn each_subscriber_gets_its_own_level_and_nobody_means_off() {
        let feed = LogFeed::new(64);
        let subscriber = tracing_subscriber::registry().with(feed.layer());
        tracing::subscriber::with_default(subscriber, || {
            assert_eq!(feed.max_level(), LevelFilter::OFF);
            let mut info = feed.subscribe(Level::INFO);
            let mut debug = feed.subscribe(Level::DEBUG);
            assert_eq!(feed.max_level(), LevelFilter::DEBUG);
            tracing::debug!(name: "probe-detail", backend = "a", "probe-detail");
            tracing::info!(name: "backend-transition", backend = "a", to = %"up", "backend-transition");
            let names = |v: Vec<Arc<LogRecord>>| v.iter().map(|r| r.name).collect::<Vec<_>>();
            assert_eq!(names(collect(&mut info)), ["backend-transition"]);
            let got = collect(&mut debug);
            assert_eq!(names(got.clone()), ["probe-detail", "backend-transition"]);
            assert_eq!(
                got[1].fields,
                [("backend", "a".to_owned()), ("to", "up".to_owned())]
            );
            assert_eq!(got[1].level, Level::INFO);
            drop(debug);
            assert_eq!(feed.max_level(), LevelFilter::INFO);
            drop(info);
            assert_eq!(feed.max_level(), LevelFilter::OFF);
        });
    }

    #[test]
    fn records_of_other_crates_are_not_fed() {
        let feed = LogFeed::new(64);
        let subscriber = tracing_subscriber::registry().with(feed.layer());
        tracing::subscriber::with_default(subscriber, || {
            let mut sub = feed.subscribe(Level::TRACE);
            tracing::info!(target: "h2::codec", "frame sent");
            tracing::info!(name: "ours", "ours");
            let got = collect(&mut sub);
            assert_eq!(got.len(), 1);
            assert_eq!(got[0].name, "ours");
            assert!(got[0].target.starts_with("maglevd"));
        });
    }

    #[test]
    fn a_slow_subscriber_is_told_how_many_it_missed() {
        let feed = LogFeed::new(4);
        let subscriber = tracing_subscriber::registry().with(feed.layer());
        tracing::subscriber::with_default(subscriber, || {
            let mut sub = feed.subscribe(Level::INFO);
            for i in 0..10 {
                tracing::info!(name: "tick", i, "tick");
            }
            assert!(matches!(
                sub.records.try_recv(),
                Err(broadcast::error::TryRecvError::Lagged(6))
            ));
            assert_eq!(collect(&mut sub).len(), 4);
        });
    }
}
