"""HTTP and WebSocket entrypoints and the web server behind them (SPEC 1.10, 6, 8).

Layers inside the package, bottom up: `http11` (sans-IO parsing and rendering),
`site` (the I/O thread that owns one listening address), `wsgi` (environ and
response glue), `routes` (one merged route table per address), then
`server`, `handlers` and `websocket`, the nameko-facing extensions.
"""
