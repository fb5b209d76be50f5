"""Language engines behind one interface (``base.Engine``): llama.cpp on CPUs, vLLM on GPUs, or any
OpenAI-compatible server; ``registry.get_engine()`` picks one. Importing this package loads no engine."""
from workers.ml.llm.base import Engine, EngineStats, GenRequest, GenResult

__all__ = ["Engine", "EngineStats", "GenRequest", "GenResult"]
