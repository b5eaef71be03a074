"""The one-command retrain: a few steps of every stage, resumable, deterministic by seed (smoke profile)."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from microcinema_core.training.caching import REVERSED_TEXT
from microcinema_core.experiments import bundle
from microcinema_core.toyworld.sources import load_or_gather
from microcinema_core.weights.checkpoint import load_checkpoint, read_checkpoint_config


@pytest.fixture(scope="module")
def sources_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("toy_sources") / "sources.npz"
    load_or_gather(path)
    return path


# every network phase of a profile, as model_run's (kind, flags)
NETWORK_PHASES = [("base", {}), ("base", {"refine": True}), ("base", {"motion": True}), ("base", {"static": True}),
                  ("tsr", {})]


def _run(out, sources_file, *extra):
    out.mkdir(parents=True, exist_ok=True)
    target = out / "sources.npz"
    if not target.exists():
        target.write_bytes(sources_file.read_bytes())
    return bundle.main(["--out", str(out), "--profile", "smoke", "--device", "cpu", *extra])


def test_every_stage_runs_resumes_and_installs(tmp_path, sources_file):
    out = tmp_path / "run"
    # interrupted after the base cache ...
    assert _run(out, sources_file, "--stop-after", "cache_base") == 0
    record = json.loads((out / "bundle.json").read_text())
    assert list(record["stages"]) == ["sources", "vae", "cache_base"]
    # the base cache films stills of the training videos as the profile asks (Profile.video_stills), the TSR's none
    pictures = [clip["picture"] for clip in json.loads((out / "cache_base" / "manifest.json").read_text())["clips"]]
    assert any("#" in p for p in pictures) and any("#" not in p for p in pictures), pictures
    vae_before = load_file(str(out / "vae" / "vae.safetensors"))
    # ... the same command again finishes the rest without redoing what is done (probing each phase's end only)
    assert _run(out, sources_file, "--install", str(tmp_path / "models"), "--probes", "last") == 0
    record = json.loads((out / "bundle.json").read_text())
    assert list(record["stages"]) == ["sources", "vae", "cache_base", "base", "base_refine", "base_motion",
                                      "base_static", "cache_tsr", "tsr"]
    assert all(stage["done"] for stage in record["stages"].values())
    tsr_clips = json.loads((out / "cache_tsr" / "manifest.json").read_text())["clips"]
    assert not any("#" in clip["picture"] for clip in tsr_clips)
    assert record["stages"]["base"]["steps"] == bundle.PROFILES["smoke"].base_steps
    # the second base phase starts from the first phase's export, with the high-noise emphasis on
    refine = record["stages"]["base_refine"]
    assert refine["init"] == str(out / "base" / bundle.FILES["base"]) and refine["high_noise_fraction"] > 0
    assert refine["prediction"] == "v" and read_checkpoint_config(out / "base" / bundle.FILES["base"]).prediction == "eps"
    assert torch.equal(load_file(str(out / "vae" / "vae.safetensors"))["taesd_encoder.0.weight"],
                       vae_before["taesd_encoder.0.weight"])
    probes = record["probes"]
    assert {"probe_agreement", "probe_keyframe_psnr", "probe_mean_error"} <= set(probes["base"][-1])
    assert {"text_gap_t999", "text_right_wins_t999"} <= set(probes["base_refine"][-1])
    # the third phase grows the refine phase's export by the text-and-frame embedding
    motion = record["stages"]["base_motion"]
    assert motion["init"] == str(out / "base_refine" / bundle.FILES["base"]) and motion["text_frame_embedding"]
    assert motion["reverse_rate"] == 0.5 and (out / "cache_base" / REVERSED_TEXT).exists()
    assert not read_checkpoint_config(out / "base_refine" / bundle.FILES["base"]).text_frame_embedding
    assert {"text_gap_t999", "probe_agreement"} <= set(probes["base_motion"][-1])
    # the fourth phase continues the third's export, the empty prompt trained as "no motion"
    static = record["stages"]["base_static"]
    assert static["init"] == str(out / "base_motion" / bundle.FILES["base"]) and static["static_when_dropped"]
    assert static["motion_repeats"] == bundle.PROFILES["smoke"].static_repeats and static["reverse_rate"] == 0.5
    assert json.loads((out / "base_static" / "run_config.json").read_text())["train"]["static_when_dropped"]
    assert {"probe_tsr_psnr", "probe_blend_psnr", "probe_latent_blend_psnr"} <= set(probes["tsr"][-1])
    smoke = bundle.PROFILES["smoke"]
    assert {phase: [p["step"] for p in rows] for phase, rows in probes.items()} == {
        "base": [smoke.base_steps], "base_refine": [smoke.refine_steps], "base_motion": [smoke.motion_steps],
        "base_static": [smoke.static_steps], "tsr": [smoke.tsr_steps]}
    # the installed files: fp16 MicroCinema checkpoints with the training recipe in their metadata

    for kind in ("base", "tsr"):
        path = tmp_path / "models" / "microcinema" / bundle.FILES[kind]
        config = read_checkpoint_config(path)
        assert config.kind == kind and config.context_dim == 384 and config.resolution == 128
        # the refine phase switches the base to v; the TSR corrects the interpolation (Profile.tsr_prediction)
        assert config.prediction == ("v" if kind == "base" else "x0_residual")
        assert config.text_frame_embedding == config.zero_terminal_snr == (kind == "base")
        assert load_checkpoint(path).unet.out[2].weight.dtype == torch.float16
    # the shipped base is the last phase's export
    shipped = load_file(str(tmp_path / "models" / "microcinema" / bundle.FILES["base"]))
    refined = load_file(str(out / "base_static" / bundle.FILES["base"]))
    assert all(torch.equal(shipped[k], refined[k].half()) for k in refined if refined[k].is_floating_point())
    installed_vae = load_file(str(tmp_path / "models" / "vae" / bundle.FILES["vae"]))
    assert float(installed_vae["vae_shift"]) == 0.0 and float(installed_vae["vae_scale"]) > 0
    # a training folder's checkpoint validates as the model its export ships (EMA weights), on other cases
    from microcinema_core.experiments import validate

    model, step = validate.model_from_run(out / "base_static")
    assert step == bundle.PROFILES["smoke"].static_steps
    assert all(torch.equal(p.half(), shipped[n]) for n, p in model.state_dict().items() if p.is_floating_point())
    with pytest.raises(FileNotFoundError, match="--run"):
        validate.model_from_run(out / "base_static", step=999)


def test_vae_training_resumes_to_the_same_weights(tmp_path, sources_file):
    from microcinema_core.toyworld.sources import Sources
    from microcinema_core.vae.training import STATE, VAETrainConfig, train_vae

    sources = Sources.load(sources_file)
    cfg = VAETrainConfig(steps=3, batch_size=2, save_every=1, calibration_crops=2, warmup=1)
    train_vae(sources, tmp_path / "straight", cfg)
    train_vae(sources, tmp_path / "resumed", cfg, stop_at=1)
    assert torch.load(tmp_path / "resumed" / STATE, weights_only=True)["step"] == 1
    train_vae(sources, tmp_path / "resumed", cfg)
    a = load_file(str(tmp_path / "straight" / "vae.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "vae.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_decoder_only_vae_phase_keeps_the_encoder_and_its_scale(tmp_path, sources_file):
    from microcinema_core.toyworld.sources import Sources
    from microcinema_core.vae.training import VAETrainConfig, train_vae

    sources = Sources.load(sources_file)
    first = train_vae(sources, tmp_path / "first", VAETrainConfig(steps=2, batch_size=2, size=32,
                                                                  calibration_crops=2, warmup=1))
    with pytest.raises(ValueError, match="init"):
        train_vae(sources, tmp_path / "no_init", VAETrainConfig(steps=1, train_encoder=False))
    second = train_vae(sources, tmp_path / "second", VAETrainConfig(
        steps=2, batch_size=2, size=32, calibration_crops=2, warmup=1, init=str(first), train_encoder=False,
        lr=1e-2, seed=5))
    a, b = load_file(str(first)), load_file(str(second))
    encoder = [k for k in a if k.startswith("taesd_encoder.")]
    decoder = [k for k in a if k.startswith("taesd_decoder.")]
    assert encoder and decoder
    assert all(torch.equal(a[k], b[k]) for k in encoder) and torch.equal(a["vae_scale"], b["vae_scale"])
    assert not all(torch.equal(a[k], b[k]) for k in decoder)


def test_an_anchored_vae_phase_trains_the_encoder_near_the_old_latent_space_and_keeps_its_scale(tmp_path, sources_file):
    from microcinema_core.toyworld.sources import Sources
    from microcinema_core.vae.taesd_layout import ToyVAE
    from microcinema_core.vae.training import VAETrainConfig, train_vae

    sources = Sources.load(sources_file)
    small = dict(batch_size=2, size=32, calibration_crops=2, warmup=1)
    first = train_vae(sources, tmp_path / "first", VAETrainConfig(steps=2, **small))
    with pytest.raises(ValueError, match="init"):
        train_vae(sources, tmp_path / "no_init", VAETrainConfig(steps=1, anchor_weight=1.0))
    later = {weight: train_vae(sources, tmp_path / f"anchor_{weight}", VAETrainConfig(
        steps=3, init=str(first), lr=1e-3, seed=5, anchor_weight=weight, **small)) for weight in (0.0, 100.0)}
    images = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    old = ToyVAE.load(first)
    with torch.no_grad():
        drift = {w: float((ToyVAE.load(f).encoder(images) - old.encoder(images)).pow(2).mean()) for w, f in later.items()}
    anchored = load_file(str(later[100.0]))
    assert torch.equal(anchored["vae_scale"], load_file(str(first))["vae_scale"])   # the latent scale kept
    assert 0.0 < drift[100.0] < 0.5 * drift[0.0], drift   # the encoder learns, nearer its old outputs


def test_single_phase_profile_trains_the_base_from_scratch_with_the_final_settings(tmp_path):
    from dataclasses import replace

    profile = replace(bundle.PROFILES["smoke"], single_phase=True, refine_steps=0, motion_steps=0, static_steps=0)
    run = bundle.model_run("base", profile, tmp_path, seed=0, device="cpu")
    train = run.train
    assert train.init is None and train.output_dir == str(tmp_path / "base") and train.seed == 0
    assert train.max_steps == profile.base_steps and train.warmup_steps == profile.warmup
    assert train.model_overrides["prediction"] == "v"
    assert train.model_overrides["text_frame_embedding"] and train.model_overrides["zero_terminal_snr"]
    assert train.high_noise_fraction == profile.refine_fraction and train.high_noise_from == profile.refine_from
    assert train.reverse_rate == profile.motion_reverse_rate and train.static_when_dropped
    assert train.motion_repeats == profile.static_repeats
    assert bundle.final_model_dir(tmp_path, "base", profile) == tmp_path / "base"
    # the TSR run of the same profile: no text, no reversal, the interpolation-correcting head
    tsr = bundle.model_run("tsr", profile, tmp_path, seed=0, device="cpu").train
    assert tsr.text_drop_rate == 1.0 and not tsr.static_when_dropped and tsr.reverse_rate == 0.0
    assert tsr.model_overrides["prediction"] == profile.tsr_prediction == "x0_residual"
    # a single-phase profile with later phases is a contradiction, refused by name
    with pytest.raises(ValueError, match="single-phase"):
        bundle.model_run("base", replace(profile, motion_steps=5), tmp_path, seed=0, device="cpu")
    assert bundle.PROFILES["cpu3h"].single_phase


def test_a_profile_without_refine_starts_the_motion_phase_from_phase_one(tmp_path):
    from dataclasses import replace

    profile = replace(bundle.PROFILES["smoke"], refine_steps=0, motion_steps=3, static_steps=2)
    motion = bundle.model_run("base", profile, tmp_path, seed=0, device="cpu", motion=True).train
    assert motion.init == str(tmp_path / "base" / bundle.FILES["base"])
    assert motion.output_dir == str(tmp_path / "base_motion") and motion.max_steps == 3
    assert motion.model_overrides["prediction"] == "v" and motion.model_overrides["zero_terminal_snr"]
    assert motion.high_noise_fraction == profile.refine_fraction and motion.reverse_rate == profile.motion_reverse_rate
    static = bundle.model_run("base", profile, tmp_path, seed=0, device="cpu", static=True).train
    assert static.init == str(tmp_path / "base_motion" / bundle.FILES["base"]) and static.static_when_dropped
    assert bundle.final_model_dir(tmp_path, "base", profile) == tmp_path / "base_static"
    # with a refine phase, the motion phase starts from the refine phase's export (the shipped recipe)
    with_refine = bundle.model_run("base", bundle.PROFILES["cpu"], tmp_path, seed=0, device="cpu", motion=True).train
    assert with_refine.init == str(tmp_path / "base_refine" / bundle.FILES["base"])


def test_motion_lr_sets_the_motion_and_static_phases_rate_only(tmp_path):
    profile = bundle.PROFILES["cpu_trimmed_lr"]
    rates = {phase: bundle.model_run("base", profile, tmp_path, seed=0, device="cpu", **flags).train.lr
             for phase, flags in (("eps", {}), ("refine", {"refine": True}), ("motion", {"motion": True}),
                                  ("static", {"static": True}))}
    assert rates == {"eps": profile.lr, "refine": profile.lr, "motion": 1e-3, "static": 1e-3}
    shipped = bundle.model_run("base", bundle.PROFILES["cpu"], tmp_path, seed=0, device="cpu", static=True).train
    assert bundle.PROFILES["cpu"].motion_lr == 0 and shipped.lr == bundle.PROFILES["cpu"].lr == 5e-4


def test_the_cpu_profile_trains_its_networks_in_bf16_where_the_cpu_has_it_and_in_fp32_elsewhere(tmp_path, monkeypatch):
    """bf16 validated at 84.3 %, fp32 at 67.6 / 66.7 % (docs/model_cards.md, "bf16 from scratch"); on a CPU
    without native bf16 it runs ~100x slower, so the cpu profile follows the CPU ("auto")."""
    cpu = bundle.PROFILES["cpu"]
    for native in ("bf16", "fp32"):
        monkeypatch.setattr(bundle, "training_precision", lambda device, native=native: native)
        assert {bundle.model_run(kind, cpu, tmp_path, 0, "cpu", **flags).train.precision
                for kind, flags in NETWORK_PHASES} == {native}
    gpu = bundle.model_run("base", bundle.PROFILES["gpu"], tmp_path, 0, "cpu").train
    assert bundle.PROFILES["gpu"].precision == "auto" and gpu.precision == "fp32"
    from dataclasses import replace

    with pytest.raises(ValueError, match="Profile.precision"):
        bundle.model_run("base", replace(cpu, precision="fp16"), tmp_path, 0, "cpu")


@pytest.mark.parametrize("name, precision", [("cpu_bf16", "bf16"), ("cpu_fp32", "fp32")])
def test_the_forced_precision_profiles_are_the_cpu_profile_with_every_network_phase_in_one_precision(
        tmp_path, monkeypatch, name, precision):
    """cpu_bf16 / cpu_fp32 measure the precision alone (docs/model_cards.md, "bf16 from scratch"): every other
    setting, and every phase's run settings but the precision, are the cpu profile's."""
    from dataclasses import asdict

    monkeypatch.setattr(bundle, "training_precision", lambda device: "bf16")   # a CPU with native bf16
    cpu, forced = bundle.PROFILES["cpu"], bundle.PROFILES[name]
    assert {k: v for k, v in asdict(forced).items() if asdict(cpu)[k] != v} == {"precision": precision}
    for kind, flags in NETWORK_PHASES:
        ours = asdict(bundle.model_run(kind, forced, tmp_path, 0, "cpu", **flags).train)
        theirs = asdict(bundle.model_run(kind, cpu, tmp_path, 0, "cpu", **flags).train)
        assert ours.pop("precision") == precision and theirs.pop("precision") == "bf16"
        assert ours == theirs, (kind, flags)


def test_a_stopped_stage_keeps_its_time_and_the_resumed_stage_adds_to_it(tmp_path):
    """The budget is the sum of the stages' seconds (docs/model_cards.md): a stage stopped by Ctrl-C or SIGTERM
    records the time it ran, not done, and its resumption adds its own time to that."""
    import time

    run = bundle.Bundle(tmp_path, bundle.PROFILES["smoke"], 0, "cpu", None)

    def stopped():
        time.sleep(0.2)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run._stage("base", stopped)
    first = json.loads((tmp_path / "bundle.json").read_text())["stages"]["base"]
    assert first["done"] is False and first["seconds"] >= 0.2
    resumed = bundle.Bundle(tmp_path, bundle.PROFILES["smoke"], 0, "cpu", None)
    resumed._stage("base", lambda: (time.sleep(0.3), {"steps": 2})[1])
    second = json.loads((tmp_path / "bundle.json").read_text())["stages"]["base"]
    assert second["done"] is True and second["steps"] == 2 and second["seconds"] >= first["seconds"] + 0.25


def test_sigterm_stops_the_command_through_the_stage_record_and_restores_the_handler(tmp_path, monkeypatch):
    import os
    import signal

    before = signal.getsignal(signal.SIGTERM)

    def terminated(self, stop_after, only=None):
        self._stage("vae", lambda: os.kill(os.getpid(), signal.SIGTERM))

    monkeypatch.setattr(bundle.Bundle, "run", terminated)
    with pytest.raises(SystemExit) as stopped:
        bundle.main(["--out", str(tmp_path), "--profile", "smoke", "--device", "cpu"])
    assert stopped.value.code == 128 + signal.SIGTERM
    assert json.loads((tmp_path / "bundle.json").read_text())["stages"]["vae"]["done"] is False
    assert signal.getsignal(signal.SIGTERM) == before


def test_probes_last_scores_each_phase_once_and_trains_the_same_weights(tmp_path, sources_file):
    """--probes last (the budget run) skips the probes of all but each phase's last checkpoint; the probes only
    score, so the weights are those of a run that probes every checkpoint."""
    import shutil

    shared = tmp_path / "shared"
    assert _run(shared, sources_file, "--stop-after", "cache_base") == 0   # one VAE and cache for both runs
    records, weights = {}, {}
    for mode in ("every", "last"):
        out = tmp_path / mode
        shutil.copytree(shared, out)
        assert _run(out, sources_file, "--stop-after", "base", "--probes", mode) == 0
        records[mode] = json.loads((out / "bundle.json").read_text())
        weights[mode] = load_file(str(out / "base" / bundle.FILES["base"]))
    steps = bundle.PROFILES["smoke"].base_steps
    assert [p["step"] for p in records["every"]["probes"]["base"]] == list(range(1, steps + 1))
    assert [p["step"] for p in records["last"]["probes"]["base"]] == [steps]
    assert records["last"]["stages"]["base"]["probes"] == "last"
    assert weights["every"].keys() == weights["last"].keys()
    assert all(torch.equal(weights["every"][k], weights["last"][k]) for k in weights["every"])
    with pytest.raises(SystemExit):
        bundle.main(["--out", str(tmp_path / "x"), "--profile", "smoke", "--probes", "sometimes"])


def test_the_tsr_alone_retrains_on_a_given_vae_and_installs_only_its_file(tmp_path, sources_file):
    """``--vae FILE --only tsr``: the shipped TSR's own command (docs/model_cards.md) on the smoke profile."""
    from pathlib import Path

    shipped_vae = Path(__file__).resolve().parent.parent / "models" / "vae" / "microcinema_toy_vae.safetensors"
    # without a trained VAE the TSR alone is refused, by name, before anything runs
    with pytest.raises(ValueError, match="needs a trained VAE: pass --vae FILE"):
        _run(tmp_path / "bare", sources_file, "--only", "tsr")
    # a --vae that is not a toy VAE (here the TSR model) is refused by name, before anything runs
    tsr_file = shipped_vae.parent.parent / "microcinema" / bundle.FILES["tsr"]
    with pytest.raises(ValueError, match="has no taesd_encoder.* tensors: it is not a toy VAE"):
        _run(tmp_path / "wrong", sources_file, "--vae", str(tsr_file), "--only", "tsr")
    assert not (tmp_path / "wrong" / "vae").exists()
    out, models = tmp_path / "run", tmp_path / "models"
    assert _run(out, sources_file, "--vae", str(shipped_vae), "--only", "tsr", "--install", str(models)) == 0
    record = json.loads((out / "bundle.json").read_text())
    assert list(record["stages"]) == ["vae", "sources", "cache_tsr", "tsr"]
    assert record["stages"]["vae"]["from"] == str(shipped_vae)
    assert record["stages"]["tsr"]["prediction"] == "x0_residual"
    assert (out / "vae" / "vae.safetensors").read_bytes() == shipped_vae.read_bytes()
    assert sorted(p.name for p in models.rglob("*.safetensors")) == [bundle.FILES["tsr"]]
    assert read_checkpoint_config(models / "microcinema" / bundle.FILES["tsr"]).prediction == "x0_residual"
    # another VAE for the same run folder would mix latents of two VAEs: refused, nothing overwritten
    from safetensors.torch import load_file, save_file

    other = tmp_path / "other_vae.safetensors"
    save_file({k: v * 2 for k, v in load_file(str(shipped_vae)).items()}, str(other))
    with pytest.raises(ValueError, match="already has another VAE"):
        _run(out, sources_file, "--vae", str(other), "--only", "tsr")
    assert (out / "vae" / "vae.safetensors").read_bytes() == shipped_vae.read_bytes()


