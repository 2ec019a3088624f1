"""The image part of a signature: the tensor an image model takes and how an encoded image
(PNG/JPEG) becomes that tensor.

In a model card::

    signature:
      input: image
      shape: [1, 8, 8]          # channels, height, width (batch excluded)
      top_k: 3                  # classes in each answer's top_k list (a request may ask for more)
      preprocessing:
        color: grayscale        # grayscale or rgb; default: from the channels
        resize: bilinear        # bilinear, bicubic, box, nearest, lanczos; none: exact size only
        invert: false           # 255 - pixel first (dark ink on a light page)
        scale: 0.00392156862745098   # then pixel * scale ...
        mean: [0.0]             # ... then (x - mean) / std, per channel (one value or C)
        std: [1.0]

Nested lists sent instead of an encoded image are the model's input tensor, preprocessed already.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["ImageSpec", "Preprocessing"]

Color = Literal["grayscale", "rgb"]
Resize = Literal["bilinear", "bicubic", "box", "nearest", "lanczos", "none"]


class Preprocessing(BaseModel):
    """How an encoded image becomes the model's input tensor."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    color: Color | None = Field(None, description="Default: grayscale for 1 channel, else rgb.")
    resize: Resize = Field("bilinear", description="Resampling filter to the model's size.")
    invert: bool = Field(False, description="Use 255 - pixel (dark ink on a light page).")
    scale: float = Field(1 / 255, gt=0, description="Pixel values 0..255 are multiplied by it.")
    mean: list[float] = Field(default_factory=lambda: [0.0], min_length=1)
    std: list[float] = Field(default_factory=lambda: [1.0], min_length=1)

    @model_validator(mode="after")
    def _positive_std(self) -> Preprocessing:
        if any(s <= 0 for s in self.std):
            raise ValueError(f"std must be positive, got {self.std}")
        return self


class ImageSpec(BaseModel):
    """An image input: its tensor shape ``[C, H, W]``, preprocessing and the default top-k."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    shape: tuple[int, int, int] = Field(description="Channels (1 or 3), height, width.")
    top_k: int = Field(3, ge=1, description="Classes listed in each answer's top_k.")
    preprocessing: Preprocessing = Field(default_factory=Preprocessing)

    @model_validator(mode="after")
    def _consistent(self) -> ImageSpec:
        channels, height, width = self.shape
        if channels not in (1, 3):
            raise ValueError(f"an image has 1 or 3 channels, the shape says {channels}")
        if height < 1 or width < 1:
            raise ValueError(f"image height and width must be positive, got {self.shape}")
        color = self.preprocessing.color
        if color is not None and (color == "rgb") != (channels == 3):
            raise ValueError(f"color {color} does not fit {channels} channel(s)")
        for key in ("mean", "std"):
            values = getattr(self.preprocessing, key)
            if len(values) not in (1, channels):
                raise ValueError(f"preprocessing.{key} needs 1 or {channels} values")
        return self

    @property
    def color(self) -> Color:
        return self.preprocessing.color or ("rgb" if self.shape[0] == 3 else "grayscale")
