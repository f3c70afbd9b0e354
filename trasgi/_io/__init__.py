"""One connection on trio: inbox, writer, HTTP/1.1, request streams, WebSockets.

The only layer that awaits a connection's stream. Imports the configuration,
protocol and observation layers.
"""
