"""Run an ASL definition on moto's Step Functions interpreter (LocalStack's), as a cross-check of
the local runner. See /work/shared/notes/asl-cross-check.md for why each patch is needed.

moto is pinned to 5.2.5: this module depends on its internals (the simple Lambda backend's
``invoke``, Glue's ``start_job_run`` and the ``.sync`` callback code).
"""

from __future__ import annotations

import inspect
import io
import json
import textwrap
import time
import zipfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
from moto import mock_aws
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.core.config import DefaultConfig
from moto.glue import exceptions as glue_exceptions
from moto.glue.models import GlueBackend
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_callback,
)

from state_machine.asl.errors import TaskFailed
from state_machine.asl.resources import function_name, lambda_error_payload

ACCOUNT = "123456789012"
REGION = "us-east-1"
MOTO_CONFIG: DefaultConfig = {
    "stepfunctions": {"execute_state_machine": True},
    "lambda": {"use_docker": False},
}
ROLE_NAME = "cross-check"
Handler = Callable[[Any], Any]
GlueJob = Callable[[dict[str, str]], Any]


@dataclass(frozen=True)
class MotoExecution:
    """What moto's interpreter did: final status, output or error, and the path it took."""

    status: str
    output: Any
    error: str | None
    cause: str | None
    entered_states: list[str]
    events: list[dict[str, Any]]


