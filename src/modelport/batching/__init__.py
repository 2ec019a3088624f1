"""Natural micro-batching: one generic scheduler per loaded model version."""

from modelport.batching.scheduler import Batcher, BatchPolicy

__all__ = ["BatchPolicy", "Batcher"]
