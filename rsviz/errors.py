"""User-facing errors: each carries a message that the app and the CLI show as is."""


class RsvizError(Exception):
    """An error whose message is meant for the user (no traceback is shown)."""


class ModelUnavailable(RsvizError):
    """The weights of a model are missing or cannot be loaded."""


class CheckpointMismatch(RsvizError):
    """A checkpoint does not fit the architecture it was declared for."""


class ImageError(RsvizError):
    """An upload is not an image we can decode safely."""


class ConfigError(RsvizError, ValueError):
    """A parameter is out of its valid range."""


class Cancelled(RsvizError):
    """A job was cancelled by the user."""

    def __init__(self, message: str = "Cancelled by the user.") -> None:
        super().__init__(message)


class BudgetExhausted(RsvizError):
    """An attack asked for more queries than its budget allows."""
