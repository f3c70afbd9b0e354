"""The pure layer: response and WebSocket cycles, scopes, strict checks, parsers.

No trio, no sockets, no clock (a test checks its imports): everything here is
driven by plain calls and tested by tables of cases.
"""
