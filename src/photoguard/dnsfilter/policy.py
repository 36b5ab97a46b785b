"""Filtering policy: client groups, categories, allowlists, SafeSearch and special names."""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from photoguard.dnsfilter.config import DnsConfig
from photoguard.dnsfilter.lists import EXCEPTION, WILDCARD, ListSet, find_rules, suffixes

log = logging.getLogger(__name__)

# Special names (answered locally whatever the lists say).
SP_NONE = 0
SP_CANARY = 1  # use-application-dns.net: Firefox turns its automatic DoH off on NXDOMAIN
SP_DDR = 2  # resolver.arpa: RFC 9462 discovery of designated (encrypted) resolvers
SP_RELAY = 3  # mask.icloud.com: iCloud Private Relay is switched off on NXDOMAIN
SS_GOOGLE = 4
SS_YOUTUBE = 5
SS_BING = 6
SS_DDG = 7

SPECIAL_LABELS = {
    SP_CANARY: "doh-canary",
    SP_DDR: "ddr",
    SP_RELAY: "private-relay",
    SS_GOOGLE: "safesearch-google",
    SS_YOUTUBE: "safesearch-youtube",
    SS_BING: "safesearch-bing",
    SS_DDG: "safesearch-duckduckgo",
}

GOOGLE_SAFE = "forcesafesearch.google.com"
BING_SAFE = "strict.bing.com"
DDG_SAFE = "safe.duckduckgo.com"
YOUTUBE_SAFE = {"strict": "restrict.youtube.com", "moderate": "restrictmoderate.youtube.com"}

# Google search domains (the ones Google lists for forcesafesearch; the common part).
GOOGLE_TLDS = (
    "com",
    "ad",
    "ae",
    "com.af",
    "com.ag",
    "al",
    "am",
    "co.ao",
    "com.ar",
    "as",
    "at",
    "com.au",
    "az",
    "ba",
    "com.bd",
    "be",
    "bf",
    "bg",
    "com.bh",
    "bi",
    "bj",
    "com.bn",
    "com.bo",
    "com.br",
    "bs",
    "bt",
    "co.bw",
    "by",
    "com.bz",
    "ca",
    "cd",
    "cf",
    "cg",
    "ch",
    "ci",
    "co.ck",
    "cl",
    "cm",
    "cn",
    "com.co",
    "co.cr",
    "com.cu",
    "cv",
    "com.cy",
    "cz",
    "de",
    "dj",
    "dk",
    "dm",
    "com.do",
    "dz",
    "com.ec",
    "ee",
    "com.eg",
    "es",
    "com.et",
    "fi",
    "com.fj",
    "fm",
    "fr",
    "ga",
    "ge",
    "gg",
    "com.gh",
    "com.gi",
    "gl",
    "gm",
    "gr",
    "com.gt",
    "gy",
    "com.hk",
    "hn",
    "hr",
    "ht",
    "hu",
    "co.id",
    "ie",
    "co.il",
    "im",
    "co.in",
    "iq",
    "is",
    "it",
    "je",
    "com.jm",
    "jo",
    "co.jp",
    "co.ke",
    "com.kh",
    "ki",
    "kg",
    "co.kr",
    "com.kw",
    "kz",
    "la",
    "com.lb",
    "li",
    "lk",
    "co.ls",
    "lt",
    "lu",
    "lv",
    "com.ly",
    "co.ma",
    "md",
    "me",
    "mg",
    "mk",
    "ml",
    "com.mm",
    "mn",
    "com.mt",
    "mu",
    "mv",
    "mw",
    "com.mx",
    "com.my",
    "co.mz",
    "com.na",
    "com.ng",
    "com.ni",
    "ne",
    "nl",
    "no",
    "com.np",
    "nr",
    "nu",
    "co.nz",
    "com.om",
    "com.pa",
    "com.pe",
    "com.pg",
    "com.ph",
    "com.pk",
    "pl",
    "pn",
    "com.pr",
    "ps",
    "pt",
    "com.py",
    "com.qa",
    "ro",
    "ru",
    "rw",
    "com.sa",
    "com.sb",
    "sc",
    "se",
    "com.sg",
    "sh",
    "si",
    "sk",
    "com.sl",
    "sn",
    "so",
    "sm",
    "sr",
    "st",
    "com.sv",
    "td",
    "tg",
    "co.th",
    "com.tj",
    "tl",
    "tm",
    "tn",
    "to",
    "com.tr",
    "tt",
    "com.tw",
    "co.tz",
    "com.ua",
    "co.ug",
    "co.uk",
    "com.uy",
    "co.uz",
    "com.vc",
    "co.ve",
    "vg",
    "co.vi",
    "com.vn",
    "vu",
    "ws",
    "rs",
    "co.za",
    "co.zm",
    "co.zw",
    "cat",
)
YOUTUBE_NAMES = (
    "www.youtube.com",
    "m.youtube.com",
    "youtubei.googleapis.com",
    "youtube.googleapis.com",
    "www.youtube-nocookie.com",
)
BING_NAMES = ("bing.com", "www.bing.com")
DDG_NAMES = ("duckduckgo.com", "www.duckduckgo.com", "start.duckduckgo.com", "html.duckduckgo.com")


