# Helpers for the Elasticsearch tests; source after lib.sh.
EMU=$ROOT/tests/rigs/es_emulator.py

# start_emu NAME [ARGS...]: starts the emulator; sets EMU_PORT, EMU_CTL (control port), EMU_PID.
start_emu() {
    local name=$1; shift
    rm -f "$T/$name.port" "$T/$name.ctl"
    python3 "$EMU" --port "${EMU_FIXED_PORT:-0}" --port-file "$T/$name.port" --control-port 0 \
        --control-port-file "$T/$name.ctl" "$@" >"$T/$name.emu.log" 2>&1 &
    EMU_PID=$!
    bg_pid "$EMU_PID"
    for _ in $(seq 100); do [ -s "$T/$name.ctl" ] && break; sleep 0.05; done
    EMU_PORT=$(cat "$T/$name.port"); EMU_CTL=$(cat "$T/$name.ctl")
}

# emu METHOD PATH [JSON]: calls the emulator's control API.
emu() { curl -sf -X "$1" "http://127.0.0.1:$EMU_CTL$2" ${3:+-H 'Content-Type: application/json' -d "$3"}; }
emu_count() { emu GET "/_emulator/count?index=${1:-*}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["count"])'; }
emu_stat() { emu GET /_emulator/stats | python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

# wait_count WANT [INDEX] [SECONDS]: waits until the emulator holds WANT documents.
wait_count() {
    local want=$1 ix=${2:-*} n=${3:-60} v=0
    for _ in $(seq $((n * 5))); do
        v=$(emu_count "$ix"); [ "$v" -ge "$want" ] 2>/dev/null && return 0
        sleep 0.2
    done
    echo "emulator holds $v documents in $ix, wanted $want"; return 1
}

# check_seqs INDEX FROM TO: every seq in [FROM, TO) stored exactly once, nothing else.
check_seqs() {
    emu GET "/_emulator/docs?index=$1" >"$T/docs.json"
    python3 - "$T/docs.json" "$2" "$3" <<'PY'
import json, sys
docs = json.load(open(sys.argv[1]))
lo, hi = int(sys.argv[2]), int(sys.argv[3])
seqs = sorted(d["_source"]["seq"] for d in docs)
ids = {d["_id"] for d in docs}
ok = seqs == list(range(lo, hi)) and len(ids) == len(docs)
print(("ok: " if ok else "FAIL: ") + "seq %d..%d each stored once (%d docs, %d distinct seqs)" % (lo, hi - 1, len(docs), len(set(seqs))))
sys.exit(0 if ok else 1)
PY
}

send_es() { python3 "$ROOT/tests/integration/es_send.py" "$@" >/dev/null; }
