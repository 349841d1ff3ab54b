"""The legacy payload examples, read from the batch-job documentation in ../shared/seeds."""

from __future__ import annotations

import json
import re

import pytest

from nvi_batch_tests.conftest import SHARED_FIXTURES

LEGACY_DOC = SHARED_FIXTURES.parents[1] / "seeds" / "000_eb0a6049a70d60c1.txt"


@pytest.fixture
def legacy_examples() -> list[dict]:
    """Every JSON payload example of the old StartBatchJobHandler documentation, in order."""
    if not LEGACY_DOC.is_file():
        pytest.skip(f"{LEGACY_DOC} is absent (tests read the legacy documentation from ../shared)")
    blocks = re.findall(r"```json\n(.*?)```", LEGACY_DOC.read_text(), flags=re.DOTALL)
    return [json.loads(block) for block in blocks]
