"""GradingService: the one place where a batch of requests meets the graders.

    service = GradingService(encoder, registry, reviewer)
    service.grade([GradeRequest(text, rubric, model), ...]) -> [GradeResult | GradeFailure, ...]

It groups the requests by grader (registry.get(model id)), lets each grader score its group, then
adds to every grader's output alike: review flags (review.py), the low-confidence reason, feedback
(feedback.py) and the rule for meaningless essays (no score: see finish). A group whose grader raises
is scored again one essay at a time, so one bad essay fails alone with its reason.
"""
from __future__ import annotations

import logging
from typing import Callable, Sequence

from workers.ml.grading import feedback as FB
from workers.ml.grading.interface import (
    RESULT_KEYS,
    GradeFailure,
    Grader,
    GradeRequest,
    GradeResult,
    ModelScores,
    is_empty,
)
from workers.ml.grading.review import tag, withheld_by

log = logging.getLogger("eduq.grading")
FLOOR_TAGS = frozenset({"nonsense", "word salad"})  # with always_score: the scale's minimum
WARMUP_TEXT = "Reading every day helps students learn new words and ideas. " * 3
WARMUP_RUBRIC = {"name": "warm-up", "scale": {"min": 1, "max": 6, "step": 1}}


class UnknownModel(LookupError):
    """No grader is registered under this model id (or its version was deleted)."""


CALIBRATED = "@"  # 'default@cal_…': the default grader calibrated by a teacher's scored examples
CALIBRATED_CACHE = 16


def calibrated_id(model: str, calibration_id: str | None) -> str:
    """The model id a job's essays are graded under: its model, with its calibration where it has one."""
    return f"{model}{CALIBRATED}{calibration_id}" if calibration_id else model


class GraderRegistry:
    """Model id -> grader. Exact ids and id prefixes map to factories, each called once per model id
    (the grader is then kept; a prefix factory may return one grader for many ids); 'default@cal_…'
    goes to the calibrations' factory (the newest CALIBRATED_CACHE kept); other ids nothing matches go
    to the fallback (the fine-tuned versions' loader, which keeps its own bounded cache)."""

    def __init__(self):
        from collections import OrderedDict

        self._exact: dict[str, Callable[[], Grader]] = {}
        self._prefix: dict[str, Callable[[str], Grader]] = {}
        self._made: dict[str, Grader] = {}
        self._fallback: Callable[[str], Grader] | None = None
        self._calibrated: Callable[[str], Grader] | None = None
        self._calibrated_made: OrderedDict[str, Grader] = OrderedDict()

    def calibrations(self, factory: Callable[[str], Grader]) -> None:
        """factory(calibration id) -> the default grader calibrated by that set of scored examples; it
        raises LookupError for a calibration that does not exist (any more)."""
        self._calibrated = factory

    def _get_calibrated(self, model_id: str) -> Grader:
        base, cal = model_id.split(CALIBRATED, 1)
        if base != "default" or self._calibrated is None:
            raise UnknownModel(f"no grader for model {model_id!r}: only the default grader is calibrated")
        if cal in self._calibrated_made:
            self._calibrated_made.move_to_end(cal)
            return self._calibrated_made[cal]
        try:
            grader = self._calibrated(cal)
        except LookupError as exc:
            raise UnknownModel(f"no calibration {cal!r}: {exc}") from exc
        self._calibrated_made[cal] = grader
        while len(self._calibrated_made) > CALIBRATED_CACHE:
            self._calibrated_made.popitem(last=False)
        return grader

    def register(self, model_id: str, factory: Callable[[], Grader]) -> None:
        self._exact[model_id] = factory

    def register_prefix(self, prefix: str, factory: Callable[[str], Grader]) -> None:
        self._prefix[prefix] = factory

    def fallback(self, loader: Callable[[str], Grader]) -> None:
        self._fallback = loader

    def get(self, model_id: str) -> Grader:
        model_id = model_id or "default"
        if CALIBRATED in model_id:
            return self._get_calibrated(model_id)
        if model_id in self._made:
            return self._made[model_id]
        if model_id in self._exact:
            self._made[model_id] = self._exact[model_id]()
            return self._made[model_id]
        for prefix, factory in self._prefix.items():
            if model_id.startswith(prefix):
                self._made[model_id] = factory(model_id)
                return self._made[model_id]
        if self._fallback is None:
            raise UnknownModel(f"no grader for model {model_id!r}")
        return self._fallback(model_id)


