"""A tiny imitation of RabbitMQ's management HTTP API, for unit tests of
`nameko.testing.rabbit.Client` and of vhost creation through the API: it
answers the endpoints the client uses from an in-memory model and records
every request. It is not RabbitMQ: nothing here checks AMQP behaviour."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

AUTH = "Basic " + base64.b64encode(b"guest:guest").decode()


class FakeManagementApi:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str, object]] = []
        self.vhosts: dict[str, dict] = {"/": {}}
        self.permissions: dict[tuple[str, str], dict] = {}
        self.queues: dict[tuple[str, str], dict] = {}
        self.bindings: list[dict] = []
        self.messages: dict[tuple[str, str], list[dict]] = {}
        self.connections = [{"name": "127.0.0.1:1 -> 127.0.0.1:5672", "vhost": "/"}]
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.port = self._server.server_address[1]
        self.uri = f"http://guest:guest@127.0.0.1:{self.port}"

    def __enter__(self) -> FakeManagementApi:
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.01,), daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output quiet
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                if self.headers.get("authorization") != AUTH:
                    return self._reply(401, {"error": "not_authorised"})
                parts = [unquote(p) for p in self.path.split("/")[2:]]  # after /api/
                api.requests.append((self.command, self.path, body))
                status, payload = api.route(self.command, parts, body)
                self._reply(status, payload)

            def _reply(self, status: int, payload: object) -> None:
                data = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = _serve

        return Handler

    def route(self, method: str, parts: list[str], body: object) -> tuple[int, object]:
        handler = getattr(self, f"_{method.lower()}_{parts[0]}", None)
        if handler is None:
            return 404, {"error": "Object Not Found"}
        return handler(parts[1:], body)

    def _get_overview(self, parts, body):
        return 200, {"rabbitmq_version": "fake"}

    def _get_vhosts(self, parts, body):
        return 200, [{"name": name} for name in self.vhosts]

    def _put_vhosts(self, parts, body):
        self.vhosts[parts[0]] = {}
        return 201, None

    def _delete_vhosts(self, parts, body):
        if self.vhosts.pop(parts[0], None) is None:
            return 404, {"error": "Object Not Found"}
        return 204, None

    def _put_permissions(self, parts, body):
        self.permissions[(parts[0], parts[1])] = body
        return 201, None

    def _get_connections(self, parts, body):
        return 200, self.connections

    def _delete_connections(self, parts, body):
        self.connections = [c for c in self.connections if c["name"] != parts[0]]
        return 204, None

    def _get_exchanges(self, parts, body):
        return 200, [{"name": "", "vhost": parts[0], "type": "direct"}]

    def _post_exchanges(self, parts, body):  # .../<vhost>/<exchange>/publish
        vhost, _, _ = parts
        targets = [b["queue"] for b in self.bindings if b["routing_key"] == body["routing_key"]]
        for queue in targets:
            self.messages.setdefault((vhost, queue), []).append(body)
        return 200, {"routed": bool(targets)}

    def _get_queues(self, parts, body):
        if len(parts) == 1:
            return 200, [q for (v, _), q in self.queues.items() if v == parts[0]]
        if len(parts) == 3:  # .../<vhost>/<queue>/bindings
            return 200, [b for b in self.bindings if b["queue"] == parts[1]]
        queue = self.queues.get((parts[0], parts[1]))
        return (200, queue) if queue else (404, {"error": "Object Not Found"})

    def _put_queues(self, parts, body):
        self.queues[(parts[0], parts[1])] = {"name": parts[1], "vhost": parts[0], **body}
        return 201, None

    def _post_queues(self, parts, body):  # .../<vhost>/<queue>/get
        waiting = self.messages.get((parts[0], parts[1]), [])
        taken = waiting[: body["count"]]
        if not body["requeue"]:
            del waiting[: body["count"]]
        return 200, [{"payload": m["payload"], "routing_key": m["routing_key"]} for m in taken]

    def _post_bindings(self, parts, body):  # .../<vhost>/e/<exchange>/q/<queue>
        vhost, _, exchange, _, queue = parts
        self.bindings.append({"vhost": vhost, "source": exchange, "queue": queue, **body})
        return 201, None
