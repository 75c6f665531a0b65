"""Salesforce authentication: token flows against the emulator's token endpoint, the
loopback-only plain-http adapter, and one refresh on an expired session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from recon.config import SalesforceSection, Secret
from recon.errors import AuthError, ConfigError
from recon.sandbox import SandboxServer, SandboxState
from recon.sandbox.salesforce import load_records
from recon.sources.sf_auth import (
    PlainHTTPAdapter,
    SalesforceConnection,
    build_session,
    request_token,
)


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    state = SandboxState(":memory:")
    load_records(state, "Account", [{"Name": "Acme"}])
    with SandboxServer(state) as srv:
        yield srv


@pytest.fixture(autouse=True)
def _no_faults(server) -> Iterator[None]:
    yield
    requests.delete(f"{server.url}/_sandbox/faults", timeout=5)


def _section(server: Any, auth: str, **kw: Any) -> SalesforceSection:
    return SalesforceSection(instance_url=server.url, login_url=server.url, auth=auth, **kw)


@pytest.fixture(scope="module")
def key_file(tmp_path_factory) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path_factory.mktemp("keys") / "sf.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


@pytest.mark.parametrize(
    ("auth", "kw"),
    [
        ("client_credentials", {"client_id": "cid", "client_secret": "shh"}),
        (
            "password",
            {
                "client_id": "cid",
                "client_secret": "s",
                "username": "u@x.org",
                "password": "pw",
                "security_token": "t",
            },
        ),
        ("jwt", {"client_id": "cid", "username": "u@x.org"}),
        ("session", {"session_id": "00Dx!session"}),
    ],
)
def test_token_flows(server, key_file, auth, kw) -> None:
    if auth == "jwt":
        kw = {**kw, "private_key_file": key_file}
    token = request_token(_section(server, auth, **kw))
    assert token.access_token and token.instance_url == server.url
    assert token.refreshable == (auth != "session")
    assert token.access_token not in repr(token)


def test_a_jwt_key_file_that_is_not_there_is_a_config_error_when_salesforce_is_called(
    server, tmp_path
) -> None:
    """A setting to fix (exit 3), not "authentication failed" (exit 7); found when Salesforce
    is called, so an auditor's `recon status` runs without the key."""
    from recon.errors import ConfigError

    missing = tmp_path / "nokey.pem"
    with pytest.raises(ConfigError) as err:
        request_token(
            _section(server, "jwt", client_id="cid", username="u@x.org", private_key_file=missing)
        )
    assert int(err.value.exit_code) == 3
    assert err.value.problems[0][0] == "salesforce.private_key_file"
    assert str(missing) in err.value.problems[0][1]


