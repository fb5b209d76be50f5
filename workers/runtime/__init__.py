"""The worker runtime: the models a process holds (models.py), the grading, lessons and training
loops that claim work through app/lifecycle and run it through workers/ml, worker metrics and the
fault-injection hook for chaos tests."""
