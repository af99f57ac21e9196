#!/usr/bin/env bash
# deploy/Dockerfile stays equivalent to deploy/build-image.sh. Its build stage needs debian:12
# from a registry, which this machine does not have; its runtime stage does not: it is built
# here from a local context (FROM scratch + the root file system that build-image.sh --rootfs
# assembles, which is what the build stage runs) and compared with build-image.sh's image:
# same files, same user, entrypoint, cmd, ports, labels and health check; and it runs.
. "$(dirname "$0")/lib.sh"
need_docker

A=shipper:deploy-import-$$ B=shipper:deploy-dockerfile-$$
trap 'cleanup; docker rmi -f "$A" "$B" >/dev/null 2>&1' EXIT
"$ROOT/deploy/build-image.sh" "$A" >"$T/a.log" 2>&1 || { cat "$T/a.log"; fail "build-image.sh"; finish; }

mkdir -p "$T/ctx"
"$ROOT/deploy/build-image.sh" --rootfs "$T/ctx/rootfs" >"$T/rootfs.log" 2>&1 ||
    { cat "$T/rootfs.log"; fail "build-image.sh --rootfs"; finish; }
# The runtime stage, verbatim but for where the root file system comes from.
sed -n '/^FROM scratch/,$p' "$ROOT/deploy/Dockerfile" |
    sed 's|^COPY --from=build /rootfs/ /|COPY rootfs/ /|' >"$T/ctx/Dockerfile"
check "the runtime stage copies the build stage's /rootfs" grep -qx 'COPY rootfs/ /' "$T/ctx/Dockerfile"
DOCKER_BUILDKIT=0 docker build -q -t "$B" "$T/ctx" >"$T/b.log" 2>&1 || { cat "$T/b.log"; fail "docker build of the runtime stage"; finish; }

for f in '{{.Config.User}}' '{{json .Config.Entrypoint}}' '{{json .Config.Cmd}}' \
    '{{json .Config.ExposedPorts}}' '{{json .Config.Healthcheck}}' '{{.Config.WorkingDir}}' \
    '{{json .Config.Labels}}' '{{json .Config.Env}}'; do
    check_eq "same $f" "$(docker image inspect -f "$f" "$A")" "$(docker image inspect -f "$f" "$B")"
done
files() { # IMAGE: the file list with type, mode, owner, size and link target
    local c
    c=$(docker create "$1") && docker export "$c" | tar -tv --numeric-owner |
        awk '{ $4 = $5 = ""; print }' | grep -v -e ' \.dockerenv$' | sort
    docker rm "$c" >/dev/null
}
files "$A" >"$T/a.files"; files "$B" >"$T/b.files"
check "same files, modes, owners and sizes" diff "$T/a.files" "$T/b.files"
check_eq "the Dockerfile image runs" "shipper" \
    "$(docker run --rm --network none --read-only --cap-drop ALL "$B" --version | cut -d' ' -f1)"
finish
