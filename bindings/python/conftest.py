"""Fixtures: the test kit's regtest chain served by a real ElectrumX on 127.0.0.1.

`TESTKIT_SERVE` names the `testkit-serve` binary (scripts/python-test.sh builds it and sets
it). The kit prints one JSON hello line, then answers commands (`mine N`, `pay WALLET KIND
SATS`, `history ADDRESS`, `utxos ADDRESS`) one JSON line each, and stops when its standard
input closes.
"""

import json
import os
import subprocess

import pytest


class Kit:
    """A running test kit."""

    def __init__(self, binary: str):
        self.process = subprocess.Popen(
            [binary], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"{binary} exited before its hello line (status {self.process.wait()})")
        self.hello = json.loads(line)

    def command(self, line: str) -> dict:
        """Sends one command and returns its JSON answer; fails on an error answer."""
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        answer = json.loads(self.process.stdout.readline())
        if "error" in answer:
            raise RuntimeError(f"kit command {line!r}: {answer['error']}")
        return answer

    def stop(self) -> None:
        self.process.stdin.close()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="session")
def kit():
    binary = os.environ.get("TESTKIT_SERVE")
    if not binary:
        pytest.fail("TESTKIT_SERVE is not set: run scripts/python-test.sh", pytrace=False)
    k = Kit(binary)
    try:
        yield k
    finally:
        k.stop()