def test_jwt_assertion_is_rs256_signed_for_the_user(server, key_file, monkeypatch) -> None:
    sent: dict[str, Any] = {}
    original = requests.Session.post

    def spy(self, url, data=None, **kw):
        sent.update(data)
        return original(self, url, data=data, **kw)

    monkeypatch.setattr(requests.Session, "post", spy)
    request_token(
        _section(server, "jwt", client_id="cid", username="u@x.org", private_key_file=key_file)
    )
    assert sent["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    header = jwt.get_unverified_header(sent["assertion"])
    claims = jwt.decode(sent["assertion"], options={"verify_signature": False})
    assert header["alg"] == "RS256" and claims["sub"] == "u@x.org" and claims["iss"] == "cid"
    assert claims["aud"] == server.url


@pytest.mark.parametrize(
    ("auth", "kw", "message"),
    [
        ("client_credentials", {"client_id": Secret("cid")}, "client_secret: not configured"),
        ("jwt", {"client_id": Secret("cid")}, "private_key_file"),
        ("password", {"client_id": Secret("cid"), "password": Secret("pw")}, "username"),
    ],
)
def test_missing_credentials_are_configuration_errors(server, auth, kw, message) -> None:
    # recon.toml validation refuses these first; the flows still fail cleanly without them
    base = {
        "instance_url": server.url,
        "login_url": server.url,
        "timeout_seconds": 5.0,
        "api_version": "59.0",
    }
    section = SalesforceSection.model_construct(
        **{**dict.fromkeys(SalesforceSection.model_fields), **base, "auth": auth, **kw}
    )
    # a setting to fix (exit 3), not "authentication failed" (exit 7): nothing was sent
    with pytest.raises(ConfigError, match=message) as err:
        request_token(section)
    assert err.value.exit_code == 3


def test_refused_token_is_an_auth_error_without_the_secret(server) -> None:
    requests.post(
        f"{server.url}/_sandbox/faults",
        json={"kind": "expired_session", "side": "salesforce", "endpoint": "*oauth2*", "times": 1},
        timeout=5,
    ).raise_for_status()
    with pytest.raises(AuthError, match="refused the client_credentials flow") as err:
        request_token(
            _section(server, "client_credentials", client_id="cid", client_secret="s3cr3t-value")
        )
    assert "s3cr3t-value" not in str(err.value)


def test_a_server_error_at_the_token_endpoint_is_retried_not_an_auth_error(server) -> None:
    """A 503 says nothing of the credentials: retried; one that lasts is a server error."""
    from recon.errors import ErrorClass, SourceError

    def fault(times: int) -> None:
        requests.post(
            f"{server.url}/_sandbox/faults",
            json={"kind": "server_error", "side": "salesforce", "status": 503,
                  "endpoint": "*oauth2*", "times": times},
            timeout=5,
        ).raise_for_status()  # fmt: skip

    section = _section(
        server, "client_credentials", client_id="cid", client_secret="s", max_retries=2
    )
    fault(1)
    assert request_token(section).access_token
    requests.delete(f"{server.url}/_sandbox/faults", timeout=5)
    fault(5)
    with pytest.raises(SourceError) as err:
        request_token(section)
    assert not isinstance(err.value, AuthError)
    assert err.value.error_class is ErrorClass.SERVER_ERROR and "after 3 attempts" in str(err.value)


def test_a_token_endpoint_answering_without_json_is_not_an_auth_error(sign_in_page) -> None:
    """A login URL reaching something else (a proxy's sign-in page, 200 with HTML) was
    reported as the credentials being refused ("HTTP 200"): the URL is what to check."""
    from types import SimpleNamespace

    from recon.errors import ErrorClass, SourceError

    section = _section(
        SimpleNamespace(url=sign_in_page), "client_credentials", client_id="cid", client_secret="s"
    )
    with pytest.raises(SourceError) as err:
        request_token(section)
    assert not isinstance(err.value, AuthError)
    assert err.value.error_class is ErrorClass.SERVER_ERROR and "without JSON" in str(err.value)


@pytest.mark.parametrize(
    ("instance", "url", "plain"),
    [
        ("http://127.0.0.1:8766", "https://127.0.0.1:8766/services/data/v59.0/", True),
        ("http://127.0.0.1:8766", "https://127.0.0.1:87661/services/data/", False),
        ("http://127.0.0.1:8766", "https://127.0.0.1:8767/services/data/", False),
        ("http://localhost:8766", "https://localhost:8766/services/data/", True),
        (
            "https://example.my.salesforce.com",
            "https://example.my.salesforce.com/services/data/",
            False,
        ),
    ],
)
def test_plain_http_adapter_is_scoped_to_the_loopback_instance(instance, url, plain) -> None:
    session = build_session(instance)
    assert isinstance(session.get_adapter(url), PlainHTTPAdapter) == plain


def test_plain_http_refused_for_other_hosts() -> None:
    with pytest.raises(ConfigError, match="plain http"):
        build_session("http://10.1.2.3:8080")


def test_expired_session_refreshes_once(server) -> None:
    conn = SalesforceConnection(
        _section(server, "client_credentials", client_id="cid", client_secret="s")
    )
    first = conn.token.access_token
    requests.post(
        f"{server.url}/_sandbox/faults",
        json={"kind": "expired_session", "side": "salesforce", "endpoint": "*query*", "times": 1},
        timeout=5,
    ).raise_for_status()
    body = conn.call(lambda sf: sf.query("SELECT Id, Name FROM Account"))
    assert body["totalSize"] == 1 and conn.refreshes == 1
    assert conn.token.access_token != first or conn.refreshes == 1


def test_refused_again_after_refresh_is_an_auth_error(server) -> None:
    conn = SalesforceConnection(
        _section(server, "client_credentials", client_id="cid", client_secret="s")
    )
    requests.post(
        f"{server.url}/_sandbox/faults",
        json={"kind": "expired_session", "side": "salesforce", "endpoint": "*query*", "times": 2},
        timeout=5,
    ).raise_for_status()
    with pytest.raises(AuthError, match="refused again"):
        conn.call(lambda sf: sf.query("SELECT Id FROM Account"))
    assert conn.refreshes == 1


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("", "no RSA private key"),
        # a DER (binary) key crashed on reading it as text (UnicodeDecodeError)
        (
            rsa.generate_private_key(public_exponent=65537, key_size=1024).private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
            "binary file: DER",
        ),
        ("-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----\n", "public key"),
        (
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n",
            "encrypted",
        ),
    ],
)
def test_a_key_file_that_cannot_sign_is_a_configuration_error(
    server, tmp_path, content: str | bytes, says: str
) -> None:
    """A public, encrypted, binary or empty key crashed the pull (AttributeError,
    UnicodeDecodeError) or said "authentication failed" (exit 7); nothing was sent to
    Salesforce: exit 3."""
    key = tmp_path / "k.pem"
    if isinstance(content, bytes):
        key.write_bytes(content)
    else:
        key.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match=says) as err:
        request_token(
            _section(server, "jwt", client_id="cid", username="u@x.org", private_key_file=key)
        )
    assert err.value.exit_code == 3


