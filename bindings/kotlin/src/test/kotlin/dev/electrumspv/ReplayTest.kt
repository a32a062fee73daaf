// Real mainnet data through the Kotlin bindings: the test kit's replay server answers only
// from the blocks and headers of `core/tests/data` (as electrs: protocol 1.4, no `cp_height`),
// and its checkpoint file ends at period 411, so every transaction it knows (periods 0 and
// 411) lies below the anchor. The `replay-serve` binary comes from the runner's --replay or
// the REPLAY_SERVE environment variable (scripts/kotlin-test.sh builds it and passes it).
// Mirrors bindings/python/test_mainnet_replay.py.
package dev.electrumspv

import java.io.BufferedReader
import java.io.BufferedWriter
import java.io.File
import java.util.concurrent.TimeUnit
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertTrue
import kotlin.test.fail

/** The replay tests; they start their own replay servers and do not use the kit. */
val REPLAY_TESTS = listOf(
    Test("replayHistoriesInPeriods0And411AreVerified") { replayHistoriesInPeriods0And411AreVerified() },
    Test("replayHiddenTransactionIsCaughtBesideAnHonestServer") { replayHiddenTransactionIsCaughtBesideAnHonestServer() },
    Test("replayForgedOldHeaderIsAVerificationError") { replayForgedOldHeaderIsAVerificationError() },
)

/** The `replay-serve` binary, set by the runner (--replay, else REPLAY_SERVE). */
var replayServeBinary: String? = null

/**
 * A running replay server (`replay-serve --lie LIE`): prints one JSON hello line (`url`,
 * `checkpoints`, `lie`, `scripts`) and serves until its standard input is closed. Fails the test
 * (never skips it) when the binary is not given or missing.
 */
class Replay(val lie: String = "none") : AutoCloseable {
    private val process: Process
    private val input: BufferedWriter
    private val output: BufferedReader

    /** The hello line. */
    val hello: Map<String, Any?>

    init {
        val binary = replayServeBinary
            ?: fail("no replay-serve binary: pass --replay PATH or set REPLAY_SERVE (scripts/kotlin-test.sh does)")
        if (!File(binary).canExecute()) fail("the replay-serve binary $binary is missing or not executable")
        process = ProcessBuilder(binary, "--lie", lie)
            .redirectError(ProcessBuilder.Redirect.INHERIT)
            .start()
        input = process.outputStream.bufferedWriter()
        output = process.inputStream.bufferedReader()
        val line = output.readLine()
        if (line == null) {
            val status = process.waitFor()
            throw IllegalStateException("replay-serve --lie $lie exited before its hello line (status $status)")
        }
        @Suppress("UNCHECKED_CAST")
        hello = Json.parse(line) as Map<String, Any?>
    }

    val url: String get() = hello["url"] as String

    @Suppress("UNCHECKED_CAST")
    val scripts: List<Map<String, Any?>> get() = hello["scripts"] as List<Map<String, Any?>>

    /** Mainnet settings with this server first, then [others], and this server's checkpoints. */
    fun settings(vararg others: Replay) = ClientSettings(
        network = Network.MAINNET,
        servers = listOf(url) + others.map { it.url },
        checkpointsFile = hello["checkpoints"] as String,
    )

    fun script(name: String): Map<String, Any?> =
        scripts.firstOrNull { it["name"] == name } ?: fail("replay-serve has no script $name")

    /** Stops the server: closes its standard input and waits for it to exit (30 s at most). */
    fun stop() {
        runCatching { input.close() }
        if (!process.waitFor(30, TimeUnit.SECONDS)) {
            process.destroyForcibly()
            process.waitFor()
            throw IllegalStateException("replay-serve --lie $lie did not exit within 30 s of its stdin closing (killed)")
        }
    }

    override fun close() = stop()
}

/** A history row as the hello gives it: txid, height, block hash. */
private data class Row(val txid: String, val height: Long, val blockHash: String?)

private fun rows(history: History): List<Row> =
    history.txs.map { Row(it.txid, it.height.toLong(), it.blockHash) }

@Suppress("UNCHECKED_CAST")
private fun expectedRows(script: Map<String, Any?>): List<Row> =
    (script["history"] as List<Map<String, Any?>>).map {
        Row(it["tx_hash"] as String, it["height"] as Long, it["block_hash"] as String)
    }

private fun scriptBytes(script: Map<String, Any?>): ByteArray {
    val hex = script["script_hex"] as String
    return ByteArray(hex.length / 2) { hex.substring(2 * it, 2 * it + 2).toInt(16).toByte() }
}

/** Connects, runs [block], and frees the client. */
private suspend fun <T> withReplayClient(settings: ClientSettings, block: suspend (ElectrumClient) -> T): T =
    ElectrumClient.connect(settings).use { block(it) }

suspend fun replayHistoriesInPeriods0And411AreVerified() = Replay().use { honest ->
    withReplayClient(honest.settings()) { client ->
        assertEquals(830592L, client.tip().height.toLong(), "tip height")
        var checked = 0
        for (script in honest.scripts) {
            val name = script["name"] as String
            val history = client.scriptHistory(scriptBytes(script))
            assertEquals(expectedRows(script), rows(history), "history of $name")
            assertEquals(script["status"] as String?, history.status, "status of $name")
            val address = script["address"] as String?
            if (address != null) {
                val byAddress = client.history(address)
                assertEquals(expectedRows(script), rows(byAddress), "history of $name by address $address")
                assertEquals(script["status"] as String?, byAddress.status, "status of $name by address")
            }
            checked++
        }
        val periods = honest.scripts.flatMap { expectedRows(it) }.map { it.height / 2016 }.toSet()
        assertEquals(setOf(0L, 411L), periods, "difficulty periods of the scripts' histories")
        assertTrue(checked >= 4, "only $checked replay scripts")
    }
}

suspend fun replayHiddenTransactionIsCaughtBesideAnHonestServer() = Replay().use { honest ->
    Replay("hidden-entry-matching-status").use { liar ->
        withReplayClient(liar.settings(honest)) { client ->
            val satoshi = honest.script("satoshi-block9-p2pk")
            val history = client.scriptHistory(scriptBytes(satoshi))
            assertEquals(expectedRows(satoshi), rows(history), "Satoshi's history")
            val dropped = client.droppedServers()
            assertEquals(listOf(liar.url), dropped.map { it.server }, "dropped servers: $dropped")
            assertTrue("leaves out" in dropped[0].reason, "the liar's reason: ${dropped[0].reason}")
        }
    }
}

suspend fun replayForgedOldHeaderIsAVerificationError() = Replay().use { honest ->
    Replay("forged-old-header").use { forger ->
        withReplayClient(forger.settings()) { client ->
            val satoshi = honest.script("satoshi-block9-p2pk")
            assertFailsWith<ElectrumException>("Satoshi's history from a forged header") {
                client.scriptHistory(scriptBytes(satoshi))
            }
            val dropped = client.droppedServers()
            assertEquals(listOf(forger.url), dropped.map { it.server }, "dropped servers: $dropped")
            assertTrue("header" in dropped[0].reason, "the forger's reason: ${dropped[0].reason}")
        }
    }
}
