//! `/metrics` (OpenMetrics text, or the Prometheus text format 0.0.4 for clients that do not
//! ask for OpenMetrics: [`Format`]) and `/healthz` on `--metrics-addr`.
//!
//! Nothing here is updated on the hot paths of the checker or the sync engine: a scrape reads
//! their snapshots ([`Metrics`]) and renders every series then, so it
//! never blocks the checker's scheduler or the reconciler. The split:
//!
//! | data | kept by | rendered as |
//! |---|---|---|
//! | backend state, rise/fall counter, enabled flag | the checker ([`Checker::statuses`]) | `maglev_backend_state{backend,state}` (1 for the current state), `maglev_backend_health{backend}`, `maglev_backend_enabled{backend}` |
//! | effective weights, frontend state and active pool | computed from the config, the states and the overrides | `maglev_frontend_pool_backend_weight{frontend,pool,backend}`, `maglev_frontend_state{frontend,state}`, `maglev_frontend_active_pool{frontend,pool}` |
//! | bucket share | the Maglev table of each frontend's desired VIP (as VPP builds it), kept while its ASes and weights stay the same | `maglev_frontend_pool_backend_buckets{frontend,pool,backend}` (0 for every membership but a backend's first, which VPP gets) |
//! | gRPC calls | [`GrpcRequests`], a tower layer on the API server | `maglev_grpc_requests_total{method,code}` (served methods and `unknown`; the 17 codes) |
//! | probes by result and code, probe durations | [`ProbeRecorder`], fed by [`MeteredProber`] around the real prober | `maglev_probe_total{backend,type,result,code}`, `maglev_probe_duration_seconds{backend,type}` |
//! | transitions | [`TransitionCounts`], fed from the checker's broadcast | `maglev_backend_transitions_total{backend,from,to}` |
//! | VPP session | [`LbSyncer::snapshot`] | `maglev_vpp_connected`, `maglev_vpp_uptime_seconds`, `maglev_vpp_connected_seconds`, `maglev_vpp_info{version,build_date,pid}` |
//! | API messages | [`ApiCounters`] (the client's metrics hook) | `maglev_vpp_api_total{msg,direction,result}` |
//! | syncs | [`LbSyncer::sync_metrics`] | `maglev_vpp_lbsync_total{scope,kind}` (zero kinds left out), `maglev_vpp_lbsync_duration_seconds`, `maglev_vpp_lbsync_last_success_timestamp_seconds` |
//! | VIP counters | [`LbSyncer::counters`] | `vip_packets_total{frontend,vip,kind}`, `vip_route_packets_total{frontend,vip}`, `vip_route_bytes_total{frontend,vip}` |
//! | this build | the crate version | `maglev_build_info{version}` |
//!
//! Every label value comes from the config (backend, frontend, pool names, VIPs), from closed
//! sets (states, codes, kinds) or from VPP's message table: none from unbounded input.
//! The VPP side's figures are plain data in `maglev_vpp::metrics`; only this module knows
//! Prometheus.
//!
//! The text is written by this module's own small writer into one `String`: byte for byte what
//! `prometheus-client`'s encoder writes (the tests compare the two), about four times faster on
//! 10,000 backends, where that encoder's generic path dominated a scrape (see BENCHMARKS.md).

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use maglev_core::config::Config;
use maglev_core::desired::{desired_vip, vip_key};
use maglev_core::plan::Vip;
use maglev_core::weights::{BackendState, BackendStates, FrontendState};
use maglev_health::checker::{BackendSpec, BackendStatus, Checker, Prober};
use maglev_health::machine::Transition;
use maglev_health::probe::{ProbeKind, ProbeSpec};
use maglev_health::result::ProbeResult;
use maglev_vpp::counters::LbCounter;
use maglev_vpp::metrics::{ApiCounters, DurationHistogram};
use maglev_vpp::syncer::{ConnectionState, LbSyncer};
use tokio::sync::{broadcast, watch};

use crate::grpc::requests::GrpcRequests;

/// The exposition format of a scrape, negotiated from the request's `Accept` header as
/// Prometheus's own clients do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics 1.0 text, what Prometheus asks for: a counter's `# HELP` and `# TYPE` name
    /// its family (`maglev_probe`, samples `maglev_probe_total`), `# EOF` ends the scrape.
    OpenMetrics,
    /// The Prometheus text format 0.0.4, for every other client (curl, `promtool check
    /// metrics`): a counter's `# HELP` and `# TYPE` name its `_total` sample, no `# EOF`.
    Text,
}

impl Format {
    /// OpenMetrics when `accept` names it, the text format otherwise.
    #[must_use]
    pub fn negotiate(accept: Option<&str>) -> Self {
        if accept.is_some_and(|a| a.contains("application/openmetrics-text")) {
            Self::OpenMetrics
        } else {
            Self::Text
        }
    }

