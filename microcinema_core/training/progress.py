"""Progress: a tqdm bar (loss, samples/s), a JSONL metrics log, TensorBoard when it imports.

Only rank 0 reports. ``<output_dir>/metrics.jsonl`` gets one JSON object per logged step
(``step, loss, lr, samples_per_s, epoch, grad_norm, ...``) and one ``{"event": ...}`` line for starts,
resumes, checkpoints and the export.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional


class ProgressReporter:
    def __init__(self, output_dir: str | Path, total_steps: int, start_step: int, enabled: bool,
                 bar: bool = True, tensorboard: bool = True):
        self.enabled = enabled
        self.bar = None
        self.tb = None
        self.log_path = Path(output_dir) / "metrics.jsonl"
        if not enabled:
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "a", encoding="utf-8")
        if bar:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total_steps, initial=start_step, desc="train", unit="step", dynamic_ncols=True)
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(Path(output_dir) / "tensorboard"))
            except Exception:  # tensorboard not installed: JSONL only
                self.tb = None
        self._t0 = time.perf_counter()

    def step(self, step: int, loss: float, samples_per_s: float) -> None:
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{loss:.4f}", samples_s=f"{samples_per_s:.2f}", refresh=False)

    def metrics(self, step: int, values: dict) -> None:
        if not self.enabled:
            return
        record = {"step": step, "time": round(time.perf_counter() - self._t0, 3), **values}
        self._log.write(json.dumps(record) + "\n")
        self._log.flush()
        if self.tb is not None:
            for key, value in values.items():
                if isinstance(value, (int, float)):
                    self.tb.add_scalar(f"train/{key}", value, step)

    def event(self, step: int, name: str, **details) -> None:
        if not self.enabled:
            return
        self._log.write(json.dumps({"step": step, "event": name, **details}) + "\n")
        self._log.flush()
        if self.bar is not None:
            self.bar.write(f"[step {step}] {name} {json.dumps(details) if details else ''}")

    def close(self) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.close()
        if self.tb is not None:
            self.tb.close()
        self._log.close()


def read_metrics(path: str | Path, event: Optional[str] = None) -> list[dict]:
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    if event is None:
        return [r for r in rows if "event" not in r]
    return [r for r in rows if r.get("event") == event]
