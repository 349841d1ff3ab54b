"""S3 over HTTP (the session's moto server) and publication sources for the migration tests."""

from __future__ import annotations

import uuid

import boto3
import pytest

from nvi_batch.storage.publications import LocalPublicationSource, S3PublicationSource
from nvi_batch_tests.aws import REGION


class OpenedStore:
    """A store already open, in the shape of the store resource (`open()`), for any backend."""

    def __init__(self, store):
        self.store = store

    def open(self):
        return self.store


@pytest.fixture
def s3_bucket(moto_endpoint) -> str:
    name = f"nvi-publications-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", region_name=REGION, endpoint_url=moto_endpoint).create_bucket(
        Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    return name


@pytest.fixture
def s3_source(moto_endpoint, s3_bucket) -> S3PublicationSource:
    return S3PublicationSource(s3_bucket, REGION, moto_endpoint, max_connections=8)


@pytest.fixture
def local_source(tmp_path) -> LocalPublicationSource:
    return LocalPublicationSource(tmp_path / "publications")
