#!/usr/bin/env node
// send.js — drive shipper's Forward input with a second, independent client implementation
// (@fluent-org/logger), so protocol handling is not only checked against our own encoder or
// Docker's fluentd log driver.
//
// Usage:
//   node send.js --addr HOST:PORT|/path/to.sock|unix:///path/to.sock
//                [--mode message|forward|packed|compressed] [--count N] [--tag T] [--ack]
//                [--shared-key KEY [--hostname NAME] [--username U --password P]]
//                [--tls [--ca FILE] [--insecure] [--servername NAME]]
//                [--batch N] [--start S] [--pad BYTES] [--event-time]
//                [--ack-timeout MS] [--timeout SEC] [--reconnect] [--quiet]
//
// Sends N records {"message": "line <i>", "seq": i, "client": "fluent-org"} for
// i = S .. S+N-1 (S defaults to 0), waits until every record is written to the socket
// (or acknowledged, with --ack), closes the connection gracefully and exits 0 with a summary
// on stdout. Any error (connect refused, reset, handshake/auth failure, ack timeout, overall
// --timeout) prints "send.js: error: ..." on stderr and exits 1. Exit code 2 = bad usage.
//
// Modes map to the library's eventMode: message=Message, forward=Forward,
// packed=PackedForward, compressed=CompressedPackedForward.
// Wire facts worth knowing when checking a server against it: Message mode always sends
// the 4th (option) element, `{}` when there is no chunk; Packed modes send the entry
// stream as msgpack bin (not str) with option.size; compressed is one gzip member;
// timestamps are integer seconds unless --event-time (EventTime ext type 0, ms precision).
//
// --batch N: send a chunk every N records (default: one chunk with everything for the
//   forward/packed modes, since the library batches everything emitted in one tick).
// --pad BYTES: add a "pad" field of that many "x" characters, for big-record tests.
// --reconnect: keep retrying the connection (until --timeout) instead of failing at the first
//   socket error; useful when the server may not be listening yet.

"use strict";

const fs = require("fs");
const os = require("os");
const { FluentClient, EventTime } = require("@fluent-org/logger");

const MODES = {
  message: "Message",
  forward: "Forward",
  packed: "PackedForward",
  compressed: "CompressedPackedForward",
};

function usage(msg) {
  if (msg) process.stderr.write(`send.js: ${msg}\n`);
  process.stderr.write(
    "usage: node send.js --addr HOST:PORT|SOCKET_PATH [--mode message|forward|packed|compressed]\n" +
      "       [--count N] [--tag T] [--ack] [--shared-key K [--hostname H] [--username U --password P]]\n" +
      "       [--tls [--ca FILE] [--insecure] [--servername NAME]] [--batch N] [--start S] [--pad BYTES]\n" +
      "       [--event-time] [--ack-timeout MS] [--timeout SEC] [--reconnect] [--quiet]\n"
  );
  process.exit(2);
}

function parseArgs(argv) {
  const o = {
    addr: null, mode: "forward", count: 10, tag: "test.fluent", ack: false,
    sharedKey: null, hostname: null, username: null, password: null,
    tls: false, ca: null, insecure: false, servername: null,
    batch: 0, start: 0, pad: 0, eventTime: false,
    ackTimeout: 10000, timeout: 30, reconnect: false, quiet: false,
  };
  const flags = { "--ack": "ack", "--tls": "tls", "--insecure": "insecure",
    "--event-time": "eventTime", "--reconnect": "reconnect", "--quiet": "quiet" };
  const strs = { "--addr": "addr", "--mode": "mode", "--tag": "tag", "--shared-key": "sharedKey",
    "--hostname": "hostname", "--username": "username", "--password": "password",
    "--ca": "ca", "--servername": "servername" };
  const ints = { "--count": "count", "--batch": "batch", "--start": "start", "--pad": "pad",
    "--ack-timeout": "ackTimeout", "--timeout": "timeout" };
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i];
    let v;
    const eq = a.indexOf("=");
    if (a.startsWith("--") && eq > 0) {
      v = a.slice(eq + 1);
      a = a.slice(0, eq);
    }
    if (a === "-h" || a === "--help") usage();
    if (flags[a]) {
      o[flags[a]] = true;
      continue;
    }
    if (!strs[a] && !ints[a]) usage(`unknown option ${a}`);
    if (v === undefined) {
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      v = argv[++i];
    }
    if (strs[a]) {
      o[strs[a]] = v;
    } else {
      if (!/^\d+$/.test(v)) usage(`${a} needs a non-negative integer`);
      o[ints[a]] = Number(v);
    }
  }
  if (!o.addr) usage("--addr is required");
  if (!MODES[o.mode]) usage(`bad --mode ${o.mode}`);
  if ((o.username || o.password) && !o.sharedKey) usage("--username/--password need --shared-key");
  return o;
}

