"""Original publications (expanded-publication documents) from S3 or from a local folder.

Both sources read the nva-nvi layout: `resources/<publicationIdentifier>.gz` holding gzipped JSON
`{"body": ..., "consumptionAttributes": ...}`. A candidate names its document by
`publicationDetails.publicationBucketUri` (`s3://<bucket>/resources/<id>.gz`); that URI comes from
stored data, so it is checked before use and never allowed out of the bucket prefix or folder.

A document that is absent or unreadable is `DocumentUnusable` (permanent for the item); throttling,
5xx and connection errors from S3 propagate as botocore errors, which the engine treats as transient.
"""

from __future__ import annotations

import concurrent.futures
import gzip
import hashlib
import json
import os
import re
import threading
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from nvi_batch.demo_data import demo_channel
from nvi_batch.domain.candidate import VERIFIED_CREATOR, CandidateAggregate
from nvi_batch.domain.errors import DocumentUnusable

RESOURCES_PREFIX = "resources/"
MAX_DOCUMENT_BYTES = 64 * 1024 * 1024  # far above any real document; guards against a gzip bomb
_IDENTIFIER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_NOT_FOUND_CODES = frozenset({"NoSuchKey", "404", "NotFound"})


class PublicationSource(Protocol):
    def fetch(self, bucket_uri: str) -> dict:
        """The parsed document `{"body": ..., "consumptionAttributes": ...}` the URI names."""

    def fetch_many(self, bucket_uris: Sequence[str], workers: int) -> dict[str, dict | Exception]:
        """Fetch concurrently on at most `workers` threads; each URI maps to its document or its error."""


def publication_identifier(bucket_uri: str, bucket: str | None = None) -> str:
    """The publication identifier in `s3://<bucket>/resources/<id>.gz`, refusing anything else.

    `bucket`, when given, is the only bucket accepted. Identifiers are letters, digits, `-` and `_`,
    so no key can climb out of `resources/` (`..`, `/`, `%2e`, absolute paths are all refused).
    """
    if not isinstance(bucket_uri, str) or not bucket_uri.startswith("s3://"):
        raise DocumentUnusable(str(bucket_uri), "not an s3://<bucket>/resources/<id>.gz URI")
    uri_bucket, _, key = bucket_uri[len("s3://"):].partition("/")
    if not _BUCKET.match(uri_bucket):
        raise DocumentUnusable(bucket_uri, f"bucket name {uri_bucket!r} is not a valid S3 bucket name")
    if bucket is not None and uri_bucket != bucket:
        raise DocumentUnusable(bucket_uri, f"bucket {uri_bucket!r} is not the configured publications bucket {bucket!r}")
    if not key.startswith(RESOURCES_PREFIX) or not key.endswith(".gz"):
        raise DocumentUnusable(bucket_uri, f"key {key!r} is not under {RESOURCES_PREFIX} as <id>.gz")
    identifier = key[len(RESOURCES_PREFIX):-len(".gz")]
    if not _IDENTIFIER.match(identifier):
        raise DocumentUnusable(bucket_uri, f"publication identifier {identifier!r} is not a safe identifier")
    return identifier