def _record_the_64px_lineage_as_done(out):
    """A random 64-px base export and VAE, recorded as done by hand (how the first 128-px run started from the
    shipped 64-px lineage): the high-resolution stages alone are what this test trains."""
    from microcinema_core.config import MicroCinemaConfig
    from microcinema_core.models.microcinema import MicroCinemaModel
    from microcinema_core.vae.taesd_layout import ToyVAE
    from microcinema_core.weights.checkpoint import save_checkpoint
    from safetensors.torch import save_file

    torch.manual_seed(0)
    config = MicroCinemaConfig.tiny("base").replace(**bundle.TOY_MODEL, prediction="v", zero_terminal_snr=True,
                                                    text_frame_embedding=True, num_frames=9, resolution=64)
    (out / "base_static").mkdir()
    save_checkpoint(MicroCinemaModel(config), out / "base_static" / bundle.FILES["base"], dtype="fp16")
    (out / "vae").mkdir()
    save_file(ToyVAE().comfy_state_dict(), str(out / "vae" / "vae.safetensors"))
    stages = ["sources", "vae", "cache_base", "base", "base_refine", "base_motion", "base_static"]
    (out / "bundle.json").write_text(json.dumps({"seed": 0, "stages": {n: {"done": True, "seconds": 0} for n in stages}}))


