"""Prometheus metrics, scraped over loopback from a real server."""

from __future__ import annotations

import functools
import logging
import re
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import prometheus_client
import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

import trasgi
from trasgi import Config
from trasgi._server.metrics import MetricsListenError

from ..helpers import Receive, Send
from ..ops.test_cli import assert_one_line_error, read_until, run_cli

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "trasgi"]


class App:
    """200 on /, 404 elsewhere; /slow waits until released."""

    def __init__(self) -> None:
        self.arrived = trio.Event()
        self.release = trio.Event()

    async def __call__(self, scope: Any, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == "/slow":
            self.arrived.set()
            await self.release.wait()
        status = 200 if scope["path"] in ("/", "/slow") else 404
        body = b"hello" if status == 200 else b"no"
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


class Server:
    def __init__(self, port: int, metrics_url: str) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.metrics_url = metrics_url

    async def scrape(self) -> dict[str, float]:
        """Scrape once; return every sample as 'name{labels}' -> value."""
        async with httpx.AsyncClient() as client:
            response = await client.get(self.metrics_url)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain; version=")
        samples = {}
        for family in text_string_to_metric_families(response.text):
            for sample in family.samples:
                labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                samples[f"{sample.name}{{{labels}}}"] = sample.value
        return samples

    async def wait_for(self, name: str, value: float) -> dict[str, float]:
        """Scrape until a gauge reads ``value`` (connections close asynchronously)."""
        for _ in range(1000):
            samples = await self.scrape()
            if samples[name] == value:
                return samples
            await trio.sleep(0.01)
        raise AssertionError(f"{name} is {samples[name]}, not {value}")


def metrics_url(caplog: pytest.LogCaptureFixture) -> str:
    for record in caplog.records:
        found = re.match(r"serving metrics on (\S+)", record.getMessage())
        if found:
            return found[1]
    raise AssertionError("no 'serving metrics on' line")


@asynccontextmanager
async def running(
    app: Any, caplog: pytest.LogCaptureFixture, **options: Any
) -> AsyncIterator[Server]:
    caplog.set_level(logging.INFO, logger="trasgi")
    config = Config(metrics_port=0, lifespan="off", **options)
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(trasgi.serve_tcp, app, 0, host="127.0.0.1", config=config)
        )
        port = listeners[0].socket.getsockname()[1]
        yield Server(port, metrics_url(caplog))
        nursery.cancel_scope.cancel()


def requests_total(samples: dict[str, float]) -> dict[str, float]:
    return {
        key: value
        for key, value in samples.items()
        if key.startswith("trasgi_requests_total{")
    }


