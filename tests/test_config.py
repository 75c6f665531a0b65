"""recon.toml loading and validation: every problem reported with its key path, secrets never shown."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from recon.config import Secret, find_config_path, is_loopback_url, load_config
from recon.errors import ConfigError, ExitCode

TOKEN = "pat-na1-SUPERSECRET-0000"


def write(tmp_path: Path, text: str, name: str = "recon.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_any_file(tmp_path: Path) -> None:
    cfg = load_config(None)
    assert cfg.source_path is None
    assert cfg.hubspot.base_url == "https://api.hubapi.com"
    assert cfg.salesforce.api_version == "59.0"
    assert cfg.store.path == (tmp_path / "data" / "recon.db").resolve()


def test_found_as_flag_then_env_then_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cwd_file = write(tmp_path, '[store]\npath = "cwd.db"\n')
    other = tmp_path / "other"
    other.mkdir()
    env_file = write(other, '[store]\npath = "env.db"\n')
    flag_file = write(other, '[store]\npath = "flag.db"\n', "flag.toml")
    assert load_config(None).store.path == tmp_path / "cwd.db"
    monkeypatch.setenv("RECON_CONFIG", str(env_file))
    assert load_config(None).store.path == other / "env.db"
    assert load_config(flag_file).store.path == other / "flag.db"
    assert find_config_path(flag_file) == flag_file.resolve()
    assert cwd_file.exists()


def test_relative_paths_resolve_against_the_files_folder(tmp_path: Path) -> None:
    sub = tmp_path / "conf"
    sub.mkdir()
    path = write(sub, '[store]\npath = "../stores/r.db"\n[sandbox]\ndb = "sb.db"\n')
    cfg = load_config(path)
    assert cfg.store.path == (tmp_path / "stores" / "r.db").resolve()
    assert cfg.sandbox.db == sub / "sb.db"


def test_missing_named_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "nope.toml")
    assert "nope.toml" in str(err.value)
    assert err.value.exit_code == ExitCode.CONFIG


def test_invalid_toml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "[store]\npath = \n")
    with pytest.raises(ConfigError, match="line 2"):
        load_config(path)


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[store]
colour = "blue"
[hubspot]
page_size = "many"
[salesforce]
api_version = "banana"
[review]
port = 70000
[[mapping.fields]]
object = "contacts"
hubspot = "jobtitle"
[[pull.filters]]
source = "hubspot"
object = "contacts"
[unknown_section]
x = 1
""",
    )
    with pytest.raises(ConfigError) as err:
        load_config(path)
    paths = {p for p, _ in err.value.problems}
    assert {
        "store.colour",
        "hubspot.page_size",
        "salesforce.api_version",
        "review.port",
        "mapping.fields[0].salesforce",
        "pull.filters[0].field",
        "unknown_section",
    } <= paths
    text = str(err.value)
    assert "unknown key" in text
    assert str(path) in text


