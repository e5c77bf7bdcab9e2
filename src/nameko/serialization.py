"""Serializer selection from config (SPEC 1.15).

``setup(config)`` registers the custom serializers of ``SERIALIZERS``, then
returns the serializer to publish with and the list of accepted ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from nameko._global_config import given_or_global
from nameko._protocol import codecs
from nameko._reexports import reexported
from nameko.constants import (
    ACCEPT_CONFIG_KEY,
    DEFAULT_SERIALIZER,
    SERIALIZER_CONFIG_KEY,
    SERIALIZERS_CONFIG_KEY,
)
from nameko.exceptions import ConfigurationError
from nameko.utils import import_from_path

__all__ = ["SerializationConfig", "setup"]


class SerializationConfig(NamedTuple):
    """``(serializer, accept)``; a tuple, so 2.x-style unpacking keeps working."""

    serializer: str
    accept: list[str]


def setup(config: Mapping[str, Any] | None = None) -> SerializationConfig:
    """Register ``SERIALIZERS`` and return ``(serializer, accept)``.

    Every name in ``[serializer] + accept`` must be a registered serializer
    name, else `ConfigurationError`.
    """
    config = given_or_global(config)  # nameko 3: no argument
    for name, options in (config.get(SERIALIZERS_CONFIG_KEY) or {}).items():
        _register_from_config(name, options)
    serializer = config.get(SERIALIZER_CONFIG_KEY, DEFAULT_SERIALIZER)
    accept = config.get(ACCEPT_CONFIG_KEY, [serializer])
    for name in [serializer, *accept]:
        if not codecs.is_registered(name):
            raise ConfigurationError(f'Please register a serializer for "{name}" format')
    return SerializationConfig(serializer, accept)


def _register_from_config(name: str, options: Mapping[str, Any]) -> None:
    # Copy: the config dict is the user's and may be set up more than once.
    options = dict(options)
    encoder = import_from_path(options.pop("encoder", None))
    decoder = import_from_path(options.pop("decoder", None))
    if encoder is None or decoder is None or "content_type" not in options:
        raise ConfigurationError(
            f'Serializer "{name}" needs `encoder`, `decoder` and `content_type` entries'
        )
    try:
        codecs.register(name, encoder=encoder, decoder=decoder, **options)
    except TypeError as exc:  # unknown extra option
        raise ConfigurationError(f'Invalid options for serializer "{name}": {exc}') from exc


def __getattr__(name: str) -> object:  # what nameko exposed here by importing it
    return reexported(__name__, name)
