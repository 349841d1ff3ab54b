"""When a run must stop at the next chunk boundary: kill switch, time budget, termination signal."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager

from nvi_batch.settings import PROCESSING_ENABLED, SettingInvalid
from nvi_batch.storage.protocol import ControlStore

PAUSED_SETTING = "processing_paused"
ALERT_WEBHOOK_SETTING = "alert_webhook_url"


def env_stop_reason() -> str | None:
    """The legacy emergency stop: PROCESSING_ENABLED=false refuses to load or process new work. A value
    that is neither true nor false stops too: whoever set the switch meant something by it."""
    try:
        return None if PROCESSING_ENABLED.read() else "PROCESSING_ENABLED=false"
    except SettingInvalid as problem:
        return f"{problem}: processing stays stopped until it is fixed"


def pause_reason(settings: ControlStore | None) -> str | None:
    """Why processing is paused right now, or None; read by runs, sensors, schedules and the CLI."""
    if reason := env_stop_reason():
        return reason
    if settings is not None:
        paused = settings.get_setting(PAUSED_SETTING)
        if paused:
            return f"paused: {paused}"
    return None


class StopControl:
    """Checked at every chunk boundary; nothing here interrupts a chunk half-way."""

    def __init__(
        self,
        settings: ControlStore | None = None,
        max_runtime_seconds: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._settings = settings
        self._clock = clock
        self._deadline = None if max_runtime_seconds is None else clock() + max_runtime_seconds
        self._max_runtime_seconds = max_runtime_seconds
        self.termination_requested = threading.Event()

    def stop_reason(self) -> str | None:
        if self.termination_requested.is_set():
            return "termination requested"
        if self._deadline is not None and self._clock() >= self._deadline:
            return f"time budget of {self._max_runtime_seconds:g}s spent"
        return pause_reason(self._settings)

    @contextmanager
    def stop_on_sigterm(self):
        """While the step runs, SIGTERM asks for a stop at the next chunk boundary instead of killing it."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = signal.getsignal(signal.SIGTERM)
        signal.signal(signal.SIGTERM, lambda *_: self.termination_requested.set())
        try:
            yield
        finally:
            signal.signal(signal.SIGTERM, previous)
