#!/usr/bin/env python3
"""Golden vectors for the vpp-binapi codec, produced by VPP's own Python serializer (vpp_papi).

For every message of lb.api, the memclnt handshake and ping messages, show_version, cli_inband
and ip_route_lookup (each with its reply), this script builds values for several variants
(zero/empty, maximum values and long strings/many VLA elements, typical IPv4, typical IPv6),
packs the whole message (header fields included) with vpp_papi's serializer and prints JSON:

    {"papi_version": "...", "vectors": [
        {"message": "lb_add_del_as", "name_crc": "lb_add_del_as_35d72500", "variant": "max",
         "msg_id": 65535, "client_index": 4294967295, "context": 4294967295,
         "values": {...}, "bytes": "<hex of the whole message>"}, ...]}

"values" are in the JSON form of vpp-binapi's `serde` feature: the message body only (no
`_vl_msg_id`, `client_index`, `context`), VLA count fields omitted (the Rust struct derives them
from the vector length), enums and enumflags as integers, unions and `u8[N]` arrays as lists of
byte values, strings as strings.

The API directory is $VPP_API_DIR, else ../shared/vpp-api relative to the repository root.
Nothing is connected: the serializer is used directly.
"""

import json
import os
import random
import sys

try:
    import vpp_papi
    from vpp_papi.vpp_papi import VPPApiJSONFiles
    from vpp_papi import vpp_serializer
except ImportError as e:  # the Rust test turns this into a clear failure message
    sys.stderr.write(f"golden.py: cannot import vpp_papi ({e}); install it with `pip install vpp-papi`\n")
    sys.exit(3)

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))

# The messages covered, by module: all of lb, plus the named ones (with replies).
ALL_OF = ["lb"]
NAMED = [
    "sockclnt_create",
    "sockclnt_create_reply",
    "control_ping",
    "control_ping_reply",
    "show_version",
    "show_version_reply",
    "cli_inband",
    "cli_inband_reply",
    "ip_route_lookup",
    "ip_route_lookup_reply",
]
VARIANTS = ["zero", "max", "ip4", "ip6"]
HEADER_FIELDS = ("_vl_msg_id", "client_index", "context")
LONG_STRING_LEN = 5000
MANY = 300  # VLA "many": min(count type max, MANY); a u8 count thus hits 255


def api_dir():
    d = os.environ.get("VPP_API_DIR") or os.path.join(REPO_ROOT, "..", "shared", "vpp-api")
    if not os.path.isdir(d):
        sys.exit(f"golden.py: api dir {d} not found (set VPP_API_DIR)")
    return d


class Defs:
    """Type definitions from every .api.json file (bare names, without vl_api_/_t)."""

    def __init__(self, files):
        self.types, self.unions, self.enums, self.aliases, self.messages = {}, {}, {}, {}, {}
        self.module_of = {}
        for f in files:
            with open(f) as fh:
                api = json.load(fh)
            mod = os.path.basename(f)[: -len(".api.json")]
            for t in api.get("types", []):
                self.types[t[0]] = fields_of(t[1:])
            for u in api.get("unions", []):
                self.unions[u[0]] = fields_of(u[1:])
            for kind in ("enums", "enumflags"):
                for e in api.get(kind, []):
                    vals = [v for v in e[1:] if isinstance(v, list)]
                    opts = next((v for v in e[1:] if isinstance(v, dict)), {})
                    self.enums[e[0]] = (kind == "enumflags", vals, opts.get("enumtype", "u32"))
            for k, v in api.get("aliases", {}).items():
                self.aliases[k] = v
            for m in api.get("messages", []):
                crc = next(x["crc"] for x in m[1:] if isinstance(x, dict) and "crc" in x)
                self.messages[m[0]] = (fields_of(m[1:]), crc)
                self.module_of[m[0]] = mod


def fields_of(items):
    """Field lists without their option dicts (e.g. `{"default": 100}`)."""
    return [[y for y in x if not isinstance(y, dict)] for x in items if isinstance(x, list)]


def bare(t):
    if t.startswith("vl_api_") and t.endswith("_t"):
        return t[len("vl_api_") : -2]
    return t


INT_RANGES = {
    "u8": (0, 2**8 - 1),
    "u16": (0, 2**16 - 1),
    "u32": (0, 2**32 - 1),
    "u64": (0, 2**64 - 1),
    "i8": (-(2**7), 2**7 - 1),
    "i16": (-(2**15), 2**15 - 1),
    "i32": (-(2**31), 2**31 - 1),
    "i64": (-(2**63), 2**63 - 1),
}


