"""Block/allow list parsing and the compact name index.

Formats understood, one rule per line (mixed freely in one file):

* hosts lines ``0.0.0.0 name [name ...]`` (any address in front; ``localhost`` and friends skipped)
* plain domains ``example.com`` (a leading ``.`` is accepted and ignored)
* adblock-style ``||example.com^`` (modifiers after ``$`` ignored); ``@@||example.com^`` is an
  exception: the name goes to the allowlist
* wildcards ``*.example.com``: subdomains only, not ``example.com`` itself
* comments starting with ``#`` or ``!`` (also after a rule); blank lines

IP addresses in domain lists are skipped (firewall material, not DNS names), and so are URLs,
regexes, cosmetic filters and anything else that is not a host name.

A listed name blocks itself and all its subdomains. The index is one sorted ``int64`` numpy
array of 64-bit name hashes (Python's keyed SipHash, so one process's index is never reused by
another) with a parallel ``uint32`` array of category bits: the low 16 bits block the name and its
subdomains, the high 16 bits (wildcards) block subdomains only, plus a bucket table (top bits of
the hash → range of the sorted array): about 15 bytes per name. A lookup hashes the few suffixes
of a query name and finds each with one or two integer comparisons.
With 1M names the chance that any of a query's suffixes collides with a listed name is about
``5 * 1e6 / 2**64`` (~3e-13).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)

LOW_MASK = 0xFFFF
_HOSTS_SKIP = frozenset(
    {
        "localhost",
        "localhost.localdomain",
        "local",
        "broadcasthost",
        "ip6-localhost",
        "ip6-loopback",
        "ip6-localnet",
        "ip6-mcastprefix",
        "ip6-allnodes",
        "ip6-allrouters",
        "ip6-allhosts",
        "0.0.0.0",
    }
)
_BAD_CHARS = frozenset("/:@?=&%,;\"'\\|^$()[]{}<>!~`+")

# Kinds of rule a line can hold.
BLOCK = 0
WILDCARD = 1
EXCEPTION = 2


def normalise_name(raw: str) -> str | None:
    """Lower-case host name without trailing dot, or None when ``raw`` is no DNS name."""
    name = raw.strip().lower().rstrip(".")
    if name.startswith("."):
        name = name.lstrip(".")
    if not name or len(name) > 253:
        return None
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    last = name[-1]
    if last.isdigit() and name.rpartition(".")[2].isdigit():
        return None  # IPv4 address (a TLD is never all digits)
    if not _BAD_CHARS.isdisjoint(name) or " " in name or "\t" in name or ".." in name:
        return None
    return name


def parse_line(line: str) -> list[tuple[int, str]]:
    """Rules on one list line as ``(kind, name)``; slow but exact (used by ``dns check``)."""
    s = line.strip()
    if not s or s[0] in "#!":
        return []
    if "##" in s or "#@#" in s or "#?#" in s or "#$#" in s:
        return []  # adblock cosmetic filter: nothing for DNS
    if "#" in s and not s.startswith(("||", "@@")):
        s = s.split("#", 1)[0].strip()
    kind = BLOCK
    if s.startswith("@@"):
        kind = EXCEPTION
        s = s[2:]
    if s.startswith("||"):
        s = s[2:]
        s = s.split("$", 1)[0]
        if s.endswith("^"):
            s = s[:-1]
        if s.startswith("*."):
            s = s[2:]
        name = normalise_name(s)
        return [(kind, name)] if name else []
    if kind == EXCEPTION:
        name = normalise_name(s.lstrip("|").split("^", 1)[0].split("$", 1)[0])
        return [(kind, name)] if name else []
    parts = s.split()
    if len(parts) > 1:
        first = parts[0]
        if not (first[0].isdigit() or ":" in first):
            return []
        out: list[tuple[int, str]] = []
        for p in parts[1:]:
            name = normalise_name(p)
            if name and name not in _HOSTS_SKIP:
                out.append((BLOCK, name))
        return out
    if s.startswith("*."):
        name = normalise_name(s[2:])
        return [(WILDCARD, name)] if name else []
    if s.endswith("^"):
        s = s[:-1]
    name = normalise_name(s)
    return [(BLOCK, name)] if name else []


_BULK_BAD = tuple(sorted(_BAD_CHARS | {"#", "*", " ", "\t", ".."}))


def _parse_bulk(text: str) -> list[str] | None:
    """Whole-chunk parse of plain-domain / ``0.0.0.0 name`` text; None if the chunk needs the
    line-by-line parser (comments, adblock syntax, several names a line, non-ASCII...)."""
    t = text.lower()
    hosts = "0.0.0.0 " in t
    if hosts:
        t = t.replace("\n0.0.0.0 ", "\n")
        if t.startswith("0.0.0.0 "):
            t = t[8:]
    if "\r" in t:
        t = t.replace("\r", "")
    if "#" in t or "!" in t:  # whole-line comments (list headers) do not spoil the chunk
        t = "\n".join([ln for ln in t.split("\n") if not ln.startswith(("#", "!"))])
    if not t.isascii() or any(ch in t for ch in _BULK_BAD):
        return None
    lines = t.split("\n")
    out = [n for n in lines if n and n[-1] not in ".0123456789" and n[0] != "." and len(n) <= 253]
    odd = [n for n in lines if n and (n[-1] in ".0123456789" or n[0] == "." or len(n) > 253)]
    for n in odd:
        name = normalise_name(n)
        if name:
            out.append(name)
    if hosts:
        out = [n for n in out if n not in _HOSTS_SKIP]
    return out


def parse_text(text: str) -> tuple[list[str], list[str], list[str]]:
    """Fast bulk parse: (block names, wildcard names, exception names).

    Chunks of plain domains or ``0.0.0.0 name`` lines (nearly all of every real list) are
    split in one go; other text goes line by line, plain lines through a short path with no
    regex, everything else through :func:`parse_line`.
    """
    bulk = _parse_bulk(text)
    if bulk is not None:
        return bulk, [], []
    block: list[str] = []
    wild: list[str] = []
    exc: list[str] = []
    add = block.append
    bad = _BAD_CHARS
    for line in text.lower().split("\n"):
        if not line:
            continue
        c = line[0]
        if c == "#" or c == "!":
            continue
        line = line.strip()
        if not line:
            continue
        if line.startswith("0.0.0.0 ") and "#" not in line:
            rest = line[8:].split()
            if len(rest) == 1:
                line = rest[0]
                if line in _HOSTS_SKIP:
                    continue
            else:
                block.extend(name for _kind, name in parse_line(line))
                continue
        if (
            line.isascii()
            and " " not in line
            and "\t" not in line
            and "#" not in line
            and line[0] not in "*|@."
            and line[-1] not in ".^"
            and not line[-1].isdigit()
            and ".." not in line
            and len(line) <= 253
            and bad.isdisjoint(line)
        ):
            add(line)
            continue
        for kind, name in parse_line(line):
            (block if kind == BLOCK else wild if kind == WILDCARD else exc).append(name)
    return block, wild, exc


def read_text(path: Path) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


CHUNK_CHARS = 1 << 20


def iter_chunks(path: Path, size: int = CHUNK_CHARS) -> Iterator[str]:
    """The file's text in pieces of about ``size`` characters, each ending at a line end.

    Parsing piece by piece keeps the transient Python strings of a big list small, so the
    memory they used is reused instead of staying in the process after loading.
    """
    with open(path, encoding="utf-8", errors="replace") as f:
        rest = ""
        while True:
            block = f.read(size)
            if not block:
                break
            cut = block.rfind("\n")
            if cut < 0:
                rest += block
                continue
            yield rest + block[: cut + 1]
            rest = block[cut + 1 :]
        if rest:
            yield rest


def _release_free_memory() -> None:
    """Hand freed heap pages back to the OS (glibc); a no-op elsewhere."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def suffixes(name: str) -> list[str]:
    """``a.b.c`` → ``["a.b.c", "b.c", "c"]``."""
    out = [name]
    i = name.find(".")
    while i >= 0:
        out.append(name[i + 1 :])
        i = name.find(".", i + 1)
    return out


