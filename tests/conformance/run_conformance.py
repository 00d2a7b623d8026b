#!/usr/bin/env python3
"""MQTT conformance runner: byte-level sequences against a real wharf binary.

Usage: run_conformance.py --wharf PATH [--sequences DIR] [--jobs N] [--filter TEXT]

Starts the nodes the sequences need (see NODES), runs every case on its own
TCP connection(s), prints each failure with what was expected and what
arrived, and ends with the line "N passed, N failed". Exits non-zero on any
failure (an expected failure that passes counts as a failure too, so the
list below stays true).

Sequence files (sequences/*.txt):

    case MQTT-3.3.1-4 QoS 3 in PUBLISH (5.0)     # name: spec rule + what
    node main                                   # which node (NODES)
    send 10 0D        # CONNECT, remaining length 13
         00 04 4D 51 54 54                      # continuation lines are indented
    expect 20 len 00 00 props                   # one whole packet must match
    expect close                                # server closes, nothing else

Steps: `send HEX`, `expect PATTERN`, `expect close`, `expect none MS` (no
bytes for MS ms, connection open), `wait MS`, `close` (client closes),
`signal TERM` (to the case's node: give such a node only that one case).
Prefix `@NAME ` sends the step on another connection of the same case
(opened on first use; the default connection is `@a`). `expect[MS]` sets a
wait other than the default 5 s.

HEX: byte pairs; `HH*N` repeats a byte N times. `#` starts a comment.
PATTERN tokens, matched against one packet (framed by its Remaining Length):
    HH          that byte            ??          any byte
    (HH|HH)     one of these bytes   len         a Variable Byte Integer
    props       a property list: length, then that many bytes
    props[+12,-1F,13=0002]
                ... that must contain id 0x12, must not contain 0x1F, and
                has 0x13 with value bytes 00 02
    *           anything up to the end of the packet (last token only)
"""

import argparse
import concurrent.futures
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

# Cases that fail because the server does not do what the spec requires.
# name -> (spec rule, what the server does[, "intermittent"]). Remove an
# entry once the server is fixed: an expected failure that passes fails the
# suite, except entries marked "intermittent" (a race: they may pass).
EXPECTED_FAILURES = {}

DEFAULT_WAIT = 5.0

PASSWORD_USER = "alice"
PASSWORD = "wonderland"

# Node name -> YAML config text ({dir} is the node's directory). All nodes
# use the local log sink and in-memory sessions (no Kafka, no Redis).
NODES = {
    # Anonymous + password user, ACL with a denied subtree, moderate limits.
    "main": """
mqtt:
  allow_anonymous: true
  password_file: {passwd}
  acl:
    - {{user: "*", action: publish, filter: "denied/#", allow: false}}
    - {{user: "*", action: publish, filter: "#", allow: true}}
  limits:
    receive_maximum: 10
    topic_alias_maximum: 4
    max_keep_alive: 3600
    connect_timeout: 1500ms
""",
    # Small limits: packet size, receive maximum, aliases, keep alive, topics.
    "limits": """
mqtt:
  allow_anonymous: true
  limits:
    max_packet_size: 256
    receive_maximum: 3
    topic_alias_maximum: 2
    max_keep_alive: 2
    max_topic_length: 64
    max_topic_levels: 4
    max_client_id_length: 23
    max_user_properties: 3
    connect_timeout: 1000ms
""",
    # Stopped (SIGTERM) by its one case: drain with a server reference.
    "drain": """
mqtt:
  allow_anonymous: true
  delivery_timeout: 1s
drain:
  duration: 300ms
  server_reference: "other.example:1883"
""",
    # No anonymous access, one route and no default route; 3.1.1 refusals
    # are acknowledged and dropped.
    "strict": """
mqtt:
  allow_anonymous: false
  password_file: {passwd}
  deny_drops_silently: true
  routes:
    - {{filter: "routed/#", kafka_topic: conformance.routed, key: "%c"}}
  default_route: null
""",
}


# ---------------------------------------------------------------------------
# Parsing

class Step:
    def __init__(self, conn, kind, arg, line, wait=DEFAULT_WAIT):
        self.conn, self.kind, self.arg, self.line, self.wait = conn, kind, arg, line, wait


