"""Operations endpoint: ``/healthz``, ``/readyz`` and Prometheus ``/metrics``
(shimeji; not in nameko). ``nameko run`` serves it when ``OPS_ADDRESS`` (or
``--ops-address``) is set; a runner of your own can call `serve_ops`::

    runner = ServiceRunner(config)
    runner.add_service(Service)
    endpoint = serve_ops(runner, "0.0.0.0:9100")
    runner.start()
    ...
    endpoint.close()

See docs/operations.md.
"""

from nameko._ops.feature import OPS_ADDRESS_CONFIG_KEY, OpsEndpoint, serve_ops

__all__ = ["OPS_ADDRESS_CONFIG_KEY", "OpsEndpoint", "serve_ops"]
