"""Layer 3: pretraining config, model, optimisation, checkpoint, metrics, the one loop and its step engines."""
