"""A loopback TCP proxy in front of a node, to simulate an RPC outage in tests.

``stop()`` closes the listening socket and every open connection, so clients get
"connection refused" (and their kept-alive connections are dropped); ``start()`` listens again
on the same port. ``set_mode("http_503")`` answers every request with HTTP 503 itself and
``set_mode("hang")`` accepts connections and never answers (a timeout). Threads are daemons;
use it as a context manager or a fixture so it stops at the end of the test.
"""

from __future__ import annotations

import socket
import threading

from tests.support.anvil import free_loopback_port

MODES = ("forward", "http_503", "hang")
_ACCEPT_POLL_S = 0.05
_503 = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


class TcpProxy:
    def __init__(self, upstream_port: int, *, upstream_host: str = "127.0.0.1"):
        self.upstream = (upstream_host, upstream_port)
        self.port = free_loopback_port()
        self.mode = "forward"
        self.connections_accepted = 0
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._stopping = threading.Event()
        self._acceptor: threading.Thread | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._listener is not None

    def start(self) -> None:
        if self.running:
            return
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(_ACCEPT_POLL_S)
        self._stopping.clear()
        self._listener = listener
        self._acceptor = threading.Thread(
            target=self._accept_loop, args=(listener,), name=f"tcp-proxy-{self.port}", daemon=True
        )
        self._acceptor.start()

    def stop(self) -> None:
        """Refuse new connections and drop the open ones (idempotent)."""
        if self._listener is None:
            return
        self._stopping.set()
        if self._acceptor is not None:
            self._acceptor.join(timeout=2)
        self._listener.close()
        self._listener = None
        self._drop_connections()

    def set_mode(self, mode: str) -> None:
        """Change how new connections are served; open ones are dropped so it applies at
        once (a client reconnects on its next request)."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        self.mode = mode
        self._drop_connections()

    def _drop_connections(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            _close(sock)

    def _track(self, *socks: socket.socket) -> None:
        with self._lock:
            self._sockets.update(socks)

    def _accept_loop(self, listener: socket.socket) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            self.connections_accepted += 1
            self._track(client)
            if self.mode == "forward":
                self._forward(client)
            elif self.mode == "http_503":
                threading.Thread(target=self._answer_503, args=(client,), daemon=True).start()
            # "hang": keep the connection open and never read it

    def _forward(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.upstream, timeout=5)
        except OSError:
            _close(client)
            return
        upstream.settimeout(None)
        self._track(upstream)
        for src, dst in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:  # either side gone: end the pair (HTTP clients reconnect)
            _close(src)
            _close(dst)

    @staticmethod
    def _answer_503(client: socket.socket) -> None:
        """Read one request (headers and Content-Length body), answer 503, close."""
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                chunk = client.recv(65536)
                if not chunk:
                    return
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            while len(body) < length:
                chunk = client.recv(65536)
                if not chunk:
                    return
                body += chunk
            client.sendall(_503)
        except OSError:
            pass
        finally:
            _close(client)

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
