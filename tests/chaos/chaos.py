#!/usr/bin/env python3
"""A seeded, randomized fault campaign against shipper (standard library only).

  tests/chaos/chaos.py [--seed N] [--duration SECONDS | --long] [--budget SECONDS] [--keep]

For --duration seconds it runs real traffic through two shipper processes and injects faults
at random, then accounts for every record. Everything random comes from --seed (printed first):
the whole fault schedule is drawn before the run starts, and each traffic source draws its
frame shapes from its own generator, so a seed replays the same schedule (the daemon's timing
is free to differ). The schedule is printed and written to <tmp>/schedule.txt.

Rig (see tests/chaos/README.md):
  shipper A  state_dir on a 48 MiB tmpfs, buffer.spool: true; three forward inputs (ack:
             accepted / durable / delivered) and the docker_logs input (json-file); outputs
             Elasticsearch (tests/rigs/es_emulator.py) for every chaos tag and Kafka
             (build/kafka_mock, 3 brokers) for the tags of the `k` sources.
  shipper B  no state_dir, no spool; one forward input with ack: delivered; Elasticsearch.
  clients    one Forward client per (input, output set), each with one frame in flight,
             request-ack on every frame (Message, Forward and PackedForward frames of 1..40
             numbered records); a frame that was not acked is sent again with the same chunk
             id (as Docker does), after a reconnect if needed.
  containers two busybox containers logging numbered lines through Docker's json-file driver
             (max-size 16k, max-file 5; the second with compress=true and also sent to Kafka).
Faults: SIGKILL / SIGTERM of A or B and restart (while A is down: bursts of lines that rotate
the json-files, sometimes past max-file, and truncation of the current file); Elasticsearch
down, whole-request 429/503, item 429/503, slow answers, cut-off answers; the spool's disk
full (the tmpfs filled up); Kafka brokers down, injected produce errors.

Accounting at the end (the rules of README "Delivery guarantees"):
  - every acked record of the durable and delivered inputs is in Elasticsearch exactly once
    (one _id per record), and in Kafka at least once when its tag goes there;
  - ack: accepted (with the spool) may lose what was acked within flush_interval + 1 s before
    a SIGKILL (plus, while the spool's disk was full, since the disk filled): those are listed
    as allowed, anything else is a loss;
  - ack: delivered: the record was indexed before its ack reached the client;
  - every json-file line on disk when shipper A was (re)started is shipped (exactly once by
    _id), except lines Docker deleted before a run of A that was paused or had a full disk
    could read them (docs/docker_logs.md); every line on disk at the end is shipped;
  - Kafka duplicates only of records that were in flight when something that README names as
    a duplicate cause happened (a shipper stop, a Kafka fault, a client resend);
  - shipper exits 0 on SIGTERM and never dies on its own.
Exit status 0 when every record is accounted for, 1 otherwise (with the lost ids by source).
"""
import argparse
import base64
import collections
import datetime
import hashlib
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import zlib

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from fwd_client import pack  # noqa: E402  (the suite's MessagePack writer)

BUILD = os.environ.get("BUILD", os.path.join(ROOT, "build"))
SHIPPER = os.environ.get("SHIPPER", os.path.join(BUILD, "shipper"))
KAFKA_MOCK = os.environ.get("KAFKA_MOCK", os.path.join(BUILD, "kafka_mock"))
EMU = os.path.join(ROOT, "tests", "rigs", "es_emulator.py")
IMAGE = "shipper-test-busybox"
CONTAINERS_DIR = "/var/lib/docker/containers"

FLUSH_INTERVAL = 0.5        # buffer.flush_interval of A (seconds)
ACCEPTED_WINDOW = FLUSH_INTERVAL + 1.0   # README: "within flush_interval + one fsync"
GRACE = 3.0                 # service.grace of both shippers
WARMUP = 8.0                # no fault before this (the containers' first offsets get saved)
MIN_RUN = 3.0               # a run of A lasts at least this long before it is stopped again
LINE_BYTES = 150            # json-file lines: "<name> <kind> <n> <pad>" padded to this
MAX_SIZE_K, MAX_FILE = 16, 5
ACK_TIMEOUT = 30.0          # a client resends a frame whose ack has not come by then

# (kind, weight): what the schedule draws from.
KINDS = [("kill_a", 3.0), ("term_a", 2.0), ("kill_b", 1.5), ("term_b", 0.5),
         ("es_down", 2.0), ("es_status", 2.0), ("es_items", 2.0), ("es_slow", 1.5),
         ("es_truncate", 1.0), ("disk_full", 1.5), ("kafka_down", 1.0), ("kafka_drop", 0.5),
         ("kafka_leader", 0.5)]
# Not injected: retriable produce errors (REQUEST_TIMED_OUT, NOT_LEADER_FOR_PARTITION,
# NOT_ENOUGH_REPLICAS). With them librdkafka 2.0.2's mock cluster acknowledges messages it never
# stores: kcat alone loses 0.3-0.7 % of 300-byte messages under such injections (see
# tests/chaos/README.md), which would be counted against shipper.
KAFKA_PARTITIONS = 16

# Traffic sources. name -> (shipper, input ack mode, goes to Kafka too)
CLIENTS = [("acc-e", "a", "accepted", False), ("dur-e", "a", "durable", False),
           ("del-e", "a", "delivered", False), ("dur-k", "a", "durable", True),
           ("del-k", "a", "delivered", True), ("del-b", "b", "delivered", False)]
CONTAINERS = [("c1", False), ("k-c2", True)]   # suffix, also to Kafka (and compress=true)
STDOUT_CLIENT = "dur-e"     # its records also go to A's stdout output (at least once)


def now():
    return time.time()


class Out:
    """Timestamped progress to stdout and the run's log file."""

    def __init__(self):
        self.t0 = now()
        self.f = None
        self.lock = threading.Lock()

    def __call__(self, msg):
        t = now()
        line = "[%7.2f %s.%03dZ] %s" % (t - self.t0, time.strftime("%H:%M:%S", time.gmtime(t)),
                                         int(t * 1000) % 1000, msg)
        with self.lock:
            print(line, flush=True)
            if self.f:
                self.f.write(line + "\n")
                self.f.flush()


say = Out()


# ---------------------------------------------------------------- the schedule (from the seed)

class Event:
    def __init__(self, eid, at, kind, p):
        self.id, self.at, self.kind, self.p = eid, at, kind, p

    def __str__(self):
        return "#%d t=%.2f %s %s" % (self.id, self.at, self.kind,
                                     json.dumps(self.p, sort_keys=True, separators=(",", ":")))


