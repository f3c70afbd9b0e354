"""A gunicorn worker class: gunicorn manages the processes, trasgi serves.

``gunicorn -k trasgi.workers.TrasgiWorker -w 2 module:app`` runs an ASGI
application with trasgi inside each of gunicorn's workers. gunicorn's master
(the arbiter) binds the sockets, forks the workers, restarts those that die
or stop sending their heartbeat, and turns its signals into graceful or quick
stops; each worker runs :func:`trio.run` over the sockets it inherited, with
the application's lifespan, and reports its heartbeat from a trio task.

gunicorn is an optional dependency, the ``gunicorn`` extra (``pip install -e
'.[gunicorn]'`` in a checkout of trasgi): it is imported here, and ``import
trasgi`` does not import this module.

How gunicorn's settings become trasgi's :class:`~trasgi.Config` (each is read
in the master before the first worker forks, so a setting trasgi cannot honour
stops gunicorn at startup with one line):

==========================  =================================================
gunicorn                    trasgi
==========================  =================================================
``--keep-alive``            ``timeout_keep_alive`` (0: one request per
                            connection)
``--graceful-timeout``      ``timeout_graceful_shutdown``
``--limit-request-line``    ``limit_request_line`` (0: trasgi's largest)
``--limit-request-fields``  ``limit_request_fields`` (0 or more than trasgi
                            allows: trasgi's largest)
``--forwarded-allow-ips``   ``forwarded_allow_ips``, plus ``unix``; the
                            forwarding headers are believed, as gunicorn does
``--proxy-protocol``        ``proxy_protocol`` (needs ``--proxy-allow-from``
                            equal to ``--forwarded-allow-ips``)
``--certfile`` and others   ``ssl_certfile``, ``ssl_keyfile``,
                            ``ssl_ca_certs``, ``ssl_cert_reqs``,
                            ``ssl_ciphers``
``--root-path``             ``root_path``
``--log-level``             ``log_level``
``--max-requests``          gunicorn's own request counter
``--timeout``               the heartbeat (a trio task)
==========================  =================================================

The options gunicorn has no setting for (``timeout_header_read``,
``limit_request_body``, the WebSocket options...) come from the ``TRASGI_*``
environment variables, as for ``python -m trasgi``; a variable for an option
gunicorn decides (``TRASGI_PORT``, ``TRASGI_TIMEOUT_KEEP_ALIVE``) is refused.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import ssl
import sys
from collections.abc import Mapping
from types import FrameType
from typing import Any, NoReturn

import attrs
import trio

try:
    from gunicorn.arbiter import Arbiter
    from gunicorn.workers.base import Worker
except ImportError as exc:  # pragma: no cover - the test extra has gunicorn
    raise ImportError(
        "trasgi.workers needs gunicorn: "
        "pip install -e '.[gunicorn]' in a checkout of trasgi"
    ) from exc

from trasgi._asgi import ASGIApp, Receive, Scope, Send
from trasgi._config.config import Config
from trasgi._config.sources import ConfigError, from_environ
from trasgi._edge.tls import TLSConfigError, build_server_context, with_tls
from trasgi._errors import AppLoadError, LifespanFailure
from trasgi._observe.logs import access_logger, error_logger
from trasgi._server.interfaces import as_asgi3
from trasgi._server.serve import serve_listeners

__all__ = ["TrasgiWorker"]

#: gunicorn's own workers notify at least once a second while idle; a
#: shorter --timeout (the arbiter passes half of it) notifies more often.
_MAX_HEARTBEAT_INTERVAL = 1.0

#: The trasgi options gunicorn decides, and what to use instead, for the
#: error that refuses a ``TRASGI_*`` variable naming one of them.
_DECIDED_BY_GUNICORN = {
    "host": "gunicorn's --bind",
    "port": "gunicorn's --bind",
    "uds": "gunicorn's --bind unix:PATH",
    "bind": "gunicorn's --bind",
    "fd": "gunicorn's --bind fd://N",
    "uds_permissions": "gunicorn's --umask",
    "backlog": "gunicorn's --backlog",
    "workers": "gunicorn's --workers",
    "limit_max_requests": "gunicorn's --max-requests",
    "limit_max_requests_jitter": "gunicorn's --max-requests-jitter",
    "reload": "gunicorn's --reload",
    "reload_dir": "gunicorn's --reload-extra-file",
    "reload_include": "gunicorn's --reload-extra-file",
    "reload_exclude": "gunicorn's --reload",
    "timeout_keep_alive": "gunicorn's --keep-alive",
    "timeout_graceful_shutdown": "gunicorn's --graceful-timeout",
    "limit_request_line": "gunicorn's --limit-request-line",
    "limit_request_fields": "gunicorn's --limit-request-fields",
    "forwarded_allow_ips": "gunicorn's --forwarded-allow-ips",
    "proxy_protocol": "gunicorn's --proxy-protocol",
    "root_path": "gunicorn's --root-path",
    "ssl_certfile": "gunicorn's --certfile",
    "ssl_keyfile": "gunicorn's --keyfile",
    "ssl_ca_certs": "gunicorn's --ca-certs",
    "ssl_cert_reqs": "gunicorn's --cert-reqs",
    "ssl_ciphers": "gunicorn's --ciphers",
    "log_level": "gunicorn's --log-level",
    "access_log": "gunicorn's --access-logfile",
    "log_config": "gunicorn's --log-config",
    "use_colors": "gunicorn's logging settings",
    "metrics_port": "nothing: every worker would bind the same port",
    "metrics_host": "nothing: every worker would bind the same port",
    "factory": "gunicorn's 'module:create_app()'",
    "app_dir": "gunicorn's --chdir",
}

#: gunicorn settings this worker does not use, and what does the job, for the
#: warning logged when one is changed from gunicorn's default.
_NOT_USED = {
    "limit_request_field_size": "trasgi bounds the whole request head instead "
    "(TRASGI_H11_MAX_INCOMPLETE_EVENT_SIZE)",
    "worker_connections": "see TRASGI_LIMIT_CONCURRENCY",
    "threads": "the application runs on trio, in one thread",
    "access_log_format": "trasgi writes its own access lines "
    "(TRASGI_ACCESS_LOG_FORMAT)",
    "secure_scheme_headers": "trasgi reads X-Forwarded-Proto, or Forwarded "
    "with TRASGI_FORWARDED_HEADER=forwarded",
}

#: trasgi's TLS options, as gunicorn names them, for the TLS errors.
_TLS_FLAGS = {
    "--ssl-keyfile-password": "TRASGI_SSL_KEYFILE_PASSWORD",
    "--ssl-certfile": "--certfile",
    "--ssl-keyfile": "--keyfile",
    "--ssl-ca-certs": "--ca-certs",
    "--ssl-cert-reqs": "--cert-reqs",
    "--ssl-ciphers": "--ciphers",
}
_TLS_FLAG = re.compile("|".join(map(re.escape, _TLS_FLAGS)) + r"(?![\w-])")

#: systemd's variables for the service's main process. The arbiter is that
#: process (gunicorn sends READY=1 itself); a worker that notified too would
#: speak for the whole service: its STOPPING=1 on a reload would read as the
#: service stopping.
_SYSTEMD_VARIABLES = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")

_CERT_REQS = {
    ssl.CERT_NONE: "none",
    ssl.CERT_OPTIONAL: "optional",
    ssl.CERT_REQUIRED: "required",
}
_PROXY_PROTOCOL = {"off": "off", "v1": "v1", "v2": "v2", "auto": "any"}
_LARGEST_REQUEST_LINE = 2**20  # Config's upper bound for limit_request_line
_MOST_REQUEST_FIELDS = 10_000  # Config's upper bound for limit_request_fields


class _WorkerConfigError(ValueError):
    """gunicorn's settings or the ``TRASGI_*`` variables cannot make a Config.

    The message is one line naming the gunicorn flag or the variable.
    """


def _flag(cfg: Any, setting: str) -> str:
    """The command-line flag of a gunicorn setting (``--keep-alive``)."""
    flags = [flag for flag in cfg.settings[setting].cli if flag.startswith("--")]
    return flags[-1] if flags else setting


def _setting(cfg: Any, name: str, default: Any) -> Any:
    """A setting older gunicorn releases may not have."""
    return getattr(cfg, name) if name in cfg.settings else default


def _from_gunicorn(cfg: Any, log: Any) -> dict[str, tuple[str, Any]]:
    """Map trasgi options to (gunicorn setting, value) from gunicorn's settings."""
    values: dict[str, tuple[str, Any]] = {
        "backlog": ("backlog", cfg.backlog),
        "timeout_graceful_shutdown": ("graceful_timeout", cfg.graceful_timeout),
        "limit_request_line": (
            "limit_request_line",
            cfg.limit_request_line or _LARGEST_REQUEST_LINE,
        ),
        "limit_request_fields": (
            "limit_request_fields",
            min(cfg.limit_request_fields or _MOST_REQUEST_FIELDS, _MOST_REQUEST_FIELDS),
        ),
        # gunicorn trusts Unix-socket peers unconditionally.
        "forwarded_allow_ips": (
            "forwarded_allow_ips",
            ",".join([*cfg.forwarded_allow_ips, "unix"]),
        ),
        "log_level": ("loglevel", cfg.loglevel.lower()),
        "access_log": (
            "accesslog",
            bool(getattr(log, "access_log_enabled", cfg.accesslog is not None)),
        ),
        **_tls_from_gunicorn(cfg),
    }
    if cfg.keepalive > 0:
        values["timeout_keep_alive"] = ("keepalive", float(cfg.keepalive))
    else:  # gunicorn's --keep-alive 0 turns keep-alive off
        values["limit_requests_per_connection"] = ("keepalive", 1)
    if "root_path" in cfg.settings:
        values["root_path"] = ("root_path", cfg.root_path)
    mode = _proxy_protocol_mode(cfg)
    if mode != "off":
        values["proxy_protocol"] = ("proxy_protocol", mode)
    return values


