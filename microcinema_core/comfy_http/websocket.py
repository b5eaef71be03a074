"""``ProgressListener``: the JSON events ComfyUI's websocket sends one client id (standard library only).

A minimal RFC 6455 client: the handshake, unmasked server frames, fragmented messages, ping -> pong and close.
Binary frames (preview images) are skipped.
"""
from __future__ import annotations

import base64
import json
import os
import queue
import socket
import struct
import threading
import time
import urllib.parse
import uuid
from typing import Callable

from .errors import ComfyError

_TEXT, _BINARY, _CONTINUATION, _CLOSE, _PING = 0x1, 0x2, 0x0, 0x8, 0x9


class ProgressListener:
    """Collects the JSON websocket events of one ``client_id`` in a background thread.

    Use as a context manager (raises ``ComfyError`` when it cannot connect), or call ``connect()`` (returns
    False instead) and ``close()``. ``on_event(event)`` is called from the reader thread for every event.
    """

    def __init__(self, base_url: str, client_id: str | None = None, on_event: Callable[[dict], None] | None = None):
        parsed = urllib.parse.urlparse(base_url)
        if parsed.scheme != "http" or not parsed.hostname:
            raise ValueError(f"websocket for {base_url!r}: expected an http://HOST:PORT ComfyUI URL")
        self.host, self.port = parsed.hostname, parsed.port or 80
        self.client_id = client_id or uuid.uuid4().hex
        self.url = f"ws://{self.host}:{self.port}/ws?clientId={self.client_id}"
        self.on_event = on_event
        self.events: "queue.Queue[dict]" = queue.Queue()
        self.received: list[dict] = []
        self.error: BaseException | None = None
        self._sock: socket.socket | None = None
        self._buffer = b""
        self._send_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    # -- connection ------------------------------------------------------------------------------------------
    def connect(self, timeout: float = 15.0) -> bool:
        """Open the websocket and start reading; False (with ``error`` set) when the server does not upgrade."""
        try:
            sock = socket.create_connection((self.host, self.port), timeout=timeout)
            key = base64.b64encode(os.urandom(16)).decode()
            sock.sendall((f"GET /ws?clientId={self.client_id} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                          "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                          f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
            header = b""
            while b"\r\n\r\n" not in header:
                chunk = sock.recv(4096)
                if not chunk:
                    raise ConnectionError("the server closed the connection during the handshake")
                header += chunk
            status_line = header.split(b"\r\n", 1)[0]
            if b" 101 " not in status_line + b" ":
                raise ConnectionError(f"no websocket upgrade: {status_line.decode(errors='replace')}")
            self._buffer = header.split(b"\r\n\r\n", 1)[1]
            sock.settimeout(None)
        except OSError as err:
            self.error = err
            return False
        self._sock = sock
        self._thread = threading.Thread(target=self._read_events, daemon=True, name=f"ws {self.url}")
        self._thread.start()
        return True

    def close(self) -> None:
        """Send a close frame, shut the socket and stop the reader thread."""
        sock, self._sock = self._sock, None
        if sock is None:
            return
        try:
            self._send_frame(_CLOSE, b"", sock)
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> "ProgressListener":
        if not self.connect():
            raise ComfyError(f"websocket {self.url} did not connect: {self.error!r}")
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- frames ----------------------------------------------------------------------------------------------
    def _send_frame(self, opcode: int, payload: bytes, sock: socket.socket | None = None) -> None:
        """One masked client frame (payloads under 126 bytes: pong and close only)."""
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload[:125]))
        with self._send_lock:
            (sock or self._sock).sendall(bytes([0x80 | opcode, 0x80 | len(masked)]) + mask + masked)

    def _read(self, n: int) -> bytes:
        while len(self._buffer) < n:
            sock = self._sock
            chunk = sock.recv(65536) if sock is not None else b""
            if not chunk:
                raise EOFError
            self._buffer += chunk
        data, self._buffer = self._buffer[:n], self._buffer[n:]
        return data

    def _messages(self):
        """Yield ``(opcode, payload)`` of whole messages until the server closes."""
        message, message_op = b"", _TEXT
        while True:
            b0, b1 = self._read(2)
            length = b1 & 0x7F
            if length == 126:
                length = struct.unpack(">H", self._read(2))[0]
            elif length == 127:
                length = struct.unpack(">Q", self._read(8))[0]
            mask = self._read(4) if b1 & 0x80 else None
            payload = self._read(length)
            if mask:
                payload = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
            opcode = b0 & 0x0F
            if opcode == _PING:
                self._send_frame(0xA, payload)
                continue
            if opcode == _CLOSE:
                return
            if opcode == _CONTINUATION:
                message += payload
            elif opcode in (_TEXT, _BINARY):
                message, message_op = payload, opcode
            else:
                continue  # pong or reserved
            if b0 & 0x80:
                yield message_op, message

    def _read_events(self) -> None:
        try:
            for opcode, payload in self._messages():
                if opcode != _TEXT:
                    continue
                event = json.loads(payload)
                self.events.put(event)
                if self.on_event is not None:
                    self.on_event(event)
        except (OSError, EOFError, ValueError) as err:
            if self._sock is not None:
                self.error = err

    # -- events ----------------------------------------------------------------------------------------------
    def next_event(self, timeout: float = 60.0) -> dict:
        """The next event ``{"type": ..., "data": ...}``; raises ``ComfyError`` after ``timeout`` s."""
        try:
            event = self.events.get(timeout=timeout)
        except queue.Empty:
            raise ComfyError(f"no websocket event from {self.url} in {timeout} s (error: {self.error!r})") from None
        self.received.append(event)
        return event

    def until_done(self, prompt_id: str, timeout: float = 120.0) -> list[dict]:
        """Events up to the end of ``prompt_id`` (``executing`` with node None, or an error/interrupt)."""
        deadline = time.monotonic() + timeout
        events = []
        while True:
            event = self.next_event(max(0.1, deadline - time.monotonic()))
            data = event.get("data") or {}
            if data.get("prompt_id") not in (None, prompt_id):
                continue
            events.append(event)
            if event["type"] == "executing" and data.get("node") is None and "prompt_id" in data:
                return events
            if event["type"] in ("execution_error", "execution_interrupted"):
                return events