class Case:
    def __init__(self, name, path, line):
        self.name, self.path, self.line = name, path, line
        self.node = None
        self.steps = []


def strip_comment(s):
    i = s.find("#")
    return s if i < 0 else s[:i]


def parse_hex(text, where):
    out = bytearray()
    for tok in text.split():
        m = re.fullmatch(r"([0-9A-Fa-f]{2})(?:\*(\d+))?", tok)
        if not m:
            raise ValueError(f"{where}: bad hex token {tok!r}")
        out += bytes([int(m.group(1), 16)]) * int(m.group(2) or 1)
    return bytes(out)


def parse_pattern(text, where):
    toks = []
    for tok in text.split():
        if re.fullmatch(r"[0-9A-Fa-f]{2}", tok):
            toks.append(("byte", int(tok, 16)))
        elif tok == "??":
            toks.append(("any", None))
        elif tok == "len":
            toks.append(("len", None))
        elif tok == "*":
            toks.append(("rest", None))
        elif re.fullmatch(r"\(([0-9A-Fa-f]{2}\|)+[0-9A-Fa-f]{2}\)", tok):
            toks.append(("alt", {int(x, 16) for x in tok[1:-1].split("|")}))
        elif tok == "props" or tok.startswith("props["):
            cons = []
            if tok != "props":
                if not tok.endswith("]"):
                    raise ValueError(f"{where}: bad props token {tok!r}")
                for c in tok[6:-1].split(","):
                    if c.startswith("+"):
                        cons.append(("has", int(c[1:], 16), None))
                    elif c.startswith("-"):
                        cons.append(("lacks", int(c[1:], 16), None))
                    elif "=" in c:
                        k, v = c.split("=", 1)
                        cons.append(("eq", int(k, 16), bytes.fromhex(v)))
                    else:
                        raise ValueError(f"{where}: bad props constraint {c!r}")
            toks.append(("props", cons))
        else:
            raise ValueError(f"{where}: bad pattern token {tok!r}")
    for i, (k, _) in enumerate(toks):
        if k == "rest" and i != len(toks) - 1:
            raise ValueError(f"{where}: '*' must be the last token")
    return toks


def parse_file(path):
    cases = []
    case = None
    step = None  # last step, for continuation lines
    with open(path, encoding="utf-8") as f:
        for n, raw in enumerate(f, 1):
            where = f"{os.path.basename(path)}:{n}"
            body = strip_comment(raw).rstrip()
            if raw.startswith("case "):
                case = Case(raw[5:].split("  #")[0].strip(), path, n)
                cases.append(case)
                step = None
                continue
            if not body.strip():
                continue
            if body[0] in " \t":  # continuation of the last send/expect
                if step is None or step.kind not in ("send", "expect"):
                    raise ValueError(f"{where}: continuation line without send/expect")
                step.arg += " " + body.strip()
                continue
            if case is None:
                raise ValueError(f"{where}: step before the first case")
            words = body.split(None, 1)
            conn = "a"
            if words[0].startswith("@"):
                conn = words[0][1:]
                words = words[1].split(None, 1)
            verb = words[0]
            rest = words[1] if len(words) > 1 else ""
            wait = DEFAULT_WAIT
            m = re.fullmatch(r"expect\[(\d+)\]", verb)
            if m:
                verb, wait = "expect", int(m.group(1)) / 1000.0
            if verb == "node":
                case.node = rest.strip()
                step = None
            elif verb in ("send", "expect"):
                step = Step(conn, verb, rest, where, wait)
                case.steps.append(step)
            elif verb in ("wait", "close", "signal"):
                step = Step(conn, verb, rest.strip(), where)
                case.steps.append(step)
            else:
                raise ValueError(f"{where}: unknown step {verb!r}")
    # Finalise: parse hex / patterns now so syntax errors surface at start.
    for c in cases:
        if c.node not in NODES:
            raise ValueError(f"{c.path}:{c.line}: case {c.name!r} needs unknown node {c.node!r}")
        for s in c.steps:
            if s.kind == "send":
                s.data = parse_hex(s.arg, s.line)
            elif s.kind == "expect":
                a = s.arg.strip()
                if a == "close":
                    s.kind = "expect_close"
                elif a.startswith("none"):
                    s.kind = "expect_none"
                    s.wait = int(a.split()[1]) / 1000.0
                else:
                    s.pattern = parse_pattern(a, s.line)
    return cases


