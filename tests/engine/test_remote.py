"""The remote engine against a real server on a real socket: the same pixels as a local run,
cancel, clear messages for a wrong token, another version, a missing model, an upload too
large and a server that dies mid-job; `foi edit --server` writes what a local run writes."""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from foi_engine import Cancelled, EditSettings, Instruction, ModelError, PhotoError
from foi_engine.errors import ServerAuthError, ServerError, ServerGoneError, ServerVersionError
from foi_engine.protocol import Engine, open_engine
from foi_engine.remote import RemoteEngine
from server_helpers import GateEngine, SilentServer, running_server, server_info_answer, wait_until

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = EditSettings(steps=4, resolution=64)
INSTRUCTIONS = [Instruction("make the cat a tiger", "cat"), Instruction("turn the grass green", "grass", 2.0, 0.5)]
TOKEN = "t" * 20 + "-secret"


@pytest.fixture(scope="module")
def served():
    """A server with its own tiny engine (not the local one the results are compared with)."""
    from foi_engine import FoiEngine

    with running_server({"tiny-random": FoiEngine.from_pretrained("tiny-random", device="cpu")}) as (url, scheduler):
        yield url


def same_arrays(a, b):
    return len(a) == len(b) and all(x.dtype == y.dtype and np.array_equal(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize("raw_pictures", [True, False])
def test_a_remote_edit_is_the_local_edit_bit_for_bit(served, tiny_engine, photo, raw_pictures):
    remote = open_engine(served)
    assert isinstance(remote, RemoteEngine) and isinstance(remote, Engine) and isinstance(tiny_engine, Engine)
    assert remote.raw_pictures and not RemoteEngine("http://gpu-box:8765").raw_pictures  # raw on loopback only
    remote.raw_pictures = raw_pictures
    info = remote.info()
    assert (info.model_name, info.device, info.random_weights, info.server) == ("tiny-random", "cpu", True, served)
    assert info.max_tokens == tiny_engine.info().max_tokens
    assert remote.count_tokens(INSTRUCTIONS) == tiny_engine.count_tokens(INSTRUCTIONS)
    steps = []
    there = remote.edit(photo, INSTRUCTIONS, SETTINGS, seed=7, on_step=lambda i, n, p: steps.append((i, n, p)))
    here = tiny_engine.edit(photo, INSTRUCTIONS, SETTINGS, seed=7)
    assert np.array_equal(np.asarray(there.image), np.asarray(here.image))
    assert same_arrays(there.masks, here.masks)
    assert same_arrays(there.grounding.maps, here.grounding.maps)
    assert same_arrays(there.grounding.masks, here.grounding.masks)
    for name in ("settings", "seed", "frame", "instructions", "model_name", "random_weights"):
        assert getattr(there, name) == getattr(here, name), name
    assert there.grounding.thresholds == here.grounding.thresholds
    # Every step, unless some ran before the socket opened (a loaded machine): then the first
    # message says where the job is. Never a step twice, never backwards; the last always comes.
    reported = [(i, n) for i, n, _ in steps]
    assert reported[-1] == (2, 3) and reported == sorted(set(reported)) and {n for _, n in reported} == {3}
    assert steps[-1][2] is not None and steps[-1][2].size == (8, 8)  # the last preview always comes


def test_remote_locate_and_edit_with_masks_match_local_runs(served, tiny_engine, photo):
    remote = RemoteEngine.connect(served)
    there, here = remote.locate(photo, INSTRUCTIONS, SETTINGS, seed=3), tiny_engine.locate(photo, INSTRUCTIONS,
                                                                                         SETTINGS, seed=3)
    assert same_arrays(there.maps, here.maps) and same_arrays(there.masks, here.masks)
    assert (there.factor, there.frame, there.thresholds) == (here.factor, here.frame, here.thresholds)
    painted = np.zeros((photo.height, photo.width), dtype=np.uint8)
    painted[20:70, 30:100] = 200
    masks = [painted.astype(np.float32) / np.float32(255),  # a painted mask: travels as PNG
             np.linspace(0, 1, photo.width * photo.height, dtype=np.float32).reshape(photo.height, photo.width)]
    there = remote.edit(photo, INSTRUCTIONS, SETTINGS, seed=3, masks=masks)
    here = tiny_engine.edit(photo, INSTRUCTIONS, SETTINGS, seed=3, masks=masks)
    assert np.array_equal(np.asarray(there.image), np.asarray(here.image))
    assert same_arrays(there.masks, here.masks) and there.grounding is None


def test_cancelling_a_remote_edit_stops_it_on_the_server():
    gate = GateEngine(steps=50)  # its steps wait for a gate that never opens
    with running_server({"gate": gate}) as (url, scheduler):
        cancel, outcome = threading.Event(), {}

        def edit():
            try:
                RemoteEngine.connect(url).edit(Image.new("RGB", (64, 64)), [Instruction("make it red")], SETTINGS,
                                               cancel=cancel)
            except Exception as error:  # noqa: BLE001 - the test looks at it
                outcome["error"] = error

        thread = threading.Thread(target=edit)
        thread.start()
        assert gate.started.wait(10)
        cancel.set()
        thread.join(10)
        assert isinstance(outcome.get("error"), Cancelled) and "cancelled" in str(outcome["error"])
        job = next(iter(scheduler._jobs.values()))
        assert job.state.value == "cancelled" and job.step == 0


# -- a server that never answers: a cancel is heard at once, a timeout keeps its message ------
def _cancelled_after(seconds: float) -> threading.Event:
    cancel = threading.Event()
    timer = threading.Timer(seconds, cancel.set)
    timer.daemon = True
    timer.start()
    return cancel


def _cancelled_in(call) -> tuple[float, str]:
    """How long call took to raise Cancelled, from the cancel (0.3 s after the start), and its message."""
    started = time.monotonic()
    with pytest.raises(Cancelled) as caught:
        call()
    return time.monotonic() - started - 0.3, str(caught.value)


def test_a_cancel_is_heard_at_once_when_the_server_never_answers():
    photo, instructions = Image.new("RGB", (64, 64)), [Instruction("make it red")]
    with SilentServer() as silent:  # takes the connection, never answers
        seconds, message = _cancelled_in(lambda: RemoteEngine.connect(silent.url, cancel=_cancelled_after(0.3)))
        assert seconds < 0.5 and message == "Connecting was cancelled."
    with SilentServer(answers_info=True) as silent:  # says what it runs, then takes the job and never answers
        remote = RemoteEngine.connect(silent.url)
        seconds, message = _cancelled_in(lambda: remote.edit(photo, instructions, SETTINGS,
                                                             cancel=_cancelled_after(0.3)))
        assert seconds < 0.5 and message == "The edit was cancelled."
        assert silent.asked[-1] == "POST /v1/jobs HTTP/1.1"
        seconds, message = _cancelled_in(lambda: remote.locate(photo, instructions, SETTINGS,
                                                               cancel=_cancelled_after(0.3)))
        assert seconds < 0.5 and message == "Finding the regions was cancelled."


@pytest.mark.parametrize("stage", ["sending the photo", "opening the events", "asking the state", "the result"])
def test_a_cancel_is_heard_at_once_at_every_wait_of_a_job(monkeypatch, stage):
    """A server that stops answering at one stage of a job: each wait gives up on the cancel,
    and the server is told to stop the job (a job made for an upload given up on, too)."""
    from websockets.datastructures import Headers
    from websockets.exceptions import InvalidStatus
    from websockets.http11 import Response
    from websockets.sync.client import connect

    release, heard = threading.Event(), []

    def answer(request):
        asked = f"{request.method} {request.url.path}"
        heard.append(asked)
        if asked == "GET /v1/info":
            return httpx.Response(200, json=server_info_answer())
        if request.method == "DELETE":
            return httpx.Response(200, json={"id": "j1", "state": "cancelled"})
        hangs = {"sending the photo": "POST /v1/jobs", "asking the state": "GET /v1/jobs/j1",
                 "the result": "GET /v1/jobs/j1/result"}
        if hangs.get(stage) == asked:
            release.wait(30)
        if asked == "POST /v1/jobs":
            return httpx.Response(202, json={"id": "j1"})
        return httpx.Response(200, json={"id": "j1", "state": "done", "step": 2, "steps": 2})

    def events(self, job_id):
        if stage == "opening the events":  # the socket's handshake never answered
            return connect(silent.url.replace("http://", "ws://") + f"/v1/jobs/{job_id}/events", open_timeout=30)
        raise InvalidStatus(Response(502, "Bad Gateway", Headers()))  # polled, as through a proxy

    monkeypatch.setattr(RemoteEngine, "_open_events", events)
    with SilentServer() as silent:
        remote = RemoteEngine.connect("http://gpu-box:8765", transport=httpx.MockTransport(answer))
        try:
            seconds, message = _cancelled_in(lambda: remote.edit(Image.new("RGB", (64, 64)),
                                                                 [Instruction("make it red")], SETTINGS,
                                                                 cancel=_cancelled_after(0.3)))
        finally:
            release.set()  # the abandoned request's answer comes now
        assert seconds < 0.7 and message == "The edit was cancelled."
        if stage != "the result":  # a job done is not cancelled
            wait_until(lambda: "DELETE /v1/jobs/j1" in heard, 5, "the server to be told to stop the job")
        else:
            assert "DELETE /v1/jobs/j1" not in heard


def test_without_a_cancel_a_silent_server_still_gets_its_one_line_after_the_timeouts():
    cancel = threading.Event()  # a run's flag, never set: the timeouts speak
    with SilentServer() as silent:
        with pytest.raises(ServerError, match=rf"The server at {silent.url} did not answer in time \(.*foi serve"):
            RemoteEngine.connect(silent.url, read_timeout=0.5, cancel=cancel)
    with SilentServer(answers_info=True) as silent:
        remote = RemoteEngine.connect(silent.url, read_timeout=0.5)
        with pytest.raises(ServerGoneError, match=rf"The server at {silent.url} stopped answering during sending "
                                                  r"the photo \(.*Check that `foi serve` still runs there"):
            remote.edit(Image.new("RGB", (64, 64)), [Instruction("make it red")], SETTINGS, cancel=cancel)


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1, as `foi serve --ssl-certfile/--ssl-keyfile` would be given one."""
    import datetime
    import ipaddress

    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                                  critical=False)
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .sign(key, hashes.SHA256()))
    cert, private = folder / "cert.pem", folder / "key.pem"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return cert, private


def test_tls_carries_requests_and_the_socket_and_an_untrusted_certificate_is_told(tmp_path, monkeypatch):
    cert, key = self_signed_certificate(tmp_path)
    gate = GateEngine(steps=2)
    with running_server({"gate": gate}, ssl_certfile=str(cert), ssl_keyfile=str(key), tokens=(TOKEN,),
                        local_only=False) as (url, scheduler):
        assert url.startswith("https://")
        monkeypatch.delenv("SSL_CERT_FILE", raising=False)
        with pytest.raises(ServerError, match="shows a certificate this computer does not trust"):
            RemoteEngine.connect(url, token=TOKEN)
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))

        def open_when_watched():  # the steps run once the client's socket listens
            wait_until(lambda: any(job.listeners for job in list(scheduler._jobs.values())), what="the socket")
            gate.gate.set()

        threading.Thread(target=open_when_watched, daemon=True).start()
        steps = []
        with RemoteEngine.connect(url, token=TOKEN) as remote:  # closed: TLS connections end politely
            result = remote.edit(Image.new("RGB", (64, 64)), [Instruction("make it red")], SETTINGS, seed=9,
                                 on_step=lambda *a: steps.append(a))
        assert result.seed == 9 and len(steps) == 2 and steps[-1][2] is not None  # previews came over wss


def test_without_websockets_through_a_proxy_the_client_polls(monkeypatch):
    from websockets.datastructures import Headers
    from websockets.exceptions import InvalidStatus
    from websockets.http11 import Response

    def refused(self, job_id):  # as a proxy that does not pass WebSockets on answers
        raise InvalidStatus(Response(502, "Bad Gateway", Headers()))

    monkeypatch.setattr(RemoteEngine, "_open_events", refused)
    gate = GateEngine(steps=2)
    gate.gate.set()
    with running_server({"gate": gate}) as (url, _scheduler):
        steps = []
        result = RemoteEngine.connect(url).edit(Image.new("RGB", (64, 64)), [Instruction("make it red")], SETTINGS,
                                                seed=4, on_step=lambda *a: steps.append(a))
    assert result.seed == 4 and steps[-1] == (1, 2, None)


def test_a_wrong_or_missing_token_is_told_plainly():
    with running_server({"gate": GateEngine()}, tokens=(TOKEN,), local_only=False) as (url, _scheduler):
        with pytest.raises(ServerAuthError, match="needs a token: give the one `foi serve` printed"):
            RemoteEngine.connect(url)
        with pytest.raises(ServerAuthError, match="refused the token: check it"):
            RemoteEngine.connect(url, token="w" * 27)
        assert RemoteEngine.connect(url, token=TOKEN).info().model_name == "gate"


def test_another_protocol_version_or_another_program_is_told_plainly():
    def answering(status, body):
        return httpx.MockTransport(lambda request: httpx.Response(status, json=body))

    sent = []

    def older(request):  # a server from before raw pictures (its info lists no encodings), on this computer
        if request.method == "POST":
            sent.append(json.loads(request.content))
            return httpx.Response(422, json={"kind": "malformed", "error": "The request is not well-formed at "
                                                                          "seed: Input should be a valid integer."})
        return httpx.Response(200, json={"api": 1, "server": "FoI Studio", "version": "0.9", "devices": ["cpu"],
                                         "models": [{"name": "m", "max_tokens": 77, "random_weights": True}],
                                         "limits": {"max_request_bytes": 2**27}})

    remote = RemoteEngine.connect("http://127.0.0.1:8765", transport=httpx.MockTransport(older))
    with pytest.raises(ServerVersionError, match=r"does not understand this FoI Studio's request \(The request is "
                                                 r"not well-formed at seed.*\): install the same"):
        remote.edit(Image.new("RGB", (64, 64)), [Instruction("make it red")], SETTINGS)
    assert isinstance(sent[0]["photo"], str) and "result_encoding" not in sent[0]  # PNG, as it reads them
    newer = answering(200, {"api": 2, "server": "FoI Studio", "version": "9.0"})
    with pytest.raises(ServerVersionError, match=r"runs FoI Studio 9.0, which speaks version 2 .* Install the same"):
        RemoteEngine.connect("http://gpu-box:8765", transport=newer)
    with pytest.raises(ServerVersionError, match="not as a FoI Studio server"):
        RemoteEngine.connect("http://gpu-box:8765", transport=answering(404, {"detail": "Not Found"}))
    with pytest.raises(ServerVersionError, match="not as a FoI Studio server"):
        RemoteEngine.connect("http://gpu-box:8765", transport=answering(200, {"hello": "world"}))


def test_a_cancelled_upload_stops_sending():
    """Over a slow network a cancelled run's photo stops going out within a piece, and no job
    is made of it, rather than the whole photo being sent in the background."""
    photo = Image.fromarray(np.random.default_rng(0).integers(0, 256, (2048, 2048, 3), dtype=np.uint8))
    with SilentServer(answers_info=True, reads_slowly=True) as slow:  # 1.6 MB/s: the photo takes seconds
        remote = RemoteEngine.connect(slow.url)
        cancel = threading.Event()

        def cancel_while_sending():
            while not slow.received:
                time.sleep(0.01)
            time.sleep(0.3)
            cancel.set()

        threading.Thread(target=cancel_while_sending, daemon=True).start()
        with pytest.raises(Cancelled, match="The edit was cancelled."):
            remote.edit(photo, [Instruction("make it red")], SETTINGS, cancel=cancel)
        assert slow.hung_up.wait(5)  # the upload ended with its connection
        assert slow.received < 6 * 1024**2, slow.received  # of a body over 16 MiB (12 MiB of raw pixels)


def test_a_servers_model_settings_are_checked_before_any_run():
    """What a server says its models ask for is checked as a model folder's file is: a setting
    this FoI Studio lacks, or a value it refuses, would otherwise fail every run (and the editor,
    which applies them as soon as they are heard)."""
    def serving(settings):
        return httpx.MockTransport(lambda request: httpx.Response(200, json={
            "api": 1, "server": "FoI Studio", "version": "0.9", "devices": ["cpu"],
            "models": [{"name": "m", "max_tokens": 77, "random_weights": True, "settings": settings}],
            "limits": {"max_request_bytes": 2**27}}))

    remote = RemoteEngine.connect("http://gpu-box:8765", transport=serving({"steps": 20, "gamma": 1}))
    assert remote.server_info()["models"][0]["settings"] == {"steps": 20, "gamma": 1}
    for settings in ({"future_setting": 1}, {"steps": 100000}, {"gamma": "sharp"}, ["steps"]):
        with pytest.raises(ServerVersionError, match="describes itself in a form this FoI Studio cannot read"):
            RemoteEngine.connect("http://gpu-box:8765", transport=serving(settings))


def test_a_server_that_is_not_there_is_told_plainly():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nobody listens there
    with pytest.raises(ServerError, match=f"Cannot reach the server at http://127.0.0.1:{port} .*foi serve"):
        RemoteEngine.connect(f"http://127.0.0.1:{port}")


def test_a_model_not_on_the_servers_list_and_an_upload_too_large_are_refused_before_sending():
    gate = GateEngine()
    with running_server({"gate": gate}, max_request_bytes=1000) as (url, scheduler):
        with pytest.raises(ModelError, match="does not offer the model 'timbrooks/instruct-pix2pix': it offers gate"):
            RemoteEngine.connect(url, model="timbrooks/instruct-pix2pix")
        noise = Image.fromarray(np.random.default_rng(0).integers(0, 255, (128, 128, 3), dtype=np.uint8))
        with pytest.raises(PhotoError, match=r"MiB as sent, more than the server at .* accepts"):
            RemoteEngine.connect(url).edit(noise, [Instruction("make it red")], SETTINGS)
        assert not scheduler._jobs


def test_a_photo_too_large_to_send_raw_goes_as_png():
    gate = GateEngine(steps=1)
    gate.gate.set()
    plain = Image.new("RGB", (256, 256), (90, 120, 30))  # 262 KB raw, a few hundred bytes as PNG
    with running_server({"gate": gate}, max_request_bytes=100_000) as (url, _scheduler):
        result = RemoteEngine.connect(url).edit(plain, [Instruction("make it red")], SETTINGS, seed=5)
    assert result.seed == 5


def test_the_server_dying_mid_job_is_told_plainly(tmp_path):
    """A real `foi serve` in its own process, killed while the edit runs."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    server = subprocess.Popen([sys.executable, "-m", "foi_engine.cli", "serve", "--model", "tiny-random", "--device",
                               "cpu", "--port", "0", "--threads", "1"], cwd=tmp_path, env=env,
                              stderr=subprocess.PIPE, text=True)
    try:
        url = None
        deadline = time.monotonic() + 120
        for line in server.stderr:
            found = re.search(r"at (http://127\.0\.0\.1:\d+) ", line)
            if found:
                url = found.group(1)
                break
            assert time.monotonic() < deadline
        assert url, "foi serve did not say where it listens"
        remote = RemoteEngine.connect(url)
        started, outcome = threading.Event(), {}

        def edit():
            try:
                remote.edit(Image.new("RGB", (64, 64)), [Instruction("make it red")],
                            EditSettings(steps=1000, strength=1.0, resolution=64), on_step=lambda *_: started.set())
            except Exception as error:  # noqa: BLE001 - the test looks at it
                outcome["error"] = error

        thread = threading.Thread(target=edit)
        thread.start()
        assert started.wait(60), "the edit did not start"
        server.send_signal(signal.SIGKILL)
        thread.join(60)
        assert not thread.is_alive()
    finally:
        server.kill()
        server.wait()
    error = outcome.get("error")
    assert isinstance(error, ServerGoneError), repr(error)
    assert str(error).startswith(f"The server at {url} stopped answering during the edit")
    assert "Check that `foi serve` still runs there" in str(error)


