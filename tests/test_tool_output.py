"""Head+tail truncation and output batching."""

from __future__ import annotations

import asyncio
import random

from codex_tui.tools.output import (
    HeadTailBuffer,
    OutputBatcher,
    format_exec_output,
    truncate_head_tail,
)


def numbered(count: int) -> str:
    return "".join(f"line {n}\n" for n in range(1, count + 1))


def test_short_output_is_left_alone() -> None:
    text = numbered(20)
    assert truncate_head_tail(text) == text


def test_many_lines_keep_the_first_and_last_128() -> None:
    out = truncate_head_tail(numbered(1000))
    head, marker, tail = out.partition("\n[... omitted 744 of 1000 lines ...]\n\n")
    assert marker
    assert head == numbered(128)
    assert tail == "".join(f"line {n}\n" for n in range(873, 1001))


def test_one_huge_line_is_cut_by_bytes() -> None:
    out = truncate_head_tail("x" * 100_000, max_bytes=10_240)
    assert len(out.encode()) <= 10_240
    assert out.startswith("x" * 5_000)
    assert "bytes ...]" in out
    assert out.endswith("x" * 1000)


def test_multibyte_characters_are_never_split() -> None:
    out = truncate_head_tail("é" * 50_000, max_bytes=1_001)
    assert "\ufffd" not in out
    assert len(out.encode()) <= 1_001


def test_buffer_renders_like_the_full_text_whatever_the_chunking() -> None:
    text = numbered(5000).encode()
    buffer = HeadTailBuffer()
    rng = random.Random(7)
    offset = 0
    while offset < len(text):
        size = rng.randint(1, 4000)
        buffer.feed(text[offset : offset + size])
        offset += size
    assert not buffer.complete
    assert buffer.total_lines == 5000
    assert buffer.render() == truncate_head_tail(text.decode())


def test_buffer_counts_a_last_line_without_newline() -> None:
    buffer = HeadTailBuffer()
    buffer.feed(b"a\nb")
    assert buffer.total_lines == 2
    assert buffer.render() == "a\nb"


def test_buffer_memory_is_bounded() -> None:
    buffer = HeadTailBuffer(keep_bytes=1024)
    for _ in range(1000):
        buffer.feed(b"z" * 4096)
    assert buffer.total_bytes == 4_096_000
    assert len(buffer._head) == 1024
    assert len(buffer._tail) <= 2 * 1024 + 4096


def test_exec_output_format() -> None:
    assert format_exec_output(0, 1.234, "hi\n") == "Exit code: 0\nWall time: 1.2 seconds\nOutput:\nhi\n"
    text = format_exec_output(
        124, 0.3, "x\n", total_lines=9, notes=["command timed out after 300 milliseconds"]
    )
    assert text == (
        "Exit code: 124\nWall time: 0.3 seconds\nTotal output lines: 9\nOutput:\n"
        "command timed out after 300 milliseconds\nx\n"
    )


async def test_batcher_joins_many_small_chunks_into_one_delta() -> None:
    got: list[tuple[str, str]] = []
    batcher = OutputBatcher(lambda stream, text: got.append((stream, text)), interval_s=0.02)
    for n in range(1000):
        batcher.feed("stdout", f"{n}\n".encode())
    assert got == []
    await asyncio.sleep(0.1)
    assert got == [("stdout", "".join(f"{n}\n" for n in range(1000)))]


async def test_batcher_flushes_at_once_when_a_batch_is_full() -> None:
    got: list[tuple[str, str]] = []
    batcher = OutputBatcher(lambda stream, text: got.append((stream, text)), max_bytes=16_384)
    batcher.feed("stderr", b"e" * 20_000)
    assert got == [("stderr", "e" * 20_000)]
    batcher.close()


async def test_batcher_decodes_characters_split_across_chunks() -> None:
    got: list[str] = []
    batcher = OutputBatcher(lambda _stream, text: got.append(text))
    data = "héllo ✅\n".encode()
    for byte in data:
        batcher.feed("stdout", bytes([byte]))
    batcher.close()
    assert "".join(got) == "héllo ✅\n"


async def test_batcher_close_flushes_a_dangling_partial_character() -> None:
    got: list[str] = []
    batcher = OutputBatcher(lambda _stream, text: got.append(text))
    batcher.feed("stdout", b"ok\xe2\x9c")
    batcher.close()
    assert "".join(got) == "ok\ufffd"


async def test_batcher_ignores_chunks_after_close() -> None:
    got: list[str] = []
    batcher = OutputBatcher(lambda _stream, text: got.append(text), interval_s=0.01)
    batcher.feed("stdout", b"before\n")
    batcher.close()
    batcher.feed("stdout", b"after\n")
    await asyncio.sleep(0.05)
    assert got == ["before\n"]
