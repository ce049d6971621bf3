"""The errors services raise for a person to read: each message is one sentence that says
what went wrong (and, where it helps, what to do next)."""


class ServiceError(Exception):
    """A refused operation; nothing was written."""


class PermissionRefused(ServiceError):
    """The actor lacks the role (or the bank, or is the same person twice)."""


class NotFound(ServiceError):
    """The named record does not exist."""


class ConflictError(ServiceError):
    """The record is not in a state that allows this operation (a compare-and-set lost)."""
