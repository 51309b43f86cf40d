"""Layer 1: text -> token ids (CJK rule, segmentation, whole-word `##` marking, encoder, tokenizer, knowledge spans)."""
