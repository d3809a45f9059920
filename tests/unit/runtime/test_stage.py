"""A stop that lands inside SQLAlchemy's connection pool is not logged with its traceback
(`install_stop_handlers`); any other error the pool meets still is."""

from __future__ import annotations

import logging
import signal

import pytest
import sqlalchemy
from sqlalchemy import event

from pml_ops.runtime import stage
from pml_ops.runtime.stage import Stopped, install_stop_handlers

RESET_MESSAGE = "Exception during reset or similar"


@pytest.fixture
def stop_handlers():
    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    install_stop_handlers()
    yield
    for signum, handler in previous.items():
        signal.signal(signum, handler)


def _close_with_reset_raising(error: BaseException, caplog: pytest.LogCaptureFixture) -> list[str]:
    """Close a pooled SQLite connection whose reset raises `error` (where a Ctrl-C lands when
    MLflow returns a connection to the pool); return what the pool logged at ERROR."""
    engine = sqlalchemy.create_engine("sqlite://", poolclass=sqlalchemy.pool.QueuePool)

    def reset(dbapi_connection, record, state):
        raise error

    event.listen(engine, "reset", reset)
    connection = engine.connect()
    connection.exec_driver_sql("select 1")
    with caplog.at_level(logging.ERROR, logger="sqlalchemy"):
        if isinstance(error, Exception):  # the pool logs an error and discards the connection
            connection.close()
        else:  # a stop propagates
            with pytest.raises(type(error)):
                connection.close()
    engine.dispose()
    return [record.getMessage() for record in caplog.records if record.name.startswith("sqlalchemy.pool")]


@pytest.mark.parametrize("stop", [KeyboardInterrupt(), Stopped(signal.SIGTERM)], ids=["SIGINT", "SIGTERM"])
def test_a_stop_in_a_pool_reset_propagates_without_the_pools_traceback(stop_handlers, stop, caplog):
    assert _close_with_reset_raising(stop, caplog) == []


def test_other_errors_in_a_pool_reset_are_still_logged(stop_handlers, caplog):
    assert _close_with_reset_raising(RuntimeError("disk gone"), caplog) == [RESET_MESSAGE]


def test_without_the_filter_the_pool_logs_a_stop_with_its_traceback(caplog):
    """The reference: SQLAlchemy does log it, so the test above pins down the filter."""
    loggers = [logging.getLogger(name) for name in list(logging.root.manager.loggerDict)]
    filtered = [logger for logger in loggers if stage._DROP_STOP_TRACEBACKS in logger.filters]
    for logger in filtered:
        logger.removeFilter(stage._DROP_STOP_TRACEBACKS)
    try:
        assert _close_with_reset_raising(KeyboardInterrupt(), caplog) == [RESET_MESSAGE]
    finally:
        for logger in filtered:
            logger.addFilter(stage._DROP_STOP_TRACEBACKS)
