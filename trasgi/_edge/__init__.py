"""Where connections come from: listeners, the accept loop, TLS, socket activation.

Imports the I/O, configuration, protocol and observation layers.
"""
