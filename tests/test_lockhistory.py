"""The history checker itself catches what it must (a checker that cannot fail proves nothing)."""

import pytest

from lockhistory import Hold, check_history


def h(mode, token, start, end, name="n"):
    return Hold(name, mode, token, start, start, end, True)


def test_tokens_of_overlapping_requests_may_come_in_any_order():
    # b asked before a ended, so b may have been granted first (shared holders).
    a = Hold("n", "shared", 5, 0, 1, 2, False)
    b = Hold("n", "shared", 4, 1.5, 3, 4, False)
    check_history([a, b])


def test_accepts_a_valid_history():
    assert check_history(
        [
            h("exclusive", 1, 0, 1),
            h("shared", 2, 1, 3),
            h("shared", 3, 2, 4),
            h("exclusive", 5, 4, 5),
            h("exclusive", 4, 0, 9, name="m"),
        ]
    ) == {"n": 4, "m": 1}


@pytest.mark.parametrize(
    "bad",
    [
        [h("exclusive", 1, 0, 2), h("exclusive", 2, 1, 3)],
        [h("shared", 1, 0, 2), h("exclusive", 2, 1, 3)],
        [h("exclusive", 1, 0, 2), h("shared", 2, 1.5, 3)],
        [h("exclusive", 2, 0, 1), h("exclusive", 1, 2, 3)],  # tokens went backwards
        [h("exclusive", 1, 0, 1), h("exclusive", 1, 2, 3)],  # a token granted twice
    ],
)
def test_rejects_violations(bad):
    with pytest.raises(AssertionError):
        check_history(bad)