def _special_table() -> dict[str, int]:
    t: dict[str, int] = {}
    for tld in GOOGLE_TLDS:
        t["google." + tld] = SS_GOOGLE
        t["www.google." + tld] = SS_GOOGLE
    for n in YOUTUBE_NAMES:
        t[n] = SS_YOUTUBE
    for n in BING_NAMES:
        t[n] = SS_BING
    for n in DDG_NAMES:
        t[n] = SS_DDG
    return t


SAFESEARCH_NAMES = _special_table()


@dataclass
class Group:
    name: str
    index: int
    block_mask: int
    safesearch: dict[int, str]  # special code → safe host
    allow: frozenset[str]

    def allows(self, name: str) -> bool:
        return bool(self.allow) and any(s in self.allow for s in suffixes(name))


@dataclass(slots=True)
class Verdict:
    """Group-independent facts about one name."""

    mask: int  # categories whose lists block the name
    allowed: bool  # matched by an allowlist
    special: int
    name: str


@dataclass
class ClientMap:
    """Client address → group (or None: not allowed)."""

    allowed: list[ipaddress.IPv4Network | ipaddress.IPv6Network]
    groups: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, int]]
    default: int
    cache: dict[str, int] = field(default_factory=dict)

    def lookup(self, ip: str) -> int:
        """Group index, or -1 when the client is outside the allowed networks."""
        g = self.cache.get(ip)
        if g is not None:
            return g
        try:
            addr = ipaddress.ip_address(ip.split("%", 1)[0])
        except ValueError:
            return -1
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        g = -1
        if any(addr in n for n in self.allowed):
            g = self.default
            for net, idx in self.groups:
                if addr in net:
                    g = idx
                    break
        if len(self.cache) > 65536:
            self.cache.clear()
        self.cache[ip] = g
        return g


