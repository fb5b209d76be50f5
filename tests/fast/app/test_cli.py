"""`eduq`: every command checks its arguments before any model work (exit 2, one-line error, no torch)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from app.cli import main
from tests.paths import ROOT as REPO

ROOT = REPO
ASAP = ROOT.parent / "shared" / "data" / "asap"
RUBRICS = {"prompts": {"1": {"task": "t", "score": [1, 6], "traits": {}}, "2": {"task": "u", "score": [0, 3]}}}
LINE = json.dumps({"prompt": 1, "essay": "An essay.", "score": 3})


@pytest.fixture()
def data(tmp_path: Path) -> Path:
    """dev.jsonl with rubrics.json beside it (and no train.jsonl)."""
    (tmp_path / "rubrics.json").write_text(json.dumps(RUBRICS))
    (tmp_path / "dev.jsonl").write_text(LINE + "\n")
    return tmp_path / "dev.jsonl"


def fails(args: list[str], *needles: str) -> str:
    """Runs `eduq ARGS`, expects a usage error (exit 2) with one error line naming the problem, no traceback,
    and no model library imported; returns the error line."""
    torch_before = "torch" in sys.modules
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 2, (res.exit_code, res.output, res.exception)
    assert "Traceback" not in res.output
    assert not isinstance(res.exception, Exception) or isinstance(res.exception, SystemExit)
    errors = [line for line in res.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, res.output
    err = errors[0]
    assert res.output.rstrip().endswith(err)  # nothing after the one error line
    for n in needles:
        assert n in err, (n, err)
    if not torch_before:
        assert "torch" not in sys.modules, "model work started before the arguments were checked"
    return err


def test_help_exits_0() -> None:
    cmds = [[], ["db"], ["db", "upgrade"], ["teachers"], ["teachers", "create"], ["grader"],
            ["grader", "train-default"], ["grader", "train-asap"], ["grader", "eval"]]
    for c in cmds:
        res = CliRunner().invoke(main, [*c, "--help"])
        assert res.exit_code == 0, (c, res.output)
        assert "Usage:" in res.output
    assert "--lopo" in CliRunner().invoke(main, ["grader", "eval", "--help"]).output


def test_eval_missing_data_file(tmp_path: Path) -> None:
    fails(["grader", "eval", "--model", "asap", "--data", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "r.json")],
          "--data", "nope.jsonl", "does not exist")


def test_jsonl_without_rubrics(tmp_path: Path) -> None:
    (tmp_path / "dev.jsonl").write_text(LINE + "\n")
    out = str(tmp_path / "r.json")
    fails(["grader", "eval", "--model", "default", "--data", str(tmp_path / "dev.jsonl"), "--out", out], "rubrics.json")
    fails(["grader", "train-default", "--data", str(tmp_path / "dev.jsonl")], "rubrics.json")
    fails(["grader", "train-asap", "--data", str(tmp_path / "dev.jsonl")], "rubrics.json")


def test_malformed_data_and_rubrics(data: Path) -> None:
    out = str(data.with_name("r.json"))
    data.write_text("not json\n")
    fails(["grader", "eval", "--model", "asap", "--data", str(data), "--out", out], "JSON lines")
    data.write_text(json.dumps({"prompt": 9, "essay": "x", "score": 1}) + "\n")
    fails(["grader", "eval", "--model", "asap", "--data", str(data), "--out", out], "prompt 9")
    data.with_name("rubrics.json").write_text('{"other": 1}')
    fails(["grader", "eval", "--model", "asap", "--data", str(data), "--out", out], "prompts")


def test_unknown_model(data: Path, tmp_path: Path) -> None:
    out = str(tmp_path / "r.json")
    fails(["grader", "eval", "--model", "bogus", "--data", str(data), "--out", out], "--model", "unknown model 'bogus'")
    fails(["grader", "eval", "--model", str(tmp_path), "--data", str(data), "--out", out], "manifest.json")
    fails(["grader", "eval", "--model", str(tmp_path / "head.npz"), "--data", str(data), "--out", out],
          "head.npz", "does not exist")


def test_out_not_writable(data: Path) -> None:
    blocked = data.parent / "dev.jsonl" / "r.json"  # under a file: cannot be created, even by root
    fails(["grader", "eval", "--model", "asap", "--data", str(data), "--out", str(blocked)], "--out", "not a folder")
    fails(["grader", "eval", "--model", "asap", "--data", str(data), "--out", str(data.parent)], "--out", "not a file")
    fails(["grader", "train-default", "--data", str(data), "--out", str(data)], "--out", "not a folder")


def test_lopo_file_missing_or_malformed(data: Path, tmp_path: Path) -> None:
    base = ["grader", "eval", "--model", "asap", "--data", str(data), "--out", str(tmp_path / "r.json")]
    fails([*base, "--lopo", str(tmp_path / "lopo.json")], "--lopo", "lopo.json", "does not exist")
    (tmp_path / "lopo.json").write_text('{"mean": 1}')
    fails([*base, "--lopo", str(tmp_path / "lopo.json")], "--lopo", "leave-one-prompt-out")


def test_bare_lopo_needs_train_jsonl(data: Path, tmp_path: Path) -> None:
    fails(["grader", "eval", "--model", "default", "--data", str(data), "--lopo", "--out", str(tmp_path / "r.json")],
          "--lopo", "train.jsonl")


def test_other_flags_checked(data: Path, tmp_path: Path) -> None:
    base = ["grader", "eval", "--model", "asap", "--data", str(data), "--out", str(tmp_path / "r.json")]
    fails([*base, "--limit", "0"], "--limit")
    fails([*base, "--stress-per-prompt", "0"], "--stress-per-prompt")
    fails(["grader", "train-asap", "--data", str(data), "--prompts", "1,x"], "--prompts")
    fails(["grader", "train-asap", "--data", str(data), "--prompts", "1,7"], "--prompts", "7")
    fails(["grader", "train-asap", "--data", str(data), "--limit", "-1"], "--limit")
    fails(["teachers", "create", "--email", "nobody", "--name", "N"], "--email")


def _fake_eval(monkeypatch, seen: dict) -> None:
    from workers.ml.evaluation import report, validity

    def run_eval(model, data_path, **kw):
        seen.update(kw, model=model, data=data_path)
        rep = {"per_prompt": {"1": {"qwk": 0.5, "exact": 0.4, "smd": 0.0, "n": 1}}, "mean_qwk": 0.5}
        if kw.get("lopo") or kw.get("lopo_train"):
            rep["lopo"] = kw.get("lopo") or {"per_prompt": {"1": 0.6}, "mean_qwk": 0.6}
        return rep

    monkeypatch.setattr(validity, "run_eval", run_eval)
    monkeypatch.setattr(report, "render_html", lambda rep, path: Path(path))


def test_eval_flags_reach_run_eval(monkeypatch, data: Path, tmp_path: Path) -> None:
    seen: dict = {}
    _fake_eval(monkeypatch, seen)
    # --lopo FILE: an earlier report that holds the figures
    earlier = tmp_path / "earlier.json"
    earlier.write_text(json.dumps({"per_prompt": {"1": {"qwk": 0.9}}, "mean_qwk": 0.9,
                                   "lopo": {"per_prompt": {"1": 0.61}, "mean_qwk": 0.61}}))
    out = tmp_path / "sub" / "r.json"
    res = CliRunner().invoke(main, ["grader", "eval", "--model", "default", "--data", str(data), "--out", str(out),
                                    "--limit", "5", "--no-stress", "--stress-per-prompt", "7", "--lopo", str(earlier)])
    assert res.exit_code == 0, res.output
    assert seen["lopo"] == {"per_prompt": {"1": 0.61}, "mean_qwk": 0.61} and seen["lopo_train"] is None
    assert (seen["limit"], seen["stress"], seen["stress_per_prompt"]) == (5, False, 7)
    assert json.loads(out.read_text())["lopo"]["mean_qwk"] == 0.61
    # bare --lopo: computed from the train.jsonl beside the data
    data.with_name("train.jsonl").write_text(LINE + "\n")
    res = CliRunner().invoke(main, ["grader", "eval", "--model", "asap", "--data", str(data), "--lopo",
                                    "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert seen["lopo"] is None and seen["lopo_train"] == str(data.with_name("train.jsonl"))
    assert "leave one prompt out: mean QWK 0.6000" in res.output


def test_read_lopo_accepts_figures_and_reports(tmp_path: Path) -> None:
    from workers.ml.evaluation.validity import read_lopo

    fig = {"per_prompt": {"1": 0.6}, "mean_qwk": 0.6}
    (tmp_path / "a.json").write_text(json.dumps(fig))
    report = {"per_prompt": {"1": {"qwk": 0.8, "n": 3}}, "mean_qwk": 0.8, "lopo": fig}  # an eval --lopo report
    (tmp_path / "b.json").write_text(json.dumps(report))
    assert read_lopo(str(tmp_path / "a.json")) == fig
    assert read_lopo(str(tmp_path / "b.json")) == fig
    (tmp_path / "d.json").write_text("{}")
    with pytest.raises(ValueError):
        read_lopo(str(tmp_path / "d.json"))


def test_console_script_fails_fast(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("eduq")
    assert exe.exists(), f"the eduq console script is not installed beside {sys.executable} (make install)"
    r = subprocess.run([str(exe), "grader", "eval", "--model", "asap", "--data", str(tmp_path / "x.jsonl"),
                        "--out", str(tmp_path / "r.json")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stdout == ""
    assert "Traceback" not in r.stderr
    assert [line for line in r.stderr.splitlines() if line.startswith("Error:")] == [
        f"Error: Invalid value for '--data': File '{tmp_path / 'x.jsonl'}' does not exist."]


def test_shared_asap_data_is_accepted(tmp_path: Path) -> None:
    assert (ASAP / "rubrics.json").exists(), f"the shared ASAP data is missing: {ASAP}"
    fails(["grader", "eval", "--model", "bogus", "--data", str(ASAP / "dev.jsonl"), "--out", str(tmp_path / "r.json")],
          "--model")  # --data passed its checks; --model is what fails
