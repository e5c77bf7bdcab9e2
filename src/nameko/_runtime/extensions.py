"""The extension model: declarations on a service class, bound per container.

An extension instance written on a class body (``rpc = RpcProxy("x")``) is a
*declaration*. `Extension.bind` builds a fresh instance for one container by
calling the class again with the arguments the declaration was made with, and
binds its sub-extensions the same way. A `SharedExtension` is bound once per
container and sharing key, so several entrypoints can share one consumer.

Unlike nameko 2.14 we look for sub-extensions without evaluating properties,
so building a container never runs an extension's property code.
"""

from __future__ import annotations

import types
import warnings
import weakref
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from nameko._concurrency import Event, Lock
from nameko._runtime._arguments import check_arguments

if TYPE_CHECKING:
    from nameko._runtime.container import ServiceContainer
    from nameko._runtime.worker import WorkerContext

__all__ = [
    "ENTRYPOINT_EXTENSIONS_ATTR",
    "DependencyProvider",
    "Entrypoint",
    "ExpectedExceptions",
    "Extension",
    "Method",
    "ProviderCollector",
    "SensitiveArguments",
    "SharedExtension",
    "is_bare",
    "is_dependency",
    "is_entrypoint",
    "is_extension",
    "iter_extensions",
    "register_entrypoint",
]

ENTRYPOINT_EXTENSIONS_ATTR = "nameko_entrypoints"

_E = TypeVar("_E", bound="Extension")
_S = TypeVar("_S", bound="SharedExtension")
_D = TypeVar("_D", bound="DependencyProvider")
_P = TypeVar("_P", bound="Entrypoint")
#: a service method, as an entrypoint decorator takes and returns it
Method = TypeVar("Method", bound=Callable[..., Any])
#: exceptions a method raises on purpose: logged as the caller's fault, not the service's
ExpectedExceptions = type[BaseException] | tuple[type[BaseException], ...]
#: argument names (``"password"``, or ``"user.token"`` for a key inside one) masked in logs
SensitiveArguments = str | tuple[str, ...] | list[str]


class Extension:
    """Base of everything that plugs into a service container."""

    if TYPE_CHECKING:
        # Set by `bind`. A declaration has None here, but only `is_bound` and
        # `__repr__` read it there: every other method runs on bound instances.
        container: ServiceContainer
    else:
        container = None
    __params: tuple[tuple[Any, ...], dict[str, Any]]

    def __new__(cls: type[_E], *args: Any, **kwargs: Any) -> _E:
        inst = super().__new__(cls)
        # Remembered so that `bind` can build a new instance the same way.
        inst.__params = (args, kwargs)
        return inst

    def setup(self) -> None:
        """Called on bound extensions before the container starts."""

    def start(self) -> None:
        """Called on bound extensions when the container starts."""

    def stop(self) -> None:
        """Called on bound extensions when the container stops gracefully."""

    def kill(self) -> None:
        """Called on bound extensions when the container is killed."""

    def bind(self: _E, container: ServiceContainer) -> _E:
        """A new instance of this declaration, bound to ``container``."""
        if self.is_bound():
            raise RuntimeError("Cannot `bind` a bound extension.")
        args, kwargs = self.__params
        instance = type(self)(*args, **kwargs)
        instance.container = _weak(container)
        for name, sub in _sub_extensions(self):
            setattr(instance, name, sub.bind(container))
        return instance

    def is_bound(self) -> bool:
        return self.container is not None

    def __repr__(self) -> str:
        if not self.is_bound():
            return f"<{type(self).__name__} [unbound] at 0x{id(self):x}>"
        return f"<{type(self).__name__} at 0x{id(self):x}>"


def _weak(container: Any) -> Any:
    try:
        return weakref.proxy(container)
    except TypeError:  # already a proxy (bound through another extension)
        return container


def _sub_extensions(ext: Extension) -> Iterator[tuple[str, Extension]]:
    """Extension-valued attributes of ``ext``, found without running properties."""
    seen: set[str] = set()
    for namespace in (vars(ext), *(vars(k) for k in type(ext).__mro__)):
        for name, value in namespace.items():
            if name in seen or name == "container":
                continue
            seen.add(name)
            if isinstance(value, Extension):
                yield name, value


class SharedExtension(Extension):
    """Bound once per container and `sharing_key`."""

    @property
    def sharing_key(self) -> Any:
        return type(self)

    def bind(self: _S, container: ServiceContainer) -> _S:
        key = self.sharing_key
        registry = getattr(container, "shared_extensions", None)
        if registry is None:
            # A container double without the registry (``create_autospec(
            # ServiceContainer)`` sees class attributes only, and nameko's
            # own bind path never needed it there): nothing to share with.
            return super().bind(container)
        shared = registry.get(key)
        if shared is not None:
            # bound from a declaration with this sharing key: by default, this class
            return cast(_S, shared)
        instance = super().bind(container)
        registry[key] = instance
        return instance