def _hash_array(names: Sequence[str]) -> npt.NDArray[np.int64]:
    return np.fromiter(map(hash, names), dtype=np.int64, count=len(names))


@dataclass
class _Builder:
    hashes: list[npt.NDArray[np.int64]] = field(default_factory=list)
    masks: list[npt.NDArray[np.uint32]] = field(default_factory=list)

    def add(self, names: Sequence[str], mask: int) -> None:
        if names:
            self.hashes.append(_hash_array(names))
            self.masks.append(np.full(len(names), mask, dtype=np.uint32))

    def build(self) -> NameIndex:
        if not self.hashes:
            return NameIndex(np.zeros(0, np.int64), np.zeros(0, np.uint32))
        h = np.concatenate(self.hashes)
        m = np.concatenate(self.masks)
        self.hashes.clear()
        self.masks.clear()
        order = np.argsort(h, kind="stable")
        h = h[order]
        m = m[order]
        del order
        if len(h) > 1:
            starts = np.flatnonzero(np.concatenate(([True], h[1:] != h[:-1])))
            if len(starts) != len(h):
                m = np.bitwise_or.reduceat(m, starts).astype(np.uint32)
                h = h[starts]
        return NameIndex(np.ascontiguousarray(h), np.ascontiguousarray(m))


class NameIndex:
    """Sorted name hashes with a parallel category bit mask (see module doc).

    Lookups of single names go through a bucket table: the top ``bits`` bits of a hash select a
    range of the sorted array (about one entry), so a query's suffixes are found with a few
    integer comparisons in plain Python instead of a numpy call per query (~0.5 µs a suffix).
    """

    __slots__ = ("_half", "_hv", "_last", "_mv", "_ov", "_shift", "hashes", "masks", "offsets")

    def __init__(self, hashes: npt.NDArray[np.int64], masks: npt.NDArray[np.uint32]) -> None:
        self.hashes = hashes
        self.masks = masks
        self._last = len(hashes) - 1
        bits = min(22, max(4, len(hashes).bit_length() - 1))  # ~1-2 names a bucket
        self._shift = 64 - bits
        self._half = 1 << (bits - 1)
        bounds = (np.arange(1 << bits, dtype=np.int64) - self._half) << self._shift
        self.offsets = np.append(np.searchsorted(hashes, bounds), len(hashes)).astype(np.uint32)
        self._hv = memoryview(hashes)  # type: ignore[arg-type,unused-ignore]
        self._mv = memoryview(masks)  # type: ignore[arg-type,unused-ignore]
        self._ov = memoryview(self.offsets)  # type: ignore[arg-type,unused-ignore]

    def __len__(self) -> int:
        return len(self.hashes)

    @property
    def nbytes(self) -> int:
        return int(self.hashes.nbytes + self.masks.nbytes + self.offsets.nbytes)

    def get(self, name: str) -> int:
        """Stored mask of one exact name (0 if absent)."""
        h = hash(name)
        b = (h >> self._shift) + self._half
        ov = self._ov
        lo = ov[b]
        hi = ov[b + 1]
        hv = self._hv
        while lo < hi:
            if hv[lo] == h:
                return int(self._mv[lo])
            lo += 1
        return 0

    def raw_masks(self, sfx: Sequence[str]) -> list[int]:
        """Stored mask for each suffix (0 where absent)."""
        if self._last < 0:
            return [0] * len(sfx)
        q = np.fromiter(map(hash, sfx), dtype=np.int64, count=len(sfx))
        idx = self.hashes.searchsorted(q)
        np.minimum(idx, self._last, out=idx)
        found = self.hashes[idx] == q
        out: list[int] = np.where(found, self.masks[idx], 0).tolist()
        return out

    def match(self, sfx: Sequence[str]) -> int:
        """Category bits that block the name whose suffixes are ``sfx`` (name first)."""
        if self._last < 0:
            return 0
        get = self.get
        out = get(sfx[0]) & LOW_MASK
        for s in sfx[1:]:
            v = get(s)
            if v:
                out |= (v | (v >> 16)) & LOW_MASK
        return out

    def match_many(self, sfx: Sequence[str]) -> int:
        """Same as :meth:`match`, one vectorised numpy call (faster for long names / batches)."""
        vals = self.raw_masks(sfx)
        out = vals[0] & LOW_MASK
        for v in vals[1:]:
            if v:
                out |= (v | (v >> 16)) & LOW_MASK
        return out


