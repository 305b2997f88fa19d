#!/usr/bin/env bash
# Measures HAProxy's CPU per plain TCP health check on this machine, with the workload of
# `cargo bench -p benches --bench checker`: N servers checked every second against listeners on
# loopback that never accept. Prints CPU microseconds per check (utime+stime of the HAProxy
# process over the window, divided by the checks the kernel counted as failed attempts: the
# check resets the connection in SYN-RECV).
#
# Usage: benches/haproxy/compare.sh [N] [WINDOW_SECS] [LISTENERS]
# Needs: haproxy (Debian package), python3. Runs as any user; only loopback traffic.
set -euo pipefail
n=${1:-10000}
window=${2:-30}
listeners=${3:-1}
port=18080
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT

# Listeners: 127.0.1.1 .. 127.0.1.<listeners>, backlog 4096, never accepting.
python3 - "$listeners" "$port" <<'PY' &
import socket, sys, time
socks = []
for i in range(int(sys.argv[1])):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((f"127.0.1.{i % 250 + 1}", int(sys.argv[2])))
    s.listen(4096)
    socks.append(s)
time.sleep(10**6)
PY

{
  echo "global"
  echo "  nbthread 1"
  echo "  maxconn 4000"
  echo "  spread-checks 5"
  echo "  stats socket $dir/stats.sock"
  echo "defaults"
  echo "  mode tcp"
  echo "  timeout connect 1s"
  echo "  timeout client 5s"
  echo "  timeout server 5s"
  echo "backend be"
  for i in $(seq 0 $((n - 1))); do
    echo "  server s$i 127.0.1.$((i % listeners % 250 + 1)):$port check inter 1s fall 3 rise 2"
  done
} >"$dir/haproxy.cfg"

sleep 1
haproxy -f "$dir/haproxy.cfg" -db >/dev/null 2>&1 &
pid=$!
sleep 15

cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
run() { awk '{ print $1 }' "/proc/$1/schedstat"; }
fails() { awk '/^Tcp:/ { if (h) print $8; h = 1 }' /proc/net/snmp; }
c0=$(cpu $pid); r0=$(run $pid); f0=$(fails); t0=$(date +%s.%N)
sleep "$window"
c1=$(cpu $pid); r1=$(run $pid); f1=$(fails); t1=$(date +%s.%N)
hz=$(getconf CLK_TCK)
awk -v c=$((c1 - c0)) -v r=$((r1 - r0)) -v f=$((f1 - f0)) -v t0="$t0" -v t1="$t1" -v hz="$hz" -v n="$n" 'BEGIN {
  secs = c / hz; el = t1 - t0
  printf "haproxy: %d servers, window %.1f s, checks counted %d (%.1f/s), CPU %.2f s = %.1f%% of one core, %.1f us per check\n",
    n, el, f, f / el, secs, 100 * secs / el, 1e6 * secs / f
  printf "  on-CPU time (schedstat): %.3f s; %.2f us per check\n", r / 1e9, r / 1e3 / f
}'
