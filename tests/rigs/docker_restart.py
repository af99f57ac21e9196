#!/usr/bin/env python3
"""What Docker's fluentd log driver does while shipper restarts: one run per cell.

A busybox container logs numbered lines ("seq=<i> t=<uptime> 000...", --size bytes) at a steady
rate with
--log-driver=fluentd to shipper (forward -> stdout, spool on, state_dir). Whenever shipper's
/metrics shows that another quarter (or 1/(restarts+1)) of the lines was received, shipper is
stopped (SIGTERM: graceful; SIGKILL: a crash), stays down for --down seconds, and a new process
starts on the same state_dir. In the socket-activation kinds ("-sa") this script holds the
listening socket the way systemd does and passes it to every shipper as fd 3 (LISTEN_FDS=1,
LISTEN_PID), so the socket never closes. During each down time a probe connects to the forward
port: refused or queued.

Per cell it measures, from the run only:
  lost      lines the container wrote that no shipper output (unique seqs; N - unique)
  dup       lines output more than once (a resend after a lost ack, a replayed spool chunk)
  stall     the longest time the container could not write (its own clock, /proc/uptime, against
            its pace): > 0 when Docker's copier blocked and the pipe filled
  blocked   the longest time Docker's copier spent on one line beyond the container's pace:
            Docker stamps a line when its copier takes it from the pipe (right after the previous
            line's Log call returned) and the line carries the container's clock. In sync mode
            this is the longest wait for a write, an ack or a reconnect; in async mode Log only
            queues, so a wait in Docker's queue does not show here
  lag       how late Docker read lines at worst (max - min of stamp minus container clock)
  refused   probes refused during the down times
  dockerd   error lines dockerd logged during the cell (its log file is found from its pid):
            "Logger already closed" (the driver gave up for good: every later line is dropped),
            "Logger didn't exit in time", "Discarding queued events", ack mismatches, retries
            given up. dockerd does not name the container in these lines; when another
            container with the fluentd driver ran at the same time the figures carry a "*".
  ready     the longest exec -> /readyz 200 of the restarts

Kinds: term, kill, term-sa, kill-sa; exitdown, exitdown-sa (one SIGKILL at 90 % of the lines,
3 s down, the container exits right after its last line: it stops while no shipper runs); exit (no restart: the container writes --burst-lines lines
of --burst-size bytes as fast as it can and exits at once, which is where Docker drops a
backlog); start, start-sa (no shipper runs when the container starts; it starts --down seconds
later).

Usage:
  docker_restart.py --shipper BIN --tmp DIR [--lines N] [--rate R] [--restarts K] [--down S]
                    [--tail S] [--size B] [--retry-wait D] [--max-retries N] [--json OUT]
                    [--table] CELL...
  CELL = KIND,ack=0|1,async=0|1[,mode=accepted|durable][,down=S][,tail=S][,rw=D][,mr=N]
         e.g. kill-sa,ack=1,async=1,mode=durable; rw and mr are fluentd-retry-wait and
         fluentd-max-retries for that cell
Prints one JSON object per cell (and a markdown table with --table).
"""
import argparse
import calendar
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request

