//! Desired state from config and backend states, end to end through the plan.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use maglev_core::config::Config;
use maglev_core::desired::{
    FrontendSummary, desired_frontends, desired_state, desired_vip, flush_targets, vip_key,
};
use maglev_core::index::ConfigIndex;
use maglev_core::plan::{Encap, FlushSet, Op, Scope, VppState, plan};
use maglev_core::weights::BackendState::{self, Disabled, Down, Paused, Removed, Unknown, Up};
use maglev_core::weights::{FrontendState, WeightOverrides};

const YAML: &str = r#"
maglev:
  backends:
    p1: { address: 10.0.0.1 }
    p2: { address: 10.0.0.2 }
    f1: { address: 10.0.1.1 }
    v6a: { address: "2001:db8::a" }
  frontends:
    web:
      address: 192.0.2.1
      protocol: tcp
      port: 80
      pools:
        - name: primary
          backends:
            p1: { weight: 100 }
            p2: { weight: 40 }
        - name: fallback
          backends:
            f1: {}
            p2: { weight: 90 }
    drain:
      address: 192.0.2.2
      protocol: udp
      port: 53
      flush-on-down: false
      src-ip-sticky: true
      new-flows-table-length: 4096
      pools:
        - name: only
          backends:
            p1: {}
    six:
      address: 2001:db8::80
      protocol: any
      port: 0
      pools:
        - name: only
          backends:
            v6a: {}
"#;

fn cfg() -> Config {
    Config::from_yaml_str("desired.yaml", YAML).unwrap()
}

/// The desired state built as a sync builds it (through the config's index), owned.
struct Built {
    vpp: VppState,
    /// Each frontend's state, by name.
    frontends: BTreeMap<String, FrontendState>,
}

fn desired(c: &Config, states: &BTreeMap<String, BackendState>, ov: &WeightOverrides) -> Built {
    let index = ConfigIndex::new(Arc::new(c.clone()));
    let d = desired_state(&index, &index.backend_states(states), ov);
    Built {
        vpp: d.vpp,
        frontends: d
            .frontends
            .iter()
            .map(|f| (f.name.to_owned(), f.state))
            .collect(),
    }
}

