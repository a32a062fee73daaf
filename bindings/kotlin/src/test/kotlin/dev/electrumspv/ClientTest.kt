// The Kotlin bindings against the test kit's real ElectrumX: every answer is compared with the
// kit's own records of its regtest chain, not with what ElectrumX says.
package dev.electrumspv

import java.io.File
import java.security.MessageDigest
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.channels.ReceiveChannel
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.flow.produceIn
import kotlinx.coroutines.withTimeout
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertNotNull
import kotlin.test.assertNull
import kotlin.test.assertTrue
import kotlin.test.fail

val ALL_TESTS = listOf(
    Test("connectTcpTipIsTheKits", body = ::connectTcpTipIsTheKits),
    Test("historyEqualsKitRecordsForEveryAddress", body = ::historyEqualsKitRecordsForEveryAddress),
    Test("utxosAndBalanceEqualKitRecords", body = ::utxosAndBalanceEqualKitRecords),
    Test("transactionBytesHashToTheTxid", body = ::transactionBytesHashToTheTxid),
    Test("tlsWithThePinnedCertificate", body = ::tlsWithThePinnedCertificate),
    Test("wrongTlsPinIsCertificateMismatch", body = ::wrongTlsPinIsCertificateMismatch),
    Test("twoServersAreCrossChecked", body = ::twoServersAreCrossChecked),
    Test("badArgumentsAreTypedErrors", body = ::badArgumentsAreTypedErrors),
    Test("scriptHelpers", body = ::scriptHelpers),
    Test("feeRateIsNullOrPositive", body = ::feeRateIsNullOrPositive),
    Test("socks5ProxyGetsTheNameAndOnionNeedsAProxy", body = ::socks5ProxyGetsTheNameAndOnionNeedsAProxy),
    Test("serversFromAServerListFile", body = ::serversFromAServerListFile),
    Test("broadcastOfANewPayment", body = ::broadcastOfANewPayment),
    Test("broadcastViaPeersRefusesBadArgumentsAndUnreachableRecipients", body = ::broadcastViaPeersRefusesBadArgumentsAndUnreachableRecipients),
    Test("watchStartsWithEveryHistoryAndTheTip", body = ::watchStartsWithEveryHistoryAndTheTip),
    Test("watchOfAMainnetAddressFailsTheFlow", body = ::watchOfAMainnetAddressFailsTheFlow),
    Test("watchReportsAPaymentThenItsConfirmation", timeoutMs = 180_000, body = ::watchReportsAPaymentThenItsConfirmation),
)

private const val MAINNET_ADDRESS = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"

private fun settings(
    kit: Kit,
    servers: List<String> = listOf(kit.server),
    tlsPin: String? = null,
    proxy: String? = null,
    serverListFile: String? = null,
) = ClientSettings(
    network = Network.REGTEST,
    servers = servers,
    tlsPin = tlsPin,
    proxy = proxy,
    serverListFile = serverListFile,
)

/** Connects, runs [block], and frees the client. */
private suspend fun <T> withClient(settings: ClientSettings, block: suspend (ElectrumClient) -> T): T =
    ElectrumClient.connect(settings).use { block(it) }

/** A history entry in the kit's terms: txid and Electrum height (0, or -1 for the mempool). */
private data class Record(val txid: String, val height: Long)

private data class KitHistory(val status: String?, val txs: List<Record>)

@Suppress("UNCHECKED_CAST")
private fun kitHistory(kit: Kit, address: String): KitHistory {
    val answer = kit.command("history $address")
    val txs = (answer["txs"] as List<Map<String, Any?>>).map {
        Record(it["txid"] as String, it["height"] as Long)
    }
    return KitHistory(answer["status"] as String?, txs)
}

private fun records(history: History): List<Record> = history.txs.map {
    val height = when (it.state) {
        TxState.CONFIRMED -> it.height.toLong()
        TxState.MEMPOOL -> 0L
        TxState.MEMPOOL_UNCONFIRMED_PARENT -> -1L
    }
    Record(it.txid, height)
}

