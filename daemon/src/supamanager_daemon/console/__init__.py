"""The web console at `/`: server-rendered pages (aiohttp-jinja2) with vendored htmx for the live parts.

pages.py has the routes; templates/ the pages; static/ htmx (pinned, its license beside it), the
console's one script and its style sheet. Nothing is loaded from elsewhere and the pages carry a
Content-Security-Policy of `default-src 'self'` without `unsafe-inline`.
"""

from .pages import setup

__all__ = ["setup"]