# ---------------------------------------------------------------------------
# Matching

PROP_TYPES = {
    0x01: "byte", 0x02: "u32", 0x03: "str", 0x08: "str", 0x09: "bin", 0x0B: "vbi",
    0x11: "u32", 0x12: "str", 0x13: "u16", 0x15: "str", 0x16: "bin", 0x17: "byte",
    0x18: "u32", 0x19: "byte", 0x1A: "str", 0x1C: "str", 0x1F: "str", 0x21: "u16",
    0x22: "u16", 0x23: "u16", 0x24: "byte", 0x25: "byte", 0x26: "pair", 0x27: "u32",
    0x28: "byte", 0x29: "byte", 0x2A: "byte",
}


def read_vbi(buf, i):
    v, shift = 0, 0
    for k in range(4):
        if i >= len(buf):
            return None, i
        b = buf[i]
        i += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return v, i
    return None, i


def parse_props(data):
    """Property list bytes -> {id: [value bytes...]}, or an error string."""
    out = {}
    i = 0
    while i < len(data):
        pid, i = read_vbi(data, i)
        if pid is None or pid not in PROP_TYPES:
            return f"unknown property id {pid}"
        t = PROP_TYPES[pid]
        start = i
        if t == "byte":
            i += 1
        elif t == "u16":
            i += 2
        elif t == "u32":
            i += 4
        elif t == "vbi":
            _, i = read_vbi(data, i)
        elif t in ("str", "bin"):
            if i + 2 > len(data):
                return "truncated property"
            i += 2 + int.from_bytes(data[i:i + 2], "big")
        elif t == "pair":
            for _ in range(2):
                if i + 2 > len(data):
                    return "truncated property"
                i += 2 + int.from_bytes(data[i:i + 2], "big")
        if i > len(data):
            return "truncated property"
        out.setdefault(pid, []).append(bytes(data[start:i]))
    return out


def match(pattern, pkt):
    """None if `pkt` matches, else a description of the first mismatch."""
    i = 0
    for kind, arg in pattern:
        if kind == "rest":
            return None
        if kind in ("byte", "any", "alt"):
            if i >= len(pkt):
                return f"packet ends at byte {i}"
            b = pkt[i]
            if kind == "byte" and b != arg:
                return f"byte {i}: expected {arg:02X}, got {b:02X}"
            if kind == "alt" and b not in arg:
                return f"byte {i}: expected one of {sorted('%02X' % x for x in arg)}, got {b:02X}"
            i += 1
        elif kind == "len":
            v, i = read_vbi(pkt, i)
            if v is None:
                return "bad variable byte integer"
        elif kind == "props":
            n, j = read_vbi(pkt, i)
            if n is None or j + n > len(pkt):
                return f"byte {i}: bad property length"
            props = parse_props(pkt[j:j + n])
            if isinstance(props, str):
                return f"byte {i}: {props}"
            for c, pid, val in arg:
                if c == "has" and pid not in props:
                    return f"property {pid:02X} missing"
                if c == "lacks" and pid in props:
                    return f"property {pid:02X} present"
                if c == "eq" and props.get(pid) != [val]:
                    got = " ".join(x.hex().upper() for x in props.get(pid, [])) or "absent"
                    return f"property {pid:02X}: expected {val.hex().upper()}, got {got}"
            i = j + n
    if i != len(pkt):
        return f"{len(pkt) - i} unexpected trailing byte(s)"
    return None


def fmt(b):
    return " ".join(f"{x:02X}" for x in b) if b else "(nothing)"


def pattern_text(s):
    return " ".join(s.arg.split())


# ---------------------------------------------------------------------------
# Running

