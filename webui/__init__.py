"""The web process: Bottle app, pages and REST API, a client of the control API."""