def make_schedule(seed, duration):
    """The fault schedule: a function of (seed, duration) only."""
    rng = random.Random("schedule:%d" % seed)
    total = sum(w for _, w in KINDS)
    events, t = [], WARMUP
    while True:
        t += rng.uniform(1.0, 6.0)
        if t > duration - 4:
            return events
        x, kind = rng.uniform(0, total), KINDS[-1][0]
        for k, w in KINDS:
            if x < w:
                kind = k
                break
            x -= w
        p = {}
        if kind in ("kill_a", "term_a"):
            p["down"] = round(rng.uniform(0.2, 4.0), 2)
            if rng.random() < 0.5:   # while A is down: a burst of lines rotates the files
                p["burst"] = rng.choice([c for c, _ in CONTAINERS])
                p["lines"] = rng.randint(100, 700)
                if rng.random() < 0.35:  # ... and the current file is truncated
                    p["truncate"] = True
                    p["lines"] = max(p["lines"], 160)  # > max-size: the file is a new one
        elif kind in ("kill_b", "term_b"):
            p["down"] = round(rng.uniform(0.2, 3.0), 2)
        elif kind == "es_down":
            p["seconds"] = round(rng.uniform(1.0, 8.0), 2)
        elif kind == "es_status":
            p["statuses"] = [rng.choice([429, 503]) for _ in range(rng.randint(1, 6))]
        elif kind == "es_items":
            p.update(n=rng.randint(2, 12), status=rng.choice([429, 503]),
                     seconds=round(rng.uniform(2.0, 10.0), 2))
        elif kind == "es_slow":
            # mostly slow; sometimes slower than the output's 10 s timeout (the bulk is
            # applied, shipper gives up on the answer and sends it again: 409s)
            delay = rng.uniform(0.3, 2.5) if rng.random() < 0.75 else rng.uniform(10.5, 12)
            p.update(delay=round(delay, 2), seconds=round(rng.uniform(3, 10), 2))
        elif kind == "es_truncate":
            p["count"] = rng.randint(1, 3)
        elif kind == "disk_full":
            p["seconds"] = round(rng.uniform(2.0, 8.0), 2)
        elif kind == "kafka_down":
            p.update(broker=rng.choice([1, 2, 3, -1]), seconds=round(rng.uniform(1.0, 6.0), 2))
        elif kind == "kafka_drop":     # the next produce requests get their connection closed
            p["count"] = rng.randint(1, 10)
        elif kind == "kafka_leader":   # partitions move to other brokers
            p["moves"] = [[rng.randrange(KAFKA_PARTITIONS), rng.randint(1, 3)]
                          for _ in range(rng.randint(1, 4))]
        events.append(Event(len(events), round(t, 2), kind, p))


# ---------------------------------------------------------------- helpers

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def http(url, method="GET", body=None, timeout=10):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"} if data else {})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.read()


def wait_file(path, seconds):
    end = now() + seconds
    while now() < end:
        if os.path.exists(path) and os.path.getsize(path) > 0:
            return True
        time.sleep(0.05)
    return False


