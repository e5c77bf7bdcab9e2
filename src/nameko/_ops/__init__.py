"""Operations (D26): health, readiness and Prometheus metrics of a
running process, served on ``OPS_ADDRESS``.

Modules, bottom up: `address` (``[host:]port``), `process` (RSS and threads
from /proc), `exposition` (the Prometheus text format 0.0.4), `metrics`
(the worker observer and the scrape), `health` (``/healthz`` and
``/readyz``), `server` (a small HTTP server on one thread), `feature` (what
``nameko run`` and `nameko.ops.serve_ops` start).
"""
