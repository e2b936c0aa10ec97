"""The exceptions of the SDK's calls and of `init`."""


class Refused(Exception):
    """The gateway refused a call. `reason` is the contract's (WIT) name of the refusal, e.g. ``"not-deferred"``,
    ``"unknown-connection"``, ``"closed"`` (a send), ``"not-granted"`` (an HTTP request); `str()` of it is the same
    name, so ``f"refused: {e}"`` reads as the contract does."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class SettingsRefused(Exception):
    """Raised by a plugin's `init` to refuse the route's settings: `wssgate check` fails with the message, `serve`
    does not start, and a reload carrying them is rejected."""