def _tls_from_gunicorn(cfg: Any) -> dict[str, tuple[str, Any]]:
    values: dict[str, tuple[str, Any]] = {
        "ssl_certfile": ("certfile", cfg.certfile),
        "ssl_keyfile": ("keyfile", cfg.keyfile),
        "ssl_ca_certs": ("ca_certs", cfg.ca_certs),
        "ssl_cert_reqs": ("cert_reqs", _CERT_REQS.get(cfg.cert_reqs, cfg.cert_reqs)),
    }
    if cfg.ciphers is not None:
        values["ssl_ciphers"] = ("ciphers", cfg.ciphers)
    return values


def _proxy_protocol_mode(cfg: Any) -> str:
    """The ``proxy_protocol`` mode for gunicorn's (a bool before gunicorn 24.1)."""
    setting = _setting(cfg, "proxy_protocol", "off")
    mode = {True: "auto", False: "off"}.get(setting, setting)
    if mode == "off":
        return "off"
    trusted = _setting(cfg, "proxy_allow_ips", cfg.forwarded_allow_ips)
    if sorted(trusted) != sorted(cfg.forwarded_allow_ips):
        raise _WorkerConfigError(
            f"{_flag(cfg, 'proxy_protocol')} needs {_flag(cfg, 'proxy_allow_ips')} "
            f"equal to {_flag(cfg, 'forwarded_allow_ips')}: trasgi trusts one list "
            "of proxies for both"
        )
    return str(_PROXY_PROTOCOL.get(mode, mode))


