"""One module per view of the app and the CLI (see docs/architecture.md).

A view is a frozen request dataclass: `key()` (its disk-cache key), `cost()` (forward passes,
known before anything runs), `run(model, x, progress, cancel)` and `summary(result)` (the JSON
the CLI prints). Pages and CLI commands only build requests and render results, so both read
and write the same disk cache. Submodules are imported on demand (they pull in torch).
"""
