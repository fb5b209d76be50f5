"""Where things are, for tests at any depth: the repository and the shared ASAP data beside it."""
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ASAP_DATA = ROOT.parent / "shared" / "data" / "asap"
