"""Outcomes of A/B tests: every prediction recorded, feedback, and the experiment's report.

| module | what |
|---|---|
| :mod:`.recorder` | ASGI middleware: each answered prediction request to the writer |
| :mod:`.records` | what the serving path hands over (a tuple) and the rows the writer makes of it |
| :mod:`.writer` | the bounded background writer thread (batches, flush, durability) |
| :mod:`.retention` | deletes records past an age or a count, from the writer thread |
| :mod:`.store` | SQLite (default, WAL) or PostgreSQL, one schema |
| :mod:`.feedback` | ``POST /feedback`` rules |
| :mod:`.stats`, :mod:`.report` | z-test / Welch, the per-variant report and the verdict |
| :mod:`.api` | the HTTP routes; :mod:`.table` the CLI's rich table |

Submodules are imported where they are used. The recorder reads the answering prediction from
the request context (:attr:`modelport.core.context.RequestInfo.result`), which the data plane fills.
"""
