"""Inject one item of the worker's context data (public nameko 2.x path)."""

from __future__ import annotations

from typing import Any

from nameko._runtime.extensions import DependencyProvider
from nameko.constants import (
    AUTH_TOKEN_CONTEXT_KEY,
    LANGUAGE_CONTEXT_KEY,
    USER_AGENT_CONTEXT_KEY,
    USER_ID_CONTEXT_KEY,
)

__all__ = ["AuthToken", "ContextDataProvider", "Language", "UserAgent", "UserId"]


class ContextDataProvider(DependencyProvider):
    context_key: str | None = None

    def get_dependency(self, worker_ctx: Any) -> Any:
        return worker_ctx.data.get(self.context_key)


class Language(ContextDataProvider):
    context_key = LANGUAGE_CONTEXT_KEY


class UserId(ContextDataProvider):
    context_key = USER_ID_CONTEXT_KEY


class UserAgent(ContextDataProvider):
    context_key = USER_AGENT_CONTEXT_KEY


class AuthToken(ContextDataProvider):
    context_key = AUTH_TOKEN_CONTEXT_KEY
