"""The job lifecycle, for every job kind: create and publish (jobs.py, broker.py), claim and write
(claims.py), progress and finish (claims.refresh_jobs), re-publish and reap (sweep.py), the training
lease (training.py), callbacks (webhooks.py) and retention (retention.py)."""
