"""Errors raised while loading or executing an ASL definition."""

from __future__ import annotations

STATES_ALL = "States.ALL"
STATES_RUNTIME = "States.Runtime"
STATES_TASK_FAILED = "States.TaskFailed"
STATES_NO_CHOICE_MATCHED = "States.NoChoiceMatched"
STATES_BRANCH_FAILED = "States.BranchFailed"
STATES_INTRINSIC_FAILURE = "States.IntrinsicFailure"
STATES_RESULT_PATH_MATCH_FAILURE = "States.ResultPathMatchFailure"
STATES_TIMEOUT = "States.Timeout"


class DefinitionError(ValueError):
    """The definition uses something this interpreter does not support, or is malformed.

    Raised at load time (or at the first use of a dynamic feature) and always names the state,
    so an unsupported feature never silently behaves differently from AWS.
    """

    def __init__(self, state: str, message: str) -> None:
        self.state = state
        super().__init__(f"state {state!r}: {message}")


class StatesError(Exception):
    """A runtime error in ASL terms: an error name and a cause, as Catch and Retry see them."""

    def __init__(self, error: str, cause: str = "") -> None:
        self.error = error
        self.cause = cause
        super().__init__(f"{error}: {cause}" if cause else error)


class TaskFailed(StatesError):  # noqa: N818 - the ASL vocabulary: a task *failed*
    """Raised by a resource resolver to fail a Task with an ASL error name and cause.

    ``error`` is what Retry/Catch ``ErrorEquals`` match: ``States.TaskFailed``,
    ``Lambda.ServiceException``, ``Glue.ConcurrentRunsExceededException``, or the Python exception
    class name as Lambda reports it in ``errorType``.
    """


class StatesRuntimeError(StatesError):
    """``States.Runtime``: a path or data error. Like AWS, no Retry or Catch handles it."""

    def __init__(self, cause: str) -> None:
        super().__init__(STATES_RUNTIME, cause)
