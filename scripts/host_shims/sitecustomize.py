"""Host shim (tests, demo, workflow builder): lets the CUDA build of torchvision import next to a CPU torch.

torchvision 0.28 (the only build for torch 2.13) registers fake kernels for its C++ ops at import.
With a CPU torch those ops were never defined and the import fails with
``operator torchvision::nms does not exist``. Defining the two op schemas first lets the pure-Python
parts of torchvision import. Users with a matching torch/torchvision pair never load this file.
"""
try:
    import torch

    # a CUDA build of torch has a matching torchvision whose C++ library defines these ops itself
    for _name, _schema in (() if torch.version.cuda else (
        ("nms", "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor"),
        ("qnms", "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor"),
    )):
        try:
            torch.library.define(f"torchvision::{_name}", _schema)
        except RuntimeError:
            pass  # already defined (a real torchvision build with its C++ ops)
except ImportError:
    pass
