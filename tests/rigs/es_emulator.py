#!/usr/bin/env python3
"""Elasticsearch bulk-API emulator for shipper's tests and benchmarks.

Standard library only. It speaks the documented ES 8 REST format for the parts a log
shipper uses, keeps every document in memory for assertions, and injects faults.

ES API (main port):
  GET|HEAD /                         cluster info (version.number 8.11.0)
  POST|PUT /_bulk, /{index}/_bulk    NDJSON; actions create, index, delete (update -> item 400)
           query: filter_path ('*' and '**' wildcards), pretty; other documented bulk
           parameters (refresh, timeout, ...) are accepted and ignored, unknown ones -> 400
  GET|POST /{index}/_count           {"count": N}
  GET      /{index}/_doc/{id}        stored document
  POST     /_refresh, /{index}/_refresh
  HTTP/1.1 keep-alive, Expect: 100-continue, chunked request bodies, Content-Encoding: gzip.

Behaviour that follows real ES:
  - a bad *action* line rejects the whole request with 400 (x_content_parse_exception or
    illegal_argument_exception); a bad *source* line fails only its item (400
    mapper_parsing_exception); the body must end with a newline.
  - create on an existing (_index, _id) -> item 409 version_conflict_engine_exception.
  - bulk needs Content-Type application/json or application/x-ndjson (else 406).
  - bodies over --max-content-length get 413 and the connection is closed.

Control API (/_emulator/*, on --control-port and on the main port while it is up; no auth):
  GET    /_emulator/stats            counters (see State.new_stats)
  GET    /_emulator/faults           current faults
  POST   /_emulator/faults           merge a JSON object into the faults (null removes a key):
           request_status: [429, 503]           next bulk requests fail whole, one status each
           request_match: {contains: "seq=0 ", status: 503, delay: 1, count: 1}
                                                the next `count` (default 1) bulk requests whose
                                                body contains the text wait `delay` seconds, then
                                                fail whole with `status` (default 503); other
                                                requests pass: it picks a request by content,
                                                whatever order requests arrive in
           item_status_every: {n: 5, status: 429}   every n-th item (counted from now) fails
           item_status_count: {count: 10, status: 503}  the next `count` items fail
           mapping_error_field: "bad"           docs with that field (or dotted path) -> 400
           delay: 2.5                           seconds to sleep before answering each bulk
           truncate_next: 2                     next 2 bulk responses cut in half (bulk applied)
           refuse: true                         close connections without answering
  DELETE /_emulator/faults           clear all faults
  GET    /_emulator/docs?index=PAT   [{"_index", "_id", "_source"}] (PAT: comma list of globs);
           &times=1 adds "_created": the time.time() at which the document was first created
           (tests compare it with when a client got its ack)
  GET    /_emulator/count?index=PAT  {"count": N}
  GET    /_emulator/conflicts        the first 100 creates answered 409 whose source differs from
                                     the stored document's (two records given one _id: the second
                                     is silently lost); counted in stats conflicts_other_source
  POST   /_emulator/reset            drop all documents and zero the stats (faults stay)
  POST   /_emulator/down {"seconds": S}   close the main listener and its connections; reopen
                                     after S seconds (S omitted or 0: until /_emulator/up)
  POST   /_emulator/up               reopen the main listener now

--fast: counting mode for benchmarks. Only action lines are parsed; sources are neither
parsed nor stored, so mapping errors and 409 conflicts are not detected; every item is
created (201) unless an item fault hits it. Per-index counts are kept, /docs returns [].
"""

import argparse
import base64
import copy
import fnmatch
import gzip
import json
import os
import re
import signal
import socket
import ssl
import sys
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

ES_VERSION = "8.11.0"
CLUSTER_UUID = "Zq3zKcY8Ra2dkHxHw1sX9g"
INDEX_UUID = "eM1uLoN0QZyCi3lMDEs_aw"
BULK_PARAMS = {"filter_path", "pretty", "human", "error_trace", "refresh", "pipeline", "routing",
               "timeout", "wait_for_active_shards", "require_alias", "require_data_stream",
               "list_executed_pipelines", "_source", "_source_includes", "_source_excludes"}
META_KEYS = {"_index", "_id", "routing", "pipeline", "require_alias", "if_seq_no",
             "if_primary_term", "version", "version_type", "op_type", "dynamic_templates",
             "retry_on_conflict", "_source", "require_data_stream"}
ACTIONS = ("create", "index", "delete", "update")


class EsError(Exception):
    """A whole-request error, answered as {"error": {...}, "status": N}."""

    def __init__(self, status, etype, reason):
        super().__init__(reason)
        self.status, self.etype, self.reason = status, etype, reason


