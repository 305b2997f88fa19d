#!/usr/bin/env bash
# Static checks of the Debian packages in DIR (default target/debian):
# - lintian: no errors (warnings are printed; the expected ones are listed in
#   packaging/README.md);
# - `dpkg-deb -c` of each package against packaging/deb/<package>.contents (mode, owner,
#   path; a line starting with `? ` marks a file that may be absent; none does today);
# - shellcheck on the maintainer scripts and the packaging scripts;
# - `systemd-analyze security --offline=yes` of the units, printed (the exposure is in
#   packaging/README.md). `systemd-analyze verify` runs in install-test.sh, where the
#   binaries the units name are installed.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-target/debian}
status=0

echo "== shellcheck"
shellcheck -s sh packaging/deb/vpp-maglevd/postinst packaging/deb/vpp-maglevd/prerm \
    packaging/deb/vpp-maglevd/postrm
shellcheck packaging/check-debs.sh packaging/install-test.sh

for deb in "$dir"/vpp-maglevd_*.deb "$dir"/vpp-maglev_*.deb; do
    pkg=$(dpkg-deb -f "$deb" Package)
    echo "== dpkg-deb -c $pkg"
    expected=packaging/deb/$pkg.contents
    actual=$(dpkg-deb -c "$deb" | awk '{ print $1, $2, $6 }')
    while read -r line; do
        if ! grep -qxF -e "$line" -e "? $line" "$expected"; then
            echo "unexpected in $pkg: $line" >&2
            status=1
        fi
    done <<<"$actual"
    while read -r line; do
        case $line in
            '#'* | '' | '? '*) continue ;;
        esac
        if ! grep -qxF -e "$line" <<<"$actual"; then
            echo "missing from $pkg: $line" >&2
            status=1
        fi
    done <"$expected"
done

echo "== lintian"
# lintian refuses nothing as root but says so; its exit status is 2 on errors.
if ! lintian --fail-on error "$dir"/vpp-maglevd_*.deb "$dir"/vpp-maglev_*.deb; then
    echo "lintian reported errors" >&2
    status=1
fi

echo "== systemd-analyze security"
for unit in packaging/deb/*.service; do
    systemd-analyze security --offline=yes "$unit" | tail -n 1
done

exit "$status"
