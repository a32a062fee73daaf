"""Subscriptions as an asyncio async iterator, over the generated `electrum_spv` module.

    async for event in watch(client, ["bc1q..."]):
        if isinstance(event, HistoryChanged):
            print(event.address, len(event.history.txs))

The library calls the listener from its own thread; events are handed to the running event
loop with `call_soon_threadsafe`, so the loop never blocks the library and vice versa. The
subscription is cancelled when the iteration stops (break, exception or garbage collection),
and the iteration ends when the subscription ends by itself (every server connection closed).
"""

import asyncio
from dataclasses import dataclass
from typing import AsyncIterator, List, Union

from electrum_spv import ElectrumClient, ElectrumError, History, Tip, WalletListener


@dataclass
class TipChanged:
    """A new verified tip (also once at the start)."""

    tip: Tip


@dataclass
class HistoryChanged:
    """The verified history of a watched address (once at the start, then on each change)."""

    address: str
    history: History


@dataclass
class ConnectionChanged:
    """The connection to the best server was lost (False) or restored (True)."""

    connected: bool


@dataclass
class Failed:
    """Checking a change failed; the subscription goes on."""

    error: ElectrumError


WalletEvent = Union[TipChanged, HistoryChanged, ConnectionChanged, Failed]

# Queued when the subscription ends by itself; ends the iteration.
_CLOSED = object()


class _QueueListener(WalletListener):
    def __init__(self, loop: asyncio.AbstractEventLoop, queue: "asyncio.Queue"):
        self._loop = loop
        self._queue = queue

    def _put(self, event: WalletEvent) -> None:
        self._loop.call_soon_threadsafe(self._queue.put_nowait, event)

    def on_tip(self, tip: Tip) -> None:
        self._put(TipChanged(tip))

    def on_history(self, address: str, history: History) -> None:
        self._put(HistoryChanged(address, history))

    def on_connection_changed(self, connected: bool) -> None:
        self._put(ConnectionChanged(connected))

    def on_error(self, error: ElectrumError) -> None:
        self._put(Failed(error))

    def on_closed(self) -> None:
        self._put(_CLOSED)


async def watch(client: ElectrumClient, addresses: List[str]) -> AsyncIterator[WalletEvent]:
    """Yields the verified histories of `addresses` and the verified tip, then every change."""
    queue: "asyncio.Queue" = asyncio.Queue()
    listener = _QueueListener(asyncio.get_running_loop(), queue)
    subscription = await client.subscribe(addresses, listener)
    try:
        while True:
            event = await queue.get()
            if event is _CLOSED:
                return
            yield event
    finally:
        subscription.cancel()
