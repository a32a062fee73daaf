"""Real mainnet data through the Python bindings: the test kit's replay server answers only
from the blocks and headers of `core/tests/data` (as electrs: protocol 1.4, no `cp_height`),
and its checkpoint file ends at period 411, so every transaction it knows (periods 0 and
411) lies below the anchor. `REPLAY_SERVE` names the `replay-serve` binary
(scripts/python-test.sh builds it and sets it).
"""

import asyncio
import json
import os
import subprocess

import pytest

from electrum_spv import ClientSettings, ElectrumClient, ElectrumError, Network


class Replay:
    """A running replay server (`replay-serve`), stopped when its stdin closes."""

    def __init__(self, lie: str = "none"):
        binary = os.environ.get("REPLAY_SERVE")
        if not binary:
            pytest.fail("REPLAY_SERVE is not set: run scripts/python-test.sh", pytrace=False)
        self.process = subprocess.Popen(
            [binary, "--lie", lie], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"replay-serve exited (status {self.process.wait()})")
        self.hello = json.loads(line)

    def settings(self, *others: "Replay") -> ClientSettings:
        return ClientSettings(
            network=Network.MAINNET,
            servers=[self.hello["url"]] + [o.hello["url"] for o in others],
            checkpoints_file=self.hello["checkpoints"],
        )

    def script(self, name: str) -> dict:
        return next(s for s in self.hello["scripts"] if s["name"] == name)

    def stop(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=30)


@pytest.fixture
def honest():
    r = Replay()
    yield r
    r.stop()


def run(coro):
    return asyncio.run(coro)


def records(history):
    return [(t.txid, t.height, t.block_hash) for t in history.txs]


def expected(script):
    return [(t["tx_hash"], t["height"], t["block_hash"]) for t in script["history"]]


def test_histories_in_periods_0_and_411_are_verified(honest):
    async def go():
        client = await ElectrumClient.connect(honest.settings())
        assert (await client.tip()).height == 830592
        checked = 0
        for script in honest.hello["scripts"]:
            history = await client.script_history(bytes.fromhex(script["script_hex"]))
            assert records(history) == expected(script), script["name"]
            assert history.status == script["status"]
            if script["address"]:
                by_address = await client.history(script["address"])
                assert records(by_address) == expected(script)
            checked += 1
        heights = {t["height"] // 2016 for s in honest.hello["scripts"] for t in s["history"]}
        assert heights == {0, 411}
        assert checked >= 4

    run(go())


def test_a_hidden_transaction_is_caught_beside_an_honest_server(honest):
    liar = Replay("hidden-entry-matching-status")
    try:

        async def go():
            client = await ElectrumClient.connect(liar.settings(honest))
            satoshi = honest.script("satoshi-block9-p2pk")
            history = await client.script_history(bytes.fromhex(satoshi["script_hex"]))
            assert records(history) == expected(satoshi)
            dropped = await client.dropped_servers()
            assert [d.server for d in dropped] == [liar.hello["url"]]
            assert "leaves out" in dropped[0].reason

        run(go())
    finally:
        liar.stop()


def test_a_forged_old_header_is_a_verification_error(honest):
    forger = Replay("forged-old-header")
    try:

        async def go():
            client = await ElectrumClient.connect(forger.settings())
            satoshi = honest.script("satoshi-block9-p2pk")
            with pytest.raises(ElectrumError):
                await client.script_history(bytes.fromhex(satoshi["script_hex"]))
            dropped = await client.dropped_servers()
            assert [d.server for d in dropped] == [forger.hello["url"]]
            assert "header" in dropped[0].reason

        run(go())
    finally:
        forger.stop()