fn st(list: &[(&str, BackendState)]) -> BTreeMap<String, BackendState> {
    list.iter().map(|&(n, s)| (n.to_owned(), s)).collect()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// AS weights of the `web` VIP, by address.
fn web_weights(states: &[(&str, BackendState)]) -> Vec<(IpAddr, u8)> {
    let c = cfg();
    let (_, vip, _) = desired_vip(
        &c,
        c.frontend("web").unwrap(),
        &st(states),
        &WeightOverrides::new(),
    );
    vip.ases.iter().map(|(a, x)| (*a, x.weight)).collect()
}

#[test]
fn vips_carry_the_frontend_settings() {
    let c = cfg();
    let d = desired(&c, &st(&[]), &WeightOverrides::new());
    assert_eq!(d.vpp.vips.len(), 3);
    let drain = &d.vpp.vips[&vip_key(c.frontend("drain").unwrap())];
    assert_eq!(
        (drain.encap, drain.src_ip_sticky, drain.table_len),
        (Encap::Gre4, true, 4096)
    );
    let six_key = vip_key(c.frontend("six").unwrap());
    assert_eq!((six_key.protocol, six_key.port), (255, 0));
    let six = &d.vpp.vips[&six_key];
    assert_eq!((six.encap, six.table_len), (Encap::Gre6, 1024));
    assert_eq!(d.frontends["web"], FrontendState::Unknown);
    // Every backend is installed, at weight 0 while unknown.
    assert_eq!(
        web_weights(&[]),
        [
            (ip("10.0.0.1"), 0),
            (ip("10.0.0.2"), 0),
            (ip("10.0.1.1"), 0)
        ]
    );
}

#[test]
fn failover_end_to_end() {
    let all_up = [("p1", Up), ("p2", Up), ("f1", Up)];
    assert_eq!(
        web_weights(&all_up),
        [
            (ip("10.0.0.1"), 100),
            (ip("10.0.0.2"), 40),
            (ip("10.0.1.1"), 0)
        ]
    );
    // p2 is in both pools: its first pool's membership counts, so it stays at 0 on failover.
    assert_eq!(
        web_weights(&[("p1", Disabled), ("p2", Down), ("f1", Up)]),
        [
            (ip("10.0.0.1"), 0),
            (ip("10.0.0.2"), 0),
            (ip("10.0.1.1"), 100)
        ]
    );
    assert_eq!(
        web_weights(&[("p1", Paused), ("p2", Up), ("f1", Up)]),
        [
            (ip("10.0.0.1"), 0),
            (ip("10.0.0.2"), 40),
            (ip("10.0.1.1"), 0)
        ]
    );
    // A removed backend leaves the VIP.
    assert_eq!(
        web_weights(&[("p1", Removed), ("p2", Up)]),
        [(ip("10.0.0.2"), 40), (ip("10.0.1.1"), 0)]
    );
}

/// Applies a plan to a model of VPP (no validity checks here; the `plan` module has those).
fn apply(mut s: VppState, ops: &[Op]) -> VppState {
    for op in ops {
        match *op {
            Op::VipAdd {
                key,
                encap,
                src_ip_sticky,
                table_len,
            } => {
                s.vips.insert(
                    key,
                    maglev_core::plan::Vip::new(encap, src_ip_sticky, table_len),
                );
            }
            Op::VipDel { key, .. } => {
                s.vips.remove(&key);
            }
            Op::AsAdd {
                key,
                address,
                weight,
            } => {
                s.vips
                    .get_mut(&key)
                    .unwrap()
                    .ases
                    .insert(address, maglev_core::plan::As::new(weight));
            }
            Op::AsDel { key, address, .. } => {
                s.vips.get_mut(&key).unwrap().ases.remove(&address);
            }
            Op::AsSetWeight {
                key,
                address,
                weight,
                ..
            } => {
                s.vips
                    .get_mut(&key)
                    .unwrap()
                    .ases
                    .get_mut(&address)
                    .unwrap()
                    .weight = weight;
            }
        }
    }
    s
}

#[test]
fn a_day_in_the_life() {
    let c = cfg();
    let none = WeightOverrides::new();
    let web = vip_key(c.frontend("web").unwrap());
    let drain = vip_key(c.frontend("drain").unwrap());

    // Start: everything unknown, VPP empty. One full sync installs three VIPs at weight 0.
    let d0 = desired(&c, &st(&[]), &none);
    let p0 = plan(&VppState::new(), &d0.vpp, Scope::All, &FlushSet::new());
    assert_eq!(p0.stats().vip_add, 3);
    let vpp = apply(VppState::new(), &p0.ops);
    assert!(vpp.converged(&d0.vpp));

    // Backends come up: weight changes only, in numeric order.
    let up = st(&[("p1", Up), ("p2", Up), ("f1", Up), ("v6a", Up)]);
    let d1 = desired(&c, &up, &none);
    let p1 = plan(&vpp, &d1.vpp, Scope::All, &FlushSet::new());
    assert_eq!(
        p1.iter().map(ToString::to_string).collect::<Vec<_>>(),
        [
            "as weight 192.0.2.1/32 tcp:80 10.0.0.1 weight 100",
            "as weight 192.0.2.1/32 tcp:80 10.0.0.2 weight 40",
            "as weight 192.0.2.2/32 udp:53 10.0.0.1 weight 100",
            "as weight 2001:db8::80/128 any 2001:db8::a weight 100",
        ]
    );
    let vpp = apply(vpp, &p1.ops);
    assert!(plan(&vpp, &d1.vpp, Scope::All, &FlushSet::new()).is_empty());

    // p1 goes down: `web` flushes (flush-on-down), `drain` only drains.
    let flush = flush_targets(&c, "p1", Up, Down);
    assert!(flush.contains(&web, &ip("10.0.0.1")));
    assert!(!flush.contains(&drain, &ip("10.0.0.1")));
    let down = st(&[("p1", Down), ("p2", Up), ("f1", Up), ("v6a", Up)]);
    let d2 = desired(&c, &down, &none);
    let p_web = plan(&vpp, &d2.vpp, Scope::Vip(web), &flush);
    assert_eq!(
        p_web.to_string(),
        "as weight 192.0.2.1/32 tcp:80 10.0.0.1 weight 0 flush\n"
    );
    let p_drain = plan(&vpp, &d2.vpp, Scope::Vip(drain), &flush);
    assert_eq!(
        p_drain.to_string(),
        "as weight 192.0.2.2/32 udp:53 10.0.0.1 weight 0\n"
    );
    let vpp = apply(apply(vpp, &p_web.ops), &p_drain.ops);

    // Later the operator disables p1, already at 0 in VPP: one flush for both VIPs, once.
    let flush = flush_targets(&c, "p1", Down, Disabled);
    let disabled = st(&[("p1", Disabled), ("p2", Up), ("f1", Up), ("v6a", Up)]);
    let d3 = desired(&c, &disabled, &none);
    let p3 = plan(&vpp, &d3.vpp, Scope::All, &flush);
    assert_eq!(
        p3.to_string(),
        "as weight 192.0.2.1/32 tcp:80 10.0.0.1 weight 0 flush\nas weight 192.0.2.2/32 udp:53 10.0.0.1 weight 0 flush\n"
    );
    let vpp = apply(vpp, &p3.ops);
    // The next periodic sync sends nothing.
    assert!(plan(&vpp, &d3.vpp, Scope::All, &FlushSet::new()).is_empty());

    // A reload drops the `six` frontend: the full sync removes its VIP, flushing its AS.
    let mut smaller = c.clone();
    smaller.frontends.retain(|f| f.name != "six");
    let d4 = desired(&smaller, &disabled, &none);
    let p4 = plan(&vpp, &d4.vpp, Scope::All, &FlushSet::new());
    assert_eq!(
        p4.to_string(),
        "as del 2001:db8::80/128 any 2001:db8::a flush\nvip del 2001:db8::80/128 any\n"
    );
    // Pausing is not a flushing transition; unknown backends ask for nothing either.
    assert!(flush_targets(&c, "p2", Up, Paused).is_empty());
    assert!(flush_targets(&c, "nope", Up, Disabled).is_empty());
    assert!(flush_targets(&c, "p2", Unknown, Unknown).is_empty());
}

fn arb_state() -> impl proptest::strategy::Strategy<Value = BackendState> {
    use proptest::prelude::*;
    prop_oneof![
        Just(Unknown),
        Just(Up),
        Just(Down),
        Just(Paused),
        Just(Disabled),
        Just(Removed)
    ]
}

proptest::proptest! {
    #[test]
    fn desired_weights_follow_the_rules(
        s in proptest::collection::vec(arb_state(), 4),
        w in proptest::collection::vec(0u8..=120, 3),
    ) {
        use proptest::prop_assert;
        use proptest::prop_assert_eq;
        let c = cfg();
        let names = ["p1", "p2", "f1", "v6a"];
        let states: BTreeMap<String, BackendState> =
            names.iter().zip(&s).map(|(n, st)| ((*n).to_owned(), *st)).collect();
        let mut ov = WeightOverrides::new();
        ov.set("web", "primary", "p2", w[0]);
        ov.set("web", "fallback", "f1", w[1]);
        ov.set("drain", "only", "p1", w[2]);
        let d = desired(&c, &states, &ov);
        for fe in &c.frontends {
            let (_, vip, fw) = desired_vip(&c, fe, &states, &ov);
            prop_assert_eq!(d.frontends[&fe.name], fw.state);
            prop_assert_eq!(&vip, &d.vpp.vips[&vip_key(fe)]);
            let fw = &fw;
            let mut any_weight = false;
            for (i, pool) in fw.pools.iter().enumerate() {
                for m in &pool.members {
                    prop_assert!(m.effective.weight <= 100);
                    if m.effective.weight > 0 {
                        any_weight = true;
                        prop_assert_eq!(m.state, Up);
                        prop_assert_eq!(i, fw.active_pool);
                    }
                    prop_assert_eq!(m.effective.flush, m.state.flushes(fe.flush_on_down));
                    let addr = c.backend(m.backend).unwrap().address;
                    prop_assert_eq!(vip.ases.contains_key(&addr), m.state != Removed);
                }
            }
            // The active pool is the first with an up member.
            let first_up = fw.pools.iter().position(|p| p.members.iter().any(|m| m.state == Up));
            prop_assert_eq!(fw.active_pool, first_up.unwrap_or(0));
            let expected = if any_weight {
                FrontendState::Up
            } else if fw.pools.iter().flat_map(|p| &p.members).all(|m| m.state == Unknown) {
                FrontendState::Unknown
            } else {
                FrontendState::Down
            };
            prop_assert_eq!(fw.state, expected);
        }
        // From an empty VPP, one full sync reaches the desired state and the next is empty.
        let p = plan(&VppState::new(), &d.vpp, Scope::All, &FlushSet::new());
        let vpp = apply(VppState::new(), &p.ops);
        prop_assert!(vpp.converged(&d.vpp));
        prop_assert!(plan(&vpp, &d.vpp, Scope::All, &FlushSet::new()).is_empty());
    }
}

/// The desired state with every membership's decision.
#[derive(Default)]
struct Reference<'a> {
    vpp: VppState,
    /// Each frontend's decisions, by name.
    frontends: BTreeMap<String, maglev_core::weights::FrontendWeights<'a>>,
}

