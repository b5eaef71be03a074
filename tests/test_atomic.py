"""The one atomic file-writing helper (microcinema_core/atomic.py): whole or nothing, never a leftover."""
from __future__ import annotations

import pytest

from microcinema_core.atomic import PARTIAL_MARK, atomic_path, atomic_write


def test_bytes_and_text_replace_the_file_and_leave_nothing_else(tmp_path):
    target = tmp_path / "out.json"
    atomic_write(target, b"old")
    assert target.read_bytes() == b"old"
    assert atomic_write(target, "néw") == target
    assert target.read_text(encoding="utf-8") == "néw"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_a_writer_that_needs_a_path_gets_a_hidden_name_with_the_suffix(tmp_path):
    target = tmp_path / "clip.mp4"
    with atomic_path(target, suffix=".mp4") as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".clip.mp4" + PARTIAL_MARK) and tmp.suffix == ".mp4"
        tmp.write_bytes(b"video")
        assert not target.exists()
    assert target.read_bytes() == b"video" and [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]


def test_an_error_keeps_the_old_file_and_removes_the_temporary_one(tmp_path):
    target = tmp_path / "state.pt"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="killed"):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("killed mid-write")
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["state.pt"]
