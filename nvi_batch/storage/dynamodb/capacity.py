"""Write capacity: what a write costs, and holding a run to `max_write_capacity_per_second`.

The cost of a write is read from the response's ConsumedCapacity (the store asks for it with
ReturnConsumedCapacity=TOTAL). Where a service does not say (moto answers nothing for transactions),
it is computed from item sizes as DynamoDB charges: 1 WCU per started KB of each item, twice in a
transaction (index writes are not counted: they are charged to the indexes' own capacity).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

WRITE_KB = 1024


def value_size(value: dict) -> int:
    """Bytes DynamoDB counts for one attribute value in wire form (its name is counted by the caller)."""
    ((kind, inner),) = value.items()
    if kind == "S":
        return len(inner.encode())
    if kind == "N":
        digits = inner.lstrip("-").split("E")[0].replace(".", "").strip("0")
        return (len(digits) + 1) // 2 + 1
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(value_size(element) + 1 for element in inner)
    if kind == "M":
        return 3 + sum(len(name.encode()) + value_size(element) + 1 for name, element in inner.items())
    if kind == "B":
        return len(inner)
    if kind in ("SS", "NS", "BS"):
        return sum(value_size({kind[0]: element}) for element in inner)
    raise ValueError(f"no size rule for {kind}")


def item_size(item: dict) -> int:
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def write_units(item: dict) -> int:
    return max(1, math.ceil(item_size(item) / WRITE_KB))


def transaction_write_units(transact_items: list[dict]) -> int:
    """WCU of a TransactWriteItems of Puts on the table: two per started KB of each item."""
    return sum(2 * write_units(action["Put"]["Item"]) for action in transact_items)


def consumed_units(response: dict) -> float | None:
    """The capacity a response says it consumed (table and indexes), or None if it says nothing."""
    consumed = response.get("ConsumedCapacity")
    if not consumed:
        return None
    entries = consumed if isinstance(consumed, list) else [consumed]
    units = [entry.get("CapacityUnits") for entry in entries if entry.get("CapacityUnits") is not None]
    return float(sum(units)) if units else None


class WriteCapacityLimiter:
    """Holds writes to `max_units_per_second` (None: no cap) and backs off adaptively on throttling.

    Pacing: before it sends, a writer reserves the write's units (computed from its items) on a shared
    schedule, which moves on by units / rate, and waits for its slot: over a run the rate is the
    cap, whatever the number of writer threads. What the response says it consumed corrects the
    schedule. On throttling the rate is halved (with a cap) and every writer waits an exponential
    back-off; each write that goes through raises the rate again by a tenth of the cap (additive
    increase) and ends the back-off.
    """

    MIN_BACKOFF_SECONDS = 0.05
    MAX_BACKOFF_SECONDS = 5.0

    def __init__(self, max_units_per_second: float | None, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        if max_units_per_second is not None and max_units_per_second <= 0:
            raise ValueError(f"max_write_capacity_per_second must be positive, got {max_units_per_second}")
        self.cap = max_units_per_second
        self.rate = max_units_per_second
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        self._next_free = clock()
        self._backoff = 0.0
        self.units = 0.0
        self.throttles = 0

    def wait_turn(self, units: float) -> None:
        """Reserve `units` on the schedule and wait for their slot."""
        with self._lock:
            now = self._clock()
            slot = max(self._next_free, now)
            if self.rate is not None:
                self._next_free = slot + units / self.rate
        if slot > now:
            self._sleep(slot - now)

    def consumed(self, units: float, reserved: float) -> None:
        """A write went through, consuming `units` where `reserved` were reserved for it."""
        with self._lock:
            self.units += units
            self._backoff = 0.0
            if self.rate is not None:
                self._next_free += (units - reserved) / self.rate
                self.rate = min(self.cap, self.rate + self.cap / 10)

    def throttled(self) -> None:
        with self._lock:
            self.throttles += 1
            if self.rate is not None:
                self.rate = max(self.cap / 64, self.rate / 2)
            self._backoff = min(self.MAX_BACKOFF_SECONDS, max(self.MIN_BACKOFF_SECONDS, self._backoff * 2))
            self._next_free = max(self._next_free, self._clock() + self._backoff)
