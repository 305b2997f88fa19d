#!/usr/bin/env python3
"""Drive the lb plugin of a VPP (or of vpp-sim) with VPP's own Python client, vpp_papi.

Usage: lb_workflow.py API_SOCKET [API_DIR] [STATS_SOCKET]

API_DIR defaults to $VPP_API_DIR, else ../shared/vpp-api relative to the repository root.
With STATS_SOCKET, the lb counters and /net/route/to are checked against the VIP's pool index
and route stats index through vpp_papi's stats reader.
Exits 0 when every check passes, 1 on the first mismatch (with a message), 2 on setup errors.
Expected bucket counts come from the Maglev reference vectors in the protocol notes.
"""

import os
import re
import sys

try:
    from vpp_papi import VPPApiClient
except ImportError as e:  # pragma: no cover - exercised by the Rust test's error path
    print(f"cannot import vpp_papi ({e}); run: pip install vpp-papi", file=sys.stderr)
    sys.exit(2)

ADDRESS_IP4 = 0
ADDRESS_IP6 = 1
GRE4 = 0
GRE6 = 1
USED = 1


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def expect_rv(reply, want, what):
    check(reply.retval == want, f"{what}: retval {reply.retval}, want {want}")


def api_dir_default():
    env = os.environ.get("VPP_API_DIR")
    if env:
        return env
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.abspath(os.path.join(here, "..", "..", ".."))
    return os.path.join(repo, "..", "shared", "vpp-api")


def pfx(addr, plen):
    return f"{addr}/{plen}"


def as_rows(vpp, vip_addr=None, port=None):
    rows = vpp.api.lb_as_v2_dump()
    out = []
    for r in rows:
        if vip_addr is not None and str(r.vip.pfx.ip) != vip_addr:
            continue
        if port is not None and r.vip.port != port:
            continue
        out.append(r)
    return out


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sock = sys.argv[1]
    apidir = sys.argv[2] if len(sys.argv) > 2 and sys.argv[2] else api_dir_default()
    stats_sock = sys.argv[3] if len(sys.argv) > 3 else None
    if not os.path.isdir(apidir):
        print(f"api dir {apidir} not found (set VPP_API_DIR)", file=sys.stderr)
        sys.exit(2)

    vpp = VPPApiClient(apidir=apidir, server_address=sock, use_socket=True)
    vpp.connect("lb-workflow")
    try:
        run(vpp, stats_sock)
    finally:
        vpp.disconnect()
    print("lb_workflow: all checks passed")


def check_stats(vpp, stats_sock, pool_index, vip):
    from vpp_papi.vpp_stats import VPPStats

    stats = VPPStats(socketname=stats_sock)
    stats.connect()
    try:
        for name in ("packet from existing sessions", "first session packet",
                     "untracked packet", "no server configured"):
            per_thread = stats[name]
            check(len(per_thread) >= 1 and len(per_thread[0]) > pool_index,
                  f"stats {name!r} does not cover VIP pool index {pool_index}: {per_thread}")
            check(per_thread[0][pool_index] == 0, f"stats {name!r}[{pool_index}] not zero")
        r = vpp.api.ip_route_lookup(table_id=0, exact=1, prefix=pfx(vip, 32))
        expect_rv(r, 0, "ip_route_lookup of the VIP")
        routes = stats["/net/route/to"]
        check(len(routes[0]) > r.route.stats_index,
              f"/net/route/to lacks stats index {r.route.stats_index}")
        print(f"lb_workflow: stats checked (VIP pool index {pool_index}, "
              f"route stats index {r.route.stats_index})")
    finally:
        stats.disconnect()


