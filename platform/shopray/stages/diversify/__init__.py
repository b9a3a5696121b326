"""Stage 4, diversify: MMR, DPP, caps and a sliding window, one per file, with a per-request knob."""
