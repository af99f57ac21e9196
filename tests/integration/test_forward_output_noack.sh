#!/usr/bin/env bash
# The forward output with `require_ack: false` (a chunk is delivered once written):
#  - its frames still carry the `chunk` option (the receiver derives the record ids from it), and
#    the acks a server sends for them are ignored: a fake Forward server acks every chunk id;
#  - a flood edge → aggregator (shipper → shipper; the generator repeats its records, so chunks
#    repeat ids): the edge stays up and every record arrives. Before, an ack for a written frame
#    matched a later frame of the same id still being written: freed twice, abort.
. "$(dirname "$0")/lib.sh"
cd "$T"

# A Forward server that records what it got and answers {"ack": id} for every chunk option.
cat >srv.py <<'EOF'
import re, socket, sys, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0)); s.listen(4)
open(sys.argv[1], "w").write(str(s.getsockname()[1]))
out = open(sys.argv[2], "ab")
def serve(c):
    while True:
        b = c.recv(1 << 16)
        if not b: return
        out.write(b); out.flush()
        for m in re.finditer(rb"\xa5chunk\xb8(.{24})", b, re.S):
            c.sendall(b"\x81\xa3ack\xb8" + m.group(1))
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
EOF
python3 srv.py srv.port srv.bin &
bg_pid $!
for _ in $(seq 100); do [ -s srv.port ] && break; sleep 0.1; done
SRV=$(cat srv.port)

in_port=$(free_port) http=$(free_port)
cat >edge.yaml <<EOF
service: {http_listen: 127.0.0.1:$http}
buffer: {flush_interval: 100ms, chunk_size: 8KiB}
inputs: [{type: forward, listen: "127.0.0.1:$in_port"}]
outputs: [{type: forward, servers: ["127.0.0.1:$SRV"], require_ack: false}]
EOF
start_shipper edge -c edge.yaml
EDGE=$SHIPPER_PID
wait_ready "127.0.0.1:$http" || exit 1
"$SHIPPER_BENCH" forward --addr "127.0.0.1:$in_port" --mode packed --records 20000 --quiet >/dev/null ||
    fail "shipper-bench to the edge"
wait_metric "127.0.0.1:$http" 'shipper_output_records_total{output="forward",result="delivered"}' 20000 60
check_eq "the fake server's edge delivered every record" 20000 \
    "$(metric "127.0.0.1:$http" 'shipper_output_records_total{output="forward",result="delivered"}')"
check "frames were written ($(stat -c %s srv.bin) bytes)" [ "$(stat -c %s srv.bin)" -gt 100000 ]
check "frames carry the chunk option (record ids)" python3 -c \
    "import sys; sys.exit(b'\xa5chunk' not in open('srv.bin','rb').read())"
check "the edge is still running" kill -0 "$EDGE"
stop_shipper "$EDGE"
check_eq "the edge exits 0 on SIGTERM" 0 "$SHIPPER_RC"

# The flood, shipper → shipper.
agg_port=$(free_port) ahttp=$(free_port) in2=$(free_port) ehttp=$(free_port)
start_shipper agg --forward "127.0.0.1:$agg_port" --null --http "127.0.0.1:$ahttp"
cat >edge2.yaml <<EOF
service: {http_listen: 127.0.0.1:$ehttp}
inputs: [{type: forward, listen: "127.0.0.1:$in2"}]
outputs: [{type: forward, servers: ["127.0.0.1:$agg_port"], require_ack: false}]
EOF
start_shipper edge2 -c edge2.yaml
EDGE2=$SHIPPER_PID
wait_ready "127.0.0.1:$ahttp" && wait_ready "127.0.0.1:$ehttp" || exit 1
N=1000000
"$SHIPPER_BENCH" forward --addr "127.0.0.1:$in2" --mode packed --records $N --conns 2 --quiet \
    >/dev/null 2>bench.err || fail "shipper-bench to the edge: $(tail -1 bench.err)"
wait_metric "127.0.0.1:$ahttp" 'shipper_output_records_total{output="null",result="delivered"}' $N 90
check_eq "the aggregator got every record of the flood" $N \
    "$(metric "127.0.0.1:$ahttp" 'shipper_output_records_total{output="null",result="delivered"}')"
check "the flooded edge is still running" kill -0 "$EDGE2"
grep -h "double free\|corruption" "$T"/edge*.err && fail "the edge aborted"
finish
