from core.exceptions import ConflictError, ServiceError


class TransitionRefused(ConflictError):
    """A compare-and-set found the deposit in a status the transition does not allow."""

    def __init__(self, deposit_id, *, to: str, found: str | None = None, held: bool = False):
        self.deposit_id, self.to, self.found, self.held = deposit_id, to, found, held
        if found is None:
            message = f"Deposit {deposit_id} does not exist."
        elif held:
            message = f"Deposit {deposit_id} is on hold; release the hold first."
        else:
            message = f"Deposit {deposit_id} is {found}; it cannot move to {to}."
        super().__init__(message)


class InvalidDeposit(ServiceError):
    """Bad input for a deposit; ``field`` names the form field to mark."""

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.field = field


class LimitRefused(ServiceError):
    """A deposit limit refused the request (a LimitEvent was written)."""

    def __init__(self, message: str, *, kind: str):
        super().__init__(message)
        self.kind = kind


class IdempotencyConflict(ServiceError):
    """The same Idempotency-Key was used with a different request body (API: 422)."""
