//! Shared test scaffolding: a simulator on a private socket, an [`LbSyncer`] on it, backend
//! states the test sets, and captured log lines.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
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
        let dir = tempfile::tempdir().unwrap();
        let api = dir.path().join("api.sock");
        let sim = Simulator::start(SimConfig::new(&api)).await.unwrap();
        let syncer = LbSyncer::start(options(&api), config, states.source());
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

    /// Waits for the next event matching `pred` (20 s at most).
    pub(crate) async fn next_event(
        &mut self,
        mut pred: impl FnMut(&SyncEvent) -> bool,
    ) -> SyncEvent {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let event = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .expect("timed out waiting for a sync event")
                .expect("the event stream is open");
            if pred(&event) {
                return event;
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

/// Log lines captured from a tracing subscriber installed for the current thread.
#[derive(Clone, Default)]
pub(crate) struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// Installs a subscriber writing into the capture for the current thread (use with a
    /// current-thread runtime so the driver task logs here too).
    pub(crate) fn install(&self) -> tracing::subscriber::DefaultGuard {
        let sink = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .with_writer(move || sink.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    /// How many captured lines carry the event `name`.
    pub(crate) fn count(&self, name: &str) -> usize {
        let text = self.text();
        text.lines()
            .filter(|l| l.split_whitespace().any(|w| w == name))
            .count()
    }

    /// The captured text.
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
