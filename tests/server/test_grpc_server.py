"""What a cancelled gRPC call is recorded as (the calls themselves: tests/e2e/test_grpc.py)."""

from __future__ import annotations

import pytest

from modelport.server.grpc_server import DEADLINE_SLACK_S, cancelled_status


@pytest.mark.parametrize(
    ("remaining", "status"),
    [
        (0, 504),  # past the deadline: grpc's time_remaining() stops at 0 (an int)
        (0.0004, 504),  # the client's deadline, seen a moment early by the server
        (DEADLINE_SLACK_S, 504),
        (DEADLINE_SLACK_S * 2, 499),  # the client went away well before its deadline
        (None, 499),  # a call without a deadline can only have been given up
    ],
)
def test_a_cancel_at_the_deadline_is_a_timeout_and_any_other_a_client_gone(
    remaining: float | None, status: int
) -> None:
    assert cancelled_status(remaining) == status