private fun assertIsHex(text: String, length: Int, what: String) {
    assertTrue(text.length == length && text.all { it in "0123456789abcdef" }, "$what is not $length hex digits: $text")
}

suspend fun connectTcpTipIsTheKits(kit: Kit) = withClient(settings(kit)) { client ->
    val tip = client.tip()
    assertEquals(kit.height(), tip.height.toLong(), "tip height")
    assertIsHex(tip.hash, 64, "tip hash")
    assertEquals(listOf(kit.server), client.servers().map { it.server }, "servers")
    assertEquals(kit.height(), client.servers().single().height?.toLong(), "server's verified height")
    assertEquals(emptyList(), client.droppedServers(), "dropped servers")
}

/** Checks [client]'s verified history of the kit's addresses [names] against its records. */
private suspend fun assertHistoriesAreTheKits(kit: Kit, client: ElectrumClient, names: Collection<String> = kit.addresses.keys) {
    var nonEmpty = 0
    for (name in names) {
        val address = kit.addresses.getValue(name)
        val history = client.history(address)
        val want = kitHistory(kit, address)
        assertEquals(want.txs, records(history), "history of $name")
        assertEquals(want.status, history.status, "status of $name")
        for (t in history.txs) {
            assertEquals(t.state == TxState.CONFIRMED, t.blockHash != null, "block hash of $name ${t.txid}")
            if (t.state != TxState.CONFIRMED) assertEquals(0u, t.height, "mempool height of $name ${t.txid}")
        }
        if (want.txs.isNotEmpty()) nonEmpty++
    }
    assertTrue(nonEmpty > 0, "the kit's chain should give some address a history")
}

suspend fun historyEqualsKitRecordsForEveryAddress(kit: Kit) = withClient(settings(kit)) { client ->
    assertHistoriesAreTheKits(kit, client)
    // All at once: the same histories, in the order asked.
    val addresses = kit.addresses.values.toList()
    val together = client.histories(addresses)
    assertEquals(addresses.map { kitHistory(kit, it).txs }, together.map(::records), "histories of all addresses at once")
}

suspend fun utxosAndBalanceEqualKitRecords(kit: Kit) = withClient(settings(kit)) { client ->
    data class Out(val txid: String, val vout: Long, val value: Long, val height: Long)
    var funded = 0
    for ((name, address) in kit.addresses) {
        @Suppress("UNCHECKED_CAST")
        val want = (kit.command("utxos $address")["utxos"] as List<Map<String, Any?>>).map {
            Out(it["txid"] as String, it["vout"] as Long, it["value"] as Long, it["height"] as Long)
        }.sortedWith(compareBy({ it.txid }, { it.vout }))
        val got = client.utxos(address).map {
            Out(it.txid, it.vout.toLong(), it.value.toLong(), it.height.toLong())
        }.sortedWith(compareBy({ it.txid }, { it.vout }))
        assertEquals(want, got, "utxos of $name")
        val balance = client.balance(address)
        assertEquals(want.filter { it.height > 0 }.sumOf { it.value }, balance.confirmed.toLong(), "confirmed balance of $name")
        assertEquals(want.filter { it.height <= 0 }.sumOf { it.value }, balance.unconfirmed.toLong(), "unconfirmed balance of $name")
        if (want.isNotEmpty()) funded++
    }
    assertTrue(funded > 0, "the kit's chain should fund some address")
}