def parse_document(bucket_uri: str, raw: bytes) -> dict:
    """Gunzip and parse one stored document; anything unreadable is refused with the reason."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        text = inflater.decompress(raw, MAX_DOCUMENT_BYTES + 1)
    except zlib.error as error:
        raise DocumentUnusable(bucket_uri, f"unreadable: not gzip ({error})") from None
    if len(text) > MAX_DOCUMENT_BYTES:
        raise DocumentUnusable(bucket_uri, f"unreadable: larger than {MAX_DOCUMENT_BYTES} bytes unzipped")
    if not inflater.eof:
        raise DocumentUnusable(bucket_uri, "unreadable: truncated gzip stream")
    try:
        document = json.loads(text.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise DocumentUnusable(bucket_uri, f"unreadable: not UTF-8 ({error})") from None
    except json.JSONDecodeError as error:
        raise DocumentUnusable(bucket_uri, f"unreadable: not JSON ({error})") from None
    if not isinstance(document, dict):
        raise DocumentUnusable(bucket_uri, f"unreadable: a JSON {type(document).__name__}, not an object")
    return document


class _FetchMany:
    """`fetch_many` for any source with a thread-safe `fetch`.

    The threads are started once per source and number of workers and kept for its next calls: a
    report fetches a small batch at a time, and a pool per batch would start and stop thousands of
    threads in a large year (and leave the allocator a fresh arena to fragment each time).
    """

    _pool: concurrent.futures.ThreadPoolExecutor | None = None
    _pool_workers = 0
    _pool_lock = threading.Lock()

    def fetch_many(self, bucket_uris: Sequence[str], workers: int) -> dict[str, dict | Exception]:
        if workers < 1:
            raise ValueError(f"workers must be positive, got {workers}")

        def one(uri: str) -> dict | Exception:
            try:
                return self.fetch(uri)
            except Exception as error:  # each URI answers for itself; the caller classifies
                return error

        unique = list(dict.fromkeys(bucket_uris))
        return dict(zip(unique, self._threads(workers).map(one, unique), strict=True))

    def _threads(self, workers: int) -> concurrent.futures.ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None or self._pool_workers != workers:
                if self._pool is not None:
                    self._pool.shutdown(wait=False)
                self._pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="nvi-fetch")
                self._pool_workers = workers
            return self._pool


class S3PublicationSource(_FetchMany):
    """GetObject from the publications bucket, with a connection pool as large as the thread count."""

    def __init__(
        self,
        bucket: str,
        region: str | None = None,
        endpoint_url: str | None = None,
        max_connections: int = 10,
    ):
        if not _BUCKET.match(bucket or ""):
            raise ValueError(f"publications bucket {bucket!r} is not a valid S3 bucket name")
        self.bucket = bucket
        self.client = boto3.client(
            "s3",
            region_name=region or None,
            endpoint_url=endpoint_url or None,
            # botocore keeps 10 connections by default: threads beyond that would queue for one.
            config=Config(max_pool_connections=max_connections, retries={"mode": "standard"}),
        )

    def fetch(self, bucket_uri: str) -> dict:
        key = f"{RESOURCES_PREFIX}{publication_identifier(bucket_uri, self.bucket)}.gz"
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in _NOT_FOUND_CODES:
                raise DocumentUnusable(bucket_uri, "not found") from None
            raise
        with response["Body"] as body:
            return parse_document(bucket_uri, body.read())

    def put(self, bucket_uri: str, document: dict) -> None:
        key = f"{RESOURCES_PREFIX}{publication_identifier(bucket_uri, self.bucket)}.gz"
        self.client.put_object(Bucket=self.bucket, Key=key, Body=gzip.compress(json.dumps(document).encode()))


class LocalPublicationSource(_FetchMany):
    """A folder laid out like the bucket (`<folder>/resources/<id>.gz`): the demo and tests, no AWS.

    `bucket`, when given, is the only bucket URIs may name; otherwise the folder stands in for any.
    """

    def __init__(self, folder: str | Path, bucket: str | None = None):
        self.folder = Path(folder).expanduser().resolve()
        self.bucket = bucket or None
        self._resources = os.path.join(self.folder, "resources")

    def path(self, bucket_uri: str) -> Path:
        return Path(self._file(bucket_uri))

    def _file(self, bucket_uri: str) -> str:
        """The document's file as plain text: pathlib interns every part of every path it parses, and
        a name per document would keep rebuilding the interpreter's table of interned strings."""
        identifier = publication_identifier(bucket_uri, self.bucket)
        path = os.path.realpath(os.path.join(self._resources, f"{identifier}.gz"))
        if os.path.dirname(path) != self._resources:  # a symlink pointing elsewhere
            raise DocumentUnusable(bucket_uri, f"resolves outside {self.folder}")
        return path

    def fetch(self, bucket_uri: str) -> dict:
        try:
            with open(self._file(bucket_uri), "rb") as file:
                raw = file.read()
        except FileNotFoundError:
            raise DocumentUnusable(bucket_uri, "not found") from None
        return parse_document(bucket_uri, raw)

    def put(self, bucket_uri: str, document: dict) -> None:
        path = self.path(bucket_uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(gzip.compress(json.dumps(document).encode(), mtime=0))


def write_documents(source: S3PublicationSource | LocalPublicationSource, candidates: Iterable[CandidateAggregate]) -> int:
    """Store the generated document of each candidate at its bucket URI; returns how many."""
    count = 0
    for candidate in candidates:
        source.put(candidate.data["publicationDetails"]["publicationBucketUri"], build_document(candidate))
        count += 1
    return count


# -- generated documents -------------------------------------------------------------------------

def demo_handle(publication_id: str) -> str:
    """A stable handle for a publication, for documents whose candidate lists none."""
    number = int(hashlib.sha256(publication_id.encode()).hexdigest()[:8], 16) % 900000 + 100000
    return f"https://hdl.handle.net/11250/{number}"


def build_document(candidate: CandidateAggregate) -> dict:
    """A realistic expanded-publication document for a (demo) candidate, in the nva-nvi shape.

    It carries everything the candidate knows about its publication, and a handle even where the
    candidate lists none (as the publication register often knows more than an old candidate row),
    so that a migration run against it has something to fill.
    """
    details = candidate.data.get("publicationDetails") or {}
    calculation = candidate.data.get("pointCalculation") or {}
    bucket_uri = details["publicationBucketUri"]
    identifier = publication_identifier(bucket_uri)
    publication_id = details.get("id") or f"https://api.nva.unit.no/publication/{identifier}"
    handles = details.get("handles") or [demo_handle(publication_id)]
    date = details.get("publicationDate") or {}
    body = {
        "type": "Publication",
        "id": publication_id,
        "identifier": identifier,
        "status": "PUBLISHED",
        "createdDate": candidate.data.get("createdDate"),
        "modifiedDate": details.get("modifiedDate") or candidate.data.get("modifiedDate"),
        "publishedDate": candidate.data.get("createdDate"),
        "handle": handles[0],
        "additionalIdentifiers": [
            {"type": "HandleIdentifier", "sourceName": "nva@sikt", "value": handle} for handle in handles[1:]
        ],
        "topLevelOrganizations": [
            {"id": org["id"], "type": "Organization", "countryCode": org.get("countryCode"), "labels": org.get("labels", {})}
            for org in details.get("topLevelNviOrganizations") or []
        ],
        "entityDescription": {
            "type": "EntityDescription",
            "mainTitle": details.get("title"),
            "language": details.get("language"),
            "publicationDate": {"type": "PublicationDate", **{k: v for k, v in date.items() if v}},
            "contributors": [_contributor(creator, sequence) for sequence, creator in
                             enumerate(candidate.data.get("creators") or [], start=1)],
            "contributorsCount": details.get("contributorCount", len(candidate.data.get("creators") or [])),
            "reference": {
                "type": "Reference",
                "publicationContext": _document_channel(calculation.get("publicationChannel") or {}),
                "publicationInstance": {"type": calculation.get("instanceType"), "pages": _document_pages(details)},
            },
        },
    }
    if details.get("abstractText"):
        body["entityDescription"]["abstract"] = details["abstractText"]
    return {"body": body, "consumptionAttributes": {"index": "resources", "documentIdentifier": identifier}}


def _document_channel(channel: dict) -> dict:
    """The candidate's channel as the document names it: its id, type and level, and the name and
    ISSNs the candidate does not hold (the reports' channel columns come from these)."""
    context = {"type": channel.get("channelType"), "id": channel.get("id"),
               "scientificValue": channel.get("scientificValue")}
    if channel.get("id") and channel.get("channelType"):
        context.update(demo_channel(channel["id"], channel["channelType"]))
    return context


def _contributor(creator: dict, sequence: int) -> dict:
    verified = creator.get("type", VERIFIED_CREATOR) == VERIFIED_CREATOR and creator.get("creatorId")
    identity = {"type": "Identity", "name": creator.get("creatorName"),
                "verificationStatus": "Verified" if verified else "NotVerified"}
    if verified:
        identity["id"] = creator["creatorId"]
    return {
        "type": "Contributor",
        "identity": identity,
        "affiliations": [{"id": affiliation, "type": "Organization"} for affiliation in creator.get("affiliations") or []],
        "role": {"type": "Creator"},
        "sequence": str(sequence),
        "correspondingAuthor": "false",
    }


def _document_pages(details: dict) -> dict:
    pages = details.get("pages") or {}
    if pages.get("first") or pages.get("last"):
        return {"type": "Range", **({"begin": pages["first"]} if pages.get("first") else {}),
                **({"end": pages["last"]} if pages.get("last") else {})}
    if pages.get("total"):
        return {"type": "MonographPages", "pages": pages["total"]}
    return {"type": "Range"}
