"""``QUEUE_TYPE``: which type a service's queues get."""

from __future__ import annotations

import pytest

from nameko._protocol.queues import (
    QueueTypeMismatch,
    queue_arguments,
    queue_type_for,
    queue_type_mismatch,
)
from nameko.exceptions import ConfigurationError


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        (None, "classic"),
        ("classic", "classic"),
        ("quorum", "quorum"),
        ("Quorum", "quorum"),
        ({"svc": "quorum"}, "quorum"),
        ({"other": "quorum"}, "classic"),
        ({"*": "quorum", "other": "classic"}, "quorum"),
        ({"*": "quorum", "svc": "classic"}, "classic"),
        ({}, "classic"),
    ],
)
def test_the_type_of_a_service(setting, expected) -> None:
    config = {} if setting is None else {"QUEUE_TYPE": setting}
    assert queue_type_for(config, "svc") == expected


@pytest.mark.parametrize("setting", ["stream", "", 3, ["quorum"], {"svc": "fast"}])
def test_anything_else_is_a_configuration_error(setting) -> None:
    with pytest.raises(ConfigurationError, match="QUEUE_TYPE must be classic or quorum"):
        queue_type_for({"QUEUE_TYPE": setting}, "svc")


def test_classic_queues_get_no_arguments_as_in_nameko() -> None:
    assert queue_arguments("classic") == {}


def test_quorum_queues_say_so() -> None:
    assert queue_arguments("quorum") == {"x-queue-type": "quorum"}


def test_auto_delete_queues_stay_classic() -> None:
    assert queue_arguments("quorum", auto_delete=True) == {}


RABBIT_TEXT = (
    "PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue 'rpc-svc' in vhost 'v': "
    "received the value 'quorum' of type 'longstr' but current is none"
)


def test_a_queue_type_refusal_names_queue_types_and_key() -> None:
    error = queue_type_mismatch("rpc-svc", "quorum", RABBIT_TEXT)
    assert isinstance(error, QueueTypeMismatch)
    assert isinstance(error, ConfigurationError)
    text = str(error)
    assert "'rpc-svc' exists as a classic queue" in text
    assert "QUEUE_TYPE asks for quorum" in text


def test_an_existing_quorum_queue_is_named() -> None:
    text = "inequivalent arg 'x-queue-type' for queue 'q': received none but current is the value 'quorum' of type 'longstr'"  # noqa: E501
    assert "exists as a quorum queue" in str(queue_type_mismatch("q", "classic", text))


def test_other_refusals_are_not_about_the_type() -> None:
    assert queue_type_mismatch("q", "quorum", "inequivalent arg 'durable' for queue 'q'") is None