# -- the command line --------------------------------------------------------------------------
FAST = ["--steps", "4", "--resolution", "64"]


def run_cli(capsys, *argv):
    from foi_engine.cli import main

    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("output", ["result.png", "result.ora"])
def test_foi_edit_with_a_server_writes_what_a_local_run_writes(served, capsys, tmp_path, photo, output):
    photo_file = tmp_path / "cat.png"
    photo.save(photo_file)
    command = ["edit", photo_file, "-i", "make the cat a tiger", "-k", "cat", "-i", "turn the grass green", "-k",
               "grass", "--seed", "5", *FAST]
    local, remote = tmp_path / "local", tmp_path / "remote"
    local.mkdir(), remote.mkdir()
    code, out_local, err = run_cli(capsys, *command, "--model", "tiny-random", "--device", "cpu",
                                   "-o", local / output, "--masks-dir", local / "masks")
    assert code == 0, err
    code, out_remote, err = run_cli(capsys, *command, "--server", served,
                                    "-o", remote / output, "--masks-dir", remote / "masks")
    assert code == 0, err
    assert f"at {served}" in err
    files = sorted(p.relative_to(local) for p in local.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(remote) for p in remote.rglob("*") if p.is_file()) and len(files) == 5
    for name in files:
        assert contents(local / name) == contents(remote / name), name
    assert out_remote.replace(str(remote), "") == out_local.replace(str(local), "")


