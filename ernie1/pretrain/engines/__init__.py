"""Step engines: how one pretraining step runs in dygraph (`dygraph.py`) and as a static program (`static.py`)."""