class MotoStepFunctions:
    """Creates state machines and runs executions against the running moto mock."""

    def __init__(self) -> None:
        self._sfn = boto3.client("stepfunctions", region_name=REGION)
        self._role_arn = f"arn:aws:iam::{ACCOUNT}:role/{ROLE_NAME}"
        self._machines = 0

    def run(
        self, definition: str, input: Any, *, name: str = "cross-check", timeout: float = 60.0
    ) -> MotoExecution:
        """Create a state machine from ``definition`` and run one execution named ``name``.

        Raises
        ------
        TimeoutError
            When the execution is still running after ``timeout`` seconds.
        """
        self._machines += 1
        machine_arn = self._sfn.create_state_machine(
            name=f"cross-check-{self._machines}", definition=definition, roleArn=self._role_arn
        )["stateMachineArn"]
        execution_arn = self._sfn.start_execution(
            stateMachineArn=machine_arn, name=name, input=json.dumps(input)
        )["executionArn"]
        description = self._wait(execution_arn, timeout)
        events = self._history(execution_arn)
        return MotoExecution(
            status=description["status"],
            output=json.loads(description["output"]) if "output" in description else None,
            error=description.get("error"),
            cause=description.get("cause"),
            entered_states=[
                event["stateEnteredEventDetails"]["name"]
                for event in events
                if event["type"].endswith("StateEntered")
            ],
            events=events,
        )

    def _wait(self, execution_arn: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            description: dict[str, Any] = dict(
                self._sfn.describe_execution(executionArn=execution_arn)
            )
            if description["status"] != "RUNNING":
                return description
            time.sleep(0.05)
        raise TimeoutError(f"{execution_arn} still running after {timeout}s")

    def _history(self, execution_arn: str) -> list[dict[str, Any]]:
        paginator = self._sfn.get_paginator("get_execution_history")
        return [
            dict(event)
            for page in paginator.paginate(executionArn=execution_arn)
            for event in page["events"]
        ]


@contextmanager
def moto_step_functions(
    functions: Mapping[str, Handler], glue_jobs: Mapping[str, GlueJob] | None = None
) -> Iterator[MotoStepFunctions]:
    """Start moto with state machine execution on; Lambda functions and Glue jobs run the given
    Python callables in-process.

    Parameters
    ----------
    functions
        Lambda function name -> handler ``event -> result``. An exception becomes an
        ``Unhandled`` function error with Lambda's ``errorType``/``errorMessage`` body.
    glue_jobs
        Glue job name -> callable given the job run ``Arguments``. It runs inside
        ``StartJobRun``; an exception marks the run FAILED.
    """
    with ExitStack() as stack:
        stack.enter_context(mock_aws(config=MOTO_CONFIG))
        stack.enter_context(_lambda_calls(functions))
        stack.enter_context(_glue_runs(glue_jobs or {}))
        stack.enter_context(_sync_callback_guard())
        _register(functions, glue_jobs or {})
        yield MotoStepFunctions()


def run_on_moto(
    definition: str,
    functions: Mapping[str, Handler],
    glue_jobs: Mapping[str, GlueJob] | None = None,
    *,
    input: Any,
    name: str = "cross-check",
) -> MotoExecution:
    """Run ``definition`` (JSON text, substitutions already applied) once on moto."""
    with moto_step_functions(functions, glue_jobs) as moto_sfn:
        return moto_sfn.run(definition, input, name=name)


def _register(functions: Mapping[str, Handler], glue_jobs: Mapping[str, GlueJob]) -> None:
    iam = boto3.client("iam", region_name=REGION)
    role_arn = iam.create_role(RoleName=ROLE_NAME, AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    lambda_client = boto3.client("lambda", region_name=REGION)
    for name in functions:
        lambda_client.create_function(
            FunctionName=name,
            Runtime="python3.11",
            Role=role_arn,
            Handler="handler.handler",
            Code={"ZipFile": _dummy_zip()},
        )
    glue = boto3.client("glue", region_name=REGION)
    for job in glue_jobs:
        glue.create_job(
            Name=job, Role=role_arn, Command={"Name": "glueetl", "ScriptLocation": "s3://x/y.py"}
        )


def _dummy_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return event\n")
    return buffer.getvalue()


@contextmanager
def _replaced(owner: Any, attribute: str, replacement: Any) -> Iterator[None]:
    original = getattr(owner, attribute)
    setattr(owner, attribute, replacement)
    try:
        yield
    finally:
        setattr(owner, attribute, original)


def _lambda_calls(functions: Mapping[str, Handler]) -> Any:
    def invoke(
        backend: LambdaSimpleBackend,
        name: str,
        qualifier: str | None,
        body: Any,
        headers: Any,
        response_headers: dict[str, str],
    ) -> bytes:
        handler = functions[function_name(name)]
        event = json.loads(body) if body else None
        try:
            result = handler(event)
        except Exception as exc:
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps(lambda_error_payload(exc)).encode()
        return json.dumps(result).encode()

    return _replaced(LambdaSimpleBackend, "invoke", invoke)


def _glue_runs(glue_jobs: Mapping[str, GlueJob]) -> Any:
    original = GlueBackend.start_job_run

    def start_job_run(backend: GlueBackend, name: str, arguments: Any, *args: Any) -> str:
        job = glue_jobs.get(name)
        try:
            if job is not None:
                job(dict(arguments or {}))
        except TaskFailed as refused:
            raise _glue_api_error(refused) from refused
        except Exception:
            run_id: str = original(backend, name, arguments, *args)
            backend.get_job_run(name, run_id).status = "FAILED"
            return run_id
        return original(backend, name, arguments, *args)

    return _replaced(GlueBackend, "start_job_run", start_job_run)


def _glue_api_error(refused: TaskFailed) -> Exception:
    # A job raising TaskFailed("Glue.<Code>") makes StartJobRun itself answer with that error.
    code = refused.error.removeprefix("Glue.")
    error_class = getattr(glue_exceptions, code, None)
    if error_class is None:
        raise ValueError(f"moto has no Glue error {code!r} to raise") from refused
    return error_class(refused.cause)  # type: ignore[no-any-return]


def _sync_callback_guard() -> Any:
    # moto 5.2.5 calls callback_endpoint.interrupt_all() on a None endpoint for `.sync` tasks:
    # recompile the method with a None check.
    callback_class = state_task_service_callback.StateTaskServiceCallback
    method = callback_class._eval_integration_pattern
    source = textwrap.dedent(inspect.getsource(method))
    broken = "callback_endpoint.interrupt_all()"
    if broken not in source:
        raise RuntimeError("moto changed: the .sync callback guard no longer applies")
    guarded = source.replace(broken, "if callback_endpoint is not None: " + broken)
    namespace: dict[str, Any] = {}
    exec(
        compile(guarded, inspect.getsourcefile(method) or "<moto>", "exec"),
        vars(state_task_service_callback),
        namespace,
    )
    return _replaced(
        callback_class, "_eval_integration_pattern", namespace["_eval_integration_pattern"]
    )
