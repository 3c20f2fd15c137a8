"""Ed25519 signature verification (RFC 8032), in pure Python, for OpenPGP EdDSA keys.

Only verification, over public data, so constant time does not matter; a few milliseconds per
signature. OpenPGP signs the hash of the data: the "message" here is that digest.
"""

from __future__ import annotations

import hashlib


class _Curve:
    """The twisted Edwards curve, points in extended coordinates (X, Y, Z, T)."""

    p = 2 ** 255 - 19
    q = 2 ** 252 + 27742317777372353535851937790883648493
    d = -121665 * pow(121666, -1, p) % p
    sqrt_m1 = pow(2, (p - 1) // 4, p)

    def __init__(self):
        p = self.p
        gy = 4 * pow(5, -1, p) % p
        gx = self._recover_x(gy, 0)
        self.base = (gx, gy, 1, gx * gy % p)

    def _recover_x(self, y: int, sign: int) -> int | None:
        p = self.p
        if y >= p:
            return None
        x2 = (y * y - 1) * pow(self.d * y * y + 1, -1, p)
        if x2 == 0:
            return None if sign else 0
        x = pow(x2, (p + 3) // 8, p)
        if (x * x - x2) % p:
            x = x * self.sqrt_m1 % p
        if (x * x - x2) % p:
            return None
        if (x & 1) != sign:
            x = p - x
        return x

    def _decode(self, s: bytes):
        if len(s) != 32:
            return None
        y = int.from_bytes(s, "little")
        sign = y >> 255
        y &= (1 << 255) - 1
        x = self._recover_x(y, sign)
        return None if x is None else (x, y, 1, x * y % self.p)

    def _add(self, P, Q):
        p, d = self.p, self.d
        A = (P[1] - P[0]) * (Q[1] - Q[0]) % p
        B = (P[1] + P[0]) * (Q[1] + Q[0]) % p
        C = 2 * P[3] * Q[3] * d % p
        D = 2 * P[2] * Q[2] % p
        E, F, G, H = B - A, D - C, D + C, B + A
        return (E * F % p, G * H % p, F * G % p, E * H % p)

    def _mul(self, s: int, P):
        Q = (0, 1, 1, 0)
        while s:
            if s & 1:
                Q = self._add(Q, P)
            P = self._add(P, P)
            s >>= 1
        return Q

    def _equal(self, P, Q) -> bool:
        p = self.p
        return (P[0] * Q[2] - Q[0] * P[2]) % p == 0 and (P[1] * Q[2] - Q[1] * P[2]) % p == 0

    def verify(self, public: bytes, message: bytes, signature: bytes) -> bool:
        if len(signature) != 64:
            return False
        A = self._decode(public)
        R = self._decode(signature[:32])
        if A is None or R is None:
            return False
        s = int.from_bytes(signature[32:], "little")
        if s >= self.q:
            return False
        h = int.from_bytes(hashlib.sha512(signature[:32] + public + message).digest(), "little") % self.q
        return self._equal(self._mul(s, self.base), self._add(R, self._mul(h, A)))


_curve = _Curve()


def verify(public: bytes, message: bytes, signature: bytes) -> bool:
    """Is signature (64 bytes) a valid Ed25519 signature of message by public (32 bytes)?"""
    return _curve.verify(public, message, signature)