/// The desired state the simple way, as the rules say it: per frontend, the decisions of
/// `effective_weights` over the states of the config's backends (a name the config does not
/// know is `unknown`), then one AS per address in membership order, the first one winning.
fn reference_desired<'a>(
    c: &'a Config,
    states: &BTreeMap<String, BackendState>,
    ov: &WeightOverrides,
) -> Reference<'a> {
    use maglev_core::plan::{As, Vip};
    use maglev_core::weights::{BackendStates, effective_weights};
    let known: BTreeMap<String, BackendState> = c
        .backends
        .keys()
        .map(|name| (name.clone(), states.state_of(name)))
        .collect();
    let mut d = Reference::default();
    for fe in &c.frontends {
        let fw = effective_weights(fe, &known, ov);
        let mut vip = Vip::new(fe.encap.into(), fe.src_ip_sticky, fe.new_flows_table_length);
        for m in fw.pools.iter().flat_map(|p| &p.members) {
            if m.state == Removed {
                continue;
            }
            if let Some(b) = c.backend(m.backend)
                && !vip.ases.contains_key(&b.address)
            {
                vip.ases.insert(
                    b.address,
                    As {
                        weight: m.effective.weight,
                        flush: m.effective.flush,
                    },
                );
            }
        }
        d.vpp.vips.entry(vip_key(fe)).or_insert(vip);
        d.frontends.insert(fe.name.clone(), fw);
    }
    d
}

