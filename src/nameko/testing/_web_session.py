"""The session behind the ``web_session`` fixture (needs ``requests``)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urljoin

import requests

__all__ = ["WebSession"]


class WebSession(requests.Session):
    def __init__(self, base_url: str) -> None:
        super().__init__()
        self.base_url = base_url

    def request(
        self, method: str | bytes, url: Any, *args: Any, **kwargs: Any
    ) -> requests.Response:
        return super().request(method, urljoin(self.base_url, str(url)), *args, **kwargs)
