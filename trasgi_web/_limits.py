"""Default limits that the application, its routes and its requests share."""

from __future__ import annotations

#: The body limit when neither the app nor the route sets one: enough for
#: JSON and form posts; uploads raise it where they are accepted.
DEFAULT_MAX_BODY_SIZE = 4 * 1024 * 1024