/// Backend number `i`'s name. The names are chosen to be hard for a table that keeps a name's
/// first 32 bytes and its length: short names, long names whose first 32 bytes are all the
/// same, names of exactly 31 and 32 bytes, and names that differ from a short one only by a
/// trailing zero byte (same zero-padded head, one byte longer).
fn backend_name(i: usize) -> String {
    match i % 4 {
        0 => format!("b{i}"),
        1 => format!("{}{i}", "h".repeat(32)),
        2 => format!("{}{i}", "h".repeat(30)),
        _ => format!("b{}\0", i - 3),
    }
}

/// A random config built directly (not through the loader, so it can also break the rules the
/// loader enforces: shared addresses, unknown members, repeated VIPs, repeated members).
fn arb_config() -> impl proptest::strategy::Strategy<Value = Config> {
    use maglev_core::config::{
        Backend, Encap as CEncap, Frontend, HealthChecker, Pool, PoolMember, Protocol,
    };
    use proptest::collection::vec;
    use proptest::prelude::*;
    let backends = vec(0u8..12, 1..12);
    let member = (0usize..14, 0u8..=120);
    let pool = vec(member, 1..6);
    let frontend = (0u8..6, vec(pool, 1..4), any::<bool>(), any::<bool>());
    (backends, vec(frontend, 0..6)).prop_map(|(addresses, frontends)| {
        let backends = addresses
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let name = backend_name(i);
                let backend = Backend {
                    name: name.clone(),
                    address: IpAddr::from([10, 0, 0, *a]),
                    healthcheck: None,
                    enabled: true,
                };
                (name, backend)
            })
            .collect();
        let frontends = frontends
            .into_iter()
            .enumerate()
            .map(|(i, (vip, pools, sticky, flush))| {
                let address = IpAddr::from([192, 0, 2, vip]);
                Frontend {
                    name: format!("f{i}"),
                    description: String::new(),
                    address,
                    prefix: ipnet::IpNet::from(address),
                    protocol: Protocol::Tcp,
                    port: 80,
                    pools: pools
                        .into_iter()
                        .enumerate()
                        .map(|(p, members)| Pool {
                            name: format!("p{p}"),
                            backends: members
                                .into_iter()
                                .map(|(b, weight)| PoolMember {
                                    backend: backend_name(b),
                                    weight,
                                })
                                .collect(),
                        })
                        .collect(),
                    src_ip_sticky: sticky,
                    flush_on_down: flush,
                    new_flows_table_length: 1024,
                    encap: CEncap::Gre4,
                }
            })
            .collect();
        Config {
            healthchecker: HealthChecker::default(),
            vpp: None,
            healthchecks: BTreeMap::new(),
            backends,
            frontends,
        }
    })
}

