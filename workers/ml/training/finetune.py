"""From scored examples to a stored model version, and back to scores: split, features, train
(in process or DDP), evaluate on the held-out split, write artifacts; the fine-tuned grader."""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import torch

from workers.ml.grading.surface_features import N_FEATURES, surface_matrix
from workers.ml.scales import rubric_scales
from workers.ml.stats import scale_report
from workers.ml.training.trainer import Prepared, TrainConfig, build_encoder_model, train

FORMAT = 1
_enc_lock = threading.Lock()
_encoders: dict[int, object] = {}


def encoder_dir() -> str:
    from workers.ml.encoder import default_model_dir

    return default_model_dir()


def get_encoder(max_length: int = 512):
    """One frozen encoder per process (shared by training and every head model): the variant this process
    serves (workers/ml/variants.py), so a head trained here is fitted on the outputs it will be served on."""
    with _enc_lock:
        if max_length not in _encoders:
            from workers.ml.encoder import Encoder
            from workers.ml.variants import served_variant

            _encoders[max_length] = Encoder(max_length=max_length, variant=served_variant().name)
        return _encoders[max_length]


def split(scores_idx: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified by score point, deterministic for a seed. At least one validation example."""
    rng = np.random.default_rng(seed)
    val: list[int] = []
    for k in np.unique(scores_idx):
        members = np.flatnonzero(scores_idx == k)
        rng.shuffle(members)
        take = int(round(len(members) * fraction))
        val.extend(members[:take].tolist())
    n = len(scores_idx)
    if not val:
        val = [int(rng.integers(n))]
    val_idx = np.asarray(sorted(val))
    train_idx = np.setdiff1d(np.arange(n), val_idx)
    return train_idx, val_idx


def targets(examples: list[dict], rubric: dict) -> tuple[np.ndarray, np.ndarray, list[str]]:
    main, traits = rubric_scales(rubric)
    names = ["score"] + [n for n, _ in traits]
    Y = np.zeros((len(examples), len(names)), np.float32)
    M = np.zeros_like(Y)
    for i, ex in enumerate(examples):
        Y[i, 0], M[i, 0] = main.norm(ex["score"]), 1.0
        for j, (n, sc) in enumerate(traits, start=1):
            v = (ex.get("traits") or {}).get(n)
            if v is not None:
                Y[i, j], M[i, j] = sc.norm(v), 1.0
    return Y, M, names


def embed_in_chunks(texts: list[str], max_length: int, report=None, should_stop=None, chunk: int = 64,
                    embedder=None) -> np.ndarray:
    """The texts' embeddings in chunks, with progress ("embedding", done/total) and cancel between chunks.
    embedder: anything with embed(texts) and dim (encoder.AllLayers for `stack`); default the shared encoder."""
    from workers.ml.training.trainer import Stopped

    enc = embedder or get_encoder(max_length)
    out = []
    for s in range(0, len(texts), chunk):
        if should_stop and should_stop():
            raise Stopped()
        out.append(enc.embed(texts[s:s + chunk]))
        if report:
            report({"stage": "embedding", "done": min(len(texts), s + chunk), "total": len(texts)})
    return np.concatenate(out) if out else np.zeros((0, enc.dim), np.float32)


def prepare(examples: list[dict], rubric: dict, cfg: TrainConfig, fraction: float,
            report=None, should_stop=None) -> tuple[Prepared, dict]:
    main, _ = rubric_scales(rubric)
    texts = [e["text"] for e in examples]
    Y, M, names = targets(examples, rubric)
    human = np.asarray([e["score"] for e in examples], np.float64)
    tr, va = split(main.index(human), fraction, cfg.seed)
    feats = surface_matrix(texts)
    mu, sd = feats[tr].mean(0), feats[tr].std(0) + 1e-6
    fz = ((feats - mu) / sd).astype(np.float32)
    info = {"feat_mean": mu.tolist(), "feat_std": sd.tolist(), "targets": names}
    if cfg.method == "head":
        emb = embed_in_chunks(texts, cfg.max_length, report, should_stop)
        centroid = emb[tr].mean(0)
        centroid /= np.linalg.norm(centroid) + 1e-9
        sims = emb[tr] @ centroid
        info.update(centroid=centroid.tolist(), ood_threshold=float(np.quantile(sims, 0.01)))
        prep = Prepared(Y, M, tr, va, main, human[va], x=np.concatenate([emb, fz], 1).astype(np.float32))
    else:
        prep = Prepared(Y, M, tr, va, main, human[va], texts=texts, feats=fz)
    return prep, info


def tokenizer_for(model_dir: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_dir, local_files_only=True)


def fit(prep: Prepared, cfg: TrainConfig, report=None, should_stop=None, device=None):
    mdir = encoder_dir() if cfg.method != "head" else None
    tok = tokenizer_for(mdir) if mdir else None
    if device is None:
        from workers.ml.device import choose_device

        device = choose_device() if cfg.method != "head" else torch.device("cpu")
    return train(prep, cfg, model_dir=mdir, tokenizer=tok, report=report, should_stop=should_stop, device=device)


def rebuild(cfg: TrainConfig, n_in: int, n_out: int):
    """An untrained model of the right shape (to load DDP-trained weights into)."""
    from workers.ml.grading.nets import Head

    if cfg.method == "head":
        return Head(n_in, n_out, cfg.hidden, cfg.dropout)
    return build_encoder_model(cfg.method, encoder_dir(), N_FEATURES, n_out, cfg)


def predict_norm(model, prep: Prepared, idx: np.ndarray, cfg: TrainConfig) -> np.ndarray:
    model.eval()
    dev = next(model.parameters()).device
    out = []
    with torch.no_grad():
        if cfg.method == "head":
            X = torch.tensor(prep.x[idx], dtype=torch.float32)
            for s in range(0, len(idx), 256):
                out.append(model(X[s:s + 256].to(dev)).cpu().numpy())
        else:
            tok = tokenizer_for(encoder_dir())
            for s in range(0, len(idx), cfg.batch_size):
                b = idx[s:s + cfg.batch_size]
                enc = tok([prep.texts[i] or " " for i in b], truncation=True, max_length=cfg.max_length,
                          padding=True, return_tensors="pt").to(dev)
                out.append(model(enc["input_ids"], enc["attention_mask"],
                                 torch.tensor(prep.feats[b]).to(dev)).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, prep.targets.shape[1]), np.float32)


def evaluate(model, prep: Prepared, cfg: TrainConfig, rubric: dict, examples: list[dict]) -> dict:
    """Validation figures, holistic and per trait (stats.scale_report); the confidence is the grader's:
    1 on a scale point, 0.5 half-way between two (FineTunedGrader)."""
    main, traits = rubric_scales(rubric)
    va = prep.val_idx
    pv = predict_norm(model, prep, va, cfg)

    def scored(sc, z):
        raw = sc.denorm(z)
        snapped = sc.snap(raw)
        return snapped, np.clip(1.0 - np.abs(raw - snapped) / sc.step, 0.0, 1.0)

    pred, conf = scored(main, pv[:, 0])
    demos = [examples[i].get("demographics") or {} for i in va]
    m = scale_report(prep.val_human, pred, conf, main, 0, demos if any(demos) else None)
    m.pop("n")
    per_trait = {}
    for j, (name, sc) in enumerate(traits, start=1):
        known = prep.mask[va, j] > 0
        if known.sum() >= 2:
            p, c = scored(sc, pv[known, j])
            per_trait[name] = scale_report(sc.denorm(prep.targets[va, j][known]), p, c, sc)
    if per_trait:
        m["trait_qwk"] = {t: v["qwk"] for t, v in per_trait.items()}
        m["traits"] = per_trait
        m["mean_trait_qwk"] = round(float(np.mean([v["qwk"] for v in per_trait.values()])), 4)
    m["n_train"] = int(len(prep.train_idx))
    m["n_validation"] = int(len(va))
    # residual spread on validation, in scale steps: the grader's confidence uses it
    m["val_rmse_points"] = round(float(np.sqrt(np.mean((main.denorm(pv[:, 0]) - prep.val_human) ** 2)) / main.step), 4)
    return m


# ------------------------------------------------------------------------------ artifacts

def save(model, cfg: TrainConfig, info: dict, rubric: dict, out_dir: Path, meta: dict) -> Path:
    from safetensors.torch import save_file

    out_dir.mkdir(parents=True, exist_ok=True)
    main, traits = rubric_scales(rubric)
    conf = {"format": FORMAT, "method": cfg.method, "config": cfg.as_dict(), "rubric": rubric,
            "scales": {"score": main.as_dict(), **{n: s.as_dict() for n, s in traits}},
            "encoder": "all-MiniLM-L6-v2", "n_features": N_FEATURES, **info, **meta,
            # `head` reads the shared frozen encoder; lora/full carry their own encoder built from the full model
            "encoder_variant": get_encoder(int(getattr(cfg, "max_length", 512))).variant if cfg.method == "head" else "full"}
    if cfg.method == "head":
        conf["n_in"] = int(model.net[0].in_features)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out_dir / "head.safetensors"))
    else:
        save_file({k: v.contiguous() for k, v in model.head.state_dict().items()}, str(out_dir / "head.safetensors"))
        if cfg.method == "lora":
            model.encoder.save_pretrained(str(out_dir / "adapter"))
        else:
            save_file({k: v.contiguous() for k, v in model.encoder.state_dict().items()},
                      str(out_dir / "encoder.safetensors"))
    (out_dir / "config.json").write_text(json.dumps(conf, indent=1))
    return out_dir


def wall() -> float:
    return time.monotonic()

