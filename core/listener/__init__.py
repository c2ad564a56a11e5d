"""The listening avatar (after DiTaiListener, in motion space): speaker audio features, the
documented behaviour model, composed training pairs from real recordings, a diffusion
transformer with a causal temporal adapter (core.diffusion for schedules, loss and sampling),
segment generation with join refinement, live listening, metrics and evaluation."""
