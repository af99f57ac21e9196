#!/usr/bin/env bash
# dockerd.sh — make sure a Docker daemon and the test image exist, without any registry.
#
# Usage (bash):
#   tests/rigs/dockerd.sh            # exit 0 when docker works and the image exists
#   source tests/rigs/dockerd.sh     # same, returns the status; also exports SHIPPER_TEST_IMAGE
#
# Idempotent and safe to call from several test scripts at once: a lock serialises the
# "start daemon" and "build image" steps, and a daemon that already answers (or is still
# starting: its pidfile names a live process) is reused, never restarted or killed.
#
# When no daemon answers, one is started in the background and LEFT RUNNING for later
# tests (starting one costs seconds, and other users may rely on it):
#   dockerd --storage-driver=vfs --iptables=false --ip6tables=false --bridge=none
# vfs needs no overlayfs support and the network flags avoid touching the host's
# firewall; containers are meant to run with --network none.
#
# Environment:
#   SHIPPER_TEST_IMAGE  image name to ensure (default shipper-test-busybox)
#   DOCKER_HOST         unset/default socket: use (or start) the system daemon.
#                       unix:///some/path.sock: use (or start) a private daemon on that
#                       socket with its own data/exec roots under ${TMPDIR:-/tmp}; handy
#                       to exercise the start path without disturbing a shared daemon.
#                       (Stop it with kill $(cat STATE/docker.pid); dockerd may leave
#                       STATE/data bind-mounted, so umount it before rm -rf.)
#   TMPDIR              where logs, lock and private daemon state go (default /tmp)
#
# The image is /bin/busybox (busybox-static: must be statically linked, the image has no
# libc) plus one symlink per applet in /bin, imported with `docker import`, so
#   docker run --rm --network none --read-only shipper-test-busybox sh -c 'echo hi'
# works offline.

shipper_dockerd_ensure() (
    # Subshell body: options, traps and `exit` stay out of a shell that sources us.
    set -u
    local image=${SHIPPER_TEST_IMAGE:-shipper-test-busybox}
    local tmp=${TMPDIR:-/tmp}
    local say="shipper dockerd.sh:"

    command -v docker >/dev/null || { echo "$say docker CLI not installed (apt-get install -y docker.io)" >&2; exit 1; }

    # Decide which daemon we are talking about and how we would start it.
    local args=(--storage-driver=vfs --iptables=false --ip6tables=false --bridge=none)
    local pidfile=/var/run/docker.pid log="$tmp/shipper-dockerd.log" lock="$tmp/shipper-dockerd.lock"
    case "${DOCKER_HOST:-}" in
    "" | unix:///var/run/docker.sock | unix:///run/docker.sock) ;;
    unix://*)
        # Short state dir name: containerd's socket lives below exec-root and unix socket
        # paths are limited to 108 bytes.
        local state
        state="$tmp/shipper-dockerd-$(printf %s "$DOCKER_HOST" | md5sum | cut -c1-8)"
        mkdir -p "$state"
        args+=(-H "$DOCKER_HOST" --data-root "$state/data" --exec-root "$state/exec"
            --pidfile "$state/docker.pid")
        pidfile="$state/docker.pid" log="$state/dockerd.log" lock="$state/lock"
        ;;
    *)
        echo "$say cannot manage a daemon for DOCKER_HOST=$DOCKER_HOST" >&2
        exit 1
        ;;
    esac

    mkdir -p "$tmp"
    exec 9>>"$lock"
    flock -w 180 9 || { echo "$say timed out waiting for lock $lock" >&2; exit 1; }

    if ! timeout 10 docker info >/dev/null 2>&1; then
        local pid="" started=""
        [ -r "$pidfile" ] && pid=$(cat "$pidfile" 2>/dev/null)
        if [ -n "$pid" ] && [ -d "/proc/$pid" ] && grep -qa dockerd "/proc/$pid/cmdline" 2>/dev/null; then
            # A daemon exists but does not answer yet (still starting): wait for it, a second
            # one would fail on the pidfile anyway.
            echo "$say dockerd (pid $pid) is running but not ready; waiting" >&2
        else
            command -v dockerd >/dev/null || { echo "$say dockerd not installed (apt-get install -y docker.io)" >&2; exit 1; }
            [ "$(id -u)" = 0 ] || { echo "$say need root to start dockerd" >&2; exit 1; }
            # Whatever the pidfile names is not a dockerd (crash, reboot, pid reuse), and
            # dockerd refuses to start while the named pid is alive.
            rm -f "$pidfile"
            echo "$say starting dockerd (log: $log)" >&2
            # setsid + nohup: the daemon must outlive this script and its terminal/session; -w keeps
            # $! alive exactly as long as dockerd even if setsid had to fork. The daemon outlives
            # whoever started it, so it must not inherit their TMPDIR: runc puts each `docker
            # exec`'s files there, and once that directory is removed every exec and health
            # check fails ("open $TMPDIR/runc-process...: no such file or directory").
            setsid -w nohup env -u TMPDIR dockerd "${args[@]}" >>"$log" 2>&1 </dev/null 9>&- &
            pid=$! started=1
        fi
        # A wedged daemon accepts connections but never answers, hence the timeouts.
        local deadline=$((SECONDS + 60))
        until timeout 5 docker info >/dev/null 2>&1; do
            if ! kill -0 "$pid" 2>/dev/null; then
                echo "$say dockerd (pid $pid) exited; last log lines:" >&2
                tail -n 20 "$log" >&2 2>/dev/null
                exit 1
            fi
            if ((SECONDS >= deadline)); then
                echo "$say dockerd did not answer within 60 s${started:+; log: $log}" >&2
                exit 1
            fi
            sleep 0.5
        done
    fi

    if ! docker image inspect "$image" >/dev/null 2>&1; then
        local bb=/bin/busybox
        [ -x "$bb" ] || { echo "$say $bb missing (apt-get install -y busybox-static)" >&2; exit 1; }
        # A dynamically linked busybox would fail inside an image that has no libc.
        if ldd "$bb" >/dev/null 2>&1; then
            echo "$say $bb is dynamically linked; install busybox-static" >&2
            exit 1
        fi
        echo "$say building image $image from $bb" >&2
        local dir
        dir=$(mktemp -d "$tmp/shipper-busybox.XXXXXX") || exit 1
        trap 'rm -rf "$dir"' EXIT
        mkdir -p "$dir/bin" "$dir/etc" "$dir/tmp" "$dir/proc" "$dir/sys" "$dir/dev"
        chmod 755 "$dir"; chmod 1777 "$dir/tmp" # / enterable by a non-root --user
        cp "$bb" "$dir/bin/busybox"
        local applet
        for applet in $("$bb" --list); do
            [ "$applet" = busybox ] || ln -s busybox "$dir/bin/$applet"
        done
        # Enough identity files for `id`, `whoami`, `ps` to behave.
        printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$dir/etc/passwd"
        printf 'root:x:0:\nnogroup:x:65534:\n' >"$dir/etc/group"
        if ! tar -C "$dir" -c . | docker import -c 'CMD ["sh"]' - "$image" >/dev/null; then
            echo "$say docker import failed" >&2
            exit 1
        fi
    fi
)

export SHIPPER_TEST_IMAGE=${SHIPPER_TEST_IMAGE:-shipper-test-busybox}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    shipper_dockerd_ensure
    exit $?
else
    shipper_dockerd_ensure
    return $?
fi
