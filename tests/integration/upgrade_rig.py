#!/usr/bin/env python3
"""Drives shipper through in-place upgrades (SIGUSR2) for test_upgrade.sh and
test_upgrade_docker.sh. Standard library only.

The rig starts shipper itself and makes itself a child subreaper, so every new process of an
upgrade becomes its child once the old one exits: exit codes of all of them are checked.

  upgrade_rig.py SCENARIO --shipper BIN --dir T --conf FILE [--port P] ...

Scenarios (each prints ok:/FAIL: lines and exits 1 on any failure):
  basic   forward TCP + unix listeners and a json-file input, no spool: connections that keep
          sending acked records across three upgrades, short connections opened all the time
          (none refused, none closed), a frame cut in half by an upgrade, a bad config at
          upgrade (the new process exits 2, the old one goes on), json-file lines written while
          the upgrades run; every record once.
  spool   the same with buffer.spool and ack: durable (the spool is handed over).
  auth    shared_key: an authenticated connection goes on without a second handshake; one that
          got its HELO from the old process answers it to the new one.
  tls     a TLS connection is closed gracefully (close_notify) after the frame it was reading
          is finished and acked; the client reconnects and loses nothing.
  reload  SIGHUP with acked traffic: a changed config applied, a bad one refused (used by
          test_reload.sh, once per ack mode).
  docker  used by test_upgrade_docker.sh: upgrades every --every seconds while --until FILE
          does not exist, --count upgrades at most.
"""
import argparse, base64, ctypes, re, itertools, json, os, select, signal, socket, ssl, struct, sys
import shutil, threading, time, urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "rigs"))
from fluentbit_client import Unpacker, array_header, pack, sha512_hex, str_header  # noqa: E402

FAILS = 0


def expect(cond, what):
    global FAILS
    print(("ok: " if cond else "FAIL: ") + what, flush=True)
    if not cond:
        FAILS += 1
    return cond


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


# ---- processes ----

PR_SET_CHILD_SUBREAPER = 36


class Shipper:
    """One shipper lineage: the first process and every process that took over from it."""

    def __init__(self, binary, conf, pidfile, outdir, name, env=None):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        self.pidfile = pidfile
        self.err_path = os.path.join(outdir, name + ".err")
        self.out = open(os.path.join(outdir, name + ".out"), "ab")
        self.err = open(self.err_path, "ab")
        p = __import__("subprocess").Popen([binary, "-c", conf], stdout=self.out,
                                           stderr=self.err, env=env)
        self.pid = p.pid
        self.codes = {}  # pid -> exit code of the processes that have exited

    def alive(self, pid):
        if pid in self.codes:
            return False
        try:
            got, st = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return False
        if got == pid:
            self.codes[pid] = os.waitstatus_to_exitcode(st)
            return False
        return True

    def wait_exit(self, pid, timeout=30):
        end = time.time() + timeout
        while time.time() < end:
            if not self.alive(pid):
                return self.codes.get(pid)
            time.sleep(0.02)
        return None

    def read_pidfile(self):
        try:
            return int(open(self.pidfile).read().strip())
        except (OSError, ValueError):
            return None

    def wait_pidfile(self, not_pid=None, timeout=30):
        end = time.time() + timeout
        while time.time() < end:
            p = self.read_pidfile()
            if p and p != not_pid and self.alive(p):
                return p
            time.sleep(0.02)
        return None

    def upgrade(self, timeout=30):
        """SIGUSR2 to the running process; returns (new pid, old process's exit code)."""
        old = self.pid
        os.kill(old, signal.SIGUSR2)
        new = self.wait_pidfile(not_pid=old, timeout=timeout)
        code = self.wait_exit(old, timeout) if new else None
        if new:
            self.pid = new
        return new, code

    def log_has(self, text, timeout=20, since=0):
        end = time.time() + timeout
        while time.time() < end:
            with open(self.err_path, "rb") as f:
                f.seek(since)
                if text.encode() in f.read():
                    return True
            time.sleep(0.05)
        return False

    def log_size(self):
        return os.path.getsize(self.err_path)

    def stop(self):
        os.kill(self.pid, signal.SIGTERM)
        return self.wait_exit(self.pid, 60)

    def kill_all(self):
        for pid in [self.pid] + [self.read_pidfile() or 0]:
            if pid and self.alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass


