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


def pack(o):
    if o is None:
        return b"\xc0"
    if o is True:
        return b"\xc3"
    if o is False:
        return b"\xc2"
    if isinstance(o, int):
        if 0 <= o < 128:
            return bytes([o])
        if 0 <= o < 2**32:
            return b"\xce" + struct.pack(">I", o)
        return b"\xcf" + struct.pack(">Q", o)
    if isinstance(o, str):
        o = o.encode()
        return str_header(len(o)) + o
    if isinstance(o, bytes):
        return bin_header(len(o)) + o
    if isinstance(o, (list, tuple)):
        n = len(o)
        h = bytes([0x90 | n]) if n < 16 else b"\xdd" + struct.pack(">I", n)
        return h + b"".join(pack(x) for x in o)
    if isinstance(o, dict):
        n = len(o)
        h = bytes([0x80 | n]) if n < 16 else b"\xdf" + struct.pack(">I", n)
        return h + b"".join(pack(k) + pack(v) for k, v in o.items())
    raise TypeError(o)


def str_header(n):
    if n < 32:
        return bytes([0xA0 | n])
    if n < 256:
        return b"\xd9" + bytes([n])
    return b"\xda" + struct.pack(">H", n) if n < 65536 else b"\xdb" + struct.pack(">I", n)


def bin_header(n):
    if n < 256:
        return b"\xc4" + bytes([n])
    return b"\xc5" + struct.pack(">H", n) if n < 65536 else b"\xc6" + struct.pack(">I", n)


def array_header(n):
    return bytes([0x90 | n]) if n < 16 else (b"\xdc" + struct.pack(">H", n) if n < 65536 else b"\xdd" + struct.pack(">I", n))


def event_time(t):
    sec = int(t)
    return b"\xd7\x00" + struct.pack(">II", sec, int((t - sec) * 1e9))


class Unpacker:
    """Just enough MessagePack decoding for HELO, PONG and acks."""

    def __init__(self, b):
        self.b, self.i = b, 0

    def take(self, n):
        if self.i + n > len(self.b):
            raise EOFError
        v = self.b[self.i:self.i + n]
        self.i += n
        return v

    def obj(self):
        t = self.take(1)[0]
        if t <= 0x7F:
            return t
        if 0x80 <= t <= 0x8F:
            return self.map(t & 15)
        if 0x90 <= t <= 0x9F:
            return [self.obj() for _ in range(t & 15)]
        if 0xA0 <= t <= 0xBF:
            return self.take(t & 31)
        fixed = {0xC0: None, 0xC2: False, 0xC3: True}
        if t in fixed:
            return fixed[t]
        if t in (0xC4, 0xD9):
            return self.take(self.take(1)[0])
        if t in (0xC5, 0xDA):
            return self.take(struct.unpack(">H", self.take(2))[0])
        if t in (0xC6, 0xDB):
            return self.take(struct.unpack(">I", self.take(4))[0])
        if t == 0xCC:
            return self.take(1)[0]
        if t == 0xCD:
            return struct.unpack(">H", self.take(2))[0]
        if t == 0xCE:
            return struct.unpack(">I", self.take(4))[0]
        if t == 0xDC:
            return [self.obj() for _ in range(struct.unpack(">H", self.take(2))[0])]
        if t == 0xDE:
            return self.map(struct.unpack(">H", self.take(2))[0])
        if t == 0xDF:
            return self.map(struct.unpack(">I", self.take(4))[0])
        raise ValueError("unexpected MessagePack type 0x%02x" % t)

    def map(self, n):
        return {self.obj(): self.obj() for _ in range(n)}


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