def contents(path):
    """A file's bytes; for a zip (.ora) each member's name and bytes, since a zip also stamps
    each member with the time it was written (to 2 s), which two runs need not share."""
    if not zipfile.is_zipfile(path):
        return path.read_bytes()
    with zipfile.ZipFile(path) as archive:
        return [(info.filename, info.compress_type, archive.read(info)) for info in archive.infolist()]


def test_foi_locate_with_a_server_writes_what_a_local_run_writes(served, capsys, tmp_path, photo):
    photo_file = tmp_path / "cat.png"
    photo.save(photo_file)
    command = ["locate", photo_file, "-i", "make the cat a tiger", "-k", "cat", "--seed", "2", *FAST]
    assert run_cli(capsys, *command, "--model", "tiny-random", "--device", "cpu", "--masks-dir", tmp_path / "a")[0] == 0
    assert run_cli(capsys, *command, "--server", served, "--masks-dir", tmp_path / "b")[0] == 0
    for path in (tmp_path / "a").iterdir():
        assert path.read_bytes() == (tmp_path / "b" / path.name).read_bytes()


def test_foi_edit_with_a_server_checks_every_output_before_sending(served, capsys, tmp_path, photo, monkeypatch):
    from foi_engine import remote

    photo_file = tmp_path / "cat.png"
    photo.save(photo_file)
    monkeypatch.setattr(remote.RemoteEngine, "connect", lambda *a, **k: pytest.fail("contacted the server"))
    refusals = [(["-o", photo_file], "would replace the photo itself"),
                (["-o", tmp_path / "r.png", "--masks-dir", photo_file], "is a file, not a folder"),
                (["-o", tmp_path / "r.png", "--device", "cuda"], "with --server the server's own devices")]
    for options, message in refusals:
        with pytest.raises(SystemExit) as exit_info:
            run_cli(capsys, "edit", photo_file, "-i", "make it winter", *options, "--server", served)
        assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_foi_edit_with_a_server_gives_one_line_for_server_trouble(capsys, tmp_path, photo):
    photo_file = tmp_path / "cat.png"
    photo.save(photo_file)
    with running_server({"gate": GateEngine()}, tokens=(TOKEN,), local_only=False) as (url, _scheduler):
        code, _, err = run_cli(capsys, "edit", photo_file, "-i", "make it winter", "-o", tmp_path / "r.png",
                               "--server", url, "--token", "w" * 30)
    assert code == 1 and err.strip().splitlines()[-1].startswith(f"foi: The server at {url} refused the token")
    assert "Traceback" not in err and not (tmp_path / "r.png").exists()