@pytest.mark.parametrize(
    ("section", "body"),
    [
        ("hubspot", f'access_token = "{TOKEN}"'),
        (
            "salesforce",
            f'instance_url = "https://acme.my.salesforce.com"\nclient_id = "{TOKEN}"\nclient_secret = "env:X"',
        ),
        ("notify", f'slack_webhook = "https://hooks.slack.com/services/{TOKEN}"'),
    ],
)
def test_literal_secret_refused_for_non_loopback_hosts(
    tmp_path: Path, section: str, body: str
) -> None:
    path = write(tmp_path, f"[{section}]\n{body}\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "env:" in str(err.value)
    assert TOKEN not in str(err.value)
    assert TOKEN not in repr(err.value)


def test_literal_secret_accepted_for_loopback(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""
[hubspot]
base_url = "http://127.0.0.1:8765"
access_token = "{TOKEN}"
[salesforce]
instance_url = "http://127.0.0.1:8765"
login_url = "http://127.0.0.1:8765"
client_id = "{TOKEN}"
client_secret = "{TOKEN}"
""",
    )
    cfg = load_config(path)
    assert cfg.hubspot.access_token is not None
    assert cfg.hubspot.access_token.get() == TOKEN
    assert TOKEN not in repr(cfg)
    assert TOKEN not in str(cfg.redacted())


def test_env_secret_read_when_used_and_never_printed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, '[hubspot]\naccess_token = "env:HS_TOKEN_TEST"\n')
    cfg = load_config(path)
    token = cfg.hubspot.access_token
    assert isinstance(token, Secret)
    with pytest.raises(ConfigError, match="HS_TOKEN_TEST is not set"):
        token.get("hubspot.access_token")
    monkeypatch.setenv("HS_TOKEN_TEST", "")  # set, but empty: said so
    with pytest.raises(ConfigError, match="HS_TOKEN_TEST is empty"):
        token.get("hubspot.access_token")
    monkeypatch.setenv("HS_TOKEN_TEST", TOKEN)
    assert token.get() == TOKEN
    assert TOKEN not in f"{token} {token!r} {cfg.redacted()}"
    assert cfg.redacted()["hubspot"]["access_token"] == "env:HS_TOKEN_TEST"


def test_secret_wrong_type_does_not_echo_value(tmp_path: Path) -> None:
    path = write(tmp_path, "[hubspot]\naccess_token = 123456789\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "123456789" not in str(err.value)
    assert "hubspot.access_token" in str(err.value)


def test_plain_http_refused_for_real_hosts(tmp_path: Path) -> None:
    path = write(tmp_path, '[hubspot]\nbase_url = "http://api.hubapi.com"\n')
    with pytest.raises(ConfigError, match="loopback"):
        load_config(path)


@pytest.mark.parametrize(
    ("auth", "missing"),
    [
        ("client_credentials", "salesforce.client_secret"),
        ("jwt", "salesforce.private_key_file"),
        ("password", "salesforce.password"),
        ("session", "salesforce.session_id"),
    ],
)
def test_salesforce_auth_needs_its_keys(tmp_path: Path, auth: str, missing: str) -> None:
    path = write(
        tmp_path,
        f'[salesforce]\ninstance_url = "https://acme.my.salesforce.com"\nauth = "{auth}"\nclient_id = "env:SF_ID"\n',
    )
    with pytest.raises(ConfigError, match=missing):
        load_config(path)


def test_environment_overrides_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, '[store]\npath = "file.db"\n')
    monkeypatch.setenv("RECON_REVIEW__PORT", "9001")
    cfg = load_config(path)
    assert cfg.review.port == 9001
    assert os.environ["RECON_REVIEW__PORT"] == "9001"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:1", True),
        ("http://127.5.0.1", True),
        ("http://localhost:8000", True),
        ("http://[::1]:80", True),
        ("https://api.hubapi.com", False),
        ("http://10.0.0.1", False),
        (None, False),
    ],
)
def test_is_loopback_url(url: str | None, expected: bool) -> None:
    assert is_loopback_url(url) is expected


def test_match_settings_are_checked_when_the_config_loads(tmp_path: Path) -> None:
    conf = tmp_path / "recon.toml"
    conf.write_text("[match]\nthresholds = { atuo = 0.95 }\n")
    with pytest.raises(ConfigError) as err:
        load_config(conf)
    assert any(p.startswith("match.thresholds") and "atuo" in m for p, m in err.value.problems)
    conf.write_text("[match]\nthresholds = { auto = 1.5 }\n")
    with pytest.raises(ConfigError, match="invalid"):
        load_config(conf)
    conf.write_text('[match]\nsettings_file = "nope.json"\n')
    with pytest.raises(ConfigError) as err:
        load_config(conf)
    assert err.value.problems[0][0] == "match.settings_file"


def test_an_override_that_does_not_parse_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RECON_POLICY__LINK_TIERS", "auto")
    with pytest.raises(ConfigError, match="RECON_POLICY__LINK_TIERS"):
        load_config(None)


def test_broken_json_in_an_override_is_named_with_where_it_breaks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RECON_POLICY__LINK_TIERS", '["auto"')
    monkeypatch.setenv("RECON_POLICY__ENABLED", "true")
    with pytest.raises(ConfigError) as err:
        load_config(None)
    assert err.value.problems == [
        (
            "RECON_POLICY__LINK_TIERS",
            "is not valid JSON: Expecting ',' delimiter: line 1 column 8 (char 7)",
        )
    ]
    assert "EnvSettingsSource" not in str(err.value)


def test_every_bad_override_is_named_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """One misnamed override hid a bad value in another, and broken JSON in one section hid
    broken JSON in the next: the user fixed them one run at a time."""
    monkeypatch.setenv("RECON_STORE_PATH", "x.db")
    monkeypatch.setenv("RECON_HUBSPOT__PAGE_SIZE", "abc")
    with pytest.raises(ConfigError) as err:
        load_config(None)
    assert [k for k, _m in err.value.problems] == ["RECON_STORE_PATH", "hubspot.page_size"]
    assert "RECON_HUBSPOT__PAGE_SIZE" in err.value.problems[1][1]
    monkeypatch.delenv("RECON_HUBSPOT__PAGE_SIZE")
    monkeypatch.setenv("RECON_POLICY__LINK_TIERS", '["auto"')
    monkeypatch.setenv("RECON_MATCH__BLOCKING", "[1,")
    with pytest.raises(ConfigError) as err:
        load_config(None)
    assert [k for k, _m in err.value.problems] == [
        "RECON_STORE_PATH",
        "RECON_MATCH__BLOCKING",
        "RECON_POLICY__LINK_TIERS",
    ]


def test_a_list_item_set_on_its_own_names_its_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RECON_MAPPING__FIELDS__0__RULE", "always_salesforce")
    with pytest.raises(ConfigError) as err:
        load_config(None)
    ((loc, msg),) = err.value.problems
    assert loc == "mapping.fields"
    assert "RECON_MAPPING__FIELDS__0__RULE" in msg and "set the whole list as JSON" in msg


@pytest.mark.parametrize(("source", "obj"), [("hubspot", "contactz"), ("salesforce", "contacts")])
def test_a_scoping_filter_on_an_unknown_object_is_an_error(
    tmp_path: Path, source: str, obj: str
) -> None:
    path = write(
        tmp_path,
        f'[[pull.filters]]\nsource = "{source}"\nobject = "{obj}"\nfield = "x"\nvalue = "y"\n',
    )
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "pull.filters[0]" in str(err.value) and repr(obj) in str(err.value)


@pytest.mark.parametrize(
    ("op", "value", "says"),
    [
        ("eq", None, "needs a value"),
        ("eq", '["Open", "Working"]', "op = 'in'"),
        ("neq", None, "needs a value"),
        ("contains", "[1]", "one text"),
        ("in", "[]", "needs a list"),
        ("not_in", '"Open"', "needs a list"),
        ("has_value", '"x"', "takes no value"),
    ],
)
def test_a_scoping_filter_value_that_does_not_fit_its_op_is_an_error(
    tmp_path: Path, op: str, value: str | None, says: str
) -> None:
    """A filter whose value cannot be compared would put every record out of scope."""
    line = "" if value is None else f"value = {value}\n"
    text = _refused(
        tmp_path, f'source = "salesforce"\nobject = "Lead"\nfield = "Status"\nop = "{op}"\n{line}'
    )
    assert "pull.filters[0]" in text and says in text


def _refused(tmp_path: Path, scoping_filter: str) -> str:
    """The configuration error (message and problems) of one ``[[pull.filters]]`` entry."""
    path = write(tmp_path, f"[[pull.filters]]\n{scoping_filter}")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    return str(err.value) + " ".join(m for _k, m in err.value.problems)


@pytest.mark.parametrize("field", ['""', '"  "'])
def test_a_scoping_filter_without_a_field_name_is_an_error(tmp_path: Path, field: str) -> None:
    """An empty field name passed; the pull then failed on "configured property  not found"."""
    text = _refused(
        tmp_path, f'source = "hubspot"\nobject = "companies"\nfield = {field}\nop = "no_value"\n'
    )
    assert "pull.filters[0]" in text and "field is empty" in text


@pytest.mark.parametrize("group", ['""', '"  "'])
def test_a_scoping_filter_with_an_empty_group_name_is_an_error(tmp_path: Path, group: str) -> None:
    text = _refused(
        tmp_path,
        f'source = "hubspot"\nobject = "contacts"\nfield = "email"\nop = "has_value"\n'
        f"group = {group}\n",
    )
    assert "pull.filters[0]" in text and "group is empty" in text


def test_extra_fields_of_a_misspelt_object_are_an_error(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[pull]\nhubspot_properties = { deals = ["x"] }\nsalesforce_fields = { account = ["Name"] }\n',
    )
    with pytest.raises(ConfigError) as err:
        load_config(path)
    text = str(err.value) + " ".join(m for _k, m in err.value.problems)
    assert "'deals' is not a hubspot object" in text and "'account' is not a salesforce" in text


def test_every_threshold_and_notify_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "[match]\nthresholds = { auto = 1.5, foo = 0.2, review = 0.9, duplicate_auto = 0.5, "
        "duplicate_review = 0.9 }\n"
        '[notify]\nslack_webhook = "https://hooks.slack.com/services/T/B/X"\n'
        'webhook_url = "https://example.com/x"\n',
    )
    with pytest.raises(ConfigError) as err:
        load_config(path)
    text = " ".join(m for _k, m in err.value.problems)
    for says in ("unknown threshold 'foo'", "'auto' must be a probability",
                 "'duplicate_review' (0.9) must not exceed 'duplicate_auto' (0.5)",
                 "notify.slack_webhook", "notify.webhook_url"):  # fmt: skip
        assert says in text, says
    assert "T/B/X" not in text  # the webhook's secret path is never shown


def test_a_section_problem_names_the_section_s_environment_overrides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, '[hubspot]\nbase_url = "http://127.0.0.1:9"\naccess_token = "pat"\n')
    monkeypatch.setenv("RECON_HUBSPOT__BASE_URL", "https://api.hubapi.com")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    text = " ".join(m for _k, m in err.value.problems)
    assert "RECON_HUBSPOT__BASE_URL" in text


def test_a_bad_environment_override_is_named_as_such(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, "[hubspot]\npage_size = 50\n")
    monkeypatch.setenv("RECON_HUBSPOT__PAGE_SIZE", "abc")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    text = str(err.value) + " ".join(m for _k, m in err.value.problems)
    assert "environment overrides" in text and "RECON_HUBSPOT__PAGE_SIZE" in text


@pytest.mark.parametrize(
    ("name", "says"),
    [
        # a misspelt section: the budget cap it meant was not in force
        ("RECON_BUDGETS__HUBSPOT_CALLS", "no section [budgets]; sections: store"),
        # one underscore: the command ran on the file's store
        ("RECON_STORE_PATH", "use two underscores after the section: RECON_STORE__PATH"),
    ],
)
def test_an_override_that_names_no_setting_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, says: str
) -> None:
    """Such an override was ignored without a word."""
    monkeypatch.setenv(name, "1")
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, "[store]\n"))
    assert err.value.problems[0][0] == name and says in err.value.problems[0][1]
    assert "RECON_" in (err.value.hint or "")


def test_a_config_file_saved_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    """Notepad's "UTF-8 with BOM" was "not valid TOML: Invalid statement (at line 1, column
    1)", a line that looks right."""
    path = tmp_path / "recon.toml"
    path.write_bytes(b'\xef\xbb\xbf[store]\npath = "x.db"\n')
    assert load_config(path).store.path == tmp_path / "x.db"


@pytest.mark.parametrize(
    ("text", "says", "hint"),
    [
        ('[store]\npath = "C:\\data\\recon.db"\n', ': path = "C:\\data', "single quotes"),
        ("[store]\npath = data/recon.db\n", ": path = data/recon.db", "text goes in quotes"),
        ('[store]\npath = "a"\n[store]\n', "(at line 3, column 7): [store]", "merge its keys"),
        ("[hubspot]\npage_size = 5\npage_size = 6\n", ": page_size = 6", "delete one of them"),
    ],
)
def test_a_toml_syntax_error_quotes_its_line_and_says_what_to_do(
    tmp_path: Path, text: str, says: str, hint: str
) -> None:
    """TOML's own message ("Unescaped '\\' in a string", "Invalid value") and "fix the line
    named" did not say what was wrong with a Windows path or a value without quotes."""
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text))
    assert says in err.value.message and hint in (err.value.hint or "")
    assert err.value.exit_code == ExitCode.CONFIG


