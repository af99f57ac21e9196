#!/usr/bin/env bash
# suite: slow (tests/run.sh starts it early: 30 s or more)
# The Debian package (CPack DEB, CMakeLists.txt; deploy/debian/) in a clean Debian 12: built with
# `cpack -G DEB`, installed with apt into a container that has nothing but Debian's required
# packages (their files and dpkg records taken from this host, imported with `docker import`: no
# registry), its dependencies coming from a local apt repository of this host's .deb files
# (apt resolves the Depends that dpkg-shlibdeps wrote). Checks: apt installs it; the binary,
# both man pages, the conffile /etc/shipper/shipper.yaml, the systemd units pointing at
# /usr/bin/shipper, the system user `shipper`; the packaged config passes --check; shipper,
# run as that user, ships a json-file line to stdout; `apt-get purge` removes it.
. "$(dirname "$0")/lib.sh"
need_docker
command -v cpack >/dev/null && command -v dpkg-scanpackages >/dev/null ||
    skip "cpack or dpkg-scanpackages (dpkg-dev) not installed"
[ -f /etc/debian_version ] && grep -q '^12' /etc/debian_version || skip "the host is not Debian 12"

log "cpack -G DEB"
(cd "$BUILD" && cmake . >/dev/null && cpack -G DEB -B "$T/pkg" >"$T/cpack.log" 2>&1) ||
    { cat "$T/cpack.log"; fail "cpack"; finish; }
DEB=$(ls "$T"/pkg/shipper_*.deb)
check "the package has its Depends from dpkg-shlibdeps" bash -c \
    "dpkg-deb -f '$DEB' Depends | grep -q 'librdkafka1' && dpkg-deb -f '$DEB' Depends | grep -q 'libcurl4'"

# 1. The clean base image: Debian's required packages and what they depend on, from this host.
pkgs_closure() { # NAMES...: the installed packages they need (Depends, Pre-Depends), recursively
    apt-cache depends --recurse --installed --no-recommends --no-suggests --no-conflicts \
        --no-breaks --no-replaces --no-enhances "$@" 2>/dev/null |
        awk '/^[a-z0-9]/ { print $1 }' | sort -u |
        xargs dpkg-query -W -f='${Package}:${Architecture} ${db:Status-Status}\n' 2>/dev/null |
        awk '$2 == "installed" { print $1 }' | sort -u
}
REQUIRED=$(dpkg-query -W -f='${Package}:${Architecture} ${Priority} ${db:Status-Status}\n' |
    awk '$2 == "required" && $3 == "installed" { print $1 }')
BASE_PKGS=$(pkgs_closure $REQUIRED)
# Named after the package versions: rebuilt when the host's change, reused (kept) otherwise.
BASE=shipper-test-debian12:$(dpkg-query -W $BASE_PKGS | md5sum | cut -c1-12)
if ! docker image inspect "$BASE" >/dev/null 2>&1; then
    log "building $BASE ($(echo "$BASE_PKGS" | wc -l) packages from this host)"
    R="$T/root"
    mkdir -p "$R"/{etc,tmp,usr,var/lib/dpkg/info,var/lib/dpkg/updates,var/cache/apt/archives/partial,var/lib/apt/lists/partial,var/log,root,run}
    chmod 1777 "$R/tmp"
    # Merged /usr: /bin, /sbin, /lib* are symlinks into usr/ first, so the files dpkg lists
    # under /bin or /sbin land in usr/.
    for l in bin sbin lib lib32 lib64 libx32; do [ -L "/$l" ] && ln -sfn "$(readlink "/$l")" "$R/$l"; done
    : >"$R/var/lib/dpkg/status"
    for p in $BASE_PKGS; do
        dpkg-query -s "$p" >>"$R/var/lib/dpkg/status" && echo >>"$R/var/lib/dpkg/status"
        n=${p%%:*}
        cp -a /var/lib/dpkg/info/"$n".* /var/lib/dpkg/info/"$p".* "$R/var/lib/dpkg/info/" 2>/dev/null
        dpkg-query -L "$p"
    done | sort -u | while read -r f; do
        [ -e "$f" ] || [ -L "$f" ] || continue
        [ -d "$f" ] && [ ! -L "$f" ] && continue
        case $f in /bin/* | /sbin/* | /lib/* | /lib64/*) [ -L "/${f:1}" ] || [ -L "/$(cut -d/ -f2 <<<"$f")" ] && f=/usr$f ;; esac
        printf '%s\0' "${f#/}"
    done | sort -zu >"$T/files"
    tar -C / --no-recursion --null -T "$T/files" -cf - | tar -C "$R" -xf - ||
        { fail "copying the base packages' files"; finish; }
    cp /usr/share/base-passwd/passwd.master "$R/etc/passwd"
    cp /usr/share/base-passwd/group.master "$R/etc/group"
    awk -F: '{ print $1 ":*:19000:0:99999:7:::" }' "$R/etc/passwd" >"$R/etc/shadow"
    awk -F: '{ print $1 ":*::" }' "$R/etc/group" >"$R/etc/gshadow"
    chmod 0640 "$R/etc/shadow" "$R/etc/gshadow"
    rm -f "$R"/etc/apt/sources.list "$R"/etc/apt/sources.list.d/*
    : >"$R/etc/hosts"; : >"$R/etc/resolv.conf"; : >"$R/etc/hostname"
    # Imported under a temporary name, named $BASE only once it runs (a broken one is not kept).
    tar -C "$R" --numeric-owner -c . | docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' - "$BASE-new-$$" >/dev/null &&
        docker run --rm --network none "$BASE-new-$$" sh -c 'apt-get --version >/dev/null' &&
        docker tag "$BASE-new-$$" "$BASE"
    docker rmi "$BASE-new-$$" >/dev/null 2>&1
    rm -rf "$R"
fi
check_eq "the base runs, without shipper, libcurl or librdkafka" "clean" \
    "$(docker run --rm --network none "$BASE" sh -c 'dpkg -l shipper libcurl4 librdkafka1 2>/dev/null | grep -q ^ii || echo clean')"

# 2. The local repository: the .deb of every package the package needs that the base lacks.
NEED=$(pkgs_closure $(dpkg-deb -f "$DEB" Depends | tr ',' '\n' | sed 's/(.*)//; s/|.*//; s/ //g'))
# A .deb from the apt cache, else rebuilt from the installed files (dpkg-repack), kept in a cache
# directory under its exact name (package, version): later runs take it from there.
CACHE=${SHIPPER_TEST_CACHE:-/var/tmp/shipper-test-cache}/debs
mkdir -p "$CACHE" "$T/repo"
for p in $(comm -23 <(echo "$NEED") <(echo "$BASE_PKGS")); do
    f=$(dpkg-query -W -f='${Package}_${Version}_${Architecture}.deb' "$p" | sed 's/:/%3a/')
    if [ -f "/var/cache/apt/archives/$f" ]; then
        cp "/var/cache/apt/archives/$f" "$T/repo/"
        continue
    fi
    if [ ! -f "$CACHE/$f" ]; then
        command -v dpkg-repack >/dev/null || skip "no .deb of $p here and no dpkg-repack to make one"
        (cd "$T" && dpkg-repack "$p" >/dev/null 2>&1) && mv "$T"/"${p%%:*}"_*.deb "$CACHE/$f" ||
            { fail "dpkg-repack $p"; finish; }
    fi
    cp "$CACHE/$f" "$T/repo/"