def metric(addr, key):
    try:
        body = urllib.request.urlopen("http://%s/metrics" % addr, timeout=5).read().decode()
    except OSError:
        return None
    v = 0
    for line in body.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == key:
            v = float(parts[1])
    return v


# ---- Forward clients ----

SEQ = itertools.count()
SEQ_LOCK = threading.Lock()


def next_seq():
    with SEQ_LOCK:
        return next(SEQ)


def connect(addr, timeout=10):
    if addr.startswith("unix://"):
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(timeout)
        s.connect(addr[7:])
    else:
        host, port = addr.rsplit(":", 1)
        s = socket.create_connection((host, int(port)), timeout=timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def frame(seq, tag="upg.test", pad=0):
    chunk = base64.b64encode(b"seq-%d" % seq).decode()
    rec = {"log": "seq=%d" % seq, "seq": seq, "source": "stdout"}
    if pad:
        rec["pad"] = "p" * pad
    return pack([tag, int(time.time()), rec, {"chunk": chunk}]), chunk.encode()


def wait_ack(s, chunk, buf=b""):
    """Reads until {"ack": chunk}; returns what came after it, or None if the connection closed."""
    while True:
        i = buf.find(chunk)
        if i >= 0:
            return buf[i + len(chunk):]
        try:
            d = s.recv(65536)
        except (ConnectionResetError, socket.timeout, OSError):
            return None
        if not d:
            return None
        buf += d


class Sender(threading.Thread):
    """One connection that sends acked records until told to stop; it must never be closed."""

    def __init__(self, addr, gap=0.001):
        super().__init__(daemon=True)
        self.addr, self.gap = addr, gap
        self.acked, self.sent, self.error = [], [], None
        self.halt = threading.Event()

    def run(self):
        try:
            s = connect(self.addr, timeout=20)
        except OSError as e:
            self.error = "connect: %s" % e
            return
        buf = b""
        while not self.halt.is_set():
            seq = next_seq()
            data, chunk = frame(seq)
            try:
                s.sendall(data)
            except OSError as e:
                self.error = "send: %s" % e
                return
            self.sent.append(seq)
            buf = wait_ack(s, chunk, buf)
            if buf is None:
                self.error = "connection closed while waiting for the ack of seq %d" % seq
                return
            self.acked.append(seq)
            time.sleep(self.gap)
        s.close()


class Connector(threading.Thread):
    """Opens a new connection all the time, each sending one acked record."""

    def __init__(self, addr):
        super().__init__(daemon=True)
        self.addr = addr
        self.acked, self.refused, self.lost = [], 0, 0
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            seq = next_seq()
            try:
                s = connect(self.addr, timeout=20)
            except ConnectionRefusedError:
                self.refused += 1
                continue
            except OSError:
                self.lost += 1
                continue
            data, chunk = frame(seq)
            try:
                s.sendall(data)
                if wait_ack(s, chunk) is None:
                    self.lost += 1
                else:
                    self.acked.append(seq)
            except OSError:
                self.lost += 1
            s.close()
            time.sleep(0.005)


class JsonFileWriter(threading.Thread):
    """Appends Docker json-file lines "jf <n>" to a fake container's log."""

    def __init__(self, path, rate=500):
        super().__init__(daemon=True)
        self.path, self.gap, self.n = path, 1.0 / rate, 0
        self.halt = threading.Event()

    def run(self):
        with open(self.path, "ab", buffering=0) as f:
            while not self.halt.is_set():
                f.write(b'{"log":"jf %d\\n","stream":"stdout","time":"2024-01-01T00:00:00.000000001Z"}\n'
                        % self.n)
                self.n += 1
                time.sleep(self.gap)


class Notify(threading.Thread):
    """systemd's notification socket (NOTIFY_SOCKET): records every datagram."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if os.path.exists(path):
            os.unlink(path)
        self.sock.bind(path)
        self.msgs = []

    def run(self):
        while True:
            self.msgs.append(self.sock.recv(4096).decode())

    def mainpids(self):
        out = []
        for m in self.msgs:
            kv = dict(l.split("=", 1) for l in m.split("\n") if "=" in l)
            if kv.get("READY") == "1" and "MAINPID" in kv:
                out.append(int(kv["MAINPID"]))
        return out


def read_docs(path):
    docs = []
    for line in open(path, "rb"):
        try:
            docs.append(json.loads(line))
        except ValueError:
            expect(False, "an output line is not JSON: %r" % line[:200])
    return docs


def check_once(docs, acked, label):
    """Every acked seq arrived, and no seq twice (acked or not)."""
    seqs = [d["seq"] for d in docs if "seq" in d]
    counts = {}
    for s in seqs:
        counts[s] = counts.get(s, 0) + 1
    twice = [s for s, n in counts.items() if n > 1]
    missing = [s for s in acked if s not in counts]
    expect(not missing and not twice,
           "%s: every acked record arrived once (%d acked, %d arrived, %d missing, %d twice; e.g. %s)"
           % (label, len(acked), len(seqs), len(missing), len(twice), (missing + twice)[:5]))


# ---- scenarios ----

def scenario_forward(a, spool):
    T = a.dir
    sock = os.path.join(T, "fwd.sock")
    tcp = "127.0.0.1:%d" % a.port
    cid = "ab" * 32
    cdir = os.path.join(T, "containers", cid)
    os.makedirs(cdir, exist_ok=True)
    jlog = os.path.join(cdir, cid + "-json.log")
    open(jlog, "wb").close()
    with open(os.path.join(cdir, "config.v2.json"), "w") as f:  # the name: lines are not held
        json.dump({"Name": "/upg-json", "Config": {"Image": "busybox", "Labels": {}}}, f)
    notify = Notify(os.path.join(T, "notify.sock"))
    notify.start()
    # Run a copy, so the file can be replaced by a new build before an upgrade, as a package
    # manager does (a new inode at the same path).
    binary = os.path.join(T, "bin", "shipper")
    os.makedirs(os.path.dirname(binary), exist_ok=True)
    shutil.copy(a.shipper, binary)
    sh = Shipper(binary, a.conf, a.pidfile, T, "s",
                 env=dict(os.environ, NOTIFY_SOCKET=os.path.join(T, "notify.sock")))
    try:
        first = sh.wait_pidfile()
        expect(first == sh.pid, "pid_file holds the first process's pid (%s)" % first)
        senders = [Sender(tcp), Sender("unix://" + sock)]
        conn = Connector(tcp)
        jw = JsonFileWriter(jlog)
        for t in senders + [conn, jw]:
            t.start()
        time.sleep(0.5)
        pids = [sh.pid]
        for i in range(3):
            before = sum(len(s.acked) for s in senders)
            if i == 1:
                shutil.copy(a.shipper, binary + ".new")
                os.rename(binary + ".new", binary)
            new, code = sh.upgrade()
            expect(new is not None, "upgrade %d: a new process took over (pid %s)" % (i + 1, new))
            expect(code == 0, "upgrade %d: the old process exited 0 (%s)" % (i + 1, code))
            if not new:
                break
            pids.append(new)
            if i == 1:
                exe, cur = os.stat("/proc/%d/exe" % new).st_ino, os.stat(binary).st_ino
                expect(exe == cur, "the new process runs the file now at the path (inode %d, want %d)"
                       % (exe, cur))
            time.sleep(0.7)
            after = sum(len(s.acked) for s in senders)
            expect(after > before, "upgrade %d: the same connections go on being acked (%d -> %d)"
                   % (i + 1, before, after))
        expect(len(set(pids)) == len(pids), "each upgrade made a new process: %s" % pids)

        log("a frame cut in half by an upgrade")
        s = connect(tcp, timeout=20)
        seq = next_seq()
        data, chunk = frame(seq)
        s.sendall(data[: len(data) // 2])
        big = connect(tcp, timeout=20)  # 1.5 MB pending: more than the channel's buffer
        bseq = next_seq()
        bdata, bchunk = frame(bseq, pad=3 << 20)
        big.sendall(bdata[: len(bdata) // 2])
        time.sleep(0.3)
        new, code = sh.upgrade()
        pids.append(new)
        expect(new is not None and code == 0, "upgrade with half a frame pending (new pid %s)" % new)
        s.sendall(data[len(data) // 2:])
        half_ok = wait_ack(s, chunk) is not None
        expect(half_ok, "the rest of the frame went to the new process, which acked it")
        big.sendall(bdata[len(bdata) // 2:])
        big_ok = wait_ack(big, bchunk) is not None
        expect(big_ok, "...and the rest of a 3 MB frame cut in half")
        s.close()
        big.close()
        half_acked = [seq] * half_ok + [bseq] * big_ok
        n = metric(a.http, 'shipper_upgrade_connections_total{result="adopted"}')
        expect(n and n >= 4, "the new process adopted the open connections (%s)" % n)

        log("a line over 16 KiB whose pieces straddle an upgrade")
        p = connect(tcp, timeout=20)
        base = {"container_id": "c" * 64, "source": "stdout", "partial_message": "true",
                "partial_id": "pid-1"}
        piece1 = dict(base, log="A" * 16384, partial_ordinal="1", partial_last="false")
        p.sendall(pack(["upg.partial", int(time.time()), piece1, {"chunk": "part-1"}]))
        expect(wait_ack(p, b"part-1") is not None, "the first piece is acked")
        mark = sh.log_size()
        old = sh.pid
        os.kill(old, signal.SIGUSR2)
        expect(sh.log_has("is ready; handing over", since=mark), "the hand-over began")
        time.sleep(0.3)
        piece2 = dict(base, log="B" * 100, partial_ordinal="2", partial_last="true")
        p.sendall(pack(["upg.partial", int(time.time()), piece2, {"chunk": "part-2"}]))
        expect(wait_ack(p, b"part-2") is not None, "the last piece, sent during the hand-over, is acked")
        new = sh.wait_pidfile(not_pid=old)
        code = sh.wait_exit(old)
        expect(new is not None and code == 0, "...and the upgrade completes (%s, old exit %s)"
               % (new, code))
        sh.pid = new or sh.pid
        pids.append(new)
        q = next_seq()
        d, c = frame(q)
        p.sendall(d)
        went_on = wait_ack(p, c) is not None
        expect(went_on, "the connection goes on with the new process")
        half_acked += [q] * went_on
        p.close()

        log("a bad config at upgrade")
        good = open(a.conf).read()
        open(a.conf, "w").write(good.replace("outputs:", "outputs: [oops\n"))
        mark = sh.log_size()
        before = sum(len(s.acked) for s in senders)
        os.kill(sh.pid, signal.SIGUSR2)
        failed = sh.log_has("upgrade failed", since=mark)
        expect(failed, "the old process logged that the upgrade failed")
        expect(sh.log_has("exited with status 2", since=mark, timeout=1),
               "...naming the new process's exit status 2")
        time.sleep(0.5)
        after = sum(len(s.acked) for s in senders)
        expect(sh.alive(sh.pid) and sh.read_pidfile() == sh.pid,
               "the old process goes on (pid_file still %s)" % sh.read_pidfile())
        expect(after > before, "records are still acked after the failed upgrade (%d -> %d)"
               % (before, after))
        expect(metric(a.http, 'shipper_upgrades_total{result="failed"}') == 1,
               "shipper_upgrades_total{result=\"failed\"} is 1")
        open(a.conf, "w").write(good)
        new, code = sh.upgrade()
        pids.append(new)
        expect(new is not None and code == 0, "the next upgrade, with the config fixed, works")
        expect(notify.mainpids() == pids,
               "systemd was told READY=1 and MAINPID= by each process as it took over: %s (want %s)"
               % (notify.mainpids(), pids))

        for t in senders + [conn, jw]:
            t.halt.set()
        for t in senders + [conn, jw]:
            t.join(30)
        for i, t in enumerate(senders):
            expect(t.error is None, "connection %d was never closed (%s; %d acked)"
                   % (i, t.error, len(t.acked)))
        expect(conn.refused == 0 and conn.lost == 0,
               "short connections: %d acked, none refused (%d), none closed before its ack (%d)"
               % (len(conn.acked), conn.refused, conn.lost))
        time.sleep(1.5)  # the json-file tail reaches the last line
        code = sh.stop()
        expect(code == 0, "the last process exits 0 on SIGTERM (%s)" % code)
        docs = read_docs(os.path.join(T, "s.out"))
        acked = [x for t in senders for x in t.acked] + conn.acked + half_acked
        check_once(docs, acked, "forward")
        joined = [d["message"] for d in docs if d.get("tag") == "upg.partial"]
        expect(joined == ["A" * 16384 + "B" * 100],
               "the line whose pieces straddled the upgrade arrived joined, once (%s)"
               % [len(m) for m in joined])
        jf = [d["message"] for d in docs if d.get("message", "").startswith("jf ")]
        want = ["jf %d" % i for i in range(jw.n)]
        expect(sorted(jf, key=lambda m: int(m[3:])) == want,
               "json-file: %d lines written across the upgrades, each shipped once (got %d, %d distinct)"
               % (jw.n, len(jf), len(set(jf))))
    finally:
        sh.kill_all()


def scenario_auth(a):
    T = a.dir
    tcp = "127.0.0.1:%d" % a.port
    key = b"upgrade-key"
    sh = Shipper(a.shipper, a.conf, a.pidfile, T, "a")
    try:
        sh.wait_pidfile()

        def helo(s):
            b = s.recv(1024)
            m = Unpacker(b).obj()
            return m[1][b"nonce"], m[1].get(b"auth")

        def ping(s, nonce):
            salt = os.urandom(16)
            s.sendall(array_header(6) + pack("PING") + pack("client") + str_header(16) + salt +
                      pack(sha512_hex(salt, b"client", nonce, key)) + pack("") + pack(""))
            pong = Unpacker(s.recv(1024)).obj()
            return pong[0] == b"PONG" and pong[1] is True

        def acked(s, seq):
            data, chunk = frame(seq)
            s.sendall(data)
            return wait_ack(s, chunk) is not None

        a1 = connect(tcp, timeout=20)
        expect(ping(a1, helo(a1)[0]), "connection A authenticated with the first process")
        got = [q for q in (next_seq(), next_seq()) if acked(a1, q)]
        b1 = connect(tcp, timeout=20)
        nonce_b, _ = helo(b1)  # HELO from the first process; no PING yet
        new, code = sh.upgrade()
        expect(new is not None and code == 0, "upgrade (new pid %s, old exit %s)" % (new, code))
        q = next_seq()
        ok_a = acked(a1, q)
        expect(ok_a, "connection A goes on with the new process: no second handshake")
        got += [q] if ok_a else []
        ok_b = ping(b1, nonce_b)
        expect(ok_b, "connection B answers the old process's HELO to the new one: accepted")
        q = next_seq()
        if ok_b and acked(b1, q):
            got.append(q)
        else:
            expect(False, "connection B's record acked")
        c1 = connect(tcp, timeout=20)
        q = next_seq()
        c1.sendall(frame(q)[0])  # no handshake: refused
        c1.settimeout(5)
        try:
            closed = c1.recv(1024) == b"" or c1.recv(1024) == b""
        except OSError:
            closed = True
        expect(closed, "a new connection without the handshake is still refused")
        time.sleep(1)
        code = sh.stop()
        expect(code == 0, "exit 0 (%s)" % code)
        check_once(read_docs(os.path.join(T, "a.out")), got, "shared_key")
    finally:
        sh.kill_all()


def scenario_tls(a):
    T = a.dir
    sh = Shipper(a.shipper, a.conf, a.pidfile, T, "t")
    ctx = ssl.create_default_context(cafile=a.ca)
    ctx.check_hostname = False

    def tconnect():
        raw = socket.create_connection(("127.0.0.1", a.port), timeout=20)
        return ctx.wrap_socket(raw, server_hostname="localhost")

    try:
        sh.wait_pidfile()
        acked = []
        s = tconnect()
        for _ in range(20):
            q = next_seq()
            data, chunk = frame(q)
            s.sendall(data)
            if wait_ack(s, chunk) is not None:
                acked.append(q)
        expect(len(acked) == 20, "20 records acked over TLS before the upgrade")
        log("half a frame, then the upgrade: the old process finishes the frame, acks it, closes")
        q = next_seq()
        data, chunk = frame(q)
        s.sendall(data[: len(data) // 2])
        time.sleep(0.2)
        mark = sh.log_size()
        old = sh.pid
        os.kill(old, signal.SIGUSR2)
        expect(sh.log_has("handing over", since=mark), "the old process began the hand-over")
        time.sleep(0.3)
        s.sendall(data[len(data) // 2:])
        rest = wait_ack(s, chunk)
        expect(rest is not None, "the frame completed after the upgrade began is acked")
        if rest is not None:
            acked.append(q)
        clean = False
        try:
            while True:
                d = s.recv(4096)
                if not d:
                    clean = True  # close_notify: Python returns b"" only on a clean TLS close
                    break
        except ssl.SSLError as e:
            print("TLS read ended with %r" % e)
        except OSError as e:
            print("read ended with %r" % e)
        expect(clean, "then the connection was closed with close_notify")
        new = sh.wait_pidfile(not_pid=old)
        code = sh.wait_exit(old)
        expect(new is not None and code == 0, "the new process took over (%s), the old exited %s"
               % (new, code))
        sh.pid = new or sh.pid
        s = tconnect()  # the client reconnects
        for _ in range(20):
            q = next_seq()
            data, chunk = frame(q)
            s.sendall(data)
            if wait_ack(s, chunk) is not None:
                acked.append(q)
        expect(len(acked) == 41, "20 more records acked by the new process after reconnecting")
        s.close()
        time.sleep(1)
        code = sh.stop()
        expect(code == 0, "exit 0 (%s)" % code)
        check_once(read_docs(os.path.join(T, "t.out")), acked, "tls")
        expect(sh.log_has("closed 1 TLS connection", timeout=1),
               "the old process logged the TLS connection it closed")
    finally:
        sh.kill_all()


def scenario_docker(a):
    """Upgrades every a.every seconds, a.count times, then waits for a.until to exist and stops
    the last process."""
    sh = Shipper(a.shipper, a.conf, a.pidfile, a.dir, "s")
    try:
        expect(sh.wait_pidfile() is not None, "shipper is running")
        open(os.path.join(a.dir, "rig.ready"), "w").close()
        while not os.path.exists(os.path.join(a.dir, "rig.go")):
            time.sleep(0.05)
        for n in range(1, a.count + 1):
            time.sleep(a.every)
            new, code = sh.upgrade()
            expect(new is not None and code == 0, "upgrade %d: new pid %s, old exit %s" % (n, new, code))
            if not new:
                break
        open(os.path.join(a.dir, "rig.upgraded"), "w").close()
        while not os.path.exists(a.until):
            time.sleep(0.1)
        code = sh.stop()
        expect(code == 0, "the last process exits 0 (%s)" % code)
    finally:
        sh.kill_all()


def scenario_reload(a):
    """SIGHUP with acked traffic running: a changed config is applied by a new process (an
    output added), a bad one is refused with its line named and the old process goes on, and
    every acked record arrives once."""
    T = a.dir
    tcp = "127.0.0.1:%d" % a.port
    sh = Shipper(a.shipper, a.conf, a.pidfile, T, "r")
    try:
        first = sh.wait_pidfile()
        expect(first == sh.pid, "pid_file holds the first process's pid (%s)" % first)
        senders = [Sender(tcp), Sender(tcp)]
        for t in senders:
            t.start()
        time.sleep(0.5)
        key_null = 'shipper_output_records_total{output="extra",result="delivered"}'
        expect(metric(a.http, key_null) == 0, "before the reload there is no output `extra`")

        log("a changed config")
        good = open(a.conf).read()
        changed = good + "  - {type: null, name: extra}\n"
        open(a.conf, "w").write(changed)
        before = sum(len(s.acked) for s in senders)
        old = sh.pid
        mark = sh.log_size()
        os.kill(old, signal.SIGHUP)
        new = sh.wait_pidfile(not_pid=old)
        code = sh.wait_exit(old) if new else None
        expect(new is not None and code == 0,
               "SIGHUP: a new process took over (pid %s), the old one exited 0 (%s)" % (new, code))
        sh.pid = new or sh.pid
        expect(sh.log_has("received SIGHUP: reloading", since=mark), "the reload is logged")
        time.sleep(0.7)
        after = sum(len(s.acked) for s in senders)
        expect(after > before, "the same connections go on being acked (%d -> %d)" % (before, after))
        got = metric(a.http, key_null)
        expect(got is not None and got > 0, "the added output runs (%s records)" % got)
        expect(metric(a.http, 'shipper_config_reloads_total{result="ok"}') == 1,
               "shipper_config_reloads_total{result=\"ok\"} is 1 in the new process")
        at = metric(a.http, "shipper_config_last_reload_timestamp_seconds")
        expect(at and abs(at - time.time()) < 60, "the last reload's time is exported (%s)" % at)

        log("a bad config")
        open(a.conf, "w").write(changed + "  - {type: elasticsearch, url: 42, bogus_key: 1}\n")
        mark = sh.log_size()
        before = sum(len(s.acked) for s in senders)
        os.kill(sh.pid, signal.SIGHUP)
        expect(sh.log_has("upgrade failed", since=mark), "the old process logged that it failed")
        with open(sh.err_path, "rb") as f:
            f.seek(mark)
            text = f.read().decode(errors="replace")
        expect(re.search(re.escape(a.conf) + r":\d+: ", text) is not None,
               "the error names the file and line: %s" %
               [l for l in text.splitlines() if a.conf in l][:1])
        time.sleep(0.5)
        after = sum(len(s.acked) for s in senders)
        expect(sh.alive(sh.pid) and sh.read_pidfile() == sh.pid,
               "the running process goes on (pid_file still %s)" % sh.read_pidfile())
        expect(after > before, "records are still acked (%d -> %d)" % (before, after))
        expect(metric(a.http, 'shipper_config_reloads_total{result="failed"}') == 1 and
               metric(a.http, 'shipper_config_reloads_total{result="ok"}') == 1,
               "shipper_config_reloads_total: ok 1, failed 1")
        open(a.conf, "w").write(good)

        for t in senders:
            t.halt.set()
        for t in senders:
            t.join(30)
        for i, t in enumerate(senders):
            expect(t.error is None, "connection %d was never closed (%s; %d acked)"
                   % (i, t.error, len(t.acked)))
        code = sh.stop()
        expect(code == 0, "the last process exits 0 on SIGTERM (%s)" % code)
        docs = read_docs(os.path.join(T, "r.out"))
        check_once(docs, [x for t in senders for x in t.acked], "reload")
    finally:
        sh.kill_all()


def main():
    # The test's cleanup sends SIGTERM: leave through the finally blocks, which stop every
    # shipper of the lineage (the later ones are not the test's children).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    p = argparse.ArgumentParser()
    p.add_argument("scenario")
    p.add_argument("--shipper", required=True)
    p.add_argument("--dir", required=True)
    p.add_argument("--conf", required=True)
    p.add_argument("--pidfile", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--http", default="")
    p.add_argument("--ca", default="")
    p.add_argument("--every", type=float, default=1.5)
    p.add_argument("--count", type=int, default=5)
    p.add_argument("--until", default="")
    a = p.parse_args()
    if a.scenario in ("basic", "spool"):
        scenario_forward(a, a.scenario == "spool")
    elif a.scenario == "auth":
        scenario_auth(a)
    elif a.scenario == "tls":
        scenario_tls(a)
    elif a.scenario == "docker":
        scenario_docker(a)
    elif a.scenario == "reload":
        scenario_reload(a)
    else:
        sys.exit("unknown scenario " + a.scenario)
    sys.exit(1 if FAILS else 0)


if __name__ == "__main__":
    main()