async def test_counts_by_status_and_method_with_latency_and_gauges(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = App()
    async with running(app, caplog) as server:
        assert server.metrics_url.endswith("/metrics")
        async with httpx.AsyncClient(base_url=server.url) as client:
            for _ in range(3):
                assert (await client.get("/")).status_code == 200
            assert (await client.get("/nope")).status_code == 404
            assert (await client.post("/", content=b"x")).status_code == 200
            assert (await client.request("PURGE", "/gone")).status_code == 404
        samples = await server.wait_for("trasgi_connections_open{}", 0)
        assert requests_total(samples) == {
            "trasgi_requests_total{method=GET,status=200}": 3,
            "trasgi_requests_total{method=GET,status=404}": 1,
            "trasgi_requests_total{method=POST,status=200}": 1,
            # A method outside the standard set cannot add label values.
            "trasgi_requests_total{method=other,status=404}": 1,
        }
        assert samples["trasgi_request_duration_seconds_count{}"] == 6
        assert 0 < samples["trasgi_request_duration_seconds_sum{}"] < 10
        assert samples["trasgi_request_duration_seconds_bucket{le=+Inf}"] == 6
        assert samples["trasgi_requests_in_flight{}"] == 0

        # One request held in the application, one idle connection.
        async with httpx.AsyncClient() as slow, trio.open_nursery() as nursery:
            nursery.start_soon(slow.get, server.url + "/slow")
            await app.arrived.wait()
            with socket.create_connection(("127.0.0.1", server.port)):
                samples = await server.wait_for("trasgi_connections_open{}", 2)
                assert samples["trasgi_requests_in_flight{}"] == 1
            app.release.set()
        samples = await server.wait_for("trasgi_connections_open{}", 0)
        assert samples["trasgi_requests_in_flight{}"] == 0
        assert samples["trasgi_requests_total{method=GET,status=200}"] == 4


async def test_scrapes_are_neither_counted_nor_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with running(App(), caplog) as server:
        for _ in range(3):
            samples = await server.scrape()
        assert requests_total(samples) == {}
        assert samples["trasgi_request_duration_seconds_count{}"] == 0
    assert [r for r in caplog.records if r.name == "trasgi.access"] == []


async def test_other_paths_and_methods_on_the_metrics_port(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with running(App(), caplog) as server, httpx.AsyncClient() as client:
        other = await client.get(server.metrics_url.replace("/metrics", "/"))
        assert other.status_code == 404
        assert "/metrics" in other.text
        post = await client.post(server.metrics_url)
        assert post.status_code == 405
        assert post.headers["allow"] == "GET, HEAD"
        head = await client.head(server.metrics_url)
        assert head.status_code == 200
        assert head.content == b""


async def test_the_default_registry_is_exposed_too(
    caplog: pytest.LogCaptureFixture,
) -> None:
    counter = prometheus_client.Counter("shop_orders", "Orders placed.")
    try:
        counter.inc(7)
        async with running(App(), caplog) as server:
            samples = await server.scrape()
        assert samples["shop_orders_total{}"] == 7
    finally:
        prometheus_client.REGISTRY.unregister(counter)


async def test_two_servers_in_one_process_count_separately(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with running(App(), caplog) as first:
        async with httpx.AsyncClient() as client:
            await client.get(first.url + "/")
        caplog.clear()
        async with running(App(), caplog) as second:
            assert second.metrics_url != first.metrics_url
            assert requests_total(await second.scrape()) == {}
        assert requests_total(await first.scrape()) == {
            "trasgi_requests_total{method=GET,status=200}": 1
        }


async def test_the_metrics_port_closes_with_the_server(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with running(App(), caplog) as server:
        await server.scrape()
    with pytest.raises(httpx.ConnectError):
        await server.scrape()


async def test_a_taken_metrics_port_is_an_oserror_naming_it() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        config = Config(metrics_port=port, lifespan="off")
        with pytest.raises(MetricsListenError) as caught:
            await trasgi.serve_tcp(App(), 0, host="127.0.0.1", config=config)
    assert caught.value.where == f"127.0.0.1:{port}"


# -- the command line ------------------------------------------------------------


@pytest.mark.process
async def test_the_command_line_serves_metrics() -> None:
    process = await trio.lowlevel.open_process(
        [*CLI, "examples.hello:app", "--port", "0", "--metrics-port", "0"],
        cwd=ROOT,
        stderr=subprocess.PIPE,
    )
    seen = bytearray()
    try:
        metrics = await read_until(process, rb"serving metrics on (\S+)", seen)
        found = await read_until(process, rb"listening on (http://\S+)", seen)
        # A scraper that keeps its connection open does not hold up the stop.
        async with httpx.AsyncClient() as client:
            assert (await client.get(found[1].decode() + "/")).status_code == 200
            text = (await client.get(metrics[1].decode())).text
            process.send_signal(signal.SIGTERM)
            await read_until(process, rb"application shutdown complete", seen)
            with trio.fail_after(20):
                status = await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert status == 0
    assert b"Traceback" not in seen
    assert 'trasgi_requests_total{method="GET",status="200"} 1.0' in text


@pytest.mark.process
def test_the_command_line_names_a_taken_metrics_port() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = run_cli(
            "examples.hello:app", "--port", "0", "--metrics-port", str(port)
        )
    assert_one_line_error(
        result,
        1,
        f"cannot listen on 127.0.0.1:{port} (--metrics-port): address already in use",
    )


@pytest.mark.process
def test_missing_prometheus_client_is_one_line_with_the_fix() -> None:
    # None in sys.modules makes the import fail as if the package were absent.
    program = (
        "import sys; sys.modules['prometheus_client'] = None; "
        "from trasgi._ops.cli import main; "
        "sys.exit(main(['examples.hello:app', '--metrics-port', '0']))"
    )
    result = subprocess.run(
        [sys.executable, "-c", program],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert_one_line_error(
        result,
        2,
        "--metrics-port needs the prometheus-client package: "
        "pip install -e '.[metrics]' in a checkout of trasgi",
    )


@pytest.mark.process
def test_metrics_port_is_validated() -> None:
    assert_one_line_error(
        run_cli("examples.hello:app", "--metrics-port", "70000"),
        2,
        "--metrics-port must be between 0 and 65535",
    )
