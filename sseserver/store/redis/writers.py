"""The process's writers, one per master (log.py's LogWriter), and the routing of each
stream's entries to the writer of its slot's master: a redirected stream's entries wait,
in order, until nothing of it is in flight, then go to the master serving its slot now.
"""

from __future__ import annotations

import asyncio
import contextlib

from ...errors import StoreUnavailable
from .entries import Create, End, Entry, Gone, Nudge, Owned, Step, order
from .log import BATCH_INTERVAL, COMMAND_TIMEOUT, LogWriter
from .shards import MIGRATING_PAUSE, Shards


class Writers:
    """The process's writers, one per master (one on a single Redis), and the routing of
    each stream's entries to the writer of its slot's master."""

    def __init__(self, shards: Shards, prefix: str, token: str,
                 batch_interval: float = BATCH_INTERVAL) -> None:
        self._shards = shards
        self.prefix = prefix
        self.token = token
        self.batch_interval = batch_interval
        self.publish = "SPUBLISH" if shards.cluster else "PUBLISH"
        self._writers: dict[str, LogWriter] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._retrying: set[Owned] = set()
        self._closing = False

    def _writer(self, owned: Owned) -> LogWriter:
        if owned.pending and owned.writer is not None:
            return owned.writer  # earlier entries are on their way there: keep the order
        address = self._shards.address_of(owned.keys.log)
        writer = self._writers.get(address)
        if writer is None:
            writer = self._writers[address] = LogWriter(self, self._shards.client(address))
            writer.start()
        return writer

    def _put(self, entry: Entry) -> None:
        owned = entry[0]
        if owned.stalled is not None:
            owned.stalled.append(entry)
            return
        self._writer(owned).put(entry)

    async def create(self, owned: Owned) -> None:
        """Register the stream as this process's, and wait until Redis has it."""
        create = Create(owned.owner)
        self._put((owned, 0, create))
        await create.done

    def frame(self, owned: Owned, frame: bytes) -> None:
        """Queue the stream's next frame; its index is fixed now."""
        frames = owned.frames
        self._put((owned, len(frames), frame))
        frames.append(frame)

    def nudge(self, owned: Owned) -> None:
        """Other processes follow the stream from now on: tell them where its log is."""
        self._put((owned, len(owned.frames), Nudge("")))

    def gone(self, owned: Owned) -> None:
        """Redis lost the stream (or a reaper ended it, and published its end already):
        its followers elsewhere hear of it, whether or not the owner knew of them."""
        self._put((owned, len(owned.frames), Gone("")))

    async def room(self, owned: Owned) -> None:
        if owned.writer is not None:
            await owned.writer.room()

    async def end(self, owned: Owned, reason: str, keep_ms: int) -> None:
        """Queue the stream's end after its frames, and wait until Redis has it."""
        end = End(f"{reason}:{keep_ms}")
        self._put((owned, len(owned.frames), end))
        await end.done

    def stall(self, owned: Owned, entry: Entry) -> None:
        if owned.stalled is None:
            owned.stalled = []
            owned.stalled_since = asyncio.get_running_loop().time()
        owned.stalled.append(entry)

    def retry_when_landed(self, owned: Owned) -> None:
        """Once nothing of the stream is in flight, its waiting entries go, in order, to
        whichever master serves its slot then."""
        if owned.pending or owned.stalled is None or owned in self._retrying:
            return
        self._retrying.add(owned)
        task = asyncio.create_task(self._retry(owned), name="redis writer redirect")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _retry(self, owned: Owned) -> None:
        try:
            await asyncio.sleep(MIGRATING_PAUSE)
            with contextlib.suppress(Exception):
                await self._shards.refresh()
        finally:
            self._retrying.discard(owned)
        stalled, owned.stalled = owned.stalled or [], None
        if owned.pending:  # cannot happen: nothing was sent while stalled
            owned.stalled = stalled
            return
        stalled.sort(key=order)
        waited = asyncio.get_running_loop().time() - owned.stalled_since
        if waited > COMMAND_TIMEOUT or self._closing:
            failure = StoreUnavailable(f"redis: the slot of {owned.stream_id} did not settle")
            owned.fail(failure)
            for _, _, what in stalled:
                if isinstance(what, Step):
                    what.settle(failure)
            return
        since = owned.stalled_since
        for entry in stalled:
            self._put(entry)
        if owned.stalled is not None:  # stalled again at once (cannot be: nothing sent)
            owned.stalled_since = since

    def lost_master(self) -> None:
        """A writer's connection broke: on a cluster, the map may have changed."""
        if self._shards.cluster and not self._closing:
            task = asyncio.ensure_future(self._refresh())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _refresh(self) -> None:
        with contextlib.suppress(Exception):
            await self._shards.refresh()

    def forget(self, addresses: set[str]) -> None:
        """Masters that are masters no more: their writers stop."""
        for address in addresses:
            writer = self._writers.pop(address, None)
            if writer is not None:
                task = asyncio.ensure_future(writer.close())
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        self._closing = True
        writers, self._writers = list(self._writers.values()), {}
        await asyncio.gather(*(w.close() for w in writers), return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
