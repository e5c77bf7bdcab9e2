"""The seed's ``rpc.py``, awaitable: one client for the life of the app."""

import os

from nameko.standalone.aio import ClusterRpcProxy

config = {"AMQP_URI": os.environ.get("AMQP_URI", "amqp://guest:guest@localhost")}

# made at import time, connected in the app's lifespan (or by its first call)
cluster_rpc = ClusterRpcProxy(config, timeout=30)


async def upload_service_rpc(data) -> bool:
    """What the API awaits: the console service's ``upload``."""
    return await cluster_rpc.console_service.upload(data=data.model_dump_json())


async def uploads_so_far() -> int:
    return await cluster_rpc.console_service.count()
