// Hand-written (not generated): subscriptions as a Kotlin Flow, over the generated
// `ElectrumClient.subscribe` and `WalletListener` of electrum_spv.kt.
package dev.electrumspv

import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.channels.awaitClose
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.buffer
import kotlinx.coroutines.flow.callbackFlow

/** What a subscription sees, as one value of a [watch] flow. */
sealed class WalletEvent {
    /** A new verified tip (also once at the start). */
    data class TipChanged(val tip: Tip) : WalletEvent()

    /**
     * The verified history of the watched [address] (once at the start, then on each change of
     * its status).
     */
    data class HistoryChanged(val address: String, val history: History) : WalletEvent()

    /** The connection to the best server was lost (`false`) or restored (`true`). */
    data class ConnectionChanged(val connected: Boolean) : WalletEvent()

    /** Checking a change failed; the subscription goes on and checks the next change again. */
    data class Failed(val error: ElectrumException) : WalletEvent()
}

/**
 * Watches [addresses]: emits each one's verified history and the verified tip first, then every
 * change (see [WalletEvent]).
 *
 * ```kotlin
 * val client = ElectrumClient.connect(ClientSettings(network = Network.MAINNET))
 * client.watch(listOf("bc1q...")).collect { event ->
 *     when (event) {
 *         is WalletEvent.HistoryChanged -> show(event.address, event.history)
 *         is WalletEvent.TipChanged -> showTip(event.tip.height)
 *         is WalletEvent.ConnectionChanged -> showOnline(event.connected)
 *         is WalletEvent.Failed -> log(event.error)
 *     }
 * }
 * ```
 *
 * The flow is cold: each collection starts its own subscription ([ElectrumClient.subscribe]),
 * and cancelling the collection (or the collector's scope) cancels it. The library calls its
 * listener from its own thread and never waits for the collector: events are buffered without
 * bound, in order (apply [buffer] with a capacity and an overflow policy to bound them instead).
 *
 * The flow fails with an [ElectrumException] when the subscription cannot start:
 * [ElectrumException.InvalidArgument] for an address of another network, or the error of an
 * address's first verified history. It completes when the subscription ends by itself (every
 * server connection closed).
 */
fun ElectrumClient.watch(addresses: List<String>): Flow<WalletEvent> = callbackFlow {
    val listener = object : WalletListener {
        override fun onTip(tip: Tip) {
            trySend(WalletEvent.TipChanged(tip))
        }

        override fun onHistory(address: String, history: History) {
            trySend(WalletEvent.HistoryChanged(address, history))
        }

        override fun onConnectionChanged(connected: Boolean) {
            trySend(WalletEvent.ConnectionChanged(connected))
        }

        override fun onError(error: ElectrumException) {
            trySend(WalletEvent.Failed(error))
        }

        override fun onClosed() {
            channel.close()
        }
    }
    // The first histories and the tip are delivered before `subscribe` returns; they wait in
    // the channel.
    val subscription = subscribe(addresses, listener)
    awaitClose {
        subscription.cancel()
        subscription.close()
    }
}.buffer(Channel.UNLIMITED)
