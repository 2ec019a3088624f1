"""What a model is, independent of how it is served: its card, signature, image specs, and the
integrity of its files. Every layer above reads these; they import no other modelport layer."""
