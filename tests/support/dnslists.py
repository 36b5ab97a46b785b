"""The real DNS blocklists in ``../shared/dns/lists`` and their categories (tests and bench)."""

from __future__ import annotations

from pathlib import Path

#: The real blocklists in ``../shared/dns/lists`` and the category each one blocks (tests and
#: ``bench/dns_bench.py`` read the files from there; they are never copied into the repository).
SHARED_DNS_LIST_CATEGORIES: dict[str, str] = {
    "porn_sinfonietta.hosts": "porn",
    "porn_top1m_chadmayfield.domains": "porn",
    "phishing_blocklistproject.domains": "phishing",
    "ut1_agressif.domains": "hate",
    "ut1_vpn.domains": "vpn",
    "ut1_redirector.domains": "proxy",
    "ut1_residential-proxies.domains": "proxy",
    "ut1_doh.domains": "doh",
    "doh_vpn_proxy_bypass_hagezi.domains": "doh",
}


def shared_dns_lists(folder: Path) -> list[tuple[str, Path]]:
    """(category, path) for each known shared list, in the order above."""
    return [(category, folder / name) for name, category in SHARED_DNS_LIST_CATEGORIES.items()]