def _from_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    """The ``TRASGI_*`` variables, less those gunicorn decides (refused)."""
    try:
        values, app = from_environ(environ)
    except ConfigError as exc:
        raise _WorkerConfigError(str(exc)) from None
    if app is not None:
        raise _WorkerConfigError(
            "TRASGI_APP is not used under gunicorn: the application is "
            "gunicorn's APP_MODULE argument"
        )
    for name in values:
        if name in _DECIDED_BY_GUNICORN:
            raise _WorkerConfigError(
                f"TRASGI_{name.upper()} is not used under gunicorn: use "
                f"{_DECIDED_BY_GUNICORN[name]}"
            )
    return values


def _check(source: str, name: str, value: Any) -> None:
    """Check one value alone, so that the error names where it came from."""
    try:
        Config(**{name: value})
    except (TypeError, ValueError) as exc:
        raise _WorkerConfigError(f"{source} {value!r}: {exc}") from None


def _build_config(cfg: Any, log: Any, environ: Mapping[str, str]) -> Config:
    """Build trasgi's Config from gunicorn's settings and ``TRASGI_*`` variables.

    The forwarding headers of trusted proxies are believed unless
    ``TRASGI_PROXY_HEADERS=off``: gunicorn believes their scheme headers.

    Error handling:
        Raises :class:`_WorkerConfigError` with one line naming the gunicorn
        flag or the environment variable, for a value trasgi cannot use.
        The TLS files are read by :func:`_tls_context`.
    """
    environment = _from_environment(environ)
    for name, value in environment.items():
        _check(f"TRASGI_{name.upper()}", name, value)
    gunicorn = _from_gunicorn(cfg, log)
    for name, (setting, value) in gunicorn.items():
        _check(_flag(cfg, setting), name, value)
    return Config(
        **{
            "proxy_headers": True,
            **environment,
            **{name: value for name, (_, value) in gunicorn.items()},
        }
    )


def _tls_context(config: Config) -> ssl.SSLContext | None:
    """The server's TLS context, with errors naming gunicorn's flags."""
    try:
        return build_server_context(config)
    except TLSConfigError as exc:
        message = _TLS_FLAG.sub(lambda found: _TLS_FLAGS[found.group()], str(exc))
        raise _WorkerConfigError(message) from None


