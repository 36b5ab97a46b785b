"""List parsing (every format), the compact index, and the real lists in ../shared/dns."""

from __future__ import annotations

import random
import string
from pathlib import Path

import pytest

from photoguard.dnsfilter.lists import (
    BLOCK,
    EXCEPTION,
    WILDCARD,
    load_lists,
    parse_line,
    parse_text,
    suffixes,
)
from tests.support.dnslists import shared_dns_lists
from tests.support.shared import shared_path

MIXED = """# comment line
! adblock comment
0.0.0.0 hosts-one.test
127.0.0.1 hosts-two.test hosts-three.test  # trailing comment
0.0.0.0 localhost
::1 ip6-localhost
0.0.0.0 0.0.0.0
plain.test
Upper.Case.TEST.
.leading-dot.test
||adblock.test^
||adblock-mod.test^$important,third-party
@@||exception.test^
*.wild.test
192.168.1.1
2001:db8::1
https://a-url.test/path
/regex.*/
example.com##.cosmetic
bücher.test
with space.test oops


\tindented.test\r
"""


def test_parse_text_all_formats() -> None:
    block, wild, exc = parse_text(MIXED)
    assert sorted(block) == sorted(
        [
            "hosts-one.test",
            "hosts-two.test",
            "hosts-three.test",
            "plain.test",
            "upper.case.test",
            "leading-dot.test",
            "adblock.test",
            "adblock-mod.test",
            "xn--bcher-kva.test",
            "indented.test",
        ]
    )
    assert wild == ["wild.test"]
    assert exc == ["exception.test"]


def test_parse_line_kinds() -> None:
    assert parse_line("0.0.0.0 a.test b.test") == [(BLOCK, "a.test"), (BLOCK, "b.test")]
    assert parse_line("*.w.test") == [(WILDCARD, "w.test")]
    assert parse_line("@@||x.test^") == [(EXCEPTION, "x.test")]
    assert parse_line("10.0.0.1") == []
    assert parse_line("# a.test") == []


def test_fast_and_slow_parsers_agree() -> None:
    rng = random.Random(1)
    lines = []
    for _ in range(2000):
        name = ".".join(
            "".join(rng.choice(string.ascii_lowercase + "-0") for _ in range(rng.randint(1, 9)))
            for _ in range(rng.randint(2, 4))
        )
        lines.append(rng.choice(["{}", "0.0.0.0 {}", "||{}^", "*.{}", "{}.", "# {}"]).format(name))
    text = "\n".join(lines)
    block, wild, exc = parse_text(text)
    slow_b, slow_w = [], []
    for line in lines:
        for kind, n in parse_line(line.lower()):
            (slow_b if kind == BLOCK else slow_w).append(n)
    assert sorted(block) == sorted(slow_b) and sorted(wild) == sorted(slow_w) and not exc


def test_index_semantics(tmp_path: Path) -> None:
    a = tmp_path / "a.txt"
    a.write_text("bad.test\n*.wild.test\nshared.test\n")
    b = tmp_path / "b.txt"
    b.write_text("shared.test\nother.test\n")
    allow = tmp_path / "allow.txt"
    allow.write_text("good.bad.test\n")
    ls = load_lists([("porn", a), ("hate", b)], [allow])
    assert ls.categories == ["porn", "hate"]

    def cats(name: str) -> list[str]:
        return ls.names_of(ls.block.match(suffixes(name)))

    assert cats("bad.test") == ["porn"]
    assert cats("x.y.bad.test") == ["porn"]
    assert cats("notbad.test") == []
    assert cats("wild.test") == []
    assert cats("a.wild.test") == ["porn"]
    assert cats("shared.test") == ["porn", "hate"]  # duplicates merge their categories
    assert cats("other.test") == ["hate"]
    assert ls.allow.match(suffixes("good.bad.test")) and ls.allow.match(suffixes("x.good.bad.test"))
    assert not ls.allow.match(suffixes("bad.test"))
    assert len(ls.block) == 4


def test_missing_list_file_is_reported(tmp_path: Path) -> None:
    ls = load_lists([("porn", tmp_path / "nope.txt")], [])
    assert len(ls.block) == 0 and ls.errors
    with pytest.raises(OSError):
        load_lists([("porn", tmp_path / "nope.txt")], [], strict=True)


def _shared_lists() -> list[tuple[str, Path]]:
    return shared_dns_lists(shared_path("dns", "lists"))


def test_real_lists_block_known_names() -> None:
    sources = _shared_lists()
    ls = load_lists(sources, [], strict=True)  # load time: bench/dns_bench.py prints list_load_s
    # README: 377,882 unique DNS names after dropping IP entries
    assert 377_000 <= len(ls.block) <= 379_000, len(ls.block)
    assert ls.block.nbytes / len(ls.block) <= 16  # hash 8 + mask 4 + bucket table

    def cats(name: str) -> list[str]:
        return ls.names_of(ls.block.match(suffixes(name)))

    assert cats("pornhub.com") == ["porn"]
    assert cats("www.xvideos.com") == ["porn"]
    assert "porn" in cats("007angels.com")
    assert cats("14words.com") == ["hate"]
    assert "vpn" in cats("01usevpn.website")
    assert "doh" in cats("0ms.dev")
    # every plain name of a list file is blocked (spot check the first 300 of each)
    for cat, path in sources:
        checked = 0
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            for kind, name in parse_line(line.lower()):
                if kind == BLOCK:
                    assert cat in cats(name), (path.name, name)
                    checked += 1
            if checked >= 300:
                break
    # ordinary school sites are not blocked, and no IP entries made it in
    for ok in ("wikipedia.org", "www.rijksoverheid.nl", "schooltv.nl", "google.com", "nos.nl"):
        assert cats(ok) == [], ok
    assert cats("118.123.4.224") == []


def test_no_hash_false_positives_on_random_names() -> None:
    ls = load_lists(_shared_lists(), [], strict=True)
    rng = random.Random(7)
    hits = 0
    for _ in range(20000):
        name = "".join(rng.choice(string.ascii_lowercase) for _ in range(14)) + ".zz-unlisted"
        hits += bool(ls.block.match(suffixes(name)))
    assert hits == 0


def test_bulk_and_line_parsers_agree_on_plain_chunks() -> None:
    rng = random.Random(2)
    lines = []
    for i in range(3000):
        name = f"n{i}-{rng.randrange(10**6)}.{rng.choice(['com', 'nl', 'b2', 'io'])}"
        form = rng.choice(["{}", "0.0.0.0 {}", "{}.", ".{}", "{}\r", "Upper{}"])
        lines.append(form.format(name))
    lines += ["10.1.2.3", "0.0.0.0 localhost", "0.0.0.0 0.0.0.0", "", "a.b2"]
    text = "\n".join(lines)
    block, wild, exc = parse_text(text)
    slow: list[str] = []
    for line in lines:
        slow += [n for kind, n in parse_line(line.lower()) if kind == BLOCK]
    assert sorted(block) == sorted(slow) and not wild and not exc
    assert "localhost" not in block and "10.1.2.3" not in block and "a.b2" in block
