"""The lottery's draw order: who gets the seats when an event opens by lottery.

The order is a pure function of the entries and a seed: the seed is recorded with the draw, so anyone can
run ``drawn_order`` again on the same entries and find the same order (an audit of the draw). The entries
are sorted first (by user id), so the order never depends on how the database returned them.
"""

from __future__ import annotations

import random
import secrets


def new_seed() -> int:
    """A seed for one draw: from the operating system's randomness (unpredictable before the draw), small
    enough for a BIGINT column."""
    return secrets.randbits(63)


def drawn_order(user_ids: list[int] | set[int], seed: int) -> list[int]:
    """The entries' users in drawn order (the first ones get the seats, the rest join the waitlist in this
    order). ``random.Random`` with a given seed gives the same sequence on every Python version that keeps
    its algorithm (Mersenne Twister, stable since 3.2), which is what makes the draw re-runnable."""
    order = sorted(user_ids)
    random.Random(seed).shuffle(order)  # noqa: S311 - the seed came from secrets; this replays it  # nosec B311
    return order
