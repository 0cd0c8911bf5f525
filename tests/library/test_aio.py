"""The asyncio face: a blocking call awaited in a thread; cancelling the task sets the call's cancel event."""

from __future__ import annotations

import asyncio
import threading

import pytest

from ocsps.errors import Cancelled
from ocsps.lab.runtime import Lab
from ocsps.operations.aio import in_thread
from tests.conftest import lab_server

pytestmark = pytest.mark.timeout(60)


def test_a_call_is_awaited_in_another_thread(lab: Lab) -> None:
    async def main() -> list[str]:
        with lab_server(lab, "med01.contoso.com") as server:
            found = await in_thread(lambda cancel: server.services(cancel=cancel))
        return [s.name for s in found]

    assert "RTCMEDSRV" in asyncio.run(main())


def test_cancelling_the_task_sets_the_event_the_call_watches() -> None:
    started, seen = threading.Event(), threading.Event()

    def call(cancel: threading.Event) -> str:
        started.set()
        if cancel.wait(30):  # the call's own check between remote calls
            seen.set()
            raise Cancelled("stopped between calls", host="h")
        return "ran to the end"

    async def main() -> None:
        task = asyncio.create_task(in_thread(call))
        await asyncio.to_thread(started.wait, 30)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert seen.wait(30)
