#!/usr/bin/env bash
# Start PostgreSQL, Redis and RabbitMQ where they are not running (CI machines usually have them up).
set -u
PGHOST=${PGHOST:-127.0.0.1}
if ! pg_isready -h "$PGHOST" -p 5432 -q 2>/dev/null; then
  echo "starting PostgreSQL"
  if command -v pg_ctlcluster >/dev/null; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  fi
  for _ in $(seq 1 30); do pg_isready -h "$PGHOST" -p 5432 -q && break; sleep 1; done
fi
pg_isready -h "$PGHOST" -p 5432 || { echo "PostgreSQL is not reachable on $PGHOST:5432" >&2; exit 1; }
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
  for _ in $(seq 1 30); do redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && break; sleep 0.5; done
fi
redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null || { echo "Redis is not reachable on 127.0.0.1:6379" >&2; exit 1; }
# RabbitMQ: the grading end-to-end tests and two fault tests run on it too (make test, make chaos)
if ! rabbitmqctl await_online_nodes 1 -t 5 >/dev/null 2>&1; then
  echo "starting RabbitMQ"
  (rabbitmq-server -detached >/dev/null 2>&1 || rabbitmqctl start_app >/dev/null 2>&1) || true
  rabbitmqctl await_startup -t 90 >/dev/null 2>&1 || true
  rabbitmqctl start_app >/dev/null 2>&1 || true
fi
rabbitmqctl await_online_nodes 1 -t 30 >/dev/null 2>&1 || { echo "RabbitMQ is not running (rabbitmqctl)" >&2; exit 1; }
echo "services: PostgreSQL, Redis and RabbitMQ up"