/** The transaction without its witness (what its txid hashes). */
private fun stripWitness(raw: ByteArray): ByteArray {
    if (raw.size < 6 || raw[4] != 0.toByte() || raw[5] != 1.toByte()) return raw
    var i = 6
    fun varint(): Long {
        val n = raw[i].toInt() and 0xff
        i++
        val size = when (n) {
            0xfd -> 2
            0xfe -> 4
            0xff -> 8
            else -> return n.toLong()
        }
        var v = 0L
        for (k in 0 until size) v = v or ((raw[i + k].toLong() and 0xff) shl (8 * k))
        i += size
        return v
    }
    repeat(varint().toInt()) {
        i += 36
        val script = varint().toInt()
        i += script + 4
    }
    repeat(varint().toInt()) {
        i += 8
        val script = varint().toInt()
        i += script
    }
    return raw.copyOfRange(0, 4) + raw.copyOfRange(6, i) + raw.copyOfRange(raw.size - 4, raw.size)
}

private fun txid(raw: ByteArray): String {
    val sha = MessageDigest.getInstance("SHA-256")
    val digest = sha.digest(sha.digest(stripWitness(raw)))
    return digest.reversedArray().joinToString("") { "%02x".format(it) }
}

suspend fun transactionBytesHashToTheTxid(kit: Kit) = withClient(settings(kit)) { client ->
    // Segwit spends (alice-p2wpkh) and legacy ones (alice-p2pkh).
    for (name in listOf("alice-p2wpkh", "alice-p2pkh")) {
        val txids = kitHistory(kit, kit.addresses.getValue(name)).txs.map { it.txid }
        assertTrue(txids.isNotEmpty(), "$name has no history")
        for (txid in txids.take(5)) {
            val raw = client.transaction(txid)
            assertTrue(raw.size > 60, "transaction $txid is ${raw.size} bytes")
            assertEquals(txid, txid(raw), "hash of the bytes of $txid")
        }
    }
}

suspend fun tlsWithThePinnedCertificate(kit: Kit) =
    withClient(settings(kit, servers = listOf(kit.ssl), tlsPin = kit.tlsPin)) { client ->
        assertEquals(kit.height(), client.tip().height.toLong(), "tip height over TLS")
        assertEquals(listOf(kit.ssl), client.servers().map { it.server }, "servers")
        val address = kit.addresses.getValue("alice-p2wpkh")
        assertEquals(kitHistory(kit, address).txs, records(client.history(address)), "history over TLS")
    }

suspend fun wrongTlsPinIsCertificateMismatch(kit: Kit) {
    val e = assertFailsWith<ElectrumException.CertificateMismatch> {
        ElectrumClient.connect(settings(kit, servers = listOf(kit.ssl), tlsPin = "00".repeat(32))).close()
    }
    assertEquals(kit.tlsPin, e.presented, "the certificate the server presented")
    // A pin that is not 64 hex digits is refused before connecting.
    assertFailsWith<ElectrumException.InvalidArgument> {
        ElectrumClient.connect(settings(kit, servers = listOf(kit.ssl), tlsPin = "not a pin")).close()
    }
}

suspend fun twoServersAreCrossChecked(kit: Kit) =
    withClient(settings(kit, servers = listOf(kit.server, kit.ssl), tlsPin = kit.tlsPin)) { client ->
        assertEquals(setOf(kit.server, kit.ssl), client.servers().map { it.server }.toSet(), "servers")
        assertEquals(kit.height(), client.tip().height.toLong(), "tip height")
        // A few addresses (each verified history takes a second or two).
        assertHistoriesAreTheKits(kit, client, listOf("alice-p2pkh", "alice-p2wpkh", "bob-p2tr"))
        assertEquals(emptyList(), client.droppedServers(), "dropped servers")
    }

