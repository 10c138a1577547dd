"""A total deadline for one HTTP exchange: connect, request and the whole answer.

``requests``' timeout bounds each socket operation only, so an answer that trickles in a byte at
a time is never cut. Here a timer shuts the sockets of the exchange down when its deadline
passes: the blocked read returns at once and the call fails, whatever phase it was in (TLS
handshake, headers or body).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from types import TracebackType

from requests_toolbelt.adapters.socket_options import TCPKeepAliveAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

_current = threading.local()  # the deadline of the exchange this thread is making, if any


class CallDeadline:
    """Cuts the sockets an exchange opens or reuses once ``seconds`` have passed since it began."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.expired = False
        self.due = 0.0
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def __enter__(self) -> CallDeadline:
        _current.deadline = self
        self.due = time.monotonic() + self.seconds
        _watchdog.watch(self)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        _watchdog.forget(self)
        _current.deadline = None
        with self._lock:
            for duplicate in self._sockets:
                duplicate.close()
            self._sockets.clear()

    def watch(self, sock: socket.socket) -> None:
        # A duplicate descriptor: shutting it down cuts the connection even after TLS has taken
        # the original socket object over (wrapping detaches it).
        try:
            duplicate = sock.dup()
        except OSError:
            return
        with self._lock:
            self._sockets.append(duplicate)
            if self.expired:
                _shut(duplicate)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for duplicate in self._sockets:
                _shut(duplicate)


class _Watchdog:
    """One thread expires the deadlines of every exchange of the process: a timer thread started
    for each call cost more than a small call itself. It sleeps until the earliest deadline."""

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)  # a forked process starts with no thread

    def _reset(self) -> None:
        self._active: set[CallDeadline] = set()
        self._changed = threading.Condition()
        self._wakes_at = float("inf")
        self._thread: threading.Thread | None = None

    def watch(self, deadline: CallDeadline) -> None:
        with self._changed:
            self._active.add(deadline)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="moodle-call-deadlines", daemon=True)
                self._thread.start()
            if deadline.due < self._wakes_at:
                self._changed.notify()

    def forget(self, deadline: CallDeadline) -> None:
        with self._changed:
            self._active.discard(deadline)  # the thread finds nothing due when it wakes, and sleeps on

    def _run(self) -> None:
        with self._changed:
            while True:
                now = time.monotonic()
                for deadline in [d for d in self._active if d.due <= now]:
                    self._active.discard(deadline)
                    deadline._expire()
                self._wakes_at = min((d.due for d in self._active), default=float("inf"))
                self._changed.wait(self._wakes_at - now if self._active else None)


_watchdog = _Watchdog()


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed by the other side


def _watch(sock: socket.socket | None) -> None:
    deadline = getattr(_current, "deadline", None)
    if deadline is not None and sock is not None:
        deadline.watch(sock)


class _Watched:
    """Registers the connection's socket with the running exchange's deadline."""

    sock: socket.socket | None

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()  # type: ignore[misc]
        _watch(sock)
        return sock

    def request(self, *args, **kwargs):
        _watch(self.sock)  # a kept-alive connection made during an earlier exchange
        return super().request(*args, **kwargs)  # type: ignore[misc]


class _HTTPConnection(_Watched, HTTPConnection):
    pass


class _HTTPSConnection(_Watched, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


_POOLS = {"http": _HTTPPool, "https": _HTTPSPool}


class DeadlineAdapter(TCPKeepAliveAdapter):
    """The HTTP provider's default adapter (TCP keep-alive), with connections a deadline can cut."""

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs):
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):  # SOCKS pools have connection classes of their own
            manager.pool_classes_by_scheme = _POOLS
        return manager