def _unused_settings(cfg: Any) -> list[str]:
    """Warnings for gunicorn settings changed from their default and not used."""
    return [
        f"{_flag(cfg, name)} is not used by trasgi's worker: {instead}"
        for name, instead in _NOT_USED.items()
        if name in cfg.settings
        and cfg.settings[name].get() != cfg.settings[name].default
    ]


class _ForwardTo(logging.Handler):
    """Hand trasgi's log records to one of gunicorn's loggers.

    That logger's level, handlers (--error-logfile, --access-logfile, syslog,
    --log-config) and format then decide what is written where.
    """

    def __init__(self, target: logging.Logger) -> None:
        super().__init__()
        self.target = target

    def emit(self, record: logging.LogRecord) -> None:
        if self.target.isEnabledFor(record.levelno):
            self.target.handle(record)


def _route_logs(log: Any, config: Config) -> None:
    """Send trasgi's error and access logs through gunicorn's loggers.

    The access lines are trasgi's own (``TRASGI_ACCESS_LOG_FORMAT``), written
    only when gunicorn's access log is on (``--access-logfile``).
    """
    gunicorn_error = getattr(log, "error_log", None) or logging.getLogger(
        "gunicorn.error"
    )
    gunicorn_access = getattr(log, "access_log", None) or logging.getLogger(
        "gunicorn.access"
    )
    trasgi_logs = logging.getLogger("trasgi")
    trasgi_logs.handlers[:] = [_ForwardTo(gunicorn_error)]
    trasgi_logs.propagate = False
    access_logger.handlers[:] = [_ForwardTo(gunicorn_access)]
    access_logger.propagate = False
    error_logger.setLevel(config.log_level.upper())
    access_logger.setLevel(logging.INFO if config.access_log else logging.CRITICAL + 1)