@pytest.mark.parametrize(
    "text",
    [
        "[hubspot]\naccess_token = pat-na1-0000aaaa-bbbb\n",  # the quotes forgotten
        '[notify]\nslack_webhook = "https://hooks.slack.com/services/T0/B0/XyZ\n',  # unclosed
        "[hubspot]\npat-na1-0000aaaa-bbbb\n",  # the token pasted alone
    ],
)
def test_a_toml_error_on_a_credentials_line_does_not_repeat_it(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text))
    said = str(err.value) + (err.value.hint or "")
    assert "0000aaaa" not in said and "XyZ" not in said and "***" in said


def test_a_config_file_that_is_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "recon.toml"
    path.write_bytes(b"[store]\n# caf\xe9\n")
    with pytest.raises(
        ConfigError, match=r"is not UTF-8 text: line 2 .*0xe9.*save the file as UTF-8"
    ):
        load_config(path)


def test_salesforce_credential_problems_are_reported_together(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[salesforce]\ninstance_url = "https://acme.my.salesforce.com"\nauth = "password"\n'
        'client_id = "literal-id"\n',
    )
    with pytest.raises(ConfigError) as err:
        load_config(path)
    text = str(err.value)
    # the missing credentials and the literal secret, in one round
    assert "salesforce.client_secret" in text and "salesforce.client_id are only accepted" in text