def finish(requests: Sequence[GradeRequest], ms: ModelScores, reviewer) -> list[GradeResult]:
    """The shared step: a grader's scores become the contract's results.

    An essay with a flag that makes a score meaningless (review.WITHHOLD_TAGS: empty, too short,
    nonsense, word salad, off-topic, a copied prompt that is most of the essay) gets no score: score
    and trait scores null, confidence 0, the reason first among its review reasons; unless its
    rubric sets "always_score", which gives the model's scores; under it an empty essay, and one whose
    words are not English words or not in an order English allows (FLOOR_TAGS), gets the scale's
    minimum: such a text meets no criterion of any rubric, and a model reading a scrambled copy of a
    good essay's words would score its vocabulary."""
    texts = [r.text for r in requests]
    prompts = [r.prompt for r in requests]
    flags = reviewer.reasons(texts, ms.embeddings, prompt_ids=ms.prompt_ids, prompt_texts=prompts,
                             prompt_emb=ms.prompt_emb)
    out: list[GradeResult] = []
    for i, req in enumerate(requests):
        empty = is_empty(req.text)
        scale = req.rubric["scale"]
        reasons = list(flags[i])
        withheld = withheld_by(reasons)
        always = bool(req.rubric.get("always_score"))
        floored = False
        if withheld and not always:
            score, traits, conf = None, {k: None for k in ms.traits[i]}, 0.0
            reasons.remove(withheld)
            reasons.insert(0, withheld)
        elif floored := empty or (withheld is not None and tag(withheld) in FLOOR_TAGS):
            tscale = {t["name"]: t.get("scale") or scale for t in req.rubric.get("traits") or []}
            score, conf = float(scale["min"]), 0.0
            traits = {k: float(tscale.get(k, scale)["min"]) for k in ms.traits[i]}
        else:
            score, traits = float(ms.scores[i]), {k: float(v) for k, v in ms.traits[i].items()}
            conf = float(ms.confidence[i])
        if not empty:  # an empty essay has one reason, whichever grader saw it
            reasons += list(ms.reasons[i]) if ms.reasons else []
            if ms.unsure[i] and score is not None and not floored:
                reasons.append(f"low confidence: {conf:.2f}")
        out.append({
            "score": score,
            "traits": traits,
            "confidence": conf,
            "needs_review": bool(reasons),
            "review_reasons": reasons,
            "feedback": FB.feedback(req.text, traits, scales=FB.trait_scales(req.rubric), prompt_text=prompts[i],
                                    score=score, withheld=withheld if score is None else None),
            "model_version": ms.version,
        })
    return out


