"""`RemoteEngine`: the `Engine` protocol over HTTP(S) to a `foi serve` server.

Requests go with httpx (timeouts on connecting, reading and writing); a job's progress comes
over its WebSocket (`websockets`' synchronous client, with keep-alive pings, so a server that
vanishes without closing the connection is noticed within half a minute). A socket beats
polling here: previews arrive as the steps finish, not up to a poll interval late, and an idle
job costs no requests. Where a proxy does not pass WebSockets on, the client falls back to
polling the job's state (progress without previews).

A run's cancel flag (`edit`'s and `locate`'s `cancel`, `connect`'s) is heard within a tenth of
a second whatever the server does: each request waits in a thread of its own while the caller
watches the flag (a server that never answers holds only that daemon thread, until the
request's own timeout), the events socket is read in short slices, and the server is told to
stop the job without being waited for more than half a second.

Every failure is a FoiError with a sentence for the photographer: which server, what
happened, what to do. No torch here."""

from __future__ import annotations

import json
import threading
import time
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

from . import wire
from .catalog import checked_settings, is_loopback
from .errors import (
    Cancelled,
    ModelError,
    PhotoError,
    ServerAuthError,
    ServerError,
    ServerGoneError,
    ServerVersionError,
    SettingsError,
)
from .protocol import EngineInfo
from .settings import EditSettings

CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 120.0  # a large upload or result on a slow line
PING_INTERVAL_S = 10.0  # the events socket's keep-alive: a silent server is noticed after
PING_TIMEOUT_S = 20.0  # at most interval + timeout seconds
POLL_INTERVAL_S = 0.5  # without a socket
RECONNECTS = 3  # an events socket that drops while the server still answers is reopened
CANCEL_CHECK_S = 0.1  # how often a wait on the network looks at the run's cancel flag
UPLOAD_PIECE_BYTES = 256 * 1024  # a cancelled upload stops after the piece under way
CANCEL_WAIT_S = 0.5  # after a cancel, the most the server is waited for to say it stopped the job


def client_ssl_context():
    """The certificates an https:// server is checked against, the same for requests and the
    socket: the system's (OpenSSL's SSL_CERT_FILE / SSL_CERT_DIR add or replace them: how to
    trust a self-signed server, docs/SERVER.md), plus certifi's public authorities unless
    SSL_CERT_FILE says otherwise."""
    import os
    import ssl

    context = ssl.create_default_context()
    if not os.environ.get("SSL_CERT_FILE"):
        try:
            import certifi

            context.load_verify_locations(certifi.where())
        except (ImportError, OSError, ssl.SSLError):
            pass
    return context


