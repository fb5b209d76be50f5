"""app/settings.py is the one reader of the project's environment variables, and the README's
configuration table lists exactly them, each with its real default. Fast: no Postgres, no Redis."""
from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest

from app.settings import EXTERNAL_ENV, Settings, load_settings, reset_settings, settings
from app.settings import ROOT as SETTINGS_ROOT
from tests.paths import ROOT as REPO

ROOT = REPO

# read by our code but set by torchrun for each DDP rank (workers/ml/training/ddp_main.py), not ours
TORCHRUN_VARS = {"RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"}
OURS = re.compile(r"^(EDUQ_\w+|DATABASE_URL|CELERY_BROKER_URL|PORT|FLOWER_\w+)$")
# os.environ.get("X" / os.environ["X"] / os.getenv("X" / "X" in os.environ
READ = re.compile(r"""os\.(?:environ\s*(?:\.get\s*\(|\[)|getenv\s*\()\s*["'](\w+)["']|["'](\w+)["']\s+in\s+os\.environ""")


def readme_rows() -> list[tuple[list[str], str]]:
    """The configuration table's rows as (variables, default cell)."""
    text = (ROOT / "README.md").read_text()
    m = re.search(r"^## Configuration\n(.*?)(?=^## )", text, re.S | re.M)
    assert m, "README.md has no '## Configuration' section"
    rows = [line for line in m.group(1).splitlines() if line.startswith("|")]
    assert rows and re.match(r"\|\s*variable\s*\|\s*default\s*\|\s*meaning\s*\|", rows[0]), rows[:1]
    out = []
    for row in rows[2:]:  # after the header and the |---| line
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        out.append((re.findall(r"`([A-Z][A-Z0-9_]*)`", cells[0]), cells[1]))
    return out


def readme_variables() -> set[str]:
    return {name for names, _ in readme_rows() for name in names}


def _documents(default, cell: str) -> bool:
    """Whether a default cell gives `default`: its first `code` span, as a number, a path under the
    repository, or the same text."""
    m = re.search(r"`([^`]+)`", cell)
    if not m:
        return False
    shown = m.group(1)
    if isinstance(default, Path):
        return shown.strip("./") == default.relative_to(SETTINGS_ROOT).as_posix()
    if isinstance(default, bool):  # a flag is shown as it is set: 1 or 0
        return shown.lower() in (("1", "true") if default else ("0", "false"))
    if isinstance(default, (int, float)):
        try:
            return float(shown) == float(default)
        except ValueError:
            return False
    return shown == str(default)


def test_readme_table_lists_exactly_the_settings_variables():
    documented = readme_variables()
    read = set(Settings.ENV.values()) | set(EXTERNAL_ENV)
    missing, stale = sorted(read - documented), sorted(documented - read)
    assert not missing and not stale, (f"README configuration table lacks {missing}; "
                                       f"lists variables nothing reads: {stale}")


def test_readme_table_gives_each_setting_its_default():
    """Where a setting has a plain default (not None or empty: those are described in words), the
    README's default cell shows it. A row of several variables gives their defaults in order,
    separated by ', '."""
    by_env = {f.metadata["env"]: f for f in fields(Settings) if "parse" in f.metadata}
    wrong = []
    for names, cell in readme_rows():
        parts = [cell] if len(names) == 1 else [p.strip() for p in cell.split(", ")]
        if len(parts) != len(names):
            wrong.append(f"{', '.join(names)}: {len(names)} variables but the default cell {cell!r} has {len(parts)} parts")
            continue
        for name, part in zip(names, parts):
            f = by_env.get(name)
            if f is None or f.default is None or f.default == ():
                continue
            if not _documents(f.default, part):
                wrong.append(f"{name}: the README says {part!r}, app/settings.py's default is {f.default!r}")
    assert not wrong, "README configuration table, wrong defaults:\n" + "\n".join(wrong)


def test_the_default_check_reads_the_cells():
    assert _documents(20 * 1024 * 1024, "`20971520` (20 MiB)") and _documents(0.7, "`0.70`")
    assert _documents(5.0, "`5`") and not _documents(6, "`5`") and not _documents(5, "five")
    assert _documents("600/minute;20000/hour", "`600/minute;20000/hour`")
    assert _documents(SETTINGS_ROOT / "var" / "cache", "`var/cache`")


def test_env_mapping_names_distinct_variables_of_real_fields():
    names = {f for f in Settings.__dataclass_fields__}
    assert set(Settings.ENV) <= names
    assert len(set(Settings.ENV.values())) == len(Settings.ENV), "two fields read one variable"
    assert not set(Settings.ENV.values()) & set(EXTERNAL_ENV)