class GradingService:
    def __init__(self, encoder, registry: GraderRegistry, reviewer):
        self.encoder, self.registry, self.reviewer = encoder, registry, reviewer

    @classmethod
    def over(cls, encoder, graders: dict[str, Grader], reviewer=None) -> "GradingService":
        """A service over grader instances already loaded (tools, tests, benchmarks): a key ending in
        '-' is an id prefix ('asap-'), any other an exact model id."""
        from workers.ml.grading.review import Reviewer

        registry = GraderRegistry()
        for key, g in graders.items():
            if key.endswith("-"):
                registry.register_prefix(key, lambda _m, g=g: g)
            else:
                registry.register(key, lambda g=g: g)
        return cls(encoder, registry, reviewer or Reviewer.load(encoder=encoder))

    def _grade_group(self, grader: Grader, requests: Sequence[GradeRequest], emb=None) -> list[GradeResult]:
        if hasattr(grader, "results"):  # a grader that gives finished results (the benchmark-only 'noop')
            return grader.results(requests)
        ms = grader.score(requests, emb)
        if ms.embeddings is None and self.encoder is not None and any(r.prompt for r in requests):
            ms.embeddings = self.encoder.embed([r.text for r in requests])  # the off-topic check reads them
        return finish(requests, ms, self.reviewer)

    def grade(self, requests: Sequence[GradeRequest],
              wrap: Callable[[Grader], Grader] | None = None) -> list[GradeResult | GradeFailure]:
        """Results in the requests' order. wrap: a hook around each grader (fault injection in tests)."""
        out: list[GradeResult | GradeFailure | None] = [None] * len(requests)
        groups: dict[int, tuple[Grader, list[int]]] = {}
        for i, req in enumerate(requests):
            try:
                grader = self.registry.get(req.model)
            except UnknownModel as exc:  # unknown or deleted model: these essays cannot be graded
                out[i] = GradeFailure(str(exc), final=True)
                continue
            except Exception as exc:  # the model could not be loaded now: try again later
                out[i] = GradeFailure(f"{type(exc).__name__}: {exc}")
                continue
            groups.setdefault(id(grader), (grader, []))[1].append(i)
        shared = self._shared_pass(requests, groups)
        for grader, idx in groups.values():
            g = wrap(grader) if wrap else grader
            try:
                for i, res in zip(idx, self._grade_group(g, [requests[i] for i in idx], shared.get(id(grader)))):
                    out[i] = res
            except Exception as exc:  # one bad essay must not sink its batch: isolate it
                if len(idx) == 1:
                    out[idx[0]] = GradeFailure(f"{type(exc).__name__}: {exc}")
                    continue
                log.warning("batch of %d raised %s; grading its essays one by one", len(idx), type(exc).__name__)
                for i in idx:
                    try:
                        out[i] = self._grade_group(g, [requests[i]])[0]
                    except Exception as one:
                        out[i] = GradeFailure(f"{type(one).__name__}: {one}")
        return out  # type: ignore[return-value]

    def _shared_pass(self, requests: Sequence[GradeRequest], groups: dict) -> dict:
        """One encoder pass for every group whose grader reads every hidden state of the process's
        encoder (the ASAP graders, `stack` fine-tunes): {id(grader): its rows of that pass}. A batch
        claimed across jobs mixes models; they share the pass instead of encoding once each."""
        deep = [(key, idx) for key, (g, idx) in groups.items()
                if getattr(g, "all_layers", False) and getattr(g, "encoder", None) is self.encoder]
        if len(deep) < 2 or self.encoder is None:
            return {}
        from workers.ml.encoder import AllLayers

        order = [i for _, idx in deep for i in idx]
        emb = AllLayers(self.encoder).embed([requests[i].text for i in order])
        out, at = {}, 0
        for key, idx in deep:
            out[key] = emb[at:at + len(idx)]
            at += len(idx)
        return out

    def warmup(self, model: str, rubric: dict | None = None) -> None:
        """One tiny request through the whole path (model, flags, feedback); raises instead of limping on."""
        out = self.grade([GradeRequest(WARMUP_TEXT, rubric or WARMUP_RUBRIC, model)])
        if len(out) != 1 or isinstance(out[0], GradeFailure) or not set(RESULT_KEYS) <= set(out[0]):
            raise RuntimeError(f"grader {model} warm-up failed: {out!r}")

    def grade_with(self, model: str, texts: Sequence[str], rubrics: Sequence[dict], emb=None) -> list[GradeResult]:
        """Tools and tests: grade texts with one model (emb: their embeddings, when the caller has
        them), through the same shared step; raises on the first essay that fails."""
        requests = [GradeRequest(t, r, model) for t, r in zip(texts, rubrics)]
        if len(requests) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(rubrics)} rubrics")
        return self._grade_group(self.registry.get(model), requests, emb)