class RemoteEngine:
    def __init__(self, url: str, token: str | None = None, model: str | None = None,
                 connect_timeout: float = CONNECT_TIMEOUT_S, read_timeout: float = READ_TIMEOUT_S,
                 ping_interval: float = PING_INTERVAL_S, ping_timeout: float = PING_TIMEOUT_S, transport=None):
        import httpx

        parts = urlsplit(url.strip())
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise ServerError(f"{url} is not a server address: write it as http://host:port or https://host.")
        self.url = urlunsplit((parts.scheme.lower(), parts.netloc, parts.path.rstrip("/"), "", ""))
        self.model = model
        # pictures raw to a server on this computer: there bytes are free and PNG's compressing
        # was most of a job's fixed cost; across a network PNG's fewer bytes are worth it
        self.raw_pictures = is_loopback(parts.hostname)
        self._token = token or None
        self._ping = (ping_interval, ping_timeout)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._headers = headers
        self._ssl = client_ssl_context() if parts.scheme.lower() == "https" else None
        self._http = httpx.Client(base_url=self.url, headers=headers, follow_redirects=False,
                                  verify=self._ssl or True, transport=transport,
                                  timeout=httpx.Timeout(read_timeout, connect=connect_timeout))
        self._server: dict | None = None
        self._lock = threading.Lock()
        self._local = threading.local()  # .cancel, .what: the run this thread makes (_cancelled_by)

    @contextmanager
    def _cancelled_by(self, cancel: threading.Event | None, what: str):
        """Within it, this thread's requests stop waiting once `cancel` is set: Cancelled,
        "{what} was cancelled."."""
        earlier = getattr(self._local, "cancel", None), getattr(self._local, "what", None)
        self._local.cancel, self._local.what = cancel, what
        try:
            yield
        finally:
            self._local.cancel, self._local.what = earlier

    @classmethod
    def connect(cls, url: str, token: str | None = None, model: str | None = None,
                cancel: threading.Event | None = None, **options) -> "RemoteEngine":
        """A client whose server has answered: reachable, same protocol, token accepted, model
        offered. Cancelled as soon as `cancel` is set, however long the server takes."""
        engine = cls(url, token=token, model=model, **options)
        try:
            with engine._cancelled_by(cancel, "connecting"):
                engine.info()
        except BaseException:
            engine.close()
            raise
        return engine

    def close(self) -> None:
        self._http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- the Engine protocol ---------------------------------------------------------------
    def info(self) -> EngineInfo:
        server = self.server_info()
        model = self._model(server)
        return EngineInfo(model["name"], ", ".join(server["devices"]), server["version"], model["max_tokens"],
                          model["random_weights"], self.url)

    def server_info(self, refresh: bool = False) -> dict:
        """GET /v1/info, checked: the protocol version first, then what this client reads."""
        with self._lock:
            if self._server is not None and not refresh:
                return self._server
        answer = self._call("GET", "/v1/info", during="connecting")
        if not isinstance(answer, dict) or answer.get("server") != "FoI Studio" or "api" not in answer:
            raise ServerVersionError(f"{self.url} answers, but not as a FoI Studio server: check the address "
                                     "(and the port).")
        if answer["api"] != wire.API_VERSION:
            raise ServerVersionError(
                f"The server at {self.url} runs FoI Studio {answer.get('version', '?')}, which speaks version "
                f"{answer['api']} of the server protocol; this FoI Studio ({_local_version()}) speaks version "
                f"{wire.API_VERSION}. Install the same FoI Studio version on both computers.")
        try:
            models = [{"name": str(m["name"]), "max_tokens": int(m["max_tokens"]),
                       "random_weights": bool(m["random_weights"]), "settings": checked_settings(m.get("settings") or {})}
                      for m in answer["models"]]
            server = {"version": str(answer["version"]), "models": models,
                      "devices": [str(d) for d in answer["devices"]],
                      "pictures": [str(e) for e in answer.get("pictures") or ("png",)],
                      "max_request_bytes": int(answer["limits"]["max_request_bytes"])}
        except (KeyError, TypeError, ValueError, SettingsError):  # a model's settings too: runs would fail on them
            raise ServerVersionError(f"The server at {self.url} describes itself in a form this FoI Studio cannot "
                                     "read: install the same FoI Studio version on both computers.") from None
        if not models:
            raise ModelError(f"The server at {self.url} offers no model.")
        with self._lock:
            self._server = server
        self._model(server)
        return server

    def model_settings(self) -> dict:
        """The settings the chosen model asks for (its folder's foi_settings.json, on the server)."""
        return dict(self._model(self.server_info())["settings"])

    def count_tokens(self, instructions) -> int:
        body = {"model": self._model(self.server_info())["name"],
                "instructions": [wire.instruction_to_json(i) for i in instructions]}
        answer = self._call("POST", "/v1/tokens", body=json.dumps(body).encode("utf-8"), during="counting tokens")
        return int(answer["count"])

    def locate(self, image, instructions, settings: EditSettings = EditSettings(), seed: int = 0, cancel=None):
        """cancel: as `edit`'s (a local engine's locate, one pass, takes none)."""
        with self._cancelled_by(cancel, "finding the regions"):
            return self._job("locate", image, instructions, settings, seed, cancel=cancel)

    def edit(self, image, instructions, settings: EditSettings = EditSettings(), seed: int = 0,
             masks=None, on_step=None, cancel=None):
        """Raises Cancelled within a fraction of a second of `cancel` being set, at any stage
        (sending the photo, the steps, fetching the result), whether the server answers or not."""
        with self._cancelled_by(cancel, "the edit"):
            return self._job("edit", image, instructions, settings, seed, masks, on_step, cancel)

    # -- one job ---------------------------------------------------------------------------
    def _job(self, kind, image, instructions, settings, seed, masks=None, on_step=None, cancel=None):
        what = "the edit" if kind == "edit" else "finding the regions"
        server = self.server_info()
        model = self._model(server)["name"]

        def encoded(raw: bool) -> bytes:
            return json.dumps(wire.request_to_json(kind, image, instructions, settings, seed, masks, model,
                                                   raw)).encode()

        raw = self.raw_pictures and "raw" in server["pictures"]  # an older server takes PNG only
        body, limit = encoded(raw), server["max_request_bytes"]
        if len(body) > limit and raw:  # a huge photo: PNG's fewer bytes may fit where raw's do not
            body = encoded(False)
        if len(body) > limit:
            raise PhotoError(f"The photo and its masks are {len(body) / 1024**2:,.1f} MiB as sent, more than the "
                             f"server at {self.url} accepts ({limit / 1024**2:,.0f} MiB): scale the photo down, or "
                             "ask the server's owner to raise --max-upload-mb.")
        if cancel is not None and cancel.is_set():
            raise _cancelled_error(what)
        job_id = self._call("POST", "/v1/jobs", body=body, during="sending the photo")["id"]
        finished = False
        try:
            final = self._follow(job_id, what, on_step, cancel)
            finished = True
        finally:
            if not finished:  # an error here (a callback's, Ctrl+C): the server stops the job too
                self._cancel_quietly(job_id)
        state = final.get("state")
        if state == "done":
            answer = self._call("GET", f"/v1/jobs/{job_id}/result", during=f"fetching the result of {what}")
            return wire.result_from_json(answer)
        if state == "cancelled":
            raise _cancelled_error(what)
        raise wire.error_from_json(final.get("error_kind"), final.get("error"), ServerError)

    def _follow(self, job_id: str, what: str, on_step, cancel) -> dict:
        """The job's events until it finishes: its final state ("cancelled" once `cancel` is
        set: the server is told, and waited for no more than CANCEL_WAIT_S)."""
        try:
            return self._events(job_id, what, on_step, cancel)
        except Cancelled:
            self._stop(job_id)
            return {"state": "cancelled"}

    def _events(self, job_id: str, what: str, on_step, cancel) -> dict:
        from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

        for attempt in range(RECONNECTS + 1):
            try:
                with _unless_cancelled(lambda: self._open_events(job_id), cancel, late=_close) as socket:
                    while True:
                        if cancel is not None and cancel.is_set():
                            raise _cancelled_error(what)
                        try:
                            message = socket.recv(timeout=CANCEL_CHECK_S)
                        except TimeoutError:
                            continue
                        event = self._read_event(message)
                        if self._handle(event, on_step):
                            return event
            except InvalidStatus as error:
                if error.response.status_code == 403:
                    raise ServerAuthError(f"The server at {self.url} refused this client's token for the progress "
                                          "of a job: check the token.") from None
                return self._poll(job_id, what, on_step, cancel)  # a proxy without WebSockets
            except (ConnectionClosed, InvalidHandshake, OSError, TimeoutError) as error:
                status = self._status_or_gone(job_id, what, error)
                if _finished(status):
                    return status
                if attempt == RECONNECTS:
                    return self._poll(job_id, what, on_step, cancel)
        raise AssertionError("unreachable")

    def _read_event(self, message) -> dict:
        try:
            event = json.loads(message)
            if not isinstance(event, dict):
                raise ValueError("not an object")
            if event.get("type") == "progress":
                event["step"], event["steps"] = int(event["step"]), int(event["steps"])
            return event
        except (KeyError, TypeError, ValueError):
            raise ServerVersionError(f"The server at {self.url} sent a progress message this FoI Studio cannot read: "
                                     "install the same FoI Studio version on both computers.") from None

    def _handle(self, event: dict, on_step) -> bool:
        """Tell on_step about progress; True when the event says the job finished."""
        if event.get("type") == "error":
            raise ServerError(f"The server at {self.url} lost the job: {event.get('error')}")
        if event.get("type") == "progress" and on_step is not None:
            preview = None
            if event.get("preview"):
                preview = wire.image_from_png(event["preview"], "A preview")
            on_step(event["step"] - 1, event["steps"], preview)
        elif event.get("type") == "state" and on_step is not None and not _finished(event) and event.get("step"):
            # Steps done before the socket opened (a busy server): the bar catches up, as when polling.
            on_step(int(event["step"]) - 1, int(event["steps"]), None)
        return event.get("type") == "state" and _finished(event)

    def _poll(self, job_id, what, on_step, cancel) -> dict:
        reported = 0
        while True:
            if cancel is not None and cancel.is_set():
                raise _cancelled_error(what)
            status = self._call("GET", f"/v1/jobs/{job_id}", during=what)
            if on_step is not None and status.get("steps") and status.get("step", 0) > reported:
                reported = int(status["step"])
                on_step(reported - 1, int(status["steps"]), None)
            if _finished(status):
                return status
            if cancel is not None:
                cancel.wait(POLL_INTERVAL_S)
            else:
                time.sleep(POLL_INTERVAL_S)

    def _open_events(self, job_id: str):
        from websockets.sync.client import connect

        parts = urlsplit(self.url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        address = urlunsplit((scheme, parts.netloc, f"{parts.path}/v1/jobs/{job_id}/events", "", ""))
        return connect(address, additional_headers=self._headers, open_timeout=CONNECT_TIMEOUT_S,
                       ping_interval=self._ping[0], ping_timeout=self._ping[1], max_size=16 * 1024**2,
                       close_timeout=CANCEL_WAIT_S,  # leaving, a silent server is not waited for
                       ssl=self._ssl if scheme == "wss" else None)

    def _status_or_gone(self, job_id: str, what: str, cause) -> dict:
        """After the events socket dropped: the job's state if the server still answers."""
        try:
            return self._call("GET", f"/v1/jobs/{job_id}", during=what, timeout=CONNECT_TIMEOUT_S)
        except ServerGoneError:
            raise
        except ServerError:
            raise self._gone(what, cause) from None

    def _gone(self, what: str, cause=None) -> ServerGoneError:
        reason = f" ({_reason(cause)})" if cause is not None else ""
        return ServerGoneError(
            f"The server at {self.url} stopped answering during {what}{reason}: it may have been stopped or "
            "restarted, or the network is down. Check that `foi serve` still runs there and that this computer "
            f"can reach it, then start {what} again.")

    def _cancel_quietly(self, job_id: str, wait: float | None = None) -> None:
        """Tell the server to stop the job, waiting for its answer at most `wait` seconds
        (None: half a second once the run is cancelled, else 5 s, as for Ctrl+C before exiting):
        the request goes on in a daemon thread."""
        def cancel_job():
            try:
                self._http.delete(f"/v1/jobs/{job_id}", timeout=5.0)
            except Exception:  # noqa: BLE001 - best effort: the job is abandoned either way
                pass

        if wait is None:
            wait = CANCEL_WAIT_S if self._cancelled() else 5.0
        thread = threading.Thread(target=cancel_job, name="foi-remote-cancel", daemon=True)
        thread.start()
        thread.join(wait)

    def _stop(self, job_id: str) -> None:
        """After a cancel: tell the server to stop the job, and wait CANCEL_WAIT_S at most for
        it to say the job has finished (a running one stops within a step). The asking goes on
        in a daemon thread, for 5 s at most."""
        def stop_job():
            try:
                response = self._http.delete(f"/v1/jobs/{job_id}", timeout=5.0)
                deadline = time.monotonic() + 5.0
                while response.is_success and not _finished(response.json()) and time.monotonic() < deadline:
                    time.sleep(0.05)
                    response = self._http.get(f"/v1/jobs/{job_id}", timeout=5.0)
            except Exception:  # noqa: BLE001 - best effort: the job is abandoned either way
                pass

        thread = threading.Thread(target=stop_job, name="foi-remote-cancel", daemon=True)
        thread.start()
        thread.join(CANCEL_WAIT_S)

    def _cancelled(self) -> bool:
        cancel = self._run()[0]
        return cancel is not None and cancel.is_set()

    # -- plumbing --------------------------------------------------------------------------
    def _model(self, server: dict) -> dict:
        names = [m["name"] for m in server["models"]]
        if self.model is None:
            return server["models"][0]
        if self.model not in names:
            raise ModelError(f"The server at {self.url} does not offer the model {self.model!r}: it offers "
                             f"{', '.join(names)}. Choose one of those.")
        return server["models"][names.index(self.model)]

    def _call(self, method: str, path: str, body: bytes | None = None, during: str = "a request",
              timeout: float | None = None):
        """One request and its JSON answer; every failure as a FoiError for a person."""
        import httpx

        options = {"timeout": timeout} if timeout is not None else {}
        if body is not None:
            cancel, what = self._run()
            options.update(content=body if cancel is None else _sent_until(cancel, body, what),
                           headers={"Content-Type": "application/json", "Content-Length": str(len(body))})
        try:
            response = self._request(method, path, **options)
        except httpx.TimeoutException as error:
            if during == "connecting":
                raise ServerError(f"The server at {self.url} did not answer in time ({_reason(error)}): check the "
                                  "address and that `foi serve` runs there.") from None
            raise self._gone(during, error) from None
        except httpx.HTTPError as error:
            if "CERTIFICATE_VERIFY_FAILED" in str(error):
                raise ServerError(f"The server at {self.url} shows a certificate this computer does not trust "
                                  f"({_reason(error)}): if the server's owner made it themselves, point SSL_CERT_FILE "
                                  "at a copy of it (docs/SERVER.md).") from None
            if during == "connecting":
                raise ServerError(f"Cannot reach the server at {self.url} ({_reason(error)}): check the address, "
                                  "that `foi serve` runs there, and that this computer can reach it.") from None
            raise self._gone(during, error) from None
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if response.is_success and answer is not None:
            return answer
        error = answer.get("error") if isinstance(answer, dict) else None
        kind = answer.get("kind") if isinstance(answer, dict) else None
        if response.status_code == 401:
            if kind == "missing-token":
                raise ServerAuthError(f"The server at {self.url} needs a token: give the one `foi serve` printed "
                                      "when it started (--token, or the FOI_TOKEN variable).")
            raise ServerAuthError(f"The server at {self.url} refused the token: check it against the one `foi "
                                  "serve` printed when it started (it changes at every start unless --token fixes "
                                  "it).")
        if response.status_code == 404 and path == "/v1/info":
            raise ServerVersionError(f"{self.url} answers, but not as a FoI Studio server of this version "
                                     f"(it has no /v1/info): check the address, and install the same FoI Studio "
                                     "version on both computers.")
        if error is None:
            raise ServerError(f"The server at {self.url} answered {response.status_code} "
                              f"{response.reason_phrase} during {during}.")
        if response.status_code in (413, 429):
            cls = PhotoError if response.status_code == 413 else ServerError
            raise cls(f"The server at {self.url} says: {error}")
        if kind == "malformed":  # this client checked the request before sending it: another version's server
            raise ServerVersionError(f"The server at {self.url} does not understand this FoI Studio's request "
                                     f"({error}): install the same FoI Studio version on both computers.")
        raise wire.error_from_json(kind, error, ServerError)

    def _request(self, method: str, path: str, **options):
        """self._http.request, waited on only while this thread's run is not cancelled (its
        timeouts and errors as they come otherwise). A job the server made for a request given
        up on is cancelled there once its answer comes."""
        def made(response) -> None:
            response.close()
            if method == "POST" and path.startswith("/v1/jobs") and response.is_success:
                try:
                    self._cancel_quietly(str(response.json()["id"]), wait=0)
                except (KeyError, TypeError, ValueError):
                    pass

        cancel, what = self._run()
        return _unless_cancelled(lambda: self._http.request(method, path, **options), cancel, late=made, what=what)

    def _run(self) -> tuple[threading.Event | None, str]:
        """The cancel flag of the run this thread makes, and what to call it in a message."""
        return getattr(self._local, "cancel", None), getattr(self._local, "what", None) or "the request"


def _cancelled_error(what: str) -> Cancelled:
    return Cancelled(f"{what[0].upper()}{what[1:]} was cancelled.")


def _sent_until(cancel: threading.Event, body: bytes, what: str):
    """The body in pieces, ending the upload itself once the run is cancelled: the request's
    thread would otherwise go on sending a photo nobody waits for (and the server would make a
    job of it). A server that stops reading holds a piece until the write times out."""
    for start in range(0, len(body), UPLOAD_PIECE_BYTES):
        if cancel.is_set():
            raise _cancelled_error(what)
        yield body[start:start + UPLOAD_PIECE_BYTES]


def _unless_cancelled(call, cancel: threading.Event | None, late=None, what: str = "the request"):
    """call()'s value (or its exception), made in a daemon thread and waited for only until
    `cancel` is set: then Cancelled ("{what} was cancelled.") within CANCEL_CHECK_S, and call
    goes on to its own end (its timeouts), where late(value) disposes of what it made.
    cancel None: call() here, in this thread."""
    if cancel is None:
        return call()
    if cancel.is_set():
        raise _cancelled_error(what)
    outcome: dict = {}
    done, lock = threading.Event(), threading.Lock()

    def run() -> None:
        try:
            value = call()
        except BaseException as error:  # noqa: BLE001 - handed to the waiting thread
            outcome["error"] = error
        else:
            with lock:
                outcome["value"] = value
                abandoned = outcome.get("abandoned", False)
            if abandoned and late is not None:
                try:
                    late(value)
                except Exception:  # noqa: BLE001 - best effort, nobody waits for it
                    pass
        finally:
            done.set()

    threading.Thread(target=run, name="foi-remote-request", daemon=True).start()
    while not done.wait(CANCEL_CHECK_S):
        if cancel.is_set():
            with lock:
                if "value" not in outcome:
                    outcome["abandoned"] = True
                    raise _cancelled_error(what)
            break  # it answered just now: the value is taken after all
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _close(connection) -> None:
    connection.close()


def plain_http_warning(url: str, token: str | None) -> str | None:
    """A warning when a token or photos would cross a network unencrypted (http:// to
    another computer), else None."""
    parts = urlsplit(url.strip())
    if parts.scheme.lower() != "http" or is_loopback(parts.hostname or ""):
        return None
    what = "the token, the photo and the result" if token else "the photo and the result"
    return (f"{what} cross the network unencrypted (http://): use the server's https:// address "
            "if it has one (docs/SERVER.md).")


def _finished(status: dict) -> bool:
    return status.get("state") in ("done", "failed", "cancelled")


def _reason(error) -> str:
    text = str(error).strip()
    return text or type(error).__name__


def _local_version() -> str:
    from .version import version

    return version()
