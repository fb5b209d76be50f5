"""Each student's next steps from a graded essay (build.py) and the checks every one passes (checks.py)."""
