"""The extension model: declaration, binding, sharing, decorators (SPEC 1.2, 2.1, 2.2)."""

from __future__ import annotations

import warnings

import pytest

from nameko.containers import ServiceContainer
from nameko.exceptions import IncorrectSignature
from nameko.extensions import (
    ENTRYPOINT_EXTENSIONS_ATTR,
    DependencyProvider,
    Entrypoint,
    Extension,
    ProviderCollector,
    SharedExtension,
    iter_extensions,
    register_entrypoint,
)
from nameko.testing.services import dummy


class Leaf(Extension):
    pass


class Shared(SharedExtension):
    leaf = Leaf()


class Middle(Extension):
    shared = Shared()
    leaf = Leaf()


class Provider(DependencyProvider):
    middle = Middle()

    def __init__(self, value, *, flag=False):
        self.value = value
        self.flag = flag


class Service:
    name = "svc"
    dep = Provider(42, flag=True)
    other = Provider(7)

    @dummy
    def method(self, a, b=2):
        pass


def make_container():
    return ServiceContainer(Service, {})


def test_bind_builds_a_new_instance_with_the_declaration_arguments():
    container = make_container()
    bound = {d.attr_name: d for d in container.dependencies}
    assert bound["dep"] is not Service.dep
    assert (bound["dep"].value, bound["dep"].flag) == (42, True)
    assert bound["other"].value == 7
    assert bound["dep"].container.service_name == "svc"
    assert Service.dep.attr_name == "dep"  # set on the declaration too
    assert not Service.dep.is_bound() and bound["dep"].is_bound()


def test_binding_a_bound_extension_is_an_error():
    bound = next(iter(make_container().dependencies))
    with pytest.raises(RuntimeError, match="Cannot `bind` a bound extension."):
        Leaf.bind(bound.middle.leaf, make_container())


def test_sub_extensions_are_bound_and_shared_ones_are_shared_per_container():
    container = make_container()
    deps = sorted(container.dependencies, key=lambda d: d.attr_name)
    assert deps[0].middle is not deps[1].middle
    assert deps[0].middle.shared is deps[1].middle.shared
    assert make_container().shared_extensions[Shared] is not deps[0].middle.shared
    assert deps[0].middle.leaf.is_bound()


def test_iter_extensions_is_depth_first_children_before_parents():
    dep = next(d for d in make_container().dependencies if d.attr_name == "dep")
    order = [type(e).__name__ for e in iter_extensions(dep)]
    assert order.index("Shared") > 0 and order[-1] == "Middle"
    assert order.count("Leaf") == 2


def test_properties_are_not_evaluated_when_binding():
    class Touchy(DependencyProvider):
        @property
        def boom(self):
            raise KeyError("AMQP_URI")

    class S:
        name = "s"
        touchy = Touchy()

    ServiceContainer(S, {})  # nameko 2.14 would raise KeyError here


def test_bound_extensions_hold_their_container_weakly():
    dep = next(iter(make_container().dependencies))
    assert "<dead container>" in repr(dep)


def test_reprs():
    container = make_container()
    dep = next(d for d in container.dependencies if d.attr_name == "dep")
    assert repr(Service.dep).startswith("<Provider [unbound] at 0x")
    assert repr(dep).startswith("<Provider [svc.dep] at 0x")
    entrypoint = next(iter(container.entrypoints))
    assert repr(entrypoint).startswith("<Entrypoint [svc.method] at 0x")


def test_decorator_bare_and_called_forms_return_the_function_unchanged():
    class Custom(Entrypoint):
        def __init__(self, interval=None, **kwargs):
            self.interval = interval
            super().__init__(**kwargs)

    custom = Custom.decorator

    def fn(self):
        pass

    assert custom(fn) is fn
    assert custom(5, expected_exceptions=ValueError)(fn) is fn
    entrypoints = getattr(fn, ENTRYPOINT_EXTENSIONS_ATTR)
    assert sorted(str(e.interval) for e in entrypoints) == ["5", "None"]
    assert {e.expected_exceptions for e in entrypoints} == {(), ValueError}


def test_several_entrypoints_on_one_method_bind_separately():
    class A(Entrypoint):
        pass

    class B(Entrypoint):
        pass

    class S:
        name = "s"

        @A.decorator
        @B.decorator
        def both(self):
            pass

    container = ServiceContainer(S, {})
    assert sorted(type(e).__name__ for e in container.entrypoints) == ["A", "B"]
    assert {e.method_name for e in container.entrypoints} == {"both"}


def test_method_name_is_the_attribute_name():
    class S:
        name = "s"

        @dummy
        def real(self):
            pass

        alias = real

    container = ServiceContainer(S, {})
    assert {e.method_name for e in container.entrypoints} == {"real", "alias"}


def test_sensitive_variables_is_deprecated_and_copied():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        entrypoint = Entrypoint(sensitive_variables=("password",))
    assert entrypoint.sensitive_arguments == ("password",)
    assert caught and caught[0].category is DeprecationWarning


def test_check_signature_reports_cpython_message_counting_self():
    container = make_container()  # extensions hold their container weakly
    entrypoint = next(iter(container.entrypoints))
    entrypoint.check_signature((1,), {})
    entrypoint.check_signature((1, 2), {})
    with pytest.raises(IncorrectSignature) as raised:
        entrypoint.check_signature((1, 2, 3, 4), {})
    assert str(raised.value) == "method() takes from 2 to 3 positional arguments but 5 were given"


def test_register_entrypoint_creates_the_set():
    def fn():
        pass

    entrypoint = Entrypoint()
    register_entrypoint(fn, entrypoint)
    assert getattr(fn, ENTRYPOINT_EXTENSIONS_ATTR) == {entrypoint}


def test_community_extension_without_super_init_works():
    # like seed 000's LoggingDependency: __init__ never calls super()
    class Logging(DependencyProvider):
        def __init__(self):
            self.timestamps = {}

    class S:
        name = "s"
        log = Logging()

    (bound,) = ServiceContainer(S, {}).dependencies
    assert bound.timestamps == {} and bound.attr_name == "log"


def test_provider_collector_waits_only_if_something_registered():
    class Collector(ProviderCollector, Extension):
        pass

    collector = Collector()
    collector.wait_for_providers()  # returns at once: nothing ever registered
    collector.register_provider("a")
    collector.register_provider("b")
    collector.unregister_provider("a")
    collector.unregister_provider("unknown")
    assert not collector._last_provider_unregistered.is_set()
    collector.unregister_provider("b")
    collector.stop()  # returns: the last provider went away