def test_every_unset_secret_of_the_flow_is_named_at_once(server, monkeypatch) -> None:
    """Both variables of the client-credentials flow unset: the first error named only
    client_id, and the user found client_secret's one run later."""
    for name in ("RECON_T_SF_ID", "RECON_T_SF_SECRET"):
        monkeypatch.delenv(name, raising=False)
    section = SalesforceSection(
        instance_url=server.url,
        login_url=server.url,
        client_id="env:RECON_T_SF_ID",
        client_secret="env:RECON_T_SF_SECRET",
    )
    with pytest.raises(ConfigError) as err:
        request_token(section)
    assert err.value.exit_code == 3
    assert err.value.problems == [
        ("salesforce.client_id", "environment variable RECON_T_SF_ID is not set"),
        ("salesforce.client_secret", "environment variable RECON_T_SF_SECRET is not set"),
    ]
    assert "RECON_T_SF_ID=... RECON_T_SF_SECRET=..." in str(err.value)


def test_the_orgs_concurrent_limit_at_the_token_endpoint_is_waited_out(server) -> None:
    """A moment's ConcurrentPerOrgLongTxn limit at sign-in stopped the pull as if the org's
    24-hour allocation were spent (exit 6, "the next run resumes once ... frees up")."""
    from recon.errors import ErrorClass, RateLimited

    def fault(times: int) -> None:
        requests.post(
            f"{server.url}/_sandbox/faults",
            json={"kind": "rate_limit", "side": "salesforce", "endpoint": "*oauth2*",
                  "times": times, "retry_after": 0},
            timeout=5,
        ).raise_for_status()  # fmt: skip

    section = _section(
        server, "client_credentials", client_id="cid", client_secret="s", max_retries=2
    )
    fault(1)
    assert request_token(section).access_token
    requests.delete(f"{server.url}/_sandbox/faults", timeout=5)
    fault(5)
    with pytest.raises(RateLimited) as err:
        request_token(section)
    assert err.value.error_class is ErrorClass.RATE_LIMITED and "concurrent" in str(err.value)
    requests.delete(f"{server.url}/_sandbox/faults", timeout=5)
