"""The interop matrix's Python rows (issue 12): the app API, as a Python wallet uses it, against
every server implementation the test kit runs (ElectrumX releases and electrs), each over its
own stand-in bitcoind. Answers are compared with the kit's own records, never with the server's.

`INTEROP_SERVERS` names the implementations, space separated (scripts/interop.sh sets it and
passes this file to scripts/python-test.sh; it is not a `test_*.py`, so the bindings' own run
leaves it out; a test fails, never skips, without the variable). Mempool order differs between implementations
(INTEROP.md #16): histories are compared as sets.
"""

import asyncio
import os
import threading

import pytest
from conftest import Kit, next_event

from electrum_spv import ClientSettings, ElectrumClient, Network, TxState
from electrum_spv_watch import HistoryChanged, TipChanged, watch

# The protocol version each implementation negotiates with the app API's default range.
NEGOTIATED = {
    "electrumx-kyuupichan-1.15.0": "1.4.2",
    "electrumx-1.16.0": "1.4.2",
    "electrumx-1.18.0": "1.4.3",
    "electrumx-1.20.0": "1.6",
    "electrumx-2.0.0": "1.6",
    "electrs-0.10.10": "1.4",
}

SERVERS = os.environ.get("INTEROP_SERVERS", "").split()

_kits = {}
_kits_lock = threading.Lock()


def start_all():
    """Starts a kit per server at once (most of a kit's start is its server indexing)."""
    binary = os.environ.get("TESTKIT_SERVE")
    if not binary:
        pytest.fail("TESTKIT_SERVE is not set: run scripts/interop.sh", pytrace=False)

    def start(name):
        try:
            _kits[name] = Kit(binary, "--server", name)
        except Exception as e:  # reported by the server's tests, which fail with it
            _kits[name] = e

    threads = [threading.Thread(target=start, args=(n,)) for n in SERVERS]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


@pytest.fixture(scope="module", autouse=True)
def kits():
    yield
    for k in _kits.values():
        if isinstance(k, Kit):
            k.stop()


@pytest.fixture(params=SERVERS or ["INTEROP_SERVERS unset"])
def kit(request):
    if not SERVERS:
        pytest.fail("INTEROP_SERVERS is not set: run scripts/interop.sh", pytrace=False)
    with _kits_lock:
        if not _kits:
            start_all()
    k = _kits[request.param]
    if isinstance(k, Exception):
        pytest.fail(f"cannot start {request.param}: {k}", pytrace=False)
    return k


def settings(kit) -> ClientSettings:
    return ClientSettings(network=Network.REGTEST, servers=[kit.hello["server"]])


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, timeout=300))


def records(kit, address):
    answer = kit.command(f"history {address}")
    return answer["status"], sorted((t["txid"], t["height"]) for t in answer["txs"])


def as_records(history):
    """A verified history in the kit's terms, sorted: (txid, Electrum height)."""
    out = []
    for t in history.txs:
        if t.state == TxState.CONFIRMED:
            out.append((t.txid, t.height))
        else:
            out.append((t.txid, 0 if t.state == TxState.MEMPOOL else -1))
    return sorted(out)


def test_negotiate_and_headers(kit):
    async def body():
        client = await ElectrumClient.connect(settings(kit))
        (server,) = await client.servers()
        assert server.protocol == NEGOTIATED[kit.hello["implementation"]]
        tip = await client.tip()
        assert tip.height == kit.command("mine 0")["height"] == server.height
        assert await client.dropped_servers() == []

    run(body())


def test_wallets(kit):
    async def body():
        client = await ElectrumClient.connect(settings(kit))
        addresses = list(kit.hello["addresses"].values())
        histories = await client.histories(addresses)
        used = 0
        for address, history in zip(addresses, histories):
            status, want = records(kit, address)
            assert as_records(history) == want, address
            # The status hashes the server's mempool order: recomputed, not compared with the kit's.
            assert (history.status is None) == (status is None), address
            for t in history.txs:
                assert (t.block_hash is not None) == (t.state == TxState.CONFIRMED), address
            utxos = await client.utxos(address)
            want_utxos = sorted(
                (u["txid"], u["vout"], u["value"], u["height"])
                for u in kit.command(f"utxos {address}")["utxos"]
            )
            assert sorted((u.txid, u.vout, u.value, u.height) for u in utxos) == want_utxos
            balance = await client.balance(address)
            assert balance.confirmed == sum(v for _, _, v, h in want_utxos if h > 0), address
            assert balance.unconfirmed == sum(v for _, _, v, h in want_utxos if h <= 0), address
            used += bool(want)
        assert used > 0

    run(body())


def test_broadcast_and_fees(kit):
    async def body():
        client = await ElectrumClient.connect(settings(kit))
        built = kit.command("build bob p2wpkh 21000")
        assert await client.broadcast(bytes.fromhex(built["hex"])) == built["txid"]
        address = kit.hello["addresses"]["bob-p2wpkh"]
        assert built["txid"] in [t for t, _ in records(kit, address)[1]]
        # The kit's estimate is in BTC/kvB, the app API's in sat/vB.
        assert await client.fee_rate(2) == pytest.approx(kit.hello["fee_rate"] * 100_000)

    run(body())


def test_subscription_payment_confirmation_and_reorg(kit):
    address = kit.hello["addresses"]["bob-p2tr"]

    def has(txid, state):
        return lambda e: isinstance(e, HistoryChanged) and any(
            t.txid == txid and t.state == state for t in e.history.txs
        )

    async def body():
        client = await ElectrumClient.connect(settings(kit))
        events = watch(client, [address])
        first = await next_event(events, lambda e: isinstance(e, HistoryChanged))
        assert as_records(first.history) == records(kit, address)[1]

        txid = kit.command("pay bob p2tr 12345")["txid"]
        await next_event(events, has(txid, TxState.MEMPOOL))
        height = kit.command("mine 1")["height"]
        confirmed = await next_event(events, has(txid, TxState.CONFIRMED))
        (paid,) = [t for t in confirmed.history.txs if t.txid == txid]
        assert paid.height == height

        # A 2-block reorg: the payment's block is replaced, the payment back in the mempool;
        # the new tip and the history may come in either order.
        reorg = kit.command("reorg 2")
        assert reorg["height"] == height + 1
        new_tip = lambda e: isinstance(e, TipChanged) and e.tip.hash == reorg["hash"]  # noqa: E731
        back_in_mempool = has(txid, TxState.MEMPOOL)
        seen = await next_event(events, lambda e: new_tip(e) or back_in_mempool(e))
        other = await next_event(events, back_in_mempool if new_tip(seen) else new_tip)
        back = seen if back_in_mempool(seen) else other
        assert as_records(back.history) == records(kit, address)[1]
        assert await client.dropped_servers() == []
        await events.aclose()

    run(body())
