"""Layer 4: fine-tuning tasks (read, encode, decode, metrics, labels), shared by fine-tuning and deployment."""
