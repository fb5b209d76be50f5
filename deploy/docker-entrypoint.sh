#!/bin/sh
# EduQueue container entrypoint.
#   docker-entrypoint.sh web|worker_grading|worker_lessons|worker_training|worker_ops|beat|flower [extra args]
#       runs that line of /app/Procfile (extra args are appended), exactly as `Procfile` names it;
#   docker-entrypoint.sh CMD ARGS...   runs CMD (e.g. `eduq db upgrade`, `celery ... worker ...`).
# Before either, it prepares PROMETHEUS_MULTIPROC_DIR (created, stale *.db files of earlier runs removed)
# and EDUQ_VAR_DIR.
set -eu

if [ -n "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then
    mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
    find "$PROMETHEUS_MULTIPROC_DIR" -mindepth 1 -maxdepth 1 -name '*.db' -delete 2>/dev/null || true
fi
mkdir -p "${EDUQ_VAR_DIR:-/data}" 2>/dev/null || true

procfile="${EDUQ_PROCFILE:-/app/Procfile}"
if [ "$#" -gt 0 ] && [ -f "$procfile" ]; then
    line=$(grep -E "^$1:" "$procfile" | head -n 1 | cut -d: -f2- || true)
    if [ -n "$line" ]; then
        shift
        cd "$(dirname "$procfile")"
        # shellcheck disable=SC2086
        exec sh -c "exec $line \"\$@\"" procfile "$@"
    fi
fi
exec "$@"
