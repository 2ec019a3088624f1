"""The one table of prediction routes, on every protocol: what the server's pipeline matches once
per request to label, authorise, serve and record it.

| protocol | paths | handler |
|---|---|---|
| tutorial | ``[/models/{name}[/versions/{version}]]/predict[/batch]`` | :mod:`.predict` |
| v1 | ``/v1/models/{name}:predict`` | :func:`.v1.predict` |
| v2 | ``/v2/models/{name}[/versions/{version}]/infer`` | :func:`.v2.infer` |

The pipeline calls these handlers itself. Every other path is no prediction: the FastAPI routers
answer it.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from modelport.errors import ModelportError
from modelport.protocols import predict, v1, v2
from modelport.protocols._http import Handler, parse_version

__all__ = ["STATUSES", "UNMATCHED", "Match", "match"]

UNMATCHED = "<unmatched>"
_MODEL = r"/models/(?P<name>[^/]+)"
_VERSION = _MODEL + r"/versions/(?P<version>[^/]+)"

# (path pattern, protocol, handler)
_TABLE: list[tuple[str, str, Handler]] = [
    (r"/predict", "tutorial", predict.predict_one),
    (r"/predict/batch", "tutorial", predict.predict_batch),
    (_MODEL + r"/predict", "tutorial", predict.predict_one),
    (_MODEL + r"/predict/batch", "tutorial", predict.predict_batch),
    (_VERSION + r"/predict", "tutorial", predict.predict_one),
    (_VERSION + r"/predict/batch", "tutorial", predict.predict_batch),
    (r"/v1/models/(?P<name>[^/]+):predict", "v1", v1.predict),
    (r"/v2" + _MODEL + r"/infer", "v2", v2.infer),
    (r"/v2" + _VERSION + r"/infer", "v2", v2.infer),
]
# what a prediction can answer besides 200: bad input (400, or 422 on the tutorial's routes), no
# key (401), unknown model or version (404), too large (413), not loaded or overloaded (503),
# past its deadline (504)
STATUSES = (400, 401, 404, 413, 422, 503, 504)
_GROUP = re.compile(r"\(\?P<(\w+)>[^)]*\)")
_COMPILED = [(re.compile(p), _GROUP.sub(r"{\1}", p), proto, h) for p, proto, h in _TABLE]


@dataclass(frozen=True, slots=True)
class Match:
    """A prediction route and its path parameters; ``error`` when the version cannot be one."""

    endpoint: str  # the route template: metric labels stay few
    protocol: str
    handler: Handler
    model: str | None
    version: int | None
    error: ModelportError | None = None


@functools.lru_cache(maxsize=4096)
def match(path: str) -> Match | None:
    """The prediction route for ``path``, or ``None`` when it is no prediction."""
    for pattern, endpoint, protocol, handler in _COMPILED:
        found = pattern.fullmatch(path)
        if found is None:
            continue
        params = found.groupdict()
        raw = params.get("version")
        try:
            version = parse_version(raw) if raw is not None else None
        except ModelportError as exc:
            return Match(endpoint, protocol, handler, params.get("name"), None, exc)
        return Match(endpoint, protocol, handler, params.get("name"), version)
    return None
