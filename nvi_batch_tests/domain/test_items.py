"""A write's new versions are random version-4 UUIDs, written as the standard library writes them."""

import uuid

from nvi_batch.domain.items import random_version


def test_a_new_version_is_the_text_of_a_random_version_4_uuid():
    versions = [random_version() for _ in range(2000)]
    for version in versions:
        parsed = uuid.UUID(version)
        assert str(parsed) == version
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
    assert len(set(versions)) == len(versions)
