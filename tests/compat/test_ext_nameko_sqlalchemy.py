"""nameko-sqlalchemy 1.5.0, unchanged, on shimeji (pip install --no-deps).

`DatabaseSession(Base)` and `Database(Base)` read
``container.config['DB_URIS']['<service name>:<Base.__name__>']`` (and
``.format()`` it with a dict of both names) and ``container.service_name`` in
``setup()``; they keep each worker's session in a `WeakKeyDictionary` keyed by
the *worker context* (so `WorkerContext` must be hashable and weak-referable,
SPEC 2.5), and ``worker_teardown`` pops and closes it; ``stop()`` disposes of
the engine and deletes the attribute. Tested on SQLite and on the local
PostgreSQL (a database of the test's own).
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import nameko_sqlalchemy
import pytest
import sqlalchemy
from nameko_sqlalchemy import Database, DatabaseSession
from sqlalchemy import Column, Integer, String, create_engine, event, text
from sqlalchemy.orm import declarative_base

from nameko.exceptions import RemoteError
from nameko.rpc import rpc
from nameko.standalone.rpc import ClusterRpcProxy
from tests.compat.ext_support import TIMEOUT, assert_installed_on_shimeji
from tests.waiting import wait_until

PG_SERVER = "postgresql://postgres@127.0.0.1:5432"  # trust auth (machine notes)

Base = declarative_base(name="NotesBase")


class Note(Base):
    __tablename__ = "notes"
    id = Column(Integer, primary_key=True)
    text = Column(String(100), nullable=False, unique=True)


class Notes:
    name = "notes"

    session = DatabaseSession(Base)
    db = Database(Base)

    @rpc
    def add(self, text):
        """DatabaseSession: the worker's own session."""
        note = Note(text=text)
        self.session.add(note)
        self.session.commit()
        return note.id

    @rpc
    def add_all(self, texts):
        """Database.get_session() as a context manager: commit, or roll back."""
        with self.db.get_session() as session:
            session.add_all(Note(text=t) for t in texts)
            if "bad" in texts:
                raise ValueError("bad note")
        return len(texts)

    @rpc
    def texts(self):
        """Database.session: lazily opened, closed after the worker."""
        return sorted(n.text for n in self.db.session.query(Note))

    @rpc
    def backend(self):
        return self.session.bind.dialect.name


@pytest.fixture
def sqlite_uri(tmp_path):
    # a file: each worker thread must see the same database
    return f"sqlite:///{tmp_path}/{{0[service_name]}}-{{0[declarative_base_name]}}.db"


@pytest.fixture
def postgres_uri():
    """A fresh PostgreSQL database, dropped afterwards."""
    name = f"shimeji_ext_{uuid.uuid4().hex[:12]}"
    admin = create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except sqlalchemy.exc.OperationalError as exc:
        pytest.fail(f"nameko-sqlalchemy test needs PostgreSQL on 127.0.0.1:5432: {exc}")
    yield f"{PG_SERVER}/{name}"
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def db_uri(request):
    return request.param, request.getfixturevalue(f"{request.param}_uri")


def test_installed_unchanged_on_shimeji():
    assert_installed_on_shimeji("nameko-sqlalchemy", "1.5.0")
    assert nameko_sqlalchemy.DB_URIS_KEY == "DB_URIS"


@pytest.mark.rabbit
def test_sessions_per_worker_on_a_real_database(container_factory, rabbit_config, db_uri):
    backend, uri = db_uri
    config = {**rabbit_config, "DB_URIS": {"notes:NotesBase": uri}, "max_workers": 4}
    container = container_factory(Notes, config)
    container.start()
    providers = {d.attr_name: d for d in container.dependencies}
    session_provider, db_provider = providers["session"], providers["db"]
    assert session_provider.db_uri == uri.format(
        {"service_name": "notes", "declarative_base_name": "NotesBase"}
    )
    Base.metadata.create_all(session_provider.engine)
    pool_events: list[str] = []  # list.append: safe from the worker threads
    for provider in (session_provider, db_provider):
        for name in ("checkout", "checkin"):
            event.listen(provider.engine, name, lambda *_, name=name: pool_events.append(name))

    def settled() -> bool:  # every worker torn down: sessions popped, connections back
        return (
            len(session_provider.sessions) == 0
            and len(db_provider.dbs) == 0
            and pool_events.count("checkout") == pool_events.count("checkin")
        )

    with ClusterRpcProxy(config, timeout=TIMEOUT) as proxy:
        assert proxy.notes.backend() == {"sqlite": "sqlite", "postgres": "postgresql"}[backend]
        assert proxy.notes.add("first") == 1
        assert proxy.notes.add_all(["a", "b"]) == 2
        with pytest.raises(RemoteError) as error:
            proxy.notes.add_all(["c", "bad"])  # rolled back: no "c"
        assert error.value.exc_type == "ValueError"
        with pytest.raises(RemoteError) as error:
            proxy.notes.add("first")  # unique: the worker's session fails
        assert error.value.exc_type == "IntegrityError"
        assert proxy.notes.texts() == ["a", "b", "first"]

        with ThreadPoolExecutor(8) as executor:  # concurrent workers, one session each
            ids = list(executor.map(proxy.notes.add, [f"n{i}" for i in range(20)]))
        assert len(set(ids)) == 20
        assert len(proxy.notes.texts()) == 23
        wait_until(settled, TIMEOUT, what="worker sessions closed")
        assert pool_events.count("checkout") >= 20

    container.stop()
    assert not hasattr(session_provider, "engine")  # disposed and deleted
    assert not hasattr(db_provider, "engine")
    check = create_engine(
        uri.format({"service_name": "notes", "declarative_base_name": "NotesBase"})
    )
    with check.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM notes")).scalar() == 23
    check.dispose()