WEB_MODULES = ("fastapi", "starlette", "uvicorn", "httpx", "websockets", "foi_engine.server", "foi_engine.remote",
               "foi_engine.scheduler")


def test_a_client_sends_masks_without_the_model_library():
    """The editor on a server never loads torch (seconds, on a small computer): checking and
    encoding a request's masks does not need it."""
    script = ("import sys; sys.modules['torch'] = None\n"
              "import numpy as np\nfrom PIL import Image\n"
              "from foi_engine import EditSettings, Instruction, wire\nfrom foi_engine.remote import RemoteEngine\n"
              "body = wire.request_to_json('edit', Image.new('RGB', (64, 64)), [Instruction('make it red')],\n"
              "                            EditSettings(resolution=64), 0, masks=[np.ones((64, 64))])\n"
              "print(len(body['masks']))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0 and out.stdout.split() == ["1"], out.stderr


def test_the_command_line_runs_without_the_web_server_libraries(capsys, tmp_path, photo, monkeypatch):
    """`foi --help` and a local `foi edit` never import FastAPI, uvicorn, httpx or websockets:
    with those made unimportable (None in sys.modules), both still work."""
    for name in WEB_MODULES:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(SystemExit) as exit_info:
        run_cli(capsys, "--help")
    assert exit_info.value.code == 0
    photo.save(tmp_path / "cat.png")
    code, _, err = run_cli(capsys, "edit", tmp_path / "cat.png", "-i", "make it winter", "-o", tmp_path / "r.png",
                           "--model", "tiny-random", "--device", "cpu", *FAST)
    assert code == 0, err
    with pytest.raises(ImportError):
        import fastapi  # noqa: F401 - the guard itself works


def test_a_job_joined_late_shows_the_steps_already_done():
    # The socket opens after the server has begun (busy machine): its first message, the job's
    # state, moves the bar there; a finished state does not (the result follows instead).
    seen = []
    remote = RemoteEngine("http://gpu-box:8765")
    assert not remote._handle({"type": "state", "state": "running", "step": 2, "steps": 5},
                              lambda i, n, p: seen.append((i, n, p)))
    assert not remote._handle({"type": "state", "state": "queued", "step": 0, "steps": 5},
                              lambda i, n, p: seen.append((i, n, p)))
    assert remote._handle({"type": "state", "state": "done", "step": 5, "steps": 5},
                          lambda i, n, p: seen.append((i, n, p)))
    assert seen == [(1, 5, None)]
