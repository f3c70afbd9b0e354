"""The exit statuses of trasgi's processes: the command line, workers, run().

One place, so that the supervisor reading a worker's status and the command
line choosing its own agree on what each number means.
"""

#: Serving failed (a port in use, a lifespan failure), or a second signal
#: forced the exit before the graceful shutdown ended.
EXIT_FAILURE = 1
#: A wrong option or value: argparse's own status for usage errors.
EXIT_USAGE = 2
#: The application's lifespan startup failed (as uvicorn has it); in a worker,
#: it tells the supervisor that restarting would fail the same way.
EXIT_STARTUP_FAILED = 3
#: A second SIGINT or SIGTERM cut the graceful shutdown short.
FORCED_EXIT_STATUS = EXIT_FAILURE