def run(vpp, stats_sock=None):
    # Every lb message must be registered: papi only does so when name and CRC matched.
    for name in ("lb_conf", "lb_conf_get", "lb_add_del_vip_v2", "lb_add_del_as_v2",
                 "lb_as_set_weight", "lb_as_v2_dump", "lb_vip_dump", "lb_flush_vip",
                 "cli_inband", "show_version", "control_ping"):
        check(hasattr(vpp.api, name), f"papi did not register {name} (missing or CRC mismatch)")

    v = vpp.api.show_version()
    expect_rv(v, 0, "show_version")
    check(v.program == "vpe", f"show_version program {v.program!r}")
    cli = vpp.api.cli_inband(cmd="show version")
    check(cli.reply.startswith("vpp v"), f"show version output {cli.reply!r}")

    # Global conf round trip.
    expect_rv(vpp.api.lb_conf(ip4_src_address="192.0.2.1", ip6_src_address="2001:db8::1",
                              sticky_buckets_per_core=2048, flow_timeout=30), 0, "lb_conf")
    c = vpp.api.lb_conf_get()
    expect_rv(c, 0, "lb_conf_get")
    check(str(c.ip4_src_address) == "192.0.2.1", f"ip4 src {c.ip4_src_address}")
    check(str(c.ip6_src_address) == "2001:db8::1", f"ip6 src {c.ip6_src_address}")
    check(c.sticky_buckets_per_core == 2048 and c.flow_timeout == 30, f"conf {c}")
    expect_rv(vpp.api.lb_conf(ip4_src_address="192.0.2.1", ip6_src_address="2001:db8::1",
                              sticky_buckets_per_core=1000, flow_timeout=30), -70,
              "lb_conf with buckets not a power of two")

    # A VIP, added twice.
    vip = "10.0.0.1"
    r = vpp.api.lb_add_del_vip_v2(pfx=pfx(vip, 32), protocol=6, port=80, encap=GRE4,
                                  new_flows_table_length=1024)
    expect_rv(r, 0, "lb_add_del_vip_v2 add")
    r = vpp.api.lb_add_del_vip_v2(pfx=pfx(vip, 32), protocol=6, port=80, encap=GRE4,
                                  new_flows_table_length=1024)
    expect_rv(r, -81, "adding an existing VIP")
    r = vpp.api.lb_add_del_vip_v2(pfx=pfx("10.0.0.9", 32), protocol=6, port=80, encap=GRE4,
                                  new_flows_table_length=1000)
    expect_rv(r, -70, "VIP with a table length not a power of two")

    # ASes with weights 100 / 50 / 0: reference counts 674 / 350 / 0 for N = 1024.
    for addr, w in (("10.0.0.1", 100), ("10.0.0.2", 50), ("10.0.0.3", 0)):
        r = vpp.api.lb_add_del_as_v2(pfx=pfx(vip, 32), protocol=6, port=80,
                                     as_address=addr, weight=w)
        expect_rv(r, 0, f"lb_add_del_as_v2 {addr}")
    r = vpp.api.lb_add_del_as_v2(pfx=pfx("10.9.9.9", 32), protocol=6, port=80,
                                 as_address="10.0.0.1", weight=1)
    expect_rv(r, -6, "AS on an unknown VIP")
    r = vpp.api.lb_add_del_as_v2(pfx=pfx(vip, 32), protocol=6, port=80,
                                 as_address="10.0.0.1", weight=100)
    expect_rv(r, -81, "adding an existing AS")

    got = {str(a.app_srv): (a.flags, a.weight, a.num_buckets) for a in as_rows(vpp, vip, 80)}
    want = {"10.0.0.1": (USED, 100, 674), "10.0.0.2": (USED, 50, 350), "10.0.0.3": (USED, 0, 0)}
    check(got == want, f"buckets after add: {got}, want {want}")

    # Set every weight to 1: the unweighted table, 342 / 341 / 341.
    for addr in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        expect_rv(vpp.api.lb_as_set_weight(pfx=pfx(vip, 32), protocol=6, port=80,
                                           as_address=addr, weight=1), 0, f"set weight {addr}")
    expect_rv(vpp.api.lb_as_set_weight(pfx=pfx(vip, 32), protocol=6, port=80,
                                       as_address="10.0.0.77", weight=1), -6,
              "set weight of an unknown AS")
    got = sorted(a.num_buckets for a in as_rows(vpp, vip, 80))
    check(got == [341, 341, 342], f"buckets with weights 1: {got}")

    # VIP dump: one VIP, with the details of the master encoding.
    vips = vpp.api.lb_vip_dump()
    check(len(vips) == 1, f"lb_vip_dump returned {len(vips)} VIPs")
    d = vips[0]
    check(str(d.vip.pfx) == "10.0.0.1/32", f"vip pfx {d.vip.pfx}")
    check(d.vip.protocol == 6 and d.vip.port == 80, f"vip proto/port {d.vip}")
    check(d.flow_table_length == 1024, f"flow_table_length {d.flow_table_length}")
    # lb_vip_dump ignores its filter.
    vips = vpp.api.lb_vip_dump(pfx=pfx("10.99.99.99", 32), protocol=17, port=53)
    check(len(vips) == 1, f"filtered lb_vip_dump returned {len(vips)} VIPs, want 1")
    # A prefix-filtered lb_as_v2_dump finds nothing for an IPv4 VIP.
    rows = vpp.api.lb_as_v2_dump(pfx=pfx(vip, 32), protocol=6, port=80)
    check(len(rows) == 0, f"filtered lb_as_v2_dump returned {len(rows)} rows, want 0")

    # The CLI shows the pool index and per-AS buckets.
    out = vpp.api.cli_inband(cmd="show lb vips verbose").reply
    m = re.search(r"ip4-gre4 \[(\d+)\] 10\.0\.0\.1/32", out)
    check(m is not None, f"show lb vips verbose lacks the VIP line: {out!r}")
    pool_index = int(m.group(1))
    check(pool_index >= 1, f"pool index {pool_index}")
    if stats_sock:
        check_stats(vpp, stats_sock, pool_index, vip)
    check(re.search(r"10\.0\.0\.1 weight:1 buckets:342 flows:\d+ dpo:\d+ used", out) is not None,
          f"CLI buckets: {out!r}")
    check("protocol:6 port:80" in out, f"CLI protocol/port: {out!r}")

    expect_rv(vpp.api.lb_flush_vip(pfx=pfx(vip, 32), protocol=6, port=80), 0, "lb_flush_vip")
    expect_rv(vpp.api.lb_flush_vip(pfx=pfx("10.99.99.99", 32), protocol=6, port=80), 0,
              "lb_flush_vip of a VIP that does not exist")

    # Delete one AS: it stays listed, unused, with 0 buckets.
    expect_rv(vpp.api.lb_add_del_as_v2(pfx=pfx(vip, 32), protocol=6, port=80,
                                       as_address="10.0.0.3", is_del=True, is_flush=True),
              0, "delete AS")
    got = {str(a.app_srv): (a.flags & USED, a.num_buckets) for a in as_rows(vpp, vip, 80)}
    check(got.get("10.0.0.3") == (0, 0), f"deleted AS row {got}")
    check(sum(b for _, b in got.values()) == 1024, f"buckets after delete {got}")

    # Delete the VIP (ASes first, as the daemon does): gone from lb_vip_dump, ASes linger.
    for addr in ("10.0.0.1", "10.0.0.2"):
        expect_rv(vpp.api.lb_add_del_as_v2(pfx=pfx(vip, 32), protocol=6, port=80,
                                           as_address=addr, is_del=True, is_flush=True),
                  0, f"delete AS {addr}")
    expect_rv(vpp.api.lb_add_del_vip_v2(pfx=pfx(vip, 32), protocol=6, port=80, is_del=True),
              0, "delete VIP")
    expect_rv(vpp.api.lb_add_del_vip_v2(pfx=pfx(vip, 32), protocol=6, port=80, is_del=True),
              -6, "delete a deleted VIP")
    check(len(vpp.api.lb_vip_dump()) == 0, "lb_vip_dump still lists the deleted VIP")
    rows = as_rows(vpp, vip, 80)
    check(len(rows) == 3 and all(a.flags & USED == 0 for a in rows),
          f"ASes of the deleted VIP: {rows}")
    out = vpp.api.cli_inband(cmd="show lb vips verbose").reply
    check(re.search(r"10\.0\.0\.1/32 removed", out) is not None, f"removed VIP in CLI: {out!r}")

    # Re-create it: old unused ASes are listed next to the new used one.
    expect_rv(vpp.api.lb_add_del_vip_v2(pfx=pfx(vip, 32), protocol=6, port=80, encap=GRE4,
                                        new_flows_table_length=1024), 0, "re-add VIP")
    expect_rv(vpp.api.lb_add_del_as_v2(pfx=pfx(vip, 32), protocol=6, port=80,
                                       as_address="10.0.0.1", weight=100), 0, "re-add AS")
    rows = as_rows(vpp, vip, 80)
    used = [a for a in rows if a.flags & USED]
    check(len(rows) == 4 and len(used) == 1 and used[0].num_buckets == 1024,
          f"rows after re-add: {rows}")

    # IPv6 VIP: the prefix filter works there.
    vip6 = "2001:db8::10"
    expect_rv(vpp.api.lb_add_del_vip_v2(pfx=pfx(vip6, 128), protocol=17, port=53, encap=GRE6,
                                        new_flows_table_length=16, src_ip_sticky=True),
              0, "add IPv6 VIP")
    expect_rv(vpp.api.lb_add_del_as_v2(pfx=pfx(vip6, 128), protocol=17, port=53,
                                       as_address="10.0.0.1", weight=1), -97,
              "IPv4 AS on a GRE6 VIP")
    for addr in ("2001:db8::a", "2001:db8::b"):
        expect_rv(vpp.api.lb_add_del_as_v2(pfx=pfx(vip6, 128), protocol=17, port=53,
                                           as_address=addr, weight=100), 0, f"add AS {addr}")
    rows = vpp.api.lb_as_v2_dump(pfx=pfx(vip6, 128), protocol=17, port=53)
    check(len(rows) == 2, f"IPv6 filtered dump returned {len(rows)} rows")
    check(sum(a.num_buckets for a in rows) == 16, f"IPv6 buckets {rows}")
    out = vpp.api.cli_inband(cmd="show lb vips verbose").reply
    check(re.search(r"ip6-gre6 \[\d+\] 2001:db8::10/128 src_ip_sticky", out) is not None,
          f"IPv6 VIP in CLI: {out!r}")


if __name__ == "__main__":
    main()
