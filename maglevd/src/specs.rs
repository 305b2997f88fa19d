//! Config to checker glue: turns the validated `maglev.yaml` model into the checker's
//! [`BackendSpec`]s and settings.

use maglev_core::config::{self, CheckKind, Config};
use maglev_health::checker::{BackendSpec, CheckSpec, CheckerConfig};
use maglev_health::probe::{self, BodyRegex, ProbeKind, ProbeSpec, SpecError};

/// A health check the probers cannot run (the config model accepted it, the prober did not).
#[derive(Debug, thiserror::Error)]
#[error("healthchecks.{check}: {source}")]
pub struct SpecConversionError {
    /// The health check's name.
    pub check: String,
    /// What the prober refused.
    #[source]
    pub source: SpecError,
}

/// The checker settings of `config`: `healthchecker.transition-history`, and a transition
/// channel sized to the number of backends.
pub fn checker_config(config: &Config) -> CheckerConfig {
    let history = usize::try_from(config.healthchecker.transition_history).unwrap_or(usize::MAX);
    let defaults = CheckerConfig::default();
    // Every backend's first result fits twice over, so a start of that size is absorbed without
    // a lag even while the syncer's task waits for a core.
    let capacity = defaults
        .channel_capacity
        .max(config.backends.len().saturating_mul(2));
    defaults
        .with_history(history)
        .with_channel_capacity(capacity)
}

/// One [`BackendSpec`] per configured backend, in name order. A backend without `healthcheck`
/// is static (`check: None`).
///
/// # Errors
///
/// When a health check cannot be turned into a probe (e.g. a TLS server name the TLS stack
/// refuses); nothing is returned then, so a reload with such a check is refused as a whole.
pub fn backend_specs(config: &Config) -> Result<Vec<BackendSpec>, SpecConversionError> {
    config
        .backends
        .values()
        .map(|backend| {
            let check = config.healthcheck_of(backend).map(check_spec).transpose()?;
            Ok(BackendSpec {
                name: backend.name.clone(),
                address: backend.address,
                check,
                enabled: backend.enabled,
            })
        })
        .collect()
}

/// The checker's view of one health check.
///
/// # Errors
///
/// When the probe parameters are refused by the prober.
pub fn check_spec(check: &config::HealthCheck) -> Result<CheckSpec, SpecConversionError> {
    let err = |source| SpecConversionError {
        check: check.name.clone(),
        source,
    };
    let port = check.port.unwrap_or(0);
    let kind = match &check.kind {
        CheckKind::Http(http) => ProbeKind::Http(http_params(port, http, None).map_err(err)?),
        CheckKind::Https { http, tls } => {
            let tls = tls_params(tls).map_err(err)?;
            ProbeKind::Http(http_params(port, http, Some(tls)).map_err(err)?)
        }
        CheckKind::Tcp { tls } => ProbeKind::Tcp {
            port,
            tls: tls.as_ref().map(tls_params).transpose().map_err(err)?,
        },
        CheckKind::Icmp => ProbeKind::Icmp,
    };
    let mut probe = ProbeSpec::new(kind, check.timeout);
    probe.source_v4 = check.probe_ipv4_src;
    probe.source_v6 = check.probe_ipv6_src;
    probe.validate().map_err(err)?;
    Ok(CheckSpec {
        probe,
        interval: check.interval,
        fast_interval: check.fast_interval,
        down_interval: check.down_interval,
        rise: u32::from(check.rise),
        fall: u32::from(check.fall),
    })
}

fn http_params(
    port: u16,
    http: &config::HttpParams,
    tls: Option<probe::TlsParams>,
) -> Result<probe::HttpParams, SpecError> {
    let mut params = probe::HttpParams::new(port);
    params.tls = tls;
    params.path.clone_from(&http.path);
    params.host.clone_from(&http.host);
    params.status = (http.response_codes.min, http.response_codes.max);
    params.regexp = http
        .response_regexp
        .as_ref()
        .map(|re| BodyRegex::new(re.as_str()))
        .transpose()?;
    Ok(params)
}

fn tls_params(tls: &config::TlsParams) -> Result<probe::TlsParams, SpecError> {
    probe::TlsParams::new(tls.server_name.clone(), tls.insecure_skip_verify)
}
