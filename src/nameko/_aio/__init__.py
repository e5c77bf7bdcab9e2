"""asyncio support: ``async def`` entrypoints on a container-owned event loop,
awaitable dependencies inside them, and an asyncio standalone client.

* `loop`: the container's event loop thread (runtime layer);
* `bridge`: `OneShot` results from the broker's I/O thread as awaitables;
* `workers`: running an ``async def`` worker through the same lifecycle as a
  sync one;
* `rpc`, `events`: the awaitable flavours of ``RpcProxy``/``ClusterRpc``/
  ``ServiceRpc`` and ``EventDispatcher`` (application layer);
* `standalone`: ``nameko.standalone.aio`` (tools layer).
"""