_raw_decode = json.JSONDecoder().raw_decode


def loads_line(line):
    """json.loads for one NDJSON line (bytes); about 3x faster than json.loads(bytes)."""
    text = line.decode("utf-8").strip()
    obj, end = _raw_decode(text)
    if end != len(text):
        raise ValueError(f"unexpected data after the JSON value at column {end + 1}")
    return obj


def error_body(status, etype, reason, **extra):
    cause = dict(type=etype, reason=reason, **extra)
    return {"error": {"root_cause": [cause], **cause}, "status": status}


def error_for_status(status, index):
    """The (type, reason) real ES gives for a per-item or whole-request failure status."""
    if status == 429:
        return ("es_rejected_execution_exception",
                "rejected execution of coordinating operation [coordinating_and_primary_bytes=0, "
                "replica_bytes=0, all_bytes=0, coordinating_operation_bytes=1024, "
                "max_coordinating_and_primary_bytes=107374182]")
    if status == 503:
        return ("unavailable_shards_exception",
                f"[{index}][0] primary shard is not active Timeout: [1m]")
    if status == 400:
        return "illegal_argument_exception", "emulated bad request"
    if status == 404:
        return "index_not_found_exception", f"no such index [{index}]"
    return "exception", f"emulated failure with status {status}"


class _PathNode:
    """A node of the filter_path trie: what may follow the path so far."""
    __slots__ = ("exact", "globs", "star2", "is_star2", "terminal")

    def __init__(self, is_star2=False):
        self.exact, self.globs = {}, {}     # name -> node; glob text -> (match, node)
        self.star2, self.is_star2, self.terminal = None, is_star2, False

    def child(self, seg):
        if seg == "**":
            self.star2 = self.star2 or _PathNode(is_star2=True)
            return self.star2
        if "*" in seg or "?" in seg:
            if seg not in self.globs:
                self.globs[seg] = (re.compile(fnmatch.translate(seg)).match, _PathNode())
            return self.globs[seg][1]
        return self.exact.setdefault(seg, _PathNode())


class PathFilter:
    """ES filter_path: a comma list of dotted paths; '*' globs within a key, '**' spans any
    depth; arrays are transparent. The paths form a trie; the walk keeps a tuple of active
    nodes (a state) and memoizes each (state, key) step, so filtering thousands of bulk
    items costs a few dict lookups each."""

    def __init__(self, spec):
        root = _PathNode()
        for path in filter(None, spec.split(",")):
            node = root
            for seg in path.split("."):
                node = node.child(seg)
            node.terminal = True
        self.start = self._closure([root])
        self.steps = {}     # (state, key) -> (include whole value?, next state or None)
        self.names = {}     # state -> key names to look up, when all of them are exact

    @staticmethod
    def _closure(nodes):
        """Add each node's '**' child: '**' may match zero keys."""
        out = []
        for n in nodes:
            while n is not None and n not in out:
                out.append(n)
                n = n.star2
        return tuple(out)

    def _step(self, state, key):
        nxt = []
        for n in state:
            if key in n.exact:
                nxt.append(n.exact[key])
            nxt.extend(c for match, c in n.globs.values() if match(key))
            if n.is_star2:
                nxt.append(n)               # '**' consumes this key and stays active
        nxt = self._closure(nxt)
        whole = any(n.terminal for n in nxt)
        res = self.steps[state, key] = (whole, nxt or None)
        return res

    def apply(self, obj):
        out = self._apply(obj, self.start)
        return {} if out is None else out   # ES answers {} when nothing matches

    def _apply(self, obj, state):
        if isinstance(obj, list):
            kept = [v for v in (self._apply(x, state) for x in obj) if v is not None]
            return kept or None
        if not isinstance(obj, dict):
            return None
        names = self.names.get(state, 0)
        if names == 0:
            exact_only = all(not n.globs and not n.is_star2 for n in state)
            names = self.names[state] = (
                dict.fromkeys(k for n in state for k in n.exact) if exact_only else None)
        if names is None:
            keys = obj
        else:
            keys = [k for k in names if k in obj]
            if len(keys) > 1:
                keys = [k for k in obj if k in names]   # keep the document's key order
        out = {}
        for key in keys:
            whole, nxt = self.steps.get((state, key)) or self._step(state, key)
            if whole:
                out[key] = obj[key]
            elif nxt:
                sub = self._apply(obj[key], nxt)
                if sub is not None:
                    out[key] = sub
        return out or None


def has_field(src, path):
    """True if `src` has field `path`, as a literal key or as a dotted path through objects."""
    if not isinstance(src, dict):
        return False
    if path in src:
        return True
    parts = path.split(".")
    for i in range(1, len(parts)):
        head = ".".join(parts[:i])
        if head in src and has_field(src[head], ".".join(parts[i:])):
            return True
    return False