class TrasgiWorker(Worker):  # type: ignore[misc]  # gunicorn has no type hints
    """A gunicorn worker that serves an ASGI 3 application with trasgi on trio.

    Use it as ``gunicorn -k trasgi.workers.TrasgiWorker``. Each worker runs
    the application's lifespan, serves gunicorn's listening sockets (TCP,
    Unix, or TLS with ``--certfile``) and tells the arbiter it is alive from a
    trio task, at least once a second, so that a busy but responsive worker
    is never taken for a stuck one.

    Signals, as gunicorn's own workers treat them:

    * SIGTERM (``kill -TERM`` on the master, a ``SIGHUP`` reload,
      ``--max-requests``): graceful shutdown; in-flight requests get
      ``--graceful-timeout`` seconds, then the lifespan shutdown runs.
    * SIGINT, SIGQUIT: quick stop; gunicorn's ``worker_int`` hook runs and
      everything is cancelled, without the lifespan shutdown.
    * SIGUSR1: reopen the log files.
    * SIGABRT (the arbiter's answer to a missed heartbeat): gunicorn's
      ``worker_abort`` hook runs, and the worker exits at once with status 1.

    The worker also stops gracefully when its master is gone (its parent
    process changed), as gunicorn's workers do.

    Error handling:
        Settings trasgi cannot use stop gunicorn at startup with one line
        (``Error: trasgi worker: ...``, exit status 1). A worker whose
        application's lifespan startup fails exits with gunicorn's boot
        error status, and gunicorn stops ("Worker failed to boot"), rather
        than restarting it forever.

    Resource handling:
        The worker serves duplicates of gunicorn's sockets and closes them
        when it stops; the master keeps its own, so the other workers go on
        accepting.
    """

    @classmethod
    def check_config(cls, cfg: Any, log: Any) -> None:
        """Refuse unusable settings in the master, before any worker forks."""
        try:
            _tls_context(_build_config(cfg, log, os.environ))
        except _WorkerConfigError as exc:
            # gunicorn prints a RuntimeError from here as one line, exit 1.
            raise RuntimeError(f"trasgi worker: {exc}") from None
        for warning in _unused_settings(cfg):
            log.warning("trasgi worker: %s", warning)

    def init_process(self) -> None:
        """Build the Config and route the logs, then let gunicorn load the app."""
        try:
            self._trasgi_config = _build_config(self.cfg, self.log, os.environ)
            self._tls = _tls_context(self._trasgi_config)
        except _WorkerConfigError as exc:  # the settings changed on a reload
            self._boot_failed(str(exc))
        _route_logs(self.log, self._trasgi_config)
        for name in _SYSTEMD_VARIABLES:  # in this worker only: it has forked
            os.environ.pop(name, None)
        self._stop = trio.Event()
        super().init_process()

    def load_wsgi(self) -> None:
        """Load the application as gunicorn does, then apply ``--interface``."""
        super().load_wsgi()
        try:
            self.wsgi: ASGIApp = as_asgi3(self.wsgi, self._trasgi_config.interface)
        except AppLoadError as exc:
            self._boot_failed(f"cannot load the application: {exc}")
        # Made ASGI 3 here, before the request counter wraps it.
        self._trasgi_config = attrs.evolve(self._trasgi_config, interface="asgi3")

    def _boot_failed(self, message: str) -> NoReturn:
        """Exit with gunicorn's boot error status: gunicorn then stops.

        Restarting a worker that cannot start would only repeat the error.
        """
        self.log.error("trasgi worker: %s", message)
        sys.exit(Arbiter.WORKER_BOOT_ERROR)

    def init_signals(self) -> None:
        """Keep gunicorn's handlers until trio takes the signals over.

        gunicorn's handlers cover loading the application; ``run`` then
        receives SIGTERM, SIGINT, SIGQUIT and SIGUSR1 in trio, which restores
        these afterwards. gunicorn's wake-up descriptor is removed: trio sets
        its own, and one process has only one.
        """
        super().init_signals()  # SIGABRT goes to handle_abort, below
        signal.set_wakeup_fd(-1)

    def handle_abort(self, sig: int, frame: FrameType | None) -> None:
        """Leave at once: the arbiter saw no heartbeat, so trio is stuck.

        A stuck event loop would never see this signal through trio, so it is
        handled where it lands, as gunicorn's workers do; exiting without
        unwinding trio's tasks is what SIGKILL would do a second later.
        """
        self.alive = False
        self.cfg.worker_abort(self)
        logging.shutdown()  # flush the log files first
        os._exit(1)

    def run(self) -> None:
        """Serve until a signal, the master's absence or ``--max-requests``."""
        try:
            trio.run(self._serve)
        except LifespanFailure as exc:
            self._boot_failed(f"application {exc}")

    async def _serve(self) -> None:
        listeners: list[Any] = [
            trio.SocketListener(trio.socket.from_stdlib_socket(sock.dup()))
            for sock in self.sockets
        ]
        listeners = with_tls(listeners, self._tls)
        failure: LifespanFailure | None = None
        with trio.open_signal_receiver(
            signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGUSR1
        ) as signals:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._watch_signals, signals, nursery.cancel_scope)
                nursery.start_soon(self._heartbeat)
                try:
                    await serve_listeners(
                        self._counting_requests(self.wsgi),
                        listeners,
                        config=self._trasgi_config,
                        shutdown_trigger=self._stop.wait,
                    )
                except LifespanFailure as exc:
                    # Raised as itself, not inside the nursery's group.
                    failure = exc
                nursery.cancel_scope.cancel()
        if failure is not None:
            raise failure

    async def _watch_signals(self, signals: Any, everything: trio.CancelScope) -> None:
        async for signum in signals:
            if signum == signal.SIGUSR1:
                self.log.reopen_files()
            elif signum == signal.SIGTERM:
                self._stop_gracefully(f"received {signal.Signals(signum).name}")
            else:
                self.log.info(
                    "trasgi worker: received %s: quick stop",
                    signal.Signals(signum).name,
                )
                self.alive = False
                self.cfg.worker_int(self)
                everything.cancel()

    async def _heartbeat(self) -> None:
        """Tell the arbiter this worker is alive; stop when it is gone."""
        interval = _MAX_HEARTBEAT_INTERVAL
        if self.timeout > 0:  # the arbiter passes half of --timeout
            interval = min(self.timeout, _MAX_HEARTBEAT_INTERVAL)
        while True:
            self.notify()
            if self.ppid != os.getppid():
                self._stop_gracefully("parent changed")
            elif not self.alive:  # gunicorn's --reload saw a change
                self._stop_gracefully("asked to stop")
            await trio.sleep(interval)

    def _stop_gracefully(self, reason: str) -> None:
        if not self._stop.is_set():
            self.log.info("trasgi worker: %s: shutting down gracefully", reason)
        self.alive = False
        self._stop.set()

    def _counting_requests(self, app: ASGIApp) -> ASGIApp:
        """Count requests for ``--max-requests``, as gunicorn's workers do."""

        async def counted(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "lifespan":
                self.nr += 1
                if self.nr >= self.max_requests and self.alive:
                    self._stop_gracefully(f"--max-requests: {self.nr} requests served")
            await app(scope, receive, send)

        return counted