// "host:port", "[v6addr]:port", or a unix socket given as a path or unix:// URL.
function parseAddr(addr) {
  if (addr.startsWith("unix://")) return { path: addr.slice("unix://".length) };
  if (addr.includes("/")) return { path: addr };
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(addr) || /^([^:]+):(\d+)$/.exec(addr);
  if (!m) usage(`bad --addr ${addr} (want HOST:PORT or a socket path)`);
  return { host: m[1], port: Number(m[2]) };
}

function fail(msg) {
  process.stderr.write(`send.js: error: ${msg}\n`);
  process.exit(1);
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const socket = {
    ...parseAddr(o.addr),
    // The library's default 3 s idle timeout would close the socket while we wait for acks.
    timeout: -1,
    // Without --reconnect a socket error is fatal anyway; keep retries quick when enabled.
    reconnect: { delay: 100, maxDelay: 1000 },
  };
  if (o.tls) {
    socket.tls = { rejectUnauthorized: !o.insecure };
    if (o.ca) socket.tls.ca = fs.readFileSync(o.ca);
    if (o.servername) socket.tls.servername = o.servername;
  }
  const options = {
    eventMode: MODES[o.mode],
    socket,
    milliseconds: o.eventTime,
    disableAutoconnect: true,
    // No eventRetry: a test must see failures, not have them papered over.
  };
  if (o.ack) {
    options.ack = { ackTimeout: o.ackTimeout };
  }
  if (o.batch > 0) {
    // Flush synchronously whenever this many records are queued => one chunk per batch.
    options.sendQueueSyncFlushLimit = { length: o.batch, size: Infinity };
  }
  if (o.sharedKey) {
    options.security = {
      // Must differ from the server's hostname, or the handshake is rejected by design.
      clientHostname: o.hostname || `${os.hostname()}-send.js`,
      sharedKey: o.sharedKey,
    };
    if (o.username) options.security.username = o.username;
    if (o.password) options.security.password = o.password;
  }

  const client = new FluentClient(null, options);
  let finished = false; // all records confirmed: later socket events are our own shutdown
  let established = false;
  let confirmed = 0;
  const started = Date.now();

  const overall = setTimeout(() => {
    fail(`timeout after ${o.timeout}s: ${confirmed}/${o.count} records confirmed`);
  }, o.timeout * 1000);

  client.socketOn("error", err => {
    if (finished) return;
    if (o.reconnect) {
      if (!o.quiet) process.stderr.write(`send.js: socket error (retrying): ${err.message}\n`);
      return;
    }
    fail(`socket: ${err.message}`);
  });
  client.socketOn("close", () => {
    // Without acks, a server that closes early would go unnoticed until the next write.
    if (!finished && !o.reconnect && established) fail("connection closed by server");
  });

  // Wait until the connection (and handshake) is up before emitting, so that --batch really
  // cuts chunks instead of everything piling up in the queue while connecting.
  const ready = new Promise(resolve => client.socketOn("established", () => {
    established = true;
    resolve();
  }));
  client.connect().catch(err => {
    if (!o.reconnect) fail(`connect: ${err.message}`);
  });
  await ready;

  const pad = o.pad > 0 ? "x".repeat(o.pad) : null;
  const pending = [];
  for (let i = o.start; i < o.start + o.count; i++) {
    const record = { message: `line ${i}`, seq: i, client: "fluent-org" };
    if (pad) record.pad = pad;
    const ts = o.eventTime ? EventTime.now() : Math.floor(Date.now() / 1000);
    pending.push(
      client.emit(o.tag, record, ts).then(
        () => { confirmed++; },
        err => fail(`record seq=${i}: ${err && err.message ? err.message : err}`)
      )
    );
  }
  await Promise.all(pending);

  finished = true;
  clearTimeout(overall);
  // Graceful end (FIN after all buffered data), so the server sees every byte.
  await client.disconnect();
  const ms = Date.now() - started;
  if (!o.quiet) {
    process.stdout.write(
      `sent ${confirmed} records mode=${o.mode} ack=${o.ack} tag=${o.tag} in ${ms}ms\n`
    );
  }
  process.exit(0);
}

main().catch(err => fail(err && err.stack ? err.stack : String(err)));
