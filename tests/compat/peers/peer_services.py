"""The same two services, run by real nameko 2.14.1 or by shimeji.

This module is imported by both implementations (it only uses the nameko 2.x
public API), so what one side sees, the other must see too.
"""

from nameko.contextdata import Language, UserId
from nameko.extensions import DependencyProvider
from nameko.rpc import RpcProxy, rpc


class CallStack(DependencyProvider):
    def get_dependency(self, worker_ctx):
        return list(worker_ctx.call_id_stack)


class Budget(DependencyProvider):
    """The caller's deadline (Unix seconds) as each implementation sees it:
    shimeji's ``worker_ctx.deadline``; nameko 2.14 knows no deadlines and
    keeps the ``nameko.call_deadline`` header as plain context data."""

    def get_dependency(self, worker_ctx):
        deadline = getattr(worker_ctx, "deadline", None)
        if deadline is None:
            ms = worker_ctx.data.get("call_deadline")
            deadline = ms / 1000.0 if ms else None
        return deadline


class Peer:
    language = Language()
    user_id = UserId()
    stack = CallStack()
    budget = Budget()

    @rpc
    def hello(self, name):
        return f"{self.name} says hello to {name}"

    @rpc
    def echo(self, *args, **kwargs):
        return {"args": list(args), "kwargs": kwargs}

    @rpc
    def boom(self):
        raise ValueError("bad thing", 42)

    @rpc
    def context(self):
        return {"language": self.language, "user_id": self.user_id, "stack": self.stack}

    @rpc
    def deadline(self):
        return self.budget

    @rpc
    def relay_deadline(self):
        return {"mine": self.budget, "theirs": self.other.deadline()}

    @rpc
    def relay_hello(self, name):
        return self.other.hello(name)

    @rpc
    def relay_context(self):
        return {"mine": self.context(), "theirs": self.other.context()}

    @rpc
    def relay_boom(self):
        try:
            self.other.boom()
        except Exception as exc:
            return {
                "type": type(exc).__name__,
                "str": str(exc),
                "exc_type": getattr(exc, "exc_type", None),
            }

    @rpc
    def relay_missing(self):
        try:
            self.other.no_such_method()
        except Exception as exc:
            return {"type": type(exc).__name__, "args": [str(a) for a in exc.args]}

    @rpc
    def relay_fanout(self, names):
        replies = [self.other.hello.call_async(n) for n in names]
        return [r.result() for r in replies]


class NamekoSide(Peer):
    name = "nameko_side"
    other = RpcProxy("shimeji_side")


class ShimejiSide(Peer):
    name = "shimeji_side"
    other = RpcProxy("nameko_side")