def test_a_path_that_is_no_text_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, "[store]\npath = 5\n"))
    assert err.value.problems == [("store.path", 'must be a path in quotes, e.g. "data/recon.db"')]


def test_every_problem_at_once_even_behind_a_wrong_typed_key(tmp_path: Path) -> None:
    """A wrong-typed key hid its section's checks across keys (an auth's credentials, literal
    secrets) until it was fixed: a second run of recon named new problems."""
    path = write(
        tmp_path,
        '[salesforce]\ninstance_url = "https://acme.my.salesforce.com"\ntimeout_seconds = "slow"\n'
        'auth = "jwt"\n[notify]\nwebhook_url = "https://hooks.example.com/x"\nretries = "many"\n',
    )
    with pytest.raises(ConfigError) as err:
        load_config(path)
    paths = [p for p, _m in err.value.problems]
    assert paths == ["salesforce.timeout_seconds", "notify.retries", "salesforce", "notify"]
    said = " ".join(m for _p, m in err.value.problems)
    assert "auth = 'jwt' needs" in said and "literal notify.webhook_url" in said


def test_a_value_pasted_after_env_is_refused_without_repeating_it(tmp_path: Path) -> None:
    """`access_token = "env:pat-…"` named a variable "pat-…": the token was echoed in the
    error, the stored run, the log and the notice."""
    conf = tmp_path / "recon.toml"
    for pasted in ("pat-na1-PASTED-SECRET-1", "E5F1A3B9C0D2E4F6A8B0C1D3E5F7A9B1PASTED"):
        conf.write_text(f'[hubspot]\naccess_token = "env:{pasted}"\n')
        with pytest.raises(ConfigError) as err:
            load_config(conf)
        assert "PASTED" not in str(err.value) and "PASTED" not in repr(err.value.problems)
        assert "looks like a value" in str(err.value.problems)


