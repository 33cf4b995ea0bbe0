"""yunbang (云帮办) — the application: settings, domain, persistence, HTTP API, CLI."""
