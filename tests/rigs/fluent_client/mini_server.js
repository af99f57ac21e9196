#!/usr/bin/env node
// mini_server.js — SELF-CHECK ONLY. A tiny Forward-protocol server used to verify send.js
// (and, if wanted, Docker's fluentd log driver) without shipper. It is not a reference
// implementation and tests of shipper should not depend on it.
//
// Usage:
//   node mini_server.js [--host 127.0.0.1] [--port 0] | [--unix PATH]
//                       [--shared-key KEY [--hostname NAME]] [--tls-cert PEM --tls-key PEM]
//                       [--expect N] [--no-ack] [--verbose]
//
// Prints "listening HOST:PORT" (or "listening PATH") once ready. Decodes Message, Forward,
// PackedForward (bin entries) and CompressedPackedForward (gzip), answers {"ack": chunk}
// whenever a chunk option is present (unless --no-ack, to provoke client ack timeouts),
// and performs the shared-key HELO/PING/PONG handshake with --shared-key.
// With --expect N it exits 0 after N records; on SIGTERM/SIGINT it exits 0 too. Either way
// the last line is "records=N unique_seq=M dup_seq=D messages=K" (seq = the record's "seq"
// field, as sent by send.js).

"use strict";

const crypto = require("crypto");
const fs = require("fs");
const net = require("net");
const tls = require("tls");
const os = require("os");
const zlib = require("zlib");
const { decodeMultiStream, decodeMulti, encode, ExtensionCodec } = require("@msgpack/msgpack");

const o = { host: "127.0.0.1", port: 0, unix: null, sharedKey: null, hostname: os.hostname(),
  expect: 0, ack: true, verbose: false, tlsCert: null, tlsKey: null };
const args = process.argv.slice(2);
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  const next = () => {
    if (i + 1 >= args.length) die(`${a} needs a value`, 2);
    return args[++i];
  };
  if (a === "--host") o.host = next();
  else if (a === "--port") o.port = Number(next());
  else if (a === "--unix") o.unix = next();
  else if (a === "--shared-key") o.sharedKey = next();
  else if (a === "--hostname") o.hostname = next();
  else if (a === "--expect") o.expect = Number(next());
  else if (a === "--tls-cert") o.tlsCert = next();
  else if (a === "--tls-key") o.tlsKey = next();
  else if (a === "--no-ack") o.ack = false;
  else if (a === "--verbose") o.verbose = true;
  else die(`unknown option ${a}`, 2);
}

function die(msg, code = 1) {
  process.stderr.write(`mini_server: ${msg}\n`);
  process.exit(code);
}

// EventTime (ext type 0: uint32 sec, uint32 nsec, big endian) -> float seconds; we only count.
const extensionCodec = new ExtensionCodec();
extensionCodec.register({
  type: 0,
  encode: () => null,
  decode: data => {
    const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    return b.readUInt32BE(0) + b.readUInt32BE(4) / 1e9;
  },
});

let records = 0;
let messages = 0;
const seqs = new Map();

function summary() {
  let dups = 0;
  for (const n of seqs.values()) if (n > 1) dups += n - 1;
  return `records=${records} unique_seq=${seqs.size} dup_seq=${dups} messages=${messages}`;
}

function finish() {
  process.stdout.write(summary() + "\n");
  process.exit(0);
}
process.on("SIGTERM", finish);
process.on("SIGINT", finish);

const sha512hex = (...parts) => {
  const h = crypto.createHash("sha512");
  for (const p of parts) h.update(p);
  return h.digest("hex");
};

// Returns { entries, option } for a transport message, or throws.
function parseTransport(msg) {
  if (!Array.isArray(msg) || typeof msg[0] !== "string") throw new Error("not a transport message");
  if (Array.isArray(msg[1])) return { entries: msg[1], option: msg[2] || {} };
  if (msg[1] instanceof Uint8Array) {
    const option = msg[2] || {};
    let buf = msg[1];
    if (option.compressed === "gzip") buf = zlib.gunzipSync(buf);
    return { entries: [...decodeMulti(buf, { extensionCodec })], option };
  }
  return { entries: [[msg[1], msg[2]]], option: msg[3] || {} };
}

async function handle(sock) {
  const peer = sock.remoteAddress ? `${sock.remoteAddress}:${sock.remotePort}` : "unix";
  sock.on("error", err => process.stderr.write(`mini_server: ${peer}: ${err.message}\n`));
  let nonce = null;
  let authed = !o.sharedKey;
  if (!authed) {
    nonce = crypto.randomBytes(16);
    sock.write(encode(["HELO", { nonce, auth: "", keepalive: true }]));
  }
  try {
    for await (const msg of decodeMultiStream(sock, { extensionCodec })) {
      if (!authed) {
        // ['PING', client_hostname, salt, sha512_hex(salt+client_hostname+nonce+key), user, pw]
        if (!Array.isArray(msg) || msg[0] !== "PING") throw new Error("expected PING");
        const [, clientHost, salt, digest] = msg;
        const ok = digest === sha512hex(salt, clientHost, nonce, o.sharedKey);
        sock.write(encode(["PONG", ok, ok ? "" : "shared key mismatch", o.hostname,
          ok ? sha512hex(salt, o.hostname, nonce, o.sharedKey) : ""]));
        if (!ok) {
          sock.end();
          return;
        }
        authed = true;
        continue;
      }
      const { entries, option } = parseTransport(msg);
      messages++;
      for (const e of entries) {
        records++;
        const rec = Array.isArray(e) ? e[1] : null;
        if (rec && typeof rec.seq === "number") seqs.set(rec.seq, (seqs.get(rec.seq) || 0) + 1);
        if (o.verbose) process.stdout.write(`${msg[0]} ${JSON.stringify(e)}\n`);
      }
      const done = o.expect > 0 && records >= o.expect;
      if (o.ack && option.chunk) {
        sock.write(encode({ ack: option.chunk }), () => { if (done) finish(); });
      } else if (done) {
        finish();
      }
    }
  } catch (err) {
    process.stderr.write(`mini_server: ${peer}: ${err.message}\n`);
    sock.destroy();
  }
}

const server = o.tlsCert
  ? tls.createServer({ cert: fs.readFileSync(o.tlsCert), key: fs.readFileSync(o.tlsKey) },
    sock => { handle(sock); })
  : net.createServer(sock => { handle(sock); });
server.on("error", err => die(err.message));
if (o.unix) {
  try { fs.unlinkSync(o.unix); } catch (_) { /* not there */ }
  server.listen(o.unix, () => process.stdout.write(`listening ${o.unix}\n`));
} else {
  server.listen(o.port, o.host, () => {
    const a = server.address();
    process.stdout.write(`listening ${a.address}:${a.port}\n`);
  });
}