@dataclass
class ListSet:
    """Everything loaded from the list files: block index, allow index and where they came from."""

    categories: list[str]
    block: NameIndex
    allow: NameIndex
    sources: list[tuple[str, Path]]
    allow_sources: list[Path]
    load_seconds: float = 0.0
    names_read: int = 0
    errors: list[str] = field(default_factory=list)
    mtimes: dict[str, float] = field(default_factory=dict)

    def category_bits(self, cats: Iterable[str]) -> int:
        out = 0
        for c in cats:
            if c == "*":
                out |= (1 << len(self.categories)) - 1
            elif c in self.categories:
                out |= 1 << self.categories.index(c)
        return out

    def names_of(self, mask: int) -> list[str]:
        return [c for i, c in enumerate(self.categories) if mask >> i & 1]

    def names_per_category(self) -> dict[str, int]:
        """Listed names (wildcards included) per category, in category order."""
        m = self.block.masks
        both = (m | (m >> 16)) & LOW_MASK
        return {c: int(np.count_nonzero(both & (1 << i))) for i, c in enumerate(self.categories)}


def file_mtimes(paths: Iterable[Path]) -> dict[str, float]:
    out: dict[str, float] = {}
    for p in paths:
        try:
            out[str(p)] = os.stat(p).st_mtime
        except OSError:
            out[str(p)] = -1.0
    return out


