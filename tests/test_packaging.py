"""pyproject.toml (Comfy Registry, ComfyUI-Manager, pip) agrees with requirements.txt and carries the metadata."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def normalise(requirement: str) -> str:
    """``Name>=1.0`` -> ``name>=1.0``: PEP 503 name, no spaces (what pip compares)."""
    requirement = requirement.replace(" ", "")
    name = re.match(r"[A-Za-z0-9._-]+", requirement).group(0)
    return re.sub(r"[-_.]+", "-", name).lower() + requirement[len(name):]


def requirements_txt() -> list[str]:
    lines = []
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            lines.append(normalise(line))
    return lines


def test_dependencies_equal_requirements_txt():
    deps = [normalise(d) for d in pyproject()["project"]["dependencies"]]
    assert deps == requirements_txt()


def test_project_metadata():
    project = pyproject()["project"]
    assert re.fullmatch(r"[A-Za-z][A-Za-z0-9._-]*", project["name"]) and "comfyui" not in project["name"].lower()
    assert re.fullmatch(r"\d+\.\d+\.\d+", project["version"])  # the registry wants X.Y.Z
    assert len(project["description"]) > 20
    assert set(project["license"]) <= {"text", "file"} and all(project["license"].values())
    assert (ROOT / project["readme"]).is_file()


def test_tool_comfy_section():
    comfy = pyproject()["tool"]["comfy"]
    assert {"PublisherId", "DisplayName", "Icon"} <= comfy.keys()
    assert re.fullmatch(r"[a-z0-9][a-z0-9-]*", comfy["PublisherId"])
    assert "MicroCinema" in comfy["DisplayName"]
    icon = comfy["Icon"]
    assert icon.startswith("https://") or (ROOT / icon).is_file(), icon


def test_pip_installs_the_core_package_only():
    """``pip install .`` ships ``microcinema_core`` (plain PyTorch); never a top-level ``nodes`` (ComfyUI's name)."""
    find = pyproject()["tool"]["setuptools"]["packages"]["find"]
    assert find["include"] == ["microcinema_core", "microcinema_core.*"]
    assert (ROOT / "microcinema_core" / "__init__.py").is_file()


def test_pip_install_dot_in_a_fresh_venv(tmp_path):
    """A real ``pip install .`` from pyproject.toml into a new venv (``--no-deps``: torch and the rest are the
    host's); the installed files are the core package and its metadata names the same requirements."""
    import shutil
    import subprocess
    import venv

    source = tmp_path / "source"   # a copy: setuptools writes build/ and *.egg-info next to pyproject.toml
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", ".venv", "runs", "out", "__pycache__",
                                                                "node_modules", "build", "*.egg-info"))
    venv.EnvBuilder(with_pip=True).create(tmp_path / "venv")
    python = tmp_path / "venv" / "bin" / "python"
    done = subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", str(source)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    shown = subprocess.run([str(python), "-m", "pip", "show", "-f", "microcinema"], capture_output=True, text=True,
                           timeout=60).stdout
    files = [line.strip() for line in shown.splitlines() if line.startswith("  ")]
    assert "microcinema_core/config.py" in files and "microcinema_core/models/microcinema.py" in files
    assert not any(f.startswith("nodes/") for f in files)
    requires = next(line for line in shown.splitlines() if line.startswith("Requires:"))
    assert {r.strip() for r in requires.split(":", 1)[1].split(",")} >= {"torch", "safetensors", "einops", "imageio"}


def test_the_embedded_bundle_is_safetensors_only_and_at_most_64_mb():
    """The pack's registered models folder ships the four toy files, safetensors only, 64 MB together at most
    (issue 36: the image-to-video bundle's 50 MB of issue 7 plus the subject-driven model); this keeps a fifth file
    or a bigger network from slipping in unnoticed."""
    files = sorted(p for p in (ROOT / "models").rglob("*") if p.is_file())
    assert [p.relative_to(ROOT / "models").as_posix() for p in files] == [
        "microcinema/microcinema_toy_base.safetensors", "microcinema/microcinema_toy_custom.safetensors",
        "microcinema/microcinema_toy_tsr.safetensors", "vae/microcinema_toy_vae.safetensors"]
    image_to_video = [p for p in files if "custom" not in p.name]
    assert sum(p.stat().st_size for p in image_to_video) <= 50_000_000
    assert sum(p.stat().st_size for p in files) <= 64_000_000


def test_the_suite_runs_in_a_folder_named_like_an_installed_pack(tmp_path):
    """Packs are cloned as custom_nodes/ComfyUI-MicroCinema: pytest must not trip over the root ``__init__.py``
    there (it imports it with no parent package when the folder's name is no Python name; issue 37)."""
    import shutil
    import subprocess
    import sys

    clone = tmp_path / "ComfyUI-MicroCinema"
    clone.mkdir()
    for name in ("__init__.py", "pytest.ini"):
        shutil.copy(ROOT / name, clone / name)
    for folder in ("nodes", "microcinema_core", "scripts", "workflows", "tests"):
        shutil.copytree(ROOT / folder, clone / folder, ignore=shutil.ignore_patterns("__pycache__", "data"))
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "tests/test_core_inputs.py::test_core_never_imports_comfyui"],
                          cwd=clone, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "1 passed" in done.stdout
