"""The web console: server-rendered pages (Jinja2) with htmx for the live parts."""
