"""Essay graders: the MiniLM encoder, text features, and the default (rubric-agnostic) grader.

    from workers.grader.default import DefaultGrader
    g = DefaultGrader.load(); g.warmup(); g.grade(texts, rubrics)

Rebuild the shipped head (artifacts/minilm_head.npz + .json; embeddings cached in var/cache/):
    python -m workers.grader.train --data ../shared/data/asap/train.jsonl --out workers/grader/artifacts/
Measure it (QWK per prompt on the prompt's integer range):
    python -m workers.grader.evaluate --data ../shared/data/asap/dev.jsonl
Compare with the plain Hugging Face loop (speed and score agreement):
    python -m bench.grading_paths --n 300
"""