def docker(*args, check=True, timeout=60):
    r = subprocess.run(["docker"] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError("docker %s: %s" % (" ".join(args[:2]), r.stderr.decode().strip()))
    return r.stdout.decode().strip()


def parse_docker_time(s):
    """Docker's RFC 3339 nanosecond time -> epoch seconds (float)."""
    m = re.match(r"(\d+-\d+-\d+T\d+:\d+:\d+)(?:\.(\d+))?Z", s)
    base = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S")
    frac = float("0." + m.group(2)) if m.group(2) else 0.0
    return base.replace(tzinfo=datetime.timezone.utc).timestamp() + frac


# ---------------------------------------------------------------- the sinks

class EsEmu:
    def __init__(self, tmp):
        self.tmp = tmp
        pf, cf = os.path.join(tmp, "es.port"), os.path.join(tmp, "es.ctl")
        self.proc = subprocess.Popen(
            [sys.executable, EMU, "--port", "0", "--port-file", pf, "--control-port", "0",
             "--control-port-file", cf], stdout=open(os.path.join(tmp, "es.log"), "w"),
            stderr=subprocess.STDOUT)
        if not (wait_file(pf, 10) and wait_file(cf, 10)):
            raise RuntimeError("es_emulator did not start")
        self.port = int(open(pf).read())
        self.ctl = "http://127.0.0.1:%d/_emulator" % int(open(cf).read())
        self.lock = threading.Lock()
        self.owner = {}     # fault key -> event id that set it (a later end only clears its own)

    def call(self, method, path, body=None):
        return json.loads(http(self.ctl + path, method, body) or b"null")

    def set_fault(self, eid, faults):
        with self.lock:
            for k in faults:
                self.owner[k] = eid
            self.call("POST", "/faults", faults)

    def end_fault(self, eid, key):
        with self.lock:
            if self.owner.get(key) == eid:
                del self.owner[key]
                self.call("POST", "/faults", {key: None})

    def clear(self):
        with self.lock:
            self.owner.clear()
            self.call("DELETE", "/faults")
            self.call("POST", "/up")

    def docs(self, index):
        return json.loads(http(self.ctl + "/docs?times=1&index=" + index, timeout=120))


class KafkaMock:
    def __init__(self, tmp, topic):
        self.tmp, self.topic = tmp, topic
        self.bs_file = os.path.join(tmp, "kafka.bs")
        self.ctl, self.reply = os.path.join(tmp, "kafka.ctl"), os.path.join(tmp, "kafka.reply")
        self.proc = subprocess.Popen(
            [KAFKA_MOCK, "--brokers", "3", "--topic", "%s:%d" % (topic, KAFKA_PARTITIONS),
             "--bootstrap-file",
             self.bs_file, "--control", self.ctl, "--reply", self.reply],
            stdout=open(os.path.join(tmp, "kafka.out"), "w"), stderr=subprocess.STDOUT)
        if not wait_file(self.bs_file, 20):
            raise RuntimeError("kafka_mock did not start")
        self.bootstrap = open(self.bs_file).read().strip()
        self.lock = threading.Lock()

    def cmd(self, line):
        with self.lock:
            try:
                os.unlink(self.reply)
            except FileNotFoundError:
                pass
            with open(self.ctl, "w") as f:
                f.write(line + "\n")
            if not wait_file(self.reply, 10):
                raise RuntimeError("kafka_mock: no reply to %r" % line)
            return open(self.reply).read().strip()

    def hwm_total(self):
        m = re.search(r"total=(\d+)", self.cmd("hwm " + self.topic))
        return int(m.group(1)) if m else -1

    def consume(self, keep=None):
        """[(partition, offset, key, value)] of every message still in the topic."""
        r = subprocess.run(["kcat", "-C", "-b", self.bootstrap, "-t", self.topic, "-o",
                            "beginning", "-e", "-q", "-f", "%p %o %k\t%s\n"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=120)
        if keep:
            with open(keep, "wb") as f:
                f.write(r.stdout)
        out = []
        for line in r.stdout.decode("utf-8", "replace").splitlines():
            if not line.strip():
                continue
            head, _, value = line.partition("\t")
            p, o, key = (head.split(" ", 2) + ["", ""])[:3]
            try:
                doc = json.loads(value)
            except ValueError:
                doc = {"_unparsable": value[:200]}
            out.append((int(p), int(o), key, doc))
        return out


# ---------------------------------------------------------------- shipper processes

class Run:
    def __init__(self, idx, start):
        self.idx, self.start, self.ready, self.end = idx, start, None, None
        self.how = None             # "kill", "term", "died", "final"
        self.rc = None
        self.paused = self.spool_failing = False
        self.metrics = ""


class Shipper:
    def __init__(self, name, cfg, http_addr, tmp, failures):
        self.name, self.cfg, self.http, self.tmp = name, cfg, http_addr, tmp
        self.failures = failures
        self.proc = None
        self.runs = []
        self.lock = threading.RLock()
        self.expected_down = True
        self.err = open(os.path.join(tmp, "shipper-%s.err" % name), "ab")
        self.out = open(os.path.join(tmp, "shipper-%s.out" % name), "ab")

    def start(self):
        """Start and wait for /readyz; retried while it fails (a failure is recorded)."""
        with self.lock:
            for attempt in range(30):
                run = Run(len(self.runs), now())
                self.err.write(b"==== run %d\n" % run.idx)
                self.err.flush()
                self.proc = subprocess.Popen([SHIPPER, "-c", self.cfg], stdout=self.out,
                                             stderr=self.err)
                self.runs.append(run)
                end = now() + 20
                while now() < end and self.proc.poll() is None:
                    try:
                        http("http://%s/readyz" % self.http, timeout=1)
                        run.ready = now()
                        self.expected_down = False
                        return
                    except OSError:
                        time.sleep(0.05)
                rc = self.proc.poll()
                if rc is None:
                    self.proc.kill()
                    rc = self.proc.wait()
                run.end, run.how, run.rc = now(), "failed_start", rc
                self.failures.append("shipper %s run %d did not become ready (exit %s); see %s"
                                     % (self.name, run.idx, rc, self.err.name))
                say("shipper %s: start failed (rc %s), retrying" % (self.name, rc))
                time.sleep(1)
            raise RuntimeError("shipper %s cannot be started" % self.name)

    def stop(self, how):
        """how: 'kill' (SIGKILL) or 'term' (SIGTERM, waits grace + 10 s)."""
        with self.lock:
            self.expected_down = True
            run = self.runs[-1]
            if self.proc.poll() is not None:
                return run
            t = now()
            if how == "kill":
                self.proc.send_signal(signal.SIGKILL)
                rc = self.proc.wait()
            else:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    rc = self.proc.wait(timeout=GRACE + 10)
                except subprocess.TimeoutExpired:
                    self.failures.append("shipper %s run %d: no exit %.0f s after SIGTERM "
                                         "(grace %.0f s)" % (self.name, run.idx, GRACE + 10, GRACE))
                    self.proc.kill()
                    rc = self.proc.wait()
                if rc != 0:
                    self.failures.append("shipper %s run %d: exit code %s after SIGTERM (want 0)"
                                         % (self.name, run.idx, rc))
            run.end, run.how, run.rc = t, how, rc
            return run

    def poll(self):
        """Called by the monitor: metrics of the current run; restarts a process that died."""
        with self.lock:
            if self.expected_down or self.proc is None:
                return
            run = self.runs[-1]
            rc = self.proc.poll()
            if rc is not None:
                run.end, run.how, run.rc = now(), "died", rc
                self.failures.append("shipper %s run %d died on its own (exit %s); see %s"
                                     % (self.name, run.idx, rc, self.err.name))
                say("shipper %s died (rc %s): restarting" % (self.name, rc))
                self.start()
                return
        try:
            text = http("http://%s/metrics" % self.http, timeout=1).decode()
        except OSError:
            return
        run.metrics = text      # the last scrape of each run is kept (--keep) for diagnosis
        for line in text.splitlines():
            if line.startswith("shipper_paused ") and float(line.split()[1]) > 0:
                run.paused = True
            if line.startswith("shipper_spool_failing ") and float(line.split()[1]) > 0:
                run.spool_failing = True

    def metric(self, name):
        try:
            text = http("http://%s/metrics" % self.http, timeout=2).decode()
        except OSError:
            return None
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                total += float(line.rsplit(None, 1)[1])
        return total


# ---------------------------------------------------------------- Forward clients

class Frame:
    __slots__ = ("seqs", "chunk", "first_send", "ack_time", "attempts", "data")

    def __init__(self, seqs, chunk, data):
        self.seqs, self.chunk, self.data = seqs, chunk, data
        self.first_send = self.ack_time = None
        self.attempts = 0


class Client(threading.Thread):
    """One connection, one frame in flight, request-ack on every frame; an unacked frame is
    sent again with the same chunk id (so its records keep their ids)."""

    def __init__(self, seed, name, mode, port, tag, stop_new, stop_all, slow, pad):
        super().__init__(daemon=True, name="client-" + name)
        self.slow, self.pad = slow, pad     # gap factor between frames, largest padding
        self.name_, self.mode, self.port, self.tag = name, mode, port, tag
        self.rng = random.Random("client:%d:%s" % (seed, name))
        self.seed = seed
        self.stop_new, self.stop_all = stop_new, stop_all
        self.frames = []
        self.sock = None
        self.resends = 0

    def make_frame(self, n, seq0):
        r = self.rng
        kind = "message" if n == 1 and r.random() < 0.6 else r.choice(["forward", "packed"])
        t = int(now())
        recs = [{"message": "%s seq=%d" % (self.name_, s), "seq": s, "client": self.name_,
                 "k": "%s:%d" % (self.name_, s),     # the Kafka key (key: k)
                 "pad": "p" * r.randint(20, self.pad)} for s in range(seq0, seq0 + n)]
        chunk = base64.b64encode(hashlib.sha256(
            b"%d:%s:%d" % (self.seed, self.name_.encode(), seq0)).digest()[:16]).decode()
        if kind == "message":
            data = pack([self.tag, t, recs[0], {"chunk": chunk}])
        elif kind == "forward":
            data = pack([self.tag, [[t, rec] for rec in recs], {"chunk": chunk}])
        else:
            data = pack([self.tag, b"".join(pack([t, rec]) for rec in recs),
                         {"chunk": chunk, "size": n}])
        return Frame(range(seq0, seq0 + n), chunk, data)

    def close(self):
        if self.sock:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None

    def send_one(self, fr):
        """True once acked; False if the connection failed or the ack did not come in time."""
        if self.sock is None:
            try:
                self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=1)
                self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                self.sock = None
                return False
        want = pack(fr.chunk)
        try:
            self.sock.settimeout(5)
            if fr.first_send is None:
                fr.first_send = now()
            fr.attempts += 1
            self.sock.sendall(fr.data)
            self.sock.settimeout(0.5)
            buf, end = b"", now() + ACK_TIMEOUT
            while now() < end and not self.stop_all.is_set():
                try:
                    d = self.sock.recv(4096)
                except socket.timeout:
                    continue
                if not d:
                    break
                buf += d
                if want in buf:
                    fr.ack_time = now()
                    return True
        except OSError:
            pass
        self.close()
        return False

    def run(self):
        seq = 0
        r = self.rng
        while not self.stop_new.is_set():
            x = r.random()
            n = 1 if x < 0.45 else r.randint(2, 8) if x < 0.93 else r.randint(20, 40)
            fr = self.make_frame(n, seq)
            seq += n
            self.frames.append(fr)
            while not self.stop_all.is_set():
                if self.send_one(fr):
                    break
                self.resends += 1
                time.sleep(0.2)
            fr.data = None
            time.sleep(r.uniform(0.01, 0.12) * self.slow)
        self.close()


# ---------------------------------------------------------------- containers (json-file)

class Container:
    def __init__(self, prefix, suffix, kafka):
        self.name = "%s-%s" % (prefix, suffix)
        self.suffix, self.kafka = suffix, kafka
        self.id = None
        self.bursts = 0

    def line_cmd(self, kind, count):
        # busybox sh: "<name> <kind> <i> ppp..." padded to LINE_BYTES.
        head = "%s %s " % (self.name, kind)
        pad = "p" * max(1, LINE_BYTES - len(head) - 6)
        cond = "true" if count is None else "[ $i -lt %d ]" % count
        sleep = "; usleep 100000" if count is None else ""
        return 'i=0; while %s; do echo "%s$i %s"; i=$((i+1))%s; done' % (cond, head, pad, sleep)

    def start(self):
        args = ["run", "-d", "--name", self.name, "--network", "none",
                "--log-opt", "max-size=%dk" % MAX_SIZE_K, "--log-opt", "max-file=%d" % MAX_FILE]
        if self.kafka:
            args += ["--log-opt", "compress=true"]
        self.id = docker(*(args + [IMAGE, "sh", "-c", self.line_cmd("m", None)]))

    def burst(self, eid, lines):
        """Lines written through PID 1's stdout: they go to the json-file like any other."""
        docker("exec", self.name, "sh", "-c", "(%s) >/proc/1/fd/1" % self.line_cmd("b%d" % eid,
                                                                               lines))
        return "b%d %d" % (eid, lines - 1)

    def dir(self):
        return os.path.join(CONTAINERS_DIR, self.id)

    def files(self):
        try:
            names = os.listdir(self.dir())
        except FileNotFoundError:
            return []
        return sorted(os.path.join(self.dir(), n) for n in names
                      if n.startswith(self.id + "-json.log"))

    def read_file(self, path):
        """Tokens ("m 12", "b7 3") of the complete lines in one log file (gz read as far as it
        goes: Docker may be writing it)."""
        try:
            raw = open(path, "rb").read()
        except FileNotFoundError:
            return []
        if path.endswith(".gz"):
            try:
                raw = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(raw)
            except zlib.error:
                return []
        out = []
        for line in raw.split(b"\n")[:-1]:
            try:
                log = json.loads(line)["log"]
            except (ValueError, KeyError):
                continue
            parts = log.split()
            if len(parts) >= 3 and parts[0] == self.name:
                out.append("%s %s" % (parts[1], parts[2]))
        return out

    def snapshot(self):
        """{token: file name} of every line on disk now."""
        snap = {}
        for f in self.files():
            for tok in self.read_file(f):
                snap.setdefault(tok, os.path.basename(f)[len(self.id):])
        return snap

    def current_file(self):
        return os.path.join(self.dir(), self.id + "-json.log")


# ---------------------------------------------------------------- the campaign

class Campaign:
    def __init__(self, a):
        self.a = a
        self.seed, self.duration = a.seed, a.duration
        self.t_start = now()
        self.deadline = self.t_start + a.budget
        self.failures = []          # free-form failure lines (crashes, exit codes)
        self.notes = []
        self.schedule = make_schedule(self.seed, self.duration)
        self.prefix = "chaos%d" % os.getpid()
        self.tmp = tempfile.mkdtemp(prefix="shipper-chaos.")
        self.disk = os.path.join(self.tmp, "disk")
        self.mounted = False
        self.procs = []
        self.containers = []
        self.clients = []
        self.stop_new, self.stop_all = threading.Event(), threading.Event()
        self.stop_monitor = threading.Event()
        self.snapshots = []         # (run index of A, {container: {token: file}})
        self.disk_full_spans = []   # [start, end]
        self.fill_refs, self.fill_lock = 0, threading.Lock()
        self.disruptions = []       # (time, what): shipper A stops, Kafka faults
        self.truncated = collections.defaultdict(set)
        self.executed = collections.Counter()
        self.es = self.kafka = self.sa = self.sb = None

    # ---- setup
    def setup(self):
        say.f = open(os.path.join(self.tmp, "chaos.log"), "w")
        with open(os.path.join(self.tmp, "schedule.txt"), "w") as f:
            for ev in self.schedule:
                f.write(str(ev) + "\n")
        os.makedirs(self.disk)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", self.disk],
                           stderr=subprocess.PIPE)
        if r.returncode != 0:
            raise RuntimeError("cannot mount a tmpfs for the spool's disk-full faults (needs "
                               "root): %s" % r.stderr.decode().strip())
        self.mounted = True
        if subprocess.run([os.path.join(ROOT, "tests", "rigs", "dockerd.sh")],
                          stdout=subprocess.DEVNULL).returncode != 0:
            raise RuntimeError("docker is not available (tests/rigs/dockerd.sh failed)")
        self.es = EsEmu(self.tmp)
        self.procs.append(self.es.proc)
        self.kafka = KafkaMock(self.tmp, "chaos")
        self.procs.append(self.kafka.proc)
        self.ports = {m: free_port() for m in ("accepted", "durable", "delivered", "b")}
        ha, hb = "127.0.0.1:%d" % free_port(), "127.0.0.1:%d" % free_port()
        P = self.prefix
        cfg_a = os.path.join(self.tmp, "a.yaml")
        with open(cfg_a, "w") as f:
            f.write(f"""service:
  http_listen: "{ha}"
  state_dir: {self.disk}/state
  grace: {GRACE:.0f}s
buffer:
  spool: true
  chunk_size: 16KiB
  flush_interval: {int(FLUSH_INTERVAL * 1000)}ms
  memory_limit: 64MiB
  retry_min: 200ms
inputs:
""")
            for mode in ("accepted", "durable", "delivered"):
                f.write(f"""  - type: forward
    name: fwd_{mode}
    listen: 127.0.0.1:{self.ports[mode]}
    ack: {mode}
    metadata_path: ""
""")
            f.write(f"""  - type: docker_logs
    path: {CONTAINERS_DIR}
    read_from: end
outputs:
  - type: elasticsearch
    name: es
    match: "docker.{P}-*"
    url: http://127.0.0.1:{self.es.port}
    index: chaos-a
    retry_max: 2s
    timeout: 10s
  - type: kafka
    name: kafka
    match: "docker.{P}-k-*"
    brokers: "{self.kafka.bootstrap}"
    topic: chaos
    key: k
    retry_max: 2s
    retry_backoff: 200ms
  - type: stdout
    match: "docker.{P}-dur-e"
""")
        cfg_b = os.path.join(self.tmp, "b.yaml")
        with open(cfg_b, "w") as f:
            f.write(f"""service:
  http_listen: "{hb}"
  grace: {GRACE:.0f}s
buffer:
  chunk_size: 2KiB
  flush_interval: {int(FLUSH_INTERVAL * 1000)}ms
  retry_min: 200ms
inputs:
  - type: forward
    name: fwd_delivered
    listen: 127.0.0.1:{self.ports['b']}
    ack: delivered
    metadata_path: ""
outputs:
  - type: elasticsearch
    name: es
    url: http://127.0.0.1:{self.es.port}
    index: chaos-b
    retry_max: 2s
    timeout: 10s
""")
        self.sa = Shipper("a", cfg_a, ha, self.tmp, self.failures)
        self.sb = Shipper("b", cfg_b, hb, self.tmp, self.failures)
        self.sa.start()
        self.sb.start()
        for suffix, kafka in CONTAINERS:
            c = Container(P, suffix, kafka)
            self.containers.append(c)
            c.start()
            say("container %s: %s" % (c.name, c.id[:12]))
        for name, shipper, mode, kafka in CLIENTS:
            port = self.ports["b"] if shipper == "b" else self.ports[mode]
            tag = "docker.%s-%s%s" % (P, "k-" if kafka else "", name)
            # Long runs send less per second: the emulator keeps every document in memory.
            slow = max(1.0, self.duration / 300)
            c = Client(self.seed, name, mode, port, tag, self.stop_new, self.stop_all, slow,
                       200 if kafka else 400)
            c.kafka, c.shipper = kafka, shipper
            self.clients.append(c)
        for c in self.clients:
            c.start()
        threading.Thread(target=self.monitor, daemon=True).start()

    def monitor(self):
        while not self.stop_monitor.wait(0.5):
            for s in (self.sa, self.sb):
                try:
                    s.poll()
                except Exception as e:  # keep monitoring; the failure is in the account
                    self.failures.append("monitor: %r" % e)

    # ---- faults
    def snapshot_containers(self):
        return {c.name: c.snapshot() for c in self.containers}

    def restart_a(self):
        self.snapshots.append((len(self.sa.runs), self.snapshot_containers()))
        if self.a.keep:     # what the next run starts from, for diagnosis
            dst = os.path.join(self.tmp, "state-before-run-%d" % len(self.sa.runs))
            shutil.copytree(os.path.join(self.disk, "state"), dst, dirs_exist_ok=True)
            for c in self.containers:   # and the json-files as they are (with their inodes)
                os.makedirs(os.path.join(dst, c.name), exist_ok=True)
                with open(os.path.join(dst, c.name, "inodes.txt"), "w") as f:
                    for path in c.files():
                        try:
                            f.write("%d %s\n" % (os.stat(path).st_ino, os.path.basename(path)))
                            shutil.copy(path, os.path.join(dst, c.name))
                        except FileNotFoundError:
                            pass
        self.sa.start()

    def stop_a(self, ev, how):
        run = self.sa.runs[-1]
        if run.ready and now() - run.ready < MIN_RUN:
            time.sleep(MIN_RUN - (now() - run.ready))
        self.disruptions.append((now(), "%s A" % how))
        self.sa.stop("kill" if how == "kill" else "term")
        t_down = now()
        p = ev.p
        if p.get("burst"):
            c = next(x for x in self.containers if x.suffix == p["burst"])
            last = c.burst(ev.id, p["lines"])
            # Docker writes what the burst printed asynchronously: wait for its last line.
            end = now() + 5
            while now() < end and last not in c.read_file(c.current_file()):
                time.sleep(0.05)
            if p.get("truncate"):
                self.truncate(c, ev)
        left = p["down"] - (now() - t_down)
        if left > 0:
            time.sleep(left)
        self.restart_a()

    def truncate(self, c, ev):
        """Truncate the current json-file, but only if it holds no line that was on disk at
        a restart of A (the burst rotated it): truncation loses lines by design, and only
        lines no run of A ever had a chance to read may be lost."""
        path = c.current_file()
        toks = set(c.read_file(path))
        seen = set()
        for _, snap in self.snapshots:
            seen |= set(snap.get(c.name, {}))
        if toks & seen:
            say("  #%d truncate skipped: %s holds lines that were on disk at a restart"
                % (ev.id, os.path.basename(path)))
            return
        os.truncate(path, 0)
        self.truncated[c.name] |= toks
        say("  #%d truncated %s (%d lines)" % (ev.id, c.name, len(toks)))

    def disk_fill(self, eid):
        with self.fill_lock:
            self.fill_refs += 1
            if self.fill_refs > 1:
                return
            self.disk_full_spans.append([now(), None])
            fd = os.open(os.path.join(self.disk, "filler"), os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                for size in (1 << 20, 4096, 1):     # fill it to the last byte
                    try:
                        while True:
                            os.write(fd, b"\0" * size)
                    except OSError:
                        pass
            finally:
                os.close(fd)

    def disk_free(self, eid, force=False):
        with self.fill_lock:
            if self.fill_refs == 0:
                return
            self.fill_refs = 0 if force else self.fill_refs - 1
            if self.fill_refs == 0:
                try:
                    os.unlink(os.path.join(self.disk, "filler"))
                except FileNotFoundError:
                    pass
                self.disk_full_spans[-1][1] = now()

    def run_schedule(self):
        """Executes the schedule in order; fault ends are queued events too."""
        queue = [(ev.at, 0, ev.id, "start", ev) for ev in self.schedule]
        t0 = self.t_start_traffic
        while queue and not self.stop_new.is_set():
            queue.sort(key=lambda q: (q[0], q[1], q[2]))
            at, _, _, what, ev = queue.pop(0)
            wait = t0 + at - now()
            if wait > 0:
                time.sleep(wait)
            if what == "end":
                self.end_event(ev)
                continue
            say("%s" % ev)
            self.executed[ev.kind] += 1
            end_in = self.start_event(ev)
            if end_in is not None:
                queue.append((ev.at + end_in, 1, ev.id, "end", ev))
        # what is still running ends now, in order
        for at, _, _, what, ev in sorted(queue, key=lambda q: (q[0], q[1], q[2])):
            if what == "end":
                self.end_event(ev)

    def start_event(self, ev):
        k, p = ev.kind, ev.p
        if k == "kill_a":
            self.stop_a(ev, "kill")
        elif k == "term_a":
            self.stop_a(ev, "term")
        elif k in ("kill_b", "term_b"):
            self.sb.stop("kill" if k == "kill_b" else "term")
            time.sleep(p["down"])
            self.sb.start()
        elif k == "es_down":
            self.es.call("POST", "/down", {"seconds": p["seconds"]})
        elif k == "es_status":
            self.es.call("POST", "/faults", {"request_status": p["statuses"]})
        elif k == "es_items":
            self.es.set_fault(ev.id, {"item_status_every": {"n": p["n"], "status": p["status"]}})
            return p["seconds"]
        elif k == "es_slow":
            self.es.set_fault(ev.id, {"delay": p["delay"]})
            return p["seconds"]
        elif k == "es_truncate":
            self.es.call("POST", "/faults", {"truncate_next": p["count"]})
        elif k == "disk_full":
            self.disk_fill(ev.id)
            return p["seconds"]
        elif k == "kafka_down":
            self.disruptions.append((now(), "kafka down"))
            self.kafka.cmd("down %d" % p["broker"])
            return p["seconds"]
        elif k == "kafka_drop":
            self.disruptions.append((now(), "kafka connections dropped"))
            self.kafka.cmd("errors produce %d _TRANSPORT" % p["count"])
        elif k == "kafka_leader":
            self.disruptions.append((now(), "kafka leaders moved"))
            for part, broker in p["moves"]:
                self.kafka.cmd("leader %s %d %d" % (self.kafka.topic, part, broker))
        return None

    def end_event(self, ev):
        k = ev.kind
        if k == "es_items":
            self.es.end_fault(ev.id, "item_status_every")
        elif k == "es_slow":
            self.es.end_fault(ev.id, "delay")
        elif k == "disk_full":
            self.disk_free(ev.id)
        elif k == "kafka_down":
            self.kafka.cmd("up %d" % ev.p["broker"])
            self.disruptions.append((now(), "kafka up"))

    def clear_faults(self):
        self.es.clear()
        self.disk_free(None, force=True)
        self.kafka.cmd("up -1")
        self.kafka.cmd("clear produce")

    # ---- the run
    def run(self):
        self.t_start_traffic = now()
        say("traffic and containers running; %d faults scheduled over %.0f s"
            % (len(self.schedule), self.duration))
        self.run_schedule()
        left = self.t_start_traffic + self.duration - now()
        if left > 0:
            time.sleep(left)
        say("end of the fault phase: clearing faults, stopping traffic")
        self.clear_faults()
        self.stop_new.set()
        for s in (self.sa, self.sb):
            if s.expected_down:
                s.start()
        end = min(now() + 40, self.deadline - 70)   # delivered acks wait for the outputs
        for c in self.clients:
            c.join(max(0.1, end - now()))
        if any(c.is_alive() for c in self.clients):
            self.stop_all.set()
            for c in self.clients:
                c.join(5)
        for c in self.containers:
            docker("kill", c.name, check=False)
        time.sleep(1.0)     # Docker's log copier writes the last lines
        self.final_snapshot = self.snapshot_containers()
        say("draining (until every record is accounted for, at most %.0f s)"
            % max(0, self.deadline - 40 - now()))
        acc = self.drain()
        self.stop_monitor.set()
        for s, name in ((self.sa, "a"), (self.sb, "b")):
            run = s.stop("term")
            run.how = "final"
        acc = self.account(kafka=True)
        return self.report(acc)

    def queued(self):
        """Chunks queued or in flight in both shippers (None if a metric cannot be read)."""
        total = 0
        for s in (self.sa, self.sb):
            v = s.metric("shipper_output_queued_chunks")
            if v is None:
                return None
            total += v
        return total

    def drain(self):
        """Waits until every record is accounted for, or nothing moves any more (no chunk
        queued in either shipper and the same records missing twice in a row), or the budget
        is spent."""
        acc, last, kafka = None, None, False
        while True:
            acc = self.account(kafka=kafka)
            missing = acc["missing"]
            if missing == 0 and not kafka:
                kafka = True     # Elasticsearch is complete: now Kafka too (costs more)
                continue
            if missing == 0 or now() > self.deadline - 40:
                break
            q = self.queued()
            say("  %d records missing, %s chunks queued" % (missing, q))
            if q == 0 and last == missing:
                break
            last = missing if q == 0 else None
            time.sleep(5)
        return acc

    # ---- accounting
    def allowed_accepted(self, ack_time):
        """README: with the spool, ack: accepted loses what is acked within flush_interval +
        one fsync before a SIGKILL; and while the spool cannot write (disk full) nothing new
        reaches the disk. An ack read just after the kill was sent before it."""
        runs = self.sa.runs
        for i, run in enumerate(runs):
            if run.how not in ("kill", "died") and not (run.how == "term" and run.spool_failing):
                continue
            upper = run.end + 0.5
            if i + 1 < len(runs):
                upper = min(upper, runs[i + 1].start)
            if not run.start <= ack_time <= upper:
                continue
            if ack_time > run.end - ACCEPTED_WINDOW:
                return True
            for f0, f1 in self.disk_full_spans:
                f1 = f1 or now()
                if f0 - ACCEPTED_WINDOW <= ack_time and run.end <= f1 + ACCEPTED_WINDOW + 1.5:
                    return True
        return False

    def run_healthy(self, run):
        """A run of A that could read every file on disk at its start (not paused, no full
        disk, long enough)."""
        if run.paused or run.spool_failing or run.ready is None:
            return False
        end = run.end or now()
        if end - run.ready < MIN_RUN:
            return False
        for f0, f1 in self.disk_full_spans:
            if f0 < end and (f1 or now()) > run.start:
                return False
        return True

    def required_lines(self):
        """{container: {token: (file, run of A or None for the end)}} of the json-file lines
        that must be shipped."""
        req = collections.defaultdict(dict)
        snaps = self.snapshots + [(None, self.final_snapshot)]
        for i, (ridx, snap) in enumerate(self.snapshots):
            healthy = self.run_healthy(self.sa.runs[ridx])
            nxt = snaps[i + 1][1]
            for cname, toks in snap.items():
                for tok, fname in toks.items():
                    if healthy or tok in nxt.get(cname, {}):
                        req[cname].setdefault(tok, (fname, ridx))
        for cname, toks in self.final_snapshot.items():
            for tok, fname in toks.items():
                req[cname].setdefault(tok, (fname, None))
        return req

    @staticmethod
    def field(doc, path):
        for k in path.split("."):
            doc = doc.get(k) if isinstance(doc, dict) else None
        return doc

    def run_log(self, shipper, ridx):
        """shipper's stderr of one run."""
        shipper.err.flush()
        text = open(shipper.err.name, "rb").read().decode(errors="replace")
        start = text.find("==== run %d\n" % ridx)
        end = text.find("==== run %d\n" % (ridx + 1))
        return "" if start < 0 else text[start:end if end >= 0 else len(text)]

    def account(self, kafka):
        docs = self.es.docs("chaos-*")
        es_fwd = collections.defaultdict(lambda: collections.defaultdict(set))
        es_created = collections.defaultdict(dict)
        es_lines = collections.defaultdict(lambda: collections.defaultdict(set))
        for d in docs:
            s = d["_source"]
            if "client" in s and "seq" in s:
                es_fwd[s["client"]][s["seq"]].add(d["_id"])
                old = es_created[s["client"]].get(s["seq"])
                if old is None or d["_created"] < old:
                    es_created[s["client"]][s["seq"]] = d["_created"]
            elif isinstance(s.get("container"), dict):
                parts = str(s.get("message", "")).split()
                if len(parts) >= 3:
                    es_lines[s["container"].get("name")]["%s %s" % (parts[1], parts[2])].add(
                        d["_id"])
        k_fwd = collections.defaultdict(collections.Counter)
        k_lines = collections.defaultdict(collections.Counter)
        k_info = None
        k_wrong = []        # messages whose key does not name the record in their value
        if kafka:
            msgs = self.kafka.consume(os.path.join(self.tmp, "kafka.txt") if self.a.keep else None)
            hwm = self.kafka.hwm_total()
            k_info = (len(msgs), hwm)
            for part, off, key, s in msgs:
                if "_unparsable" in s or (key and key != s.get("k")):
                    k_wrong.append((part, off, key, s.get("_unparsable") or s.get("k")))
                if "client" in s and "seq" in s:
                    k_fwd[s["client"]][s["seq"]] += 1
                elif isinstance(s.get("container"), dict):
                    parts = str(s.get("message", "")).split()
                    if len(parts) >= 3:
                        k_lines[s["container"].get("name")]["%s %s" % (parts[1], parts[2])] += 1
        acc = {"rows": [], "missing": 0, "bad": 0, "details": [], "notes": [], "kafka": k_info,
               "summary": []}
        # A's stdout output (a file here) gets the records of STDOUT_CLIENT too.
        self.sa.out.flush()
        out_seqs = collections.Counter()
        with open(self.sa.out.name, "rb") as f:
            for line in f:
                try:
                    d = json.loads(line)
                except ValueError:
                    continue    # a line cut by SIGKILL
                if d.get("client") == STDOUT_CLIENT and "seq" in d:
                    out_seqs[d["seq"]] += 1

        def row(src, desc, required, lost, allowed=0, dups=0, early=0, extra=""):
            acc["rows"].append("  %-8s %-34s required %6d  lost %4d%s  dup %d%s%s"
                               % (src, desc, required, len(lost),
                                  " (+%d allowed)" % allowed if allowed else "", dups,
                                  "  acked-before-indexed %d" % early if early else "", extra))
            sink = desc.rsplit("-> ", 1)[-1]
            for what, n in (("lost", len(lost)), ("dup", dups if sink == "es" else 0),
                            ("acked-before-indexed", early)):
                if n:
                    acc["summary"].append("%s %s %d (%s)" % (src, what, n, desc))

        def ids(lst, n=12):
            lst = sorted(lst, key=lambda x: (x.split()[0], int(x.split()[1]))
                         if isinstance(x, str) else ("", x))
            return ", ".join(map(str, lst[:n])) + (" ..." if len(lst) > n else "")

        for c in self.clients:
            acked = {s: fr.ack_time for fr in c.frames if fr.ack_time for s in fr.seqs}
            sent = {s for fr in c.frames if fr.first_send for s in fr.seqs}
            frame_of = {s: fr for fr in c.frames for s in fr.seqs}
            got = es_fwd.get(c.name_, {})
            lost, allowed = [], []
            for s, t in acked.items():
                if s not in got:
                    (allowed if c.mode == "accepted" and self.allowed_accepted(t) else lost).append(s)
            dups = [s for s, i in got.items() if len(i) > 1]
            phantom = [s for s in got if s not in sent]
            early = []
            if c.mode == "delivered":
                created = es_created.get(c.name_, {})
                early = [s for s, t in acked.items() if s in created and created[s] > t + 0.001]
            acc["missing"] += len(lost)
            acc["bad"] += len(lost) + len(dups) + len(phantom) + len(early)
            desc = "forward ack:%s (shipper %s) -> es" % (c.mode, c.shipper.upper())
            row(c.name_, desc, len(acked), lost, len(allowed), len(dups), len(early),
                "  (sent %d, resends %d)" % (len(sent), c.resends))
            if lost:
                acc["details"].append("%s: lost in Elasticsearch (acked) seq: %s" % (c.name_, ids(lost)))
                first = frame_of[min(lost)]
                acc["details"].append("   first lost seq %d: frame of %d records, first sent "
                                      "t=%.2f, acked t=%.2f, attempts %d"
                                      % (min(lost), len(first.seqs), first.first_send - say.t0,
                                         first.ack_time - say.t0, first.attempts))
            if allowed:
                acc["details"].append("%s: lost but allowed (ack: accepted, acked within %.1f s "
                                      "before a SIGKILL or while the disk was full) seq: %s"
                                      % (c.name_, ACCEPTED_WINDOW, ids(allowed)))
            if dups:
                acc["details"].append("%s: indexed under more than one _id, seq: %s" % (c.name_, ids(dups)))
            if phantom:
                acc["summary"].append("%s in Elasticsearch but never sent %d" % (c.name_, len(phantom)))
                acc["details"].append("%s: in Elasticsearch but never sent, seq: %s" % (c.name_, ids(phantom)))
            if early:
                s = min(early)
                acc["details"].append("%s: ack: delivered acked before Elasticsearch had the "
                                      "record (%d records), seq: %s; e.g. seq %d acked t=%.3f, "
                                      "indexed t=%.3f" % (c.name_, len(early), ids(early), s,
                                                          acked[s] - say.t0,
                                                          es_created[c.name_][s] - say.t0))
            if c.name_ == STDOUT_CLIENT:
                olost = [s for s in acked if s not in out_seqs]
                acc["missing"] += len(olost)
                acc["bad"] += len(olost)
                row(c.name_, "forward ack:%s -> stdout" % c.mode, len(acked), olost, 0,
                    sum(1 for n in out_seqs.values() if n > 1))
                if olost:
                    acc["details"].append("%s: lost in stdout (acked) seq: %s" % (c.name_, ids(olost)))
            if kafka and c.kafka:
                kg = k_fwd.get(c.name_, {})
                klost = [s for s in acked if s not in kg]
                kdups = [s for s, n in kg.items() if n > 1]
                unexplained = [s for s in kdups if not self.dup_explained(
                    frame_of[s].first_send, frame_of[s].attempts)]
                acc["missing"] += len(klost)
                acc["bad"] += len(klost) + len(unexplained)
                row(c.name_, "forward ack:%s -> kafka" % c.mode, len(acked), klost, 0,
                    len(kdups), 0, "  (unexplained dup %d)" % len(unexplained))
                if klost:
                    acc["details"].append("%s: lost in Kafka (acked) seq: %s" % (c.name_, ids(klost)))
                    fr = frame_of[min(klost)]
                    acc["details"].append("   first lost seq %d: frame of %d records, first sent "
                                          "t=%.2f, acked t=%.2f, attempts %d; in Elasticsearch "
                                          "since t=%s" % (
                                              min(klost), len(fr.seqs), fr.first_send - say.t0,
                                              fr.ack_time - say.t0, fr.attempts,
                                              "%.2f" % (es_created[c.name_][min(klost)] - say.t0)
                                              if min(klost) in es_created.get(c.name_, {})
                                              else "-"))
                if unexplained:
                    acc["summary"].append("%s unexplained Kafka duplicates %d" % (c.name_, len(unexplained)))
                    acc["details"].append("%s: Kafka duplicates no README cause explains: %s"
                                          % (c.name_, ids(unexplained)))

        req = self.required_lines()
        for c in self.containers:
            need = req.get(c.name, {})
            got = es_lines.get(c.name, {})
            lost = [t for t in need if t not in got]
            dups = [t for t, i in got.items() if len(i) > 1]
            acc["missing"] += len(lost)
            acc["bad"] += len(lost) + len(dups)
            row(c.suffix, "json-file (docker) -> es", len(need), lost, 0, len(dups), 0,
                "  (in es %d, truncated by the rig %d)" % (len(got), len(self.truncated[c.name])))
            if lost:
                acc["details"].append("%s: json-file lines lost in Elasticsearch: %s"
                                      % (c.suffix, ids(lost)))
                for fname, ridx in sorted({need[t] for t in lost},
                                          key=lambda x: (x[1] is None, x[1] or 0, x[0]))[:8]:
                    n = sum(1 for t in lost if need[t] == (fname, ridx))
                    if ridx is None:
                        acc["details"].append("   %d of them on disk (%s) at the end" % (n, fname))
                        continue
                    said = self.run_log(self.sa, ridx)
                    gone = ("docker_logs: %s: the file of the saved offset is gone" % c.id[:12]
                            in said)
                    acc["details"].append("   %d of them on disk (%s) at the start of run %d of "
                                          "A%s" % (n, fname, ridx, "; that run logged \"the file "
                                                   "of the saved offset is gone\"" if gone else ""))
            if dups:
                acc["details"].append("%s: json-file lines indexed under more than one _id: %s"
                                      % (c.suffix, ids(dups)))
            if kafka and c.kafka:
                kg = k_lines.get(c.name, {})
                klost = [t for t in need if t not in kg]
                kdups = [t for t, n in kg.items() if n > 1]
                acc["missing"] += len(klost)
                acc["bad"] += len(klost)
                row(c.suffix, "json-file (docker) -> kafka", len(need), klost, 0, len(kdups))
                if klost:
                    acc["details"].append("%s: json-file lines lost in Kafka: %s" % (c.suffix, ids(klost)))
        # 409s whose refused source differs from the stored one: the same record sent again
        # with other metadata is a duplicate (fine); another record (another message) under
        # the same _id is a silent loss.
        collide, differ, examples = [], collections.Counter(), {}
        for c in self.es.call("GET", "/conflicts"):
            st, rf = c["stored"], c["refused"]
            if any(st.get(k) != rf.get(k) for k in ("message", "seq", "client", "tag")):
                collide.append(c)
            else:
                keys = []
                for k in sorted(set(st) | set(rf)):
                    x, y = st.get(k), rf.get(k)
                    if isinstance(x, dict) and isinstance(y, dict):
                        keys += ["%s.%s" % (k, j) for j in sorted(set(x) | set(y))
                                 if x.get(j) != y.get(j)]
                    elif x != y:
                        keys.append(k)
                k = ",".join(keys)
                differ[k] += 1
                if differ[k] == 1:
                    examples[k] = "e.g. %r: stored %s, refused %s" % (
                        st.get("message", "")[:40],
                        json.dumps({x: self.field(st, x) for x in keys})[:150],
                        json.dumps({x: self.field(rf, x) for x in keys})[:150])
        if collide:
            acc["bad"] += len(collide)
            acc["summary"].append("Elasticsearch _id collisions %d" % len(collide))
            acc["details"].append("Elasticsearch: %d creates answered 409 for another record "
                                  "under the same _id (not indexed, yet counted delivered), e.g.:"
                                  % len(collide))
            for c in collide[:3]:
                acc["details"].append("   _id %s: stored %r, refused %r" % (
                    c["_id"], c["stored"].get("message", "")[:60],
                    c["refused"].get("message", "")[:60]))
        for keys, n in differ.items():
            acc["notes"].append("Elasticsearch: %d resent records differed from the stored "
                                "copy in: %s (%s)" % (n, keys, examples[keys]))
        if self.a.keep:
            for sh in (self.sa, self.sb):
                for run in sh.runs:
                    with open(os.path.join(self.tmp, "metrics-%s-run-%d.txt" % (sh.name, run.idx)),
                              "w") as f:
                        f.write(run.metrics)
            with open(os.path.join(self.tmp, "docs.json"), "w") as f:
                json.dump(docs, f)
            with open(os.path.join(self.tmp, "snapshots.json"), "w") as f:
                json.dump([{"run": r, "lines": snap} for r, snap in self.snapshots]
                          + [{"run": "final", "lines": self.final_snapshot}], f)
        if k_wrong:
            acc["bad"] += len(k_wrong)
            acc["summary"].append("Kafka messages whose value is not their record %d" % len(k_wrong))
            acc["details"].append("Kafka: %d messages carry a value that is not the record their "
                                  "key names (a payload freed or reused before it was sent?), "
                                  "e.g. partition %d offset %d key %r value %r" % (
                                      (len(k_wrong),) + k_wrong[0]))
        if kafka and k_info and k_info[0] != k_info[1]:
            acc["bad"] += 1
            acc["summary"].append("Kafka mock dropped old messages (inconclusive)")
            acc["details"].append("Kafka: consumed %d messages but the high watermarks say %d "
                                  "were written (the mock dropped old segments: lower the volume)"
                                  % k_info)
        return acc

    def dup_explained(self, first_send, attempts):
        """README: Kafka may get a record twice when a client resent it, when shipper stopped
        while its chunk was in flight, or when a Kafka fault made shipper produce it again."""
        if attempts > 1:
            return True
        return any(t >= first_send - 1.0 for t, _ in self.disruptions)

    def sanitizer_reports(self):
        """Sanitizer findings in the shippers' stderr (when run with BUILD=build-asan)."""
        for s in (self.sa, self.sb):
            s.err.flush()
            with open(s.err.name, "rb") as f:
                for line in f:
                    if (b"ERROR: AddressSanitizer" in line or b"runtime error:" in line
                            or b"ERROR: LeakSanitizer" in line):
                        self.failures.append("shipper %s: %s (see %s)" % (
                            s.name, line.decode(errors="replace").strip()[:160], s.err.name))
                        break

    def report(self, acc):
        self.sanitizer_reports()
        say("ACCOUNT (seed %d, %.0f s, faults: %s)"
            % (self.seed, self.duration, ", ".join("%s %d" % kv for kv in sorted(self.executed.items()))))
        runs = "runs of A: %d (%s); of B: %d" % (
            len(self.sa.runs), ", ".join("%s" % r.how for r in self.sa.runs[:-1]) or "-",
            len(self.sb.runs))
        print("  " + runs)
        if acc["kafka"]:
            print("  kafka: %d messages consumed, high watermarks %d" % acc["kafka"])
        for r in acc["rows"]:
            print(r)
        for d in acc["details"]:
            print("  " + d)
        for n in acc["notes"]:
            print("  note: " + n)
        for f in self.failures:
            print("  FAILURE: " + f)
        bad = acc["bad"] + len(self.failures)
        replay = "tests/chaos/chaos.py --seed %d --duration %g" % (self.seed, self.duration)
        if bad:
            items = acc["summary"] + (["%d FAILURE line(s) above" % len(self.failures)]
                                      if self.failures else [])
            print("RESULT: FAIL (seed %d): %s; replay: %s (logs: %s)"
                  % (self.seed, "; ".join(items), replay,
                     self.tmp if self.a.keep else "add --keep to keep them"))
            return 1
        print("RESULT: PASS (seed %d): every record accounted for" % self.seed)
        return 0

    # ---- cleanup
    def cleanup(self):
        self.stop_all.set()
        self.stop_new.set()
        self.stop_monitor.set()
        for s in (self.sa, self.sb):
            if s and s.proc and s.proc.poll() is None:
                s.proc.kill()
                s.proc.wait()
        for c in self.containers:
            docker("rm", "-f", c.name, check=False)
        if self.kafka and self.kafka.proc.poll() is None:
            try:
                with open(self.kafka.ctl, "w") as f:
                    f.write("quit\n")
                self.kafka.proc.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
        if self.mounted:
            if self.a.keep:   # keep what the spool held: copy it out of the tmpfs
                shutil.copytree(self.disk, os.path.join(self.tmp, "disk-copy"), dirs_exist_ok=True,
                                ignore=shutil.ignore_patterns("filler"))
            subprocess.run(["umount", "-l", self.disk], stderr=subprocess.DEVNULL)
        if not self.a.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:
            print("kept %s" % self.tmp)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, help="replay this seed (default: a random one)")
    ap.add_argument("--duration", type=float, default=180, help="fault phase, seconds (180)")
    ap.add_argument("--long", action="store_true", help="a 20-minute fault phase")
    ap.add_argument("--budget", type=float,
                    help="wall-clock limit for the whole run, seconds (default duration + 100)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--schedule", action="store_true", help="print the schedule and exit")
    a = ap.parse_args()
    if a.long:
        a.duration = 1200
    if a.seed is None:
        a.seed = int.from_bytes(os.urandom(4), "big")
    if a.budget is None:
        a.budget = a.duration + 100
    print("chaos: seed %d, duration %g s (replay: tests/chaos/chaos.py --seed %d --duration %g)"
          % (a.seed, a.duration, a.seed, a.duration), flush=True)
    if a.schedule:
        for ev in make_schedule(a.seed, a.duration):
            print(ev)
        return 0
    camp = Campaign(a)

    def on_term(signum, frame):
        raise SystemExit("chaos: killed by signal %d (seed %d)" % (signum, a.seed))

    signal.signal(signal.SIGTERM, on_term)
    rc = 1
    try:
        camp.setup()
        say("tmp %s; shipper %s" % (camp.tmp, SHIPPER))
        rc = camp.run()
    except Exception as e:
        import traceback
        traceback.print_exc()
        print("RESULT: FAIL (the rig failed: %s; seed %d)" % (e, a.seed))
        rc = 1
    finally:
        camp.cleanup()
    return rc


if __name__ == "__main__":
    sys.exit(main())
