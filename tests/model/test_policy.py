"""The pure parts of traffic routing: policies, their validation, and the variant choice."""

from __future__ import annotations

from collections import Counter

import pytest
from pydantic import ValidationError

from modelport.model.card import ModelCard
from modelport.model.policy import (
    Canary,
    Choice,
    TrafficPolicy,
    VersionPolicy,
    choose,
    compile_policy,
    key_point,
)


@pytest.mark.parametrize(
    ("policy", "available", "served"),
    [
        ("all", [1, 2, 3], [1, 2, 3]),
        ({}, [3, 1], [1, 3]),
        ({"latest": 2}, [1, 2, 3], [2, 3]),
        ({"latest": 5}, [1, 2], [1, 2]),
        ({"specific": [1, 3]}, [1, 2, 3], [1, 3]),
        ({"specific": [4]}, [1, 2, 3], []),
    ],
)
def test_version_policy_selects(policy: object, available: list[int], served: list[int]) -> None:
    assert VersionPolicy.model_validate(policy).select(available) == served


@pytest.mark.parametrize(
    "bad",
    [{"latest": 0}, {"latest": 1, "specific": [1]}, {"specific": []}, "some", {"newest": 1}],
)
def test_version_policy_refuses(bad: object) -> None:
    with pytest.raises(ValidationError):
        VersionPolicy.model_validate(bad)


def _split(*weights: tuple[int, float]) -> TrafficPolicy:
    return TrafficPolicy.model_validate(
        {"split": [{"version": v, "weight": w} for v, w in weights]}
    )


@pytest.mark.parametrize(
    ("policy", "draw", "expected"),
    [
        (_split((1, 90), (2, 10)), 0.0, Choice(1, "v1")),
        (_split((1, 90), (2, 10)), 0.8999, Choice(1, "v1")),
        (_split((1, 90), (2, 10)), 0.9001, Choice(2, "v2")),
        (_split((1, 90), (2, 10)), 0.999999, Choice(2, "v2")),
        (_split((1, 1), (2, 1), (3, 2)), 0.3, Choice(2, "v2")),
        (_split((1, 1), (2, 1), (3, 2)), 0.6, Choice(3, "v3")),
        (_split((1, 0), (2, 5)), 0.0, Choice(2, "v2")),
        (TrafficPolicy(canary=Canary(baseline=1, version=2)), 0.04, Choice(2, "canary")),
        (TrafficPolicy(canary=Canary(baseline=1, version=2)), 0.06, Choice(1, "v1")),
        (TrafficPolicy(canary=Canary(baseline=1, version=2, step=2)), 0.49, Choice(2, "canary")),
        (TrafficPolicy(canary=Canary(baseline=1, version=2, step=3)), 0.99, Choice(2, "canary")),
        (
            TrafficPolicy.model_validate(
                {"split": [{"version": 1, "weight": 1, "variant": "control"}]}
            ),
            0.5,
            Choice(1, "control"),
        ),
    ],
)
def test_choose_without_a_key_uses_the_draw(
    policy: TrafficPolicy, draw: float, expected: Choice
) -> None:
    route = compile_policy(policy)
    assert route is not None
    assert choose(route, None, lambda: draw) == expected


def test_a_policy_that_splits_nothing_compiles_to_nothing() -> None:
    assert compile_policy(TrafficPolicy()) is None
    shadow_only = compile_policy(TrafficPolicy.model_validate({"shadow": {"version": 2}}))
    assert shadow_only is not None
    assert choose(shadow_only, b"user", lambda: 0.5) is None


def test_the_same_key_always_gets_the_same_variant() -> None:
    route = compile_policy(_split((1, 50), (2, 50)), salt="iris")
    assert route is not None
    draws = iter([0.0, 0.99] * 50)
    for user in (b"alice", b"bob", b"carol"):
        seen = {choose(route, user, lambda: next(draws)) for _ in range(20)}
        assert len(seen) == 1


def test_the_salt_changes_the_assignment() -> None:
    points = [key_point(f"user-{i}".encode(), b"iris") for i in range(100)]
    others = [key_point(f"user-{i}".encode(), b"wine") for i in range(100)]
    assert all(0 <= p < 1 for p in points)
    assert points != others


def test_a_canary_user_stays_in_the_canary_as_it_grows() -> None:
    def canaries(step: int) -> set[int]:
        route = compile_policy(TrafficPolicy(canary=Canary(baseline=1, version=2, step=step)))
        assert route is not None
        return {i for i in range(2000) if choose(route, str(i).encode()) == Choice(2, "canary")}

    five, twenty_five, fifty = canaries(0), canaries(1), canaries(2)
    assert five < twenty_five < fifty
    assert 50 < len(five) < 150


def test_ten_thousand_keyed_requests_split_90_10() -> None:
    route = compile_policy(_split((1, 90), (2, 10)), salt="iris")
    assert route is not None
    counts = Counter(choose(route, f"user-{i}".encode()) for i in range(10_000))
    # binomial(10000, 0.1): sd = 30, so +-150 is 5 sd
    assert abs(counts[Choice(2, "v2")] - 1000) < 150
    assert counts[Choice(1, "v1")] + counts[Choice(2, "v2")] == 10_000


@pytest.mark.parametrize(
    "bad",
    [
        {"split": []},
        {"split": [{"version": 1, "weight": 0}]},
        {"split": [{"version": 1, "weight": -1}]},
        {"split": [{"version": 1, "weight": 1}, {"version": 1, "weight": 2}]},
        {"split": [{"version": 1, "weight": 1}], "canary": {"baseline": 1, "version": 2}},
        {"canary": {"baseline": 1, "version": 1}},
        {"canary": {"baseline": 1, "version": 2, "steps": [50, 10]}},
        {"canary": {"baseline": 1, "version": 2, "steps": [5, 150]}},
        {"canary": {"baseline": 1, "version": 2, "step": 4}},
        {"shadow": {"version": 2, "fraction": 2}},
        {"sticky_header": "bad header"},
        {"splitt": []},
    ],
)
def test_bad_policies_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        TrafficPolicy.model_validate(bad)


def test_the_card_holds_both_policies() -> None:
    card = ModelCard.model_validate(
        {
            "version_policy": {"latest": 2},
            "traffic": {"split": [{"version": 1, "weight": 9}, {"version": 2, "weight": 1}]},
        }
    )
    assert card.version_policy.select([1, 2, 3]) == [2, 3]
    assert card.traffic is not None
    assert card.traffic.versions() == {1, 2}
