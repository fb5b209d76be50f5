"""Essay graders: the MiniLM encoder, text features, and the default (rubric-agnostic) grader."""
