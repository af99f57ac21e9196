#!/usr/bin/env bash
# build-image.sh [NAME] — builds the shipper container image with no registry and no base image.
#
#   deploy/build-image.sh                 # -> shipper:latest
#   deploy/build-image.sh shipper:test    # any name
#   deploy/build-image.sh --rootfs DIR    # only assemble the root file system in DIR (empty or
#                                         # new); deploy/Dockerfile's builder stage uses this
#
# The root file system is assembled from files on this machine and loaded with `docker import`,
# so it works offline (the conventional multi-stage build is deploy/Dockerfile, for hosts that
# can pull debian:12). The root holds exactly:
#   /usr/bin/shipper                       the Release binary (built first if missing), stripped
#   the shared libraries `ldd` resolves     under their symlink (SONAME) names, plus the loader
#   /etc/ssl/certs/ca-certificates.crt      CA bundle for https Elasticsearch / Kafka TLS
#   /usr/lib/ssl/cert.pem, /usr/lib/ssl/certs  OpenSSL's default CA paths, pointing at the bundle
#   /etc/passwd, /etc/group                root and the unprivileged user shipper 65532:65532
#   /etc/nsswitch.conf                     "hosts: files dns" for broker and ES host names
#   /etc/shipper/shipper.yaml              default config: forward 0.0.0.0:24224 -> stdout,
#                                          metrics/health on 0.0.0.0:2020
#   /var/lib/shipper (65532, 0700)         mount point for a state_dir volume
#   /var/lib/docker/containers             mount point for the json-file variant (read-only)
#   /tmp, /proc, /sys, /dev, /etc/hosts…   empty mount points; nothing else, no shell
# Image config: USER 65532:65532, ENTRYPOINT ["/usr/bin/shipper"],
# CMD ["-c","/etc/shipper/shipper.yaml"], EXPOSE 24224 2020, HEALTHCHECK shipper --health.
#
# Environment: BUILD (build dir, default ./build), SHIPPER (binary, default $BUILD/shipper).
# Prints the image name, its size and the library list on success; exits non-zero on failure.
set -euo pipefail

ROOTFS_ONLY=""
if [ "${1:-}" = --rootfs ]; then
    [ -n "${2:-}" ] || { echo "usage: $0 --rootfs DIR" >&2; exit 2; }
    ROOTFS_ONLY=$2
fi
NAME=${1:-shipper:latest}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
SHIPPER=${SHIPPER:-$BUILD/shipper}
say() { echo "build-image: $*" >&2; }

[ -n "$ROOTFS_ONLY" ] || command -v docker >/dev/null || { say "docker CLI not installed"; exit 1; }
if [ ! -x "$SHIPPER" ]; then
    say "no $SHIPPER; building it (Release)"
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$BUILD" -j2 --target shipper >/dev/null
fi

if [ -n "$ROOTFS_ONLY" ]; then
    mkdir -p "$ROOTFS_ONLY"
    DIR=$(cd "$ROOTFS_ONLY" && pwd)
else
    DIR=$(mktemp -d "${TMPDIR:-/tmp}/shipper-image.XXXXXX")
    trap 'rm -rf "$DIR"' EXIT
fi
chmod 0755 "$DIR" # mktemp makes it 0700, and it becomes the image's /
mkdir -p "$DIR"/{usr/bin,etc/shipper,etc/ssl/certs,usr/lib/ssl,tmp,proc,sys,dev}
chmod 1777 "$DIR/tmp"

install -m 0755 "$SHIPPER" "$DIR/usr/bin/shipper"
# Debug info is most of a -g binary; the image does not need it.
strip --strip-unneeded "$DIR/usr/bin/shipper" 2>/dev/null || true