suspend fun badArgumentsAreTypedErrors(kit: Kit) {
    assertFailsWith<ElectrumException.InvalidArgument>("malformed server") {
        ElectrumClient.connect(settings(kit, servers = listOf("not a server"))).close()
    }
    withClient(settings(kit)) { client ->
        val e = assertFailsWith<ElectrumException.InvalidArgument>("mainnet address on regtest") {
            client.history(MAINNET_ADDRESS)
        }
        assertTrue(e.detail.isNotEmpty(), "InvalidArgument without detail")
        // Readable: Rust's Display, the kind then the detail.
        assertEquals("invalid argument: ${e.detail}", e.displayMessage())
        assertEquals(e.displayMessage(), e.toString())
        assertFailsWith<ElectrumException.InvalidArgument>("utxos of a mainnet address") { client.utxos(MAINNET_ADDRESS) }
        assertFailsWith<ElectrumException.InvalidArgument>("malformed txid") { client.transaction("xyz") }
        assertFailsWith<ElectrumException.InvalidArgument>("garbage transaction") {
            client.broadcast(byteArrayOf(1, 0, 0, 0) + "garbage".toByteArray())
        }
        // A well-formed transaction the node refuses: one already confirmed.
        val confirmed = kitHistory(kit, kit.addresses.getValue("alice-p2wpkh")).txs.first { it.height > 0 }
        assertFailsWith<ElectrumException.Server>("rebroadcast of a confirmed transaction") {
            client.broadcast(client.transaction(confirmed.txid))
        }
        // The client is still usable after each error.
        assertEquals(kit.height(), client.tip().height.toLong(), "tip after the errors")
    }
}

suspend fun broadcastOfANewPayment(kit: Kit) = withClient(settings(kit)) { client ->
    val address = kit.addresses.getValue("bob-p2sh-p2wpkh")
    val built = kit.command("build bob p2sh-p2wpkh 34567")
    val raw = (built["hex"] as String).chunked(2).map { it.toInt(16).toByte() }.toByteArray()
    val txid = client.broadcast(raw)
    assertEquals(built["txid"], txid, "txid the client computed and the server confirmed")
    // The node took it: the kit's own records hold it in the mempool...
    assertTrue(kitHistory(kit, address).txs.any { it.txid == txid }, "the kit has $txid")
    // ...and the verified history shows it once ElectrumX has seen the mempool change.
    var history = client.history(address)
    var waitedSeconds = 0
    while (history.txs.none { it.txid == txid } && waitedSeconds < 30) {
        delay(1_000)
        waitedSeconds++
        history = client.history(address)
    }
    val sent = history.txs.singleOrNull { it.txid == txid }
    assertTrue(sent != null && sent.state != TxState.CONFIRMED && sent.blockHash == null, "$txid in the mempool: $sent")
    assertEquals(kitHistory(kit, address).txs, records(history), "history after the broadcast")
}

// The P2P broadcast's typed errors (the broadcast itself is tested against real bcoin nodes
// in bindings/python/test_p2p.py; this kit has no P2P peers).
suspend fun broadcastViaPeersRefusesBadArgumentsAndUnreachableRecipients(kit: Kit) {
    val built = kit.command("build bob p2pkh 23456")
    val raw = (built["hex"] as String).chunked(2).map { it.toInt(16).toByte() }.toByteArray()
    assertFailsWith<ElectrumException.InvalidArgument>("one peer: nobody watches") {
        broadcastViaPeers(raw, listOf("127.0.0.1:1"), 1u, Network.REGTEST)
    }
    assertFailsWith<ElectrumException.InvalidArgument>("not a transaction") {
        broadcastViaPeers(byteArrayOf(1, 2, 3), listOf("127.0.0.1:1", "127.0.0.1:2"), 1u, Network.REGTEST)
    }
    // Port 1 on loopback refuses at once; the call waits out its timeout.
    val e = assertFailsWith<ElectrumException.Connection>("an unreachable recipient") {
        broadcastViaPeers(raw, listOf("127.0.0.1:1", "127.0.0.1:2"), 1u, Network.REGTEST, timeoutSecs = 3u)
    }
    assertTrue(e.detail.contains("127.0.0.1:1"), "names the recipient: ${e.detail}")
}

@Suppress("UNUSED_PARAMETER")
suspend fun scriptHelpers(kit: Kit) {
    val script = addressToScript(MAINNET_ADDRESS, Network.MAINNET)
    assertEquals("0014751e76e8199196d454941c45d1b3a323f1433bd6", script.joinToString("") { "%02x".format(it) })
    val expected = MessageDigest.getInstance("SHA-256").digest(script).reversedArray().joinToString("") { "%02x".format(it) }
    assertEquals(expected, scriptHash(script), "script hash")
    assertFailsWith<ElectrumException.InvalidArgument> { addressToScript(MAINNET_ADDRESS, Network.REGTEST) }
}

