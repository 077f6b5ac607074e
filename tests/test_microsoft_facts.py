"""Microsoft's facts (smtp_settings/mail/microsoft.py): token endpoints built and read back,
the sovereign clouds, and what is not a token endpoint or a GUID."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

from smtp_settings.mail import microsoft

TENANT = "9d1c0b7a-1234-4cde-8f00-000000000001"


@pytest.mark.parametrize("cloud", microsoft.CLOUDS, ids=lambda cloud: cloud.key)
def test_a_token_endpoint_built_for_a_cloud_reads_back(cloud: microsoft.Cloud) -> None:
    url = microsoft.token_endpoint(cloud.login_host, TENANT)
    assert url == f"https://{cloud.login_host}/{TENANT}/oauth2/v2.0/token"
    assert microsoft.tenant_from_token_endpoint(url) == TENANT
    assert microsoft.authority_from_token_endpoint(url) == f"https://{cloud.login_host}/{TENANT}"
    assert microsoft.tenant_in_path(f"/{TENANT}/oauth2/v2.0/token") == TENANT
    assert microsoft.tenant_id_in(url) == TENANT
    assert cloud.login_host in microsoft.LOGIN_HOSTS


def test_a_host_with_a_port_and_a_domain_tenant_read_back() -> None:
    url = microsoft.token_endpoint("127.0.0.1:8443", "contoso.onmicrosoft.com")
    assert url == "https://127.0.0.1:8443/contoso.onmicrosoft.com/oauth2/v2.0/token"
    assert microsoft.tenant_from_token_endpoint(url) == "contoso.onmicrosoft.com"
    assert microsoft.authority_from_token_endpoint(url) == (
        "https://127.0.0.1:8443/contoso.onmicrosoft.com"
    )
    # A domain is not the tenant's ID: only a GUID segment names it.
    assert microsoft.tenant_id_in(url) == ""


def test_the_sovereign_clouds_each_have_their_own_hosts_and_resources() -> None:
    usgov, china = microsoft.US_GOVERNMENT, microsoft.CHINA
    assert usgov.exchange_scope == "https://outlook.office365.us/.default"
    assert usgov.graph_host == "graph.microsoft.us"
    assert china.smtp_host == "smtp.partner.outlook.cn"
    assert china.graph_host == "microsoftgraph.chinacloudapi.cn"
    assert microsoft.cloud_for_exchange_resource("https://partner.outlook.cn") is china
    assert microsoft.cloud_for_exchange_resource("https://graph.microsoft.com") is None
    assert microsoft.GLOBAL.exchange_scope == "https://outlook.office365.com/.default"
    # Every cloud's Exchange, and Exchange's application id, are audiences Exchange takes.
    assert set(microsoft.EXCHANGE_AUDIENCES) == {
        microsoft.EXCHANGE_APP_ID,
        "https://outlook.office365.com",
        "https://outlook.office365.us",
        "https://partner.outlook.cn",
    }


def test_the_login_hosts_are_every_clouds_names_and_the_retired_german_one() -> None:
    assert {
        "login.microsoftonline.com",
        "login.microsoft.com",
        "login.windows.net",
        "login.microsoftonline.us",
        "login.partner.microsoftonline.cn",
        "login.chinacloudapi.cn",
        "login.microsoftonline.de",
    } == microsoft.LOGIN_HOSTS


@pytest.mark.parametrize(
    ("instance", "host"),
    [
        ("microsoftonline.us", "login.microsoftonline.us"),
        ("microsoftonline.com", "login.microsoftonline.com"),
        ("example.com", ""),
        ("", ""),
    ],
)
def test_the_login_host_of_a_discovered_cloud_instance(instance: str, host: str) -> None:
    assert microsoft.login_host_for_instance(instance) == host


@pytest.mark.parametrize(
    "url",
    [
        "https://login.microsoftonline.com/oauth2/v2.0/token",
        f"https://login.microsoftonline.com/{TENANT}/oauth2/token",
        f"https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/authorize",
        f"https://login.microsoftonline.com/x/{TENANT}/oauth2/v2.0/token",
        "",
    ],
)
def test_what_is_not_a_token_endpoint(url: str) -> None:
    assert microsoft.tenant_from_token_endpoint(url) is None
    assert microsoft.tenant_in_path(urlsplit(url).path) is None


def test_the_authority_needs_the_v2_token_path_at_the_end() -> None:
    assert microsoft.authority_from_token_endpoint(f"https://h/{TENANT}/oauth2/token") is None
    assert microsoft.authority_from_token_endpoint(f"https://h/{TENANT}/oauth2/v2.0/token/") is None


def test_an_empty_tenant_in_a_strict_path_is_left_to_the_tenant_rule() -> None:
    assert microsoft.tenant_in_path("//oauth2/v2.0/token") == ""
    assert microsoft.tenant_in_path(f"/{TENANT}/oauth2/v2.0/token/") is None


@pytest.mark.parametrize(
    ("value", "is_guid"),
    [
        (TENANT, True),
        (TENANT.upper(), True),
        (TENANT[:-1], False),
        (TENANT + "0", False),
        ("contoso.onmicrosoft.com", False),
        (" " + TENANT, False),
        ("", False),
    ],
)
def test_the_guid_rule(value: str, is_guid: bool) -> None:
    assert microsoft.is_guid(value) is is_guid


@pytest.mark.parametrize(
    ("typed", "hinted"),
    [
        (TENANT, True),
        ("Contoso.onmicrosoft.com", True),
        ("contoso", False),
        ("<TENANT_ID>", False),
        ("a b.com", False),
    ],
)
def test_the_pattern_the_page_fills_the_endpoint_by(typed: str, hinted: bool) -> None:
    # The page's script compiles the same text with JavaScript's RegExp: no Python-only syntax.
    assert bool(re.match(microsoft.TENANT_HINT_PATTERN, typed)) is hinted
    assert "(?" not in microsoft.TENANT_HINT_PATTERN
