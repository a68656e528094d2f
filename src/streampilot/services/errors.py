"""Errors of the use cases, each mapped to one HTTP status and one CLI message."""

from __future__ import annotations


class ServiceError(Exception):
    status = 400


class NotFound(ServiceError):
    status = 404


class Conflict(ServiceError):
    status = 409


class Unavailable(ServiceError):
    """A cluster or other dependency did not answer; the outcome may be unknown."""

    status = 502


class Throttled(ServiceError):
    """Too many wrong tokens from one client: it must wait ``retry_after_s``."""

    status = 429

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Forbidden(ServiceError):
    """The account sees the object but its role may not do this to it."""

    status = 403


class Unauthorized(ServiceError):
    """Wrong credentials."""

    status = 401
