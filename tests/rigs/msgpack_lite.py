"""The tests' MessagePack: a writer (pack and the headers Fluent Bit's packer writes: the shortest
form of each) and just enough of a reader for HELO, PONG and acks. Standard library only; used by
tests/rigs/fluentbit_client.py, tests/integration/fwd_client.py and what imports them."""
import struct


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
