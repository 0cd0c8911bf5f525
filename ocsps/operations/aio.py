"""A thin asyncio face over the threaded library: await a blocking call, cancel it like a task.

The engine stays threads (see the library reference on thread safety). ``in_thread`` runs one blocking
call in a worker thread and hands it a cancel event; cancelling the awaiting task sets that event, so
the call stops where it observes cancellation (between remote calls) and reports what it saw. Never run
two calls on one ``Server`` at once: await them one after the other, or use one ``Server`` per task.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


async def in_thread(call: Callable[[threading.Event], T]) -> T:
    """Await ``call(cancel)`` run in a worker thread; cancelling the task sets ``cancel``.

    The task's cancellation is not the call's end: the thread goes on until the call observes the event,
    and its result is then dropped. Example::

        report = await in_thread(lambda stop: server.drain("RTCMEDSRV", timeout=900, poll=15, cancel=stop))
    """
    cancel = threading.Event()
    try:
        return await asyncio.to_thread(call, cancel)
    except asyncio.CancelledError:
        cancel.set()
        raise
