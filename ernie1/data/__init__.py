"""Layer 2: indexed files, the C++ index maps, masking, the pretraining dataset, blending, builder, collate, samplers."""
