#!/usr/bin/env bash
# deploy/Dockerfile stays equivalent to deploy/build-image.sh. Its build stage needs debian:12
# from a registry, which this machine does not have; its runtime stage does not: it is built
# here from a local context (a stand-in build stage holding the root file system that
# `build-image.sh --rootfs` assembles, which is what the real build stage runs) and compared with build-image.sh's image:
# same files, same user, entrypoint, cmd, ports, labels and health check; and it runs.
. "$(dirname "$0")/lib.sh"
need_docker

A=shipper:deploy-import-$$ B=shipper:deploy-dockerfile-$$
# The legacy builder keeps the stand-in build stage as an untagged image: labelled, pruned.
trap 'cleanup; docker rmi -f "$A" "$B" >/dev/null 2>&1
    docker image prune -f --filter "label=shipper-deploy-test=$$" >/dev/null 2>&1' EXIT
shipper_image "$A" "$T/a.log" || { cat "$T/a.log"; fail "build-image.sh"; finish; }

mkdir -p "$T/ctx"
"$ROOT/deploy/build-image.sh" --rootfs "$T/ctx/rootfs" >"$T/rootfs.log" 2>&1 ||
    { cat "$T/rootfs.log"; fail "build-image.sh --rootfs"; finish; }
# The build stage is replaced by one that holds the same /rootfs (ADD of a local tar keeps
# owners, as COPY --from keeps the build stage's); the runtime stage is used verbatim.
tar -C "$T/ctx/rootfs" --numeric-owner -cf "$T/ctx/rootfs.tar" . && rm -rf "$T/ctx/rootfs"
{
    printf 'FROM scratch AS build\nLABEL shipper-deploy-test=%s\nADD rootfs.tar /rootfs/\n' "$$"
    sed -n '/^FROM scratch/,$p' "$ROOT/deploy/Dockerfile"
} >"$T/ctx/Dockerfile"
check "the runtime stage copies the build stage's /rootfs" grep -qx 'COPY --from=build /rootfs/ /' "$T/ctx/Dockerfile"
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
