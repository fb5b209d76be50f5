"""Fitting models (never imported by serving code): the default grader's head (default_head.py),
the shipped ASAP graders (asap_stack.py), the review flags' thresholds (review_flags.py), and
fine-tuning on a district's scored essays (finetune.py, trainer.py; DDP in ddp.py). See
docs/finetuning.md and docs/grading.md."""
