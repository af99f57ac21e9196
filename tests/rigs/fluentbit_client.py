#!/usr/bin/env python3
"""Writes exactly what Fluent Bit 2.1+ `out_forward` writes (read from its source, plugins/out_forward
and checked against a capture of Fluent Bit 5.1.1), for tests of servers that must accept it.

  fluentbit_client.py --addr HOST:PORT --chunks N --records K [--start S]
      [--require-ack] [--compress gzip] [--time-as-integer]
      [--shared-key KEY [--self-hostname H] [--username U --password P]]
      [--tls --ca CA.pem [--servername NAME]] [--metadata] [--signals]

What it does, as Fluent Bit does:
- one connection, kept alive across chunks; with a shared key the handshake runs once on it:
  wait for HELO in one read, send PING ["PING", self_hostname, salt (str of 16 random bytes),
  sha512_hex(salt + self_hostname + nonce + key), username, sha512_hex(auth + username + password)]
  (username and digest empty strings when HELO's "auth" is absent), then PONG in one read, of which
  only [0] == "PONG" and [1] == true are checked;
- each chunk is [tag, [[[EventTime, {}], {"log": "seq=<i> ...", "seq": i}], ...]] in Forward mode
  (a 2-element frame without options), or with gzip a bin of the concatenated entries; the
  header, the entries and the options map are three separate writes; options (map32 when it has
  "chunk", as Fluent Bit's packer writes it) are {"chunk": 32 hex of sha512(entries), "size": K,
  "compressed": "gzip", "fluent_signal": 0};
- with --require-ack, waits for {"ack": chunk} in one read after each chunk;
- --time-as-integer: [[sec, {}], record] entries; --metadata: every 7th record carries
  {"otlp": {"severity": 9}} as metadata; --signals: after the logs, a metrics and a traces frame
  (fluent_signal 1 and 2, bin payloads that are not log entries) that must be acked and dropped.
Prints "acked N" at the end; exits 1 with a reason on any protocol failure.
"""
import argparse, gzip, hashlib, os, socket, ssl, struct, sys, time

from msgpack_lite import Unpacker, array_header, bin_header, event_time, pack, str_header  # noqa: F401


def die(why):
    print("fluentbit_client: " + why, file=sys.stderr)
    sys.exit(1)


def read_one(s, what):
    """Fluent Bit's secure_forward_read: the whole message must come in one read."""
    b = s.recv(1024)
    if not b:
        die("connection closed while waiting for " + what)
    try:
        return Unpacker(b).obj()
    except (EOFError, ValueError) as e:
        die("%s did not arrive in one read as one MessagePack object: %r" % (what, e))


def sha512_hex(*parts):
    h = hashlib.sha512()
    for p in parts:
        h.update(p)
    return h.hexdigest()


def handshake(s, a):
    helo = read_one(s, "HELO")
    if not isinstance(helo, list) or len(helo) < 2 or helo[0] != b"HELO":
        die("Invalid HELO message: %r" % (helo,))
    opts = helo[1]
    nonce = opts.get(b"nonce")
    if nonce is None:
        die("nonce not found")
    auth = opts.get(b"auth")
    salt = os.urandom(16)
    host = a.self_hostname.encode()
    digest = sha512_hex(salt, host, nonce, a.shared_key.encode())
    # The salt goes out as a str of random bytes, as Fluent Bit packs it.
    ping = array_header(6) + pack("PING") + pack(a.self_hostname) + str_header(16) + salt + pack(digest)
    if auth is not None:  # Fluent Bit answers any "auth", even an empty one, with user and digest
        user, pw = a.username.encode(), a.password.encode()
        ping += str_header(len(user)) + user + pack(sha512_hex(auth, user, pw))
    else:
        ping += pack("") + pack("")
    s.sendall(ping)
    pong = read_one(s, "PONG")
    if not isinstance(pong, list) or len(pong) < 4 or pong[0] != b"PONG":
        die("bad PONG: %r" % (pong,))
    if pong[1] is not True:
        die("failed authorization: %s" % pong[2].decode(errors="replace"))


