"""modelport's benchmark against the tutorial's reference app: ``python -m bench``."""
