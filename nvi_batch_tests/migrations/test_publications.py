"""Publication sources: S3 (moto over HTTP) and a local folder read the same layout and refuse the same things."""

from __future__ import annotations

import gzip
import json

import pytest
from botocore.exceptions import EndpointConnectionError

from nvi_batch.cli import main
from nvi_batch.demo_data import demo_candidates
from nvi_batch.domain.errors import DocumentUnusable
from nvi_batch.domain.publication import parse_publication
from nvi_batch.engine.errors import classify
from nvi_batch.lib.resources import local_publications
from nvi_batch.storage.publications import (
    LocalPublicationSource,
    S3PublicationSource,
    build_document,
    publication_identifier,
)
from nvi_batch_tests.aws import REGION, free_port
from nvi_batch_tests.migrations.builders import bucket_uri, year_candidates

SOURCES = ["s3", "local"]


@pytest.fixture(params=SOURCES)
def source(request):
    """Each source, with its bucket name (the local folder accepts any bucket)."""
    if request.param == "s3":
        s3 = request.getfixturevalue("s3_source")
        return s3, s3.bucket
    return request.getfixturevalue("local_source"), "nvi-local-publications"


def put_raw(source, uri: str, raw: bytes) -> None:
    if isinstance(source, S3PublicationSource):
        source.client.put_object(Bucket=source.bucket, Key=f"resources/{publication_identifier(uri)}.gz", Body=raw)
    else:
        path = source.path(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(raw)


def test_a_stored_document_reads_back_as_written(source):
    source, bucket = source
    candidate = year_candidates(1)[0]
    uri = bucket_uri(bucket, "0195c6f1a431-6290c69b-5488-44ea-b20f-cef3464fb1b5")
    candidate.data["publicationDetails"]["publicationBucketUri"] = uri
    document = build_document(candidate)

    source.put(uri, document)

    assert source.fetch(uri) == json.loads(json.dumps(document))


def test_a_missing_document_is_not_found(source):
    source, bucket = source
    uri = bucket_uri(bucket, "0195c6f1a431-0000")
    with pytest.raises(DocumentUnusable, match="not found") as refused:
        source.fetch(uri)
    assert refused.value.key == uri
    assert classify(refused.value).error_class == "permanent"


@pytest.mark.parametrize(
    "uri, reason",
    [
        ("s3://{bucket}/resources/../secrets.gz", "not a safe identifier"),
        ("s3://{bucket}/resources/%2e%2e.gz", "not a safe identifier"),
        ("s3://{bucket}/resources/a/b.gz", "not a safe identifier"),
        ("s3://{bucket}//etc/passwd.gz", "is not under resources/"),
        ("s3://{bucket}/private/x.gz", "is not under resources/"),
        ("s3://{bucket}/resources/x.json", "is not under resources/"),
        ("/etc/passwd", "not an s3://"),
        ("s3://Not_A_Bucket/resources/x.gz", "not a valid S3 bucket name"),
    ],
)
def test_keys_that_would_leave_the_bucket_prefix_are_refused(source, uri, reason, tmp_path):
    source, bucket = source
    with pytest.raises(DocumentUnusable, match=reason):
        source.fetch(uri.format(bucket=bucket))


def test_another_bucket_than_the_configured_one_is_refused(s3_source, tmp_path):
    local = LocalPublicationSource(tmp_path, bucket="nvi-publications")
    for source in (s3_source, local):
        with pytest.raises(DocumentUnusable, match="is not the configured publications bucket"):
            source.fetch(bucket_uri("someone-elses-bucket", "0195c6f1a431-6290"))


# Named by their reason: gzip's header carries the time of compression, and test ids must not change
# between the two workers' collections.
@pytest.mark.parametrize(
    "raw, reason",
    [
        pytest.param(raw, reason, id=reason) for raw, reason in (
            (b'{"body": {}}', "not gzip"),
            (gzip.compress(b"{not json"), "not JSON"),
            (gzip.compress(b"\xff\xfe\x00"), "not UTF-8"),
            (gzip.compress(b"[1, 2]"), "a JSON list, not an object"),
            (gzip.compress(json.dumps({"body": {}}).encode())[:-12], "truncated gzip"),
        )
    ],
)
def test_unreadable_documents_are_refused_with_the_reason(source, raw, reason):
    source, bucket = source
    uri = bucket_uri(bucket, "0195c6f1a431-broken")
    put_raw(source, uri, raw)
    with pytest.raises(DocumentUnusable, match=reason):
        source.fetch(uri)


def test_fetch_many_answers_for_each_uri_on_a_pool_as_large_as_its_threads(moto_endpoint, s3_bucket):
    source = S3PublicationSource(s3_bucket, REGION, moto_endpoint, max_connections=16)
    candidates = year_candidates(12)
    uris = [bucket_uri(s3_bucket, c.identifier) for c in candidates]
    for candidate, uri in zip(candidates[:10], uris, strict=False):
        candidate.data["publicationDetails"]["publicationBucketUri"] = uri
        source.put(uri, build_document(candidate))

    answers = source.fetch_many(uris + uris[:3], workers=16)

    assert source.client.meta.config.max_pool_connections == 16
    assert list(answers) == uris
    assert [answers[uri]["body"]["identifier"] for uri in uris[:10]] == [c.identifier for c in candidates[:10]]
    assert all(isinstance(answers[uri], DocumentUnusable) for uri in uris[10:])


def test_connection_errors_propagate_and_count_as_transient(monkeypatch):
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    source = S3PublicationSource("nvi-publications", REGION, f"http://127.0.0.1:{free_port()}")
    with pytest.raises(EndpointConnectionError) as failed:
        source.fetch(bucket_uri("nvi-publications", "0195c6f1a431-6290"))
    assert classify(failed.value).transient


def test_seed_with_publications_fills_the_folder_the_local_resource_reads(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("NVI_PUBLICATIONS_DIR", raising=False)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    url = f"sqlite:///{tmp_path / 'nvi.sqlite'}"

    assert main(["--data-dir", str(tmp_path), "--database-url", url, "seed", "--count", "25", "--publications"]) == 0

    assert f"wrote 25 publication documents under {tmp_path / 'publications'}" in capsys.readouterr().out
    source = local_publications(str(tmp_path)).open()
    for candidate in demo_candidates(25, seed=42):
        document = source.fetch(candidate.data["publicationDetails"]["publicationBucketUri"])
        assert document == build_document(candidate)


def test_every_generated_document_parses_as_nva_nvi_parses_it():
    for candidate in demo_candidates(300, seed=11):
        details = candidate.data["publicationDetails"]
        channel = candidate.data["pointCalculation"]["publicationChannel"]

        publication = parse_publication(build_document(candidate))

        assert (publication.id, publication.title) == (details["id"], details["title"])
        assert publication.publication_date.year == details["publicationDate"]["year"]
        assert publication.publication_type == candidate.data["pointCalculation"]["instanceType"]
        assert [(c.id, c.channel_type) for c in publication.publication_channels] == [
            (channel["id"], channel["channelType"])]
        assert len(publication.contributors) == len(candidate.data["creators"])
