"""Server-sent events: a clock that ticks once a second to every listener.

Run it with ``python -m trasgi examples.sse_clock:app`` and open
http://127.0.0.1:8000 in a browser, or ``curl -N localhost:8000/clock``.
When the client leaves, the stream stops and the ticking generator is
closed. When the server shuts down (Ctrl-C, SIGTERM), EventSourceResponse
hears ``http.disconnect`` and ends the stream at once, cleanly: the client
sees a complete response and its EventSource reconnects (to another worker,
or to this server once it is back), with the last event id it saw.
"""

from collections.abc import AsyncIterator
from datetime import datetime, timezone

import trio

from trasgi_web import App, EventSourceResponse, HTMLResponse, Request, ServerSentEvent

app = App()

PAGE = """<!doctype html>
<title>clock</title>
<p id="now">waiting...</p>
<script>
new EventSource("clock").addEventListener("tick", (event) => {
  document.getElementById("now").textContent = JSON.parse(event.data).now;
});
</script>
"""


async def ticks(interval: float, count: int | None) -> AsyncIterator[ServerSentEvent]:
    n = 0
    while count is None or n < count:
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        yield ServerSentEvent({"now": now}, event="tick", id=str(n))
        n += 1
        await trio.sleep(interval)


@app.get("/")
async def page() -> HTMLResponse:
    return HTMLResponse(PAGE)


@app.get("/clock")
async def clock(request: Request) -> EventSourceResponse:
    # ?count=N ends the stream after N ticks (handy for tests and curl).
    count = request.query.get("count")
    limit = int(count) if count is not None and count.isdigit() else None
    return EventSourceResponse(ticks(1.0, limit))
