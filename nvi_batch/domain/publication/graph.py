"""The body of a stored document as a graph: objects with the same `id` are one node, and their values add up."""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from nvi_batch.domain.publication.model import (
    DATE_TIME,
    DATE_TIME_TERMS,
    IRI_TERMS,
    LANGUAGE_MAP_TERMS,
    PROPERTY_OF_TERM,
    STRING,
    VOCAB,
    VOCABULARY_TERMS,
    PublicationRejected,
)


class Ref(NamedTuple):
    """A node: an IRI, or a blank node (an object without `id`), which the service's output shows without id."""

    key: str
    blank: bool = False


class Lit(NamedTuple):
    """A literal: its text, its datatype (`string` for plain text) and its language tag."""

    text: str
    datatype: str = STRING
    language: str | None = None

    @property
    def plain(self) -> bool:
        return self.datatype == STRING and self.language is None


Value = Ref | Lit


@dataclass
class _Node:
    types: dict[str, None] = field(default_factory=dict)  # ordered sets
    values: dict[str, dict[Value, None]] = field(default_factory=dict)

    def get(self, prop: str) -> list[Value]:
        return list(self.values.get(prop, ()))


class Graph:
    """The body as the service's JSON-LD reading sees it: one node per `id`, values merged, blanks apart."""

    def __init__(self, body: dict):
        self.nodes: dict[Ref, _Node] = {}
        self._blank_ids = itertools.count()
        self._node(body, "")

    def node(self, ref: Ref) -> _Node:
        return self.nodes.get(ref) or _Node()

    def nodes_typed(self, type_name: str) -> Iterator[Ref]:
        return (ref for ref, node in self.nodes.items() if type_name in node.types)

    def refs(self, ref: Value, prop: str) -> list[Ref]:
        return [v for v in self.node(ref).get(prop) if isinstance(v, Ref)] if isinstance(ref, Ref) else []

    def has_type(self, value: Value, type_name: str) -> bool:
        return isinstance(value, Ref) and type_name in self.node(value).types

    def _node(self, obj: dict, path: str) -> Ref:
        if "id" in obj or "@id" in obj:
            identifier = obj["id"] if "id" in obj else obj["@id"]
            if not isinstance(identifier, str):
                raise PublicationRejected(_join(path, "id"), f"not text ({identifier!r}), so JSON-LD refuses the document")
            ref = Ref(identifier, blank=identifier.startswith("_:"))
        else:
            ref = Ref(f"_:\0{next(self._blank_ids)}", blank=True)
        # RDF has no statement about an IRI that is not well formed: such a node keeps none of its values.
        node = self.nodes.setdefault(ref, _Node()) if _well_formed(ref) else _Node()
        for key, value in obj.items():
            if key in ("id", "@id", "@context"):
                continue
            if key in ("type", "@type"):
                for type_name in value if isinstance(value, list) else [value]:
                    if not isinstance(type_name, str):
                        raise PublicationRejected(_join(path, key), f"not text ({value!r}), so JSON-LD refuses the document")
                    if _well_formed(Ref(type_name)):
                        node.types[_compact(type_name)] = None
                continue
            if key.startswith("@") or value is None:
                continue
            prop, plain_text = _term(key)
            values = node.values.setdefault(prop, {})
            if plain_text and isinstance(value, str):
                values[Lit(value)] = None  # the common case, without the general machinery below
                continue
            for item in self._values(key, value, _join(path, key)):
                if _well_formed(item):
                    values[item] = None
        return ref

    def _values(self, term: str, value, path: str) -> Iterator[Value]:
        if term in LANGUAGE_MAP_TERMS and isinstance(value, dict):
            for language, texts in value.items():
                for text in _listed(texts):
                    if not isinstance(text, str):
                        raise PublicationRejected(_join(path, language),
                                                  f"not text ({text!r}), so JSON-LD refuses the document")
                    yield Lit(text, STRING, language)
            return
        for item in _listed(value):
            if isinstance(item, dict) and "@set" in item:
                yield from self._values(term, item["@set"], path)
            elif isinstance(item, dict) and "@list" in item:
                continue  # an RDF list: its members are no direct values of the property
            elif isinstance(item, dict):
                yield _value_object(item, path) if "@value" in item else self._node(item, path)
            elif isinstance(item, str):
                if term in IRI_TERMS:
                    yield Ref(item, blank=item.startswith("_:"))
                elif term in VOCABULARY_TERMS:
                    yield Ref(_compact(item))
                else:
                    yield Lit(item, DATE_TIME if term in DATE_TIME_TERMS else STRING)
            else:
                literal = _native(item)
                yield Lit(literal.text, DATE_TIME) if term in DATE_TIME_TERMS else literal


_NOT_IN_IRIS = re.compile(r'[\x00-\x20<>"{}|\\^`]')


def _well_formed(value: Value) -> bool:
    """Literals always; IRIs without spaces or the characters IRIs exclude (JSON-LD drops the others)."""
    return isinstance(value, Lit) or value.blank or not _NOT_IN_IRIS.search(value.key)


@functools.cache
def _term(key: str) -> tuple[str, bool]:
    """The property a key names, and whether its text values are plain text literals."""
    plain_text = key not in IRI_TERMS | VOCABULARY_TERMS | DATE_TIME_TERMS | LANGUAGE_MAP_TERMS
    return PROPERTY_OF_TERM.get(key, _compact(key)), plain_text


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _listed(value) -> Iterator:
    """A JSON value as JSON-LD lists it: arrays flattened, nulls dropped."""
    if isinstance(value, list):
        for item in value:
            yield from _listed(item)
    elif value is not None:
        yield value


def _compact(iri: str) -> str:
    return iri[len(VOCAB):] if iri.startswith(VOCAB) else iri


def _native(value) -> Lit:
    if isinstance(value, bool):
        return Lit("true" if value else "false", "boolean")
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) < 1e21):
        return Lit(str(int(value)), "integer")
    return Lit(repr(value), "double")


def _value_object(item: dict, path: str) -> Lit:
    text = item["@value"]
    if isinstance(text, str):
        datatype = _compact(item.get("@type") or STRING)
        plain = datatype in (STRING, "xsd:string", "http://www.w3.org/2001/XMLSchema#string")
        return Lit(text, STRING if plain else datatype, item.get("@language"))
    if text is None:
        raise PublicationRejected(path, "a value object without a value, so JSON-LD refuses the document")
    return _native(text)
