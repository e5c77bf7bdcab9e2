"""Unit tests: no container, no broker; dependencies are mocks or fakes."""

from service import FrontService, GreetingService

from nameko.testing.services import worker_factory


def test_greet_with_a_fake_dependency():
    service = worker_factory(GreetingService, greetings={"en": "Hi"})
    assert service.greet("Ada") == "Hi, Ada!"


def test_welcome_with_a_mocked_rpc_proxy():
    service = worker_factory(FrontService)  # `greeting` is a MagicMock
    service.greeting.greet.return_value = "Hello, Ada!"
    assert service.welcome("Ada") == "HELLO, ADA!"
    service.greeting.greet.assert_called_once_with("Ada")
