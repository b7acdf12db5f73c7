"""The server checks a batch's signature on each change encoded by orjson, not json, and seals those bytes: they
must be exactly the bytes the device signed, whatever the change holds."""

from __future__ import annotations

import uuid
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pwa.sync import messages

# Text of any kind a worker might type or paste: accents, curly quotes, emoji (past U+FFFF), control characters,
# DEL, line and paragraph separators.
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=20,
)


def _batch(changes: list[dict[str, Any]], token: str = "device-token") -> messages.PushBatch:
    """A batch as SyncClient signs it: over its changes as the wire model dumps them."""
    changes = [messages.Change.model_validate(c).model_dump(mode="json") for c in changes]
    batch_id = str(uuid.uuid4())
    signature = messages.batch_signature(messages.token_key(token), batch_id, changes)
    return messages.PushBatch.model_validate({"batch_id": batch_id, "changes": changes, "signature": signature})


def _change(fields: dict[str, Any], body: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"change_id": str(uuid.uuid4()), "kind": "visit", "record_id": str(uuid.uuid4()),
            "fields": fields, "body": body, "clock": "0001754300000000-0000-node1"}


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(TEXT, VALUES, min_size=1, max_size=6))
def test_the_quick_encoding_is_byte_for_byte_the_signed_one(values: dict[str, Any]) -> None:
    quick = messages.quick_encode_change(values)
    assert quick is not None
    assert quick == messages.encode_change(values)


def test_a_batch_of_typed_text_is_checked_and_sealed_as_signed() -> None:
    changes = [_change({"child_id": "c1"}, {"child_words": "I’d like my café 😀 and my mum’s dog\x7f\u2028"})]
    batch = _batch(changes)
    wire = [c.__dict__.copy() for c in batch.changes]
    encoded = messages.signed_encodings(messages.token_key("device-token"), batch, wire)
    assert encoded == [messages.encode_change(c) for c in wire]


def test_a_change_holding_a_float_is_still_taken_as_signed() -> None:
    # orjson writes 1e-07 as 1e-7: the signature tells the two apart, and json's bytes are used.
    changes = [_change({"child_id": "c1", "distance_km": 1e-07}, {"note": "near"})]
    batch = _batch(changes)
    wire = [c.__dict__.copy() for c in batch.changes]
    assert messages.quick_encode_change(wire[0]) != messages.encode_change(wire[0])
    encoded = messages.signed_encodings(messages.token_key("device-token"), batch, wire)
    assert encoded == [messages.encode_change(wire[0])]


def test_an_altered_batch_has_no_signed_encoding() -> None:
    batch = _batch([_change({"child_id": "c1"}, {"child_words": "I am happy here"})])
    wire = [c.__dict__.copy() for c in batch.changes]
    wire[0]["body"] = {"child_words": "I am not happy here"}
    assert messages.signed_encodings(messages.token_key("device-token"), batch, wire) is None
    assert messages.signed_encodings(messages.token_key("another device"), _batch(wire), wire) is None
