//! The `maglev.yaml` config model: parsing and semantic validation.

mod model;

pub use model::{
    Backend, CheckKind, Config, Encap, Frontend, HealthCheck, HealthChecker, HttpParams, Pool,
    PoolMember, Protocol, ResponseRegex, StatusRange, TlsParams, Vpp, VppLb, defaults,
};
