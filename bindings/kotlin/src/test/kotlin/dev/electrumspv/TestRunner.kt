// A small test runner (no JUnit here): runs named test functions against one running test kit,
// prints "ok: NAME" or "FAILED: NAME: reason" for each, and ends with
// "kotlin: N passed, M failed"; exits non-zero on any failure.
//
//   java ... dev.electrumspv.TestRunnerKt [--kit PATH/testkit-serve] [--replay PATH/replay-serve]
//       [TEST_NAME...]
//
// The kit's binary comes from --kit or the TESTKIT_SERVE environment variable, the replay
// server's (ReplayTest.kt; its tests fail without it) from --replay or REPLAY_SERVE; test
// names select tests (all by default).
package dev.electrumspv

import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import kotlin.system.exitProcess

/** One test: a name and a body run against the kit, with a deadline. */
class Test(val name: String, val timeoutMs: Long = 120_000, val body: suspend (Kit) -> Unit)

fun main(args: Array<String>) {
    var binary: String? = System.getenv("TESTKIT_SERVE")
    replayServeBinary = System.getenv("REPLAY_SERVE")?.takeIf { it.isNotEmpty() }
    val selected = mutableListOf<String>()
    var i = 0
    while (i < args.size) {
        if (args[i] == "--kit" && i + 1 < args.size) {
            binary = args[i + 1]
            i += 2
        } else if (args[i] == "--replay" && i + 1 < args.size) {
            replayServeBinary = args[i + 1]
            i += 2
        } else {
            selected.add(args[i++])
        }
    }
    val everyTest = ALL_TESTS + REPLAY_TESTS
    val unknown = selected.filter { name -> everyTest.none { it.name == name } }
    val tests = if (selected.isEmpty()) everyTest else everyTest.filter { it.name in selected }

    var passed = 0
    val failures = mutableListOf<String>()
    fun fail(name: String, reason: String) {
        failures.add("$name: $reason")
        println("FAILED: $name: $reason")
    }
    unknown.forEach { fail(it, "no such test") }

    if (binary == null) {
        fail("testkit-serve", "no kit binary: pass --kit PATH or set TESTKIT_SERVE")
    } else {
        val kit = try {
            Kit(binary)
        } catch (e: Exception) {
            fail("testkit-serve", "did not start: $e")
            null
        }
        if (kit != null) {
            try {
                println("kit: ElectrumX on ${kit.server} and ${kit.ssl}, regtest height ${kit.hello["height"]}")
                for (test in tests) {
                    val started = System.nanoTime()
                    val outcome = runCatching {
                        runBlocking { withTimeout(test.timeoutMs) { test.body(kit) } }
                    }
                    val ms = (System.nanoTime() - started) / 1_000_000
                    outcome.fold(
                        onSuccess = {
                            passed++
                            println("ok: ${test.name} ($ms ms)")
                        },
                        onFailure = { e -> fail(test.name, describe(e)) },
                    )
                }
            } finally {
                // Stopping the kit must leave none of its processes (ElectrumX) running.
                val left = kit.stop()
                if (left.isEmpty()) {
                    passed++
                    println("ok: kitStopsCleanly")
                } else {
                    fail("kitStopsCleanly", "still running after the kit exited (killed now): $left")
                }
            }
        }
    }
    if (failures.isNotEmpty()) {
        println("failures:")
        failures.forEach { println("  $it") }
    }
    println("kotlin: $passed passed, ${failures.size} failed")
    // The library's runtime threads must not keep the JVM alive.
    exitProcess(if (failures.isEmpty()) 0 else 1)
}

/** A failure's reason: the exception and where in the tests it was thrown. */
private fun describe(e: Throwable): String {
    val text = when (e) {
        is ElectrumException -> "${e::class.qualifiedName}: ${e.message}"
        else -> e.toString()
    }
    val at = e.stackTrace.firstOrNull {
        it.className.startsWith("dev.electrumspv.ClientTest") || it.className.startsWith("dev.electrumspv.ReplayTest")
    }
    return if (at != null) "$text (at ${at.fileName}:${at.lineNumber})" else text
}
