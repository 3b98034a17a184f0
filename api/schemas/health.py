"""Wire models: health."""

from __future__ import annotations

from pydantic import BaseModel


class Status(BaseModel):
    status: str
