//! Shared test scaffolding: a simulator on a private socket, an [`LbSyncer`] on it, backend
//! states the test sets, and captured log lines.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use maglev_core::config::Config;
use maglev_core::weights::BackendState;
use maglev_vpp::backoff::BackoffSettings;
use maglev_vpp::syncer::{LbSyncer, SyncEvent, SyncerOptions};
use tokio::sync::broadcast;
use tokio::time::Instant;
use vpp_sim::{SimConfig, SimHandle, Simulator};

/// A config from YAML text.
pub(crate) fn config(yaml: &str) -> Arc<Config> {
    Arc::new(Config::from_yaml_str("test.yaml", yaml).expect("a valid test config"))
}

/// The `vpp.lb` section of the test configs, with the warmup delays given and a 1 s
/// sync-interval.
pub(crate) fn vpp_section(min: &str, max: &str) -> String {
    vpp_section_with(min, max, "1s")
}

/// The `vpp.lb` section with the warmup delays and the sync-interval given.
pub(crate) fn vpp_section_with(min: &str, max: &str, sync_interval: &str) -> String {
    format!(
        "
  vpp:
    lb:
      ipv4-src-address: 192.0.2.1
      ipv6-src-address: 2001:db8::1
      sync-interval: {sync_interval}
      startup-min-delay: {min}
      startup-max-delay: {max}"
    )
}

/// Backend states the test controls; the syncer reads them through a closure.
#[derive(Clone, Default)]
pub(crate) struct States(Arc<Mutex<HashMap<String, BackendState>>>);

impl States {
    /// Every backend of `config` in `state`.
    pub(crate) fn all(config: &Config, state: BackendState) -> Self {
        let states = Self::default();
        for name in config.backends.keys() {
            states.0.lock().unwrap().insert(name.clone(), state);
        }
        states
    }

    /// Sets a state, returning the previous one (`unknown` when unset).
    pub(crate) fn set(&self, backend: &str, state: BackendState) -> BackendState {
        self.0
            .lock()
            .unwrap()
            .insert(backend.to_owned(), state)
            .unwrap_or_default()
    }

    /// The source the syncer reads.
    pub(crate) fn source(
        &self,
    ) -> impl Fn() -> HashMap<String, BackendState> + Send + Sync + 'static {
        let states = Arc::clone(&self.0);
        move || states.lock().unwrap().clone()
    }
}

/// A simulator, and a syncer programming it.
pub(crate) struct Harness {
    pub(crate) _dir: tempfile::TempDir,
    pub(crate) api: PathBuf,
    pub(crate) sim: SimHandle,
    pub(crate) states: States,
    pub(crate) syncer: LbSyncer,
    pub(crate) events: broadcast::Receiver<SyncEvent>,
}

/// Options with short reconnect delays.
pub(crate) fn options(api: &std::path::Path) -> SyncerOptions {
    let mut options = SyncerOptions::new(api);
    options.backoff = BackoffSettings::new(Duration::from_millis(20), Duration::from_millis(200))
        .expect("valid backoff");
    options
}

impl Harness {
    /// A fresh simulator and a syncer with `states` on it.
    pub(crate) async fn start(config: Arc<Config>, states: States) -> Self {
        Self::start_with(config, states, |_| {}).await
    }

    /// [`Harness::start`] with options changed by `tune`.
    pub(crate) async fn start_with(
        config: Arc<Config>,
        states: States,
        tune: impl FnOnce(&mut SyncerOptions),
    ) -> Self {
        Self::start_in(&tracing::Span::none(), config, states, tune).await
    }

    /// [`Harness::start_with`], the syncer started within `span`.
    pub(crate) async fn start_in(
        span: &tracing::Span,
        config: Arc<Config>,
        states: States,
        tune: impl FnOnce(&mut SyncerOptions),
    ) -> Self {
        Self::start_full(span, config, states, false, tune).await
    }

