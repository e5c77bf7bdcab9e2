# The seed's two ClusterRpcProxy snippets, one after the other. `AMQP_URI` is
# the reader's to supply, as in the seed: run this file with it defined, e.g.
# runpy.run_path("rpc_client.py", {"AMQP_URI": "pyamqp://guest:guest@localhost"})
# while `nameko run rpc` serves service_x and service_y.

from nameko.standalone.rpc import ClusterRpcProxy

config = {
    'AMQP_URI': AMQP_URI  # e.g. "pyamqp://guest:guest@localhost"
}

with ClusterRpcProxy(config) as cluster_rpc:
    cluster_rpc.service_x.remote_method("hellø")  # "hellø-x-y"


with ClusterRpcProxy(config) as cluster_rpc:
    hello_res = cluster_rpc.service_x.remote_method.call_async("hello")
    world_res = cluster_rpc.service_x.remote_method.call_async("world")
    # do work while waiting
    hello_res.result()  # "hello-x-y"
    world_res.result()  # "world-x-y"
