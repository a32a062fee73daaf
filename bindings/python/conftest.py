"""Fixtures: the test kit's regtest chain served by a real ElectrumX on 127.0.0.1 (`kit`), and
three real bcoin nodes in a line on 127.0.0.1 (`bcoin`).

`TESTKIT_SERVE` names the `testkit-serve` binary, `BCOIN_SERVE` the `bcoin-serve` binary
(scripts/python-test.sh builds both and sets them; a test fails, never skips, without them).
Each prints one JSON hello line, then answers commands one JSON line each (testkit-serve:
`mine N`, `pay WALLET KIND SATS`, `history ADDRESS`, `utxos ADDRESS`; bcoin-serve: `mempool`,
`clearbanned`), and stops when its standard input closes.
"""

import asyncio
import json
import os
import subprocess

import pytest


class Kit:
    """A running test kit."""

    def __init__(self, binary: str, *args: str):
        self.process = subprocess.Popen(
            [binary, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
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


async def next_event(events, want, timeout=60):
    """The next event of the async iterator `events` that `want` accepts (others are skipped)."""

    async def find():
        async for event in events:
            if want(event):
                return event

    return await asyncio.wait_for(find(), timeout)


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


# Valid transactions bcoin-serve builds (test_p2p.py uses them all, one per broadcast).
BCOIN_TXS = 2


@pytest.fixture(scope="session")
def bcoin():
    binary = os.environ.get("BCOIN_SERVE")
    if not binary:
        pytest.fail("BCOIN_SERVE is not set: run scripts/python-test.sh", pytrace=False)
    k = Kit(binary, str(BCOIN_TXS))
    try:
        yield k
    finally:
        k.stop()
