#!/usr/bin/env python3
"""Writes tests/conformance/sequences/*.txt: the MQTT conformance sequences.

The sequences are data (hex with a comment per field); this script is how
they are made, systematically (every reserved flag value of every packet
type, every property where it is not allowed, ...). Edit here, re-run
`python3 gen_sequences.py`, commit both. Expectations follow the MQTT 3.1.1
and 5.0 specifications and, where the spec leaves a choice, docs/mqtt.md.
"""

import os

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "sequences")

USER, PASSWORD = "alice", "wonderland"

# ---------------------------------------------------------------------------
# Byte fields: lists of (bytes, comment)


def vbi(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def u8(v, c=""):
    return [(bytes([v]), c)]


def u16(v, c=""):
    return [(v.to_bytes(2, "big"), c)]


def u32(v, c=""):
    return [(v.to_bytes(4, "big"), c)]


def raw(b, c=""):
    return [(bytes(b), c)]


def show(b):
    try:
        t = b.decode("utf-8")
        if t.isprintable():
            return f'"{t}"'
    except UnicodeDecodeError:
        pass
    return "bytes " + b.hex(" ").upper()


def s(text, c=None):
    b = text.encode() if isinstance(text, str) else bytes(text)
    return [(len(b).to_bytes(2, "big") + b, c if c is not None else show(b))]


def size(fields):
    return sum(len(b) for b, _ in fields)


PROPS = {  # id: (name, type, a valid value's bytes)
    0x01: ("Payload Format Indicator", "byte", b"\x00"),
    0x02: ("Message Expiry Interval", "u32", b"\x00\x00\x00\x3c"),
    0x03: ("Content Type", "str", b"\x00\x01t"),
    0x08: ("Response Topic", "str", b"\x00\x01r"),
    0x09: ("Correlation Data", "bin", b"\x00\x01\x07"),
    0x0B: ("Subscription Identifier", "vbi", b"\x01"),
    0x11: ("Session Expiry Interval", "u32", b"\x00\x00\x00\x00"),
    0x12: ("Assigned Client Identifier", "str", b"\x00\x01i"),
    0x13: ("Server Keep Alive", "u16", b"\x00\x0a"),
    0x15: ("Authentication Method", "str", b"\x00\x01m"),
    0x16: ("Authentication Data", "bin", b"\x00\x01\x01"),
    0x17: ("Request Problem Information", "byte", b"\x01"),
    0x18: ("Will Delay Interval", "u32", b"\x00\x00\x00\x00"),
    0x19: ("Request Response Information", "byte", b"\x00"),
    0x1A: ("Response Information", "str", b"\x00\x01x"),
    0x1C: ("Server Reference", "str", b"\x00\x01h"),
    0x1F: ("Reason String", "str", b"\x00\x01w"),
    0x21: ("Receive Maximum", "u16", b"\x00\x0a"),
    0x22: ("Topic Alias Maximum", "u16", b"\x00\x00"),
    0x23: ("Topic Alias", "u16", b"\x00\x01"),
    0x24: ("Maximum QoS", "byte", b"\x01"),
    0x25: ("Retain Available", "byte", b"\x01"),
    0x26: ("User Property", "pair", b"\x00\x01k\x00\x01v"),
    0x27: ("Maximum Packet Size", "u32", b"\x00\x00\x10\x00"),
    0x28: ("Wildcard Subscription Available", "byte", b"\x01"),
    0x29: ("Subscription Identifier Available", "byte", b"\x01"),
    0x2A: ("Shared Subscription Available", "byte", b"\x01"),
}

# Where the 5.0 spec (2.2.2.2) allows each property in client-sent packets.
ALLOWED = {
    "CONNECT": {0x11, 0x15, 0x16, 0x17, 0x19, 0x21, 0x22, 0x26, 0x27},
    "Will": {0x01, 0x02, 0x03, 0x08, 0x09, 0x18, 0x26},
    "PUBLISH": {0x01, 0x02, 0x03, 0x08, 0x09, 0x0B, 0x23, 0x26},
    "PUBACK": {0x1F, 0x26},
    "PUBREC": {0x1F, 0x26},
    "PUBREL": {0x1F, 0x26},
    "PUBCOMP": {0x1F, 0x26},
    "SUBSCRIBE": {0x0B, 0x26},
    "UNSUBSCRIBE": {0x26},
    "DISCONNECT": {0x11, 0x1C, 0x1F, 0x26},
    "AUTH": {0x15, 0x16, 0x1F, 0x26},
}


def prop(pid, value=None, c=None):
    name = PROPS[pid][0] if pid in PROPS else f"unknown property 0x{pid:02X}"
    v = PROPS[pid][2] if value is None else value
    return [(vbi(pid) + v, c or f"{name} ({pid:02X})")]


def props(*items):
    body = [f for it in items for f in it]
    n = size(body)
    return [(vbi(n), f"properties, length {n}")] + body


def pkt(first, name, *fields, length=None):
    body = [f for fl in fields for f in fl]
    n = size(body) if length is None else length
    return [(bytes([first]) + vbi(n), f"{name}, remaining length {n}")] + body


# ---------------------------------------------------------------------------
# Packets


def connect(v, cid, clean=True, ka=60, cprops=None, will=None, user=None, pw=None,
            flags=None, name="MQTT", level=None, extra=None):
    level = level if level is not None else (5 if v == 5 else 4)
    f = 0x02 if clean else 0
    if will:
        f |= 0x04 | (will.get("qos", 0) << 3) | (0x20 if will.get("retain") else 0)
    if pw is not None:
        f |= 0x40
    if user is not None:
        f |= 0x80
    if flags is not None:
        f = flags
    fields = [s(name, f'protocol name "{name}"'), u8(level, f"protocol level {level}"),
              u8(f, f"connect flags {f:08b}"), u16(ka, f"keep alive {ka}")]
    if v == 5:
        fields.append(props(*(cprops or [])))
    fields.append(s(cid, f'client id "{cid}"' if isinstance(cid, str) else None))
    if will:
        if v == 5:
            fields.append(props(*will.get("props", [])))
        fields.append(s(will.get("topic", "will/t"), None))
        fields.append(s(will.get("payload", b"bye"), None))
    if user is not None:
        fields.append(s(user, None))
    if pw is not None:
        fields.append(s(pw, None))
    if extra:
        fields.append(extra)
    return pkt(0x10, f"CONNECT {'5.0' if v == 5 else '3.1.1'}", *fields)


def publish(v, topic, payload=b"hi", qos=0, pid=1, pprops=None, flags=None, dup=False, retain=False):
    first = 0x30 | (qos << 1) | (0x08 if dup else 0) | (0x01 if retain else 0)
    if flags is not None:
        first = 0x30 | flags
    fields = [s(topic, f'topic "{topic}"' if isinstance(topic, str) else "topic " + show(topic))]
    if ((first >> 1) & 3) > 0:
        fields.append(u16(pid, f"packet id {pid}"))
    if v == 5:
        fields.append(props(*(pprops or [])))
    if payload:
        fields.append(raw(payload.encode() if isinstance(payload, str) else payload, "payload"))
    return pkt(first, f"PUBLISH QoS {(first >> 1) & 3}" + (" DUP" if first & 8 else ""), *fields)


def ack(first, name, pid, v=3, rc=None, aprops=None):
    fields = [u16(pid, f"packet id {pid}")]
    if rc is not None:
        fields.append(u8(rc, f"reason code {rc:02X}"))
    if aprops is not None:
        fields.append(props(*aprops))
    return pkt(first, name, *fields)


def puback(pid, **kw):
    return ack(0x40, "PUBACK", pid, **kw)


def pubrec(pid, **kw):
    return ack(0x50, "PUBREC", pid, **kw)


def pubrel(pid, **kw):
    return ack(0x62, "PUBREL", pid, **kw)


def pubcomp(pid, **kw):
    return ack(0x70, "PUBCOMP", pid, **kw)


def subscribe(v, pid, filters, sprops=None, first=0x82):
    fields = [u16(pid, f"packet id {pid}")]
    if v == 5:
        fields.append(props(*(sprops or [])))
    for flt, opts in filters:
        fields.append(s(flt, None if isinstance(flt, str) else "filter " + show(flt)))
        fields.append(u8(opts, f"options {opts:08b}"))
    return pkt(first, "SUBSCRIBE", *fields)


def unsubscribe(v, pid, filters, uprops=None, first=0xA2):
    fields = [u16(pid, f"packet id {pid}")]
    if v == 5:
        fields.append(props(*(uprops or [])))
    for flt in filters:
        fields.append(s(flt, None if isinstance(flt, str) else "filter " + show(flt)))
    return pkt(first, "UNSUBSCRIBE", *fields)


PINGREQ = pkt(0xC0, "PINGREQ")


def disconnect(v, rc=None, dprops=None):
    fields = []
    if rc is not None:
        fields.append(u8(rc, f"reason code {rc:02X}"))
    if dprops is not None:
        fields.append(props(*dprops))
    return pkt(0xE0, "DISCONNECT", *fields)


def auth(rc=None, aprops=None, first=0xF0):
    fields = []
    if rc is not None:
        fields.append(u8(rc, f"reason code {rc:02X}"))
    if aprops is not None:
        fields.append(props(*aprops))
    return pkt(first, "AUTH", *fields)


# ---------------------------------------------------------------------------
# Cases

FILES = {}
_cid = [0]


def new_cid():
    _cid[0] += 1
    return f"cf{_cid[0]:04d}"


def vname(v):
    return "5.0" if v == 5 else "3.1.1"


class Case:
    def __init__(self, file, name, node="main"):
        self.lines = [f"case {name}", f"node {node}"]
        FILES.setdefault(file, []).append(self)
        self.name = name

    def _pre(self, conn):
        return "" if conn is None else f"@{conn} "

    def send(self, fields, conn=None):
        first = True
        for b, c in fields:
            h = b.hex(" ").upper()
            if len(b) > 24 and len(set(b)) == 1:
                h = f"{b[0]:02X}*{len(b)}"
            lead = self._pre(conn) + "send " if first else " " * len(self._pre(conn) + "send ")
            self.lines.append(f"{lead}{h:<24} # {c}" if c else f"{lead}{h}")
            first = False
        return self

    def expect(self, pattern, comment="", conn=None, wait=None):
        verb = "expect" if wait is None else f"expect[{wait}]"
        line = f"{self._pre(conn)}{verb} {pattern}"
        self.lines.append(f"{line:<40} # {comment}" if comment else line)
        return self

    def closed(self, conn=None, wait=None):
        return self.expect("close", "", conn, wait)

    def wait(self, ms):
        self.lines.append(f"wait {ms}")
        return self

    def client_close(self, conn=None):
        self.lines.append(f"{self._pre(conn)}close")
        return self

    def ping(self, conn=None):
        """The connection is still open and in sync."""
        self.send(PINGREQ, conn)
        return self.expect("D0 00", "PINGRESP", conn)

    def connected(self, v, conn=None, cid=None, **kw):
        cid = cid or new_cid()
        self.send(connect(v, cid, **kw), conn)
        if v == 5:
            self.expect("20 len 00 00 props", "CONNACK success", conn)
        else:
            self.expect("20 02 00 00", "CONNACK accepted", conn)
        return cid

    def error(self, v, rc, conn=None, wait=None):
        """After CONNACK: 5.0 DISCONNECT rc then close; 3.1.1 close."""
        if v == 5:
            self.expect(f"E0 len {rc} *", "DISCONNECT " + rc, conn, wait)
        return self.closed(conn, wait)

    def refused(self, v, rc5, rc3=None, conn=None):
        """CONNECT refused: 5.0 CONNACK rc5; 3.1.1 CONNACK rc3 (or none); close."""
        if v == 5:
            self.expect(f"20 len 00 {rc5} *", "CONNACK " + rc5, conn)
        elif rc3 is not None:
            self.expect(f"20 02 00 {rc3}", "CONNACK return code " + rc3, conn)
        return self.closed(conn)


def rule(v, r3, r5):
    return r5 if v == 5 else r3


# Valid bodies per packet type (after the fixed header), per version.
def body_for(t, v):
    five = v == 5
    return {
        1: None,
        2: [u8(0, "acknowledge flags"), u8(0, "return code")] + ([props()] if five else []),
        4: [u16(1, "packet id 1")],
        5: [u16(1, "packet id 1")],
        6: [u16(1, "packet id 1")],
        7: [u16(1, "packet id 1")],
        8: [u16(1, "packet id 1")] + ([props()] if five else []) + [s("a"), u8(0, "options")],
        9: [u16(1, "packet id 1")] + ([props()] if five else []) + [u8(0, "return code")],
        10: [u16(1, "packet id 1")] + ([props()] if five else []) + [s("a")],
        11: [u16(1, "packet id 1")] + ([props()] if five else []),
        12: [], 13: [], 14: [], 15: [],
    }[t]


TYPE_NAMES = {0: "reserved type 0", 1: "CONNECT", 2: "CONNACK", 3: "PUBLISH", 4: "PUBACK",
              5: "PUBREC", 6: "PUBREL", 7: "PUBCOMP", 8: "SUBSCRIBE", 9: "SUBACK",
              10: "UNSUBSCRIBE", 11: "UNSUBACK", 12: "PINGREQ", 13: "PINGRESP",
              14: "DISCONNECT", 15: "AUTH"}
REQUIRED_FLAGS = {6: 2, 8: 2, 10: 2}


def gen_fixed_header():
    f = "02_fixed_header.txt"
    for v in (3, 5):
        r = rule(v, "MQTT-2.2.2-2", "MQTT-2.1.3-1")
        for t in range(1, 16):
            if t == 3 or (t == 15 and v == 3):
                continue
            need = REQUIRED_FLAGS.get(t, 0)
            for fl in range(16):
                if fl == need:
                    continue
                c = Case(f, f"{r} reserved flags {fl:X} in {TYPE_NAMES[t]} ({vname(v)})")
                first = (t << 4) | fl
                if t == 1:
                    # As the first packet the version is unknown: close only.
                    conn = connect(v, new_cid())
                    conn[0] = (bytes([first]) + conn[0][0][1:], conn[0][1].replace("CONNECT", f"CONNECT flags {fl:X}"))
                    c.send(conn).closed()
                    continue
                c.connected(v)
                c.send(pkt(first, f"{TYPE_NAMES[t]} with flags {fl:X}", *body_for(t, v)))
                c.error(v, "81")
        # PUBLISH: flags carry DUP/QoS/RETAIN; QoS 3 and DUP on QoS 0 are invalid.
        for fl in (0x6, 0x7, 0xE, 0xF):
            c = Case(f, f"{rule(v, 'MQTT-3.3.1-4', 'MQTT-3.3.1-4')} QoS 3 in PUBLISH flags {fl:X} ({vname(v)})")
            c.connected(v)
            c.send(publish(v, "q/3", flags=fl, pid=1))
            c.error(v, "81")
        for fl in (0x8, 0x9):
            c = Case(f, f"MQTT-3.3.1-2 DUP 1 on QoS 0 PUBLISH flags {fl:X} ({vname(v)})")
            c.connected(v)
            c.send(publish(v, "dup/0", flags=fl))
            c.error(v, "81")
        # Valid PUBLISH flag combinations are accepted.
        for fl in (0x0, 0x1, 0x2, 0x3, 0x4, 0x5, 0xA, 0xB, 0xC, 0xD):
            c = Case(f, f"MQTT-3.3.1 valid PUBLISH flags {fl:X} accepted ({vname(v)})")
            c.connected(v)
            q = (fl >> 1) & 3
            c.send(publish(v, "flags/ok", flags=fl, pid=7))
            if q == 1:
                c.expect("40 02 00 07", "PUBACK 7")
            elif q == 2:
                c.expect("50 02 00 07", "PUBREC 7")
                c.send(pubrel(7)).expect("70 02 00 07", "PUBCOMP 7")
            c.ping()
        # Reserved packet type 0; and 15 in 3.1.1 (AUTH exists only in 5.0).
        for fl in (0x0, 0xF):
            c = Case(f, f"MQTT-2.1.2 reserved packet type 0 flags {fl:X} ({vname(v)})")
            c.connected(v)
            c.send(pkt(fl, "reserved packet type 0"))
            c.error(v, "(81|82)")
        if v == 3:
            for fl in (0x0, 0x2):
                c = Case(f, f"MQTT-2.2.1 reserved packet type 15 flags {fl:X} (3.1.1)")
                c.connected(v)
                c.send(pkt(0xF0 | fl, "reserved type 15"))
                c.closed()
        # Server-to-client packet types sent by the client, correct flags.
        for t in (2, 9, 11, 13) + ((15,) if v == 5 else ()):
            what = "AUTH without Authentication Method" if t == 15 else f"{TYPE_NAMES[t]} from a client"
            sec = {2: "3.2", 9: "3.9", 11: "3.11", 13: "3.13", 15: "4.12"}[t]
            c = Case(f, f"MQTT-{sec} {what} is a protocol error ({vname(v)})")
            c.connected(v)
            c.send(pkt(t << 4, TYPE_NAMES[t], *body_for(t, v)))
            c.error(v, "82")
        # Before CONNECT: any other packet closes without a reply.
        for t in (2, 3, 4, 6, 8, 10, 12, 14) + ((15,) if v == 5 else ()):
            c = Case(f, f"MQTT-3.1.0-1 {TYPE_NAMES[t]} before CONNECT closes ({vname(v)})")
            first = (t << 4) | REQUIRED_FLAGS.get(t, 0)
            body = [s("x/y")] if t == 3 else body_for(t, v)
            c.send(pkt(first, TYPE_NAMES[t], *body)).closed()


def gen_lengths():
    f = "03_lengths.txt"
    for v in (3, 5):
        r = rule(v, "MQTT-2.2.3", "MQTT-1.5.5-1")
        c = Case(f, f"{r} Remaining Length of five bytes ({vname(v)})")
        c.connected(v)
        c.send(raw(b"\x30\xff\xff\xff\xff\x7f", "PUBLISH, Remaining Length continues past 4 bytes")).error(v, "81")
        c = Case(f, f"{r} Remaining Length of five bytes in PINGREQ ({vname(v)})")
        c.connected(v)
        c.send(raw(b"\xc0\x80\x80\x80\x80\x01", "PINGREQ, 5-byte Remaining Length")).error(v, "81")
        c = Case(f, f"{r} Remaining Length of five bytes as first packet ({vname(v)})")
        c.send(raw(b"\x10\xff\xff\xff\xff\x7f", "CONNECT, 5-byte Remaining Length")).closed()
        for name, b in (("PINGREQ", b"\xc0\x01\x00"), ("DISCONNECT 3.1.1-form", b"\xe0\x01\x00")):
            if v == 5 and name.startswith("DISCONNECT"):
                continue
            c = Case(f, f"{rule(v, 'MQTT-3.12.1', 'MQTT-3.12.1')} {name} with a body is malformed ({vname(v)})")
            c.connected(v)
            c.send(raw(b, f"{name} with Remaining Length 1")).error(v, "81")
        c = Case(f, f"MQTT-3.4.2 PUBACK with Remaining Length 1 is malformed ({vname(v)})")
        c.connected(v)
        c.send(raw(b"\x40\x01\x00", "PUBACK, 1 byte: no room for the packet id")).error(v, "81")
        c = Case(f, f"MQTT-3.6.2 PUBREL with Remaining Length 0 is malformed ({vname(v)})")
        c.connected(v)
        c.send(raw(b"\x62\x00", "PUBREL without packet id")).error(v, "81")
        c = Case(f, f"MQTT-3.3.2 PUBLISH topic length beyond the packet ({vname(v)})")
        c.connected(v)
        c.send(pkt(0x30, "PUBLISH QoS 0", raw(b"\x00\x05", "topic length 5"), raw(b"ab", "only 2 bytes")))
        c.error(v, "81")
        c = Case(f, f"MQTT-3.3.2 QoS 1 PUBLISH without packet id ({vname(v)})")
        c.connected(v)
        c.send(pkt(0x32, "PUBLISH QoS 1", s("ab"), raw(b"\x00", "one byte of packet id")))
        c.error(v, "81")
        c = Case(f, f"MQTT-3.8.3 SUBSCRIBE filter without options byte ({vname(v)})")
        c.connected(v)
        c.send(pkt(0x82, "SUBSCRIBE", u16(1, "packet id 1"), *([props()] if v == 5 else []), s("a/b")))
        c.error(v, "81")
        c = Case(f, f"MQTT-3.8.3 SUBSCRIBE filter length beyond the packet ({vname(v)})")
        c.connected(v)
        c.send(pkt(0x82, "SUBSCRIBE", u16(1, "packet id 1"), *([props()] if v == 5 else []),
                   raw(b"\x00\x09ab", "filter length 9, 2 bytes"), u8(0, "options")))
        c.error(v, "81")
        c = Case(f, f"MQTT-3.10.3 UNSUBSCRIBE filter length beyond the packet ({vname(v)})")
        c.connected(v)
        c.send(pkt(0xA2, "UNSUBSCRIBE", u16(1, "packet id 1"), *([props()] if v == 5 else []),
                   raw(b"\x00\x09ab", "filter length 9, 2 bytes")))
        c.error(v, "81")
        # CONNECT truncated / with extra bytes.
        full = connect(v, new_cid())
        body = b"".join(b for b, _ in full[1:])
        c = Case(f, f"MQTT-3.1.3 CONNECT missing the client id ({vname(v)})")
        trunc = body[: -(2 + 6)]
        c.send(pkt(0x10, "CONNECT", raw(trunc, "CONNECT header without client id")))
        c.refused(v, "81")
        c = Case(f, f"MQTT-3.1.3 CONNECT with bytes after the payload ({vname(v)})")
        c.send(pkt(0x10, "CONNECT", raw(body, "a whole CONNECT body"), raw(b"\x00", "extra byte")))
        c.refused(v, "81")
        c = Case(f, f"MQTT-3.1.2 CONNECT cut inside the protocol name ({vname(v)})")
        c.send(pkt(0x10, "CONNECT", raw(b"\x00\x04MQ", "protocol name length 4, 2 bytes"))).closed()
        c = Case(f, f"MQTT-3.1.2 CONNECT cut before the keep alive ({vname(v)})")
        c.send(pkt(0x10, "CONNECT", s("MQTT"), u8(4 if v == 3 else 5, "level"), u8(2, "flags")))
        c.refused(v, "81")
        c = Case(f, f"MQTT-3.14.1 DISCONNECT with trailing bytes ({vname(v)})")
        c.connected(v)
        if v == 3:
            c.send(raw(b"\xe0\x02\x00\x00", "DISCONNECT with 2 body bytes")).closed()
        else:
            c.send(pkt(0xE0, "DISCONNECT", u8(0, "reason 00"), props(), raw(b"\x00", "extra byte")))
            c.error(v, "81")
    # 5.0 only
    v = 5
    c = Case(f, "MQTT-1.5.5-1 Remaining Length not minimally encoded (5.0)")
    c.connected(v)
    c.send(raw(b"\xc0\x80\x00", "PINGREQ, Remaining Length 0 in two bytes")).error(v, "81")
    c = Case(f, "MQTT-1.5.5-1 Remaining Length 3 in three bytes (5.0)")
    c.connected(v)
    c.send(raw(b"\x40\x83\x80\x00\x00\x01\x00", "PUBACK, length 3 as 83 80 00")).error(v, "81")
    c = Case(f, "MQTT-2.2.2.1 property length beyond the packet (5.0)")
    c.connected(v)
    c.send(pkt(0x30, "PUBLISH QoS 0", s("p/l"), raw(b"\x05", "property length 5"), raw(b"\x01\x01", "2 bytes")))
    c.error(v, "81")
    c = Case(f, "MQTT-1.5.5-1 property length not minimally encoded (5.0)")
    c.connected(v)
    c.send(pkt(0x30, "PUBLISH QoS 0", s("p/l"), raw(b"\x80\x00", "property length 0 in two bytes"), raw(b"hi", "payload")))
    c.error(v, "81")
    c = Case(f, "MQTT-2.2.2.2 property value cut short (5.0)")
    c.connected(v)
    c.send(pkt(0x30, "PUBLISH QoS 0", s("p/l"), raw(b"\x03\x02\x00\x00", "Message Expiry with 2 of 4 bytes")))
    c.error(v, "81")
    c = Case(f, "MQTT-3.1.2.11 CONNECT property length beyond the packet (5.0)")
    c.send(pkt(0x10, "CONNECT", s("MQTT"), u8(5, "level 5"), u8(2, "flags"), u16(60, "keep alive"),
               raw(b"\x20", "property length 32"), s("x")))
    c.refused(v, "81")
    c = Case(f, "MQTT-3.4.2.1 PUBACK reason code not allowed in PUBACK (5.0)")
    c.connected(v)
    c.send(puback(1, rc=0x05)).error(v, "81")
    c = Case(f, "MQTT-3.6.2.1 PUBREL reason code not allowed in PUBREL (5.0)")
    c.connected(v)
    c.send(pubrel(1, rc=0x80)).error(v, "81")
    c = Case(f, "MQTT-3.14.2.1 DISCONNECT reason code not allowed in DISCONNECT (5.0)")
    c.connected(v)
    c.send(disconnect(v, rc=0x03)).error(v, "81")
    c = Case(f, "MQTT-3.15.2.1 AUTH reason code not allowed in AUTH (5.0)")
    c.connected(v)
    c.send(auth(rc=0x01)).error(v, "81")
    # Short acks with only the packet id, and with reason code and no properties, are fine.
    for name, fields in (("PUBACK", puback(9)), ("PUBACK reason 00", puback(9, rc=0)),
                         ("PUBREC reason 10", pubrec(9, rc=0x10)), ("PUBCOMP reason 92", pubcomp(9, rc=0x92)),
                         ("PUBACK with empty properties", puback(9, rc=0, aprops=[]))):
        c = Case(f, f"MQTT-3.4.2.1 {name} from a client is accepted (5.0)")
        c.connected(v)
        c.send(fields).ping()


def gen_properties():
    f = "04_properties.txt"
    v = 5

    def packet_with(kind, plist):
        cid = new_cid()
        if kind == "CONNECT":
            return cid, connect(v, cid, cprops=plist)
        if kind == "Will":
            return cid, connect(v, cid, will={"topic": "will/t", "payload": b"bye", "props": plist})
        if kind == "PUBLISH":
            return cid, publish(v, "p/q", pprops=plist)
        if kind in ("PUBACK", "PUBREC", "PUBCOMP"):
            return cid, {"PUBACK": puback, "PUBREC": pubrec, "PUBCOMP": pubcomp}[kind](3, rc=0, aprops=plist)
        if kind == "PUBREL":
            return cid, pubrel(3, rc=0, aprops=plist)
        if kind == "SUBSCRIBE":
            return cid, subscribe(v, 3, [("s/t", 0)], sprops=plist)
        if kind == "UNSUBSCRIBE":
            return cid, unsubscribe(v, 3, ["s/t"], uprops=plist)
        if kind == "DISCONNECT":
            return cid, disconnect(v, rc=0, dprops=plist)
        if kind == "AUTH":
            return cid, auth(rc=0, aprops=plist)

    def run(c, kind, cid, fields, rc):
        if kind in ("CONNECT", "Will"):
            c.send(fields).refused(v, rc)
        else:
            c.connected(v)
            c.send(fields).error(v, rc)

    for kind in ALLOWED:
        for pid in sorted(PROPS):
            if pid in ALLOWED[kind]:
                continue
            c = Case(f, f"MQTT-2.2.2.2 {PROPS[pid][0]} ({pid:02X}) not allowed in {kind} (5.0)")
            cid, fields = packet_with(kind, [prop(pid)])
            run(c, kind, cid, fields, "81")
        for pid, val in ((0x00, b"\x00"), (0x2B, b"\x00"), (0x7F, b"\x00")):
            c = Case(f, f"MQTT-2.2.2.2 unknown property id {pid:02X} in {kind} (5.0)")
            cid, fields = packet_with(kind, [prop(pid, val)])
            run(c, kind, cid, fields, "81")
    # Properties that may appear once, given twice: Protocol Error.
    dups = {
        "CONNECT": [0x11, 0x16, 0x17, 0x19, 0x21, 0x22, 0x27],
        "Will": [0x01, 0x02, 0x03, 0x08, 0x09, 0x18],
        "PUBLISH": [0x01, 0x02, 0x03, 0x08, 0x09, 0x23],
        "PUBACK": [0x1F], "PUBREC": [0x1F], "PUBREL": [0x1F], "PUBCOMP": [0x1F],
        "SUBSCRIBE": [0x0B],
        "DISCONNECT": [0x11, 0x1F],
    }
    for kind, ids in dups.items():
        for pid in ids:
            c = Case(f, f"MQTT-2.2.2.2 {PROPS[pid][0]} ({pid:02X}) twice in {kind} (5.0)")
            cid, fields = packet_with(kind, [prop(pid), prop(pid)])
            run(c, kind, cid, fields, "82")
    # Properties allowed in the packet are accepted (one case per kind/id).
    for kind in ("CONNECT", "Will", "PUBLISH", "SUBSCRIBE", "UNSUBSCRIBE", "PUBACK"):
        for pid in sorted(ALLOWED[kind]):
            if pid in (0x15, 0x16) or (kind == "PUBLISH" and pid in (0x0B, 0x23)):
                continue  # enhanced auth and sub id refused on purpose; aliases below
            c = Case(f, f"MQTT-2.2.2.2 {PROPS[pid][0]} ({pid:02X}) accepted in {kind} (5.0)")
            cid, fields = packet_with(kind, [prop(pid)])
            if kind in ("CONNECT", "Will"):
                c.send(fields).expect("20 len 00 00 props", "CONNACK success")
                c.ping()
            else:
                c.connected(v)
                c.send(fields)
                if kind == "SUBSCRIBE":
                    c.expect("90 len 00 03 props 83", "SUBACK 0x83")
                elif kind == "UNSUBSCRIBE":
                    c.expect("B0 len 00 03 props 11", "UNSUBACK 0x11")
                c.ping()
    # Invalid property values.
    bad_values = [
        ("CONNECT", 0x16, b"\x00\x01\x01", "Authentication Data without Authentication Method", "82", "§3.1.2.11.10"),
        ("CONNECT", 0x21, b"\x00\x00", "Receive Maximum 0", "82", "§3.1.2.11.3"),
        ("CONNECT", 0x27, b"\x00\x00\x00\x00", "Maximum Packet Size 0", "82", "§3.1.2.11.4"),
        ("CONNECT", 0x17, b"\x02", "Request Problem Information 2", "82", "§3.1.2.11.7"),
        ("CONNECT", 0x19, b"\x02", "Request Response Information 2", "82", "§3.1.2.11.6"),
        ("Will", 0x01, b"\x02", "Payload Format Indicator 2", "(81|82)", "§3.1.3.2.3"),
        ("PUBLISH", 0x01, b"\x02", "Payload Format Indicator 2", "(81|82)", "§3.3.2.3.2"),
        ("PUBLISH", 0x23, b"\x00\x00", "Topic Alias 0", "94", "MQTT-3.3.2-8"),
        ("PUBLISH", 0x08, b"\x00\x03a/#", "Response Topic with a wildcard", "(81|82)", "MQTT-3.3.2-14"),
        ("Will", 0x08, b"\x00\x03a/+", "Response Topic with a wildcard", "(81|82)", "MQTT-3.3.2-14"),
        ("SUBSCRIBE", 0x0B, b"\x00", "Subscription Identifier 0", "82", "§3.8.2.1.2"),
    ]
    for kind, pid, val, what, rc, r in bad_values:
        c = Case(f, f"{r} {what} in {kind} (5.0)")
        cid, fields = packet_with(kind, [prop(pid, val, f"{PROPS[pid][0]} ({pid:02X}) = {val.hex(' ').upper()}")])
        run(c, kind, cid, fields, rc)
    # Too many user properties (limits node: max_user_properties 3).
    for kind in ("CONNECT", "PUBLISH", "SUBSCRIBE"):
        c = Case(f, f"Wharf limit max_user_properties: 4 User Properties in {kind} (5.0)", "limits")
        cid, fields = packet_with(kind, [prop(0x26)] * 4)
        if kind == "CONNECT":
            c.send(fields).refused(v, "83")
        else:
            c.connected(v)
            c.send(fields).error(v, "83")
        c = Case(f, f"Wharf limit max_user_properties: 3 User Properties in {kind} accepted (5.0)", "limits")
        cid, fields = packet_with(kind, [prop(0x26)] * 3)
        if kind == "CONNECT":
            c.send(fields).expect("20 len 00 00 props", "CONNACK success").ping()
        else:
            c.connected(v)
            c.send(fields)
            if kind == "SUBSCRIBE":
                c.expect("90 len 00 03 props 83", "SUBACK 0x83")
            c.ping()


BAD_UTF8 = [
    ("overlong NUL C0 80", b"a\xc0\x80b", "1"),
    ("surrogate ED A0 80", b"a\xed\xa0\x80b", "1"),
    ("byte FF", b"a\xffb", "1"),
    ("lone continuation 80", b"a\x80b", "1"),
    ("truncated sequence E2 82", b"a\xe2\x82", "1"),
    ("above U+10FFFF F4 90 80 80", b"a\xf4\x90\x80\x80", "1"),
    ("U+0000", b"a\x00b", "2"),
]


def gen_utf8():
    f = "05_utf8.txt"
    for v in (3, 5):
        for what, bad, n in BAD_UTF8:
            r = rule(v, f"MQTT-1.5.3-{n}", f"MQTT-1.5.4-{n}")
            # In CONNECT: client id, user name, will topic.
            c = Case(f, f"{r} {what} in the client id ({vname(v)})")
            c.send(connect(v, bad)).refused(v, "81")
            c = Case(f, f"{r} {what} in the user name ({vname(v)})")
            c.send(connect(v, new_cid(), user=bad)).refused(v, "81")
            c = Case(f, f"{r} {what} in the will topic ({vname(v)})")
            c.send(connect(v, new_cid(), will={"topic": bad})).refused(v, "81")
            c = Case(f, f"{r} {what} in a PUBLISH topic ({vname(v)})")
            c.connected(v)
            c.send(publish(v, bad, qos=1)).error(v, "81")
            c = Case(f, f"{r} {what} in a SUBSCRIBE filter ({vname(v)})")
            c.connected(v)
            c.send(subscribe(v, 1, [(bad, 0)])).error(v, "81")
            c = Case(f, f"{r} {what} in an UNSUBSCRIBE filter ({vname(v)})")
            c.connected(v)
            c.send(unsubscribe(v, 1, [bad])).error(v, "81")
            if v == 5:
                ukey = [(b"\x26" + len(bad).to_bytes(2, "big") + bad + b"\x00\x01v", "User Property, bad key")]
                c = Case(f, f"{r} {what} in a User Property name in PUBLISH (5.0)")
                c.connected(v)
                c.send(publish(v, "u/p", pprops=[ukey])).error(v, "81")
                ct = [(b"\x03" + len(bad).to_bytes(2, "big") + bad, "Content Type")]
                c = Case(f, f"{r} {what} in a Content Type in PUBLISH (5.0)")
                c.connected(v)
                c.send(publish(v, "u/p", pprops=[ct])).error(v, "81")
                rs = [(b"\x1f" + len(bad).to_bytes(2, "big") + bad, "Reason String")]
                c = Case(f, f"{r} {what} in a Reason String in PUBACK (5.0)")
                c.connected(v)
                c.send(puback(1, rc=0, aprops=[rs])).error(v, "81")
        # Well-formed multi-byte UTF-8 and U+FEFF are accepted.
        for what, topic in (("2-, 3- and 4-byte characters", "t\u00e9/\u2713/\U0001F600"),
                            ("U+FEFF not stripped", "\ufeffbom/t")):
            c = Case(f, f"{rule(v, 'MQTT-1.5.3-3', 'MQTT-1.5.4-3')} {what} accepted in a topic ({vname(v)})")
            c.connected(v)
            c.send(publish(v, topic, qos=1, pid=4)).expect("40 02 00 04", "PUBACK 4")
        vn = vname(v)
        c = Case(f, f"MQTT-3.1.3.5 password is binary: non-UTF-8 bytes are checked, not malformed ({vn})")
        c.send(connect(v, new_cid(), user=USER, pw=b"\xff\x00\xc0\x80")).refused(v, "86", "04")
        c = Case(f, f"MQTT-3.1.3.3 will payload is binary: non-UTF-8 bytes accepted ({vn})")
        c.send(connect(v, new_cid(), will={"payload": b"\xff\x00\xed\xa0\x80"}))
        c.expect("20 02 00 00" if v == 3 else "20 len 00 00 props", "CONNACK accepted").ping()
        if v == 5:
            c = Case(f, "MQTT-1.5.6 Correlation Data is binary: non-UTF-8 bytes accepted (5.0)")
            c.connected(v)
            c.send(publish(v, "corr/t", qos=1, pid=4, pprops=[prop(0x09, b"\x00\x03\xff\x00\xc0")]))
            c.expect("40 02 00 04", "PUBACK 4")
        c = Case(f, f"MQTT-1.5.3 non-UTF-8 payload of a QoS 1 PUBLISH accepted ({vn})")
        c.connected(v)
        c.send(publish(v, "bin/p", payload=b"\xff\xfe\x00\x80", qos=1, pid=4)).expect("40 02 00 04", "PUBACK 4")


def gen_connect():
    f = "01_connect.txt"
    for v in (3, 5):
        vn = vname(v)
        c = Case(f, f"MQTT-3.1.4 CONNECT accepted, CONNACK 0x00 ({vn})")
        c.connected(v)
        c.ping()
        c = Case(f, f"MQTT-3.1.0-2 second CONNECT is a protocol error ({vn})")
        c.connected(v)
        c.send(connect(v, new_cid())).error(v, "82")
        c = Case(f, f"MQTT-3.1.2-3 CONNECT reserved flag bit 0 set ({vn})")
        c.send(connect(v, new_cid(), flags=0x03)).refused(v, "81")
        c = Case(f, f"{rule(v, 'MQTT-3.1.2-13', 'MQTT-3.1.2-11')} Will QoS 1 without the Will flag ({vn})")
        c.send(connect(v, new_cid(), flags=0x0A)).refused(v, "81")
        c = Case(f, f"{rule(v, 'MQTT-3.1.2-15', 'MQTT-3.1.2-13')} Will Retain without the Will flag ({vn})")
        c.send(connect(v, new_cid(), flags=0x22)).refused(v, "81")
        c = Case(f, f"{rule(v, 'MQTT-3.1.2-14', 'MQTT-3.1.2-12')} Will QoS 3 ({vn})")
        c.send(connect(v, new_cid(), will={"qos": 3})).refused(v, "81")
        for level, name in ((3, "MQIsdp"), (3, "MQTT"), (0, "MQTT"), (2, "MQTT"), (6, "MQTT"), (255, "MQTT")):
            if (v == 5) != (level >= 5):
                continue
            c = Case(f, f"MQTT-3.1.2-2 protocol level {level} name {name} refused")
            c.send(connect(3 if level < 5 else 5, new_cid(), level=level, name=name))
            if level < 5:
                c.expect("20 02 00 01", "CONNACK 0x01 unacceptable protocol version").closed()
            else:
                c.expect("20 len 00 84 *", "CONNACK 0x84 unsupported protocol version").closed()
        c = Case(f, f"MQTT-3.1.2-1 protocol name MQTX refused ({vn})")
        c.send(connect(v, new_cid(), name="MQTX"))
        if v == 3:
            c.expect("20 02 00 01", "CONNACK 0x01").closed()
        else:
            c.expect("20 len 00 84 *", "CONNACK 0x84").closed()
        c = Case(f, f"MQTT-3.1.2-1 protocol name in lower case refused ({vn})")
        c.send(connect(v, new_cid(), name="mqtt"))
        c.expect("20 02 00 01" if v == 3 else "20 len 00 84 *", "unsupported version").closed()
        # Client identifiers.
        if v == 3:
            c = Case(f, "MQTT-3.1.3-8 empty client id with Clean Session 0 refused with 0x02 (3.1.1)")
            c.send(connect(v, "", clean=False)).expect("20 02 00 02", "CONNACK 0x02 identifier rejected").closed()
            c = Case(f, "MQTT-3.1.3-7 empty client id with Clean Session 1 accepted (3.1.1)")
            c.send(connect(v, "")).expect("20 02 00 00", "CONNACK accepted").ping()
        else:
            c = Case(f, "MQTT-3.1.3-6 empty client id gets an Assigned Client Identifier (5.0)")
            c.send(connect(v, "")).expect("20 len 00 00 props[+12]", "CONNACK with Assigned Client Identifier").ping()
            c = Case(f, "MQTT-3.1.3-6 empty client id with Clean Start 0 gets an Assigned Client Identifier (5.0)")
            c.send(connect(v, "", clean=False)).expect("20 len 00 00 props[+12]", "CONNACK with 0x12").ping()
            c = Case(f, "MQTT-3.2.2.3 given client id is not assigned again (5.0)")
            c.send(connect(v, new_cid())).expect("20 len 00 00 props[-12]", "CONNACK without 0x12").ping()
        c = Case(f, f"MQTT-3.1.3-5 client id of 23 characters accepted ({vn})", "limits")
        c.connected(v, cid="c" + new_cid() + "x" * 16)
        c = Case(f, f"{rule(v, 'MQTT-3.1.3-9', 'MQTT-3.1.3-8')} client id over max_client_id_length refused ({vn})", "limits")
        c.send(connect(v, "c" + new_cid() + "x" * 17)).refused(v, "85", "02")
        c = Case(f, f"MQTT-3.1.3 client id with characters outside 0-9a-zA-Z accepted ({vn})")
        c.connected(v, cid=new_cid() + "/-_:\u00e9")
        # Will.
        c = Case(f, f"MQTT-3.1.3.3 will topic with a wildcard refused ({vn})")
        c.send(connect(v, new_cid(), will={"topic": "will/+"})).refused(v, "90")
        c = Case(f, f"MQTT-3.1.3.3 will topic # refused ({vn})")
        c.send(connect(v, new_cid(), will={"topic": "#"})).refused(v, "90")
        c = Case(f, f"MQTT-3.1.3.3 empty will topic refused ({vn})")
        c.send(connect(v, new_cid(), will={"topic": ""})).refused(v, "90")
        c = Case(f, f"MQTT-3.1.3.3 will topic over max_topic_levels refused ({vn})", "limits")
        c.send(connect(v, new_cid(), will={"topic": "a/b/c/d/e"})).refused(v, "90")
        c = Case(f, f"MQTT-3.1.2.5 will with QoS 2 and Retain accepted ({vn})")
        c.send(connect(v, new_cid(), will={"topic": "will/ok", "qos": 2, "retain": True}))
        c.expect("20 02 00 00" if v == 3 else "20 len 00 00 props", "CONNACK accepted").ping()
        if v == 5:
            c = Case(f, "§3.1.3.2.3 will Payload Format Indicator 1 with a non-UTF-8 payload refused (5.0)")
            c.send(connect(v, new_cid(), will={"payload": b"\xff\xfe", "props": [prop(0x01, b"\x01")]})).refused(v, "99")
            c = Case(f, "MQTT-4.12 CONNECT with an Authentication Method refused with 0x8C (5.0)")
            c.send(connect(v, new_cid(), cprops=[prop(0x15)])).refused(v, "8C")
        # Credentials (main: allow_anonymous, password user alice).
        c = Case(f, f"MQTT-3.1.3.5 right user name and password accepted ({vn})")
        c.connected(v, user=USER, pw=PASSWORD)
        c.ping()
        c = Case(f, f"MQTT-3.2.2.3 wrong password refused ({vn})")
        c.send(connect(v, new_cid(), user=USER, pw="nope")).refused(v, "86", "04")
        c = Case(f, f"{rule(v, 'MQTT-3.1.4-5', 'MQTT-3.1.4-6')} refused CONNECT: a PUBLISH sent with it is not processed ({vn})")
        c.send(connect(v, new_cid(), user=USER, pw="nope") + publish(v, "after/refused", qos=1, pid=1))
        c.refused(v, "86", "04")
        c = Case(f, f"MQTT-3.2.2.3 unknown user refused ({vn})")
        c.send(connect(v, new_cid(), user="mallory", pw="x")).refused(v, "86", "04")
        c = Case(f, f"MQTT-3.2.2.3 empty password refused ({vn})")
        c.send(connect(v, new_cid(), user=USER, pw="")).refused(v, "86", "04")
        if v == 3:
            c = Case(f, "MQTT-3.1.2-22 password without user name is malformed (3.1.1)")
            c.send(connect(v, new_cid(), pw=PASSWORD)).closed()
        else:
            c = Case(f, "MQTT-3.1.2.9 password without user name refused 0x86 (5.0)")
            c.send(connect(v, new_cid(), pw=PASSWORD)).refused(v, "86")
        c = Case(f, f"MQTT-3.2.2.3 anonymous refused where not allowed ({vn})", "strict")
        c.send(connect(v, new_cid())).refused(v, "87", "05")
        c = Case(f, f"MQTT-3.2.2.3 user name without password refused where anonymous is off ({vn})", "strict")
        c.send(connect(v, new_cid(), user=USER)).refused(v, "86", "04")
        c = Case(f, f"MQTT-3.2.2.3 password user accepted where anonymous is off ({vn})", "strict")
        c.connected(v, user=USER, pw=PASSWORD)
        c.ping()
        # Session present.
        if v == 3:
            cid = new_cid()
            c = Case(f, "MQTT-3.2.2-2 Clean Session 1 gives session present 0 (3.1.1)")
            c.send(connect(v, cid)).expect("20 02 00 00", "session present 0")
            c.send(disconnect(v)).closed()
            c.send(connect(v, cid), "b").expect("20 02 00 00", "session present 0", "b")
            cid = new_cid()
            c = Case(f, "MQTT-3.2.2-2 Clean Session 0 resumes the session: session present 1 (3.1.1)")
            c.send(connect(v, cid, clean=False)).expect("20 02 00 00", "new session: present 0")
            c.send(disconnect(v)).closed()
            c.send(connect(v, cid, clean=False), "b").expect("20 02 01 00", "session present 1", "b")
            c.send(disconnect(v), "b").closed("b")
            c.send(connect(v, cid), "c").expect("20 02 00 00", "Clean Session 1 discards: present 0", "c")
        else:
            cid = new_cid()
            c = Case(f, "MQTT-3.2.2-3 Session Expiry 60 and Clean Start 0 resumes: session present 1 (5.0)")
            c.send(connect(v, cid, clean=False, cprops=[prop(0x11, b"\x00\x00\x00\x3c")]))
            c.expect("20 len 00 00 props", "present 0")
            c.send(disconnect(v)).closed()
            c.send(connect(v, cid, clean=False, cprops=[prop(0x11, b"\x00\x00\x00\x3c")]), "b")
            c.expect("20 len 01 00 props", "session present 1", "b")
            cid = new_cid()
            c = Case(f, "MQTT-3.1.2-4 Clean Start 1 discards the session: session present 0 (5.0)")
            c.send(connect(v, cid, clean=False, cprops=[prop(0x11, b"\x00\x00\x00\x3c")]))
            c.expect("20 len 00 00 props", "present 0")
            c.send(disconnect(v)).closed()
            c.send(connect(v, cid, clean=True), "b").expect("20 len 00 00 props", "present 0", "b")
            cid = new_cid()
            c = Case(f, "MQTT-3.1.2.11.2 Session Expiry 0 ends the session at disconnect: present 0 (5.0)")
            c.send(connect(v, cid, clean=False)).expect("20 len 00 00 props", "present 0")
            c.send(disconnect(v)).closed()
            c.send(connect(v, cid, clean=False), "b").expect("20 len 00 00 props", "present 0", "b")
        # Takeover.
        cid = new_cid()
        c = Case(f, f"{rule(v, 'MQTT-3.1.4-2', 'MQTT-3.1.4-3')} same client id takes the session over ({vn})")
        c.connected(v, cid=cid)
        c.send(connect(v, cid), "b")
        c.expect("20 02 00 00" if v == 3 else "20 len 00 00 props", "CONNACK to the new connection", "b")
        c.error(v, "8E")
        c.ping("b")
        # CONNACK contents (5.0).
    v = 5
    c = Case(f, "MQTT-3.2.2.3 CONNACK advertises Receive Maximum, Topic Alias Maximum, Maximum Packet Size (5.0)", "limits")
    c.send(connect(v, new_cid(), ka=1)).expect("20 len 00 00 props[21=0003,22=0002,27=00000100,-13,-15]", "CONNACK")
    c = Case(f, "MQTT-3.2.2.3.14 Keep Alive 60 above max_keep_alive: Server Keep Alive 2 (5.0)", "limits")
    c.send(connect(v, new_cid(), ka=60)).expect("20 len 00 00 props[13=0002]", "CONNACK with Server Keep Alive 2")
    c = Case(f, "MQTT-3.2.2.3.14 Keep Alive 0 replaced by max_keep_alive (5.0)", "limits")
    c.send(connect(v, new_cid(), ka=0)).expect("20 len 00 00 props[13=0002]", "CONNACK with Server Keep Alive 2")
    c = Case(f, "MQTT-3.2.2.3.14 Keep Alive within max_keep_alive: no Server Keep Alive (5.0)", "limits")
    c.send(connect(v, new_cid(), ka=2)).expect("20 len 00 00 props[-13]", "CONNACK without Server Keep Alive")
    c = Case(f, "MQTT-3.2.2.3 no Authentication Method in CONNACK without one in CONNECT (5.0)")
    c.send(connect(v, new_cid())).expect("20 len 00 00 props[-15,-16]", "CONNACK")
    c = Case(f, "MQTT-3.1.2-24 CONNACK within the client's Maximum Packet Size 16 (5.0)")
    c.send(connect(v, new_cid(), cprops=[prop(0x27, b"\x00\x00\x00\x10")]))
    c.expect("20 len 00 00 props", "CONNACK")
    c.ping()
    c = Case(f, "MQTT-3.1.2-24 CONNACK fits the client's Maximum Packet Size 10: optional properties dropped (5.0)")
    c.send(connect(v, new_cid(), cprops=[prop(0x27, b"\x00\x00\x00\x0a")]))
    c.expect("20 len 00 00 props", "CONNACK of at most 10 bytes")
    c.ping()
    c = Case(f, "MQTT-3.2.2.3.14 Keep Alive 0 on main: Server Keep Alive 3600 (5.0)")
    c.send(connect(v, new_cid(), ka=0)).expect("20 len 00 00 props[13=0E10]", "Server Keep Alive 3600")
    c = Case(f, "MQTT-3.2.2.3.14 Keep Alive 65535 capped: Server Keep Alive 3600 (5.0)")
    c.send(connect(v, new_cid(), ka=65535)).expect("20 len 00 00 props[13=0E10]", "Server Keep Alive 3600")
    c = Case(f, "MQTT-3.2.2.3.2 Session Expiry FFFFFFFF accepted as is (5.0)")
    c.send(connect(v, new_cid(), clean=False, cprops=[prop(0x11, b"\xff\xff\xff\xff")]))
    c.expect("20 len 00 00 props[-11]", "CONNACK without Session Expiry")
    c = Case(f, "MQTT-3.1.2.11.6 Request Response Information 1 accepted (5.0)")
    c.send(connect(v, new_cid(), cprops=[prop(0x19, b"\x01")])).expect("20 len 00 00 props", "CONNACK").ping()
    cid = new_cid()
    c = Case(f, "MQTT-3.14.2.2.2 DISCONNECT setting Session Expiry 0 ends the session: present 0 (5.0)")
    c.send(connect(v, cid, clean=False, cprops=[prop(0x11, b"\x00\x00\x00\x3c")])).expect("20 len 00 00 props", "CONNACK")
    c.send(disconnect(v, rc=0, dprops=[prop(0x11, b"\x00\x00\x00\x00")])).closed()
    c.send(connect(v, cid, clean=False, cprops=[prop(0x11, b"\x00\x00\x00\x3c")]), "b")
    c.expect("20 len 00 00 props", "session present 0", "b")
    c = Case(f, "MQTT-3.1.3.3 will topic over max_topic_length refused (5.0)", "limits")
    c.send(connect(v, new_cid(), will={"topic": "t" * 65})).refused(v, "90")
    for vv in (3, 5):
        c = Case(f, f"MQTT-3.1.4 PINGREQ pipelined behind CONNECT answered after CONNACK ({vname(vv)})")
        c.send(connect(vv, new_cid()) + PINGREQ)
        c.expect("20 02 00 00" if vv == 3 else "20 len 00 00 props", "CONNACK").expect("D0 00", "PINGRESP")
        c = Case(f, f"MQTT-3.14.4 packets after DISCONNECT are not processed ({vname(vv)})")
        c.connected(vv)
        c.send(disconnect(vv) + publish(vv, "after/disconnect", qos=1, pid=1)).closed()
        c = Case(f, f"MQTT-3.1.2.8 empty user name without password accepted where anonymous is on ({vname(vv)})")
        c.connected(vv, user="")


def gen_timers():
    f = "09_timers.txt"
    for v in (3, 5):
        vn = vname(v)
        c = Case(f, f"MQTT-3.1.2-24 Keep Alive 1 expires after 1.5 s of silence ({vn})")
        c.connected(v, ka=1)
        c.error(v, "8D", wait=4000)
        c = Case(f, f"MQTT-3.1.2-24 PINGREQ keeps a Keep Alive 1 connection open ({vn})")
        c.connected(v, ka=1)
        for _ in range(3):
            c.wait(900)
            c.ping()
        c = Case(f, f"MQTT-3.1.2-24 PUBLISH keeps a Keep Alive 1 connection open ({vn})")
        c.connected(v, ka=1)
        for i in range(3):
            c.wait(900)
            c.send(publish(v, "ka/t", qos=1, pid=i + 1)).expect(f"40 02 00 {i + 1:02X}", "PUBACK")
        c = Case(f, f"{rule(v, 'MQTT-3.1.2-24', 'MQTT-3.1.2-22')} bytes of an unfinished packet do not keep Keep Alive 1 open ({vn})")
        c.connected(v, ka=1)
        p = b"".join(b for b, _ in publish(v, "drip/t", qos=1, pid=1, payload="x" * 20))
        for i in range(8):  # 4.8 s without a whole Control Packet
            c.send(raw(p[i:i + 1], f"byte {i} of a PUBLISH")).wait(600)
        if v == 5:
            c.expect("E0 len 8D *", "DISCONNECT 0x8D, sent at 1.5 s", wait=300)
        c.closed(wait=300)
        c = Case(f, f"§3.1 (SHOULD) no CONNECT within connect_timeout closes ({vn})")
        c.closed(wait=4000)
        c = Case(f, f"§3.1 (SHOULD) CONNECT cut short is closed after connect_timeout ({vn})")
        c.send(connect(v, new_cid())[:2]).closed(wait=4000)
    c = Case(f, "MQTT-3.1.2-22 Server Keep Alive 2 enforced: idle 5.0 client closed with 0x8D", "limits")
    c.send(connect(5, new_cid(), ka=60)).expect("20 len 00 00 props[13=0002]", "Server Keep Alive 2")
    c.error(5, "8D", wait=6000)


def gen_publish():
    f = "06_publish.txt"
    for v in (3, 5):
        vn = vname(v)
        for q in (0, 1, 2):
            c = Case(f, f"MQTT-3.3 PUBLISH QoS {q} accepted ({vn})")
            c.connected(v)
            c.send(publish(v, f"q{q}/t", qos=q, pid=0x1234))
            if q == 1:
                c.expect("40 02 12 34", "PUBACK 0x1234")
            if q == 2:
                c.expect("50 02 12 34", "PUBREC 0x1234")
                c.send(pubrel(0x1234)).expect("70 02 12 34", "PUBCOMP 0x1234")
            c.ping()
        for topic in ("a/+", "+", "#", "a/#", "a/+/b", "a+b", "a#"):
            for q in (0, 1):
                c = Case(f, f"MQTT-3.3.2-2 wildcard in PUBLISH topic {topic} QoS {q} ({vn})")
                c.connected(v)
                c.send(publish(v, topic, qos=q)).error(v, "90")
        c = Case(f, rule(v, "MQTT-4.7.3-1 empty topic (3.1.1)", "MQTT-3.3.2.3.4 empty topic without Topic Alias (5.0)"))
        c.connected(v)
        c.send(publish(v, "", qos=1)).error(v, "82")
        for q in (1, 2):
            c = Case(f, f"{rule(v, 'MQTT-2.3.1-1', 'MQTT-2.2.1-3')} packet id 0 in QoS {q} PUBLISH ({vn})")
            c.connected(v)
            c.send(publish(v, "pid/0", qos=q, pid=0)).error(v, "82")
        for name, fields in (("PUBREL", pubrel(0)), ("SUBSCRIBE", subscribe(v, 0, [("a", 0)])),
                             ("UNSUBSCRIBE", unsubscribe(v, 0, ["a"]))):
            c = Case(f, f"{rule(v, 'MQTT-2.3.1-1', 'MQTT-2.2.1-3')} packet id 0 in {name} ({vn})")
            c.connected(v)
            c.send(fields).error(v, "82")
        c = Case(f, f"MQTT-3.3.1.3 RETAIN 1 accepted ({vn})")
        c.connected(v)
        c.send(publish(v, "ret/t", qos=1, pid=2, retain=True)).expect("40 02 00 02", "PUBACK 2")
        c = Case(f, f"MQTT-3.3.1 empty payload accepted ({vn})")
        c.connected(v)
        c.send(publish(v, "empty/p", payload=b"", qos=1, pid=2)).expect("40 02 00 02", "PUBACK 2")
        c = Case(f, f"MQTT-4.7.2 topic starting with $ accepted ({vn})", "limits")
        c.connected(v, ka=2)
        c.send(publish(v, "$dev/t", qos=1, pid=2)).expect("40 02 00 02", "PUBACK 2")
        c = Case(f, f"MQTT-4.7.2-1 ACL filter # does not cover $dev/t: refused ({vn})")
        c.connected(v)
        c.send(publish(v, "$dev/t", qos=1, pid=2))
        if v == 5:
            c.expect("40 len 00 02 87 *", "PUBACK 0x87")
        else:
            c.closed()
        c = Case(f, f"MQTT-4.3.2 re-sent QoS 1 PUBLISH (DUP) acknowledged again ({vn})")
        c.connected(v)
        c.send(publish(v, "dup/1", qos=1, pid=2)).expect("40 02 00 02", "PUBACK 2")
        c.send(publish(v, "dup/1", qos=1, pid=2, dup=True)).expect("40 02 00 02", "PUBACK 2 again")
        c = Case(f, f"MQTT-3.3.2 topic of only / accepted ({vn})")
        c.connected(v)
        c.send(publish(v, "/", qos=1, pid=2)).expect("40 02 00 02", "PUBACK 2")
        # Topic limits (limits node: 4 levels, 64 bytes).
        for what, topic in (("5 levels", "a/b/c/d/e"), ("65 bytes", "t" * 65)):
            for q in (0, 1, 2):
                c = Case(f, f"Wharf limit: topic over the limits ({what}) QoS {q} ({vn})", "limits")
                c.connected(v, ka=2)
                c.send(publish(v, topic, qos=q, pid=5))
                if v == 5 and q == 1:
                    c.expect("40 len 00 05 90 *", "PUBACK 0x90").ping()
                elif v == 5 and q == 2:
                    c.expect("50 len 00 05 90 *", "PUBREC 0x90")
                    c.send(pubrel(5)).expect("70 len 00 05 92 *", "PUBCOMP 0x92: id not held").ping()
                else:
                    c.error(v, "90")
        c = Case(f, f"Wharf limit: topic at the limits (4 levels, 64 bytes) accepted ({vn})", "limits")
        c.connected(v, ka=2)
        c.send(publish(v, "a/b/c/" + "d" * 58, qos=1, pid=5)).expect("40 02 00 05", "PUBACK 5")
        # Packet size (limits node: 256 bytes).
        def sized(total, q):
            topic = "big/t"
            head = 2 + len(topic) + (2 if q else 0) + (1 if v == 5 else 0)
            n = next(total - 1 - k - head for k in (1, 2, 3) if len(vbi(total - 1 - k)) == k)
            return publish(v, topic, payload=b"A" * n, qos=q, pid=6)
        for q in (0, 1):
            c = Case(f, f"MQTT-3.1.2-24 §3.1.2.11.4 PUBLISH of 257 bytes over max_packet_size 256 QoS {q} ({vn})", "limits")
            c.connected(v, ka=2)
            c.send(sized(257, q)).error(v, "95")
            c = Case(f, f"Wharf limit: PUBLISH of exactly max_packet_size 256 QoS {q} accepted ({vn})", "limits")
            c.connected(v, ka=2)
            c.send(sized(256, q))
            if q:
                c.expect("40 02 00 06", "PUBACK 6")
            c.ping()
        c = Case(f, f"MQTT-3.1.2-24 §3.1.2.11.4 PUBLISH announcing 100000 bytes is refused from its header ({vn})", "limits")
        c.connected(v, ka=2)
        c.send(raw(b"\x30\xa0\x8d\x06", "PUBLISH, Remaining Length 100000, no body")).error(v, "95")
        c = Case(f, f"Wharf limit: CONNECT over max_packet_size closes ({vn})", "limits")
        c.send(connect(v, new_cid(), user="u" * 300)).closed()
        # QoS 2 flows.
        c = Case(f, f"MQTT-4.3.3 QoS 2: PUBLISH, PUBREC, PUBREL, PUBCOMP ({vn})")
        c.connected(v)
        c.send(publish(v, "q2/a", qos=2, pid=10)).expect("50 02 00 0A", "PUBREC 10")
        c.send(pubrel(10)).expect("70 02 00 0A", "PUBCOMP 10")
        c.send(pubrel(10)).expect("70 02 00 0A" if v == 3 else "70 len 00 0A 92 *",
                                   "second PUBREL: " + ("PUBCOMP" if v == 3 else "PUBCOMP 0x92"))
        c = Case(f, f"MQTT-4.3.3 QoS 2: re-sent PUBLISH (DUP) before PUBREL gets PUBREC again ({vn})")
        c.connected(v)
        c.send(publish(v, "q2/b", qos=2, pid=11)).expect("50 02 00 0B", "PUBREC 11")
        c.send(publish(v, "q2/b", qos=2, pid=11, dup=True)).expect("50 02 00 0B", "PUBREC 11 again")
        c.send(pubrel(11)).expect("70 02 00 0B", "PUBCOMP 11")
        c = Case(f, f"MQTT-4.3.3 QoS 2: packet id reusable after PUBCOMP ({vn})")
        c.connected(v)
        for _ in range(3):
            c.send(publish(v, "q2/c", qos=2, pid=12)).expect("50 02 00 0C", "PUBREC 12")
            c.send(pubrel(12)).expect("70 02 00 0C", "PUBCOMP 12")
        c = Case(f, f"MQTT-4.3.3 PUBREL for an unknown packet id ({vn})")
        c.connected(v)
        c.send(pubrel(0x4242))
        c.expect("70 02 42 42" if v == 3 else "70 len 42 42 92 *", "PUBCOMP" + ("" if v == 3 else " 0x92"))
        c.ping()
        c = Case(f, f"MQTT-4.3.3 QoS 2 flows interleaved ({vn})")
        c.connected(v)
        c.send(publish(v, "q2/d", qos=2, pid=1)).expect("50 02 00 01", "PUBREC 1")
        c.send(publish(v, "q2/d", qos=2, pid=2)).expect("50 02 00 02", "PUBREC 2")
        c.send(pubrel(2)).expect("70 02 00 02", "PUBCOMP 2")
        c.send(pubrel(1)).expect("70 02 00 01", "PUBCOMP 1")
        c = Case(f, f"MQTT-4.3.3 same packet id in flight as QoS 1 and QoS 2 ({vn})")
        c.connected(v)
        c.send(publish(v, "q2/e", qos=2, pid=3)).expect("50 02 00 03", "PUBREC 3")
        c.send(publish(v, "q1/e", qos=1, pid=4)).expect("40 02 00 04", "PUBACK 4")
        c.send(pubrel(3)).expect("70 02 00 03", "PUBCOMP 3")
        # QoS 2 state belongs to the session: it survives a reconnect.
        exp = [prop(0x11, b"\x00\x00\x00\x3c")] if v == 5 else None
        ok = "20 02 01 00" if v == 3 else "20 len 01 00 props"
        c = Case(f, f"MQTT-4.3.3 QoS 2 id held across a reconnect: PUBREL completes ({vn})")
        cid = new_cid()
        c.send(connect(v, cid, clean=False, cprops=exp)).expect("20 02 00 00" if v == 3 else "20 len 00 00 props", "CONNACK")
        c.send(publish(v, "q2/s", qos=2, pid=21)).expect("50 02 00 15", "PUBREC 21").client_close()
        c.wait(200)
        c.send(connect(v, cid, clean=False, cprops=exp), "b").expect(ok, "CONNACK, session present 1", "b")
        c.send(pubrel(21), "b").expect("70 02 00 15", "PUBCOMP 21, success", "b")
        c = Case(f, f"MQTT-4.3.3 QoS 2 id held across a reconnect: re-sent PUBLISH gets PUBREC ({vn})")
        cid = new_cid()
        c.send(connect(v, cid, clean=False, cprops=exp)).expect("20 02 00 00" if v == 3 else "20 len 00 00 props", "CONNACK")
        c.send(publish(v, "q2/s", qos=2, pid=22)).expect("50 02 00 16", "PUBREC 22").client_close()
        c.wait(200)
        c.send(connect(v, cid, clean=False, cprops=exp), "b").expect(ok, "CONNACK, session present 1", "b")
        c.send(publish(v, "q2/s", qos=2, pid=22, dup=True), "b").expect("50 02 00 16", "PUBREC 22", "b")
        c.send(pubrel(22), "b").expect("70 02 00 16", "PUBCOMP 22", "b")
        c = Case(f, f"MQTT-3.1.2-4 Clean Start discards held QoS 2 ids: PUBREL after reconnect ({vn})")
        cid = new_cid()
        c.send(connect(v, cid, clean=False, cprops=exp)).expect("20 02 00 00" if v == 3 else "20 len 00 00 props", "CONNACK")
        c.send(publish(v, "q2/s", qos=2, pid=23)).expect("50 02 00 17", "PUBREC 23").client_close()
        c.wait(200)
        c.send(connect(v, cid, clean=True), "b").expect("20 02 00 00" if v == 3 else "20 len 00 00 props", "CONNACK, present 0", "b")
        c.send(pubrel(23), "b").expect("70 02 00 17" if v == 3 else "70 len 00 17 92 *", "PUBCOMP" + ("" if v == 3 else " 0x92"), "b")
        # Acks for packets Wharf never sent are ignored.
        for name, fields in (("PUBACK", puback(77)), ("PUBREC", pubrec(77)), ("PUBCOMP", pubcomp(77))):
            c = Case(f, f"MQTT-4.3 stray {name} from the client is ignored ({vn})")
            c.connected(v)
            c.send(fields).ping()
        # Ordering.
        c = Case(f, f"MQTT-4.6.0-2 PUBACKs in PUBLISH order, 8 QoS 1 in one write ({vn})")
        c.connected(v)
        c.send([fl for i in range(1, 9) for fl in publish(v, "ord/a", qos=1, pid=i, payload=f"m{i}")])
        for i in range(1, 9):
            c.expect(f"40 02 00 {i:02X}", f"PUBACK {i}")
        c = Case(f, f"MQTT-4.6.0-2 PUBACK/PUBREC in PUBLISH order, QoS 1 and 2 mixed ({vn})")
        c.connected(v)
        seq = [(1, 1), (2, 2), (3, 1), (4, 2), (5, 0), (6, 1)]
        c.send([fl for pid, q in seq for fl in publish(v, "ord/b", qos=q, pid=pid)])
        for pid, q in seq:
            if q:
                c.expect(f"{'40' if q == 1 else '50'} 02 00 {pid:02X}", f"{'PUBACK' if q == 1 else 'PUBREC'} {pid}")
        c.send(pubrel(2) + pubrel(4)).expect("70 02 00 02", "PUBCOMP 2").expect("70 02 00 04", "PUBCOMP 4")
        c = Case(f, f"MQTT-4.6.0-2 PUBACKs in order with descending packet ids ({vn})")
        c.connected(v)
        c.send([fl for i in (9, 7, 5, 3) for fl in publish(v, "ord/c", qos=1, pid=i)])
        for i in (9, 7, 5, 3):
            c.expect(f"40 02 00 {i:02X}", f"PUBACK {i}")
        # Payload format (5.0).
        if v == 5:
            pfi = [prop(0x01, b"\x01")]
            c = Case(f, "§3.3.2.3.2 Payload Format Indicator 1, valid UTF-8 payload accepted (5.0)")
            c.connected(v)
            c.send(publish(v, "pf/a", payload="caf\u00e9", qos=1, pid=3, pprops=pfi)).expect("40 02 00 03", "PUBACK 3")
            for q in (0, 1, 2):
                c = Case(f, f"MQTT-3.3.2.3.2 Payload Format Indicator 1, payload not UTF-8, QoS {q} (5.0)")
                c.connected(v)
                c.send(publish(v, "pf/b", payload=b"\xff\xfe", qos=q, pid=3, pprops=pfi))
                if q == 0:
                    c.error(v, "99")
                else:
                    c.expect(f"{'40' if q == 1 else '50'} len 00 03 99 *", "negative ack 0x99").ping()
            c = Case(f, "MQTT-3.3.4-6 Subscription Identifier in a client PUBLISH (5.0)")
            c.connected(v)
            c.send(publish(v, "sid/a", qos=1, pid=3, pprops=[prop(0x0B, b"\x05")])).error(v, "82")
            c = Case(f, "MQTT-3.3.2.3 Message Expiry, Content Type, Response Topic, Correlation Data, User Properties accepted (5.0)")
            c.connected(v)
            c.send(publish(v, "all/props", qos=1, pid=3,
                           pprops=[prop(0x02), prop(0x03), prop(0x08, b"\x00\x05resp/"), prop(0x09), prop(0x26), prop(0x26)]))
            c.expect("40 02 00 03", "PUBACK 3")


def gen_flow():
    f = "07_flow_alias.txt"
    v = 5
    # Receive Maximum (limits: 3). QoS 2 counts until PUBCOMP.
    c = Case(f, "§4.9 Receive Maximum exceeded by a 4th unreleased QoS 2 PUBLISH: 0x93 (5.0)", "limits")
    c.connected(v, ka=2)
    for i in (1, 2, 3):
        c.send(publish(v, "rm/a", qos=2, pid=i)).expect(f"50 02 00 {i:02X}", f"PUBREC {i}")
    c.send(publish(v, "rm/a", qos=2, pid=4)).error(v, "93")
    c = Case(f, "§4.9 Receive Maximum: QoS 1 while 3 QoS 2 are unreleased: 0x93 (5.0)", "limits")
    c.connected(v, ka=2)
    for i in (1, 2, 3):
        c.send(publish(v, "rm/b", qos=2, pid=i)).expect(f"50 02 00 {i:02X}", f"PUBREC {i}")
    c.send(publish(v, "rm/b", qos=1, pid=4)).error(v, "93")
    c = Case(f, "§4.9 Receive Maximum: a PUBCOMP frees a slot (5.0)", "limits")
    c.connected(v, ka=2)
    for i in (1, 2, 3):
        c.send(publish(v, "rm/c", qos=2, pid=i)).expect(f"50 02 00 {i:02X}", f"PUBREC {i}")
    c.send(pubrel(2)).expect("70 02 00 02", "PUBCOMP 2")
    c.send(publish(v, "rm/c", qos=2, pid=4)).expect("50 02 00 04", "PUBREC 4")
    c.ping()
    c = Case(f, "§4.9 Receive Maximum: re-sent QoS 2 PUBLISH (DUP) does not count (5.0)", "limits")
    c.connected(v, ka=2)
    for i in (1, 2, 3):
        c.send(publish(v, "rm/d", qos=2, pid=i)).expect(f"50 02 00 {i:02X}", f"PUBREC {i}")
    c.send(publish(v, "rm/d", qos=2, pid=1, dup=True)).expect("50 02 00 01", "PUBREC 1 again")
    c.ping()
    c = Case(f, "§4.9 Receive Maximum: QoS 1 one at a time never exceeds (5.0)", "limits")
    c.connected(v, ka=2)
    for i in range(1, 8):
        c.send(publish(v, "rm/e", qos=1, pid=i)).expect(f"40 02 00 {i:02X}", f"PUBACK {i}")
    c = Case(f, "§4.9 Receive Maximum: a 0x90-refused QoS 2 frees its slot (5.0)", "limits")
    c.connected(v, ka=2)
    for i in (1, 2):
        c.send(publish(v, "rm/f", qos=2, pid=i)).expect(f"50 02 00 {i:02X}", f"PUBREC {i}")
    c.send(publish(v, "a/b/c/d/e", qos=2, pid=3)).expect("50 len 00 03 90 *", "PUBREC 0x90")
    c.send(publish(v, "rm/f", qos=2, pid=4)).expect("50 02 00 04", "PUBREC 4")
    c.ping()
    c = Case(f, "Wharf limit (docs/mqtt.md Flow control): 3.1.1 client holding receive_maximum unreleased QoS 2 is closed", "limits")
    c.connected(3, ka=2)
    for i in (1, 2, 3):
        c.send(publish(3, "rm/g", qos=2, pid=i)).expect(f"50 02 00 {i:02X}", f"PUBREC {i}")
    c.send(publish(3, "rm/g", qos=2, pid=4)).closed()
    c = Case(f, "MQTT-4.6.0-2 3.1.1 client sends 12 QoS 1 in one write past receive_maximum 3: reading pauses, all PUBACKs in order", "limits")
    c.connected(3, ka=2)
    c.send([fl for i in range(1, 13) for fl in publish(3, "rm/h", qos=1, pid=i, payload=f"m{i}")])
    for i in range(1, 13):
        c.expect(f"40 02 00 {i:02X}", f"PUBACK {i}")
    c = Case(f, "MQTT-4.3.2 3.1.1 client holding 1 unreleased QoS 2 sends 5 QoS 1 in one write (receive_maximum 3): all acknowledged", "limits")
    c.connected(3, ka=2)
    c.send(publish(3, "rm/i", qos=2, pid=1)).expect("50 02 00 01", "PUBREC 1")
    c.send([fl for pid in range(2, 7) for fl in publish(3, "rm/i", qos=1, pid=pid)])
    for pid in range(2, 7):
        c.expect(f"40 02 00 {pid:02X}", f"PUBACK {pid}")
    c.send(pubrel(1)).expect("70 02 00 01", "PUBCOMP 1")
    c = Case(f, "MQTT-4.3.2 3.1.1 client holding 2 unreleased QoS 2 sends 2 QoS 1 in one write (receive_maximum 3): both acknowledged", "limits")
    c.connected(3, ka=2)
    for pid in (1, 2):
        c.send(publish(3, "rm/j", qos=2, pid=pid)).expect(f"50 02 00 {pid:02X}", f"PUBREC {pid}")
    c.send(publish(3, "rm/j", qos=1, pid=3) + publish(3, "rm/j", qos=1, pid=4))
    c.expect("40 02 00 03", "PUBACK 3").expect("40 02 00 04", "PUBACK 4")
    c.send(pubrel(1) + pubrel(2)).expect("70 02 00 01", "PUBCOMP 1").expect("70 02 00 02", "PUBCOMP 2")
    # Topic aliases (limits: Topic Alias Maximum 2; main: 4).
    ta = lambda n: [prop(0x23, n.to_bytes(2, "big"), f"Topic Alias {n}")]  # noqa: E731
    c = Case(f, "MQTT-3.3.2.3.4 Topic Alias set, then used with an empty topic (5.0)", "limits")
    c.connected(v, ka=2)
    c.send(publish(v, "ta/x", qos=1, pid=1, pprops=ta(1))).expect("40 02 00 01", "PUBACK 1")
    c.send(publish(v, "", qos=1, pid=2, pprops=ta(1))).expect("40 02 00 02", "PUBACK 2")
    c.send(publish(v, "", qos=0, pprops=ta(1))).ping()
    c = Case(f, "MQTT-3.3.2.3.4 Topic Alias remapped to another topic (5.0)", "limits")
    c.connected(v, ka=2)
    c.send(publish(v, "ta/x", qos=1, pid=1, pprops=ta(2))).expect("40 02 00 01", "PUBACK 1")
    c.send(publish(v, "ta/y", qos=1, pid=2, pprops=ta(2))).expect("40 02 00 02", "PUBACK 2")
    c.send(publish(v, "", qos=1, pid=3, pprops=ta(2))).expect("40 02 00 03", "PUBACK 3")
    for n, node in ((3, "limits"), (0xFFFF, "limits"), (5, "main")):
        c = Case(f, f"MQTT-3.3.2-9 Topic Alias {n} above Topic Alias Maximum: 0x94 ({node}) (5.0)", node)
        c.connected(v, ka=2)
        c.send(publish(v, "ta/z", qos=1, pid=1, pprops=ta(n))).error(v, "94")
    c = Case(f, "MQTT-3.3.2-8 Topic Alias 0: 0x94 (5.0)", "limits")
    c.connected(v, ka=2)
    c.send(publish(v, "ta/z", qos=0, pprops=ta(0))).error(v, "94")
    c = Case(f, "MQTT-3.3.2.3.4 empty topic with an unmapped Topic Alias: protocol error (5.0)", "limits")
    c.connected(v, ka=2)
    c.send(publish(v, "", qos=1, pid=1, pprops=ta(2))).error(v, "82")
    c = Case(f, "MQTT-3.3.4 Topic Aliases do not survive a reconnect (5.0)", "limits")
    cid = c.connected(v, ka=2)
    c.send(publish(v, "ta/w", qos=1, pid=1, pprops=ta(1))).expect("40 02 00 01", "PUBACK 1")
    c.send(disconnect(v)).closed()
    c.send(connect(v, cid, ka=2), "b").expect("20 len 00 00 props", "CONNACK", "b")
    c.send(publish(v, "", qos=1, pid=2, pprops=ta(1)), "b").error(v, "82", "b")
    # Client Maximum Packet Size and Request Problem Information.
    c = Case(f, "MQTT-3.1.2-24 Reason String dropped from SUBACK over the client's Maximum Packet Size (5.0)")
    c.connected(v, cprops=[prop(0x27, b"\x00\x00\x00\x20")])
    c.send(subscribe(v, 1, [("s/a", 0)])).expect("90 04 00 01 00 83", "SUBACK 0x83, no properties")
    c = Case(f, "MQTT-3.1.2-24 DISCONNECT 0x82 without Reason String over the client's Maximum Packet Size (5.0)")
    c.connected(v, cprops=[prop(0x27, b"\x00\x00\x00\x10")])
    c.send(publish(v, "sid/x", qos=1, pid=1, pprops=[prop(0x0B, b"\x05")])).expect("E0 01 82", "DISCONNECT 0x82, no properties")
    c.closed()
    c = Case(f, "MQTT-3.1.2-29 Request Problem Information 0: no Reason String in SUBACK (5.0)")
    c.connected(v, cprops=[prop(0x17, b"\x00")])
    c.send(subscribe(v, 1, [("s/a", 0)])).expect("90 04 00 01 00 83", "SUBACK 0x83, no properties")
    c = Case(f, "MQTT-3.1.2-29 Request Problem Information 0: no Reason String in PUBACK 0x87 (5.0)")
    c.connected(v, cprops=[prop(0x17, b"\x00")])
    c.send(publish(v, "denied/a", qos=1, pid=1)).expect("40 03 00 01 87", "PUBACK 0x87, no properties")
    c = Case(f, "MQTT-3.1.2-29 Request Problem Information 0: no Reason String in UNSUBACK (5.0)")
    c.connected(v, cprops=[prop(0x17, b"\x00")])
    c.send(unsubscribe(v, 1, ["s/a"])).expect("B0 04 00 01 00 11", "UNSUBACK 0x11, no properties")


def gen_subscribe():
    f = "08_subscribe.txt"
    for v in (3, 5):
        vn = vname(v)
        ok = "83" if v == 5 else "80"
        pr = "props " if v == 5 else ""
        c = Case(f, f"MQTT-3.8.4 SUBSCRIBE refused with {ok} (docs/mqtt.md) ({vn})")
        c.connected(v)
        c.send(subscribe(v, 1, [("s/a", 0)])).expect(f"90 len 00 01 {pr}{ok}", f"SUBACK {ok}").ping()
        for q in (1, 2):
            c = Case(f, f"MQTT-3.8.4 SUBSCRIBE QoS {q} refused with {ok} ({vn})")
            c.connected(v)
            c.send(subscribe(v, 2, [("s/q", q)])).expect(f"90 len 00 02 {pr}{ok}", f"SUBACK {ok}")
        c = Case(f, f"MQTT-3.9.3 one return code per filter, in order ({vn})")
        c.connected(v)
        flt = [("s/a", 0), ("s/+/b", 1), ("a/#/b", 0), ("#", 2), ("$share/g/s/c", 1), ("", 0)]
        codes = {"s/a": ok, "s/+/b": ok, "#": ok, "a/#/b": "8F" if v == 5 else "80",
                 "$share/g/s/c": "9E" if v == 5 else "80", "": "8F" if v == 5 else "80"}
        c.send(subscribe(v, 3, flt))
        c.expect(f"90 len 00 03 {pr}" + " ".join(codes[x] for x, _ in flt), "SUBACK, one code per filter")
        for bad in ("a/#/b", "a#", "a+", "+a/b", "a/b#", "#/", "a/#/", "++", "#+", "a/+b/c"):
            c = Case(f, f"MQTT-4.7.1 invalid topic filter {bad} gets {'8F' if v == 5 else '80'} ({vn})")
            c.connected(v)
            c.send(subscribe(v, 4, [(bad, 0)])).expect(f"90 len 00 04 {pr}{'8F' if v == 5 else '80'}", "SUBACK")
        for good in ("+", "+/+", "a/+/#", "/", "$SYS/#", "a//b", "+/#", "/#", "//", "a/b/c/#", "$share"):
            c = Case(f, f"MQTT-4.7.1 valid topic filter {good} gets {ok} ({vn})")
            c.connected(v)
            c.send(subscribe(v, 4, [(good, 0)])).expect(f"90 len 00 04 {pr}{ok}", "SUBACK")
        for bad in ("$share/g", "$share//a", "$share/g+/a", "$share/g/", "$share/g/a/#/b"):
            c = Case(f, f"MQTT-4.8.2-2 malformed shared subscription {bad} gets {'8F' if v == 5 else '80'} ({vn})")
            c.connected(v)
            c.send(subscribe(v, 4, [(bad, 0)])).expect(f"90 len 00 04 {pr}{'8F' if v == 5 else '80'}", "SUBACK")
        c = Case(f, f"MQTT-4.8.2 shared subscription gets {'9E' if v == 5 else '80'} ({vn})")
        c.connected(v)
        c.send(subscribe(v, 5, [("$share/grp/x/y", 0)])).expect(f"90 len 00 05 {pr}{'9E' if v == 5 else '80'}", "SUBACK")
        c = Case(f, f"{rule(v, 'MQTT-3.8.3-3', 'MQTT-3.8.3-2')} SUBSCRIBE without filters ({vn})")
        c.connected(v)
        c.send(subscribe(v, 6, [])).error(v, "82")
        c = Case(f, f"{rule(v, 'MQTT-3.10.3-2', 'MQTT-3.10.3-2')} UNSUBSCRIBE without filters ({vn})")
        c.connected(v)
        c.send(unsubscribe(v, 6, [])).error(v, "82")
        if v == 3:
            for opts in (0x03, 0x04, 0x80, 0xFC):
                c = Case(f, f"MQTT-3-8.3-4 requested QoS byte {opts:02X} ({vn})")
                c.connected(v)
                c.send(subscribe(v, 7, [("s/o", opts)])).closed()
        else:
            for opts, rc, what in ((0x40, "81", "reserved bit 6"), (0x80, "81", "reserved bit 7"),
                                   (0xC0, "81", "reserved bits 6-7"), (0x03, "82", "Maximum QoS 3"),
                                   (0x30, "82", "Retain Handling 3")):
                c = Case(f, f"§3.8.3.1 subscription options {opts:02X} {what} (5.0)")
                c.connected(v)
                c.send(subscribe(v, 7, [("s/o", opts)])).error(v, rc)
            for opts, what in ((0x04, "No Local"), (0x08, "Retain As Published"), (0x10, "Retain Handling 1"),
                               (0x20, "Retain Handling 2"), (0x2E, "all options")):
                c = Case(f, f"MQTT-3.8.3.1 subscription options {opts:02X} {what} valid (5.0)")
                c.connected(v)
                c.send(subscribe(v, 7, [("s/o", opts)])).expect("90 len 00 07 props 83", "SUBACK 0x83")
            c = Case(f, "MQTT-3.8.3-4 No Local on a shared subscription is a protocol error (5.0)")
            c.connected(v)
            c.send(subscribe(v, 7, [("$share/g/s", 0x04)])).error(v, "82")
            c = Case(f, "MQTT-3.9.2.1.2 SUBACK carries a Reason String (5.0)")
            c.connected(v)
            c.send(subscribe(v, 8, [("s/r", 0)])).expect("90 len 00 08 props[+1F] 83", "SUBACK with 0x1F")
            c = Case(f, "MQTT-3.8.2.1.2 Subscription Identifier accepted in SUBSCRIBE (5.0)")
            c.connected(v)
            c.send(subscribe(v, 8, [("s/r", 0)], sprops=[prop(0x0B, b"\x81\x01")]))
            c.expect("90 len 00 08 props 83", "SUBACK 0x83")
        c = Case(f, f"MQTT-3.8.4 SUBSCRIBE then PUBLISH: the connection carries on ({vn})")
        c.connected(v)
        c.send(subscribe(v, 9, [("s/x", 1)])).expect(f"90 len 00 09 {pr}{ok}", "SUBACK")
        c.send(publish(v, "s/x", qos=1, pid=9)).expect("40 02 00 09", "PUBACK 9")
        # UNSUBSCRIBE.
        c = Case(f, f"MQTT-3.10.4 UNSUBSCRIBE answered with UNSUBACK ({vn})")
        c.connected(v)
        c.send(unsubscribe(v, 0x0102, ["s/a"]))
        c.expect("B0 02 01 02" if v == 3 else "B0 len 01 02 props 11", "UNSUBACK")
        c = Case(f, f"MQTT-3.11.3 UNSUBACK one code per filter ({vn})")
        c.connected(v)
        c.send(unsubscribe(v, 3, ["s/a", "a/#/b", "s/+"]))
        c.expect("B0 02 00 03" if v == 3 else "B0 len 00 03 props 11 8F 11", "UNSUBACK")


def gen_misc():
    f = "10_ping_disconnect_auth.txt"
    for v in (3, 5):
        vn = vname(v)
        c = Case(f, f"MQTT-3.12.4-1 PINGREQ answered with PINGRESP ({vn})")
        c.connected(v)
        c.ping().ping()
        c = Case(f, f"MQTT-3.12.4-1 three PINGREQs in one write ({vn})")
        c.connected(v)
        c.send(PINGREQ + PINGREQ + PINGREQ).expect("D0 00", "PINGRESP").expect("D0 00", "PINGRESP").expect("D0 00", "PINGRESP")
        c = Case(f, f"MQTT-3.14.4 DISCONNECT: the server closes without a reply ({vn})")
        c.connected(v)
        c.send(disconnect(v)).closed()
        c = Case(f, f"MQTT-4.2 CONNECT and PUBLISH in one write ({vn})")
        cid = new_cid()
        c.send(connect(v, cid) + publish(v, "one/write", qos=1, pid=1))
        c.expect("20 02 00 00" if v == 3 else "20 len 00 00 props", "CONNACK")
        c.expect("40 02 00 01", "PUBACK 1")
        c = Case(f, f"MQTT-4.2 CONNECT sent one byte at a time ({vn})")
        for b, cm in connect(v, new_cid()):
            for i in range(len(b)):
                c.send(raw(b[i:i + 1], cm if i == 0 else ""))
        c.expect("20 02 00 00" if v == 3 else "20 len 00 00 props", "CONNACK")
        c = Case(f, f"MQTT-4.2 PUBLISH split across writes ({vn})")
        c.connected(v)
        p = b"".join(b for b, _ in publish(v, "split/t", qos=1, pid=3, payload="x" * 40))
        c.send(raw(p[:3], "first 3 bytes")).wait(100).send(raw(p[3:20], "next 17")).wait(100).send(raw(p[20:], "rest"))
        c.expect("40 02 00 03", "PUBACK 3")
        c = Case(f, f"MQTT-4.2 client closes the socket: nothing breaks ({vn})")
        c.connected(v)
        c.send(publish(v, "bye/t", qos=1, pid=1)).expect("40 02 00 01", "PUBACK 1").client_close()
        c.connected(v, conn="b")
        c.ping("b")
        if v == 3:
            c = Case(f, "MQTT-2.2.1 AUTH (type 15) in 3.1.1 closes")
            c.connected(v)
            c.send(auth()).closed()
            continue
        for rc in (0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99):
            c = Case(f, f"MQTT-3.14.2.1 client DISCONNECT with reason {rc:02X} closes without a reply (5.0)")
            c.connected(v)
            c.send(disconnect(v, rc=rc)).closed()
        c = Case(f, "MQTT-3.14.2.2.2 DISCONNECT with Session Expiry after CONNECT had 0: protocol error (5.0)")
        c.connected(v)
        c.send(disconnect(v, rc=0, dprops=[prop(0x11, b"\x00\x00\x00\x3c")])).error(v, "82")
        c = Case(f, "MQTT-3.14.2.2.2 DISCONNECT with Session Expiry 0 after CONNECT had 0 (5.0)")
        c.connected(v)
        c.send(disconnect(v, rc=0, dprops=[prop(0x11, b"\x00\x00\x00\x00")])).closed()
        c = Case(f, "MQTT-3.14.2.2.2 DISCONNECT changes a non-zero Session Expiry (5.0)")
        c.connected(v, cprops=[prop(0x11, b"\x00\x00\x00\x3c")])
        c.send(disconnect(v, rc=0, dprops=[prop(0x11, b"\x00\x00\x00\x78")])).closed()
        c = Case(f, "MQTT-3.14.2.2.3 DISCONNECT with Reason String and User Property (5.0)")
        c.connected(v)
        c.send(disconnect(v, rc=0, dprops=[prop(0x1F), prop(0x26)])).closed()
        for rc in (0x00, 0x18, 0x19):
            c = Case(f, f"MQTT-4.12 AUTH reason {rc:02X} without Authentication Method: protocol error (5.0)")
            c.connected(v)
            c.send(auth(rc=rc, aprops=[prop(0x15)])).error(v, "82")
        c = Case(f, "MQTT-4.12 AUTH before CONNECT closes (5.0)")
        c.send(auth(rc=0x18, aprops=[prop(0x15)])).closed()
    c = Case(f, "MQTT-4.13.2 node drain: 5.0 DISCONNECT 0x9C with Server Reference, 3.1.1 close", "drain")
    c.connected(5, conn="a")
    c.connected(3, conn="b")
    c.send(publish(5, "drain/t", qos=1, pid=1), "a").expect("40 02 00 01", "PUBACK 1", "a")
    c.lines.append("signal TERM")
    c.expect(f"E0 len 9C props[1C={(len('other.example:1883')).to_bytes(2, 'big').hex()}{b'other.example:1883'.hex()}]",
             "DISCONNECT 0x9C, Server Reference", "a", wait=4000)
    c.closed("a")
    c.closed("b", wait=4000)


def gen_acl_routes():
    f = "11_acl_routes.txt"
    for v in (3, 5):
        vn = vname(v)
        # ACL on main: denied/# refused.
        c = Case(f, f"MQTT-3.3.5-2 ACL allows: QoS 1 PUBACK 0x00 ({vn})")
        c.connected(v)
        c.send(publish(v, "allowed/a", qos=1, pid=1)).expect("40 02 00 01", "PUBACK 1")
        c = Case(f, f"MQTT-3.3.5-2 ACL denies QoS 0: dropped, connection open ({vn})")
        c.connected(v)
        c.send(publish(v, "denied/a", qos=0)).ping()
        if v == 5:
            c = Case(f, "MQTT-3.4.2.1 ACL denies QoS 1: PUBACK 0x87 (5.0)")
            c.connected(v)
            c.send(publish(v, "denied/a", qos=1, pid=1)).expect("40 len 00 01 87 *", "PUBACK 0x87").ping()
            c = Case(f, "MQTT-3.5.2.1 ACL denies QoS 2: PUBREC 0x87, PUBREL then PUBCOMP 0x92 (5.0)")
            c.connected(v)
            c.send(publish(v, "denied/b", qos=2, pid=2)).expect("50 len 00 02 87 *", "PUBREC 0x87")
            c.send(pubrel(2)).expect("70 len 00 02 92 *", "PUBCOMP 0x92").ping()
            c = Case(f, "MQTT-4.6.0-2 PUBACK order kept around an ACL refusal (5.0)")
            c.connected(v)
            c.send(publish(v, "ok/a", qos=1, pid=1) + publish(v, "denied/c", qos=1, pid=2) + publish(v, "ok/b", qos=1, pid=3))
            c.expect("40 02 00 01", "PUBACK 1").expect("40 len 00 02 87 *", "PUBACK 2 0x87").expect("40 02 00 03", "PUBACK 3")
            c = Case(f, "MQTT-3.4.2.1 ACL denies a password user's QoS 1 too: PUBACK 0x87 (5.0)")
            c.connected(v, user=USER, pw=PASSWORD)
            c.send(publish(v, "denied/d", qos=1, pid=1)).expect("40 len 00 01 87 *", "PUBACK 0x87")
        else:
            for q in (1, 2):
                c = Case(f, f"MQTT-3.3.5-2 ACL denies QoS {q}: connection closed (3.1.1)")
                c.connected(v)
                c.send(publish(v, "denied/a", qos=q, pid=1)).closed()
        # Routes on strict: routed/# only, no default route, deny_drops_silently.
        c = Case(f, f"MQTT-3.3.5 route matches: QoS 1 PUBACK 0x00 ({vn})", "strict")
        c.connected(v, user=USER, pw=PASSWORD)
        c.send(publish(v, "routed/a", qos=1, pid=1)).expect("40 02 00 01", "PUBACK 1")
        c = Case(f, f"MQTT-3.3.5 no matching route, QoS 0: dropped, connection open ({vn})", "strict")
        c.connected(v, user=USER, pw=PASSWORD)
        c.send(publish(v, "other/a", qos=0)).ping()
        if v == 5:
            c = Case(f, "MQTT-3.4.2.1 no matching route, QoS 1: PUBACK 0x90 (5.0)", "strict")
            c.connected(v, user=USER, pw=PASSWORD)
            c.send(publish(v, "other/a", qos=1, pid=1)).expect("40 len 00 01 90 *", "PUBACK 0x90").ping()
            c = Case(f, "MQTT-3.5.2.1 no matching route, QoS 2: PUBREC 0x90 (5.0)", "strict")
            c.connected(v, user=USER, pw=PASSWORD)
            c.send(publish(v, "other/b", qos=2, pid=2)).expect("50 len 00 02 90 *", "PUBREC 0x90")
            c.send(pubrel(2)).expect("70 len 00 02 92 *", "PUBCOMP 0x92")
            c = Case(f, "MQTT-4.6.0-2 PUBACK order kept around a no-route refusal (5.0)", "strict")
            c.connected(v, user=USER, pw=PASSWORD)
            c.send(publish(v, "other/c", qos=1, pid=1) + publish(v, "routed/c", qos=1, pid=2) + publish(v, "other/d", qos=1, pid=3))
            c.expect("40 len 00 01 90 *", "PUBACK 1 0x90").expect("40 02 00 02", "PUBACK 2").expect("40 len 00 03 90 *", "PUBACK 3 0x90")
            c = Case(f, "MQTT-3.3.5 route filter routed/# matches routed itself (5.0)", "strict")
            c.connected(v, user=USER, pw=PASSWORD)
            c.send(publish(v, "routed", qos=1, pid=1)).expect("40 02 00 01", "PUBACK 1")
        else:
            c = Case(f, "MQTT-3.3.5-2 no matching route with deny_drops_silently: QoS 1 acknowledged and dropped (3.1.1)", "strict")
            c.connected(v, user=USER, pw=PASSWORD)
            c.send(publish(v, "other/a", qos=1, pid=1)).expect("40 02 00 01", "PUBACK 1").ping()
            c = Case(f, "MQTT-3.3.5-2 no matching route with deny_drops_silently: QoS 2 acknowledged and dropped (3.1.1)", "strict")
            c.connected(v, user=USER, pw=PASSWORD)
            c.send(publish(v, "other/b", qos=2, pid=2)).expect("50 02 00 02", "PUBREC 2")
            c.send(pubrel(2)).expect("70 02 00 02", "PUBCOMP 2").ping()


def main():
    import sys
    check = "--check" in sys.argv
    gen_connect()
    gen_fixed_header()
    gen_lengths()
    gen_properties()
    gen_utf8()
    gen_publish()
    gen_flow()
    gen_subscribe()
    gen_timers()
    gen_misc()
    gen_acl_routes()
    names = set()
    texts = {}
    for fn, cases in sorted(FILES.items()):
        parts = ["# Generated by tests/conformance/gen_sequences.py; edit that, not this.\n"
                 "# Format: see tests/conformance/run_conformance.py.\n"]
        for c in cases:
            if c.name in names:
                raise SystemExit(f"duplicate case name: {c.name}")
            names.add(c.name)
            parts.append("\n" + "\n".join(c.lines) + "\n")
        texts[fn] = "".join(parts)
    if check:  # the committed files are what this script makes
        on_disk = {fn for fn in os.listdir(OUT) if fn.endswith(".txt")}
        stale = sorted(on_disk ^ set(texts))
        for fn, text in texts.items():
            if fn in on_disk:
                with open(os.path.join(OUT, fn), encoding="utf-8") as f:
                    if f.read() != text:
                        stale.append(fn)
        if stale:
            raise SystemExit(f"sequences out of date (re-run gen_sequences.py): {', '.join(stale)}")
        print(f"{len(names)} cases in {len(texts)} files: up to date")
        return
    os.makedirs(OUT, exist_ok=True)
    for fn in os.listdir(OUT):
        if fn.endswith(".txt"):
            os.remove(os.path.join(OUT, fn))
    for fn, text in texts.items():
        with open(os.path.join(OUT, fn), "w", encoding="utf-8") as out:
            out.write(text)
    print(f"{len(names)} cases in {len(texts)} files")


if __name__ == "__main__":
    main()
