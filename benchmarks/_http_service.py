"""The HTTP echo service hosted by ``nameko run`` for ``bench_http.py``.

The same module runs under shimeji and under nameko 2.14.1: one GET route
that answers with the path segment it was given, as text.
"""

from nameko.web.handlers import http


class HttpEchoService:
    name = "http_echo"

    @http("GET", "/echo/<value>")
    def echo(self, request, value):
        return value
