"""Fine-tuning graders: data and scales, metrics, the training loop (head, LoRA, full; in process
or under torchrun/DDP), artifacts, the fine-tuned grader and its LRU cache, and the Celery task's
lease-holding runner. See docs/finetuning.md."""
