"""Outcomes of A/B tests: every prediction recorded, feedback, and the experiment's report.

| module | what |
|---|---|
| :mod:`.records` | what the serving path hands over (a tuple) and the rows the writer makes of it |
| :mod:`.writer` | the bounded background writer thread (batches, flush, durability) |
| :mod:`.child`, :mod:`.sink` | the writer process that commits the batches: both its ends |
| :mod:`.frames` | the messages between them: a length and a pickle, with deadlines |
| :mod:`.retention` | deletes records past an age or a count, from the writer thread |
| :mod:`.store` | the schema and its SQL, shared by both databases |
| :mod:`.sqlite_store`, :mod:`.postgres_store` | SQLite (default, nothing mapped) or PostgreSQL |
| :mod:`.backends` | which of them a URL or path names (:func:`~.backends.open_store`) |
| :mod:`.health` | how recording is doing: state, drops by reason, rate-limited failure logs |
| :mod:`.feedback` | ``POST /feedback`` rules |
| :mod:`.rollup` | per-minute totals and latency bins, written with each batch |
| :mod:`.summary` | the report's counts, sums and percentiles, computed by the database |
| :mod:`.rolled` | the same from the per-minute totals, for models with many records |
| :mod:`.stats`, :mod:`.report` | z-test / Welch, the per-variant report and the verdict |
| :mod:`.table` | the CLI's rich table (the HTTP routes are :mod:`modelport.protocols.outcomes`) |

Submodules are imported where they are used. The server's observing step
(:mod:`modelport.server.observe`) hands each answered prediction to
:meth:`.service.Outcomes.record`.
"""
