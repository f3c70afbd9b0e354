"""Pure ASGI middleware: each class wraps an ASGI application and is one.

This package only groups the modules; ``trasgi_web`` exports the classes.
Importing nothing here keeps each middleware module's imports its own.
"""
