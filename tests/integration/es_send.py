#!/usr/bin/env python3
"""Forward sender for the Elasticsearch tests (standard library only).

  es_send.py --addr HOST:PORT --count N [--start S] [--batch B] [--bad-every K] [--tag T]
             [--pad P] [--big-every K --big-size B]

Sends records {"log": "seq=<i>", "seq": i} in Forward mode, B entries per frame, each frame with
option {"chunk": <id>} where the id depends only on (tag, first seq, batch): sending the same
range twice sends the same chunk ids, so shipper gives the records the same _ids. Waits for each
frame's ack. Every K-th record (i % K == 0) also carries "bad": {"x": 1} for mapping errors.
--pad adds a "pad" string of P bytes to every record, --big-every one of B bytes to every K-th.
"""
import argparse, base64, os, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fwd_client import connect, pack, read_ack  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--addr", required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--start", type=int, default=0)
    p.add_argument("--batch", type=int, default=200)
    p.add_argument("--bad-every", type=int, default=0)
    p.add_argument("--tag", default="es.test")
    p.add_argument("--pad", type=int, default=0)
    p.add_argument("--big-every", type=int, default=0)
    p.add_argument("--big-size", type=int, default=0)
    a = p.parse_args()
    s = connect(a.addr)
    t = 1764390000
    i, end = a.start, a.start + a.count
    while i < end:
        n = min(a.batch, end - i)
        entries = []
        for j in range(i, i + n):
            rec = {"log": "seq=%d" % j, "seq": j}
            if a.bad_every and j % a.bad_every == 0:
                rec["bad"] = {"x": 1}
            if a.pad:
                rec["pad"] = "p" * a.pad
            if a.big_every and j % a.big_every == 0:
                rec["pad"] = "b" * a.big_size
            entries.append([t + j // 1000, rec])
        chunk = base64.b64encode(("%s/%d/%d" % (a.tag, i, n)).encode()).decode()
        s.sendall(pack([a.tag, entries, {"chunk": chunk}]))
        read_ack(s, chunk)
        i += n
    s.close()
    print("sent %d" % a.count)


if __name__ == "__main__":
    main()