IMAGE = os.environ.get("SHIPPER_TEST_IMAGE", "shipper-test-busybox")
BATCH = 25  # lines per clock read in the container


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def docker(*args, check=True, timeout=60):
    r = subprocess.run(["docker", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError("docker %s: %s" % (" ".join(args[:2]), r.stderr.strip()))
    return r.stdout.strip()


def dockerd_log():
    """The file dockerd writes its log to (its stderr), found from its pid: the daemon serving
    $DOCKER_HOST when that is a private unix socket (tests/rigs/dockerd.sh starts one), else the
    system daemon's pidfile. $DOCKERD_LOG overrides."""
    if os.environ.get("DOCKERD_LOG"):
        return os.environ["DOCKERD_LOG"]
    pids = []
    host = os.environ.get("DOCKER_HOST", "")
    if host.startswith("unix://") and host not in ("unix:///var/run/docker.sock", "unix:///run/docker.sock"):
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                argv = open("/proc/%s/cmdline" % pid, "rb").read().decode(errors="replace").split("\0")
            except OSError:
                continue
            if argv and os.path.basename(argv[0]) == "dockerd" and host in argv:
                pids.append(pid)
    else:
        for pidfile in ("/var/run/docker.pid", "/run/docker.pid"):
            try:
                pids.append(open(pidfile).read().strip())
            except OSError:
                pass
    for pid in pids:
        try:
            path = os.readlink("/proc/%s/fd/2" % pid)
            if os.path.isfile(path):
                return path
        except OSError:
            pass
    return None


DOCKERD_PATTERNS = [
    ("closed", "Logger already closed"),
    ("close_timeout", "Logger didn't exit in time"),
    ("discarded", "Discarding queued events"),
    ("ack_mismatch", "doesn't match expected one"),
    ("write_gave_up", "failed to write after"),
    ("connect_gave_up", "could not connect to fluentd after"),
    ("unable_to_send", "Unable to send logs to fluentd"),
]


def foreign_fluentd(since, until, ours):
    """Names of other containers using the fluentd driver that ran between since and until
    (`ours`: the cell's own container id); "(gone)" for one already removed (its driver is
    unknown)."""
    names = set()
    try:
        out = docker("events", "--since", "%.3f" % since, "--until", "%.3f" % until,
                     "--filter", "type=container", "--filter", "event=start", "--filter", "event=die",
                     "--format", "{{.ID}}", timeout=20)
        ids = set(out.split())
        ids |= set(docker("ps", "-q", "--no-trunc").split())
    except Exception:
        return {"?"}
    for cid in ids:
        if cid.startswith(ours) or ours.startswith(cid):
            continue
        r = subprocess.run(["docker", "inspect", "-f", "{{.Name}} {{.HostConfig.LogConfig.Type}}", cid],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        if r.returncode != 0:
            names.add(cid[:12] + "(gone)")  # started and removed in the window: cannot tell
            continue
        name, driver = (r.stdout.strip().split() + ["", ""])[:2]
        if driver == "fluentd":
            names.add(name.lstrip("/"))
    return names


class Shipper:
    """The shipper processes of one cell, and the launcher socket in the -sa kinds."""

    def __init__(self, binary, d, port, hport, mode, sa):
        self.binary, self.d, self.port, self.hport, self.sa = binary, d, port, hport, sa
        self.cfg = os.path.join(d, "shipper.yaml")
        with open(self.cfg, "w") as f:
            f.write("service: {http_listen: \"127.0.0.1:%d\", state_dir: \"%s\", grace: 5s}\n"
                    "buffer: {spool: true}\n"
                    "inputs:\n"
                    "  - {type: forward, listen: \"127.0.0.1:%d\", ack: %s, metadata_path: \"\"}\n"
                    "outputs:\n  - type: stdout\n" % (hport, os.path.join(d, "state"), port, mode))
        self.lsock = None
        if sa:
            self.lsock = socket.socket()
            self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.lsock.bind(("127.0.0.1", port))
            self.lsock.listen(1024)
        self.proc = None
        self.n = 0
        self.outs = []
        self.ready_times = []

    def start(self):
        out = os.path.join(self.d, "s%d.out" % self.n)
        err = open(os.path.join(self.d, "s%d.err" % self.n), "wb")
        self.outs.append(out)
        self.n += 1
        kw = {}
        if self.sa:
            fd = self.lsock.fileno()

            def child():
                os.dup2(fd, 3)
                os.environ["LISTEN_FDS"] = "1"
                os.environ["LISTEN_PID"] = str(os.getpid())
            kw = {"preexec_fn": child, "pass_fds": (fd,)}
        t0 = time.monotonic()
        self.proc = subprocess.Popen([self.binary, "-c", self.cfg], stdout=open(out, "wb"),
                                     stderr=err, **kw)
        if not self.wait_ready(30):
            err.flush()
            lines = open(err.name, "rb").read().decode("utf-8", "replace").strip().splitlines()
            why = [l for l in lines if " error " in l] or lines[-1:] or ["(no log)"]
            raise RuntimeError("shipper did not become ready: %s" % why[0])
        self.ready_times.append(time.monotonic() - t0)

    def wait_ready(self, secs):
        end = time.monotonic() + secs
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                return False
            try:
                urllib.request.urlopen("http://127.0.0.1:%d/readyz" % self.hport, timeout=1)
                return True
            except Exception:
                time.sleep(0.005)
        return False

    def metric(self, key):
        try:
            body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.hport,
                                          timeout=2).read().decode()
        except Exception:
            return None
        v = 0.0
        for line in body.splitlines():
            k, _, val = line.rpartition(" ")
            if k == key:
                v = float(val)
        return v

    def stop(self, sig):
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def close(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.lsock:
            self.lsock.close()


def container_script(n, rate, tail, burst, size):
    """Lines of `size` bytes: "seq=<i> t=<uptime> 000...". Big enough that Docker's pipe
    (64 KiB, plus the shim's and the copier's buffers) fills within a fraction of a second when
    Docker stops reading, so a blocked copier shows as a stalled container."""
    pad = 'p=$(printf "%%0%dd" 0); ' % max(size - 24, 1)
    if burst:  # as fast as it can, then exit
        return pad + ('i=0; read up x </proc/uptime; while [ $i -lt %d ]; do echo "seq=$i t=$up $p"; '
                      'i=$((i+1)); done' % n)
    sleep_us = int(BATCH * 1e6 / rate)
    return pad + ('i=0; while [ $i -lt %d ]; do read up x </proc/uptime; j=0; '
                  'while [ $j -lt %d ] && [ $i -lt %d ]; do echo "seq=$i t=$up $p"; i=$((i+1)); j=$((j+1)); done; '
                  'usleep %d; done; sleep %s' % (n, BATCH, n, sleep_us, tail))


def parse_outputs(paths, name):
    seqs, times, stamps, bad = [], {}, {}, 0
    rx = re.compile(r"^seq=(\d+) t=([0-9.]+) 0+$")
    for p in paths:
        with open(p, "rb") as f:
            for raw in f:
                try:
                    d = json.loads(raw)
                except ValueError:
                    bad += 1  # a line torn by SIGKILL
                    continue
                if d.get("container", {}).get("name") != name:
                    continue
                m = rx.match(d.get("message", ""))
                if not m:
                    bad += 1
                    continue
                s = int(m.group(1))
                seqs.append(s)
                times[s] = float(m.group(2))
                # Docker stamps a line when its copier takes it from the pipe, right before
                # handing it to the driver (after the previous line's Log returned).
                ts = d.get("@timestamp", "")
                try:
                    stamps[s] = calendar.timegm(time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S")) + \
                        float("0." + ts[20:-1])
                except ValueError:
                    pass
    return seqs, times, stamps, bad


def copier_blocks(times, stamps):
    """(longest time Docker's copier spent on one line beyond the container's own pace, how late
    Docker read lines at worst). A blocked Log() call (sync mode: a write or an ack that does not
    come, a reconnect) delays the next line's stamp while the container's clock moves on."""
    got = sorted(s for s in stamps if s in times)
    if len(got) < 2:
        return None, None
    block = max(((stamps[b] - stamps[a]) - (times[b] - times[a]) for a, b in zip(got, got[1:]) if b == a + 1),
                default=0.0)
    lag = [stamps[s] - times[s] for s in got]
    return round(block, 2), round(max(lag) - min(lag), 2)


def stall(times):
    """Longest time the container was held up, from its own clock: per clock read (batch)."""
    got = sorted(times)
    if len(got) < 3:
        return None
    batches = sorted({s // BATCH: times[s] for s in got}.items())
    gaps = sorted(b[1] - a[1] for a, b in zip(batches, batches[1:]) if b[0] == a[0] + 1)
    if not gaps:
        return None
    pace = gaps[len(gaps) // 2]
    worst = 0.0
    for (ka, ta), (kb, tb) in zip(batches, batches[1:]):
        worst = max(worst, (tb - ta) - (kb - ka) * pace)
    return round(worst, 2)


def alive(pid):
    """The container's process still runs. Not `docker inspect`: Docker reports a container as
    running until its log copier has finished (up to 10 s after the process exited), and inspect
    waits on the container's lock meanwhile."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except (OSError, IndexError):
        return False


class _NotStarted(Exception):
    pass


def run_cell(a, spec, ordinal):
    a = argparse.Namespace(**vars(a))
    if spec["kind"].startswith("exitdown"):
        a.down = 3.0
    for k in ("down", "retry_wait", "max_retries", "tail"):
        if k in spec:
            setattr(a, k, float(spec[k]) if k in ("down", "tail") else spec[k])
    kind = spec["kind"]
    sa = kind.endswith("-sa")
    sig = signal.SIGKILL if kind.startswith(("kill", "exitdown")) else signal.SIGTERM
    burst = kind == "exit"
    start_down = kind.startswith("start")
    exit_down = kind.startswith("exitdown")
    restarts = 0 if burst or start_down else a.restarts
    kill_at = [a.lines * (r + 1) // (restarts + 1) for r in range(restarts)]
    if exit_down:
        # One SIGKILL near the end, a down time longer than the rest of the container's life:
        # the container stops while no shipper runs.
        restarts, kill_at, a.tail = 1, [a.lines * 9 // 10], 0
    if burst:
        a.lines, a.size = a.burst_lines, a.burst_size
    d = os.path.join(a.tmp, "cell%d" % ordinal)
    os.makedirs(d, exist_ok=True)
    port, hport = free_port(), free_port()
    sh = Shipper(a.shipper, d, port, hport, spec["mode"], sa)
    name = "dr%d-%d" % (os.getpid(), ordinal)
    log = dockerd_log()
    log_off = os.path.getsize(log) if log else 0
    t_begin = time.time()
    res = dict(spec)
    res.update(lines=a.lines, rate=a.rate, size=a.size, restarts=restarts, down=a.down, tail=a.tail,
               retry_wait=a.retry_wait, max_retries=a.max_retries, refused=0, probes=0)
    probes = []
    cid = ""

    def probe():
        # A client connecting while no shipper runs meets what Docker's (re)connect meets.
        pr = socket.socket()
        pr.settimeout(2)
        res["probes"] += 1
        try:
            pr.connect(("127.0.0.1", port))
            probes.append(pr)
        except (ConnectionRefusedError, socket.timeout):
            res["refused"] += 1
            pr.close()

    try:
        opts = ["--log-opt", "fluentd-address=127.0.0.1:%d" % port, "--log-opt", "cache-disabled=true",
                "--log-opt", "fluentd-sub-second-precision=true",
                "--log-opt", "fluentd-request-ack=%s" % ("true" if spec["ack"] else "false"),
                "--log-opt", "fluentd-async=%s" % ("true" if spec["async"] else "false"),
                "--log-opt", "fluentd-retry-wait=%s" % a.retry_wait]
        if a.max_retries:
            opts += ["--log-opt", "fluentd-max-retries=%s" % a.max_retries]
        run = ["docker", "run", "-d", "--name", name, "--network", "none", "--log-driver", "fluentd",
               *opts, IMAGE, "sh", "-c", container_script(a.lines, a.rate, a.tail, burst, a.size)]
        if start_down:
            # No shipper yet: the container starts (or not) while the port is down.
            probe()
            r = subprocess.run(run, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
            res["started"] = r.returncode == 0
            if r.returncode:
                why = [l for l in r.stderr.splitlines() if "rror" in l] or r.stderr.splitlines() or ["?"]
                res["start_error"] = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", why[0].replace(
                    "docker: Error response from daemon: ", "").strip())
                cid = docker("inspect", "-f", "{{.Id}}", name, check=False)
                raise _NotStarted()
            cid = r.stdout.strip()
            time.sleep(a.down)
            sh.start()
            for pr in probes:
                pr.close()
            probes = []
        else:
            sh.start()
            cid = docker(*run[1:])
        cpid = int(docker("inspect", "-f", "{{.State.Pid}}", cid) or 0)
        key = 'shipper_input_records_total{input="forward"}'
        base, last = 0.0, 0.0
        deadline = time.monotonic() + a.lines / a.rate * 3 + 60
        res["restarts_done"] = 0
        for r in range(restarts):
            target = kill_at[r]
            polls = 0
            while base + last < target:
                if time.monotonic() > deadline:
                    raise RuntimeError("restart %d: only %d of %d lines arrived" % (r, base + last, target))
                polls += 1
                if polls % 50 == 0 and not alive(cpid):
                    break  # the container ended first (Docker dropped the rest): no more restarts
                v = sh.metric(key)
                if v is not None:
                    last = v
                time.sleep(0.01)
            else:
                sh.stop(sig)
                base += last
                last = 0.0
                probe()
                time.sleep(a.down)
                if exit_down:
                    res["exited_while_down"] = not alive(cpid)
                sh.start()
                res["restarts_done"] += 1
                continue
            break
            for pr in probes:
                pr.close()
            probes = []
        # The container finishes; then shipper delivers what it has.
        code = docker("wait", name, timeout=a.lines / a.rate * 3 + 120)
        res["exit_code"] = int(code or -1)
        ins = docker("inspect", "-f", "{{.State.StartedAt}} {{.State.FinishedAt}}", name)
        res["container_times"] = ins
        prev, same = -1, 0
        while same < 15:
            v = sh.metric('shipper_output_records_total{output="stdout",result="delivered"}')
            i = sh.metric(key)
            same = same + 1 if (v == prev and v is not None and i is not None and v >= i) else 0
            prev = v
            time.sleep(0.1)
        res["final_rc"] = sh.stop(signal.SIGTERM)
    except _NotStarted:
        pass
    finally:
        sh.close()
        for pr in probes:
            pr.close()
        subprocess.run(["docker", "rm", "-f", name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t_end = time.time()
    seqs, times, stamps, bad = parse_outputs(sh.outs, name)
    uniq = set(seqs)
    res["unique"] = len(uniq)
    res["lost"] = a.lines - len(uniq & set(range(a.lines)))
    res["dup"] = len(seqs) - len(uniq)
    res["torn_lines"] = bad
    miss = sorted(set(range(a.lines)) - uniq)
    res["missing_ranges"] = ranges(miss)[:12]
    res["stall_s"] = None if burst else stall(times)
    res["blocked_s"], res["lag_max_s"] = copier_blocks(times, stamps)
    res["ready_max_s"] = round(max(sh.ready_times[1:]), 3) if len(sh.ready_times) > 1 else None
    res["sa_used"] = all(b"using the inherited socket" in open(os.path.join(d, "s%d.err" % i), "rb").read()
                         for i in range(sh.n)) if sa else None
    counts = {k: 0 for k, _ in DOCKERD_PATTERNS}
    if log:
        time.sleep(0.2)
        with open(log, "rb") as f:
            f.seek(log_off)
            text = f.read().decode("utf-8", "replace")
        for k, pat in DOCKERD_PATTERNS:
            counts[k] = text.count(pat)
    res["dockerd"] = counts
    res["dockerd_log"] = log
    res["foreign_fluentd"] = sorted(foreign_fluentd(t_begin - 1, t_end + 1, cid)) if cid else ["?"]
    return res


def ranges(xs):
    out = []
    for x in xs:
        if out and out[-1][1] == x - 1:
            out[-1][1] = x
        else:
            out.append([x, x])
    return ["%d" % a if a == b else "%d-%d" % (a, b) for a, b in out]


KIND_TEXT = {"term": "SIGTERM", "kill": "SIGKILL", "term-sa": "SIGTERM, socket activation",
             "kill-sa": "SIGKILL, socket activation", "exit": "none; container exits after a burst",
             "start": "shipper down when the container starts",
             "start-sa": "shipper down when the container starts, socket activation",
             "exitdown": "SIGKILL; the container stops while shipper is down",
             "exitdown-sa": "SIGKILL, socket activation; the container stops while shipper is down"}


def table(results, defaults):
    rows = ["| restart | request-ack | async | shipper `ack` | lost | dup | container stalled | "
            "Docker's copier blocked | dockerd logged | probes refused |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        if "error" in r:
            rows.append("| %s | %s | %s | %s | error: %s |||||| " % (
                KIND_TEXT[r["kind"]], r["ack"], r["async"], r["mode"], r["error"]))
            continue
        c = r["dockerd"]
        bits = []
        for k, label in (("closed", "Logger already closed"), ("close_timeout", "Logger didn't exit in time"),
                         ("discarded", "Discarding queued events"), ("ack_mismatch", "ack mismatch"),
                         ("write_gave_up", "write gave up"), ("connect_gave_up", "connect gave up"),
                         ("unable_to_send", "Unable to send")):
            if c.get(k):
                bits.append("%s ×%d" % (label, c[k]))
        dl = ", ".join(bits) or "nothing"
        if r["foreign_fluentd"]:
            dl += " *"
        kind = KIND_TEXT[r["kind"]]
        extra = []
        if r["down"] != defaults.down:
            extra.append("down %g s" % r["down"])
        if r["retry_wait"] != defaults.retry_wait:
            extra.append("retry-wait %s" % r["retry_wait"])
        if r["max_retries"] != defaults.max_retries:
            extra.append("max-retries %s" % r["max_retries"])
        if r.get("tail") not in (None, defaults.tail) and not r["kind"].startswith(("exit", "start")):
            extra.append("the container logs on for %g s more" % r["tail"])
        if r.get("restarts_done") is not None and r["restarts_done"] < r["restarts"]:
            extra.append("the container ended after %d of %d restarts" % (r["restarts_done"], r["restarts"]))
        if extra:
            kind += " (%s)" % ", ".join(extra)
        lost = "%d of %d" % (r["lost"], r["lines"])
        if r.get("started") is False:
            lost = "did not start: `%s`" % r.get("start_error", "?")
        rows.append("| %s | %s | %s | %s | %s | %d | %s | %s | %s | %s |" % (
            kind, "true" if r["ack"] else "false", "true" if r["async"] else "false",
            r["mode"] if r["ack"] else "—", lost, r["dup"],
            "—" if r["stall_s"] is None else "%.2f s" % r["stall_s"],
            "—" if r["blocked_s"] is None else "%.2f s" % r["blocked_s"], dl,
            "—" if not r["probes"] else "%d of %d" % (r["refused"], r["probes"])))
    return "\n".join(rows)


def parse_cell(text):
    parts = text.split(",")
    spec = {"kind": parts[0], "ack": 0, "async": 0, "mode": "durable"}
    keys = {"down": "down", "rw": "retry_wait", "mr": "max_retries", "tail": "tail"}
    if spec["kind"] not in KIND_TEXT:
        raise SystemExit("unknown kind %r" % spec["kind"])
    for p in parts[1:]:
        k, _, v = p.partition("=")
        if k in ("ack", "async"):
            spec[k] = int(v)
        elif k == "mode":
            spec[k] = v
        elif k in keys:
            spec[keys[k]] = v
        else:
            raise SystemExit("unknown cell key %r" % k)
    return spec


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shipper", required=True)
    ap.add_argument("--tmp", required=True)
    ap.add_argument("--lines", type=int, default=3000)
    ap.add_argument("--rate", type=float, default=300)
    ap.add_argument("--restarts", type=int, default=3)
    ap.add_argument("--down", type=float, default=0.5)
    ap.add_argument("--tail", type=float, default=4)
    ap.add_argument("--size", type=int, default=1000, help="bytes per line")
    ap.add_argument("--burst-lines", type=int, default=20000, help="lines of the exit kind")
    ap.add_argument("--burst-size", type=int, default=32, help="bytes per line of the exit kind")
    ap.add_argument("--retry-wait", default="1s")
    ap.add_argument("--max-retries", default="")
    ap.add_argument("--json")
    ap.add_argument("--table", action="store_true")
    ap.add_argument("cells", nargs="+")
    a = ap.parse_args()
    specs = [parse_cell(c) for c in a.cells]
    results = []
    for i, spec in enumerate(specs):
        try:
            r = run_cell(a, spec, i)
        except Exception as e:  # reported per cell; the other cells still run
            r = dict(spec, error="%s: %s" % (type(e).__name__, e))
        print(json.dumps(r), flush=True)
        results.append(r)
        if a.json:
            with open(a.json, "w") as f:
                json.dump(results, f, indent=1)
    if a.table:
        print(table(results, a))
        if any(r.get("foreign_fluentd") for r in results):
            print("* another container with the fluentd driver ran meanwhile; dockerd's lines may include its own")


if __name__ == "__main__":
    main()