proptest::proptest! {
    #[test]
    fn desired_state_equals_the_reference(
        c in arb_config(),
        s in proptest::collection::vec(arb_state(), 14),
        w in proptest::collection::vec((0usize..6, 0usize..4, 0usize..14, 0u8..=120), 0..4),
        pick in proptest::collection::vec(0usize..8, 0..5),
    ) {
        let states: BTreeMap<String, BackendState> =
            s.iter().enumerate().map(|(i, st)| (backend_name(i), *st)).collect();
        let mut ov = WeightOverrides::new();
        for (f, p, b, weight) in w {
            ov.set(&format!("f{f}"), &format!("p{p}"), &backend_name(b), weight);
        }
        let reference = reference_desired(&c, &states, &ov);
        let index = ConfigIndex::new(Arc::new(c.clone()));
        let dense = index.backend_states(&states);
        let fast = desired_state(&index, &dense, &ov);
        proptest::prop_assert_eq!(&fast.vpp, &reference.vpp);
        let summaries: Vec<FrontendSummary<'_>> = c
            .frontends
            .iter()
            .map(|fe| FrontendSummary::of(fe, &reference.frontends[&fe.name]))
            .collect();
        proptest::prop_assert_eq!(&fast.frontends, &summaries);
        // One frontend alone: its decisions, and its VIP where it is the first with that key.
        for fe in &c.frontends {
            let (key, vip, fw) = desired_vip(&c, fe, &states, &ov);
            proptest::prop_assert_eq!(key, vip_key(fe));
            proptest::prop_assert_eq!(&fw, &reference.frontends[&fe.name]);
            let first = c.frontends.iter().find(|o| vip_key(o) == key).unwrap();
            if first.name == fe.name {
                proptest::prop_assert_eq!(&vip, &reference.vpp.vips[&key]);
            }
        }
        // Some frontends, in any order: their summaries, and each VIP as the first of them
        // with that key builds it.
        let n = c.frontends.len();
        let some: Vec<usize> = pick.iter().map(|&i| i % n.max(1)).chain([n + 3]).collect();
        let part = desired_frontends(&index, &some, &dense, &ov);
        let mut vips = BTreeMap::new();
        let mut expected = Vec::new();
        for &f in some.iter().filter(|&&f| f < n) {
            let fe = &c.frontends[f];
            let (key, vip, fw) = desired_vip(&c, fe, &states, &ov);
            vips.entry(key).or_insert(vip);
            expected.push(FrontendSummary::of(fe, &fw));
        }
        proptest::prop_assert_eq!(&part.vpp.vips, &vips);
        proptest::prop_assert_eq!(&part.frontends, &expected);
    }
}

proptest::proptest! {
    #[test]
    fn the_index_numbers_what_the_config_names(c in arb_config()) {
        use proptest::prop_assert_eq;
        let index = ConfigIndex::new(Arc::new(c.clone()));
        prop_assert_eq!(index.backends(), c.backends.len());
        for (number, (name, backend)) in c.backends.iter().enumerate() {
            prop_assert_eq!(index.backend_number(name), Some(number));
            prop_assert_eq!(index.backend_address(number), Some(backend.address));
            // Each frontend listing the backend, once, in config order.
            let users: Vec<u32> = (0u32..)
                .zip(&c.frontends)
                .filter(|(_, fe)| fe.membership(name).is_some())
                .map(|(f, _)| f)
                .collect();
            prop_assert_eq!(index.frontends_of(number), users.as_slice());
        }
        for unknown in ["", "b1\0", "nope"] {
            prop_assert_eq!(index.backend_number(unknown), None);
        }
        prop_assert_eq!(index.backend_address(c.backends.len()), None);
        prop_assert_eq!(index.frontends_of(c.backends.len()), &[] as &[u32]);
        for (f, fe) in c.frontends.iter().enumerate() {
            prop_assert_eq!(index.frontend_number(&fe.name), Some(f));
            prop_assert_eq!(index.vip(f), Some(vip_key(fe)));
        }
        prop_assert_eq!(index.vip(c.frontends.len()), None);
    }
}
