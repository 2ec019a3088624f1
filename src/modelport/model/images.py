"""Image inputs: a base64 PNG/JPEG (decoded with Pillow, converted, resized and normalised with
numpy per the card's :class:`~modelport.model.imagespec.ImageSpec`) or the input tensor itself as
nested lists; a batch of them becomes one ``float32`` array ``[batch, C, H, W]``.

Every bad image is an :class:`~modelport.errors.InvalidInput` (422; 400 on the tensor protocols)
that says what is wrong: not base64, not PNG/JPEG, a corrupt file, the wrong tensor shape or type.
"""

from __future__ import annotations

import base64
import binascii
import io
from collections.abc import Sequence
from typing import Annotated, Any

import numpy as np
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema, create_model
from pydantic_core import PydanticCustomError

from modelport.errors import InvalidInput, MissingExtra
from modelport.hints import pip_package
from modelport.model.imagespec import ImageSpec

__all__ = [
    "MAX_PIXELS",
    "check_images",
    "decode_image",
    "image_request_model",
    "image_rows",
    "tensor_rows",
    "top_k",
]

#: Largest encoded image accepted, in pixels (a decompression bomb is refused before decoding).
MAX_PIXELS = 4096 * 4096

_MAGIC = {b"\x89PNG\r\n\x1a\n": "PNG", b"\xff\xd8\xff": "JPEG"}
_FILTERS = {"bilinear": 2, "bicubic": 3, "box": 4, "nearest": 0, "lanczos": 1}


def _bytes_of(text: str) -> bytes:
    if text.startswith("data:"):  # a data URL: data:image/png;base64,....
        text = text.partition(",")[2]
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput(f"image: not valid base64 ({exc})") from exc


def _pixels(data: bytes, spec: ImageSpec) -> np.ndarray:
    """An encoded PNG/JPEG as ``uint8`` pixels ``[H, W, C]`` of the model's size and colour."""
    kind = next((name for magic, name in _MAGIC.items() if data.startswith(magic)), None)
    if kind is None:
        raise InvalidInput("image: not a PNG or JPEG image (send one base64-encoded)")
    try:
        from PIL import Image
    except ImportError as exc:
        raise MissingExtra(f"decoding images needs Pillow: {pip_package('pillow')}") from exc
    _, height, width = spec.shape
    try:
        with Image.open(io.BytesIO(data), formats=[kind]) as image:
            if image.width * image.height > MAX_PIXELS:
                raise InvalidInput(
                    f"image: {image.width}x{image.height} is more than {MAX_PIXELS} pixels"
                )
            image = image.convert("RGB" if spec.color == "rgb" else "L")
            if image.size != (width, height):
                if spec.preprocessing.resize == "none":
                    raise InvalidInput(
                        f"image: {image.width}x{image.height} pixels, the model takes "
                        f"{width}x{height} (this model does not resize)"
                    )
                filter_ = _FILTERS[spec.preprocessing.resize]
                image = image.resize((width, height), Image.Resampling(filter_))
            pixels = np.asarray(image, dtype=np.uint8)
    except InvalidInput:
        raise
    except Image.DecompressionBombError as exc:  # far past the bound: refused as it opens
        raise InvalidInput(f"image: more than {MAX_PIXELS} pixels") from exc
    except Exception as exc:  # Pillow's many ways to say "corrupt"
        raise InvalidInput(f"image: cannot decode this {kind} ({exc})") from exc
    return pixels.reshape(height, width, -1)


def _normalised(pixels: np.ndarray, spec: ImageSpec) -> np.ndarray:
    prep = spec.preprocessing
    x = pixels.astype(np.float32)
    if prep.invert:
        x = 255.0 - x
    x = x * np.float32(prep.scale)
    mean = np.asarray(prep.mean, dtype=np.float32)
    std = np.asarray(prep.std, dtype=np.float32)
    x = (x - mean) / std  # per channel: channels are the last axis here
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def _tensor(value: Any, spec: ImageSpec) -> np.ndarray:
    try:
        array = np.asarray(value)
    except ValueError as exc:  # ragged nested lists
        raise InvalidInput(
            f"image: nested lists of unequal lengths; send a {list(spec.shape)} tensor"
        ) from exc
    if array.dtype.kind not in "iuf":
        raise InvalidInput(
            f"image: the tensor must hold numbers, got {array.dtype.name} values "
            "(send numbers, or the image as a base64 PNG/JPEG string)"
        )
    channels, height, width = spec.shape
    if array.shape == (height, width) and channels == 1:
        array = array.reshape(spec.shape)
    if array.shape != spec.shape:
        raise InvalidInput(
            f"image: expected a tensor of shape {list(spec.shape)}, got {list(array.shape)}"
        )
    array = array.astype(np.float32)
    if not np.isfinite(array).all():
        raise InvalidInput("image: the tensor holds a value that is not a finite number")
    return array


