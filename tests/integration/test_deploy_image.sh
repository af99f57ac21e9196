#!/usr/bin/env bash
# deploy/: the registry-free image, run hardened under deploy/seccomp.json, with real dockerd.
# Checks: build-image.sh builds it; image config (user, entrypoint, cmd, ports, health check);
# size under the documented target; a --read-only application container ships 1,000 lines
# through it (metrics and `docker logs`); `docker diff` stays empty; uid 65532, no
# capabilities, no_new_privs and seccomp filter in force; the image's own HEALTHCHECK turns
# healthy on its default config; SIGTERM (docker stop) exits 0.
. "$(dirname "$0")/lib.sh"
need_docker

# docs/deploy.md states this target (20 MB): the libraries are most of it, libcurl's rtmp and
# ldap ones are stubs (docs/deploy.md, "Image size").
SIZE_LIMIT=20000000
NAME=shipper:deploy-test-$$
cleanup_image() { docker rmi -f "$NAME" >/dev/null 2>&1; }
trap 'cleanup; cleanup_image' EXIT

log "building $NAME"
"$ROOT/deploy/build-image.sh" "$NAME" >"$T/build.log" 2>&1 || { cat "$T/build.log"; fail "build-image.sh"; finish; }
head -1 "$T/build.log"

cfg() { docker image inspect -f "$1" "$NAME"; }
check_eq "image user" "65532:65532" "$(cfg '{{.Config.User}}')"
check_eq "image entrypoint" '["/usr/bin/shipper"]' "$(cfg '{{json .Config.Entrypoint}}')"
check_eq "image cmd" '["-c","/etc/shipper/shipper.yaml"]' "$(cfg '{{json .Config.Cmd}}')"
check_eq "image exposed ports" '{"2020/tcp":{},"24224/tcp":{}}' "$(cfg '{{json .Config.ExposedPorts}}')"
check_eq "image health check" '["CMD","/usr/bin/shipper","--health","http://127.0.0.1:2020/healthz"]' \
    "$(cfg '{{json .Config.Healthcheck.Test}}')"
SIZE=$(cfg '{{.Size}}')
check "image size $SIZE bytes < $SIZE_LIMIT" [ "$SIZE" -lt "$SIZE_LIMIT" ]
check "no GnuTLS in the image (librtmp and libldap are stubs)" bash -c "! grep -q libgnutls '$T/build.log'"
check "the stubs are listed" grep -q "librtmp.so.1 .*(stub)" "$T/build.log"

HARDEN=(--read-only --cap-drop ALL --security-opt no-new-privileges --user 65532
    --memory 128m --pids-limit 64 --security-opt "seccomp=$ROOT/deploy/seccomp.json")

# 1. The worker: host network (dockerd's fluentd driver dials from the host), free ports. Its
# health check is off: the image's probes port 2020, which on the host may belong to another
# process (a --health-cmd would need a shell, which the image does not have); part 2 checks it.
P=$(free_port); H=$(free_port); S=shipper-deploy-$$
track_container "$S"
docker run -d --name "$S" "${HARDEN[@]}" --network host \
    --no-healthcheck \
    "$NAME" --forward "127.0.0.1:$P" --stdout --http "127.0.0.1:$H" >/dev/null ||
    { fail "hardened shipper container did not start"; finish; }
wait_ready "127.0.0.1:$H" 20 || { docker logs "$S"; fail "shipper not ready"; finish; }

A=app-deploy-$$
track_container "$A"
docker run -d --name "$A" --network none --read-only --tmpfs /tmp --cap-drop ALL \
    --log-driver=fluentd --log-opt "fluentd-address=127.0.0.1:$P" --log-opt cache-disabled=true \
    --log-opt fluentd-sub-second-precision=true --log-opt 'tag=app.{{.Name}}' \
    "$IMAGE" sh -c 'i=0; while [ $i -lt 1000 ]; do echo "deploy line $i"; i=$((i+1)); done' >/dev/null ||
    fail "application container did not start"
timeout 60 docker wait "$A" >/dev/null || fail "application container did not finish"
KEY='shipper_output_records_total{output="stdout",result="delivered"}'
wait_metric "127.0.0.1:$H" "$KEY" 1000 30 || fail "1000 records not delivered"
check_eq "records delivered (metrics)" 1000 "$(metric "127.0.0.1:$H" "$KEY")"
check_eq "documents on the shipper container's stdout" 1000 \
    "$(docker logs "$S" 2>/dev/null | grep -c "\"tag\":\"app.$A\"")"
check_eq "docker diff of the working shipper is empty" "" "$(docker diff "$S")"

PID=$(docker inspect -f '{{.State.Pid}}' "$S")
st() { awk -v k="$1:" '$1 == k { $1 = ""; sub(/^ /, ""); print }' "/proc/$PID/status"; }
check_eq "uid (real, effective, saved, fs)" "65532 65532 65532 65532" "$(st Uid)"
check_eq "gid" "65532 65532 65532 65532" "$(st Gid)"
check_eq "effective capabilities" 0000000000000000 "$(st CapEff)"
check_eq "bounding capabilities" 0000000000000000 "$(st CapBnd)"
check_eq "no_new_privs" 1 "$(st NoNewPrivs)"
check_eq "seccomp mode (2 = filter)" 2 "$(st Seccomp)"
check_eq "docker top user" 65532 "$(docker top "$S" -o pid,uid | awk 'NR == 2 { print $2 }')"

# 2. The image as shipped: its default config and its own HEALTHCHECK command, no network.
D=shipper-default-$$
track_container "$D"
docker run -d --name "$D" "${HARDEN[@]}" --network none --health-interval 1s --health-start-period 1s \
    "$NAME" >/dev/null || fail "default-config container did not start"
for _ in $(seq 150); do
    [ "$(docker inspect -f '{{.State.Health.Status}}' "$D")" = healthy ] && break
    sleep 0.1
done
check_eq "built-in HEALTHCHECK on the default config" healthy "$(docker inspect -f '{{.State.Health.Status}}' "$D")"
check_eq "docker diff of the default-config container is empty" "" "$(docker diff "$D")"

# The profile denies what is not listed (getpriority here), where Docker's default allows it.
check "seccomp.json denies an unlisted syscall" \
    bash -c "! docker run --rm --network none --security-opt seccomp=$ROOT/deploy/seccomp.json $IMAGE /bin/renice -n 5 1 >/dev/null 2>&1"
check "the same command runs under Docker's default profile" \
    docker run --rm --network none "$IMAGE" /bin/renice -n 5 1

# 3. SIGTERM: a clean stop within the grace period.
docker stop -t 15 "$S" >/dev/null
check_eq "exit code after docker stop" 0 "$(docker inspect -f '{{.State.ExitCode}}' "$S")"
check "shipper logged its stop" grep -q "stopped" <(docker logs "$S" 2>&1 >/dev/null)
check_eq "docker diff after the stop is empty" "" "$(docker diff "$S")"
finish
