"""The Python bindings against the test kit's real ElectrumX: every answer is compared with
the kit's own records of its regtest chain, not with what ElectrumX says."""

import asyncio
import hashlib
import json

import pytest
from conftest import next_event

from electrum_spv import (
    ClientSettings,
    ElectrumClient,
    ElectrumError,
    HeaderSyncListener,
    Network,
    TxState,
    address_to_script,
    script_hash,
)
from electrum_spv_watch import HistoryChanged, TipChanged, watch


def settings(kit, **kw) -> ClientSettings:
    kw.setdefault("servers", [kit.hello["server"]])
    return ClientSettings(network=Network.REGTEST, **kw)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, timeout=120))


def kit_height(kit) -> int:
    return kit.command("mine 0")["height"]


def expected_history(kit, address):
    records = kit.command(f"history {address}")
    return records["status"], [(t["txid"], t["height"]) for t in records["txs"]]


def as_records(history):
    """A verified history in the kit's terms: (txid, Electrum height)."""
    heights = {TxState.CONFIRMED: None, TxState.MEMPOOL: 0, TxState.MEMPOOL_UNCONFIRMED_PARENT: -1}
    out = []
    for t in history.txs:
        h = heights[t.state]
        out.append((t.txid, t.height if h is None else h))
    return out


def test_connect_and_tip_is_the_kits(kit):
    async def body():
        client = await ElectrumClient.connect(settings(kit))
        tip = await client.tip()
        assert tip.height == kit_height(kit)
        assert len(tip.hash) == 64
        servers = await client.servers()
        assert [s.server for s in servers] == [kit.hello["server"]]
        assert await client.dropped_servers() == []

    run(body())


def test_verified_history_equals_kit_records_for_every_address(kit):
    async def body():
        client = await ElectrumClient.connect(settings(kit))
        nonempty = 0
        for name, address in kit.hello["addresses"].items():
            history = await client.history(address)
            status, records = expected_history(kit, address)
            assert as_records(history) == records, name
            assert history.status == status, name
            for t in history.txs:
                assert (t.block_hash is not None) == (t.state == TxState.CONFIRMED), name
            nonempty += bool(records)
        assert nonempty > 0, "the kit's chain should give some address a history"
        # All at once: the same histories, in the order asked.
        addresses = list(kit.hello["addresses"].values())
        together = await client.histories(addresses)
        assert [as_records(h) for h in together] == [expected_history(kit, a)[1] for a in addresses]

    run(body())


def test_utxos_and_balance_equal_kit_records(kit):
    async def body():
        client = await ElectrumClient.connect(settings(kit))
        for name, address in kit.hello["addresses"].items():
            want = sorted(
                (u["txid"], u["vout"], u["value"], u["height"])
                for u in kit.command(f"utxos {address}")["utxos"]
            )
            utxos = await client.utxos(address)
            assert sorted((u.txid, u.vout, u.value, u.height) for u in utxos) == want, name
            balance = await client.balance(address)
            assert balance.confirmed == sum(v for _, _, v, h in want if h > 0), name
            assert balance.unconfirmed == sum(v for _, _, v, h in want if h == 0), name

    run(body())


def test_history_says_what_each_transaction_does_and_when(kit):
    """What each transaction pays the address and spends of it, read from its own bytes, and
    its block's time: checked against the kit's records (its unspent outputs, its blocks)."""

    async def body():
        client = await ElectrumClient.connect(settings(kit))
        spent_somewhere = 0
        for name, address in kit.hello["addresses"].items():
            history = await client.history(address)
            received = {(t.txid, r.vout): r.value for t in history.txs for r in t.received}
            spent = {(s.txid, s.vout): s.value for t in history.txs for s in t.spent}
            spent_somewhere += len(spent)
            # Every spent output was received in the same history, at the same value.
            assert all(received.get(k) == v for k, v in spent.items()), name
            unspent = {k: v for k, v in received.items() if k not in spent}
            kit_utxos = {(u["txid"], u["vout"]): u["value"] for u in kit.command(f"utxos {address}")["utxos"]}
            assert unspent == kit_utxos, name
            assert sum(t.net for t in history.txs) == sum(kit_utxos.values()), name
            for t in history.txs:
                assert t.net == sum(r.value for r in t.received) - sum(s.value for s in t.spent)
                if t.state == TxState.CONFIRMED:
                    block = kit.command(f"block {t.height}")
                    assert (t.block_hash, t.block_time) == (block["hash"], block["time"]), name
                    assert t.position is not None, name
                else:
                    assert (t.block_time, t.position) == (None, None), name
            for u in await client.utxos(address):
                if u.height > 0:
                    assert u.block_time == kit.command(f"block {u.height}")["time"], name
                else:
                    assert u.block_time is None, name
        assert spent_somewhere > 0, "the kit's chain should spend some address's output"

    run(body())


