"""One HTTP/2 stream's download beside a stalled sibling, and without it.

On a connection opened with prior knowledge (h2c), stream B downloads
``GET /download`` (10 MiB by default), acknowledging what it reads. In the
"stalled" setup, stream A on the same connection first asks for a download
far larger than anything read here and is never acknowledged: once the
server has filled A's small initial window, A waits for a WINDOW_UPDATE that
never comes. A server that serves its streams independently keeps B at the
speed it has alone.

Both setups use the same connection settings (a 16 KiB initial stream
window, B's own window opened to 1 MiB as it starts, a 16 MiB connection
window), each on a fresh connection, in alternating slices (alone, stalled,
stalled, alone...) so that drift affects both alike. The figure of a setup
is the bytes B received over the time B's downloads took, request sent to
last byte.

``--stalled N`` opens N such streams before B instead of one.

Prints one JSON line: ``alone_mib_s``, ``stalled_mib_s``, their ``ratio``,
the ``downloads`` of B in each setup, the most bytes a stalled stream
received (``stalled_bytes``) and how many the server reset
(``stalled_resets``).

Run: ``python bench/h2_stall_client.py --port 8000 --seconds 3``.
"""

from __future__ import annotations

import argparse
import json
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events
import h2.settings

MIB = 2**20
INITIAL_WINDOW = 16 * 1024
B_WINDOW = MIB
CONNECTION_WINDOW = 16 * MIB
DEFAULT_WINDOW = 65_535
STALLED_BYTES = 2**30
RECEIVE_BYTES = 256 * 1024
SLICES = 4


class StallError(RuntimeError):
    """The server did not behave as the measurement needs."""


@dataclass
class StreamState:
    status: int = 0
    received: int = 0
    ended: bool = False
    reset: int | None = None