class DependencyProvider(Extension):
    """Injects an object into each worker as the attribute ``attr_name``."""

    if TYPE_CHECKING:
        attr_name: str  # set by `bind` (on the declaration too); None before
    else:
        attr_name = None

    # nameko's API: providers are bound with their attribute name, so the
    # signature is narrower than `Extension.bind` (a deliberate LSP break).
    def bind(self: _D, container: ServiceContainer, attr_name: str) -> _D:  # type: ignore[override]
        instance = super().bind(container)
        instance.attr_name = attr_name
        self.attr_name = attr_name
        return instance

    def get_dependency(self, worker_ctx: WorkerContext) -> Any:
        """The object to inject into the worker's service instance."""

    def worker_setup(self, worker_ctx: WorkerContext) -> None:
        """Before the service method runs."""

    def worker_result(
        self, worker_ctx: WorkerContext, result: Any = None, exc_info: Any = None
    ) -> None:
        """After the service method returned or raised."""

    def worker_teardown(self, worker_ctx: WorkerContext) -> None:
        """Last hook of every worker."""

    def __repr__(self) -> str:
        if not self.is_bound():
            return super().__repr__()
        service = _service_name(self.container)
        return f"<{type(self).__name__} [{service}.{self.attr_name}] at 0x{id(self):x}>"


def _service_name(container: Any) -> str:
    try:
        return container.service_name
    except ReferenceError:
        return "<dead container>"


class ProviderCollector:
    """Mixin for shared extensions that serve several providers."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._providers: set[Any] = set()
        self._providers_registered = False
        self._last_provider_unregistered = Event()
        self._providers_lock = Lock()
        super().__init__(*args, **kwargs)

    def register_provider(self, provider: Any) -> None:
        with self._providers_lock:
            self._providers_registered = True
            self._providers.add(provider)
            self._last_provider_unregistered.clear()

    def unregister_provider(self, provider: Any) -> None:
        with self._providers_lock:
            if provider not in self._providers:
                return
            self._providers.remove(provider)
            if not self._providers:
                self._last_provider_unregistered.set()

    def wait_for_providers(self) -> None:
        if self._providers_registered:
            self._last_provider_unregistered.wait()

    def stop(self) -> None:
        self.wait_for_providers()


def register_entrypoint(fn: Callable[..., Any], entrypoint: Entrypoint) -> None:
    descriptors = getattr(fn, ENTRYPOINT_EXTENSIONS_ATTR, None)
    if descriptors is None:
        descriptors = set()
        setattr(fn, ENTRYPOINT_EXTENSIONS_ATTR, descriptors)
    descriptors.add(entrypoint)


def nearest_name(entrypoint: Any, names: Mapping[str, str]) -> str | None:
    """What ``names`` (class name -> label) says of ``entrypoint``'s class or
    its nearest base: how metrics and announcements label an entrypoint,
    subclasses from 2.x extensions included."""
    for cls in type(entrypoint).__mro__:
        label = names.get(cls.__name__)
        if label is not None:
            return label
    return None


class Entrypoint(Extension):
    """Something that makes a service method run (an RPC request, a timer...)."""

    if TYPE_CHECKING:
        method_name: str  # set by `bind`; None on a declaration
    else:
        method_name = None

    #: shimeji: a worker of this entrypoint gets the caller's deadline from
    #: the ``nameko.call_deadline`` header and is not started once it passed
    observes_deadline = False

    def __init__(
        self, expected_exceptions: Any = (), sensitive_arguments: Any = (), **kwargs: Any
    ) -> None:
        if "sensitive_variables" in kwargs:
            warnings.warn(
                "`sensitive_variables` is deprecated; use `sensitive_arguments`",
                DeprecationWarning,
                stacklevel=2,
            )
            sensitive_arguments = kwargs.pop("sensitive_variables")
        self.expected_exceptions = expected_exceptions
        self.sensitive_arguments = sensitive_arguments
        super().__init__(**kwargs)

    # nameko's API: entrypoints are bound with their method name, so the
    # signature is narrower than `Extension.bind` (a deliberate LSP break).
    def bind(self: _P, container: ServiceContainer, method_name: str) -> _P:  # type: ignore[override]
        instance = super().bind(container)
        instance.method_name = method_name
        return instance

    def check_signature(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Raise `IncorrectSignature` if the method can't take these arguments."""
        check_arguments(getattr(self.container.service_cls, self.method_name), args, kwargs)

    @classmethod
    def decorator(cls, *args: Any, **kwargs: Any) -> Any:
        """Declare this entrypoint on a service method: ``@Cls`` alone, or
        ``@Cls(...)`` with the arguments of ``Cls``'s constructor; the method
        is returned unchanged. The public decorators (`nameko.rpc.rpc`,
        `nameko.timer.cron`, ...) are typed functions over this one, so that
        editors and the API reference show their real parameters."""

        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            register_entrypoint(fn, cls(*args, **kwargs))
            return fn

        if len(args) == 1 and not kwargs and isinstance(args[0], types.FunctionType):
            fn, args = args[0], ()
            return register(fn)
        return register

    def __repr__(self) -> str:
        if not self.is_bound():
            return super().__repr__()
        service = _service_name(self.container)
        return f"<{type(self).__name__} [{service}.{self.method_name}] at 0x{id(self):x}>"


def is_bare(first: Any) -> bool:
    """Whether a decorator function was given the service method itself
    (``@rpc`` without parentheses) rather than its first argument."""
    return isinstance(first, types.FunctionType)


def is_extension(obj: Any) -> bool:
    return isinstance(obj, Extension)


def is_dependency(obj: Any) -> bool:
    return isinstance(obj, DependencyProvider)


def is_entrypoint(obj: Any) -> bool:
    return isinstance(obj, Entrypoint)


def iter_extensions(extension: Extension) -> Iterator[Extension]:
    """Sub-extensions of ``extension``, depth first, children before parents."""
    for _, sub in _sub_extensions(extension):
        yield from iter_extensions(sub)
        yield sub