suspend fun feeRateIsNullOrPositive(kit: Kit) = withClient(settings(kit)) { client ->
    val rate = client.feeRate(2u)
    assertTrue(rate == null || rate > 0.0, "fee rate $rate")
}

suspend fun socks5ProxyGetsTheNameAndOnionNeedsAProxy(kit: Kit) {
    val port = kit.server.substringAfterLast(':')
    withClient(settings(kit, servers = listOf("tcp://localhost:$port"), proxy = kit.socks5)) { client ->
        assertEquals(kit.height(), client.tip().height.toLong(), "tip through the proxy")
    }
    @Suppress("UNCHECKED_CAST")
    val proxied = kit.command("proxied")["proxied"] as List<String>
    assertTrue("localhost:$port" in proxied, "the proxy was asked for $proxied, not the name localhost:$port")
    val onion = "tcp://" + "a".repeat(56) + ".onion:50001"
    assertFailsWith<ElectrumException.Proxy>("an onion server without a proxy") {
        ElectrumClient.connect(settings(kit, servers = listOf(onion))).close()
    }
}

suspend fun serversFromAServerListFile(kit: Kit) {
    val (host, port) = kit.ssl.removePrefix("ssl://").let { it.substringBeforeLast(':') to it.substringAfterLast(':') }
    val dir = kotlin.io.path.createTempDirectory("kotlin-test").toFile()
    try {
        val listing = File(dir, "servers.json")
        listing.writeText("""{"regtest": [{"host": "$host", "ssl": $port}]}""")
        withClient(settings(kit, servers = emptyList(), serverListFile = listing.path, tlsPin = kit.tlsPin)) { client ->
            assertEquals(listOf(kit.ssl), client.servers().map { it.server }, "servers from the list")
        }
        val empty = File(dir, "empty.json")
        empty.writeText("{}")
        assertFailsWith<ElectrumException.InvalidArgument>("an empty server list") {
            ElectrumClient.connect(settings(kit, servers = emptyList(), serverListFile = empty.path)).close()
        }
    } finally {
        dir.deleteRecursively()
    }
}

/** The next event of [events] that [want] accepts (others are skipped), within [ms]. */
private suspend fun ReceiveChannel<WalletEvent>.next(
    what: String,
    ms: Long = 60_000,
    want: (WalletEvent) -> Boolean,
): WalletEvent {
    val skipped = mutableListOf<WalletEvent>()
    return try {
        withTimeout(ms) {
            while (true) {
                val event = receive()
                if (want(event)) return@withTimeout event
                skipped.add(event)
            }
            @Suppress("UNREACHABLE_CODE")
            error("unreachable")
        }
    } catch (e: kotlinx.coroutines.TimeoutCancellationException) {
        fail("no $what within $ms ms; skipped ${skipped.map(::summary)}")
    }
}

private fun summary(e: WalletEvent): String = when (e) {
    is WalletEvent.TipChanged -> "tip ${e.tip.height}"
    is WalletEvent.HistoryChanged -> "history ${e.address} ${records(e.history)}"
    is WalletEvent.ConnectionChanged -> "connected=${e.connected}"
    is WalletEvent.Failed -> "failed ${e.error::class.simpleName}: ${e.error.message}"
}

/** Collects `client.watch(addresses)` into a channel for [block]; stops the collection after. */
private suspend fun <T> watching(
    client: ElectrumClient,
    addresses: List<String>,
    block: suspend CoroutineScope.(ReceiveChannel<WalletEvent>) -> T,
): T = coroutineScope {
    val events = client.watch(addresses).produceIn(this)
    try {
        block(events)
    } finally {
        events.cancel()
    }
}

