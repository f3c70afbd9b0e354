"""A Flask application (WSGI) served by trasgi, in worker threads.

Run it with ``python -m trasgi examples.wsgi_flask:app`` (``--interface
wsgi`` says it outright; ``auto``, the default, tells it from the
signature) and open http://127.0.0.1:8000. ``POST /count`` counts the bytes
of a body read in 64 KiB pieces, so an upload of any size takes no more
memory than a piece; ``GET /countdown`` streams its lines one by one.
"""

from collections.abc import Iterator

from flask import Flask, Response, request

app = Flask(__name__)

PIECE = 64 * 1024


@app.get("/")
def hello() -> dict[str, str]:
    return {
        "hello": "world",
        "scheme": request.scheme,
        "client": request.remote_addr or "-",
    }


@app.post("/count")
def count() -> dict[str, int]:
    total = 0
    while piece := request.stream.read(PIECE):
        total += len(piece)
    return {"bytes": total}


@app.get("/countdown")
def countdown() -> Response:
    def lines() -> Iterator[str]:
        for n in range(3, 0, -1):
            yield f"{n}\n"
        yield "liftoff\n"

    return Response(lines(), mimetype="text/plain")
