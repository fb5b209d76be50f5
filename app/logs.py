"""Structured logs: one JSON object per line (python-json-logger), with job and teacher ids.

Essay text never goes into a log: code logs ids and counts only. EDUQ_LOG_FORMAT=text gives
plain lines for local reading; EDUQ_LOG_LEVEL sets the level (INFO)."""
from __future__ import annotations

import logging
import sys

from pythonjsonlogger.json import JsonFormatter

from app.settings import settings

_done = False


def configure(force: bool = False) -> None:
    global _done
    if _done and not force:
        return
    handler = logging.StreamHandler(sys.stderr)
    cfg = settings()
    if cfg.log_format == "json":
        handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s",
                                           rename_fields={"asctime": "time", "levelname": "level", "name": "logger"}))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger("eduq")
    root.handlers[:] = [handler]
    root.setLevel(cfg.log_level)
    root.propagate = False
    _done = True