    /// The `Content-Type` of a scrape in this format.
    #[must_use]
    pub fn content_type(self) -> &'static str {
        match self {
            Self::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Self::Text => "text/plain; version=0.0.4; charset=utf-8",
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The `type` label of a probe.
fn probe_type(spec: &ProbeSpec) -> &'static str {
    match &spec.kind {
        ProbeKind::Tcp { tls: None, .. } => "tcp",
        ProbeKind::Tcp { tls: Some(_), .. } => "tcp+tls",
        ProbeKind::Http(p) if p.tls.is_some() => "https",
        ProbeKind::Http(_) => "http",
        ProbeKind::Icmp => "icmp",
        _ => "other",
    }
}

/// The backends probed at each address, with their probe spec.
type BackendNames = HashMap<IpAddr, Vec<(ProbeSpec, Arc<str>)>>;

/// One `maglev_backend_transitions_total` series: backend, from, to.
type TransitionKey = (Arc<str>, BackendState, BackendState);

/// One `maglev_probe_total` series.
type ProbeKey = (Arc<str>, &'static str, &'static str, &'static str);

#[derive(Debug, Default)]
struct ProbeData {
    totals: HashMap<ProbeKey, u64>,
    durations: HashMap<(Arc<str>, &'static str), DurationHistogram>,
}

/// Probe results and durations per backend, and which backend a probe is for.
///
/// The checker hands its prober the spec and the address only; the recorder knows each
/// backend's (address, spec) from the config ([`ProbeRecorder::set_backends`]). Two backends
/// with the same address and the same check are counted under the first one's name.
/// A probe is named when it starts and counted when it ends, if that name is still listed
/// for its address then: a probe in flight across a reload that renamed or removed its
/// backend is not counted, so a dropped name never comes back.
#[derive(Debug, Clone, Default)]
pub struct ProbeRecorder {
    names: Arc<Mutex<BackendNames>>,
    data: Arc<Mutex<ProbeData>>,
}

impl ProbeRecorder {
    /// Names the backends: `(name, address, spec)` for every backend with a health check.
    /// Counts of backends no longer listed are dropped.
    pub fn set_backends<'a>(
        &self,
        backends: impl IntoIterator<Item = (&'a str, IpAddr, &'a ProbeSpec)>,
    ) {
        let mut names = BackendNames::new();
        for (name, address, spec) in backends {
            names
                .entry(address)
                .or_default()
                .push((spec.clone(), Arc::from(name)));
        }
        let keep: std::collections::HashSet<&str> =
            names.values().flatten().map(|(_, n)| &**n).collect();
        // Names, then data (as `record_named`): a probe ending now is counted before its
        // name's counts are dropped, or not at all.
        let mut current = lock(&self.names);
        {
            let mut data = lock(&self.data);
            data.totals.retain(|k, _| keep.contains(&*k.0));
            data.durations.retain(|k, _| keep.contains(&*k.0));
        }
        drop(keep);
        *current = names;
    }

    /// Counts one probe result of `backend` at `target` if `backend` is still the name of a
    /// backend probed there.
    fn record_named(
        &self,
        backend: &Arc<str>,
        target: IpAddr,
        kind: &'static str,
        result: &ProbeResult,
    ) {
        let names = lock(&self.names);
        let listed = names
            .get(&target)
            .is_some_and(|at| at.iter().any(|(_, n)| n == backend));
        if listed {
            self.record(backend, kind, result);
        }
    }

    fn backend_of(&self, spec: &ProbeSpec, target: IpAddr) -> Option<Arc<str>> {
        let names = lock(&self.names);
        names
            .get(&target)?
            .iter()
            .find(|(s, _)| s == spec)
            .map(|(_, n)| Arc::clone(n))
    }

    /// Names the backends of checker specs ([`ProbeRecorder::set_backends`]).
    pub fn set_specs(&self, specs: &[BackendSpec]) {
        self.set_backends(specs.iter().filter_map(|b| {
            b.check
                .as_ref()
                .map(|c| (b.name.as_str(), b.address, &c.probe))
        }));
    }

    /// Counts one probe result of `backend`.
    pub fn record(&self, backend: &Arc<str>, kind: &'static str, result: &ProbeResult) {
        let outcome = if result.is_pass() {
            "success"
        } else {
            "failure"
        };
        let mut data = lock(&self.data);
        *data
            .totals
            .entry((Arc::clone(backend), kind, outcome, result.code.as_str()))
            .or_default() += 1;
        data.durations
            .entry((Arc::clone(backend), kind))
            .or_default()
            .observe(result.elapsed);
    }
}

/// A [`Prober`] that counts and times every probe of the prober it wraps in a
/// [`ProbeRecorder`], and logs `probe-start` and `probe-done` at DEBUG.
#[derive(Debug)]
pub struct MeteredProber<P> {
    inner: P,
    recorder: ProbeRecorder,
}

impl<P: Prober> MeteredProber<P> {
    /// Wraps `inner`, recording into `recorder`.
    pub fn new(inner: P, recorder: ProbeRecorder) -> Self {
        Self { inner, recorder }
    }

    /// The wrapped prober.
    pub fn inner(&self) -> &P {
        &self.inner
    }
}

impl<P: Prober> Prober for MeteredProber<P> {
    fn probe(&self, spec: &ProbeSpec, target: IpAddr) -> impl Future<Output = ProbeResult> + Send {
        let backend = self.recorder.backend_of(spec, target);
        let kind = probe_type(spec);
        let recorder = self.recorder.clone();
        let probe = self.inner.probe(spec, target);
        async move {
            let name = backend.as_deref().unwrap_or("");
            tracing::debug!(name: "probe-start", backend = name, address = %target, probe = kind, "probe-start");
            let result = probe.await;
            tracing::debug!(
                name: "probe-done",
                backend = name,
                address = %target,
                probe = kind,
                code = result.code.as_str(),
                detail = %result.detail,
                elapsed = ?result.elapsed,
                "probe-done"
            );
            if let Some(backend) = &backend {
                recorder.record_named(backend, target, kind, &result);
            }
            result
        }
    }
}

/// Transitions per backend, from and to state.
#[derive(Debug, Clone, Default)]
pub struct TransitionCounts {
    counts: Arc<Mutex<HashMap<TransitionKey, u64>>>,
}

impl TransitionCounts {
    /// Counts one transition.
    pub fn record(&self, t: &Transition) {
        *lock(&self.counts)
            .entry((Arc::clone(&t.backend), t.from, t.to))
            .or_default() += 1;
    }

    /// Counts the checker's transitions until it is gone (run it as a task; subscribe before
    /// the checker's first config is applied to see the first ones).
    pub async fn follow(self, mut transitions: broadcast::Receiver<Transition>) {
        loop {
            match transitions.recv().await {
                Ok(t) => self.record(&t),
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }
}

/// Where a scrape reads from; see the [module docs](self). A cheap clone.
#[derive(Clone)]
pub struct Metrics {
    backends: Arc<dyn Fn() -> Vec<BackendStatus> + Send + Sync>,
    config: watch::Receiver<Arc<Config>>,
    syncer: Option<LbSyncer>,
    api: ApiCounters,
    probes: ProbeRecorder,
    transitions: TransitionCounts,
    buckets: BucketShares,
    grpc: Option<GrpcRequests>,
    /// The length of the last scrape's text: the next one's buffer starts that large.
    last_len: Arc<AtomicUsize>,
}

/// A map keyed by names from the config, hashed fast (a scrape hashes every backend's name
/// twice; the keys are the operator's, not a peer's).
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// The backends' states by borrowed name (no name copied per scrape).
struct States<'a>(FastMap<&'a str, BackendState>);

impl BackendStates for States<'_> {
    fn get_state(&self, backend: &str) -> Option<BackendState> {
        self.0.get(backend).copied()
    }
}

/// Per frontend: the AS weights and table length its bucket shares were computed from, and
/// the buckets per AS address.
type ShareCache = HashMap<String, (Vec<(IpAddr, u8)>, u32, Arc<HashMap<IpAddr, u32>>)>;

/// Each frontend's bucket share per AS, recomputed only when its ASes, weights or table
/// length change (a table costs far more than a scrape's other work).
#[derive(Debug, Clone, Default)]
struct BucketShares {
    cache: Arc<Mutex<ShareCache>>,
}

impl BucketShares {
    /// The buckets per AS of `frontend`'s desired `vip` (empty when VPP would refuse it).
    fn of(&self, frontend: &str, vip: &Vip) -> Arc<HashMap<IpAddr, u32>> {
        let input: Vec<(IpAddr, u8)> = vip.ases.iter().map(|(a, x)| (*a, x.weight)).collect();
        let mut cache = lock(&self.cache);
        if let Some((ases, len, shares)) = cache.get(frontend)
            && *ases == input
            && *len == vip.table_len
        {
            return Arc::clone(shares);
        }
        let shares: Arc<HashMap<IpAddr, u32>> = Arc::new(
            vip.maglev_table()
                .map(|t| t.buckets_per_as().collect())
                .unwrap_or_default(),
        );
        cache.insert(
            frontend.to_owned(),
            (input, vip.table_len, Arc::clone(&shares)),
        );
        shares
    }

    /// Forgets frontends no longer in the config.
    fn keep(&self, config: &Config) {
        // A set, not `Config::frontend` (a scan of every frontend) per cached one.
        let names: std::collections::HashSet<&str> =
            config.frontends.iter().map(|f| f.name.as_str()).collect();
        lock(&self.cache).retain(|name, _| names.contains(name.as_str()));
    }
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// Metrics over `checker`, the config in force (the reloader's watch), the sync engine
    /// (when VPP is on) and the recorders the daemon wired in.
    pub fn new<P: Prober>(
        checker: Checker<P>,
        config: watch::Receiver<Arc<Config>>,
        syncer: Option<LbSyncer>,
        api: ApiCounters,
        probes: ProbeRecorder,
        transitions: TransitionCounts,
    ) -> Self {
        Self::from_parts(
            Arc::new(move || checker.statuses()),
            config,
            syncer,
            api,
            probes,
            transitions,
        )
    }

    /// [`Metrics::new`] with any source of backend statuses (tests, benches).
    pub fn from_parts(
        backends: Arc<dyn Fn() -> Vec<BackendStatus> + Send + Sync>,
        config: watch::Receiver<Arc<Config>>,
        syncer: Option<LbSyncer>,
        api: ApiCounters,
        probes: ProbeRecorder,
        transitions: TransitionCounts,
    ) -> Self {
        Self {
            backends,
            config,
            syncer,
            api,
            probes,
            transitions,
            buckets: BucketShares::default(),
            grpc: None,
            last_len: Arc::default(),
        }
    }

    /// Renders the API's calls by method and code from `requests` too.
    #[must_use]
    pub fn with_grpc_requests(mut self, requests: GrpcRequests) -> Self {
        self.grpc = Some(requests);
        self
    }

    /// One scrape, rendered as OpenMetrics text.
    ///
    /// # Errors
    ///
    /// Only if formatting fails, which writing to a `String` does not.
    pub fn render(&self) -> Result<String, fmt::Error> {
        self.render_as(Format::OpenMetrics)
    }

    /// One scrape, rendered in `format`.
    ///
    /// # Errors
    ///
    /// Only if formatting fails, which writing to a `String` does not.
    pub fn render_as(&self, format: Format) -> Result<String, fmt::Error> {
        // One buffer, sized from the last scrape (plus room to grow) so that a large
        // scrape is not copied over and over as it grows.
        let last = self.last_len.load(Ordering::Relaxed);
        let mut text = Text::with_capacity((last + last / 8).max(64 * 1024), format);
        self.encode(&mut text);
        if format == Format::OpenMetrics {
            text.out.push_str("# EOF\n");
        }
        self.last_len.store(text.out.len(), Ordering::Relaxed);
        Ok(text.out)
    }
}

/// The type of a metric family, as its `# TYPE` line says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Gauge,
    Counter,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
            Kind::Histogram => "histogram",
        }
    }
}