def test_only_settings_reads_our_environment_variables():
    hits = []
    for base in ("app", "workers"):
        for path in sorted((ROOT / base).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel == "app/settings.py":
                continue
            for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                for m in READ.finditer(line):
                    var = m.group(1) or m.group(2)
                    if var in TORCHRUN_VARS:
                        continue
                    if OURS.match(var):
                        hits.append(f"{rel}:{n}: reads {var} (use settings().<field>)")
    assert not hits, "\n".join(hits)


def test_the_scan_sees_reads():
    assert READ.search('x = os.environ.get("EDUQ_X", 3)').group(1) == "EDUQ_X"
    assert READ.search("os.environ['DATABASE_URL']").group(1) == "DATABASE_URL"
    assert READ.search('os.getenv("PORT")').group(1) == "PORT"
    assert READ.search('if "FLOWER_PORT" in os.environ:').group(2) == "FLOWER_PORT"


def test_defaults(monkeypatch):
    for var in Settings.ENV.values():
        monkeypatch.delenv(var, raising=False)
    reset_settings()
    s = settings()
    assert s.grading_max_batch == 64 and s.lesson_max_batch == 8 and s.lesson_lease_s == 900
    assert s.train_lease_s == 120 and s.train_heartbeat is None and s.train_heartbeat_s == 30
    assert s.model_store_root == str(Path(s.var_dir) / "models")
    assert s.encoder_pad_multiple == 32 and s.encoder_batch is None and s.llm_parallel == 8
    assert s.llm_engine == "auto" and s.llm_url is None and s.llm_timeout_s == 120 and s.llm_retries == 3
    assert s.device == "auto" and s.precision == "auto" and s.webhook_secret == "eduq-dev-webhook-secret"
    assert s.gate_min_qwk == 0.70 and s.gate_max_abs_smd == 0.15 and s.db_pool_size == 5
    assert s.rate_limit == "600/minute;20000/hour" and s.cors_origins == ()
    assert s.database_url.startswith("sqlite:///") and s.broker_url == "filesystem://"


def test_environment_changes_the_values(monkeypatch):
    monkeypatch.setenv("EDUQ_GRADING_MAX_BATCH", "8")
    monkeypatch.setenv("EDUQ_LESSON_MAX_WAIT_S", "0.1")
    monkeypatch.setenv("EDUQ_TRAIN_LEASE_S", "20")
    monkeypatch.setenv("EDUQ_DEVICE", " CPU ")
    monkeypatch.setenv("EDUQ_CORS_ORIGINS", "https://a.example, https://b.example,")
    monkeypatch.setenv("EDUQ_RATE_LIMIT", "")
    monkeypatch.setenv("DATABASE_URL", "postgres://u@h:5432/d")
    reset_settings()
    s = settings()
    assert s.grading_max_batch == 8 and s.lesson_max_wait_s == 0.1
    assert s.train_lease_s == 20 and s.train_heartbeat_s == 5
    assert s.device == "cpu"
    assert s.cors_origins == ("https://a.example", "https://b.example")
    assert s.rate_limit == ""  # "" turns the limit off
    assert s.database_url == "postgresql+psycopg://u@h:5432/d"
    monkeypatch.setenv("EDUQ_TRAIN_HEARTBEAT_S", "0.5")
    assert settings().train_heartbeat_s == 0.5  # a changed variable is seen without reset_settings()


def test_blank_values(monkeypatch):
    monkeypatch.setenv("EDUQ_ENCODER_PAD_MULTIPLE", "")  # "": no padding multiple, as before
    monkeypatch.setenv("EDUQ_LLM_THREADS", "")
    monkeypatch.setenv("EDUQ_WORKER_METRICS_PORT", "")
    monkeypatch.setenv("EDUQ_MODEL_STORE", "")
    reset_settings()
    s = settings()
    assert s.encoder_pad_multiple == 0 and s.llm_threads is None and s.worker_metrics_port is None
    assert s.model_store is None and s.model_store_root.endswith("models")


@pytest.mark.parametrize("var, value, what", [
    ("EDUQ_GRADING_MAX_BATCH", "abc", "an integer"),
    ("EDUQ_DB_POOL_SIZE", "5.5", "an integer"),
    ("EDUQ_WORKER_METRICS_PORT", "x9", "an integer"),
    ("EDUQ_GATE_MIN_QWK", "high", "a number"),
])
def test_a_bad_number_names_the_variable(monkeypatch, var, value, what):
    monkeypatch.setenv(var, value)
    reset_settings()
    with pytest.raises(ValueError) as e:
        load_settings()
    assert str(e.value) == f"{var} must be {what}, not {value!r}"
    with pytest.raises(ValueError, match=var):
        settings()
    monkeypatch.delenv(var)
    reset_settings()
    assert settings()


def test_bench_mode_is_a_flag(monkeypatch):
    assert settings().bench_mode is False
    monkeypatch.setenv("EDUQ_BENCH_MODE", "1")
    assert settings().bench_mode is True
    monkeypatch.setenv("EDUQ_BENCH_MODE", "off")
    assert settings().bench_mode is False
    monkeypatch.setenv("EDUQ_BENCH_MODE", "maybe")
    with pytest.raises(ValueError, match="EDUQ_BENCH_MODE must be 1 or 0"):
        load_settings()