def index_matcher(pattern):
    pats = [p for p in (pattern or "*").split(",") if p] or ["*"]
    pats = ["*" if p == "_all" else p for p in pats]
    return lambda name: any(fnmatch.fnmatchcase(name, p) for p in pats)


class State:
    """Documents, counters and faults; one lock guards all of it."""

    def __init__(self, fast):
        self.fast = fast
        self.lock = threading.Lock()
        self.docs = {}          # index -> {id: [version, source, created]}
        self.fast_counts = {}   # index -> created count (fast mode)
        self.good_indexes = set()   # index names already validated
        self.seq_no = 0
        self.faults = {}
        self.stats = self.new_stats()
        self.other_source = []  # first 100 creates refused (409) with a different source

    @staticmethod
    def new_stats():
        # rejected: permanent item failures (4xx but 404/409/429); retryable_errors: 429, 5xx
        return {"bulk_requests": 0, "items": 0, "created": 0, "updated": 0, "deleted": 0,
                "conflicts": 0, "rejected": 0, "retryable_errors": 0, "docs": 0,
                "requests_by_status": {}, "gzip_requests": 0, "bytes": 0, "truncated": 0,
                "conflicts_other_source": 0}

    def reset(self):
        with self.lock:
            self.docs, self.fast_counts, self.seq_no = {}, {}, 0
            self.other_source = []
            self.stats = self.new_stats()

    def count(self, pattern):
        match = index_matcher(pattern)
        with self.lock:
            if self.fast:
                return sum(n for i, n in self.fast_counts.items() if match(i))
            return sum(len(d) for i, d in self.docs.items() if match(i))

    def list_docs(self, pattern, times=False):
        match = index_matcher(pattern)
        with self.lock:
            if times:
                return [{"_index": i, "_id": k, "_source": v[1], "_created": v[2]}
                        for i, d in sorted(self.docs.items()) if match(i) for k, v in d.items()]
            return [{"_index": i, "_id": k, "_source": v[1]}
                    for i, d in sorted(self.docs.items()) if match(i) for k, v in d.items()]

    def count_status(self, status):
        with self.lock:
            by = self.stats["requests_by_status"]
            by[str(status)] = by.get(str(status), 0) + 1

    # ---- faults ----
    def merge_faults(self, new):
        if not isinstance(new, dict):
            raise ValueError("faults must be a JSON object")
        with self.lock:
            for key, val in new.items():
                if val is None:
                    self.faults.pop(key, None)
                elif key == "request_status":
                    self.faults[key] = [int(s) for s in (val if isinstance(val, list) else [val])]
                elif key == "item_status_every":
                    self.faults[key] = {"n": max(1, int(val["n"])),
                                        "status": int(val.get("status", 429)), "seen": 0}
                elif key == "item_status_count":
                    self.faults[key] = {"count": int(val["count"]),
                                        "status": int(val.get("status", 429))}
                elif key == "request_match":
                    self.faults[key] = {"contains": str(val["contains"]),
                                        "status": int(val.get("status", 503)),
                                        "delay": float(val.get("delay", 0)),
                                        "count": int(val.get("count", 1))}
                elif key == "mapping_error_field":
                    self.faults[key] = str(val)
                elif key == "delay":
                    self.faults[key] = float(val)
                elif key == "truncate_next":
                    self.faults[key] = int(val)
                elif key == "refuse":
                    self.faults[key] = bool(val)
                else:
                    raise ValueError(f"unknown fault [{key}]")
            return copy.deepcopy(self.faults)

    def clear_faults(self):
        with self.lock:
            self.faults = {}

    def take_request_fault(self, body=b""):
        """Per bulk request: (whole-request status or None, delay, truncate?)."""
        with self.lock:
            f = self.faults
            status = f["request_status"].pop(0) if f.get("request_status") else None
            delay = f.get("delay", 0.0)
            m = f.get("request_match")
            if status is None and m and m["count"] > 0 and m["contains"].encode() in body:
                m["count"] -= 1
                status = m["status"]
                delay += m["delay"]
            truncate = f.get("truncate_next", 0) > 0
            if truncate:
                f["truncate_next"] -= 1
            return status, delay, truncate

    def _item_fault(self):
        """Status injected for the next item, or None. Caller holds the lock."""
        f = self.faults
        c = f.get("item_status_count")
        if c and c["count"] > 0:
            c["count"] -= 1
            return c["status"]
        e = f.get("item_status_every")
        if e:
            e["seen"] += 1
            if e["seen"] % e["n"] == 0:
                return e["status"]
        return None

    # ---- bulk ----
    def apply_bulk(self, ops):
        """Apply parsed ops [(action, index, id, source_bytes)] and return the items list."""
        items = []
        with self.lock:
            st = self.stats
            st["bulk_requests"] += 1
            for action, index, doc_id, source in ops:
                item = self._apply_one(action, index, doc_id, source)
                items.append({action: item})
                s = item["status"]
                st["items"] += 1
                if s == 409:
                    st["conflicts"] += 1
                elif s == 429 or s >= 500:
                    st["retryable_errors"] += 1
                elif s >= 400 and s != 404:
                    st["rejected"] += 1
                elif s == 201:
                    st["created"] += 1
                elif action == "index":
                    st["updated"] += 1
                elif action == "delete" and s == 200:
                    st["deleted"] += 1
            st["docs"] = (sum(self.fast_counts.values()) if self.fast
                          else sum(len(d) for d in self.docs.values()))
        return items

    @staticmethod
    def _fail(index, doc_id, status, etype, reason, **extra):
        err = dict(type=etype, reason=reason, **extra)
        err.setdefault("index_uuid", INDEX_UUID)
        if etype != "invalid_index_name_exception":
            err.update(shard="0", index=index)
        return {"_index": index, "_id": doc_id, "status": status, "error": err}

    def _ok(self, index, doc_id, status, result, version):
        self.seq_no += 1
        return {"_index": index, "_id": doc_id, "_version": version, "result": result,
                "_shards": {"total": 2, "successful": 1, "failed": 0},
                "_seq_no": self.seq_no - 1, "_primary_term": 1, "status": status}

    def _apply_one(self, action, index, doc_id, source):
        """One bulk item -> its response object. Caller holds the lock."""
        if doc_id is None and action != "delete":
            doc_id = base64.urlsafe_b64encode(os.urandom(15)).decode()   # 20 chars, like ES
        if action == "update":
            return self._fail(index, doc_id, 400, "illegal_argument_exception",
                              "the emulator does not support update")
        injected = self._item_fault() if self.faults else None
        if injected is not None:
            return self._fail(index, doc_id, injected, *error_for_status(injected, index))
        if index not in self.good_indexes:
            if index != index.lower() or index.startswith(("_", "-", "+")) or "," in index:
                return self._fail(index, doc_id, 400, "invalid_index_name_exception",
                                  f"Invalid index name [{index}], must be lowercase",
                                  index=index, index_uuid="_na_")
            self.good_indexes.add(index)
        if self.fast:                                 # count only: no parsing, no storage
            if action == "delete":
                return self._ok(index, doc_id, 200, "deleted", 2)
            self.fast_counts[index] = self.fast_counts.get(index, 0) + 1
            return self._ok(index, doc_id, 201, "created", 1)

        docs = self.docs.setdefault(index, {})
        cur = docs.get(doc_id)
        if action == "delete":
            if cur is None:
                return self._ok(index, doc_id, 404, "not_found", 1)
            del docs[doc_id]
            return self._ok(index, doc_id, 200, "deleted", cur[0] + 1)
        try:
            src = loads_line(source)
            if not isinstance(src, dict):
                raise ValueError("source is not a JSON object")
        except ValueError as e:
            return self._fail(index, doc_id, 400, "mapper_parsing_exception", "failed to parse",
                              caused_by={"type": "x_content_parse_exception", "reason": str(e)})
        field = self.faults.get("mapping_error_field")
        if field and has_field(src, field):
            return self._fail(index, doc_id, 400, "mapper_parsing_exception",
                              f"failed to parse field [{field}] of type [long] in document with "
                              f"id '{doc_id}'. Preview of field's value: 'emulated'",
                              caused_by={"type": "illegal_argument_exception",
                                         "reason": "For input string: \"emulated\""})
        if cur is not None and action == "create":
            if src != cur[1]:   # not a resend of the same document: two records, one _id
                self.stats["conflicts_other_source"] += 1
                if len(self.other_source) < 100:
                    self.other_source.append({"_index": index, "_id": doc_id,
                                              "stored": cur[1], "refused": src})
            return self._fail(index, doc_id, 409, "version_conflict_engine_exception",
                              f"[{doc_id}]: version conflict, document already exists "
                              f"(current version [{cur[0]}])")
        if cur is not None:                           # index over an existing doc
            cur[0] += 1
            cur[1] = src
            return self._ok(index, doc_id, 200, "updated", cur[0])
        docs[doc_id] = [1, src, time.time()]        # version, source, when created
        return self._ok(index, doc_id, 201, "created", 1)


