"""Host shim (tests, demo, workflow builder): lets the CUDA build of torchvision import next to a CPU torch.

torchvision 0.28 (the only build for torch 2.13) registers fake kernels for its C++ ops at import.
With a CPU torch those ops were never defined and the import fails with
``operator torchvision::nms does not exist``. Defining the two op schemas first lets the pure-Python
parts of torchvision import. Users with a matching torch/torchvision pair never load this file.

The schemas are defined when torchvision is first imported, not at interpreter start: a current ComfyUI's
``main.py`` warns "Torch already imported" (and does its pre-torch set-up too late) when torch comes first.
"""
import sys

_OPS = (("nms", "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor"),
        ("qnms", "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor"))


def _define_torchvision_ops() -> None:
    try:
        import torch
    except ImportError:
        return
    if torch.version.cuda:  # a CUDA build of torch has a matching torchvision whose C++ library defines them
        return
    for name, schema in _OPS:
        try:
            torch.library.define(f"torchvision::{name}", schema)
        except RuntimeError:
            pass  # already defined (a real torchvision build with its C++ ops)


class _BeforeTorchvision:
    """A meta-path finder that finds nothing: it defines the op schemas the first time torchvision is looked up."""

    done = False

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name == "torchvision" and not cls.done:
            cls.done = True
            _define_torchvision_ops()
        return None


sys.meta_path.insert(0, _BeforeTorchvision)
