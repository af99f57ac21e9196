#!/usr/bin/env bash
# Decode benchmark: shipper/mp.c against msgpack-c on the same Forward frames (Message, Forward,
# PackedForward; Docker-style records, 200-byte log by default). No daemon: shipper-mpdecode
# builds the frames in memory and decodes them with each decoder, checking that all of them saw
# the same values. Prints one line per mode and decoder:
#   <mode> <decoder> R rec/s  A allocs/record  (records, allocs)
# and the load average before and after, since a loaded machine lowers every figure.
#
# Usage: bench/run-msgpack.sh [--records N] [--size BYTES] [--batch B] [--read BYTES] [--rounds R]
# Env:   SHIPPER_MPDECODE  binary (default build/shipper-mpdecode)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SHIPPER_MPDECODE=${SHIPPER_MPDECODE:-$root/build/shipper-mpdecode}
[ -x "$SHIPPER_MPDECODE" ] || { echo "run-msgpack: build $SHIPPER_MPDECODE first (needs libmsgpack-dev)" >&2; exit 1; }
echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
"$SHIPPER_MPDECODE" "$@"
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
