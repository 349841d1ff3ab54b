"""Values between Python and DynamoDB's attribute-value maps, through boto3's (de)serializer."""

from __future__ import annotations

from decimal import Decimal

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def to_dynamo(value):
    """JSON values as the serializer takes them: floats become Decimals (DynamoDB numbers)."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {key: to_dynamo(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [to_dynamo(inner) for inner in value]
    return value


def from_dynamo(value):
    """Numbers back to the int or float JSON gives, so `data` reads as it does from the SQL store.

    A number a float cannot hold exactly (more digits than a double) stays a Decimal, so that a
    write-back stores the very number it read.
    """
    if isinstance(value, Decimal):
        if value.as_tuple().exponent >= 0:
            return int(value)
        as_float = float(value)
        return as_float if Decimal(repr(as_float)) == value else value
    if isinstance(value, dict):
        return {key: from_dynamo(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [from_dynamo(inner) for inner in value]
    return value


def serialize(attributes: dict) -> dict:
    """An item for the client, every attribute as given (a None becomes DynamoDB's NULL)."""
    return {name: _serializer.serialize(to_dynamo(value)) for name, value in attributes.items()}


def deserialize(item: dict) -> dict:
    return {name: from_dynamo(_deserializer.deserialize(value)) for name, value in item.items()}


def string_key(hash_name: str, hash_value: str, range_name: str, range_value: str) -> dict:
    return {hash_name: {"S": hash_value}, range_name: {"S": range_value}}
