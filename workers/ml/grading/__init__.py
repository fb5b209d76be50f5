"""Graders behind one interface (interface.py: GradeRequest -> ModelScores -> GradeResult):

    default.py     the rubric-agnostic default grader (any rubric)
    asap.py        the shipped per-prompt ASAP graders ('asap-1'..'asap-8')
    finetuned.py   a district's fine-tuned version
    service.py     GraderRegistry (model id -> grader) and GradingService, which adds review flags
                   (review.py), feedback (feedback.py) and the empty-essay rule to every grader's
                   output and isolates an essay that makes a grader raise
    features.py, surface_features.py, nets.py: what the graders read and run

Rebuild the shipped heads: `eduq grader train-default`, `eduq grader train-asap` (workers/ml/training/);
measure them: `eduq grader eval` (workers/ml/evaluation/).
"""
