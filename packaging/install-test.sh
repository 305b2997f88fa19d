#!/usr/bin/env bash
# Install test of the Debian packages in a throwaway root: an overlay of this machine's root
# (so dpkg, adduser and deb-systemd-helper are the real ones) in a private mount namespace,
# with its own tmpfs /run (no running systemd there: nothing is started) and nothing written
# to the host. Needs root (unshare, mount).
#
#   packaging/install-test.sh OLD_DIR NEW_DIR
#
# OLD_DIR and NEW_DIR each hold vpp-maglevd_*.deb and vpp-maglev_*.deb, NEW_DIR's with a
# higher version (`cargo xtask deb --revision 2 --out NEW_DIR`). Checks: install creates the
# maglevd user and group (in group vpp, which the test creates first), installs the
# conffiles and enables the unit; `systemd-analyze verify` accepts the installed units; an
# upgrade keeps an edited config; purge removes the user, the group and the conffiles.
set -euo pipefail

if [ -z "${MAGLEV_INSTALL_TEST_INNER:-}" ]; then
    [ $# -eq 2 ] || { echo "usage: $0 OLD_DIR NEW_DIR" >&2; exit 2; }
    old=$(cd "$1" && pwd)
    new=$(cd "$2" && pwd)
    exec unshare --mount --propagation private --fork \
        env MAGLEV_INSTALL_TEST_INNER=1 bash "$0" "$old" "$new"
fi

old=$1
new=$2
base=$(mktemp -d)
mount -t tmpfs tmpfs "$base"
mkdir "$base/upper" "$base/work" "$base/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$base/upper,workdir=$base/work" "$base/root"
root=$base/root
mount --bind /proc "$root/proc"
mount --rbind /dev "$root/dev"
mount -t tmpfs tmpfs "$root/run"
mount -t tmpfs tmpfs "$root/tmp"
mkdir -p "$root/debs/old" "$root/debs/new"
cp "$old"/vpp-maglev*_*.deb "$root/debs/old/"
cp "$new"/vpp-maglev*_*.deb "$root/debs/new/"

# shellcheck disable=SC2016 # the script runs inside the chroot
chroot "$root" /bin/bash -euo pipefail -c '
fail() { echo "install test: FAIL: $*" >&2; exit 1; }
step() { echo "install test: $*"; }
# Never start anything, whatever the scripts think of the init system.
printf "#!/bin/sh\nexit 101\n" > /usr/sbin/policy-rc.d
chmod 755 /usr/sbin/policy-rc.d
getent passwd maglevd >/dev/null && fail "a maglevd user exists before the install"
getent group vpp >/dev/null || groupadd --system vpp

step "install $(cd /debs/old && echo *.deb)"
dpkg -i /debs/old/*.deb </dev/null
getent passwd maglevd >/dev/null || fail "no maglevd user"
getent group maglevd >/dev/null || fail "no maglevd group"
[ "$(getent passwd maglevd | cut -d: -f6)" = /nonexistent ] || fail "maglevd home is not /nonexistent"
[ "$(id -u maglevd)" -lt 1000 ] || fail "maglevd is not a system user"
id -nG maglevd | tr " " "\n" | grep -qx vpp || fail "maglevd is not in group vpp"
for f in /etc/vpp-maglev/maglev.yaml /etc/default/vpp-maglev; do
    [ -f "$f" ] || fail "$f missing"
    dpkg-query -W -f="\${Conffiles}\n" vpp-maglevd | grep -q " $f " || fail "$f is not a conffile"
done
[ -L /etc/systemd/system/multi-user.target.wants/vpp-maglev.service ] || fail "vpp-maglev.service not enabled"
/usr/sbin/maglevd --version >/dev/null || fail "the installed maglevd does not run"
/usr/sbin/maglevd --check --config /etc/vpp-maglev/maglev.yaml 2>/dev/null || fail "the installed config does not validate"
/usr/bin/maglevc --version >/dev/null || fail "the installed maglevc does not run"
for unit in /lib/systemd/system/vpp-maglev*.service; do
    step "systemd-analyze verify $unit"
    # man pages: checked by their own CI step (they may come from another subcommand)
    systemd-analyze verify --man=no "$unit"
done

step "upgrade to $(cd /debs/new && echo *.deb) with an edited config"
echo "# edited by the operator" >> /etc/vpp-maglev/maglev.yaml
before=$(dpkg-query -W -f="\${Version}" vpp-maglevd)
dpkg -i /debs/new/*.deb </dev/null
after=$(dpkg-query -W -f="\${Version}" vpp-maglevd)
dpkg --compare-versions "$after" gt "$before" || fail "version $after after upgrading from $before"
grep -qx "# edited by the operator" /etc/vpp-maglev/maglev.yaml || fail "the upgrade lost the edited config"
getent passwd maglevd >/dev/null || fail "the upgrade lost the maglevd user"

step "purge"
dpkg --purge vpp-maglevd vpp-maglev </dev/null
getent passwd maglevd >/dev/null && fail "purge left the maglevd user"
getent group maglevd >/dev/null && fail "purge left the maglevd group"
for f in /etc/vpp-maglev/maglev.yaml /etc/default/vpp-maglev /usr/sbin/maglevd /usr/bin/maglevc \
         /etc/systemd/system/multi-user.target.wants/vpp-maglev.service; do
    [ ! -e "$f" ] || fail "purge left $f"
done
step "ok"
'
