"""The protocol's own answers: what a shed prediction is told."""

from __future__ import annotations

from modelport.errors import Overloaded
from modelport.server.refusals import kept_open


def test_a_shed_answer_carries_its_own_retry_after_and_request_id() -> None:
    answers = {
        (seconds, rid): kept_open(Overloaded("model 'm' is serving all it can", seconds), rid)
        for seconds in (1, 3)
        for rid in ("a-1", "b-2")
    }  # built once, then from the cache, whose key holds the Retry-After
    for (seconds, rid), answer in answers.items():
        head, _, body = answer.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        assert lines[0] == b"HTTP/1.1 503 Service Unavailable"
        assert f"retry-after: {seconds}".encode() in lines
        assert f"x-request-id: {rid}".encode() in lines
        assert b"connection: close" not in lines
        fields = dict(line.split(b": ", 1) for line in lines[1:])
        assert len(body) == int(fields[b"content-length"])
    again = kept_open(Overloaded("model 'm' is serving all it can", 3), "c-3")
    assert b"retry-after: 3" in again
