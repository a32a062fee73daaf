"""`broadcast_via_peers` against three real bcoin 1.0.2 nodes in a line A-B-C on 127.0.0.1
(bcoin-serve): what the report says is compared with the nodes' own mempools.

The invalid transaction runs last: bcoin bans the source of an invalid signature."""

import asyncio

import pytest

from conftest import BCOIN_TXS
from electrum_spv import ElectrumError, Network, P2pBroadcastReport, broadcast_via_peers

# bcoin announces on Poisson timers: A to B about 4 s, on to C about 9 s.
PROPAGATION_SECS = 90


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, timeout=PROPAGATION_SECS + 60))


def mempools(bcoin):
    return [set(m) for m in bcoin.command("mempool")["mempools"]]


def assert_spread(bcoin, report: P2pBroadcastReport, tx, recipient, watchers):
    assert report.txid == tx["txid"]
    # Legacy P2PKH: no witness, so the wtxid is the txid.
    assert report.wtxid == tx["txid"]
    assert report.recipients == [recipient]
    assert report.requested_by == [recipient], report
    assert sorted(report.announced_by) == sorted(watchers), report
    assert report.verified_by in watchers, report
    assert report.mismatched_by == [] and report.rejected_by == [], report
    assert report.confirmed, report
    assert 0 < report.elapsed_ms < PROPAGATION_SECS * 1000
    for i, pool in enumerate(mempools(bcoin)):
        assert tx["txid"] in pool, f"node {i} lacks {tx['txid']}"


def test_hello_has_three_peers_and_the_transactions(bcoin):
    assert len(bcoin.hello["peers"]) == 3
    assert len(bcoin.hello["txs"]) == BCOIN_TXS
    assert all(not m for m in mempools(bcoin)), "nothing is broadcast yet"


def test_arguments_are_refused_before_connecting(bcoin):
    a, b, c = bcoin.hello["peers"]
    raw = bytes.fromhex(bcoin.hello["txs"][0]["hex"])
    cases = [
        (b"\x01\x02\x03", [a, b, c], 2),  # not a transaction
        (raw, [a], 1),  # nobody watches
        (raw, [a, b, a], 1),  # a peer twice
        (raw, [a, b, c], 3),  # more confirmations than watchers
        (raw, [a, b, c], 0),
        (raw, [a, "not a peer:x"], 1),
    ]
    for raw_tx, peers, k in cases:
        with pytest.raises(ElectrumError.InvalidArgument):
            run(broadcast_via_peers(raw_tx, peers, k, Network.REGTEST))
    assert all(not m for m in mempools(bcoin)), "nothing was sent"


def test_a_receives_and_b_and_c_announce_it(bcoin):
    a, b, c = bcoin.hello["peers"]
    tx = bcoin.hello["txs"][0]
    report = run(
        broadcast_via_peers(
            bytes.fromhex(tx["hex"]), [a, b, c], 2, Network.REGTEST, timeout_secs=PROPAGATION_SECS
        )
    )
    assert_spread(bcoin, report, tx, a, [b, c])


def test_c_receives_when_listed_first_and_b_and_a_announce_it(bcoin):
    a, b, c = bcoin.hello["peers"]
    tx = bcoin.hello["txs"][1]
    report = run(
        broadcast_via_peers(
            bytes.fromhex(tx["hex"]), [c, b, a], 2, Network.REGTEST, timeout_secs=PROPAGATION_SECS
        )
    )
    assert_spread(bcoin, report, tx, c, [b, a])


def test_an_unreachable_recipient_is_a_connection_error(bcoin):
    a, b, _ = bcoin.hello["peers"]
    raw = bytes.fromhex(bcoin.hello["txs"][0]["hex"])
    # Port 1 on loopback refuses at once; the call waits out its timeout.
    with pytest.raises(ElectrumError.Connection) as e:
        run(broadcast_via_peers(raw, ["127.0.0.1:1", a], 1, Network.REGTEST, timeout_secs=3))
    assert "127.0.0.1:1" in str(e.value)


def test_an_invalid_transaction_is_rejected_by_a_and_not_confirmed(bcoin):
    """Last: A bans us for it (its bans are lifted afterwards)."""
    a, b, c = bcoin.hello["peers"]
    bad = bcoin.hello["invalid"]
    try:
        report = run(
            broadcast_via_peers(bytes.fromhex(bad["hex"]), [a, b, c], 1, Network.REGTEST, timeout_secs=20)
        )
    finally:
        bcoin.command("clearbanned")
    assert report.txid == bad["txid"]
    assert report.requested_by == [a], report
    assert report.rejected_by == [a], "bcoin sends reject: %r" % (report,)
    assert report.announced_by == [] and report.verified_by is None, report
    assert not report.confirmed, report
    for i, pool in enumerate(mempools(bcoin)):
        assert bad["txid"] not in pool, f"node {i} accepted the invalid transaction"