def load_lists(
    sources: Sequence[tuple[str, Path]],
    allow_paths: Sequence[Path],
    extra_categories: Sequence[str] = (),
    strict: bool = False,
) -> ListSet:
    """Parse list files and build the indexes. A missing file is logged (or raises if strict)."""
    t0 = time.perf_counter()
    categories: list[str] = []
    for cat, _ in sources:
        if cat not in categories:
            categories.append(cat)
    for cat in extra_categories:
        if cat not in categories:
            categories.append(cat)
    if len(categories) > 16:
        raise ValueError("at most 16 categories")
    blk = _Builder()
    alw = _Builder()
    errors: list[str] = []
    total = 0
    for cat, path in sources:
        bit = 1 << categories.index(cat)
        n_block = n_wild = 0
        try:
            for text in iter_chunks(path):
                block, wild, exc = parse_text(text)
                del text
                n_block += len(block)
                n_wild += len(wild)
                blk.add(block, bit)
                blk.add(wild, bit << 16)
                alw.add(exc, 1)
                del block, wild, exc
        except OSError as e:
            if strict:
                raise
            errors.append(f"{path}: {e.strerror or e}")
            log.error("cannot read list %s (%s): %s", path, cat, e)
            continue
        total += n_block + n_wild
        log.info("list %s (%s): %d names, %d wildcards", path, cat, n_block, n_wild)
    for path in allow_paths:
        try:
            text = read_text(path)
        except OSError as e:
            if strict:
                raise
            errors.append(f"{path}: {e.strerror or e}")
            log.error("cannot read allowlist %s: %s", path, e)
            continue
        block, wild, exc = parse_text(text)
        alw.add(block + exc, 1)
        alw.add(wild, 1 << 16)
    block_index = blk.build()
    allow_index = alw.build()
    _release_free_memory()
    ls = ListSet(
        categories=categories,
        block=block_index,
        allow=allow_index,
        sources=[(c, Path(p)) for c, p in sources],
        allow_sources=[Path(p) for p in allow_paths],
        names_read=total,
        errors=errors,
        mtimes=file_mtimes([p for _, p in sources] + list(allow_paths)),
    )
    ls.load_seconds = time.perf_counter() - t0
    log.info(
        "lists loaded: %d unique names in %d categories, %d allowlisted, %.2f s, %.1f MB index",
        len(ls.block),
        len(categories),
        len(ls.allow),
        ls.load_seconds,
        (ls.block.nbytes + ls.allow.nbytes) / 1e6,
    )
    return ls


@dataclass(frozen=True)
class RuleHit:
    path: Path
    line_no: int
    line: str
    rule_name: str
    kind: int


def find_rules(path: Path, names: Iterable[str]) -> Iterator[RuleHit]:
    """Lines of ``path`` whose rule matches one of ``names`` (exact suffix names)."""
    wanted = set(names)
    try:
        text = read_text(path)
    except OSError:
        return
    for no, line in enumerate(text.split("\n"), 1):
        low = line.lower()
        if not any(w in low for w in wanted):
            continue
        for kind, name in parse_line(low):
            if name in wanted:
                yield RuleHit(path, no, line.rstrip("\r"), name, kind)