def decode_image(value: Any, spec: ImageSpec) -> np.ndarray:
    """One image (base64 text, raw PNG/JPEG bytes, or nested lists) as ``float32 [C, H, W]``."""
    if isinstance(value, str):
        return _normalised(_pixels(_bytes_of(value), spec), spec)
    if isinstance(value, bytes | bytearray | np.bytes_):
        return _normalised(_pixels(bytes(value), spec), spec)
    if isinstance(value, list | np.ndarray):
        return _tensor(value, spec)
    raise InvalidInput(
        f"image: expected a base64 PNG/JPEG string or nested lists, got {type(value).__name__}"
    )


def image_request_model(model: str, spec: ImageSpec, *, strict: bool = False) -> type[BaseModel]:
    """``{"image": <base64 PNG/JPEG or nested lists>, "top_k": k?}``; the image is decoded while
    validating, so a bad one fails with the field's location."""

    def decoded(value: Any) -> np.ndarray:
        try:
            return decode_image(value, spec)
        except InvalidInput as exc:
            reason = exc.message.removeprefix("image: ")
            raise PydanticCustomError("invalid_image", "{reason}", {"reason": reason}) from exc

    schema = {"anyOf": [{"type": "string", "format": "base64"}, {"type": "array"}]}
    image_type = Annotated[Any, AfterValidator(decoded), WithJsonSchema(schema)]
    shape = "x".join(map(str, spec.shape))
    config = ConfigDict(
        extra="forbid" if strict else "ignore", arbitrary_types_allowed=True, title=model
    )
    return create_model(
        "".join(w.capitalize() for w in model.replace("-", "_").split("_")) + "ImageRequest",
        __config__=config,
        image=(
            image_type,
            Field(description=f"A base64 PNG or JPEG, or the {shape} input tensor as lists."),
        ),
        top_k=(
            int | None,
            Field(None, ge=1, description=f"Classes listed (default {spec.top_k})."),
        ),
    )


def image_rows(records: Sequence[BaseModel]) -> np.ndarray:
    """Validated image requests as one ``float32 [batch, C, H, W]`` batch."""
    return np.stack([r.image for r in records])  # type: ignore[attr-defined]


def tensor_rows(name: str, array: np.ndarray, spec: ImageSpec) -> np.ndarray:
    """A decoded tensor-protocol input: floats ``[batch, C, H, W]`` (``[batch, H, W]`` for one
    channel) or encoded images ``[batch]`` (BYTES); the caller checks it with ``check_rows``."""
    if array.dtype == object:
        flat = array.reshape(-1) if array.ndim == 2 and array.shape[1] == 1 else array
        if flat.ndim != 1:
            raise InvalidInput(f"input {name!r}: encoded images come as a [batch] BYTES tensor")
        return np.stack([decode_image(_raw(item), spec) for item in flat])
    if array.dtype.kind != "f":
        raise InvalidInput(
            f"input {name!r}: {array.dtype.name} is not a float tensor; send FP32 "
            f"[batch, {', '.join(map(str, spec.shape))}] or BYTES (PNG/JPEG)"
        )
    if spec.shape[0] == 1 and array.ndim == 3:
        array = array.reshape(len(array), *spec.shape)
    return array  # the data plane's check_rows checks shape and values next


def _raw(item: Any) -> Any:
    """A BYTES element: raw PNG/JPEG bytes, or base64 text (bytes or str)."""
    if isinstance(item, bytes | bytearray) and not bytes(item).startswith(tuple(_MAGIC)):
        return bytes(item).decode("ascii", "replace")
    return item


def check_images(spec: ImageSpec, rows: np.ndarray) -> np.ndarray:
    """Check a batch tensor ``[batch, C, H, W]``; return it as ``float32``."""
    if rows.ndim != 4 or rows.shape[1:] != spec.shape:
        raise InvalidInput(
            f"expected images of shape [batch, {', '.join(map(str, spec.shape))}], "
            f"got {list(rows.shape)}"
        )
    try:
        out = rows.astype(np.float32, copy=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"images must be numbers: {exc}") from exc
    if not np.isfinite(out).all():
        raise InvalidInput("images hold a value that is not a finite number")
    return out


def top_k(labels: Sequence[Any], probabilities: np.ndarray, k: int) -> list[dict[str, Any]]:
    """The ``k`` most probable classes of one row, most probable first."""
    order = np.argsort(-probabilities, kind="stable")[:k]
    return [{"label": labels[i], "probability": float(probabilities[i])} for i in order]