def test_config_sections_never_show_their_input_in_errors() -> None:
    """Validation errors of the public sections showed `input_value=…`: a token in a notebook."""
    from pydantic import ValidationError

    from recon.config import HubSpotSection

    for bad in ({"access_token": ["pat-na1-LISTED-SECRET"]}, {"page_size": "pat-na1-X-SECRET"}):
        with pytest.raises(ValidationError) as err:
            HubSpotSection(**bad)
        assert "SECRET" not in str(err.value)


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("tok-12345678 ", True),
        ("tok-12345678\r", True),
        ("\ttok-12345678\n", True),
        ("\ufefftok-12345678\u200b", True),  # a byte-order mark, a zero-width space
        ("secr\r\nvalue99", False),
    ],
)
def test_a_secret_with_spaces_or_line_ends_around_it(
    monkeypatch: pytest.MonkeyPatch, value: str, ok: bool
) -> None:
    """A CRLF env file left "\r" on the token: sent as it was, the request failed as a network
    error after retries; spaces around it were sent (stripped by servers) but not blanked."""
    from recon.config import Secret
    from recon.errors import redact

    monkeypatch.setenv("T_SECRET", value)
    if ok:
        assert Secret("env:T_SECRET").get("hubspot.access_token") == "tok-12345678"
        assert redact(f"echo {value} and tok-12345678") == "echo *** and ***"
    else:
        with pytest.raises(ConfigError, match="T_SECRET holds a line break") as err:
            Secret("env:T_SECRET").get("hubspot.access_token")
        assert err.value.exit_code == 3 and "value99" not in str(err.value)


def test_a_table_written_as_a_value_and_a_numeric_portal_id(tmp_path: Path) -> None:
    """`store = "x"` was "a valid dictionary or instance of StoreSection" (a class name the
    user never wrote), and `portal_id = 123` (HubSpot shows it as a number) was refused."""
    cfg = load_config(write(tmp_path, "[hubspot]\nportal_id = 1234567\n"))
    assert cfg.hubspot.portal_id == "1234567"
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, 'store = "x"\n[mapping]\nfields = ["x"]\n'))
    assert err.value.problems == [
        ("store", "must be a table: a [store] heading with its keys below it, not a value"),
        (
            "mapping.fields[0]",
            "must be a table: a [[mapping.fields]] heading with its keys below it, not a value",
        ),
    ]
    assert "[N] counts a list's entries from 0" in (err.value.hint or "")


