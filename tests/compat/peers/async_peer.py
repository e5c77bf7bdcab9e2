"""``Peer`` again, as shimeji ``async def`` methods (shimeji only): the same
answers, over the same wire, whichever side of it nameko 2.14.1 is on."""

from peer_services import CallStack

from nameko.contextdata import Language, UserId
from nameko.rpc import RpcProxy, rpc


class AsyncSide:
    name = "async_side"
    language = Language()
    user_id = UserId()
    stack = CallStack()
    other = RpcProxy("nameko_side")

    @rpc
    async def hello(self, name):
        return f"{self.name} says hello to {name}"

    @rpc
    async def echo(self, *args, **kwargs):
        return {"args": list(args), "kwargs": kwargs}

    @rpc
    async def boom(self):
        raise ValueError("bad thing", 42)

    @rpc
    async def context(self):
        return {"language": self.language, "user_id": self.user_id, "stack": self.stack}

    @rpc
    async def relay_hello(self, name):
        return await self.other.hello(name)

    @rpc
    async def relay_context(self):
        return {"mine": await self.context(), "theirs": await self.other.context()}

    @rpc
    async def relay_boom(self):
        try:
            await self.other.boom()
        except Exception as exc:
            return {
                "type": type(exc).__name__,
                "str": str(exc),
                "exc_type": getattr(exc, "exc_type", None),
            }

    @rpc
    async def relay_missing(self):
        try:
            await self.other.no_such_method()
        except Exception as exc:
            return {"type": type(exc).__name__, "args": [str(a) for a in exc.args]}

    @rpc
    async def relay_fanout(self, names):
        replies = [self.other.hello.call_async(n) for n in names]
        return [await reply for reply in replies]