    /// A harness whose simulator serves a stats socket (when `sim_stats`) and whose syncer
    /// is told about it either way, scraping every 20 ms; `tune` changes the options further.
    pub(crate) async fn start_with_stats(
        span: &tracing::Span,
        config: Arc<Config>,
        states: States,
        sim_stats: bool,
        tune: impl FnOnce(&mut SyncerOptions),
    ) -> Self {
        Self::start_full(span, config, states, sim_stats, |options| {
            options.stats_socket = Some(options.api_socket.with_file_name("stats.sock"));
            options.scrape_interval = Duration::from_millis(20);
            tune(options);
        })
        .await
    }

    async fn start_full(
        span: &tracing::Span,
        config: Arc<Config>,
        states: States,
        sim_stats: bool,
        tune: impl FnOnce(&mut SyncerOptions),
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let api = dir.path().join("api.sock");
        let mut sim_config = SimConfig::new(&api);
        if sim_stats {
            sim_config.stats_socket = Some(dir.path().join("stats.sock"));
        }
        let sim = Simulator::start(sim_config).await.unwrap();
        let mut options = options(&api);
        tune(&mut options);
        let syncer = span.in_scope(|| LbSyncer::start(options, config, states.source()));
        Self::assemble(dir, api, sim, states, syncer)
    }

    fn assemble(
        dir: tempfile::TempDir,
        api: PathBuf,
        sim: SimHandle,
        states: States,
        syncer: LbSyncer,
    ) -> Self {
        let events = syncer.subscribe();
        Self {
            _dir: dir,
            api,
            sim,
            states,
            syncer,
            events,
        }
    }

    /// Changes a backend's state the way the checker would: the state, then the transition.
    pub(crate) fn set(&self, backend: &str, to: BackendState) {
        let from = self.states.set(backend, to);
        self.syncer.transition(backend, from, to);
    }

    /// Forgets the events received so far.
    pub(crate) fn drain_events(&mut self) {
        while self.events.try_recv().is_ok() {}
    }

    /// Waits for the next event matching `pred` (60 s at most: a 10,000-operation sync from a debug build on a loaded machine).
    pub(crate) async fn next_event(
        &mut self,
        mut pred: impl FnMut(&SyncEvent) -> bool,
    ) -> SyncEvent {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let received = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .expect("timed out waiting for a sync event");
            match received {
                Ok(event) if pred(&event) => return event,
                // A big sync's per-op events can outrun the channel: skip what was lost.
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => panic!("the event stream closed"),
            }
        }
    }

    /// Waits for the end of a sync.
    pub(crate) async fn sync_done(&mut self) -> Arc<maglev_vpp::syncer::SyncSummary> {
        match self
            .next_event(|e| matches!(e, SyncEvent::SyncDone(_)))
            .await
        {
            SyncEvent::SyncDone(summary) => summary,
            _ => unreachable!(),
        }
    }

    /// Stops the syncer and the simulator.
    pub(crate) async fn stop(self) {
        self.syncer.shutdown().await;
        self.sim.shutdown();
    }
}

/// Polls `ok` until it holds (20 s at most).
pub(crate) async fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The used ASes of the VIP on `vip` as address -> weight, `None` when the VIP does not exist.
pub(crate) fn vip_ases(sim: &SimHandle, vip: &str) -> Option<BTreeMap<IpAddr, u8>> {
    let vip: IpAddr = vip.parse().unwrap();
    sim.with_lb(|lb| {
        let exists = lb.vip_dump().iter().any(|v| v.prefix == vip);
        exists.then(|| {
            lb.as_dump(None)
                .into_iter()
                .filter(|a| a.vip.prefix == vip && a.flags & 1 == 1)
                .map(|a| (a.address, a.weight))
                .collect()
        })
    })
}

/// Every used AS's weight, whatever its VIP.
pub(crate) fn all_weights(sim: &SimHandle) -> BTreeMap<IpAddr, u8> {
    sim.with_lb(|lb| {
        lb.as_dump(None)
            .into_iter()
            .filter(|a| a.flags & 1 == 1)
            .map(|a| (a.address, a.weight))
            .collect()
    })
}