def _nets(values: list[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(v, strict=False) for v in values]


class Policy:
    """Lists + groups. Immutable apart from its verdict memo; a reload builds a new one."""

    VERDICT_CACHE_MAX = 200_000

    def __init__(self, lists: ListSet, cfg: DnsConfig) -> None:
        self.lists = lists
        self.cfg = cfg
        self.specials: dict[str, int] = dict(SAFESEARCH_NAMES)
        if cfg.block_doh_canary:
            self.specials["use-application-dns.net"] = SP_CANARY
        if cfg.block_private_relay:
            self.specials["mask.icloud.com"] = SP_RELAY
            self.specials["mask-h2.icloud.com"] = SP_RELAY
        self.groups: list[Group] = []
        for i, gc in enumerate(cfg.groups):
            ss: dict[int, str] = {}
            if gc.safesearch:
                ss = {SS_GOOGLE: GOOGLE_SAFE, SS_BING: BING_SAFE, SS_DDG: DDG_SAFE}
            if gc.youtube != "off":
                ss[SS_YOUTUBE] = YOUTUBE_SAFE[gc.youtube]
            unknown = [c for c in gc.categories if c != "*" and c not in lists.categories]
            if unknown:
                log.warning("group %s: no list loaded for categories %s", gc.name, unknown)
            allow = frozenset(n.lower().rstrip(".") for n in gc.allow)
            self.groups.append(Group(gc.name, i, lists.category_bits(gc.categories), ss, allow))
        names = [g.name for g in self.groups]
        default = names.index(cfg.default_group) if cfg.default_group in names else 0
        self.clients = ClientMap(
            _nets(cfg.allowed_networks),
            [(n, i) for i, gc in enumerate(cfg.groups) for n in _nets(gc.networks)],
            default,
        )
        self.vcache: dict[bytes, Verdict] = {}
        self.cat_of_bit = {1 << i: c for i, c in enumerate(lists.categories)}

    def special_for(self, name: str) -> int:
        sp = self.specials.get(name, SP_NONE)
        if sp == SP_NONE and self.cfg.block_ddr and (name == "resolver.arpa" or name.endswith(".resolver.arpa")):
            sp = SP_DDR
        return sp

    def verdict_for_name(self, name: str) -> Verdict:
        sfx = suffixes(name)
        mask = self.lists.block.match(sfx)
        allowed = bool(self.lists.allow.match(sfx)) if mask else False
        return Verdict(mask, allowed, self.special_for(name), name)

    def verdict(self, wname: bytes, name: str) -> Verdict:
        """Memoised verdict for a lower-cased wire name (``name`` is its dotted form)."""
        v = self.vcache.get(wname)
        if v is None:
            v = self.verdict_for_name(name)
            if len(self.vcache) >= self.VERDICT_CACHE_MAX:
                self.vcache.clear()
            self.vcache[wname] = v
        return v

    def blocked_by(self, name: str, group: Group) -> int:
        """Categories (bits) that block ``name`` for ``group``; 0 if allowed."""
        v = self.verdict_for_name(name)
        m = v.mask & group.block_mask
        if not m or v.allowed or group.allows(name):
            return 0
        return m

    def first_category(self, mask: int) -> str:
        for i, c in enumerate(self.lists.categories):
            if mask >> i & 1:
                return c
        return "?"

    # -- explanation for ``dns check`` -------------------------------------------------------

    def explain(self, name: str, client: str) -> dict[str, Any]:
        name = name.lower().rstrip(".")
        gi = self.clients.lookup(client)
        out: dict[str, Any] = {"name": name, "client": client}
        if gi < 0:
            out.update(verdict="refused", reason="client outside allowed_networks")
            return out
        g = self.groups[gi]
        out["group"] = g.name
        out["group_categories"] = self.lists.names_of(g.block_mask)
        sfx = suffixes(name)
        v = self.verdict_for_name(name)
        rules: list[dict[str, Any]] = []
        for cat, path in self.lists.sources:
            bit = 1 << self.lists.categories.index(cat)
            if not v.mask & bit:
                continue
            for hit in find_rules(path, sfx):
                if hit.kind == EXCEPTION:
                    continue
                if hit.kind == WILDCARD and hit.rule_name == name:
                    continue  # *.x blocks subdomains of x only
                rules.append(
                    {
                        "category": cat,
                        "file": str(path),
                        "line": hit.line_no,
                        "rule": hit.line.strip(),
                        "enabled_for_group": bool(g.block_mask & bit),
                    }
                )
        allow_rules: list[dict[str, Any]] = []
        allow_paths: list[Path] = list(self.lists.allow_sources) + [p for _, p in self.lists.sources]
        for path in allow_paths:
            for hit in find_rules(path, sfx):
                is_allow_file = path in self.lists.allow_sources
                if is_allow_file or hit.kind == EXCEPTION:
                    allow_rules.append({"file": str(path), "line": hit.line_no, "rule": hit.line})
        group_allow = [s for s in sfx if s in g.allow]
        out["rules"] = rules
        out["allow_rules"] = allow_rules
        out["group_allow"] = group_allow
        sp = v.special
        if sp in (SP_CANARY, SP_RELAY):
            out.update(verdict="nxdomain", reason=SPECIAL_LABELS[sp])
            return out
        if sp == SP_DDR:
            out.update(verdict="nodata", reason=SPECIAL_LABELS[sp])
            return out
        if sp in g.safesearch:
            out.update(verdict="safesearch", reason=SPECIAL_LABELS[sp], rewrite=g.safesearch[sp])
            return out
        blocking = v.mask & g.block_mask
        if blocking and (v.allowed or group_allow):
            out.update(verdict="allowed", reason="allowlisted", categories=self.lists.names_of(v.mask))
        elif blocking:
            out.update(
                verdict="blocked",
                reason="category",
                categories=self.lists.names_of(blocking),
                block_mode=self.cfg.block_mode,
            )
        else:
            why = "not listed" if not v.mask else "category not enabled for this group"
            out.update(verdict="forwarded", reason=why, categories=self.lists.names_of(v.mask))
        return out
