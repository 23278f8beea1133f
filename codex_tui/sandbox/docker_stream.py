"""Relaying a command's demuxed output from a stream thread to the event loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable, Iterator

import docker

from codex_tui.sandbox.base import OutputCallback, Stream

Frame = tuple[bytes | None, bytes | None]


class ChunkRelay:
    """Moves output chunks from the stream thread to the loop, merging them while the loop is busy."""

    def __init__(self, loop: asyncio.AbstractEventLoop, on_output: OutputCallback | None) -> None:
        self._loop = loop
        self._on_output = on_output
        self._pending: list[tuple[Stream, bytes]] = []
        self._lock = threading.Lock()
        self._scheduled = False

    def close(self) -> None:
        """Deliver nothing more: output of a stream abandoned after a kill must not outlive exec()."""
        self._on_output = None

    def put(self, stream: Stream, data: bytes) -> None:
        """Called from the stream thread."""
        if self._on_output is None or not data:
            return
        with self._lock:
            self._pending.append((stream, data))
            if self._scheduled:
                return
            self._scheduled = True
        self._loop.call_soon_threadsafe(self._flush)

    def _flush(self) -> None:
        with self._lock:
            pending, self._pending, self._scheduled = self._pending, [], False
        for stream, data in _merge(pending):
            if self._on_output is not None:
                self._on_output(stream, data)


def _merge(chunks: list[tuple[Stream, bytes]]) -> Iterator[tuple[Stream, bytes]]:
    run: list[bytes] = []
    current: Stream | None = None
    for stream, data in chunks:
        if stream != current and run:
            assert current is not None
            yield current, b"".join(run)
            run = []
        current = stream
        run.append(data)
    if run and current is not None:
        yield current, b"".join(run)


def stream_exec(client: docker.DockerClient, exec_id: str, relay: ChunkRelay) -> asyncio.Future[None]:
    """Start the exec and pump its demuxed output from a dedicated thread; the future ends with it."""

    def frames() -> Iterable[Frame]:
        return client.api.exec_start(exec_id, stream=True, demux=True)  # type: ignore[no-any-return]

    return pump_in_thread(frames, relay)


def pump_in_thread(frames: Callable[[], Iterable[Frame]], relay: ChunkRelay) -> asyncio.Future[None]:
    """Iterate (stdout, stderr) frames in a dedicated thread, relaying chunks; the future ends with it."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def settle(error: BaseException | None) -> None:
        if done.done():
            return
        if error is None:
            done.set_result(None)
        else:
            done.set_exception(error)

    def run() -> None:
        error: BaseException | None = None
        try:
            for stdout, stderr in frames():
                if stdout:
                    relay.put("stdout", stdout)
                if stderr:
                    relay.put("stderr", stderr)
        except Exception as exc:
            error = exc
        loop.call_soon_threadsafe(settle, error)

    threading.Thread(target=run, name="codex-docker-stream", daemon=True).start()
    done.add_done_callback(lambda f: f.exception() if not f.cancelled() else None)
    return done