def test_progress_and_a_headers_file_kept_between_launches(kit, tmp_path):
    """The first launch reports the headers verified and writes them to the file, later ones
    are appended; the next launch finds them there and downloads nothing."""

    class Progress(HeaderSyncListener):
        def __init__(self):
            self.calls = []

        def on_progress(self, server, height, tip):
            self.calls.append((server, height, tip))

    async def body():
        path = tmp_path / "headers.bin"
        height = kit_height(kit)
        first = Progress()
        client = await ElectrumClient.connect_with_progress(
            settings(kit, headers_file=str(path)), first
        )
        assert first.calls, "no progress reported"
        assert first.calls[-1] == (kit.hello["server"], height, height)
        heights = [h for _, h, _ in first.calls]
        assert heights == sorted(heights)
        size = path.stat().st_size
        # 88 bytes a header, from genesis (regtest has no checkpoint) to the tip.
        assert size % 88 == 0 and size >= 88 * height
        kit.command("mine 2")
        while (await client.tip()).height < height + 2:
            await asyncio.sleep(0.2)
        assert first.calls[-1] == (kit.hello["server"], height + 2, height + 2)
        assert path.stat().st_size == size + 2 * 88
        del client
        second = Progress()
        client = await ElectrumClient.connect_with_progress(
            settings(kit, headers_file=str(path)), second
        )
        # Nothing downloaded again: the headers came from the file.
        assert second.calls == []
        assert (await client.tip()).height == height + 2
        assert path.stat().st_size == size + 2 * 88

    run(body())


def strip_witness(raw: bytes) -> bytes:
    """The transaction without its witness (what the txid hashes)."""
    if raw[4:6] != b"\x00\x01":
        return raw

    def varint(b, i):
        n = b[i]
        if n < 0xFD:
            return n, i + 1
        size = {0xFD: 2, 0xFE: 4, 0xFF: 8}[n]
        return int.from_bytes(b[i + 1 : i + 1 + size], "little"), i + 1 + size

    i = 6
    n_in, i = varint(raw, i)
    for _ in range(n_in):
        i += 36
        length, i = varint(raw, i)
        i += length + 4
    n_out, i = varint(raw, i)
    for _ in range(n_out):
        i += 8
        length, i = varint(raw, i)
        i += length
    return raw[:4] + raw[6:i] + raw[-4:]


def test_transaction_bytes_hash_to_the_txid(kit):
    async def body():
        client = await ElectrumClient.connect(settings(kit))
        address = kit.hello["addresses"]["alice-p2wpkh"]
        txids = [txid for txid, _ in expected_history(kit, address)[1]]
        assert txids
        for txid in txids[:5]:
            raw = await client.transaction(txid)
            digest = hashlib.sha256(hashlib.sha256(strip_witness(raw)).digest()).digest()
            assert digest[::-1].hex() == txid

    run(body())


def test_tls_with_the_pinned_certificate_and_a_wrong_pin(kit):
    async def body():
        pinned = settings(kit, servers=[kit.hello["ssl"]], tls_pin=kit.hello["tls_pin"])
        client = await ElectrumClient.connect(pinned)
        assert (await client.tip()).height == kit_height(kit)
        wrong = settings(kit, servers=[kit.hello["ssl"]], tls_pin="00" * 32)
        with pytest.raises(ElectrumError.CertificateMismatch) as e:
            await ElectrumClient.connect(wrong)
        assert e.value.presented == kit.hello["tls_pin"]

    run(body())


def test_bad_arguments_are_typed_errors(kit):
    async def body():
        with pytest.raises(ElectrumError.InvalidArgument):
            await ElectrumClient.connect(settings(kit, servers=["not a server"]))
        client = await ElectrumClient.connect(settings(kit))
        mainnet = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"
        with pytest.raises(ElectrumError.InvalidArgument) as refused:
            await client.history(mainnet)
        # A readable message: the kind, then the detail (Rust's Display).
        message = refused.value.display_message()
        assert message == f"invalid argument: {refused.value.detail}", message
        with pytest.raises(ElectrumError.InvalidArgument) as refused:
            await client.transaction("xyz")
        assert refused.value.display_message().startswith("invalid argument: txid xyz")
        with pytest.raises(ElectrumError.InvalidArgument):
            await client.broadcast(b"\x01\x00\x00\x00garbage")
        # A well-formed transaction the node refuses: one already confirmed.
        txid = expected_history(kit, kit.hello["addresses"]["alice-p2wpkh"])[1][0][0]
        with pytest.raises(ElectrumError.Server):
            await client.broadcast(await client.transaction(txid))
        # The client is still usable after each error.
        assert (await client.tip()).height == kit_height(kit)

    run(body())


