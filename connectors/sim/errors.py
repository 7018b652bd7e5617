"""A request a simulated vendor refuses."""

from __future__ import annotations


class VendorError(Exception):
    """A request the vendor refuses; answered in the vendor's own error shape."""

    def __init__(self, status: int, message: str, code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
