"""Test-host stand-in for torchaudio where no torchaudio build matches the installed torch (torch 2.13 CPU here).

A current ComfyUI imports torchaudio while it starts (``comfy/sd.py`` -> the LTX audio VAE); this pack never uses
audio. ``scripts/setup_current_host.sh`` puts this folder AFTER site-packages (a ``.pth`` file), so a real
torchaudio always wins. Anything used from it raises, naming the cause.
"""


def __getattr__(name):
    raise RuntimeError(f"torchaudio.{name}: torchaudio is not installed for this torch (a test host's stand-in); "
                       "ComfyUI's audio nodes cannot run here")
