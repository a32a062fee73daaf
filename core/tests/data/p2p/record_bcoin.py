#!/usr/bin/python3
"""Records what a real bcoin 1.0.2 regtest node sends to a fresh inbound connection.

  record_bcoin.py NODE_BIN OUT.bin [SECONDS]

Starts `node NODE_BIN --network=regtest --memory=true ...` (bcoin's bin/node, installed as
/work/shared/P2P.md says), connects to its P2P port, sends what core's Peer sends (version
70016 with services 0, relay off; then, on bcoin's version, wtxidrelay, sendaddrv2, verack),
answers bcoin's ping with a pong, and writes every byte bcoin sent in the first SECONDS (default 35: bcoin pings every 30 s) to
OUT.bin. Used once to record core/tests/data/p2p/bcoin_1_0_2_regtest_inbound.bin.
"""
import hashlib, os, socket, struct, subprocess, sys, tempfile, time

MAGIC = bytes.fromhex("fabfb5da")


def frame(cmd, payload=b""):
    h = hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4]
    return MAGIC + cmd + b"\0" * (12 - len(cmd)) + struct.pack("<I", len(payload)) + h + payload


def version():
    addr = struct.pack("<Q", 0) + b"\0" * 10 + b"\xff\xff" + bytes([127, 0, 0, 1]) + struct.pack(">H", 48444)
    me = struct.pack("<Q", 0) + b"\0" * 16 + struct.pack(">H", 0)
    ua = b"/electrum-spv:0.1/"
    return frame(b"version", struct.pack("<iQq", 70016, 0, int(time.time())) + addr + me
                 + struct.pack("<Q", 0x5eed) + bytes([len(ua)]) + ua + struct.pack("<i", 0) + b"\0")


def main():
    node_bin, out = sys.argv[1], sys.argv[2]
    prefix = tempfile.mkdtemp()
    proc = subprocess.Popen(["node", node_bin, "--network=regtest", "--memory=true",
                             "--prefix=" + prefix, "--http-host=127.0.0.1", "--http-port=48432",
                             "--api-key=k", "--port=48444", "--host=127.0.0.1", "--listen=true",
                             "--workers=false", "--only=127.0.0.1:1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                s = socket.create_connection(("127.0.0.1", 48444), timeout=0.2)
                break
            except OSError:
                time.sleep(0.2)
        s.sendall(version())
        got = b""
        sent_verack = False
        end = time.time() + (float(sys.argv[3]) if len(sys.argv) > 3 else 35)
        s.settimeout(0.1)
        while time.time() < end:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                continue
            if not chunk:
                break
            got += chunk
            if not sent_verack and b"version\0" in got:
                s.sendall(frame(b"wtxidrelay") + frame(b"sendaddrv2") + frame(b"verack"))
                sent_verack = True
            i = got.find(b"ping\0\0\0\0\0\0\0\0")
            if i >= 0 and len(got) >= i + 28:
                s.sendall(frame(b"pong", got[i + 20:i + 28]))
        open(out, "wb").write(got)
        print(len(got), "bytes")
    finally:
        proc.terminate()
        proc.wait()


main()
