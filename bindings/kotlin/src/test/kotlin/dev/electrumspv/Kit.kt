// The test kit's regtest chain and real ElectrumX, driven through `testkit-serve`, and the
// little the tests need to read its JSON lines.
package dev.electrumspv

import java.io.BufferedReader
import java.io.BufferedWriter
import java.util.concurrent.TimeUnit

/**
 * A running `testkit-serve`: prints one JSON hello line (`server`, `ssl`, `tls_pin`, `socks5`,
 * `height`, `addresses`), then answers one JSON line per command line (`mine N`,
 * `pay WALLET KIND SATS`, `history ADDRESS`, `utxos ADDRESS`, `proxied`). Closing its standard
 * input stops ElectrumX and makes it exit.
 */
class Kit(binary: String) : AutoCloseable {
    private val process: Process = ProcessBuilder(binary)
        .redirectError(ProcessBuilder.Redirect.INHERIT)
        .start()
    private val input: BufferedWriter = process.outputStream.bufferedWriter()
    private val output: BufferedReader = process.inputStream.bufferedReader()

    /** The hello line. */
    val hello: Map<String, Any?>

    init {
        val line = output.readLine()
        if (line == null) {
            val status = process.waitFor()
            throw IllegalStateException("$binary exited before its hello line (status $status)")
        }
        @Suppress("UNCHECKED_CAST")
        hello = Json.parse(line) as Map<String, Any?>
    }

    val server: String get() = hello["server"] as String
    val ssl: String get() = hello["ssl"] as String
    val tlsPin: String get() = hello["tls_pin"] as String
    val socks5: String get() = hello["socks5"] as String

    /** Kit address name (`alice-p2wpkh`, ...) to address. */
    @Suppress("UNCHECKED_CAST")
    val addresses: Map<String, String> get() = hello["addresses"] as Map<String, String>

    /** Sends one command and returns its JSON answer; fails on an error answer. */
    @Synchronized
    fun command(line: String): Map<String, Any?> {
        input.write(line)
        input.newLine()
        input.flush()
        val answer = output.readLine() ?: throw IllegalStateException("kit exited during '$line'")
        @Suppress("UNCHECKED_CAST")
        val json = Json.parse(answer) as Map<String, Any?>
        json["error"]?.let { throw IllegalStateException("kit command '$line': $it") }
        return json
    }

    /** The chain's height now. */
    fun height(): Long = command("mine 0")["height"] as Long

    /**
     * Stops the kit: closes its standard input (it then stops ElectrumX and exits), kills it if
     * it has not exited within 60 s, and waits for the processes it started. Returns those
     * still running 30 s after that (killed then), as text; empty when it stopped cleanly.
     */
    fun stop(): List<String> {
        val children = runCatching { process.descendants().toList() }.getOrDefault(emptyList())
        runCatching { input.close() }
        if (!process.waitFor(60, TimeUnit.SECONDS)) {
            process.destroyForcibly()
            process.waitFor()
        }
        val deadline = System.nanoTime() + 30_000_000_000L
        while (children.any { it.isAlive } && System.nanoTime() < deadline) Thread.sleep(100)
        val left = children.filter { it.isAlive }
        left.forEach { it.destroyForcibly() }
        return left.map { "pid ${it.pid()} ${it.info().commandLine().orElse("?")}" }
    }

    override fun close() {
        stop()
    }
}

/** A JSON reader for the kit's lines: objects, arrays, strings, integers (Long), true/false/null. */
object Json {
    fun parse(text: String): Any? {
        val reader = Reader(text)
        val value = reader.value()
        reader.skipSpace()
        require(reader.pos == text.length) { "trailing characters at ${reader.pos} in $text" }
        return value
    }

    private class Reader(val s: String) {
        var pos = 0

        fun skipSpace() {
            while (pos < s.length && s[pos].isWhitespace()) pos++
        }

        fun expect(c: Char) {
            skipSpace()
            require(pos < s.length && s[pos] == c) { "expected '$c' at $pos in $s" }
            pos++
        }

        fun value(): Any? {
            skipSpace()
            require(pos < s.length) { "unexpected end of $s" }
            return when (val c = s[pos]) {
                '{' -> obj()
                '[' -> array()
                '"' -> string()
                't' -> word("true", true)
                'f' -> word("false", false)
                'n' -> word("null", null)
                else -> if (c == '-' || c.isDigit()) number() else error("unexpected '$c' at $pos in $s")
            }
        }

        fun word(w: String, v: Any?): Any? {
            require(s.startsWith(w, pos)) { "expected $w at $pos in $s" }
            pos += w.length
            return v
        }

        fun number(): Any {
            val start = pos
            if (s[pos] == '-') pos++
            while (pos < s.length && (s[pos].isDigit() || s[pos] in ".eE+-")) pos++
            val t = s.substring(start, pos)
            return t.toLongOrNull() ?: t.toDouble()
        }

        fun string(): String {
            expect('"')
            val out = StringBuilder()
            while (true) {
                require(pos < s.length) { "unterminated string in $s" }
                val c = s[pos++]
                when (c) {
                    '"' -> return out.toString()
                    '\\' -> {
                        val e = s[pos++]
                        when (e) {
                            'n' -> out.append('\n')
                            't' -> out.append('\t')
                            'r' -> out.append('\r')
                            'b' -> out.append('\b')
                            'f' -> out.append('\u000c')
                            'u' -> {
                                out.append(s.substring(pos, pos + 4).toInt(16).toChar())
                                pos += 4
                            }
                            else -> out.append(e)
                        }
                    }
                    else -> out.append(c)
                }
            }
        }

        fun array(): List<Any?> {
            expect('[')
            val out = mutableListOf<Any?>()
            skipSpace()
            if (s[pos] == ']') {
                pos++
                return out
            }
            while (true) {
                out.add(value())
                skipSpace()
                if (s[pos++] == ']') return out
                require(s[pos - 1] == ',') { "expected ',' or ']' at ${pos - 1} in $s" }
            }
        }

        fun obj(): Map<String, Any?> {
            expect('{')
            val out = linkedMapOf<String, Any?>()
            skipSpace()
            if (s[pos] == '}') {
                pos++
                return out
            }
            while (true) {
                skipSpace()
                val key = string()
                expect(':')
                out[key] = value()
                skipSpace()
                if (s[pos++] == '}') return out
                require(s[pos - 1] == ',') { "expected ',' or '}' at ${pos - 1} in $s" }
            }
        }
    }
}
