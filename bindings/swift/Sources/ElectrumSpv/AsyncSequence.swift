// Subscriptions as an AsyncSequence:
//
//     for try await event in client.watch(addresses: ["bc1q..."]) {
//         if case let .historyChanged(address, history) = event { print(address, history.txs.count) }
//     }
//
// The library calls the listener from its own thread; events are yielded into the stream's
// buffer, and the subscription is cancelled when the consuming task stops iterating.

import Foundation

/// What a subscription reports.
public enum WalletEvent: Sendable {
    /// A new verified tip (also once at the start).
    case tipChanged(Tip)
    /// The verified history of a watched address (once at the start, then on each change).
    case historyChanged(address: String, history: History)
    /// The connection to the best server was lost (`false`) or restored (`true`).
    case connectionChanged(Bool)
    /// Checking a change failed; the subscription goes on.
    case failed(ElectrumError)
}

private final class StreamListener: WalletListener, @unchecked Sendable {
    let continuation: AsyncThrowingStream<WalletEvent, Error>.Continuation

    init(_ continuation: AsyncThrowingStream<WalletEvent, Error>.Continuation) {
        self.continuation = continuation
    }

    func onTip(tip: Tip) { continuation.yield(.tipChanged(tip)) }
    func onHistory(address: String, history: History) {
        continuation.yield(.historyChanged(address: address, history: history))
    }
    func onConnectionChanged(connected: Bool) { continuation.yield(.connectionChanged(connected)) }
    func onError(error: ElectrumError) { continuation.yield(.failed(error)) }
    func onClosed() { continuation.finish() }
}

/// Holds the subscription once it exists, so termination can cancel it whenever it happens.
private final class SubscriptionBox: @unchecked Sendable {
    private let lock = NSLock()
    private var subscription: Subscription?
    private var terminated = false

    func set(_ s: Subscription) {
        lock.lock(); defer { lock.unlock() }
        if terminated { s.cancel() } else { subscription = s }
    }

    func terminate() {
        lock.lock(); defer { lock.unlock() }
        terminated = true
        subscription?.cancel()
        subscription = nil
    }
}

extension ElectrumClient {
    /// The verified histories of `addresses` and the verified tip, then every change, as an
    /// async sequence. Throws the error of the initial subscription, if it fails; ends when the
    /// subscription ends by itself (every server connection closed).
    public func watch(addresses: [String]) -> AsyncThrowingStream<WalletEvent, Error> {
        AsyncThrowingStream { continuation in
            let box = SubscriptionBox()
            let starting = Task {
                do {
                    let listener = StreamListener(continuation)
                    box.set(try await self.subscribe(addresses: addresses, listener: listener))
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in
                starting.cancel()
                box.terminate()
            }
        }
    }
}