def test_the_high_resolution_stages_follow_the_first_ones_and_install_their_files(tmp_path, sources_file):
    out = tmp_path / "run128"
    out.mkdir()
    (out / "sources.npz").write_bytes(sources_file.read_bytes())
    profile = bundle.PROFILES["smoke128"]
    _record_the_64px_lineage_as_done(out)
    assert bundle.main(["--out", str(out), "--profile", "smoke128", "--device", "cpu", "--stop-after",
                        "vae_hires"]) == 0
    assert bundle.main(["--out", str(out), "--profile", "smoke128", "--device", "cpu", "--install",
                        str(tmp_path / "models")]) == 0
    record = json.loads((out / "bundle.json").read_text())
    # the 64-px stages (recorded as done, as the first 128-px run took the shipped lineage), then the second VAE's, the 128-px base and the TSR (the 64-px TSR is left out)
    assert list(record["stages"]) == ["sources", "vae", "cache_base", "base", "base_refine", "base_motion",
                                      "base_static", "vae_hires_a", "vae_hires", "cache_base_hires", "base_hires",
                                      "base_gamma", "cache_tsr_hires", "tsr_hires", "vae_hires_decoder",
                                      "cache_custom_pairs", "cache_unannotated", "custom"]
    stages = record["stages"]
    assert stages["vae_hires_a"]["init"] is None and stages["vae_hires"]["init"].endswith("vae_hires_a/vae_state.pt")
    assert stages["vae_hires"]["crop_px"] == profile.hires_size and "heldout_ssim" in stages["vae_hires"]
    assert stages["base_hires"]["init"] == str(out / "base_static" / bundle.FILES["base"])
    config = read_checkpoint_config(out / "base_hires" / bundle.FILES["base"])
    assert config.resolution == profile.hires_size and config.prediction == "v" and config.zero_terminal_snr
    # the gamma phase goes on from base_hires's export with the stronger coupling, and is what ships
    assert stages["base_gamma"]["init"] == str(out / "base_hires" / bundle.FILES["base"])
    assert bundle.shipped_model_path(out, "base", profile) == out / "base_gamma" / bundle.FILES["base"]
    clips = json.loads((out / "cache_base_hires" / "manifest.json").read_text())["clips"]
    assert len({clip["amplitude"] for clip in clips}) > 1                       # the hidden amplitude, per clip
    tsr_clips = json.loads((out / "cache_tsr_hires" / "manifest.json").read_text())["clips"]
    lo, hi = 2 ** -profile.amplitude_octaves, 2 ** profile.amplitude_octaves   # the base's range, times the scale
    assert all(lo * 0.9 <= clip["amplitude"] / profile.hires_tsr_amplitude <= hi * 1.1 for clip in tsr_clips)
    # the last VAE phase trains the decoder alone: the latent space the networks learnt on stays
    assert stages["vae_hires_decoder"]["decoder_only"] and stages["vae_hires_decoder"]["init"].endswith(
        "vae_hires/vae.safetensors")
    second = load_file(str(out / "vae_hires" / "vae.safetensors"))
    trained = load_file(str(out / "vae_hires_decoder" / "vae.safetensors"))
    assert all(torch.equal(second[k], trained[k]) for k in second if not k.startswith("taesd_decoder."))
    # what is installed is that VAE and the high-resolution networks
    installed = load_file(str(tmp_path / "models" / "vae" / bundle.FILES["vae"]))
    assert torch.equal(installed["taesd_decoder.1.weight"], trained["taesd_decoder.1.weight"].half())
    base = load_checkpoint(tmp_path / "models" / "microcinema" / bundle.FILES["base"], dtype="fp32")
    assert base.config.resolution == profile.hires_size
    tsr = load_checkpoint(tmp_path / "models" / "microcinema" / bundle.FILES["tsr"], dtype="fp32")
    assert tsr.config.kind == "tsr" and tsr.config.resolution == profile.hires_size
    # the subject-driven model (issue 36): from the shipped base, on its pairs and unannotated clips
    assert stages["custom"]["init"] == str(out / "base_gamma" / bundle.FILES["base"])
    assert stages["cache_custom_pairs"]["pairs"] == profile.custom_pairs
    assert stages["cache_unannotated"]["clips"] == profile.custom_videos and not stages["cache_unannotated"]["captions_used"]
    run_config = json.loads((out / "custom" / "run_config.json").read_text())["train"]
    assert run_config["customisation_cache_dir"] == str(out / "cache_custom_pairs")
    assert run_config["token_drop_rate"] == profile.custom_token_drop and run_config["motion_repeats"] == {}
    custom = load_checkpoint(tmp_path / "models" / "microcinema" / bundle.FILES["custom"], dtype="fp32")
    assert custom.config.appearance_input == "subject" and custom.config.resolution == profile.hires_size




