"""What RabbitMQ itself says about queues and connections (via rabbitmqctl)."""

from __future__ import annotations

from nameko.testing._vhosts import rabbitmqctl


def queue_counts(vhost: str, name: str) -> tuple[int, int]:
    """(ready, unacked) messages of queue ``name``, as the broker counts them."""
    out = rabbitmqctl(
        "list_queues", "-p", vhost, "--no-table-headers",
        "name", "messages_ready", "messages_unacknowledged",
    )  # fmt: skip
    for line in out.splitlines():
        fields = line.split()
        if fields and fields[0] == name:
            return int(fields[1]), int(fields[2])
    raise AssertionError(f"no queue {name!r} in {out!r}")


def connection_pids(connection_name: str, vhost: str | None = None) -> list[str]:
    """Pids of the connections whose client properties carry ``connection_name``
    (``close_connection`` wants a pid on RabbitMQ 3.10)."""
    out = rabbitmqctl("list_connections", "--no-table-headers", "pid", "vhost", "client_properties")
    marker = f'{{"connection_name","{connection_name}"}}'
    pids = []
    for line in out.splitlines():
        pid, _, rest = line.partition("\t")
        line_vhost, _, props = rest.partition("\t")
        if marker in props and vhost in (None, line_vhost):
            pids.append(pid)
    return pids


def close_connection(connection_name: str, vhost: str | None = None) -> None:
    (pid,) = connection_pids(connection_name, vhost)
    rabbitmqctl("close_connection", pid, "closed by test")