done
(cd "$T/repo" && dpkg-scanpackages --multiversion . /dev/null 2>/dev/null >Packages)
log "local repository: $(ls "$T/repo"/*.deb | wc -l) packages"
cp "$DEB" "$T/repo/"

# 3. In the clean container: apt installs it, then shipper ships a line as user shipper.
cat >"$T/inside.sh" <<'SH'
set -e
echo 'deb [trusted=yes] file:/repo ./' >/etc/apt/sources.list
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq /repo/shipper_*.deb >/tmp/apt.log 2>&1 ||
    { cat /tmp/apt.log; exit 1; }
echo "status=$(dpkg-query -W -f='${db:Status-Status}' shipper)"
echo "conffiles=$(dpkg-query -W -f='${Conffiles}' shipper | sed -n 's/^ *\([^ ]*\) .*/\1/p' | paste -sd,)"
echo "user=$(getent passwd shipper | cut -d: -f1,6,7)"
echo "state=$(stat -c %U:%a /var/lib/shipper)"
echo "exec=$(grep '^ExecStart=' /usr/lib/systemd/system/shipper.service)"
for f in /usr/bin/shipper /usr/share/man/man1/shipper.1 /usr/share/man/man5/shipper.yaml.5 \
    /usr/lib/systemd/system/shipper.socket; do [ -e "$f" ] && echo "has $f"; done
shipper --check -c /etc/shipper/shipper.yaml >/tmp/check.out 2>&1 && echo "check=ok"
id=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
mkdir -p /tmp/c/$id
echo '{"log":"hello from the deb\n","stream":"stdout","time":"2026-01-01T00:00:00.000000000Z"}' \
    >/tmp/c/$id/$id-json.log
chmod -R a+rX /tmp/c
cat >/tmp/s.yaml <<'Y'
service: {http_listen: ""}
buffer: {flush_interval: 100ms}
inputs:
  - {type: docker_logs, path: /tmp/c, read_from: start}
outputs:
  - type: stdout
Y
chmod 0644 /tmp/s.yaml
setpriv --reuid=shipper --regid=shipper --init-groups shipper -c /tmp/s.yaml >/tmp/out 2>/tmp/err &
pid=$!
for i in $(seq 600); do grep -q 'hello from the deb' /tmp/out && break; sleep 0.1; done
kill -TERM $pid; wait $pid || true
grep -c 'hello from the deb' /tmp/out | sed 's/^/shipped=/' || { cat /tmp/err; cat /tmp/out; }
DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq shipper >/dev/null 2>&1
echo "after_purge=$(ls /usr/bin/shipper /etc/shipper/shipper.yaml /var/lib/shipper 2>/dev/null | wc -l)"
SH
C=shipper-deb-$$
track_container "$C"
timeout 300 docker run --name "$C" --network none -v "$T/repo:/repo:ro" -v "$T/inside.sh:/inside.sh:ro" \
    "$BASE" bash /inside.sh >"$T/inside.out" 2>&1
rc=$?
cat "$T/inside.out"
check_eq "inside script exit code" 0 "$rc"
got() { sed -n "s/^$1=//p" "$T/inside.out"; }
check_eq "package installed" installed "$(got status)"
check_eq "conffiles" /etc/shipper/shipper.yaml "$(got conffiles)"
check_eq "system user" shipper:/var/lib/shipper:/usr/sbin/nologin "$(got user)"
check_eq "state directory" shipper:700 "$(got state)"
check_eq "unit ExecStart" "ExecStart=/usr/bin/shipper -c /etc/shipper/shipper.yaml" "$(got exec)"
for f in /usr/bin/shipper /usr/share/man/man1/shipper.1 /usr/share/man/man5/shipper.yaml.5 \
    /usr/lib/systemd/system/shipper.socket; do
    check "installed $f" grep -qx "has $f" "$T/inside.out"
done
check_eq "the packaged config passes --check" ok "$(got check)"
check_eq "a json-file line shipped to stdout by user shipper" 1 "$(got shipped)"
check_eq "purge removes binary, config and state" 0 "$(got after_purge)"
finish
