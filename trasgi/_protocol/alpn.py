"""The ALPN protocol identifiers trasgi speaks (RFC 7301).

Named once, for the TLS context that offers them and the connection that
reads which one a client chose.
"""

#: HTTP/2 over TLS (RFC 9113 section 3.2).
ALPN_H2 = "h2"
#: HTTP/1.1 (RFC 7301 section 6).
ALPN_HTTP11 = "http/1.1"
