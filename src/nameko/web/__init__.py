"""HTTP and WebSocket entrypoints (public nameko 2.x path); see `nameko._web`."""