def parse_bulk(body, url_index):
    """Split an NDJSON bulk body into ops; raise EsError for what ES rejects whole."""
    if not body.strip():
        raise EsError(400, "action_request_validation_exception",
                      "Validation Failed: 1: no requests added;")
    if not body.endswith(b"\n"):
        raise EsError(400, "illegal_argument_exception",
                      "The bulk request must be terminated by a newline [\\n]")
    lines = body.split(b"\n")
    ops, i, n = [], 0, len(lines) - 1          # the last element is the empty tail
    while i < n:
        line, lineno = lines[i], i + 1
        i += 1
        if not line or line.isspace():
            continue
        try:
            action_obj = loads_line(line)
        except ValueError as e:
            raise EsError(400, "x_content_parse_exception", f"[{lineno}:1] {e}")
        if not isinstance(action_obj, dict) or len(action_obj) != 1:
            raise EsError(400, "illegal_argument_exception",
                          f"Malformed action/metadata line [{lineno}], expected a single "
                          f"action but found [{line[:64].decode(errors='replace')}]")
        (action, meta), = action_obj.items()
        if action not in ACTIONS:
            raise EsError(400, "illegal_argument_exception",
                          f"Malformed action/metadata line [{lineno}], expected one of "
                          f"[create, delete, index, update] but found [{action}]")
        if not isinstance(meta, dict):
            raise EsError(400, "illegal_argument_exception",
                          f"Malformed action/metadata line [{lineno}], expected START_OBJECT")
        for key in meta:
            if key not in META_KEYS:
                raise EsError(400, "illegal_argument_exception",
                              f"Action/metadata line [{lineno}] contains an unknown "
                              f"parameter [{key}]")
        index = meta.get("_index") or url_index
        doc_id = meta.get("_id")
        if not index:
            raise EsError(400, "action_request_validation_exception",
                          "Validation Failed: 1: index is missing;")
        if action == "delete":
            if doc_id is None:
                raise EsError(400, "action_request_validation_exception",
                              "Validation Failed: 1: id is missing;")
            ops.append((action, index, str(doc_id), None))
            continue
        if i >= n:
            raise EsError(400, "action_request_validation_exception",
                          "Validation Failed: 1: source is missing;")
        ops.append((action, index, None if doc_id is None else str(doc_id), lines[i]))
        i += 1
    if not ops:
        raise EsError(400, "action_request_validation_exception",
                      "Validation Failed: 1: no requests added;")
    return ops


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"           # keep-alive
    server_version = "es-emulator"
    disable_nagle_algorithm = True

    # set per server: server.emu (the Emulator), server.is_control
    @property
    def emu(self):
        return self.server.emu

    def log_message(self, fmt, *args):
        if self.emu.args.verbose:
            super().log_message(fmt, *args)

    def is_control_path(self):
        return self.path.startswith("/_emulator/")

    def refusing(self):
        return (not self.server.is_control and not self.is_control_path()
                and self.emu.state.faults.get("refuse"))

    # ---- auth ----
    def auth_error(self):
        """None if authorized, else the ES-like 401 body."""
        args = self.emu.args
        if not (args.user or args.api_key) or self.is_control_path():
            return None
        got = self.headers.get("Authorization", "")
        scheme, _, cred = got.partition(" ")
        path = urlsplit(self.path).path
        if args.api_key and scheme.lower() == "apikey" and cred.strip() == args.api_key:
            return None
        if args.user and scheme.lower() == "basic":
            try:
                user, _, pw = base64.b64decode(cred.strip()).decode().partition(":")
            except ValueError:
                user, pw = "", None
            if (user, pw) == (args.user, args.password):
                return None
            return error_body(401, "security_exception",
                              f"unable to authenticate user [{user}] for REST request [{path}]")
        return error_body(401, "security_exception",
                          f"missing authentication credentials for REST request [{path}]")

    def handle_expect_100(self):
        # Answer the final status instead of "100 Continue" when the request is doomed.
        if self.refusing():
            self.close_connection = True
            return False
        err = self.auth_error()
        if err is not None:
            self.close_connection = True
            self.send_json(401, err)
            return False
        length = self.headers.get("Content-Length", "0")
        if length.isdigit() and int(length) > self.emu.args.max_content_length:
            self.close_connection = True
            self.send_raw(413, b"")
            return False
        return super().handle_expect_100()

    # ---- body ----
    def read_body(self):
        """Whole request body, de-chunked and gunzipped. Raises EsError."""
        limit = self.emu.args.max_content_length
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts, total = [], 0
            while True:
                line = self.rfile.readline(65537)
                try:
                    size = int(line.split(b";")[0].strip(), 16)
                except ValueError:
                    raise EsError(400, "illegal_argument_exception", "bad chunked encoding")
                if size == 0:
                    break
                total += size
                if total > limit:
                    raise EsError(413, "", "")
                parts.append(self.rfile.read(size))
                self.rfile.readline()                     # CRLF after each chunk
            while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                pass                                      # trailers
            body = b"".join(parts)
        else:
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                raise EsError(400, "illegal_argument_exception", "bad Content-Length")
            if length > limit:
                # Drain the body first (up to 64 MiB): answering while the client still sends
                # makes our close a TCP reset that can destroy the 413 before curl reads it.
                left = length if length <= 64 << 20 else 0
                while left > 0:
                    got = self.rfile.read(min(left, 1 << 20))
                    if not got:
                        break
                    left -= len(got)
                raise EsError(413, "", "")
            body = self.rfile.read(length) if length else b""
        with self.emu.state.lock:
            self.emu.state.stats["bytes"] += len(body)
        enc = self.headers.get("Content-Encoding", "").strip().lower()
        if enc in ("gzip", "x-gzip", "deflate") and body:
            try:
                body = gzip.decompress(body) if enc != "deflate" else zlib.decompress(body)
            except (OSError, EOFError, zlib.error) as e:
                raise EsError(400, "illegal_argument_exception", f"bad {enc} body: {e}")
            with self.emu.state.lock:
                self.emu.state.stats["gzip_requests"] += 1
        elif enc not in ("", "identity"):
            raise EsError(400, "illegal_argument_exception",
                          f"unsupported Content-Encoding [{enc}]")
        return body

    # ---- responses ----
    def send_json(self, status, obj, truncate=False, pretty=False):
        body = (json.dumps(obj, indent=2) if pretty
                else json.dumps(obj, separators=(",", ":"))).encode() + (b"\n" if pretty else b"")
        self.send_raw(status, body, truncate=truncate)

    def send_raw(self, status, body, truncate=False):
        if not self.server.is_control and not self.is_control_path():
            self.emu.state.count_status(status)
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-elastic-product", "Elasticsearch")
        if status == 401:
            self.send_header("WWW-Authenticate", 'Basic realm="security" charset="UTF-8"')
            self.send_header("WWW-Authenticate", "ApiKey")
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command == "HEAD":                   # headers only, with the body's length
            return
        if truncate:                                  # half the body, then drop the connection
            self.wfile.write(body[:len(body) // 2])
            self.close_connection = True
            with self.emu.state.lock:
                self.emu.state.stats["truncated"] += 1
            try:
                socket.socket.shutdown(self.connection, socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self.wfile.write(body)

    # ---- dispatch ----
    def do_GET(self):
        self.dispatch("GET")

    def do_HEAD(self):
        self.dispatch("HEAD")

    def do_POST(self):
        self.dispatch("POST")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def dispatch(self, method):
        if self.refusing():
            self.close_connection = True              # no answer at all
            return
        url = urlsplit(self.path)
        params = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        try:
            try:
                body = self.read_body()
            except EsError as e:
                if e.status == 413:                   # ES answers 413 with no body and closes
                    self.close_connection = True
                    self.send_raw(413, b"")
                    return
                raise
            if url.path.startswith("/_emulator/"):
                self.emu.control(self, method, url.path, params, body)
            elif self.server.is_control:
                self.send_json(404, {"error": "control port: only /_emulator/* is served"})
            else:
                err = self.auth_error()
                if err is not None:
                    self.send_json(401, err)
                else:
                    self.es_api(method, url.path, params, body)
        except EsError as e:
            self.send_json(e.status, error_body(e.status, e.etype, e.reason))
        except OSError:                               # peer gone, or we went down
            self.close_connection = True

    def es_api(self, method, path, params, body):
        parts = [unquote(p) for p in path.split("/") if p]
        pretty = "pretty" in params and params["pretty"] != "false"
        if not parts:
            if method in ("GET", "HEAD"):
                return self.send_json(200, self.emu.cluster_info(), pretty=pretty)
        elif parts[-1] == "_bulk" and len(parts) <= 2:
            if method not in ("POST", "PUT"):
                return self.send_json(405, {"error": f"Incorrect HTTP method for uri [{path}] "
                                            f"and method [{method}], allowed: [POST, PUT]",
                                            "status": 405})
            return self.bulk(parts[0] if len(parts) == 2 else None, params, body, pretty)
        elif parts[-1] == "_count" and len(parts) <= 2 and method in ("GET", "POST"):
            n = self.emu.state.count(parts[0] if len(parts) == 2 else "*")
            return self.send_json(200, {"count": n, "_shards": {"total": 1, "successful": 1,
                                                                "skipped": 0, "failed": 0}})
        elif parts[-1] == "_refresh" and len(parts) <= 2 and method in ("GET", "POST"):
            return self.send_json(200, {"_shards": {"total": 1, "successful": 1, "failed": 0}})
        elif len(parts) == 3 and parts[1] == "_doc" and method in ("GET", "HEAD"):
            st = self.emu.state
            with st.lock:
                cur = st.docs.get(parts[0], {}).get(parts[2])
            if cur is None:
                return self.send_json(404, {"_index": parts[0], "_id": parts[2], "found": False})
            return self.send_json(200, {"_index": parts[0], "_id": parts[2], "_version": cur[0],
                                        "found": True, "_source": cur[1]})
        self.send_json(400, {"error": f"no handler found for uri [{path}] and method [{method}]"})

    def bulk(self, url_index, params, body, pretty):
        start = time.monotonic()
        for p in params:
            if p not in BULK_PARAMS:
                raise EsError(400, "illegal_argument_exception",
                              f"request [{self.path.split('?')[0]}] contains unrecognized "
                              f"parameter: [{p}]")
        ctype = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if ctype not in ("application/json", "application/x-ndjson",
                         "application/vnd.elasticsearch+json",
                         "application/vnd.elasticsearch+x-ndjson"):
            return self.send_json(406, {"error": f"Content-Type header [{ctype}] is not "
                                        "supported", "status": 406})
        status, delay, truncate = self.emu.state.take_request_fault(body)
        if delay:
            time.sleep(delay)
        if status is not None:                        # whole request fails, nothing applied
            with self.emu.state.lock:
                self.emu.state.stats["bulk_requests"] += 1
            etype, reason = error_for_status(status, url_index or "_all")
            return self.send_json(status, error_body(status, etype, reason), truncate=truncate)
        items = self.emu.state.apply_bulk(parse_bulk(body, url_index))
        resp = {"took": int((time.monotonic() - start) * 1000),
                "errors": any("error" in next(iter(it.values())) for it in items),
                "items": items}
        if params.get("filter_path"):
            resp = PathFilter(params["filter_path"]).apply(resp)
        self.send_json(200, resp, truncate=truncate, pretty=pretty)


class EmuServer(ThreadingHTTPServer):
    """One listener. Handshakes TLS in the connection's thread and tracks open connections
    so the emulator can drop them all when it goes down."""
    daemon_threads = True
    request_queue_size = 256

    def __init__(self, addr, emu, is_control, ssl_ctx=None):
        self.emu, self.is_control, self.ssl_ctx = emu, is_control, ssl_ctx
        self.conns, self.conns_lock = set(), threading.Lock()
        super().__init__(addr, Handler)

    def finish_request(self, request, client_address):
        if self.ssl_ctx is not None:
            try:
                request.settimeout(10)
                request = self.ssl_ctx.wrap_socket(request, server_side=True)
                request.settimeout(None)
            except (OSError, ssl.SSLError):
                return
        with self.conns_lock:
            self.conns.add(request)
        try:
            super().finish_request(request, client_address)
        except OSError:                               # includes ssl.SSLError
            pass
        finally:
            with self.conns_lock:
                self.conns.discard(request)
            if self.ssl_ctx is not None:              # the plain socket was detached by wrap
                request.close()

    def drop_connections(self, keep=None):
        with self.conns_lock:
            conns = [c for c in self.conns if c is not keep]
        for c in conns:
            try:
                socket.socket.shutdown(c, socket.SHUT_RDWR)
            except OSError:
                pass


class Emulator:
    """Owns the state, the main listener (which can go down and come back) and the control one."""

    def __init__(self, args):
        self.args = args
        self.state = State(args.fast)
        self.ssl_ctx = None
        if args.cert:
            self.ssl_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ssl_ctx.load_cert_chain(args.cert, args.key)
        self.main = None
        self.port = args.port
        self.updown_lock = threading.Lock()
        self.up_timer = None
        self.was_up = False

    def cluster_info(self):
        return {"name": "es-emulator", "cluster_name": "es-emulator",
                "cluster_uuid": CLUSTER_UUID,
                "version": {"number": ES_VERSION, "build_flavor": "default",
                            "build_type": "docker",
                            "build_hash": "d9ec3fa628c7b0ba3d25692e277ba26814820b20",
                            "build_date": "2023-11-04T10:04:57.184859352Z",
                            "build_snapshot": False, "lucene_version": "9.8.0",
                            "minimum_wire_compatibility_version": "7.17.0",
                            "minimum_index_compatibility_version": "7.0.0"},
                "tagline": "You Know, for Search"}

    @staticmethod
    def serve(server):
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                         daemon=True).start()

    def up(self):
        with self.updown_lock:
            if self.up_timer:
                self.up_timer.cancel()
                self.up_timer = None
            if self.main is None:
                try:
                    self.main = EmuServer((self.args.host, self.port), self, False, self.ssl_ctx)
                except OSError as e:
                    if not self.was_up:                   # at startup: fail loudly
                        raise
                    # coming back up: someone holds the port; try again shortly
                    print(f"es_emulator: rebinding port {self.port}: {e}", file=sys.stderr)
                    self.up_timer = threading.Timer(0.2, self.up)
                    self.up_timer.daemon = True
                    self.up_timer.start()
                    return
                self.port = self.main.server_address[1]   # --port 0: keep the chosen port
                self.was_up = True
                self.serve(self.main)

    def down(self, seconds, keep=None):
        with self.updown_lock:
            if self.up_timer:
                self.up_timer.cancel()
                self.up_timer = None
            if self.main is not None:
                self.main.shutdown()
                self.main.server_close()
                self.main.drop_connections(keep)
                self.main = None
            if seconds > 0:
                self.up_timer = threading.Timer(seconds, self.up)
                self.up_timer.daemon = True
                self.up_timer.start()

    def control(self, h, method, path, params, body):
        """The /_emulator/* endpoints; h is the request handler."""
        st = self.state
        name = path[len("/_emulator/"):].strip("/")
        try:
            data = json.loads(body) if body.strip() else {}
        except ValueError as e:
            return h.send_json(400, {"error": f"bad JSON body: {e}"})
        if name == "stats" and method == "GET":
            with st.lock:
                stats = copy.deepcopy(st.stats)
            return h.send_json(200, stats)
        if name == "faults" and method == "GET":
            with st.lock:
                faults = copy.deepcopy(st.faults)
            return h.send_json(200, faults)
        if name == "faults" and method in ("POST", "PUT"):
            try:
                return h.send_json(200, st.merge_faults(data))
            except (ValueError, TypeError, KeyError) as e:
                return h.send_json(400, {"error": f"bad faults: {e!r}"})
        if name == "faults" and method == "DELETE":
            st.clear_faults()
            return h.send_json(200, {})
        if name == "docs" and method == "GET":
            return h.send_json(200, st.list_docs(params.get("index"),
                                                 params.get("times") not in (None, "", "0")))
        if name == "conflicts" and method == "GET":
            with st.lock:
                return h.send_json(200, copy.deepcopy(st.other_source))
        if name == "count" and method == "GET":
            return h.send_json(200, {"count": st.count(params.get("index"))})
        if name == "reset" and method == "POST":
            st.reset()
            return h.send_json(200, {"acknowledged": True})
        if name == "down" and method == "POST":
            seconds = float(data.get("seconds", 0) or 0)
            if not h.server.is_control:
                h.close_connection = True             # this connection goes down too
            self.down(seconds, keep=h.connection)
            return h.send_json(200, {"acknowledged": True, "down_for": seconds})
        if name == "up" and method == "POST":
            self.up()
            return h.send_json(200, {"acknowledged": True, "port": self.port})
        h.send_json(404, {"error": f"unknown control endpoint [{method} {path}]"})


def write_port_file(path, port):
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(f"{port}\n")
    os.replace(tmp, path)                             # readers never see a partial file


def main():
    ap = argparse.ArgumentParser(description="Elasticsearch bulk-API emulator")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9200, help="ES API port; 0 picks a free one")
    ap.add_argument("--port-file", help="write the chosen ES API port here")
    ap.add_argument("--control-port", type=int, help="port for /_emulator/*; 0 picks one")
    ap.add_argument("--control-port-file", help="write the chosen control port here")
    ap.add_argument("--fast", action="store_true", help="count only; do not parse or store")
    ap.add_argument("--user")
    ap.add_argument("--password")
    ap.add_argument("--api-key", help="require 'Authorization: ApiKey KEY'")
    ap.add_argument("--cert", help="PEM certificate: serve HTTPS (with --key)")
    ap.add_argument("--key", help="PEM private key")
    ap.add_argument("--max-content-length", type=int, default=100 * 1024 * 1024,
                    help="bigger request bodies get 413 (ES default 100mb)")
    ap.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = ap.parse_args()
    if bool(args.cert) != bool(args.key):
        ap.error("--cert and --key go together")
    if args.user and args.password is None:
        ap.error("--user needs --password")

    emu = Emulator(args)
    emu.up()
    control = None
    if args.control_port is not None:
        control = EmuServer((args.host, args.control_port), emu, True)
        emu.serve(control)
        if args.control_port_file:
            write_port_file(args.control_port_file, control.server_address[1])
    if args.port_file:
        write_port_file(args.port_file, emu.port)
    print(f"listening on {emu.port}", flush=True)
    if control:
        print(f"control listening on {control.server_address[1]}", flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(1.0):
        pass
    emu.down(0)
    if control:
        control.shutdown()
        control.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
