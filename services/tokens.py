"""Sender access tokens encrypted at rest (Fernet: AES-128-CBC with HMAC-SHA256, from
the `cryptography` package), with a key from the environment.

SENDER_TOKEN_KEY holds one or more Fernet keys, comma-separated: the first encrypts,
every one decrypts, so a key is rotated by putting the new one first, re-sealing
(`campaigns senders reseal`), then dropping the old one. A token is decrypted only to
make a provider call; it is never returned by the API, logged or exported.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class TokenKeyError(ValueError):
    """SENDER_TOKEN_KEY cannot be used, or a sealed token was made with another key."""


class TokenBox:
    """Seals and opens access tokens with the configured keys."""

    def __init__(self, keys: str) -> None:
        parts = [k.strip() for k in keys.split(",") if k.strip()]
        if not parts:
            raise TokenKeyError("SENDER_TOKEN_KEY is empty")
        try:
            self._fernet = MultiFernet([Fernet(k.encode()) for k in parts])
        except (ValueError, TypeError) as exc:
            raise TokenKeyError(
                "SENDER_TOKEN_KEY must be Fernet keys (32 url-safe base64 bytes each), comma-separated"
            ) from exc

    def seal(self, token: str) -> str:
        return self._fernet.encrypt(token.encode()).decode()

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise TokenKeyError("a sender's token was sealed with a key SENDER_TOKEN_KEY does not hold") from None

    def reseal(self, sealed: str) -> str:
        """The token sealed with the first key (for a rotation)."""
        return self._fernet.rotate(sealed.encode()).decode()


def generate_key() -> str:
    return Fernet.generate_key().decode()
