"""MicroCinema checkpoint format, SD2.1 inflation errors, dtypes."""
import pytest
import torch
from safetensors.torch import save_file

from core_helpers import comfy_sd21_unet, randomize_new_layers_
from microcinema_core.config import MicroCinemaConfig
from microcinema_core.errors import CheckpointError
from microcinema_core.models.microcinema import MicroCinemaModel
from microcinema_core.weights.checkpoint import load_checkpoint, read_checkpoint_config, save_checkpoint
from microcinema_core.weights.sd21 import inflate_from_sd21


def _model(kind="base", injection="add_encdec_spade"):
    torch.manual_seed(0)
    model = MicroCinemaModel(MicroCinemaConfig.tiny(kind, injection=injection))
    randomize_new_layers_(model)
    return model


def _forward(model, dtype=torch.float32):
    g = torch.Generator().manual_seed(3)
    n = model.config.num_frames
    x = torch.randn(n, 4, 8, 8, generator=g)
    a = torch.randn(1, 4, 8, 8, generator=g).repeat(n, 1, 1, 1)
    c = torch.randn(1, 77, model.config.context_dim, generator=g)
    with torch.no_grad():
        return model(x.to(dtype), torch.tensor([400.0]), c.to(dtype), a.to(dtype), n).float()


@pytest.mark.parametrize("kind,injection", [("base", "add_encdec_spade"), ("tsr", "concat"), ("base", "add_dec")])
def test_round_trip_keeps_config_and_outputs(tmp_path, kind, injection):
    model = _model(kind, injection).eval()
    path = tmp_path / "m.safetensors"
    save_checkpoint(model, path, extra_metadata={"microcinema.trained_steps": 12})
    assert read_checkpoint_config(path) == model.config
    loaded = load_checkpoint(path)
    assert loaded.config.kind == kind and loaded.config.injection == injection
    assert loaded.config.noise_prior_lambda == 0.03
    assert torch.equal(_forward(model), _forward(loaded))
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]  # no temp file left


@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
def test_loads_in_half_precisions(tmp_path, dtype):
    model = _model().eval()
    save_checkpoint(model, tmp_path / "m.safetensors")
    loaded = load_checkpoint(tmp_path / "m.safetensors", dtype=dtype)
    want = {"fp16": torch.float16, "bf16": torch.bfloat16}[dtype]
    assert all(p.dtype == want for p in loaded.parameters())
    ref = _forward(model)
    got = _forward(loaded, want)
    assert (got - ref).abs().max().item() < 0.05 * ref.abs().max().item()


def test_truncated_file_is_named_as_truncated(tmp_path):
    path = tmp_path / "m.safetensors"
    save_checkpoint(_model(), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(path)


def test_missing_tensor_is_named(tmp_path):
    model = _model()
    tensors = {k: v.contiguous() for k, v in model.state_dict().items() if "temporal_conv_out" not in k}
    save_file(tensors, str(tmp_path / "m.safetensors"), metadata=model.config.to_metadata())
    with pytest.raises(CheckpointError, match="temporal_conv_out"):
        load_checkpoint(tmp_path / "m.safetensors")


def test_sd_checkpoint_in_microcinema_loader_says_which_loader(tmp_path):
    save_file({"model.diffusion_model.out.2.bias": torch.zeros(4)}, str(tmp_path / "sd21.safetensors"))
    with pytest.raises(CheckpointError, match="Inflate SD2.1"):
        load_checkpoint(tmp_path / "sd21.safetensors")


def test_tsr_file_in_base_slot(tmp_path):
    save_checkpoint(_model("tsr"), tmp_path / "tsr.safetensors")
    with pytest.raises(CheckpointError, match="TSR checkpoint"):
        load_checkpoint(tmp_path / "tsr.safetensors", expected_kind="base")


def test_sd15_unet_is_rejected_with_its_name():
    config = MicroCinemaConfig.tiny()
    sd15_like = comfy_sd21_unet(config.replace(context_dim=768)).state_dict()
    with pytest.raises(CheckpointError, match="SD1.x"):
        inflate_from_sd21(sd15_like, config)


def test_unrelated_file_is_rejected(tmp_path):
    save_file({"lora_unet_down_blocks_0.alpha": torch.zeros(1)}, str(tmp_path / "lora.safetensors"))
    with pytest.raises(CheckpointError, match="missing"):
        inflate_from_sd21(str(tmp_path / "lora.safetensors"), MicroCinemaConfig.tiny())