class Conn:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=DEFAULT_WAIT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.eof = False
        self.reset = False

    def fill(self, deadline):
        """Reads more bytes; False on timeout, True otherwise (eof sets flag)."""
        if self.eof:
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            self.eof = self.reset = True
            return True
        if not data:
            self.eof = True
        self.buf += data
        return True

    def packet(self, wait):
        """One whole packet, or (None, reason)."""
        deadline = time.monotonic() + wait
        while True:
            if len(self.buf) >= 2:
                n, j = read_vbi(self.buf, 1)
                if n is not None and len(self.buf) >= j + n:
                    pkt = bytes(self.buf[:j + n])
                    del self.buf[:j + n]
                    return pkt, None
                if n is None and j - 1 >= 4:
                    pkt = bytes(self.buf)
                    self.buf.clear()
                    return pkt, "invalid remaining length"
            if self.eof:
                partial = bytes(self.buf)
                self.buf.clear()
                why = "connection reset" if self.reset else "connection closed"
                return None, f"{why}" + (f" after partial bytes {fmt(partial)}" if partial else "")
            if not self.fill(deadline):
                return None, f"nothing within {wait * 1000:.0f} ms" + (
                    f" (partial bytes {fmt(self.buf)})" if self.buf else "")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def run_case(case, ports, procs):
    conns = {}
    try:
        for s in case.steps:
            c = conns.get(s.conn)
            if c is None and s.kind not in ("wait", "signal"):
                c = conns[s.conn] = Conn(ports[case.node])
            where = f"{s.line} @{s.conn}"
            if s.kind == "send":
                try:
                    c.sock.sendall(s.data)
                except OSError as e:
                    # The server may already have closed (e.g. after an
                    # earlier error): the following expect decides.
                    if not isinstance(e, (BrokenPipeError, ConnectionResetError)):
                        raise
            elif s.kind == "wait":
                time.sleep(int(s.arg) / 1000.0)
            elif s.kind == "close":
                c.close()
            elif s.kind == "signal":  # e.g. `signal TERM`: to the case's node
                procs[case.node][0].send_signal(getattr(signal, "SIG" + s.arg))
            elif s.kind == "expect":
                pkt, why = c.packet(s.wait)
                if pkt is None:
                    return f"{where}: expected {pattern_text(s)}\n    got: {why}"
                bad = match(s.pattern, pkt) if why is None else why
                if bad:
                    return f"{where}: expected {pattern_text(s)}\n    got: {fmt(pkt)} ({bad})"
            elif s.kind == "expect_close":
                deadline = time.monotonic() + s.wait
                while not c.eof and c.fill(deadline):
                    pass
                if c.buf:
                    return f"{where}: expected close\n    got: {fmt(c.buf)}" + (
                        " then close" if c.eof else "")
                if not c.eof:
                    return f"{where}: expected close\n    got: connection still open after {s.wait * 1000:.0f} ms"
            elif s.kind == "expect_none":
                deadline = time.monotonic() + s.wait
                while not c.eof and c.fill(deadline):
                    if c.buf:
                        break
                if c.buf or c.eof:
                    return f"{where}: expected nothing for {s.wait * 1000:.0f} ms\n    got: {fmt(c.buf)}" + (
                        " then close" if c.eof else "")
        return None
    except Exception as e:  # noqa: BLE001 - report, do not crash the run
        return f"runner error: {type(e).__name__}: {e}"
    finally:
        for c in conns.values():
            c.close()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_status(port, path):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
            data = s.recv(64)
        m = re.match(rb"HTTP/1\.[01] (\d{3})", data)
        return int(m.group(1)) if m else None
    except OSError:
        return None