@dataclass
class Client:
    """One HTTP/2 client connection over a blocking socket."""

    host: str
    port: int
    timeout: float
    sock: socket.socket = field(init=False)
    conn: h2.connection.H2Connection = field(init=False)
    streams: dict[int, StreamState] = field(init=False, default_factory=dict)
    #: Streams whose data is never acknowledged.
    stalled: set[int] = field(init=False, default_factory=set)
    settings_acked: bool = field(init=False, default=False)
    remote_settings: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        self.sock = socket.create_connection((self.host, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        config = h2.config.H2Configuration(client_side=True, header_encoding=None)
        self.conn = h2.connection.H2Connection(config)
        self.conn.initiate_connection()
        self.conn.update_settings(
            {h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: INITIAL_WINDOW}
        )
        self.conn.increment_flow_control_window(CONNECTION_WINDOW - DEFAULT_WINDOW)
        self.flush()
        # Open no stream before the server has taken the small window.
        self.pump(lambda: self.settings_acked and self.remote_settings)

    def close(self) -> None:
        try:
            self.conn.close_connection()
            self.flush()
        except OSError:
            pass
        finally:
            self.sock.close()

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def get(self, path: str) -> int:
        """Send ``GET path`` on a new stream and return its identifier."""
        stream_id = self.conn.get_next_available_stream_id()
        headers = [
            (b":method", b"GET"),
            (b":scheme", b"http"),
            (b":authority", f"{self.host}:{self.port}".encode()),
            (b":path", path.encode()),
        ]
        self.conn.send_headers(stream_id, headers, end_stream=True)
        self.streams[stream_id] = StreamState()
        self.flush()
        return stream_id

    def pump(self, done: Callable[[], bool]) -> None:
        """Read and handle frames until ``done()``; fail if the server leaves."""
        while not done():
            data = self.sock.recv(RECEIVE_BYTES)
            if not data:
                raise StallError("the server closed the connection")
            for event in self.conn.receive_data(data):
                self._on_event(event)
            self.flush()

    def _on_event(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.ResponseReceived):
            for name, value in event.headers or ():
                if name == b":status":
                    self._stream(event.stream_id).status = int(value)
        elif isinstance(event, h2.events.DataReceived):
            stream_id = event.stream_id or 0
            self._stream(stream_id).received += len(event.data or b"")
            if stream_id not in self.stalled:
                length = event.flow_controlled_length or 0
                self.conn.acknowledge_received_data(length, stream_id)
        elif isinstance(event, h2.events.StreamEnded):
            self._stream(event.stream_id).ended = True
        elif isinstance(event, h2.events.StreamReset):
            self._stream(event.stream_id).reset = int(event.error_code or 0)
        elif isinstance(event, h2.events.SettingsAcknowledged):
            self.settings_acked = True
        elif isinstance(event, h2.events.RemoteSettingsChanged):
            self.remote_settings = True
        elif isinstance(event, h2.events.ConnectionTerminated):
            raise StallError(f"the server sent GOAWAY ({event.error_code!r})")

    def _stream(self, stream_id: int | None) -> StreamState:
        return self.streams.setdefault(stream_id or 0, StreamState())

    def stall(self, size: int) -> int:
        """Open stream A and wait until its initial window is spent."""
        stream_id = self.get(f"/download?bytes={size}")
        self.stalled.add(stream_id)
        state = self.streams[stream_id]
        self.pump(lambda: state.received >= INITIAL_WINDOW or _over(state))
        if _over(state):
            raise StallError(f"stream A ended early: {state}")
        return stream_id

    def download(self, size: int) -> float:
        """Download ``size`` bytes on a new stream; the seconds it took."""
        started = time.perf_counter()
        stream_id = self.get(f"/download?bytes={size}")
        # Stream B's own window: as large as a browser's, from the start.
        self.conn.increment_flow_control_window(
            B_WINDOW - INITIAL_WINDOW, stream_id=stream_id
        )
        self.flush()
        state = self.streams[stream_id]
        self.pump(lambda: _over(state))
        took = time.perf_counter() - started
        if state.reset is not None or state.status != 200 or state.received != size:
            raise StallError(f"stream B failed: {state}")
        del self.streams[stream_id]
        return took


def _over(state: StreamState) -> bool:
    return state.ended or state.reset is not None


@dataclass
class Tally:
    """What B downloaded in one setup, over all its slices."""

    bytes: int = 0
    seconds: float = 0.0
    downloads: int = 0

    def mib_s(self) -> float:
        return self.bytes / self.seconds / MIB if self.seconds else 0.0


def run_slice(
    args: argparse.Namespace, seconds: float, *, stalled: bool, tally: Tally
) -> tuple[int, int]:
    """One connection: B downloads until ``seconds`` pass (at least once).

    Returns the most bytes a stalled stream received and how many of them
    the server reset.
    """
    client = Client(args.host, args.port, args.timeout)
    try:
        count = args.stalled if stalled else 0
        stalled_ids = [client.stall(STALLED_BYTES) for _ in range(count)]
        deadline = time.perf_counter() + seconds
        while True:
            tally.seconds += client.download(args.size)
            tally.bytes += args.size
            tally.downloads += 1
            if time.perf_counter() >= deadline:
                break
        # Whatever arrived for them during the downloads is counted too.
        states = [client.streams[stream_id] for stream_id in stalled_ids]
        received = max((state.received for state in states), default=0)
        return received, sum(state.reset is not None for state in states)
    finally:
        client.close()


def measure(args: argparse.Namespace) -> dict[str, float]:
    warm = Tally()
    run_slice(args, args.warmup, stalled=False, tally=warm)
    alone, stalled = Tally(), Tally()
    stalled_bytes, resets = 0, 0
    per_slice = args.seconds / (2 * SLICES)
    for index in range(2 * SLICES):
        # alone, stalled, stalled, alone, alone, stalled, ...
        is_stalled = (index % 4) in (1, 2)
        tally = stalled if is_stalled else alone
        received, reset = run_slice(args, per_slice, stalled=is_stalled, tally=tally)
        stalled_bytes = max(stalled_bytes, received)
        resets += reset
    return {
        "alone_mib_s": alone.mib_s(),
        "stalled_mib_s": stalled.mib_s(),
        "ratio": stalled.mib_s() / alone.mib_s() if alone.mib_s() else 0.0,
        "alone_downloads": alone.downloads,
        "stalled_downloads": stalled.downloads,
        "stalled_bytes": stalled_bytes,
        "stalled_resets": resets,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--size", type=int, default=10 * MIB, help="B's download")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--stalled", type=int, default=1, help="stalled streams")
    args = parser.parse_args()
    try:
        print(json.dumps(measure(args)), flush=True)
    except (StallError, OSError) as exc:
        print(json.dumps({"error": str(exc) or type(exc).__name__}), flush=True)


if __name__ == "__main__":
    main()