/// A sample value: integers as decimal digits, floats as OpenMetrics (and
/// `prometheus-client`) write them (`1.0`, `0.0005`, `+Inf`).
trait Value: Copy {
    fn write(self, out: &mut String);
}

macro_rules! int_value {
    ($($t:ty),*) => {$(
        impl Value for $t {
            fn write(self, out: &mut String) {
                out.push_str(itoa::Buffer::new().format(self));
            }
        }
    )*};
}
int_value!(i32, i64, u64, u32);

impl Value for f64 {
    fn write(self, out: &mut String) {
        out.push_str(dtoa::Buffer::new().format(self));
    }
}

/// Whether `value` holds a byte a label value escapes (`\\`, `"`, newline), tested eight
/// bytes at a time with fixed-size loads (a scrape checks some 300,000 values, nearly all
/// short and clean).
fn needs_escape(value: &str) -> bool {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    /// Whether a byte of `word` is `byte`: the classic zero-byte test on `word ^ byte…byte`,
    /// exact as a yes/no.
    fn has(word: u64, byte: u8) -> bool {
        let x = word ^ (ONES * u64::from(byte));
        x.wrapping_sub(ONES) & !x & HIGHS != 0
    }
    fn any(word: u64) -> bool {
        has(word, b'\\') || has(word, b'"') || has(word, b'\n')
    }
    fn word<const N: usize>(bytes: &[u8]) -> [u8; N] {
        bytes.try_into().expect("N bytes")
    }
    let bytes = value.as_bytes();
    let len = bytes.len();
    match len {
        0..4 => bytes.iter().any(|b| matches!(b, b'\\' | b'"' | b'\n')),
        // The first four bytes and the last four, overlapping when shorter than eight.
        4..=8 => {
            let head = u32::from_ne_bytes(word(&bytes[..4]));
            let tail = u32::from_ne_bytes(word(&bytes[len - 4..]));
            any(u64::from(head) | u64::from(tail) << 32)
        }
        // Every whole eight, then the last eight (overlapping the one before).
        _ => {
            bytes
                .chunks_exact(8)
                .any(|chunk| any(u64::from_ne_bytes(word(chunk))))
                || any(u64::from_ne_bytes(word(&bytes[len - 8..])))
        }
    }
}

