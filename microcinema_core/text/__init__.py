"""Text encoders the core can run without ComfyUI (the toy bundle's frozen all-MiniLM-L6-v2)."""