# copy_path PATH: copies PATH into the root at the same path, keeping every symlink on the
# way (lib -> usr/lib on merged-/usr systems, libfoo.so.1 -> libfoo.so.1.2.3) as a symlink.
copy_path() {
    local p=$1 dir
    while :; do
        dir=$(dirname "$p")
        # A symlinked directory (e.g. /lib -> usr/lib) is recreated as the same symlink.
        local d=$dir part acc=""
        IFS=/ read -ra parts <<<"${d#/}"
        for part in "${parts[@]}"; do
            acc="$acc/$part"
            if [ -L "$acc" ] && [ ! -e "$DIR$acc" ] && [ ! -L "$DIR$acc" ]; then
                mkdir -p "$DIR$(dirname "$acc")"
                ln -s "$(readlink "$acc")" "$DIR$acc"
            fi
        done
        mkdir -p "$DIR$(readlink -f "$dir")"
        local real_dir
        real_dir=$(readlink -f "$dir")
        local base=${p##*/}
        if [ -L "$p" ]; then
            local target
            target=$(readlink "$p")
            [ -e "$DIR$real_dir/$base" ] || [ -L "$DIR$real_dir/$base" ] || ln -s "$target" "$DIR$real_dir/$base"
            case $target in /*) p=$target ;; *) p=$real_dir/$target ;; esac
        else
            [ -e "$DIR$real_dir/$base" ] || cp -p "$p" "$DIR$real_dir/$base"
            break
        fi
    done
}

# Stubs (docs/deploy.md, "Image size"): Debian's libcurl links librtmp (rtmp://) and OpenLDAP
# (ldap://), which bring GnuTLS, nettle, GMP, p11-kit and libtasn1: 5 MiB that shipper never
# runs (it restricts libcurl to http and https, CURLOPT_PROTOCOLS_STR). Each is replaced by a
# library of the same SONAME that defines, under the same symbol versions, only the functions
# libcurl imports from it, each failing (-1); it needs nothing else. SHIPPER_IMAGE_STUBS=""
# keeps the real libraries.
STUBS=${SHIPPER_IMAGE_STUBS-librtmp.so.1 libldap-2.5.so.0 liblber-2.5.so.0}
STUBDIR=$(mktemp -d "${TMPDIR:-/tmp}/shipper-stubs.XXXXXX")
trap 'rm -rf "$STUBDIR"; [ -n "$ROOTFS_ONLY" ] || rm -rf "$DIR"' EXIT
CURL_LIB=$(ldd "$SHIPPER" | awk '$1 ~ /^libcurl/ { print $3 }')
stub_lib() { # SONAME: builds $STUBDIR/SONAME from the real library's symbols that libcurl imports
    local so=$1 real
    real=$(ldd "$SHIPPER" | awk -v so="$so" '$1 == so { print $3 }')
    [ -n "$real" ] && [ -n "$CURL_LIB" ] || return 0
    objdump -T "$CURL_LIB" | awk '/\*UND\*/ { print $NF }' | sort -u >"$STUBDIR/imports"
    objdump -T "$real" | awk '/ DF \.text/ { print $NF, $(NF - 1) }' | sort -u |
        join - "$STUBDIR/imports" >"$STUBDIR/$so.syms"
    awk '{ printf "long %s(void) { return -1; }\n", $1 }' "$STUBDIR/$so.syms" >"$STUBDIR/$so.c"
    awk '$2 != "Base" { v[$2] = v[$2] " " $1 ";" }
         END { for (k in v) printf "%s {\n  global:%s\n  local: *;\n};\n", k, v[k] }' \
        "$STUBDIR/$so.syms" >"$STUBDIR/$so.map"
    local vs=()
    [ -s "$STUBDIR/$so.map" ] && vs=(-Wl,--version-script="$STUBDIR/$so.map")
    ${CC:-cc} -shared -fPIC -O2 -nostdlib -s -o "$STUBDIR/$so" "$STUBDIR/$so.c" \
        -Wl,-soname,"$so" "${vs[@]}"
}
for so in $STUBS; do stub_lib "$so"; done

# Every library the dynamic loader resolves (ldd lists the whole closure, with the stubs in
# place of the libraries they replace), and the loader.
LDD=$(LD_LIBRARY_PATH=$STUBDIR ldd "$SHIPPER")
LIBS=$(awk -v s="$STUBDIR/" '$2 == "=>" && $3 ~ /^\// && index($3, s) != 1 { print $3 }
    $1 ~ /^\// { print $1 }' <<<"$LDD" | sort -u)
[ -n "$LIBS" ] || { say "ldd found no libraries in $SHIPPER (static binary?)"; }
for lib in $LIBS; do copy_path "$lib"; done
# A stub goes where the real library's file is (through /lib -> usr/lib on merged /usr).
STUBBED=$(awk -v s="$STUBDIR/" 'index($3, s) == 1 { print $1 }' <<<"$LDD")
LIBDIR=$(dirname "$(readlink -f "$CURL_LIB")")
for so in $STUBBED; do install -m 0644 "$STUBDIR/$so" "$DIR$LIBDIR/$so"; done

cp /etc/ssl/certs/ca-certificates.crt "$DIR/etc/ssl/certs/ca-certificates.crt" || {
    say "no /etc/ssl/certs/ca-certificates.crt (apt-get install -y ca-certificates)"
    exit 1
}
# OpenSSL's compiled-in defaults (librdkafka uses them when ssl.ca.location is unset).
ln -s /etc/ssl/certs/ca-certificates.crt "$DIR/usr/lib/ssl/cert.pem"
ln -s /etc/ssl/certs "$DIR/usr/lib/ssl/certs"

printf 'root:x:0:0:root:/:/sbin/nologin\nshipper:x:65532:65532:shipper:/nonexistent:/sbin/nologin\n' >"$DIR/etc/passwd"
printf 'root:x:0:\nshipper:x:65532:\n' >"$DIR/etc/group"
printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$DIR/etc/nsswitch.conf"
# Docker bind-mounts these over; empty files keep the read-only root free of mount points
# that would have to be created.
: >"$DIR/etc/hosts"
: >"$DIR/etc/resolv.conf"
: >"$DIR/etc/hostname"
install -m 0644 "$ROOT/deploy/image.yaml" "$DIR/etc/shipper/shipper.yaml"
# Mount points, so that mounting them adds nothing to the container's layer (docker diff stays
# empty): the json-file variant's containers directory, and state_dir for a volume. A named
# volume takes the ownership of the image's directory on first use, hence 65532 and 0700.
mkdir -p "$DIR/var/lib/docker/containers" "$DIR/var/lib/shipper"
chmod 0700 "$DIR/var/lib/shipper"
# Everything else belongs to root and is world-readable: the unprivileged user can read it
# all and write nothing.
if [ "$(id -u)" = 0 ]; then
    chown -R -h 0:0 "$DIR"
    chown 65532:65532 "$DIR/var/lib/shipper"
else
    say "not root: files keep uid $(id -u) in a --rootfs tree; /var/lib/shipper is not 65532's"
fi

if [ -n "$ROOTFS_ONLY" ]; then
    say "root file system in $DIR: $(du -sk "$DIR" | cut -f1) KiB, $(echo "$LIBS" | wc -l) libraries"
    exit 0
fi

# The health check: the binary's own probe (there is no shell or curl in the image).
HEALTH='HEALTHCHECK --interval=30s --timeout=5s --start-period=5s --retries=3 CMD ["/usr/bin/shipper","--health","http://127.0.0.1:2020/healthz"]'
CHANGES=(
    --change 'USER 65532:65532'
    --change 'ENV PATH=/usr/bin'
    --change 'WORKDIR /'
    --change 'ENTRYPOINT ["/usr/bin/shipper"]'
    --change 'CMD ["-c","/etc/shipper/shipper.yaml"]'
    --change 'EXPOSE 24224 2020'
    --change 'LABEL org.opencontainers.image.title=shipper'
)

# A rebuild under the same name leaves the previous image untagged: removed below, unless a
# container or another tag still uses it.
OLD_ID=$(docker image inspect -f '{{.Id}}' "$NAME" 2>/dev/null || true)
TAR=(tar -C "$DIR" --numeric-owner -c .)
[ "$(id -u)" = 0 ] || TAR=(tar -C "$DIR" --numeric-owner --owner=0 --group=0 -c .)
# Docker 20.10's import accepts HEALTHCHECK; an engine that refuses it gets a second,
# metadata-only layer from the (local, registry-free) builder instead.
if ! "${TAR[@]}" | docker import "${CHANGES[@]}" --change "$HEALTH" - "$NAME" >/dev/null 2>"$DIR.err"; then
    say "docker import refused HEALTHCHECK ($(head -c 200 "$DIR.err")); adding it with docker build"
    "${TAR[@]}" | docker import "${CHANGES[@]}" - "$NAME-base" >/dev/null
    printf 'FROM %s\n%s\n' "$NAME-base" "$HEALTH" | DOCKER_BUILDKIT=0 docker build -q -t "$NAME" - >/dev/null
    docker rmi "$NAME-base" >/dev/null 2>&1 || true
fi
rm -f "$DIR.err"
if [ -n "$OLD_ID" ] && [ "$OLD_ID" != "$(docker image inspect -f '{{.Id}}' "$NAME")" ]; then
    docker rmi "$OLD_ID" >/dev/null 2>&1 || true
fi

SIZE=$(docker image inspect -f '{{.Size}}' "$NAME")
echo "image $NAME: $SIZE bytes ($((SIZE / 1024)) KiB), $(echo "$LIBS" | wc -l) libraries:"
for lib in $LIBS; do printf '  %-48s %6s KiB\n' "$lib" "$(($(stat -L -c %s "$lib") / 1024))"; done
for so in $STUBBED; do printf '  %-48s %6s KiB (stub)\n' "$LIBDIR/$so" "$(($(stat -c %s "$STUBDIR/$so") / 1024))"; done
