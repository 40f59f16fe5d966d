"""`foi serve`: FoI Studio's engines behind HTTP and a WebSocket (FastAPI + uvicorn).

    GET    /v1/info                  the server: API version, FoI Studio version, models, devices, limits
    POST   /v1/tokens                count an instruction list's tokens with a model's tokenizer
    POST   /v1/jobs                  a locate or an edit (photo, instructions, settings, seed, masks) → its id
    GET    /v1/jobs/{id}             its state (queued, running, done, failed, cancelled), progress, error
    DELETE /v1/jobs/{id}             cancel it
    GET    /v1/jobs/{id}/result      the finished result, as JSON with base64 pictures (see wire.py)
    WS     /v1/jobs/{id}/events      its state changes and progress, with small PNG previews
    GET    /docs                     these routes, browsable (OpenAPI)

Security (docs/SERVER.md): the server listens on 127.0.0.1 unless told otherwise, and any
other address needs a token (`Authorization: Bearer …`, compared in constant time on every
/v1 route and the socket). Without a token only loopback host names are served, and posts must
be JSON, so a web page in the user's browser cannot reach it. Bodies are bounded; photos are
PNG, decoded with the local path's limits, or raw RGB held to the same pixel limit and checked
for length before decoding; masks are PNG or float32 of bounded shape; every number goes through
EditSettings' ranges; clients pick models by name from the server's own list and never name a
file; nothing is unpickled and no code is loaded. Model work runs in the scheduler's device
threads, decoding and encoding in the thread pool: the event loop only moves bytes.

Imported only by `foi serve` (and the tests): `foi --help` and `foi edit` never load FastAPI."""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from fastapi import Depends, FastAPI, Request, WebSocket
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.websockets import WebSocketDisconnect

from . import wire
from .catalog import is_loopback
from .errors import FoiError, InstructionError
from .scheduler import JobState, QueueFullError, Scheduler
from .settings import MAX_INSTRUCTIONS, MAX_SEED
from .version import version

log = logging.getLogger("foi.serve")

MiB = 1024**2
DEFAULT_MAX_REQUEST_BYTES = 128 * MiB  # a 24 MP photo in base64: 60–90 MiB as PNG, 96 MiB raw
SMALL_REQUEST_BYTES = 1 * MiB  # /v1/tokens
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1", "[::1]")


class ApiError(Exception):
    def __init__(self, status: int, message: str, kind: str | None = None):
        super().__init__(message)
        self.status, self.message, self.kind = status, message, kind


# -- the request bodies, as /docs shows them (wire.request_from_json checks every value) --------
class InstructionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    text: str = Field(description="the instruction, at most 1000 characters")
    keyword: str | None = Field(None, description="the word of the text that names where it acts; null: everywhere")
    strength: float = Field(1.0, description="α, 0–10")
    threshold: float | None = Field(None, description="τ, 0–1; null: drawn from 0.4–0.7 with the seed")


class ArrayIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    dtype: Literal["bool", "float32"]
    encoding: Literal["png", "raw"] = Field(description="png: 8-bit grey PNG (value = level/255, or ≥128 for "
                                                        "bool); raw: little-endian float32")
    shape: list[int] | None = Field(None, description="[height, width], for raw only")
    data: str = Field(description="base64")


class PictureIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    encoding: Literal["raw"]
    size: list[int] = Field(description="[width, height]")
    data: str = Field(description="base64 of width × height × 3 bytes: 8-bit RGB rows, top to bottom")


class JobIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    kind: Literal["edit", "locate"]
    model: str | None = Field(None, description="a model name from GET /v1/info; null: the server's first")
    photo: PictureIn | str = Field(description="the photo (RGB, orientation already applied): base64 PNG text, "
                                               "or raw")
    instructions: list[InstructionIn] = Field(description=f"1 to {MAX_INSTRUCTIONS} instructions")
    settings: dict[str, bool | int | float | str] = Field(
        default_factory=dict, description="EditSettings fields (steps, strength, image_guidance, text_guidance, "
                                          "gamma, grounding_factor, disentangle_until, modulate_until, "
                                          "outside_tokens, focus, resolution); left out: the paper's defaults")
    seed: int = Field(0, ge=0, le=MAX_SEED)
    masks: list[ArrayIn] | None = Field(None, description="edit only: one mask per instruction, at the photo's size "
                                                          "or the working frame's; null: find the regions")
    result_encoding: Literal["png", "raw"] = Field("png", description="how the result's picture comes back")


class TokensIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    model: str | None = None
    instructions: list[InstructionIn]