def entries(a, first, k):
    out = []
    for i in range(first, first + k):
        t = time.time()
        ts = pack(int(t)) if a.time_as_integer else event_time(t)
        meta = {"otlp": {"severity": 9}} if a.metadata and i % 7 == 0 else {}
        rec = {"log": "seq=%d fluent-bit-shaped" % i, "seq": i}
        out.append(b"\x92\x92" + ts + pack(meta) + pack(rec))
    return b"".join(out)


def options(a, body, size, signal, compressed):
    """append_options: "chunk" first; map32 as msgpack-c packs a map built this way."""
    items = []
    chunk = None
    if a.require_ack:
        chunk = hashlib.sha512(body).hexdigest()[:32]
        items.append(pack("chunk") + pack(chunk))
    items.append(pack("size") + pack(size))
    if compressed:
        items.append(pack("compressed") + pack("gzip"))
    items.append(pack("fluent_signal") + pack(signal))
    return b"\xdf" + struct.pack(">I", len(items)) + b"".join(items), chunk


def send_chunk(s, a, tag, body, size, signal=0, raw_payload=False):
    send_options = a.require_ack or a.compress == "gzip" or signal != 0
    compressed = a.compress == "gzip" and signal == 0
    head = array_header(3 if send_options else 2) + pack(tag)
    if compressed:
        payload = gzip.compress(body)
        head += bin_header(len(payload))
    elif raw_payload:
        payload = body
        head += bin_header(len(payload))
    else:
        payload = body
        head += array_header(size)
    s.sendall(head)      # header
    s.sendall(payload)   # entries
    chunk = None
    if send_options:
        opts, chunk = options(a, body, size, signal, compressed)
        s.sendall(opts)  # options
    if chunk is not None:
        ack = read_one(s, "ack")
        if not isinstance(ack, dict) or ack.get(b"ack") != chunk.encode():
            die("ack: mismatch received=%r, expected=%s" % (ack, chunk))
    return chunk is not None


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--addr", required=True)
    p.add_argument("--tag", default="dummy.0")
    p.add_argument("--chunks", type=int, default=1)
    p.add_argument("--records", type=int, default=1)
    p.add_argument("--start", type=int, default=0)
    p.add_argument("--require-ack", action="store_true")
    p.add_argument("--compress", default="text")
    p.add_argument("--time-as-integer", action="store_true")
    p.add_argument("--shared-key")
    p.add_argument("--self-hostname", default="localhost")
    p.add_argument("--username", default="")
    p.add_argument("--password", default="")
    p.add_argument("--tls", action="store_true")
    p.add_argument("--ca")
    p.add_argument("--servername", default="localhost")
    p.add_argument("--metadata", action="store_true")
    p.add_argument("--signals", action="store_true")
    p.add_argument("--timeout", type=float, default=10)
    a = p.parse_args()

    host, port = a.addr.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=a.timeout)
    if a.tls:
        ctx = ssl.create_default_context(cafile=a.ca)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        s = ctx.wrap_socket(s, server_hostname=a.servername)
    if a.shared_key is not None:
        handshake(s, a)
    acked = 0
    seq = a.start
    for _ in range(a.chunks):
        body = entries(a, seq, a.records)
        acked += a.records if send_chunk(s, a, a.tag, body, a.records) else 0
        seq += a.records
    if a.signals:  # cmetrics / ctraces payloads: not log entries, never to be decoded as such
        for sig in (1, 2):
            send_chunk(s, a, a.tag, b"\x81\xa8cmetrics\xc4\x03\xc1\xc1\xc1", 1, signal=sig,
                       raw_payload=True)
        # the connection must still be open: one more log chunk goes through it
        body = entries(a, seq, 1)
        acked += 1 if send_chunk(s, a, a.tag, body, 1) else 0
        seq += 1
    s.close()
    print("acked %d" % acked)


if __name__ == "__main__":
    main()