def start_nodes(wharf, names, work):
    passwd = os.path.join(work, "passwd")
    r = subprocess.run([wharf, "passwd", passwd, PASSWORD_USER], input=PASSWORD + "\n",
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"wharf passwd failed: {r.stderr.strip()}")
    procs, ports = {}, {}
    for name in names:
        d = os.path.join(work, name)
        os.makedirs(os.path.join(d, "data"))
        cfg = os.path.join(d, "wharf.yaml")
        with open(cfg, "w", encoding="utf-8") as f:
            f.write(NODES[name].format(passwd=passwd, dir=d))
        mqtt, admin = free_port(), free_port()
        log = open(os.path.join(d, "wharf.log"), "w", encoding="utf-8")
        p = subprocess.Popen(
            [wharf, "--config", cfg, "--node-id", f"conf-{name}", "--data-dir", os.path.join(d, "data"),
             "--admin-listen", f"127.0.0.1:{admin}", "--mqtt-listen", f"127.0.0.1:{mqtt}",
             "--http-listen", "", "--log-level", "debug"],
            stdout=log, stderr=subprocess.STDOUT)
        procs[name] = (p, log, admin)
        ports[name] = mqtt
    deadline = time.monotonic() + 30
    for name, (p, log, admin) in procs.items():
        while http_status(admin, "/readyz") != 200:
            if p.poll() is not None:
                raise RuntimeError(f"node {name} exited with {p.returncode}; log: "
                                   f"{os.path.join(work, name, 'wharf.log')}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"node {name} not ready within 30 s")
            time.sleep(0.05)
    return procs, ports


def stop_nodes(procs):
    for p, log, _ in procs.values():
        if p.poll() is None:
            p.terminate()
    for p, log, _ in procs.values():
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        log.close()


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--wharf", required=True, help="path to the wharf binary")
    default_sequences = os.path.join(here, "sequences")
    ap.add_argument("--sequences", default=default_sequences)
    ap.add_argument("--jobs", type=int, default=32)
    ap.add_argument("--filter", default="", help="run only cases whose name contains this")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (node logs)")
    args = ap.parse_args()

    cases = []
    for fn in sorted(os.listdir(args.sequences)):
        if fn.endswith(".txt"):
            cases += parse_file(os.path.join(args.sequences, fn))
    names = [c.name for c in cases]
    dups = {n for n in names if names.count(n) > 1}
    if dups:
        print(f"duplicate case names: {sorted(dups)}")
        return 2
    unknown = set(EXPECTED_FAILURES) - set(names)
    if unknown and args.sequences == default_sequences:
        print(f"expected_failures names no case: {sorted(unknown)}")
        return 2
    if args.filter:
        cases = [c for c in cases if args.filter in c.name]

    started = time.monotonic()
    work = tempfile.mkdtemp(prefix="wharf-conformance-")
    procs = {}
    try:
        procs, ports = start_nodes(args.wharf, sorted({c.node for c in cases}), work)
        results = {}
        lock = threading.Lock()

        def one(case):
            r = run_case(case, ports, procs)
            with lock:
                results[case.name] = r

        with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as ex:
            list(ex.map(one, cases))
        for name, (p, _, _) in procs.items():
            if p.poll() is not None and not any(
                    s.kind == "signal" for c in cases if c.node == name for s in c.steps):
                print(f"node {name} died during the run (exit {p.returncode})")
                results["<node alive>"] = "node died"
    finally:
        stop_nodes(procs)

    passed = failed = xfailed = 0
    for case in cases:
        r = results.get(case.name, "not run")
        xf = EXPECTED_FAILURES.get(case.name)
        if r is None and xf is None:
            passed += 1
        elif r is not None and xf is not None:
            xfailed += 1
        elif r is None and len(xf) > 2 and xf[2] == "intermittent":
            passed += 1
        elif r is None:
            failed += 1
            print(f"XPASS {case.name} ({os.path.basename(case.path)}:{case.line}): listed in "
                  f"EXPECTED_FAILURES ({xf[0]}) but passes; remove it from the list")
        else:
            failed += 1
            print(f"FAIL {case.name} ({os.path.basename(case.path)}:{case.line}, node {case.node})\n    {r}")
    if "<node alive>" in results:
        failed += 1
    elapsed = time.monotonic() - started
    if xfailed:
        print(f"{xfailed} expected failures (server bugs listed in EXPECTED_FAILURES):")
        for case in cases:
            if case.name in EXPECTED_FAILURES and results.get(case.name) is not None:
                rule, what = EXPECTED_FAILURES[case.name][:2]
                print(f"  XFAIL {case.name}: {rule}: {what}")
    print(f"{len(cases)} cases in {elapsed:.1f} s; node logs in {work}" if args.keep or failed
          else f"{len(cases)} cases in {elapsed:.1f} s")
    if not (args.keep or failed):
        shutil.rmtree(work, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