/// Pushes `value` escaped as an OpenMetrics label value (`\\`, `\"`, `\n`).
fn push_escaped(out: &mut String, value: &str) {
    if !needs_escape(value) {
        out.push_str(value);
        return;
    }
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// The fixed text around a series' label values, built once per family: `open` before the
/// first value (the metric name, `{` and the first key for a sample line; `,` and the first
/// key for the labels that follow a bucket's `le`), `seps` between values (`",key="`) and
/// `close` after the last (`"} `, or `} ` without labels).
#[derive(Debug, Default)]
struct Template {
    open: String,
    seps: Vec<String>,
    close: &'static str,
}

impl Template {
    /// A sample line's text around its label values: `name{key="…",…} `; without labels
    /// `name{} ` in OpenMetrics (as `prometheus-client` writes it) and `name ` in the text
    /// format.
    fn line(name: &str, keys: &[&'static str], format: Format) -> Self {
        if keys.is_empty() && format == Format::Text {
            return Self {
                open: format!("{name} "),
                seps: Vec::new(),
                close: "",
            };
        }
        Self::new(&format!("{name}{{"), "", keys)
    }

    /// `head` then, with labels, `first` and the first key.
    fn new(head: &str, first: &str, keys: &[&'static str]) -> Self {
        let Some((key, rest)) = keys.split_first() else {
            return Self {
                open: head.to_owned(),
                seps: Vec::new(),
                close: "} ",
            };
        };
        Self {
            open: format!("{head}{first}{key}=\""),
            seps: rest.iter().map(|key| format!("\",{key}=\"")).collect(),
            close: "\"} ",
        }
    }

    /// Pushes the text up to the last key's value: `values` are every value but the last
    /// (the series of a [`Family::one_hot`] differ only there).
    fn push_but_last(&self, out: &mut String, values: &[&str]) {
        out.push_str(&self.open);
        let mut seps = self.seps.iter();
        for value in values {
            push_escaped(out, value);
            if let Some(sep) = seps.next() {
                out.push_str(sep);
            }
        }
    }

    /// Pushes the text and the escaped `values` (one per key, in order).
    fn push(&self, out: &mut String, values: &[&str]) {
        match values.split_last() {
            Some((last, rest)) => {
                self.push_but_last(out, rest);
                push_escaped(out, last);
            }
            None => out.push_str(&self.open),
        }
        out.push_str(self.close);
    }
}

/// The text of one scrape, written straight into one `String`. In OpenMetrics, the output of
/// `prometheus-client`'s text encoder, byte for byte, without its per-piece dynamic writes.
struct Text {
    out: String,
    format: Format,
    /// The `le` values of [`DurationHistogram`]'s buckets, `+Inf` last.
    les: Vec<String>,
}

impl Text {
    fn with_capacity(capacity: usize, format: Format) -> Self {
        let les = maglev_vpp::metrics::SYNC_DURATION_BUCKETS
            .iter()
            .map(|le| dtoa::Buffer::new().format(*le).to_owned())
            .chain(["+Inf".to_owned()])
            .collect();
        Self {
            out: String::with_capacity(capacity),
            format,
            les,
        }
    }

    /// Starts a family whose series are labelled by `keys`: its `# HELP` and `# TYPE` lines.
    fn family<const N: usize>(
        &mut self,
        name: &'static str,
        help: &str,
        kind: Kind,
        keys: [&'static str; N],
    ) -> Family<'_, N> {
        // The text format names a counter by its sample, OpenMetrics by its family.
        let total = if kind == Kind::Counter && self.format == Format::Text {
            "_total"
        } else {
            ""
        };
        for (tag, text) in [("# HELP ", help), ("# TYPE ", kind.as_str())] {
            self.out.push_str(tag);
            self.out.push_str(name);
            self.out.push_str(total);
            self.out.push(' ');
            self.out.push_str(text);
            self.out.push('\n');
        }
        let format = self.format;
        let line = |suffix: &str| Template::line(&format!("{name}{suffix}"), &keys, format);
        let (first, second, heads) = match kind {
            Kind::Gauge => (line(""), Template::default(), Vec::new()),
            Kind::Counter => (line("_total"), Template::default(), Vec::new()),
            // `_sum`, `_count`, then the buckets: `name_bucket{le="…"` and the labels after.
            Kind::Histogram => (
                line("_sum"),
                line("_count"),
                self.les
                    .iter()
                    .map(|le| format!("{name}_bucket{{le=\"{le}\""))
                    .collect(),
            ),
        };
        let tail = Template::new("", ",", &keys);
        Family {
            out: &mut self.out,
            first,
            second,
            heads,
            tail,
            scratch: String::new(),
        }
    }
}

/// Writes the series of one metric family, each labelled by the family's `N` keys.
struct Family<'t, const N: usize> {
    out: &'t mut String,
    /// A gauge's or a counter's line; a histogram's `_sum`.
    first: Template,
    /// A histogram's `_count`.
    second: Template,
    /// A histogram's bucket-line heads, `+Inf` last.
    heads: Vec<String>,
    /// A histogram's labels after `le`.
    tail: Template,
    /// One series' labels after `le` (a histogram repeats them on every bucket line).
    scratch: String,
}

impl<const N: usize> Family<'_, N> {
    fn sample(out: &mut String, template: &Template, values: [&str; N], value: impl Value) {
        template.push(out, &values);
        value.write(out);
        out.push('\n');
    }

    fn gauge(&mut self, values: [&str; N], value: impl Value) {
        Self::sample(self.out, &self.first, values, value);
    }

    fn counter(&mut self, values: [&str; N], value: u64) {
        Self::sample(self.out, &self.first, values, value);
    }

    /// The line ends of a [`Family::one_hot`] over `choices` (the last key's values): each
    /// choice's `value"} 0` and `value"} 1` lines, escaped and built once per family.
    fn choices<const C: usize>(&self, choices: [&str; C]) -> [[String; 2]; C] {
        choices.map(|choice| {
            [0, 1].map(|value| {
                let mut end = String::new();
                push_escaped(&mut end, choice);
                end.push_str(self.first.close);
                value.write(&mut end);
                end.push('\n');
                end
            })
        })
    }

    /// A one-hot gauge: one series per choice of the last key (`ends`, from
    /// [`Family::choices`]), the other keys' `values` in common, 1 for choice `current` (if
    /// any) and 0 for the others. The common part is written once and copied: a backend's six
    /// state lines cost two copies each.
    fn one_hot<const C: usize>(
        &mut self,
        values: &[&str],
        ends: &[[String; 2]; C],
        current: Option<usize>,
    ) {
        debug_assert_eq!(values.len() + 1, N, "every key but the last");
        self.scratch.clear();
        self.first.push_but_last(&mut self.scratch, values);
        for (i, [zero, one]) in ends.iter().enumerate() {
            self.out.push_str(&self.scratch);
            self.out
                .push_str(if current == Some(i) { one } else { zero });
        }
    }

    fn histogram(&mut self, values: [&str; N], h: &DurationHistogram) {
        Self::sample(self.out, &self.first, values, h.sum());
        Self::sample(self.out, &self.second, values, h.count());
        self.scratch.clear();
        self.tail.push(&mut self.scratch, &values);
        for (head, (_, n)) in self.heads.iter().zip(h.cumulative()) {
            self.out.push_str(head);
            self.out.push_str(&self.scratch);
            n.write(self.out);
            self.out.push('\n');
        }
    }
}

fn secs_since_epoch(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl Metrics {
    /// Writes every family of one scrape.
    fn encode(&self, e: &mut Text) {
        let backends = (self.backends)();
        let config = Arc::clone(&self.config.borrow());
        let sync = self.syncer.as_ref().map(LbSyncer::snapshot);
        let (config, overrides) = match &sync {
            Some(s) => (Arc::clone(&s.config), s.overrides.clone()),
            None => (config, maglev_core::weights::WeightOverrides::new()),
        };

        let mut f = e.family(
            "maglev_build_info",
            "This build of maglevd (always 1).",
            Kind::Gauge,
            ["version"],
        );
        f.gauge([env!("CARGO_PKG_VERSION")], 1);

        let mut f = e.family(
            "maglev_backend_state",
            "1 for the backend's current state.",
            Kind::Gauge,
            ["backend", "state"],
        );
        let ends = f.choices(BackendState::ALL.map(BackendState::as_str));
        for b in &backends {
            let current = BackendState::ALL.iter().position(|s| *s == b.state);
            f.one_hot(&[&b.name], &ends, current);
        }
        let mut f = e.family(
            "maglev_backend_health",
            "The backend's rise/fall counter.",
            Kind::Gauge,
            ["backend"],
        );
        for b in &backends {
            f.gauge([&b.name], b.counter);
        }
        let mut f = e.family(
            "maglev_backend_enabled",
            "1 when the backend is enabled.",
            Kind::Gauge,
            ["backend"],
        );
        for b in &backends {
            f.gauge([&b.name], i64::from(b.enabled));
        }

        let states = States(backends.iter().map(|b| (&*b.name, b.state)).collect());
        let weights: Vec<_> = config
            .frontends
            .iter()
            .map(|fe| {
                let (_, vip, weights) = desired_vip(&config, fe, &states, &overrides);
                (fe, weights, self.buckets.of(&fe.name, &vip))
            })
            .collect();
        self.buckets.keep(&config);
        let mut f = e.family(
            "maglev_frontend_pool_backend_weight",
            "The effective weight of a backend in a frontend's pool.",
            Kind::Gauge,
            ["frontend", "pool", "backend"],
        );
        for (fe, w, _) in &weights {
            for pool in &w.pools {
                for m in &pool.members {
                    let labels = [fe.name.as_str(), pool.name, m.backend];
                    f.gauge(labels, i64::from(m.effective.weight));
                }
            }
        }
        // The backends' addresses by name, for the bucket shares (keyed by AS address).
        let addresses: FastMap<&str, IpAddr> = config
            .backends
            .iter()
            .map(|(name, b)| (name.as_str(), b.address))
            .collect();
        let mut f = e.family(
            "maglev_frontend_pool_backend_buckets",
            "New-flow table buckets a backend owns in its frontend's VIP (Maglev).",
            Kind::Gauge,
            ["frontend", "pool", "backend"],
        );
        for (fe, w, shares) in &weights {
            for (index, pool) in w.pools.iter().enumerate() {
                for m in &pool.members {
                    // VPP gets a backend's first membership only: the others own no bucket.
                    let first = fe
                        .membership(m.backend)
                        .is_some_and(|(first, _)| first == index);
                    let buckets = addresses
                        .get(m.backend)
                        .filter(|_| first)
                        .and_then(|address| shares.get(address))
                        .copied()
                        .unwrap_or(0);
                    let labels = [fe.name.as_str(), pool.name, m.backend];
                    f.gauge(labels, i64::from(buckets));
                }
            }
        }
        let mut f = e.family(
            "maglev_frontend_state",
            "1 for the frontend's current state.",
            Kind::Gauge,
            ["frontend", "state"],
        );
        let states = [
            FrontendState::Unknown,
            FrontendState::Up,
            FrontendState::Down,
        ];
        let ends = f.choices(states.map(FrontendState::as_str));
        for (fe, w, _) in &weights {
            let current = states.iter().position(|s| *s == w.state);
            f.one_hot(&[&fe.name], &ends, current);
        }
        let mut f = e.family(
            "maglev_frontend_active_pool",
            "1 for the frontend's active pool.",
            Kind::Gauge,
            ["frontend", "pool"],
        );
        for (fe, w, _) in &weights {
            for (i, pool) in w.pools.iter().enumerate() {
                f.gauge([&fe.name, pool.name], i64::from(i == w.active_pool));
            }
        }

        {
            let data = lock(&self.probes.data);
            let mut f = e.family(
                "maglev_probe",
                "Health-check probes by result and code.",
                Kind::Counter,
                ["backend", "type", "result", "code"],
            );
            for ((backend, kind, result, code), n) in &data.totals {
                f.counter([backend, kind, result, code], *n);
            }
            let mut f = e.family(
                "maglev_probe_duration_seconds",
                "How long health-check probes took.",
                Kind::Histogram,
                ["backend", "type"],
            );
            for ((backend, kind), h) in &data.durations {
                f.histogram([backend, kind], h);
            }
        }
        {
            let counts = lock(&self.transitions.counts);
            let mut f = e.family(
                "maglev_backend_transitions",
                "Backend state transitions.",
                Kind::Counter,
                ["backend", "from", "to"],
            );
            for ((backend, from, to), n) in counts.iter() {
                f.counter([backend, from.as_str(), to.as_str()], *n);
            }
        }

        if let Some(grpc) = &self.grpc {
            let mut f = e.family(
                "maglev_grpc_requests",
                "gRPC API calls by method and status code.",
                Kind::Counter,
                ["method", "code"],
            );
            for (method, code, n) in grpc.counts() {
                f.counter([method, code], n);
            }
        }

        self.encode_vpp(e, sync.as_ref(), &config);
    }
}

impl Metrics {
    fn encode_vpp(
        &self,
        e: &mut Text,
        sync: Option<&maglev_vpp::syncer::SyncerSnapshot>,
        config: &Config,
    ) {
        let Some((syncer, sync)) = self.syncer.as_ref().zip(sync) else {
            return;
        };
        let vpp = sync
            .vpp
            .as_ref()
            .filter(|_| sync.connection == ConnectionState::Connected);
        let now = SystemTime::now();
        let mut f = e.family(
            "maglev_vpp_connected",
            "1 while connected to VPP.",
            Kind::Gauge,
            [],
        );
        f.gauge([], i64::from(vpp.is_some()));
        if let Some(vpp) = vpp {
            if let Some(boot) = vpp.boot_time {
                let mut f = e.family(
                    "maglev_vpp_uptime_seconds",
                    "How long VPP has been running (from /sys/boottime).",
                    Kind::Gauge,
                    [],
                );
                let up = now.duration_since(boot).map_or(0.0, |d| d.as_secs_f64());
                f.gauge([], up);
            }
            let mut f = e.family(
                "maglev_vpp_connected_seconds",
                "How long the VPP session has lasted.",
                Kind::Gauge,
                [],
            );
            let up = now
                .duration_since(vpp.connected_at)
                .map_or(0.0, |d| d.as_secs_f64());
            f.gauge([], up);
            let mut f = e.family(
                "maglev_vpp_info",
                "VPP's version, build date and pid.",
                Kind::Gauge,
                ["version", "build_date", "pid"],
            );
            let pid = vpp.pid.map(|p| p.to_string()).unwrap_or_default();
            f.gauge([&vpp.version, &vpp.build_date, &pid], 1);
        }

        let mut f = e.family(
            "maglev_vpp_api",
            "Binary API messages by name, direction and result.",
            Kind::Counter,
            ["msg", "direction", "result"],
        );
        for (key, n) in self.api.snapshot() {
            let labels = [&*key.msg, key.direction.label(), key.result.label()];
            f.counter(labels, n);
        }

        let m = syncer.sync_metrics();
        let mut f = e.family(
            "maglev_vpp_lbsync",
            "lb operations VPP applied, by sync scope and kind.",
            Kind::Counter,
            ["scope", "kind"],
        );
        for (scope, kind, n) in m.totals.non_zero() {
            f.counter([scope.label(), kind.label()], n);
        }
        let mut f = e.family(
            "maglev_vpp_lbsync_duration_seconds",
            "How long syncs took.",
            Kind::Histogram,
            [],
        );
        f.histogram([], &m.duration);
        if let Some(at) = m.last_success {
            let mut f = e.family(
                "maglev_vpp_lbsync_last_success_timestamp_seconds",
                "When the last sync VPP answered in full ended.",
                Kind::Gauge,
                [],
            );
            f.gauge([], secs_since_epoch(at));
        }

        let Some(counters) = syncer.counters() else {
            return;
        };
        let vips: Vec<_> = config
            .frontends
            .iter()
            .filter_map(|fe| {
                let key = vip_key(fe);
                counters
                    .vips
                    .get(&key)
                    .map(|c| (fe.name.as_str(), key.to_string(), c))
            })
            .collect();
        let mut f = e.family(
            "vip_packets",
            "Packets of a VIP by lb counter (next, first, untracked, no-server).",
            Kind::Counter,
            ["frontend", "vip", "kind"],
        );
        for (frontend, vip, c) in &vips {
            for kind in LbCounter::ALL {
                f.counter([frontend, vip, kind.label()], c.get(kind));
            }
        }
        for (name, help, pick) in [
            (
                "vip_route_packets",
                "Packets routed to a VIP's prefix (/net/route/to).",
                (|c: vpp_binapi::stats::Combined| c.packets) as fn(_) -> u64,
            ),
            (
                "vip_route_bytes",
                "Bytes routed to a VIP's prefix (/net/route/to).",
                |c: vpp_binapi::stats::Combined| c.bytes,
            ),
        ] {
            let mut f = e.family(name, help, Kind::Counter, ["frontend", "vip"]);
            for (frontend, vip, c) in &vips {
                if let Some(route) = c.route {
                    f.counter([frontend, vip], pick(route));
                }
            }
        }
    }
}

/// Serves `/metrics` (OpenMetrics when the `Accept` header asks for it, as Prometheus does;
/// the text format 0.0.4 otherwise) and `/healthz` on `listener` until `shutdown` resolves.
///
/// # Errors
///
/// When serving fails.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Metrics,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::http::header;
    use axum::routing::get;
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(move |headers: axum::http::HeaderMap| {
                let metrics = metrics.clone();
                let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
                let format = Format::negotiate(accept);
                async move {
                    // Rendering is CPU only, off the async workers.
                    let body = tokio::task::spawn_blocking(move || metrics.render_as(format))
                        .await
                        .ok()
                        .and_then(Result::ok)
                        .unwrap_or_default();
                    ([(header::CONTENT_TYPE, format.content_type())], body)
                }
            }),
        )
        .route("/healthz", get(|| async { "ok\n" }));
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Parses `--metrics-addr`: empty turns the endpoint off; a bare `:port` (the original's
/// form) listens on every IPv4 address, as asked.
///
/// # Errors
///
/// When the value is not an address.
pub fn parse_addr(value: &str) -> Result<Option<SocketAddr>, std::net::AddrParseError> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    let mut owned = String::new();
    let value = match value.strip_prefix(':') {
        Some(port) => {
            let _ = write!(owned, "0.0.0.0:{port}");
            owned.as_str()
        }
        None => value,
    };
    value.parse().map(Some)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use prometheus_client::collector::Collector;
    use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
    use prometheus_client::metrics::MetricType;
    use prometheus_client::registry::Registry;
    use proptest::prelude::*;

    use super::*;

    /// The series [`Text`] and `prometheus-client` both write, to compare them.
    #[derive(Debug, Clone)]
    struct Series {
        labels: Vec<(String, String)>,
        int: i64,
        float: f64,
        counter: u64,
        histogram: DurationHistogram,
    }

    impl Series {
        /// Through [`Text`], as OpenMetrics.
        fn ours(&self) -> String {
            self.ours_as(Format::OpenMetrics)
        }

        /// Through [`Text`], in `format`.
        fn ours_as(&self, format: Format) -> String {
            let values: Vec<&str> = self.labels.iter().map(|(_, v)| v.as_str()).collect();
            let mut e = Text::with_capacity(0, format);
            // The families' keys are fixed at compile time: one arm per label count.
            match values.len() {
                0 => self.write(&mut e, [], []),
                1 => self.write(&mut e, ["a"], [values[0]]),
                2 => self.write(&mut e, ["a", "b"], [values[0], values[1]]),
                3 => self.write(&mut e, ["a", "b", "c"], [values[0], values[1], values[2]]),
                n => panic!("{n} labels: the tests use at most 3"),
            }
            if format == Format::OpenMetrics {
                e.out.push_str("# EOF\n");
            }
            e.out
        }

        fn write<const N: usize>(&self, e: &mut Text, keys: [&'static str; N], values: [&str; N]) {
            let mut f = e.family("g", "An integer.", Kind::Gauge, keys);
            f.gauge(values, self.int);
            let mut f = e.family("g0", "An integer, no labels.", Kind::Gauge, []);
            f.gauge([], self.int);
            let mut f = e.family("f", "A float.", Kind::Gauge, keys);
            f.gauge(values, self.float);
            let mut f = e.family("c", "A counter.", Kind::Counter, keys);
            f.counter(values, self.counter);
            let mut f = e.family("h_seconds", "A histogram.", Kind::Histogram, keys);
            f.histogram(values, &self.histogram);
            let mut f = e.family("h0_seconds", "A histogram, no labels.", Kind::Histogram, []);
            f.histogram([], &self.histogram);
        }

        /// Through `prometheus-client`'s text encoder.
        fn reference(&self) -> String {
            let mut registry = Registry::default();
            registry.register_collector(Box::new(self.clone()));
            let mut out = String::new();
            prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
            out
        }
    }

    impl Collector for Series {
        fn encode(&self, mut e: DescriptorEncoder<'_>) -> fmt::Result {
            let labels = &self.labels;
            let none: Vec<(String, String)> = Vec::new();
            let h = &self.histogram;
            let mut f = e.encode_descriptor("g", "An integer.", None, MetricType::Gauge)?;
            f.encode_family(labels)?.encode_gauge(&self.int)?;
            let mut f =
                e.encode_descriptor("g0", "An integer, no labels.", None, MetricType::Gauge)?;
            f.encode_family(&none)?.encode_gauge(&self.int)?;
            let mut f = e.encode_descriptor("f", "A float.", None, MetricType::Gauge)?;
            f.encode_family(labels)?.encode_gauge(&self.float)?;
            let mut f = e.encode_descriptor("c", "A counter.", None, MetricType::Counter)?;
            f.encode_family(labels)?
                .encode_counter::<NoLabelSet, _, u64>(&self.counter, None)?;
            for (name, help, l) in [
                ("h_seconds", "A histogram.", labels),
                ("h0_seconds", "A histogram, no labels.", &none),
            ] {
                let mut f = e.encode_descriptor(name, help, None, MetricType::Histogram)?;
                f.encode_family(l)?.encode_histogram::<NoLabelSet>(
                    h.sum(),
                    h.count(),
                    &h.buckets(),
                    None,
                )?;
            }
            Ok(())
        }
    }

    fn series(labels: &[(&str, &str)], durations_us: &[u64]) -> Series {
        let mut histogram = DurationHistogram::default();
        for us in durations_us {
            histogram.observe(Duration::from_micros(*us));
        }
        Series {
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            int: -3,
            float: 0.25,
            counter: 7,
            histogram,
        }
    }

    #[test]
    fn text_matches_prometheus_client() {
        let s = series(
            &[("a", "b1"), ("b", "tcp")],
            &[300, 300, 1_500, 40_000, 3_000_000],
        );
        let ours = s.ours();
        assert_eq!(ours, s.reference());
        assert!(
            ours.contains("h_seconds_bucket{le=\"0.0005\",a=\"b1\",b=\"tcp\"} 2\n"),
            "{ours}"
        );
        assert!(
            ours.contains("h0_seconds_bucket{le=\"+Inf\"} 5\n"),
            "{ours}"
        );
    }

    #[test]
    fn the_text_format_names_counters_by_sample_and_has_no_eof_or_empty_braces() {
        let s = series(&[("a", "b1")], &[300, 1_500]);
        let (om, text) = (s.ours(), s.ours_as(Format::Text));
        assert!(
            text.contains("# HELP c_total A counter.\n# TYPE c_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains("\ng0 -3\n") && text.contains("\nh0_seconds_count 2\n"),
            "{text}"
        );
        assert!(!text.contains("# EOF") && om.ends_with("# EOF\n"));
        // Apart from those, the same lines in the same order.
        let normalized = om
            .replace("# HELP c A", "# HELP c_total A")
            .replace("# TYPE c counter", "# TYPE c_total counter")
            .replace("{} ", " ")
            .replace("# EOF\n", "");
        assert_eq!(text, normalized);
    }

    #[test]
    fn negotiation_follows_the_accept_header() {
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Format::negotiate(Some(prometheus)), Format::OpenMetrics);
        assert_eq!(Format::negotiate(Some("*/*")), Format::Text);
        assert_eq!(Format::negotiate(None), Format::Text);
    }

    #[test]
    fn text_escapes_label_values_as_prometheus_client() {
        let s = series(&[("a", "a\\b\"c\nd"), ("b", "é")], &[]);
        let ours = s.ours();
        assert_eq!(ours, s.reference());
        assert!(ours.contains(r#"a="a\\b\"c\nd""#), "{ours}");
    }

    proptest! {
        #[test]
        fn needs_escape_finds_exactly_the_escaped_bytes(value in "[a-z\\\\\"\n é/:.\u{0}-\u{7f}]{0,40}") {
            let naive = value.bytes().any(|b| matches!(b, b'\\' | b'"' | b'\n'));
            prop_assert_eq!(needs_escape(&value), naive);
        }

        #[test]
        fn one_hot_writes_what_one_gauge_per_choice_writes(
            first in "[a-z\\\\\"\n é]{0,8}",
            second in "[a-z\\\\\"\n é]{0,8}",
            choices in proptest::collection::vec("[a-z\\\\\"\n]{0,6}", 3),
            current in 0usize..4,
        ) {
            let choices = [choices[0].as_str(), choices[1].as_str(), choices[2].as_str()];
            let keys = ["a", "b", "state"];
            let mut e = Text::with_capacity(0, Format::OpenMetrics);
            let mut f = e.family("g", "One-hot.", Kind::Gauge, keys);
            let ends = f.choices(choices);
            f.one_hot(&[&first, &second], &ends, Some(current));
            let mut reference = Text::with_capacity(0, Format::OpenMetrics);
            let mut f = reference.family("g", "One-hot.", Kind::Gauge, keys);
            for (i, choice) in choices.iter().enumerate() {
                f.gauge([&first, &second, choice], i64::from(i == current));
            }
            prop_assert_eq!(e.out, reference.out);
        }

        #[test]
        fn text_matches_prometheus_client_for_any_series(
            values in proptest::collection::vec("[a-z\\\\\"\n é/:.-]{0,8}", 0..=3),
            int in any::<i64>(),
            float in any::<f64>(),
            counter in any::<u64>(),
            durations in proptest::collection::vec(0u64..5_000_000, 0..20),
        ) {
            let keys = ["a", "b", "c"];
            let labels: Vec<(&str, &str)> =
                keys.iter().copied().zip(values.iter().map(String::as_str)).collect();
            let mut s = series(&labels, &durations);
            s.int = int;
            s.float = float;
            s.counter = counter;
            prop_assert_eq!(s.ours(), s.reference());
        }
    }
}