class Gen:
    """Builds a value in two forms at once: ours (JSON for serde) and papi's (pack input)."""

    def __init__(self, defs, variant, rng):
        self.d, self.v, self.rng = defs, variant, rng

    def count_for(self, count_type):
        hi = INT_RANGES.get(count_type, (0, 2**32 - 1))[1]
        if self.v == "zero":
            return 0
        if self.v == "max":
            return min(hi, MANY)
        return self.rng.randint(1, 3)

    def prim(self, t):
        if t == "bool":
            return {"zero": False, "max": True}.get(self.v, self.rng.random() < 0.5)
        if t == "f64":
            return {"zero": 0.0, "max": 1.7976931348623157e308}.get(self.v, round(self.rng.uniform(-1e6, 1e6), 3))
        lo, hi = INT_RANGES[t]
        if self.v == "zero":
            return 0
        if self.v == "max":
            return hi
        if lo < 0 and self.v == "ip6":
            return lo  # signed minimum in the ip6 variant
        return self.rng.randint(lo, hi)

    def string(self, n):
        """n = fixed length (0 for a variable string)."""
        if self.v == "zero":
            return ""
        if self.v == "max":
            return ("maglev-" * 1000)[: n - 1] if n else ("x" * LONG_STRING_LEN)
        s = "vpp-%d.%s" % (self.rng.randint(0, 99), "".join(self.rng.choice("abcdefgh-_ 09") for _ in range(self.rng.randint(0, 20))))
        return s[: n - 1] if n else s

    def value(self, t, ctx=None):
        """Returns (ours, papi) for a value of type t."""
        if t in INT_RANGES or t in ("bool", "f64"):
            x = self.prim(t)
            return x, x
        b = bare(t)
        if b in self.d.enums:
            flags, vals, _ = self.d.enums[b]
            nums = [v for _, v in vals]
            if self.v == "zero":
                x = 0 if flags else nums[0]
            elif self.v == "max":
                x = 0
                if flags:
                    for v in nums:
                        x |= v
                else:
                    x = max(nums)
            else:
                x = self.rng.choice(nums)
                if flags:
                    x |= self.rng.choice(nums)
            if ctx is not None and b == "address_family":
                x = 1 if self.v in ("max", "ip6") else 0
            return x, x
        if b in self.d.aliases:
            a = self.d.aliases[b]
            if "length" in a:
                n = a["length"]
                if a["type"] == "u8":
                    raw = self.bytes_(n)
                    return list(raw), raw
                pairs = [self.value(a["type"]) for _ in range(n)]
                return [p[0] for p in pairs], [p[1] for p in pairs]
            return self.value(a["type"], ctx)
        if b in self.d.unions:
            arms = self.d.unions[b]
            size = max(vpp_serializer.types[a[0]].size for a in arms)
            # the largest arm for ip6/max (e.g. ip6 in address_union), the first otherwise
            arm = max(arms, key=lambda a: vpp_serializer.types[a[0]].size) if self.v in ("max", "ip6") else arms[0]
            ours_arm, papi_arm = self.value(arm[0])
            packed = vpp_serializer.types[arm[0]].pack(papi_arm)
            raw = bytes(packed) + b"\x00" * (size - len(packed))
            return list(raw), {arm[1]: papi_arm}
        if b in self.d.types:
            return self.struct(self.d.types[b])
        raise SystemExit(f"golden.py: unknown type {t}")

    def bytes_(self, n):
        if self.v == "zero":
            return bytes(n)
        if self.v == "max":
            return b"\xff" * n
        return bytes(self.rng.randrange(256) for _ in range(n))

    def struct(self, fields, skip=0):
        counts = {f[3]: f[1] for f in fields if len(f) == 4}
        ours, papi = {}, {}
        lens = {}
        for f in fields[skip:]:
            t, name = f[0], f[1]
            if name in counts:
                continue  # filled in below from the VLA length
            if len(f) == 2:
                o, p = self.value(t, ctx=True)
            elif t == "string":
                o = self.string(f[2])
                p = o
            elif len(f) == 3 and f[2] > 0:
                n = f[2]
                if t == "u8":
                    raw = self.bytes_(n)
                    o, p = list(raw), raw
                else:
                    pairs = [self.value(t) for _ in range(n)]
                    o, p = [x[0] for x in pairs], [x[1] for x in pairs]
            else:  # VLA with a count field, or a legacy trailing VLA
                count_type = next((g[0] for g in fields if g[1] == f[3]), "u32") if len(f) == 4 else "u32"
                k = self.count_for(bare(count_type))
                if t == "u8":
                    raw = self.bytes_(k)
                    o, p = list(raw), raw
                else:
                    pairs = [self.value(t) for _ in range(k)]
                    o, p = [x[0] for x in pairs], [x[1] for x in pairs]
                if len(f) == 4:
                    lens[f[3]] = k
            ours[name], papi[name] = o, p
        for c, k in lens.items():
            papi[c] = k
        return ours, papi


def header_skip(fields):
    """Leading header fields excluded from our structs (vpp-protocol §2.2)."""
    names = [f[1] for f in fields[1:3]]
    if names == ["client_index", "context"]:
        return 3
    if names[:1] in (["context"], ["client_index"]):
        return 2
    return 1


def main():
    d = api_dir()
    files = sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".api.json"))
    defs = Defs(files)
    papi_msgs = VPPApiJSONFiles.load_api(apifiles=files)[1]
    names = sorted(m for m, mod in defs.module_of.items() if mod in ALL_OF) + NAMED
    rng = random.Random(20260521)
    vectors = []
    for name in names:
        fields, crc = defs.messages[name]
        skip = header_skip(fields)
        for variant in VARIANTS:
            g = Gen(defs, variant, rng)
            ours, papi = g.struct(fields, skip)
            hdr = {"zero": (0, 0, 0), "max": (0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF)}.get(
                variant, (rng.randrange(0x10000), 0x80000001, rng.randrange(2**32))
            )
            for hname, hval in zip(HEADER_FIELDS, hdr):
                if any(f[1] == hname for f in fields[:skip]):
                    papi[hname] = hval
            raw = papi_msgs[name].pack(papi)
            vectors.append(
                {
                    "message": name,
                    "name_crc": f"{name}_{crc[2:]}",
                    "variant": variant,
                    "msg_id": hdr[0],
                    "client_index": hdr[1],
                    "context": hdr[2],
                    "values": ours,
                    "bytes": bytes(raw).hex(),
                }
            )
    json.dump({"papi_version": getattr(vpp_papi, "__version__", "unknown"), "vectors": vectors}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
