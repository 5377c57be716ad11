"""The local Core View API (docs/core-view.openapi.yaml) as a FastAPI app.

Bodies are read raw (no model parsing): a batch is up to 5 000 records and the server must keep
up with the publisher. Errors answer ``{"error": code, "message": …}``.
"""

from __future__ import annotations

import gzip
import hmac
import json
import zlib
from collections.abc import Iterator

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from settlement.local_coreview.store import CoreViewProblemError, CoreViewStore

ERROR_STATUS_CODES = {400, 401, 404, 409, 413, 415, 422}
MAX_ADDRESS = 2**63 - 1  # part and seq are SQLite INTEGERs (64-bit), as the document says


def create_app(store: CoreViewStore, token: str) -> FastAPI:
    """The API over ``store``, accepting only ``Authorization: Bearer <token>``."""
    if not token.strip():
        raise ValueError("the local Core View needs a token (an empty one would accept 'Bearer ')")
    app = FastAPI(title="Core View (local)", version="1", openapi_url=None, docs_url=None)
    expected_token = token.encode()

    @app.exception_handler(CoreViewProblemError)
    async def problem_answer(_: Request, problem: CoreViewProblemError) -> JSONResponse:
        return _error(problem.status, problem.code, problem.message)

    @app.exception_handler(RequestValidationError)
    async def invalid_address(_: Request, error: RequestValidationError) -> JSONResponse:
        # only the integer path parameters part and seq are validated by FastAPI
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'][1:]))}: {e['msg']}" for e in error.errors()
        )
        return _error(400, "bad_address", problems)

    @app.exception_handler(StarletteHTTPException)
    async def routing_answer(_: Request, error: StarletteHTTPException) -> JSONResponse:
        # no route (404) or not its method (405): the documented error body, not FastAPI's
        code = "not_found" if error.status_code == 404 else f"http_{error.status_code}"
        answer = _error(error.status_code, code, str(error.detail))
        answer.headers.update(error.headers or {})
        return answer

    @app.middleware("http")
    async def authenticate(request: Request, call_next):  # type: ignore[no-untyped-def]
        # The scheme is case-insensitive (RFC 9110 §11.1); the token is compared exactly.
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        authorised = scheme.lower() == "bearer" and hmac.compare_digest(
            given.encode(), expected_token
        )
        if request.url.path != "/health" and not authorised:
            return _error(401, "unauthorized", "missing or wrong bearer token")
        return await call_next(request)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.put("/v1/runs/{run_id}")
    async def put_run(run_id: str, request: Request) -> JSONResponse:
        stored = store.put_run(run_id, (await _body(request))[0])
        return JSONResponse({"run_id": run_id, "created": stored.created})

    @app.put("/v1/runs/{run_id}/parts/{part}/batches/{seq}")
    async def put_batch(run_id: str, part: int, seq: int, request: Request) -> JSONResponse:
        if not (0 <= part <= MAX_ADDRESS and 0 <= seq <= MAX_ADDRESS):
            raise CoreViewProblemError(
                400, "bad_address", f"part and seq must be in 0..{MAX_ADDRESS}"
            )
        body, gzipped = await _body(request)
        stored = store.put_batch(run_id, part, seq, body, gzipped)
        return JSONResponse({"created": stored.created})

    @app.post("/v1/runs/{run_id}/commit")
    async def commit(run_id: str, request: Request) -> JSONResponse:
        return JSONResponse(store.commit(run_id, (await _body(request))[0]))

    @app.get("/v1/runs/{run_id}")
    async def get_run(run_id: str) -> JSONResponse:
        run = store.run(run_id)
        if run is None:
            raise CoreViewProblemError(404, "run_not_found", f"run {run_id} was not announced")
        return JSONResponse(run)

    @app.get("/v1/runs/{run_id}/records")
    async def get_records(run_id: str) -> Response:
        """Every stored record as JSON lines (read-back for tests and operators)."""
        if store.run(run_id) is None:
            raise CoreViewProblemError(404, "run_not_found", f"run {run_id} was not announced")
        return StreamingResponse(_json_lines(store, run_id), media_type="application/x-ndjson")

    return app


async def _body(request: Request) -> tuple[bytes, bytes]:
    """The JSON body and its gzip (decompressing or compressing whichever was sent)."""
    raw = await request.body()
    encoding = request.headers.get("content-encoding", "identity").lower()
    if encoding == "gzip":
        try:
            return gzip.decompress(raw), raw
        except (OSError, EOFError, zlib.error) as error:
            raise CoreViewProblemError(
                400, "bad_gzip", f"body is not valid gzip: {error}"
            ) from None
    if encoding != "identity":
        raise CoreViewProblemError(415, "unsupported_encoding", f"Content-Encoding {encoding}")
    return raw, gzip.compress(raw, compresslevel=1)


def _json_lines(store: CoreViewStore, run_id: str) -> Iterator[bytes]:
    """One chunk per stored batch (a chunk per record would cost a thread hop each)."""
    for records in store.batches(run_id):
        yield b"".join(json.dumps(r, separators=(",", ":")).encode() + b"\n" for r in records)


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status)
