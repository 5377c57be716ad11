"""Task resources run in-process: Lambda functions (both the ``lambda:invoke`` integration and the
plain function ARN), Glue job runs, and any other resource by its ARN.

Errors follow what AWS reports, so Retry/Catch match the same names locally and on AWS: a Python
exception in a handler becomes the error named by its class, with Lambda's error payload as cause.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from state_machine.asl.errors import STATES_TASK_FAILED, DefinitionError, TaskFailed

Handler = Callable[[Any], Any]
LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"
GLUE_START_JOB_RUN = "arn:aws:states:::glue:startJobRun"
GLUE_START_JOB_RUN_SYNC = "arn:aws:states:::glue:startJobRun.sync"


def lambda_error_payload(exc: BaseException) -> dict[str, str]:
    """The body Lambda returns for an unhandled exception (``errorMessage``, ``errorType``)."""
    return {"errorMessage": str(exc), "errorType": type(exc).__name__}


def lambda_error(exc: BaseException) -> TaskFailed:
    """The ``TaskFailed`` Step Functions reports when a Lambda handler raises ``exc``."""
    cause = json.dumps(lambda_error_payload(exc), separators=(",", ":"), ensure_ascii=False)
    return TaskFailed(type(exc).__name__, cause)


def as_lambda(handler: Handler) -> Handler:
    """Wrap a handler ``event -> result`` so it fails like a Lambda function.

    A raised exception becomes ``TaskFailed(error=<exception class name>, cause=<Lambda error
    payload JSON>)``; a result that cannot be serialised fails with ``Runtime.MarshalError``.
    """

    def invoke(event: Any) -> Any:
        try:
            result = handler(event)
        except TaskFailed:
            raise
        except Exception as exc:
            raise lambda_error(exc) from exc
        try:
            return json.loads(json.dumps(result))
        except (TypeError, ValueError) as exc:
            raise TaskFailed("Runtime.MarshalError", f"Unable to marshal response: {exc}") from exc

    return invoke


def function_name(reference: str) -> str:
    """The function name in a name, a function ARN or a qualified ARN."""
    if not reference.startswith("arn:"):
        return reference.split(":", 1)[0]
    parts = reference.split(":")
    return parts[6] if len(parts) > 6 else parts[-1]


class TaskResources:
    """A ``ResourceResolver`` that dispatches Task resources to Python callables.

    Parameters
    ----------
    lambdas
        Function name -> handler ``event -> result`` (wrapped with ``as_lambda``).
    glue_jobs
        Job name -> callable given the job run ``Arguments``; runs synchronously.
    services
        Any other Resource ARN -> callable given the effective input.
    """

    def __init__(
        self,
        lambdas: Mapping[str, Handler] | None = None,
        glue_jobs: Mapping[str, Callable[[dict[str, str]], Any]] | None = None,
        services: Mapping[str, Handler] | None = None,
    ) -> None:
        self._lambdas = {name: as_lambda(handler) for name, handler in (lambdas or {}).items()}
        self._glue_jobs = dict(glue_jobs or {})
        self._services = dict(services or {})

    def __call__(self, resource: str, parameters: Any, /) -> Any:
        """Run ``resource`` with the task's effective input and return its raw result."""
        if resource in self._services:
            return self._services[resource](parameters)
        if resource == LAMBDA_INVOKE:
            payload = parameters.get("Payload") if isinstance(parameters, dict) else None
            result = self._lambda(str(parameters.get("FunctionName", "")))(payload)
            return {"ExecutedVersion": "$LATEST", "Payload": result, "StatusCode": 200}
        if resource.startswith("arn:aws:lambda:") and ":function:" in resource:
            return self._lambda(resource)(parameters)
        if resource in (GLUE_START_JOB_RUN, GLUE_START_JOB_RUN_SYNC):
            return self._glue(parameters, sync=resource == GLUE_START_JOB_RUN_SYNC)
        raise DefinitionError(resource, "no local implementation for this Task resource")

    def _lambda(self, reference: str) -> Handler:
        name = function_name(reference)
        if name not in self._lambdas:
            raise TaskFailed("Lambda.ResourceNotFoundException", f"Function not found: {reference}")
        return self._lambdas[name]

    def _glue(self, parameters: dict[str, Any], *, sync: bool) -> dict[str, Any]:
        job_name = parameters.get("JobName", "")
        if job_name not in self._glue_jobs:
            raise TaskFailed("Glue.EntityNotFoundException", f"Job {job_name} not found")
        arguments = dict(parameters.get("Arguments", {}))
        run_id = f"jr_{uuid.uuid4().hex}"
        run = {"Id": run_id, "JobName": job_name, "Arguments": arguments, "Attempt": 0}
        try:
            self._glue_jobs[job_name](arguments)
        except TaskFailed:
            raise
        except Exception as exc:
            failed = {
                **run,
                "JobRunState": "FAILED",
                "ErrorMessage": f"{type(exc).__name__}: {exc}",
            }
            raise TaskFailed(STATES_TASK_FAILED, json.dumps(failed)) from exc
        return {**run, "JobRunState": "SUCCEEDED"} if sync else {"JobRunId": run_id}
