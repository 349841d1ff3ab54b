"""The next chunk is read while this one is written; never more than two chunks are held; the last saves no
checkpoint; on SQLite the read-ahead makes way while a chunk's statements run, and works beside its COMMIT."""

import threading

import sqlalchemy as sa

from nvi_batch.demo_data import DemoShape, demo_candidates, demo_periods
from nvi_batch.engine import processors
from nvi_batch.engine.scans import YearScan
from nvi_batch.engine.step import StepSettings, run_candidate_step
from nvi_batch.storage.protocol import Checkpoint
from nvi_batch.storage.sql import SqlStore


class ObservedStore(SqlStore):
    """A real SQLite store that notes when each chunk is read and written (from whichever thread)."""

    def __init__(self, url: str):
        super().__init__(url)
        self.lock = threading.Lock()
        self.events: list[tuple[str, str]] = []
        self.held_most = 0
        self.second_read_started = threading.Event()

    def read_candidates(self, identifiers):
        with self.lock:
            self.events.append(("read", identifiers[0]))
            self._note_held()
            if sum(kind == "read" for kind, _ in self.events) == 2:
                self.second_read_started.set()
        return super().read_candidates(identifiers)

    def write_candidates(self, candidates, checkpoint=None):
        # The first chunk's write waits (a few seconds at most) for the second chunk's read to begin:
        # with read-ahead it already has; read one after the other, it never would.
        self.second_read_started.wait(timeout=5)
        result = super().write_candidates(candidates, checkpoint)
        if candidates:
            with self.lock:
                self.events.append(("written", candidates[0].identifier))
                self._note_held()
        return result

    def _note_held(self) -> None:
        reads = sum(kind == "read" for kind, _ in self.events)
        writes = sum(kind == "written" for kind, _ in self.events)
        self.held_most = max(self.held_most, reads - writes)


def test_the_next_chunk_is_read_before_this_one_is_written_and_two_at_most_are_held(tmp_path):
    store = ObservedStore(f"sqlite:///{tmp_path / 'nvi.sqlite'}")
    store.create_schema()
    shape = DemoShape(years=("2024",), old_row_share=0.0)
    store.put_periods(demo_periods(shape))
    store.put_candidates(list(demo_candidates(50, seed=31, shape=shape)))

    report = run_candidate_step(store, YearScan("2024"), processors.refresh,
                                StepSettings(job="READ_AHEAD", max_batch_size=10), ledger=store)

    assert report.counters.written == 50 and report.counters.commits == 5
    reads = [first for kind, first in store.events if kind == "read"]
    writes = [first for kind, first in store.events if kind == "written"]
    assert reads == writes, "every chunk read once, and written in the order read"
    second_read = store.events.index(("read", reads[1]))
    assert second_read < store.events.index(("written", writes[0])), "chunk 2 was read before chunk 1 was written"
    assert store.held_most == 2
    store.dispose()


class CheckpointCountingStore(SqlStore):
    """A real SQLite store that counts the checkpoints saved with chunks and the clears of a scan's."""

    def __init__(self, url: str):
        super().__init__(url)
        self.saved: list[str] = []
        self.cleared = 0

    def _save_checkpoint(self, connection, checkpoint, now):
        self.saved.append(checkpoint.cursor)
        super()._save_checkpoint(connection, checkpoint, now)

    def clear_checkpoint(self, job, scope):
        self.cleared += 1
        super().clear_checkpoint(job, scope)


def test_the_last_chunk_saves_no_checkpoint_and_a_one_chunk_run_clears_none(tmp_path):
    store = CheckpointCountingStore(f"sqlite:///{tmp_path / 'nvi.sqlite'}")
    store.create_schema()
    shape = DemoShape(years=("2024",), old_row_share=0.0)
    store.put_periods(demo_periods(shape))
    store.put_candidates(list(demo_candidates(50, seed=32, shape=shape)))
    ids = sorted(c for page in store.candidate_id_pages("2024", 100) for c in page)

    chunked = run_candidate_step(store, YearScan("2024"), processors.refresh,
                                 StepSettings(job="CHECKPOINTS", max_batch_size=10), ledger=store)
    assert chunked.counters.written == 50
    assert store.saved == [ids[9], ids[19], ids[29], ids[39]], "every chunk but the last"
    assert store.cleared == 1 and store.load_checkpoint("CHECKPOINTS", "2024") is None

    store.saved.clear()
    store.cleared = 0
    whole = run_candidate_step(store, YearScan("2024"), processors.refresh,
                               StepSettings(job="CHECKPOINTS"), ledger=store)
    assert whole.counters.written == 50
    assert (store.saved, store.cleared) == ([], 0)
    store.dispose()


def test_on_sqlite_the_read_ahead_makes_way_while_a_chunks_statements_run_and_works_beside_its_commit(tmp_path):
    # sqlite3 lets go of the GIL at every row of an executemany; a thread computing beside it made every
    # row wait for the GIL (up to 5 ms each). Between items the read-ahead asks to make way.
    store = SqlStore(f"sqlite:///{tmp_path / 'nvi.sqlite'}")
    store.create_schema()
    store.put_candidates(list(demo_candidates(5, seed=33)))
    chunk = list(store.read_candidates([c.identifier for c in demo_candidates(5, seed=33)]).values())
    made_way = {}

    def read_ahead_asks(moment: str) -> None:
        asking = threading.Thread(target=store.make_way_for_writes)
        asking.start()
        asking.join(timeout=0.3 if moment == "statement" else 5)
        made_way[moment] = (asking.is_alive(), asking)

    def before_statement(connection, cursor, statement, *args):
        if statement.lstrip().upper().startswith(("UPDATE NVI_CHECKPOINTS", "INSERT INTO NVI_CHECKPOINTS")):
            read_ahead_asks("statement")  # the checkpoint: the chunk's last statement before COMMIT

    sa.event.listen(store.engine, "before_cursor_execute", before_statement)
    sa.event.listen(store.engine, "commit", lambda connection: read_ahead_asks("commit"))
    result = store.write_candidates(chunk, Checkpoint("TURNS", "2024", chunk[-1].identifier, "run"))

    assert sorted(result.written) == sorted(c.identifier for c in chunk)
    still_waiting, asking = made_way["statement"]
    assert still_waiting, "the read-ahead went on while the chunk's statements ran"
    asking.join(timeout=5)
    assert not asking.is_alive(), "the read-ahead was let go once the statements were done"
    assert made_way["commit"][0] is False, "the read-ahead waited for the COMMIT"
    store.dispose()
