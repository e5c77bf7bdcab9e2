"""The seed's ``console_service``, with an ``async def`` entrypoint."""

import asyncio
import json

from nameko.rpc import rpc


class ConsoleService:
    name = "console_service"
    uploads: list = []

    @rpc
    async def upload(self, data):
        record = json.loads(data)
        await asyncio.sleep(0.01)  # stands for awaiting storage
        type(self).uploads.append(record["name"])
        return True

    @rpc
    def count(self):
        return len(type(self).uploads)