suspend fun watchStartsWithEveryHistoryAndTheTip(kit: Kit) = withClient(settings(kit)) { client ->
    val addresses = listOf("alice-p2wpkh", "bob-p2pkh", "miner-p2tr").mapNotNull { kit.addresses[it] }
    assertEquals(3, addresses.size, "kit addresses ${kit.addresses.keys}")
    watching(client, addresses) { events ->
        // The first events: one history per address and the tip, before any change.
        val first = List(addresses.size + 1) { events.next("first event") { true } }
        val histories = first.filterIsInstance<WalletEvent.HistoryChanged>()
        assertEquals(addresses.toSet(), histories.map { it.address }.toSet(), "addresses of the first histories")
        for (h in histories) {
            val want = kitHistory(kit, h.address)
            assertEquals(want.txs, records(h.history), "first history of ${h.address}")
            assertEquals(want.status, h.history.status, "first status of ${h.address}")
        }
        val tips = first.filterIsInstance<WalletEvent.TipChanged>()
        assertEquals(1, tips.size, "tips among the first events: ${first.map(::summary)}")
        assertEquals(kit.height(), tips.single().tip.height.toLong(), "first tip")
    }
}

suspend fun watchOfAMainnetAddressFailsTheFlow(kit: Kit) = withClient(settings(kit)) { client ->
    assertFailsWith<ElectrumException.InvalidArgument> {
        client.watch(listOf(kit.addresses.getValue("alice-p2wpkh"), MAINNET_ADDRESS)).first()
    }
    // The client is still usable.
    assertEquals(kit.height(), client.tip().height.toLong(), "tip after the failed watch")
}

suspend fun watchReportsAPaymentThenItsConfirmation(kit: Kit) = withClient(settings(kit)) { client ->
    val address = kit.addresses.getValue("bob-p2wpkh")
    watching(client, listOf(address)) { events ->
        val first = events.next("first history") { it is WalletEvent.HistoryChanged } as WalletEvent.HistoryChanged
        assertEquals(kitHistory(kit, address).txs, records(first.history), "first history")
        val start = events.next("first tip") { it is WalletEvent.TipChanged } as WalletEvent.TipChanged
        assertEquals(kit.height(), start.tip.height.toLong(), "first tip")

        val txid = kit.command("pay bob p2wpkh 50000")["txid"] as String
        val seen = events.next("history with $txid") { e ->
            e is WalletEvent.HistoryChanged && e.history.txs.any { it.txid == txid }
        } as WalletEvent.HistoryChanged
        assertEquals(address, seen.address, "address of the change")
        val paid = seen.history.txs.single { it.txid == txid }
        assertEquals(TxState.MEMPOOL, paid.state, "state of the payment")
        assertNull(paid.blockHash, "block hash of the mempool payment")
        assertEquals(kitHistory(kit, address), KitHistory(seen.history.status, records(seen.history)), "history with the payment")

        val height = kit.command("mine 1")["height"] as Long
        // The new tip and the confirmed history, in either order.
        var tip: Tip? = null
        var confirmed: History? = null
        while (tip == null || confirmed == null) {
            when (val e = events.next("tip $height and $txid confirmed") { e ->
                (e is WalletEvent.TipChanged && e.tip.height.toLong() == height) ||
                    (e is WalletEvent.HistoryChanged && e.history.txs.any { it.txid == txid && it.state == TxState.CONFIRMED })
            }) {
                is WalletEvent.TipChanged -> tip = e.tip
                is WalletEvent.HistoryChanged -> confirmed = e.history
                else -> {}
            }
        }
        val mined = confirmed.txs.single { it.txid == txid }
        assertEquals(height, mined.height.toLong(), "height of the confirmed payment")
        assertEquals(tip.hash, assertNotNull(mined.blockHash, "block hash of the confirmed payment"), "block of the payment")
        assertEquals(kitHistory(kit, address), KitHistory(confirmed.status, records(confirmed)), "history after mining")
    }
}
