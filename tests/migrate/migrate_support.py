"""Running `apex-ai-proxy import` in process and loading what it wrote."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from apex_ai_proxy.cli import main
from apex_ai_proxy.config import Config, load_config_file
from apex_ai_proxy.migrate.worker_v2 import parse_dev_vars

EXAMPLES = Path(__file__).parent / "examples"


@dataclass
class Imported:
    status: int
    out: str
    err: str
    yaml_path: Path
    env_path: Path | None

    @property
    def yaml(self) -> str:
        return self.yaml_path.read_text(encoding="utf-8")

    def env(self) -> dict[str, str]:
        assert self.env_path is not None
        return parse_dev_vars(self.env_path.read_text(encoding="utf-8"))

    def config(self) -> Config:
        return load_config_file(self.yaml_path, self.env())


def run_import(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    source: Path,
    *args: str,
    env_file: bool = True,
) -> Imported:
    out = tmp_path / "apex.yaml"
    env_path = tmp_path / "secrets.env" if env_file else None
    argv = ["import", str(source), "--out", str(out), *args]
    if env_path is not None:
        argv += ["--env-file", str(env_path)]
    status = main(argv)
    captured = capsys.readouterr()
    return Imported(status, captured.out, captured.err, out, env_path)
