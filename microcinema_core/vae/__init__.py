"""The toy bundle's small VAE: the TAESD layout (so ComfyUI's stock VAELoader takes it), trained here."""