@dataclass(frozen=True)
class ServerOptions:
    tokens: tuple[str, ...] = ()  # empty: no token asked (loopback binds only)
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    local_only: bool = True  # no token: only loopback Host names are served


def create_app(scheduler: Scheduler, options: ServerOptions = ServerOptions()) -> FastAPI:
    """The web app over a scheduler whose device threads are started (or will be)."""
    app = FastAPI(title="FoI Studio server", version=version(),
                  description="Focus on Your Instruction edits on this server's models. "
                              "Every /v1 route needs `Authorization: Bearer <token>` when the server has a token.")
    bearer = HTTPBearer(auto_error=False, description="the token `foi serve` printed or was given")
    tokens = tuple(token.encode("utf-8") for token in options.tokens)

    def client_key(given: str | None, peer: str | None) -> str:
        """Who asks: with tokens, their token's number (one token, one person, wherever they
        connect from, and a proxy's clients are told apart); without, their address."""
        if not tokens:
            return peer or "unknown"
        if not given:
            raise ApiError(401, "This server needs a token: give the one `foi serve` printed (--token).",
                           "missing-token")
        offered = given.encode("utf-8")
        match = None
        for number, token in enumerate(tokens):  # every token compared, in constant time each
            if hmac.compare_digest(offered, token):
                match = number
        if match is None:
            raise ApiError(401, "This server refused the token: check it (foi serve printed it when it started).",
                           "wrong-token")
        return f"token{match + 1}"

    def check_host(host_header: str | None) -> None:
        if not options.local_only:
            return
        host = (host_header or "").strip().lower()
        if host.startswith("["):
            host = host[: host.find("]") + 1]
        elif host.count(":") == 1:
            host = host.split(":")[0]
        if host not in LOOPBACK_NAMES:
            raise ApiError(403, "Without a token this server answers only on 127.0.0.1 and localhost.", "host")

    async def authorized(request: Request,
                         credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> str:
        check_host(request.headers.get("host"))
        given = credentials.credentials if credentials and credentials.scheme.lower() == "bearer" else None
        return client_key(given, request.client.host if request.client else None)

    @app.exception_handler(ApiError)
    async def api_error(_request, error: ApiError):
        return JSONResponse({"error": error.message, "kind": error.kind}, status_code=error.status)

    async def read_json(request: Request, limit: int, what: str) -> bytes:
        if "application/json" not in request.headers.get("content-type", ""):
            raise ApiError(415, "Send the request as JSON (Content-Type: application/json).", "content-type")
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise ApiError(413, _too_large(what, int(declared), limit), "too-large")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise ApiError(413, _too_large(what, None, limit), "too-large")
        return bytes(body)

    def parse(model: type[BaseModel], body: bytes):
        try:
            return model.model_validate_json(body).model_dump(exclude_none=True)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first.get("loc", ())) or "the body"
            raise ApiError(422, f"The request is not well-formed at {where}: {first.get('msg')}.", "malformed") from None

    def refuse(error: FoiError) -> ApiError:
        if isinstance(error, QueueFullError):
            return ApiError(429, str(error), "queue-full")
        if isinstance(error, wire.WireError):
            return ApiError(422, str(error), "malformed")
        return ApiError(400, str(error), type(error).__name__)

    def job_of(job_id: str, client: str):
        job = scheduler.get(job_id, client)
        if job is None:
            raise ApiError(404, "This server has no such job: it finished too long ago and was dropped, "
                                "or it was never sent.", "no-job")
        return job

    @app.get("/v1/info", summary="The server: API and FoI Studio versions, models, devices, limits")
    async def info(_client: str = Depends(authorized)):
        return {"api": wire.API_VERSION, "server": "FoI Studio", "version": version(),
                "models": scheduler.model_info, "devices": [device.name for device in scheduler.devices],
                "pictures": list(wire.PICTURE_ENCODINGS),
                "limits": {"max_request_bytes": options.max_request_bytes, "max_instructions": MAX_INSTRUCTIONS,
                           "max_queued_per_client": scheduler.max_queued_per_client}}

    @app.post("/v1/tokens", summary="Count the tokens an instruction list uses",
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/json": {"schema": TokensIn.model_json_schema()}}}})
    async def count_tokens(request: Request, _client: str = Depends(authorized)):
        body = parse(TokensIn, await read_json(request, SMALL_REQUEST_BYTES, "The instructions"))
        try:
            if len(body["instructions"]) > MAX_INSTRUCTIONS:
                raise InstructionError(f"Count at most {MAX_INSTRUCTIONS} instructions, the most one edit takes.")
            instructions = [wire.instruction_from_json(item) for item in body["instructions"]]
            engine = scheduler.engine_for(body.get("model"))
            count = await run_in_threadpool(engine.count_tokens, instructions)
        except FoiError as error:
            raise refuse(error) from None
        return {"count": count}

    @app.post("/v1/jobs", status_code=202, summary="Queue a locate or an edit; answers its id",
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/json": {"schema": JobIn.model_json_schema()}}}})
    async def create_job(request: Request, client: str = Depends(authorized)):
        body = await read_json(request, options.max_request_bytes, "The photo and its masks")

        def decode():
            return wire.request_from_json(parse(JobIn, body))

        try:
            job = scheduler.submit(client, await run_in_threadpool(decode))
        except FoiError as error:
            raise refuse(error) from None
        return job.status()

    @app.get("/v1/jobs/{job_id}", summary="A job's state, progress and error")
    async def job_status(job_id: str, client: str = Depends(authorized)):
        return job_of(job_id, client).status()

    @app.delete("/v1/jobs/{job_id}", summary="Cancel a job (a running one stops within a step)")
    async def cancel_job(job_id: str, client: str = Depends(authorized)):
        job = scheduler.cancel(job_id, client)
        if job is None:
            job_of(job_id, client)
        return job.status()

    @app.get("/v1/jobs/{job_id}/result", summary="A finished job's result (JSON with base64 pictures, see wire.py)")
    async def job_result(job_id: str, client: str = Depends(authorized)):
        job = job_of(job_id, client)
        if job.state is JobState.DONE and job.result is not None:
            return Response(job.result, media_type="application/json")
        if job.state in (JobState.FAILED, JobState.CANCELLED):
            raise ApiError(409, job.error or f"The job {job.state.value}.", job.error_kind)
        raise ApiError(409, f"The job is {job.state.value}: its result is not ready.", "not-finished")

    @app.websocket("/v1/jobs/{job_id}/events")
    async def job_events(websocket: WebSocket, job_id: str):
        """State changes and progress ({"type": "progress", "step", "steps", "preview"}) until
        the job finishes; the first message is its state now."""
        try:
            check_host(websocket.headers.get("host"))
            if not tokens and "origin" in websocket.headers:
                raise ApiError(403, "Browsers may not open this socket.", "origin")
            authorization = websocket.headers.get("authorization", "")
            scheme, _, given = authorization.partition(" ")
            client = client_key(given.strip() if scheme.lower() == "bearer" else None,
                                websocket.client.host if websocket.client else None)
        except ApiError:
            await websocket.close(code=1008)  # before accept: the client sees HTTP 403
            return
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()

        def listener(event: dict) -> None:  # in a device thread
            try:
                loop.call_soon_threadsafe(queue.put_nowait, event)
            except RuntimeError:  # the loop is closed: the server is stopping
                pass

        subscribed = scheduler.subscribe(job_id, client, listener)
        await websocket.accept()
        if subscribed is None:
            await websocket.send_json({"type": "error", "error": "This server has no such job.", "kind": "no-job"})
            await websocket.close(code=4404)
            return
        event, unsubscribe = subscribed
        receiver = asyncio.ensure_future(_drain(websocket))
        try:
            while True:
                await websocket.send_json(event)
                if event["type"] == "state" and JobState(event["state"]).finished:
                    break
                getter = asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait({getter, receiver}, return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:  # the client went away
                    getter.cancel()
                    return
                event = getter.result()
            await websocket.close()
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            unsubscribe()
            receiver.cancel()

    return app


async def _drain(websocket: WebSocket) -> None:
    """Read (and ignore) what the client sends, until it disconnects."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return


def _too_large(what: str, size: int | None, limit: int) -> str:
    said = f" are {size / MiB:,.1f} MiB as sent," if size is not None else " are"
    return (f"{what}{said} more than this server accepts ({limit / MiB:,.0f} MiB): scale the photo down, "
            "or ask the server's owner to raise --max-upload-mb.")


# -- `foi serve` -----------------------------------------------------------------------------
def public_name(model: str) -> str:
    """The name clients see and choose: a hub id or bundled name as given, a local folder by
    its last part (its path on the server is nobody's business)."""
    from pathlib import Path

    from .catalog import BUNDLED_MODELS

    if model in BUNDLED_MODELS or not Path(model).expanduser().is_dir():
        return model
    return Path(model).expanduser().resolve().name


def load_devices(models: Sequence[str], devices: Sequence[str | None], precision: str = "auto", say=print):
    """Every model on every device, loaded now: a server that cannot serve fails at start."""
    from .catalog import model_settings
    from .engine import FoiEngine
    from .scheduler import Device

    names = [public_name(model) for model in models]
    if len(set(names)) != len(names):
        raise FoiError(f"Two models would have the same name ({', '.join(names)}): rename a folder.")
    loaded = []
    for device in devices:
        engines = {}
        for model, name in zip(models, names):
            say(f"Loading {name} on {device or 'the fastest device'}…")
            engine = FoiEngine.from_pretrained(model, device=device, precision=precision)
            engine.model_name = name
            engines[name] = engine
        loaded.append(Device(next(iter(engines.values())).device if device is None else device, engines))
    settings = {name: model_settings(model) for model, name in zip(models, names)}
    return loaded, settings


def choose_tokens(given, host: str, environment: str = "") -> tuple[list[str], bool]:
    """The tokens a server asks for, and whether one was made here: those given (--token),
    else the FOI_TOKEN variable's, else on an address other than loopback a new random one;
    on loopback with none given, none."""
    import secrets

    tokens = [token for token in (given or []) if token]
    if not tokens and environment.strip():
        tokens = [environment.strip()]
    for token in tokens:
        if len(token) < 16:
            raise FoiError("A token needs at least 16 characters: make a long random one (or leave --token out "
                           "and one is made for you).")
    if not tokens and not is_loopback(host):
        return [secrets.token_urlsafe(32)], True
    return tokens, False


def serve(args) -> int:
    """Run `foi serve` until Ctrl+C."""
    import os
    import sys

    import uvicorn
    from uvicorn.config import WS_PROTOCOLS

    tokens, generated = choose_tokens(args.token, args.host, os.environ.get("FOI_TOKEN", ""))
    check_tls(args.ssl_certfile, args.ssl_keyfile)
    listener = listen(args.host, args.port)  # before the (slow) model loads: a taken port fails at once

    def say(text):
        print(text, file=sys.stderr, flush=True)

    devices, settings = load_devices(args.model, args.device or [None], args.precision, say)
    scheduler = Scheduler(devices, settings, keep_results=args.keep_results, keep_seconds=args.keep_minutes * 60,
                          max_queued_per_client=args.max_queued)
    options = ServerOptions(tuple(tokens), int(args.max_upload_mb * MiB), local_only=not tokens)
    app = create_app(scheduler, options)
    scheme = "https" if args.ssl_certfile else "http"
    host = f"[{args.host}]" if ":" in args.host else args.host
    port = listener.getsockname()[1]
    say(f"FoI Studio {version()} serves {', '.join(scheduler.models)} on {', '.join(d.name for d in devices)} "
        f"at {scheme}://{host}:{port} (routes: {scheme}://{host}:{port}/docs)")
    if generated:
        say(f"Token (give it to clients: foi edit --server URL --token …): {tokens[0]}")
    if tokens and scheme == "http" and not is_loopback(args.host):
        say("Warning: without TLS the token and the photos cross the network unencrypted: give --ssl-certfile and "
            "--ssl-keyfile, or put a reverse proxy with TLS in front (docs/SERVER.md).")
    scheduler.start()
    config = uvicorn.Config(app, ssl_certfile=args.ssl_certfile, ssl_keyfile=args.ssl_keyfile, log_level="warning",
                            ws="websockets-sansio" if "websockets-sansio" in WS_PROTOCOLS else "auto",
                            timeout_graceful_shutdown=5)
    try:
        uvicorn.Server(config).run(sockets=[listener])
    finally:
        scheduler.stop()
        listener.close()
    return 0


def check_tls(certfile, keyfile) -> None:
    """Both files or neither, and a pair that loads: refused before any model loads."""
    import ssl

    if (certfile is None) != (keyfile is None):
        raise FoiError("TLS needs both --ssl-certfile and --ssl-keyfile.")
    if certfile is None:
        return
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(certfile, keyfile)
    except (ssl.SSLError, OSError, ValueError) as error:
        raise FoiError(f"The TLS certificate and key cannot be used together ({error}): give a PEM certificate "
                       "and its own private key.") from None


def listen(host: str, port: int):
    """The server's listening socket, bound now (port 0: any free one)."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise FoiError(f"Cannot listen on {host!r}: {error.strerror or error}. Give an address of this computer "
                       "(--host 127.0.0.1 or 0.0.0.0).") from None
    family, kind, proto, _name, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as error:
        sock.close()
        raise FoiError(f"Cannot listen on {host} port {port} ({error.strerror or error}): choose another --port, "
                       "or stop the program that uses it.") from None
    sock.set_inheritable(True)
    return sock