def test_script_helpers():
    script = address_to_script("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", Network.MAINNET)
    assert script.hex() == "0014751e76e8199196d454941c45d1b3a323f1433bd6"
    expected = hashlib.sha256(script).digest()[::-1].hex()
    assert script_hash(script) == expected
    with pytest.raises(ElectrumError.InvalidArgument):
        address_to_script("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", Network.REGTEST)


def test_fee_rate_is_none_or_positive(kit):
    async def body():
        client = await ElectrumClient.connect(settings(kit))
        rate = await client.fee_rate(2)
        assert rate is None or rate > 0

    run(body())


def test_subscription_reports_a_payment_then_its_confirmation(kit):
    address = kit.hello["addresses"]["bob-p2tr"]

    async def body():
        client = await ElectrumClient.connect(settings(kit))
        events = watch(client, [address])
        first = await next_event(events, lambda e: isinstance(e, HistoryChanged))
        assert as_records(first.history) == expected_history(kit, address)[1]
        start = await next_event(events, lambda e: isinstance(e, TipChanged))
        assert start.tip.height == kit_height(kit)

        txid = kit.command("pay bob p2tr 12345")["txid"]
        seen = await next_event(
            events,
            lambda e: isinstance(e, HistoryChanged) and any(t.txid == txid for t in e.history.txs),
        )
        (paid,) = [t for t in seen.history.txs if t.txid == txid]
        assert paid.state == TxState.MEMPOOL

        height = kit.command("mine 1")["height"]
        tip = await next_event(events, lambda e: isinstance(e, TipChanged) and e.tip.height == height)
        assert tip.tip.height == height
        confirmed = await next_event(
            events,
            lambda e: isinstance(e, HistoryChanged)
            and any(t.txid == txid and t.state == TxState.CONFIRMED for t in e.history.txs),
        )
        (paid,) = [t for t in confirmed.history.txs if t.txid == txid]
        assert paid.height == height and paid.block_hash == tip.tip.hash
        await events.aclose()

    run(body())


def test_socks5_proxy_gets_the_name_and_onion_needs_a_proxy(kit):
    port = kit.hello["server"].rsplit(":", 1)[1]

    async def body():
        proxied = settings(kit, servers=[f"tcp://localhost:{port}"], proxy=kit.hello["socks5"])
        client = await ElectrumClient.connect(proxied)
        assert (await client.tip()).height == kit_height(kit)
        assert f"localhost:{port}" in kit.command("proxied")["proxied"]
        onion = "tcp://" + "a" * 56 + ".onion:50001"
        with pytest.raises(ElectrumError.Proxy):
            await ElectrumClient.connect(settings(kit, servers=[onion]))

    run(body())


def test_servers_from_a_server_list_file(kit, tmp_path):
    host, port = kit.hello["ssl"].removeprefix("ssl://").rsplit(":", 1)
    listing = tmp_path / "servers.json"
    listing.write_text(json.dumps({"regtest": [{"host": host, "ssl": int(port)}]}))

    async def body():
        listed = settings(
            kit, servers=[], server_list_file=str(listing), tls_pin=kit.hello["tls_pin"]
        )
        client = await ElectrumClient.connect(listed)
        assert [s.server for s in await client.servers()] == [kit.hello["ssl"]]
        empty = tmp_path / "empty.json"
        empty.write_text("{}")
        with pytest.raises(ElectrumError.InvalidArgument):
            await ElectrumClient.connect(settings(kit, servers=[], server_list_file=str(empty)))

    run(body())


def test_broadcast_of_a_new_payment(kit):
    address = kit.hello["addresses"]["bob-p2pkh"]

    async def body():
        client = await ElectrumClient.connect(settings(kit))
        built = kit.command("build bob p2pkh 23456")
        txid = await client.broadcast(bytes.fromhex(built["hex"]))
        assert txid == built["txid"]
        # The node took it: the kit's own records hold it in the mempool...
        assert txid in [t for t, _ in expected_history(kit, address)[1]]
        # ...and the verified history shows it once ElectrumX has seen the mempool change.
        for _ in range(30):
            history = await client.history(address)
            if any(t.txid == txid for t in history.txs):
                break
            await asyncio.sleep(1)
        (sent,) = [t for t in history.txs if t.txid == txid]
        assert sent.state != TxState.CONFIRMED and sent.block_hash is None
        assert as_records(history) == expected_history(kit, address)[1]

    run(body())
