"""The in-house shapes model: synthetic data, training and evaluation (see
foi_engine/models/shapes/MODEL_CARD.md)."""
