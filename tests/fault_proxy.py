"""An HTTP proxy on 127.0.0.1 between MoodleHook and the Moodle stand-in that spoils chosen requests.

Faults, for requests to the chosen ``functions`` (all when None):

* ``5xx``: 'the proxy' answers 502, 503 or 504; Moodle never sees the request.
* ``reset``: Moodle does the work, then the proxy resets the connection instead of answering.
* ``late``: Moodle does the work, the proxy holds the answer until the client gives up (its timeout).

``rate`` of the chosen requests meet a fault, drawn from ``random.Random(seed)``: the same requests
in the same order meet the same faults. ``outage_after = n`` makes every chosen request after the
n-th fail (a site going down); ``dribble = seconds`` sends every chosen answer a byte at a time,
padding first (in the headers or in the body), for ``dribble_bytes`` bytes before the real answer.
``exchanges`` records each chosen request (function, parameters without the token, fault).

The proxy cannot tell an answer the client received from one it passed on after the client gave up:
on a busy machine Moodle can be slower than a short client timeout without any fault. What reached
the client is counted on the client's side (:class:`HookLog`).
"""

from __future__ import annotations

import http.client
import json
import random
import select
import socket
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import pytest

KINDS = ("5xx", "reset", "late")
_HOLD_AT_MOST = 60.0  # a client without a timeout still gets its answer, late


@dataclass(frozen=True)
class Exchange:
    wsfunction: str
    params: tuple[tuple[str, str], ...]
    fault: str | None

    def param(self, name: str) -> str | None:
        return dict(self.params).get(name)


class FaultProxy:
    def __init__(self, upstream: str, *, rate: float = 0.0, kinds: tuple[str, ...] = KINDS,
                 functions: set[str] | None = None, seed: int = 0):
        self.upstream = urlsplit(upstream)
        self.rate, self.kinds, self.functions = rate, kinds, functions
        self.outage_after: int | None = None
        self.dribble: float | None = None
        self.dribble_in = "body"  # or "headers"
        self.dribble_bytes = 400
        self.exchanges: list[Exchange] = []
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.proxy = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def answered(self, wsfunction: str | None = None) -> list[Exchange]:
        """Chosen requests passed on unspoiled (of one function, or all)."""
        return [e for e in self.exchanges if e.fault is None and wsfunction in (None, e.wsfunction)]

    def faults(self) -> list[Exchange]:
        return [e for e in self.exchanges if e.fault is not None]

    def _fault_for(self, wsfunction: str, params: tuple[tuple[str, str], ...]) -> str | None | bool:
        """The fault for this request; False when it is not a chosen one."""
        if self.functions is not None and wsfunction not in self.functions:
            return False
        with self._lock:
            fault = None
            if self.outage_after is not None and len(self.exchanges) >= self.outage_after:
                fault = "5xx"
            elif self.dribble is not None:
                fault = "dribble"
            elif self.rate and self._rng.random() < self.rate:
                fault = self._rng.choice(self.kinds)
            self.exchanges.append(Exchange(wsfunction, params, fault))
            return fault


class HookLog:
    """Each request MoodleHook sends for the chosen ``functions``, and each answer that reaches it, in order.

    A read asked again after its answer reached the hook is one the product had and lost; a read asked
    again after a fault, or after a silence the hook gave up on, is asked again rightly.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch, functions: set[str]):
        from moodle_provider.exceptions import MoodleError
        from moodle_provider.hooks.moodle import MoodleHook

        self.events: list[tuple[str, tuple[str, str]]] = []
        self._lock = threading.Lock()
        post = MoodleHook._post

        def logged(hook, wsfunction, params):
            if wsfunction not in functions:
                return post(hook, wsfunction, params)
            key = (wsfunction, json.dumps(params, sort_keys=True))
            self._add("asked", key)
            try:
                answer = post(hook, wsfunction, params)
            except MoodleError as error:
                if not error.transient:  # Moodle's refusal is an answer too
                    self._add("answered", key)
                raise
            self._add("answered", key)
            return answer

        monkeypatch.setattr(MoodleHook, "_post", logged)

    def _add(self, event: str, key: tuple[str, str]) -> None:
        with self._lock:
            self.events.append((event, key))

    def answered(self) -> Counter:
        return Counter(key for event, key in self.events if event == "answered")

    def asked_again(self) -> list[tuple[str, str]]:
        """Requests sent for a read whose answer the hook already had."""
        had, again = set(), []
        for event, key in self.events:
            if event == "answered":
                had.add(key)
            elif key in had:
                again.append(key)
        return again

    def clear(self) -> None:
        with self._lock:
            self.events.clear()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 - quiet
        pass

    def do_POST(self):
        proxy: FaultProxy = self.server.proxy
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        form = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        wsfunction = dict(form).get("wsfunction", "")
        params = tuple((k, v) for k, v in form if k not in ("wstoken", "wsfunction", "moodlewsrestformat"))
        fault = proxy._fault_for(wsfunction, params)
        if fault == "5xx":
            status = random.Random(len(proxy.exchanges)).choice((502, 503, 504))
            self._send(status, {"Content-Type": "text/html"}, f"<h1>{status} from the proxy</h1>".encode())
            return
        status, headers, payload = self._forward(body)
        if fault == "reset":
            self._reset()
        elif fault == "late":
            if not self._wait_for_client_to_leave():
                self._send(status, headers, payload)
        elif fault == "dribble":
            self._dribble(status, headers, payload, proxy)
        else:
            self._send(status, headers, payload)

    def _forward(self, body: bytes) -> tuple[int, dict[str, str], bytes]:
        upstream = self.server.proxy.upstream
        connection = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=60)
        try:
            connection.request("POST", self.path, body, {"Content-Type": self.headers.get("Content-Type", "")})
            response = connection.getresponse()
            payload = response.read()
            return response.status, {"Content-Type": response.getheader("Content-Type", "")}, payload
        finally:
            connection.close()

    def _send(self, status: int, headers: dict[str, str], payload: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _reset(self) -> None:
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    def _wait_for_client_to_leave(self) -> bool:
        """Hold the answer until the client hangs up; True if it did."""
        deadline = time.monotonic() + _HOLD_AT_MOST
        while time.monotonic() < deadline:
            readable, _, _ = select.select([self.connection], [], [], 0.05)
            if readable:
                try:
                    gone = self.connection.recv(1, socket.MSG_PEEK) == b""
                except OSError:
                    gone = True
                if gone:
                    self.close_connection = True
                    return True
        return False

    def _dribble(self, status: int, headers: dict[str, str], payload: bytes, proxy: FaultProxy) -> None:
        """A byte every ``proxy.dribble`` seconds: the pad (spaces before the JSON, or a header), then the rest."""
        pad = proxy.dribble_bytes
        if proxy.dribble_in == "body":
            head = (f"HTTP/1.1 {status} OK\r\nContent-Type: {headers['Content-Type']}\r\n"
                    f"Content-Length: {pad + len(payload)}\r\n\r\n").encode()
            slow, rest = b" " * pad, payload
        else:
            head = f"HTTP/1.1 {status} OK\r\nX-Pad: ".encode()
            slow = b"." * pad
            rest = (f"\r\nContent-Type: {headers['Content-Type']}\r\nContent-Length: {len(payload)}\r\n\r\n"
                    .encode() + payload)
        self.close_connection = True
        try:
            self.connection.sendall(head)
            for byte in slow:
                self.connection.sendall(bytes([byte]))
                time.sleep(proxy.dribble)  # the pace of a stuck site, not a wait for a result
            self.connection.sendall(rest)
        except OSError:
            pass  # the client cut the answer
