"""The messages between the server and its writer process: whole messages across a pipe's
buffer, several in one write, the end of the stream, deadlines, and a length no message has."""

from __future__ import annotations

import contextlib
import os
import struct
import threading
import time
from collections.abc import Iterator

import pytest

from modelport.errors import WriterLost
from modelport.outcomes import frames


def soon(seconds: float) -> float:
    """A deadline ``seconds`` from now."""
    return time.monotonic() + seconds


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    read, write = os.pipe()
    os.set_blocking(read, False)
    os.set_blocking(write, False)
    yield read, write
    for fd in (read, write):
        with contextlib.suppress(OSError):
            os.close(fd)


def test_a_message_larger_than_the_pipe_arrives_whole(pipe: tuple[int, int]) -> None:
    read, write = pipe
    batch = [(f"r{i}", float(i), "m", 1, "v1", None, 1, 0.5, 200, None) for i in range(20_000)]
    sender = threading.Thread(target=frames.send, args=(write, ("rows", batch), soon(10.0)))
    sender.start()  # about 1 MB: the sender waits for the reader, 64 KB at a time
    assert frames.Reader(read).receive(soon(10.0)) == ("rows", batch)
    sender.join()


def test_messages_written_at_once_are_read_one_by_one(pipe: tuple[int, int]) -> None:
    read, write = pipe
    messages = [("records", [("r1", 1.0)]), ("records", []), ("commit", 0.5, 32)]
    frames.write(write, b"".join(map(frames.encode, messages)), soon(1.0))
    reader = frames.Reader(read)
    assert [reader.receive(soon(1.0)) for _ in messages] == messages
    with pytest.raises(WriterLost, match="no answer in time"):  # nothing left over, or lost
        reader.receive(soon(0.05))


def test_a_message_that_arrives_in_pieces_is_read_whole_once_it_is_there(
    pipe: tuple[int, int],
) -> None:
    read, write = pipe
    first, second = frames.encode(("done", None)), frames.encode(("records", ["x"] * 1000))
    os.write(write, first + second[:2])  # a message, and half the next one's length
    reader = frames.Reader(read)
    assert reader.receive(soon(1.0)) == ("done", None)
    with pytest.raises(WriterLost, match="no answer in time"):
        reader.receive(soon(0.05))
    os.write(write, second[2:100])  # its length whole now, not its body
    with pytest.raises(WriterLost, match="no answer in time"):
        reader.receive(soon(0.05))
    os.write(write, second[100:])
    assert reader.receive(soon(1.0)) == ("records", ["x"] * 1000)  # a late message is not lost


def test_the_end_of_the_stream_is_a_lost_writer(pipe: tuple[int, int]) -> None:
    read, write = pipe
    os.write(write, struct.pack("<I", 10) + b"abc")  # a message cut short
    os.close(write)
    with pytest.raises(WriterLost, match="closed"):
        frames.Reader(read).receive(soon(1.0))


def test_no_answer_before_the_deadline_is_a_lost_writer(pipe: tuple[int, int]) -> None:
    read, write = pipe
    with pytest.raises(WriterLost, match="no answer in time"):
        frames.Reader(read).receive(soon(0.05))
    with pytest.raises(WriterLost, match="no answer in time"):  # nobody reads: it fills
        frames.send(write, b"x" * (1 << 20), soon(0.05))


def test_a_closed_reader_is_a_lost_writer(pipe: tuple[int, int]) -> None:
    read, write = pipe
    os.close(read)
    with pytest.raises(WriterLost, match="closed"):
        frames.send(write, "anything", soon(1.0))


def test_a_length_past_the_bound_is_refused_before_reading_it(pipe: tuple[int, int]) -> None:
    read, write = pipe
    os.write(write, struct.pack("<I", frames.MAX_FRAME + 1))
    with pytest.raises(WriterLost, match="not this protocol's"):
        frames.Reader(read).receive(soon(1.0))
