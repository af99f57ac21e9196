#!/usr/bin/env bash
# image-breakdown.sh: what the image is made of, file by file, largest first (docs/deploy.md,
# "Size"). Assembles the image's root file system with build-image.sh --rootfs in a scratch
# directory and prints each regular file's size in KiB, stubs marked, then the total.
# Environment: as build-image.sh (BUILD, SHIPPER, SHIPPER_IMAGE_STUBS).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=$(mktemp -d "${TMPDIR:-/tmp}/shipper-breakdown.XXXXXX")
trap 'rm -rf "$DIR"' EXIT
"$ROOT/deploy/build-image.sh" --rootfs "$DIR/root" >/dev/null 2>&1
cd "$DIR/root"
find . -type f -printf '%s %p\n' | sort -rn | awk '
    { total += $1; p = substr($2, 2); stub = ($1 < 20000 && p ~ /(librtmp|libldap|liblber)/) ? "  (stub)" : ""
      printf "%8.0f KiB  %s%s\n", $1 / 1024, p, stub }
    END { printf "%8.0f KiB  total (%.1f MB) in %d files\n", total / 1024, total / 1e6, NR }'