def test_a_phase_started_from_a_kept_file_runs_the_steps_left_and_keeps_the_start_on_resume(tmp_path, monkeypatch):
    """--start-from: an interrupted run's committed export goes on, on a machine without its checkpoints (the
    trainer itself is replaced: what is checked is the run it is given and what the record keeps)."""
    from types import SimpleNamespace

    from microcinema_core.training import trainer
    from microcinema_core.vae.taesd_layout import ToyVAE
    from safetensors.torch import save_file

    out = tmp_path / "run128"
    out.mkdir()
    _record_the_64px_lineage_as_done(out)
    record = json.loads((out / "bundle.json").read_text())
    for name in ("vae_hires_a", "vae_hires", "cache_base_hires"):
        record["stages"][name] = {"done": True, "seconds": 0}
    (out / "bundle.json").write_text(json.dumps(record))
    (out / "vae_hires").mkdir()
    save_file(ToyVAE().comfy_state_dict(), str(out / "vae_hires" / "vae.safetensors"))
    (out / "cache_base_hires").mkdir()
    (out / "cache_base_hires" / REVERSED_TEXT).write_text("{}")
    kept = out / "base_static" / bundle.FILES["base"]        # stands for the export of an interrupted run
    runs = []

    def fake_train(run, device, on_checkpoint):
        runs.append(run.train)
        return SimpleNamespace(step=run.train.max_steps, export_path=Path(run.train.output_dir) / "x.safetensors")

    monkeypatch.setattr(trainer, "train", fake_train)
    monkeypatch.setitem(bundle.PROFILES, "smoke128x5", replace(bundle.PROFILES["smoke128"], hires_steps=5))
    with pytest.raises(SystemExit, match="PHASE=FILE@STEPS"):
        bundle.main(["--out", str(out), "--profile", "smoke128x5", "--start-from", f"base_hires={kept}"])
    with pytest.raises(ValueError, match="nothing left"):
        bundle.main(["--out", str(out), "--profile", "smoke128x5", "--start-from", f"base_hires={kept}@5"])
    with pytest.raises(ValueError, match="not a network phase"):
        bundle.main(["--out", str(out), "--profile", "smoke128x5", "--start-from", f"base_hire={kept}@1"])
    assert not runs
    assert bundle.main(["--out", str(out), "--profile", "smoke128x5", "--device", "cpu", "--stop-after", "base_hires",
                        "--start-from", f"base_hires={kept}@2"]) == 0
    first = runs[0]
    assert first.init == str(kept) and first.max_steps == 3 and first.warmup_steps <= 50
    assert first.seed == bundle.model_run("base", bundle.PROFILES["smoke128x5"], out, 0, "cpu", hires=True).train.seed + 2
    stage = json.loads((out / "bundle.json").read_text())["stages"]["base_hires"]
    assert stage["started_from"] == {"file": str(kept), "steps": 2} and stage["steps"] == 5
    # a resumed invocation keeps the start without being told again; another start for the phase is refused
    record = json.loads((out / "bundle.json").read_text())
    record["stages"].pop("base_hires")
    (out / "bundle.json").write_text(json.dumps(record))
    assert bundle.main(["--out", str(out), "--profile", "smoke128x5", "--device", "cpu", "--stop-after",
                        "base_hires"]) == 0
    assert runs[1].init == str(kept) and runs[1].max_steps == 3
    with pytest.raises(ValueError, match="already started base_hires"):
        bundle.main(["--out", str(out), "--profile", "smoke128x5", "--start-from", f"base_hires={kept}@1"])
