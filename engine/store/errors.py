"""Errors the service functions raise; the API maps each to one HTTP status."""

from __future__ import annotations


class NotFound(Exception):
    """The named thing does not exist (404)."""


class Conflict(Exception):
    """The request contradicts the current state (409)."""


class Forbidden(Exception):
    """The caller may not do this (403)."""
