import time

from nameko.rpc import rpc
from nameko.web.handlers import http


class WebService:
    name = "web_service"

    @rpc
    def ping(self):
        return "pong"

    @http("GET", "/hello/<name>")
    def hello(self, request, name):
        return f"hello {name}"

    @http("GET", "/slow/<int:seconds>")
    def slow(self, request, seconds):
        print("slow request started", flush=True)
        time.sleep(seconds)  # the work in flight when SIGTERM comes
        return "finished"
