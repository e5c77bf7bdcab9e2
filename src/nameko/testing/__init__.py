"""Testing tools for nameko services: unit (`worker_factory`), integration
(`entrypoint_hook`, `entrypoint_waiter`, `replace_dependencies`...) and a
pytest plugin with container/runner factories and per-test RabbitMQ vhosts."""