/// An address.
pub(crate) fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// How many `lb_as_set_weight` with `is_flush` the simulator got for AS `address`.
pub(crate) fn flushes(sim: &SimHandle, address: &str) -> usize {
    let address = ip(address);
    sim.journal()
        .iter()
        .filter_map(|e| {
            e.message
                .as_any()
                .downcast_ref::<vpp_binapi::api::lb::LbAsSetWeight>()
        })
        .filter(|m| m.is_flush && m.as_address.to_ip().ok() == Some(address))
        .count()
}

/// How many journal entries are `lb_conf`.
pub(crate) fn conf_pushes(sim: &SimHandle) -> usize {
    sim.journal().iter().filter(|e| e.name == "lb_conf").count()
}

/// Log event names captured from the syncers started within one capture's span.
///
/// One global subscriber serves the whole test binary (a thread-local one would miss events
/// whose callsites other tests' threads registered first); it files each event under the
/// `capture` span it was recorded in, if any. `LbSyncer` runs its driver in the span current
/// at `start`.
#[derive(Clone)]
pub(crate) struct Captured {
    span: tracing::Span,
    lines: Arc<Mutex<Vec<String>>>,
}

type Sinks = Mutex<HashMap<u64, Arc<Mutex<Vec<String>>>>>;

fn sinks() -> &'static Sinks {
    static SINKS: std::sync::OnceLock<Sinks> = std::sync::OnceLock::new();
    SINKS.get_or_init(|| {
        use tracing_subscriber::layer::SubscriberExt as _;
        let subscriber = tracing_subscriber::registry().with(Router);
        tracing::subscriber::set_global_default(subscriber).expect("one global subscriber");
        Mutex::new(HashMap::new())
    })
}

/// The capture id of a `capture` span, kept in its extensions.
struct CaptureId(u64);

/// Files events under their `capture` span.
struct Router;

/// Reads one `u64` or `message` field.
#[derive(Default)]
struct Fields {
    capture: Option<u64>,
    message: Option<String>,
}

impl tracing::field::Visit for Fields {
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        if field.name() == "capture" {
            self.capture = Some(value);
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = Some(format!("{value:?}"));
        }
    }
}

impl<S> tracing_subscriber::Layer<S> for Router
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let (Some(capture), Some(span)) = (fields.capture, ctx.span(id)) {
            span.extensions_mut().insert(CaptureId(capture));
        }
    }

    fn on_event(&self, event: &tracing::Event<'_>, ctx: tracing_subscriber::layer::Context<'_, S>) {
        let Some(scope) = ctx.event_scope(event) else {
            return;
        };
        for span in scope {
            let Some(id) = span.extensions().get::<CaptureId>().map(|c| c.0) else {
                continue;
            };
            let sink = sinks().lock().unwrap().get(&id).cloned();
            if let Some(sink) = sink {
                let mut fields = Fields::default();
                event.record(&mut fields);
                sink.lock()
                    .unwrap()
                    .push(fields.message.unwrap_or_default());
            }
            return;
        }
    }
}

impl Captured {
    /// A new capture; start syncers within [`Captured::span`].
    pub(crate) fn new() -> Self {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let lines = Arc::new(Mutex::new(Vec::new()));
        sinks().lock().unwrap().insert(id, Arc::clone(&lines));
        let span = tracing::info_span!("capture", capture = id);
        Self { span, lines }
    }

    /// The span to start syncers in.
    pub(crate) fn span(&self) -> &tracing::Span {
        &self.span
    }

    /// How many captured events carry the event `name` as their message.
    pub(crate) fn count(&self, name: &str) -> usize {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| *l == name)
            .count()
    }

    /// The captured event names, except the per-operation ones.
    pub(crate) fn summary(&self) -> Vec<String> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| !l.starts_with("vpp-lbsync-as-") && !l.starts_with("vpp-lbsync-vip-"))
            .cloned()
            .collect()
    }
}
