"""Development tools run from the repository root (``python -m scripts.<name>``): the ComfyUI host launcher
(``comfy_host``), the web-UI driver (``browser``), the demo (``demo``), toy stand-in files (``toy_standins``).
ComfyUI never imports this package; the pack is ``__init__.py`` + ``nodes/`` + ``microcinema_core/``."""
