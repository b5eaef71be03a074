"""Writing videos to files: ``writer.py`` (mp4 / webp / gif, atomically; the Save Video node's encoder)."""