def test_an_unknown_key_names_what_it_likely_meant(tmp_path: Path) -> None:
    """A misspelt key or section, or a key under the wrong heading, said only "unknown key
    (check the spelling)": the key meant is named, and the hint stands below the list, not at
    the end of its last problem."""
    path = write(
        tmp_path,
        '[stor]\npath = "x.db"\n[hubspot]\nacess_token = "env:HS"\n[apply]\nmax_writes = 5\n'
        '[[mapping.fields]]\nobject = "companies"\nhubspot = "industry"\n'
        'salesforce = "Industry"\nrulle = "two_way"\n[colour]\nx = 1\n',
    )
    with pytest.raises(ConfigError) as err:
        load_config(path)
    problems = dict(err.value.problems)
    assert problems["stor"] == "unknown key; did you mean [store]?"
    assert problems["hubspot.acess_token"] == "unknown key; did you mean 'access_token'?"
    assert problems["apply.max_writes"] == "unknown key; max_writes is a key of [policy]"
    assert problems["mapping.fields[0].rulle"] == "unknown key; did you mean 'rule'?"
    assert problems["colour"].startswith("unknown key (check the spelling")
    assert str(err.value).splitlines()[-1] == f"({err.value.hint})"


def test_an_empty_path_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`path = ""` was read as the config file's folder: the store "could not be opened"
    (exit 1), an export folder or key file silently became the project folder."""
    path = write(
        tmp_path, '[store]\npath = ""\nexports_dir = " "\n[salesforce]\nprivate_key_file = ""\n'
    )
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.exit_code == ExitCode.CONFIG
    assert [p for p, _m in err.value.problems] == [
        "store.path",
        "store.exports_dir",
        "salesforce.private_key_file",
    ]
    assert all("is empty" in m for _p, m in err.value.problems)
    monkeypatch.setenv("RECON_STORE__PATH", "")
    with pytest.raises(ConfigError, match="set by the environment variable RECON_STORE__PATH"):
        load_config(write(tmp_path, ""))


def test_a_shell_reference_written_as_a_secret_says_to_write_env(tmp_path: Path) -> None:
    """`access_token = "$HUBSPOT_TOKEN"` is not expanded: against the sandbox it was sent as
    the token itself, elsewhere refused as a "literal secret" without naming env:NAME."""
    path = write(
        tmp_path,
        '[hubspot]\nbase_url = "http://127.0.0.1:18601"\naccess_token = "${HUBSPOT_TOKEN}"\n'
        '[notify]\nwebhook_url = "$HOOK"\n[salesforce]\nclient_secret = "%SF_SECRET%"\n',
    )
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert dict(err.value.problems) == {
        "hubspot.access_token": "${HUBSPOT_TOKEN} is not read from the environment; write "
        '"env:HUBSPOT_TOKEN"',
        "notify.webhook_url": '$HOOK is not read from the environment; write "env:HOOK"',
        "salesforce.client_secret": "%SF_SECRET% is not read from the environment; write "
        '"env:SF_SECRET"',
    }
    # a sandbox password that starts with $ is a password, and never repeated back
    path = write(
        tmp_path, '[hubspot]\nbase_url = "http://127.0.0.1:18601"\naccess_token = "$Summer2024"\n'
    )
    assert load_config(path).hubspot.access_token.get() == "$Summer2024"  # type: ignore[union-attr]


def test_hints_send_a_person_to_the_override_that_set_a_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A budget set by RECON_BUDGET__HUBSPOT_CALLS was to be raised "in recon.toml", where
    editing it changes nothing."""
    from recon.config import setting_place
    from recon.errors import BudgetExhausted
    from recon.writers import CallBudget

    conf = tmp_path / "prod.toml"
    conf.write_text("[budget]\nsalesforce_calls = 9\n", encoding="utf-8")
    monkeypatch.setenv("RECON_BUDGET__HUBSPOT_CALLS", "5")
    cfg = load_config(conf)
    assert cfg.budget.hubspot_calls == 5
    assert setting_place("budget", "salesforce_calls") == f"[budget] salesforce_calls in {conf}"
    assert setting_place("budget", "hubspot_calls").startswith("$RECON_BUDGET__HUBSPOT_CALLS ")
    with pytest.raises(BudgetExhausted) as hs:
        CallBudget("hubspot", 1, already=1).spend()
    assert "raise $RECON_BUDGET__HUBSPOT_CALLS (the environment override" in (hs.value.hint or "")
    with pytest.raises(BudgetExhausted) as sf:
        CallBudget("salesforce", 1, already=1).spend()
    assert f"raise [budget] salesforce_calls in {conf} for larger runs" in (sf.value.hint or "")
