"""Notes: a small site with logins, forms, uploads and live updates.

Run it with ``python -m trasgi examples.notes.app:app`` and open
http://127.0.0.1:8000; log in as ``ada`` with the password ``lovelace``.
``docs/tutorial/notes-app.md`` builds it step by step.
"""
