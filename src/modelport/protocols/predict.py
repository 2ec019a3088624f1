"""The tutorial's prediction routes, in its exact answer shape (paths: :mod:`.routes`).

| method | path | body |
|---|---|---|
| POST | ``/predict`` | one object of field values (the default model) |
| POST | ``/predict/batch`` | ``{"instances": [objects]}`` |
| POST | ``/models/{name}/predict`` | one object |
| POST | ``/models/{name}/predict/batch`` | ``{"instances": [...]}`` |
| POST | ``/models/{name}/versions/{version}/predict`` | one object |
| POST | ``/models/{name}/versions/{version}/predict/batch`` | ``{"instances": [...]}`` |

Classifiers answer ``{"prediction", "probability", "probabilities"}`` (probabilities rounded to 4
places, as the tutorial does), regressors ``{"prediction"}``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from modelport.errors import InvalidInput
from modelport.protocols._http import Call, Reply, check_instances
from modelport.protocols.answers import answers

if TYPE_CHECKING:
    from modelport.settings import Settings

__all__ = ["predict_batch", "predict_one"]


async def predict_one(call: Call) -> Reply:
    model = call.plane.route(call.name, call.version)
    record = call.plane.parse_record(model, call.body)
    result = await call.plane.infer(model, call.plane.record_rows(model, [record]))
    headers = {"X-Model-Name": result.model, "X-Model-Version": str(result.version)}
    # only an image model's records have a top_k (asking another's costs pydantic's __getattr__)
    top_k = getattr(record, "top_k", None) if model.signature.image is not None else None
    return Reply(answers(result, [top_k])[0], headers)


def _instances(body: bytes, settings: Settings) -> list[Any]:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"body is not valid JSON: {exc}") from exc
    instances = payload.get("instances") if isinstance(payload, dict) else None
    if not isinstance(instances, list) or not instances:
        raise InvalidInput('send {"instances": [...]}: a non-empty list of objects')
    check_instances(len(instances), settings)
    return instances


async def predict_batch(call: Call) -> Reply:
    plane = call.plane
    instances = _instances(call.body, call.settings)  # before routing: a
    model = plane.route(call.name, call.version)  # body refused here reached no model version
    rows = plane.records_to_rows(model, instances, prefix=("body", "instances"))
    result = await plane.infer(model, rows)
    headers = {"X-Model-Name": result.model, "X-Model-Version": str(result.version)}
    body = {
        "model_name": result.model,
        "model_version": result.version,
        "predictions": answers(result, [_top_k(i) for i in instances]),
    }
    body["request_id"] = call.request_id  # for POST /feedback with "row"
    return Reply(body, headers)


def _top_k(instance: Any) -> int | None:
    """An image request's validated ``top_k``."""
    value = instance.get("top_k") if isinstance(instance, dict) else None
    return value if isinstance(value, int) else None
