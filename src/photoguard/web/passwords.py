"""Password hashing with scrypt (memory-hard, in the standard library).

A hash is stored as ``scrypt$<log2 n>$<r>$<p>$<salt hex>$<key hex>``, so the cost can be raised
later without breaking existing accounts. 2**15 × 8 × 128 bytes = 32 MiB of memory per check.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

LOG2_N = 15
R = 8
P = 1
KEY_BYTES = 32
#: the shortest password ``user add``/``user passwd`` accept
MIN_LENGTH = 10
_MAXMEM = 128 * 1024 * 1024


def _derive(password: str, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=1 << log2_n, r=r, p=p, maxmem=_MAXMEM, dklen=KEY_BYTES)


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    key = _derive(password, salt, LOG2_N, R, P)
    return f"scrypt${LOG2_N}${R}${P}${salt.hex()}${key.hex()}"


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches ``stored``; False for a wrong password or a malformed hash."""
    try:
        kind, log2_n, r, p, salt, key = stored.split("$")
        if kind != "scrypt" or not (10 <= int(log2_n) <= 20) or not (1 <= int(r) <= 32) or not (1 <= int(p) <= 4):
            return False
        expected = bytes.fromhex(key)
        got = _derive(password, bytes.fromhex(salt), int(log2_n), int(r), int(p))
    except (ValueError, MemoryError):
        return False
    return hmac.compare_digest(got, expected)


#: verified against when the login is unknown, so a wrong login costs as much time as a wrong password
DUMMY_HASH = "scrypt$15$8$1$" + "00" * 16 + "$" + "00" * KEY_BYTES


def check_new_password(password: str) -> str | None:
    """Why ``password`` is not acceptable for a new account, or None."""
    if len(password) < MIN_LENGTH:
        return f"the password must have at least {MIN_LENGTH} characters"
    if password != password.strip():
        return "the password must not start or end with a space"
    return None
