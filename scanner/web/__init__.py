"""`scan serve`: the web workspace (`create_app`), pages and JSON twins over the library's calls."""

from scanner.web.app import create_app

__all__ = ["create_app"]
