"""Run under real nameko 2.14.1: call a service with the standalone client and
print what happened as one JSON line per call."""

import json
import sys

from nameko.exceptions import RemoteError
from nameko.standalone.rpc import ClusterRpcProxy

uri, service = sys.argv[1], sys.argv[2]
config = {"AMQP_URI": uri}
results = {}


def record(name, fn):
    try:
        results[name] = {"ok": fn()}
    except RemoteError as exc:
        results[name] = {"remote_error": [exc.exc_type, exc.value, str(exc)]}
    except Exception as exc:
        results[name] = {"error": [type(exc).__name__, [str(a) for a in exc.args]]}


with ClusterRpcProxy(config, context_data={"language": "fr", "user_id": 7}, timeout=20) as rpc:
    svc = rpc[service]
    record("hello", lambda: svc.hello("nameko"))
    record("echo", lambda: svc.echo(1, "two", [3], k={"nested": [None, True, 1.5]}))
    record("async", lambda: [svc.hello.call_async(str(i)) for i in range(3)] and None)
    record(
        "async_results",
        lambda: [r.result() for r in [svc.hello.call_async(str(i)) for i in range(3)]],
    )
    record("boom", svc.boom)
    record("missing", lambda: svc.no_such_method())
    record("signature", lambda: svc.hello(1, 2, 3))
    record("context", svc.context)
    record("relay_hello", lambda: svc.relay_hello("via"))
    record("relay_context", svc.relay_context)
    record("relay_boom", svc.relay_boom)
    record("relay_missing", svc.relay_missing)
    record("relay_fanout", lambda: svc.relay_fanout(["a", "b", "c"]))
    record("unknown_service", lambda: rpc.no_such_service.method())

print(json.dumps(results))
