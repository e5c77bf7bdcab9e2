"""The extension model (public nameko 2.x path)."""

from nameko._reexports import reexported
from nameko._runtime.extensions import (
    ENTRYPOINT_EXTENSIONS_ATTR,
    DependencyProvider,
    Entrypoint,
    Extension,
    ProviderCollector,
    SharedExtension,
    is_dependency,
    is_entrypoint,
    is_extension,
    iter_extensions,
    register_entrypoint,
)

__all__ = [
    "ENTRYPOINT_EXTENSIONS_ATTR",
    "DependencyProvider",
    "Entrypoint",
    "Extension",
    "ProviderCollector",
    "SharedExtension",
    "is_dependency",
    "is_entrypoint",
    "is_extension",
    "iter_extensions",
    "register_entrypoint",
]


def __getattr__(name: str) -> object:  # what nameko exposed here by importing it
    return reexported(__name__, name)
