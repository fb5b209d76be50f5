"""app/lifecycle/callback_policy.py: callbacks go to public addresses only. Every check here runs the
validator itself with name resolution stubbed: no test sends anything to any of these addresses."""
from __future__ import annotations

import pytest

from app.lifecycle.callback_policy import check, refusal
from app.web.schemas import GradingJobRequestSchema

PUBLIC = "93.184.215.14"


def resolver(table):
    def resolve(host, port):
        if host not in table:
            raise OSError(f"no such host {host}")
        return table[host]
    return resolve


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8080/hook", "http://127.8.9.10/x", "http://[::1]/x", "http://0.0.0.0/x",
    "http://10.0.0.5/x", "http://172.16.3.4/x", "http://172.31.255.1/x", "http://192.168.1.1/x",
    "http://169.254.169.254/latest/meta-data/", "http://[fe80::1]/x", "http://[fd00:ec2::254]/x",
    "http://100.64.0.1/x", "http://[::ffff:127.0.0.1]/x", "http://[::ffff:10.1.2.3]/x", "http://224.0.0.1/x",
    "http://240.0.0.1/x",
])
def test_non_public_addresses_are_refused(url):
    why = refusal(url, allowlist=(), resolver=resolver({}))
    assert why and "non-public address" in why, (url, why)


@pytest.mark.parametrize("host, addresses", [
    ("localhost", ["127.0.0.1", "::1"]),
    ("metadata.google.internal", ["169.254.169.254"]),
    ("intranet.example", ["10.1.2.3"]),
    ("mixed.example", [PUBLIC, "192.168.0.7"]),  # one private answer is enough to refuse
])
def test_names_resolving_to_non_public_addresses_are_refused(host, addresses):
    why = refusal(f"https://{host}/hook", allowlist=(), resolver=resolver({host: addresses}))
    assert why and "non-public address" in why and any(a in why for a in addresses if a != PUBLIC), why


def test_public_address_and_name_are_allowed():
    assert refusal(f"http://{PUBLIC}/hook", allowlist=()) is None
    assert refusal("https://hooks.example.com/eduq", allowlist=(), resolver=resolver({"hooks.example.com": [PUBLIC]})) is None


@pytest.mark.parametrize("url, reason", [
    ("ftp://hooks.example.com/x", "http or https"), ("file:///etc/passwd", "http or https"),
    ("http:///nohost", "no host"), ("http://user:pw@hooks.example.com/x", "user name or password"),
    ("http://unknown.example/x", "cannot be resolved"),
])
def test_malformed_or_unresolvable_urls_are_refused(url, reason):
    why = refusal(url, allowlist=(), resolver=resolver({"hooks.example.com": [PUBLIC]}))
    assert why and reason in why, why


def test_operator_allowlist_admits_internal_receivers():
    assert refusal("http://127.0.0.1:9000/hook", allowlist=("127.0.0.1/32",)) is None
    assert refusal("http://10.20.3.4/hook", allowlist=("10.20.0.0/16",)) is None
    assert refusal("http://10.21.3.4/hook", allowlist=("10.20.0.0/16",)) is not None
    assert refusal("http://hooks.internal/x", allowlist=("hooks.internal",),
                   resolver=resolver({"hooks.internal": ["10.9.9.9"]})) is None


def test_dns_rebinding_is_caught_when_the_callback_is_sent():
    """The name is resolved again at delivery: an answer that turned private in between is refused."""
    answers = {"rebind.example": [PUBLIC]}
    assert refusal("http://rebind.example/hook", allowlist=(), resolver=resolver(answers)) is None  # submission
    answers["rebind.example"] = ["127.0.0.1"]
    with pytest.raises(ValueError, match="non-public address"):
        check("http://rebind.example/hook", allowlist=(), resolver=resolver(answers))  # delivery


def test_submission_schema_refuses_a_loopback_callback_with_its_field_named(monkeypatch):
    monkeypatch.delenv("EDUQ_CALLBACK_ALLOWLIST", raising=False)
    errors = GradingJobRequestSchema().validate({
        "rubric": {"name": "r", "scale": {"min": 1, "max": 6, "step": 1}},
        "essays": [{"id": "a", "text": "An essay."}], "callback_url": "http://127.0.0.1:5432/"})
    assert "callback_url" in errors and "non-public address (127.0.0.1)" in str(errors["callback_url"]), errors
