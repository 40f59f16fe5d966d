"""`foi serve`'s routes, queue and security, with fake engines (fast): FIFO per client,
round-robin between clients, cancel, tokens, upload limits, model names, bounded results."""

import base64
import hmac
import json
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from foi_engine import wire
from foi_engine.errors import FoiError
from foi_engine.scheduler import Device, JobState, Scheduler
from foi_engine.server import ServerOptions, choose_tokens, create_app
from server_helpers import GateEngine, small_body, small_request, wait_until

LOCAL = "http://127.0.0.1"
TOKEN_A, TOKEN_B = "a" * 24 + "-token-one", "b" * 24 + "-token-two"


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def gate():
    return GateEngine(steps=2)


@pytest.fixture
def scheduler(gate):
    scheduler = Scheduler([Device("cpu", {"gate": gate})], keep_results=4)
    scheduler.start()
    yield scheduler
    gate.gate.set()
    scheduler.stop(5)


def post_job(client, number, headers=None, **changes):
    return client.post("/v1/jobs", content=json.dumps(small_body(number, **changes)),
                       headers={"Content-Type": "application/json", **(headers or {})})


# -- the queue ---------------------------------------------------------------------------------
def test_one_clients_jobs_run_in_the_order_sent(scheduler, gate):
    first = scheduler.submit("A", small_request(0))
    wait_until(gate.started.is_set, what="the first job to start")
    jobs = [scheduler.submit("A", small_request(seed)) for seed in (1, 2, 3, 4)]
    gate.gate.set()
    wait_until(lambda: all(j.state is JobState.DONE for j in [first, *jobs]), what="the jobs")
    assert gate.order == [0, 1, 2, 3, 4]


def test_two_clients_take_turns_through_http(gate):
    """Client A sends three jobs, then B two, while the device is busy: they alternate, each
    client's own in the order sent. Clients are told apart by their tokens."""
    scheduler = Scheduler([Device("cpu", {"gate": gate})])
    scheduler.start()
    client = TestClient(create_app(scheduler, ServerOptions(tokens=(TOKEN_A, TOKEN_B), local_only=False)))
    try:
        assert post_job(client, 100, bearer(TOKEN_A)).status_code == 202
        wait_until(gate.started.is_set, what="the first job to start")
        ids = {}
        for seed in (1, 2, 3):
            ids[seed] = post_job(client, seed, bearer(TOKEN_A)).json()["id"]
        for seed in (11, 12):
            ids[seed] = post_job(client, seed, bearer(TOKEN_B)).json()["id"]
        assert client.get(f"/v1/jobs/{ids[1]}", headers=bearer(TOKEN_A)).json()["state"] == "queued"
        # another client's job is not found, let alone cancelled
        assert client.delete(f"/v1/jobs/{ids[1]}", headers=bearer(TOKEN_B)).status_code == 404
        gate.gate.set()
        wait_until(lambda: len(gate.order) == 6 and scheduler.get(ids[12], "token2").state.finished,
                   what="every job")
        assert gate.order == [100, 1, 11, 2, 12, 3]
    finally:
        gate.gate.set()
        scheduler.stop(5)


def test_each_device_runs_a_job_of_its_own_and_the_first_free_one_takes_the_next():
    first, second = GateEngine(steps=1), GateEngine(steps=1)
    scheduler = Scheduler([Device("cuda:0", {"m": first}), Device("cuda:1", {"m": second})])
    scheduler.start()
    try:
        a, b = scheduler.submit("A", small_request(1)), scheduler.submit("A", small_request(2))
        wait_until(lambda: first.started.is_set() and second.started.is_set(), what="both devices to be busy")
        assert {a.device, b.device} == {"cuda:0", "cuda:1"} and a.state is b.state is JobState.RUNNING
        c = scheduler.submit("A", small_request(3))
        time.sleep(0.05)
        assert c.state is JobState.QUEUED  # no device is free
        busy_second = b if b.device == "cuda:1" else a
        second.gate.set()  # cuda:1 finishes first, so it takes the next job
        wait_until(lambda: c.state is JobState.DONE, what="the third job")
        assert busy_second.state is JobState.DONE and c.device == "cuda:1"
    finally:
        first.gate.set()
        scheduler.stop(5)


def test_a_queued_job_is_cancelled_at_once_and_a_running_one_within_a_step(scheduler, gate):
    client = TestClient(create_app(scheduler), base_url=LOCAL)
    running = post_job(client, 1).json()["id"]
    wait_until(gate.started.is_set, what="the first job to start")
    queued = post_job(client, 2).json()["id"]
    answer = client.delete(f"/v1/jobs/{queued}")
    assert answer.status_code == 200 and answer.json()["state"] == "cancelled"
    assert client.delete(f"/v1/jobs/{running}").status_code == 200
    wait_until(lambda: client.get(f"/v1/jobs/{running}").json()["state"] == "cancelled", what="the cancel")
    assert gate.order == [1]  # the queued job never ran
    result = client.get(f"/v1/jobs/{running}/result")
    assert result.status_code == 409 and "cancelled" in result.json()["error"]


def test_finished_results_are_kept_bounded_in_count_and_age(gate):
    gate.gate.set()
    scheduler = Scheduler([Device("cpu", {"gate": gate})], keep_results=2, keep_seconds=3600)
    scheduler.start()
    try:
        jobs = [scheduler.submit("A", small_request(seed)) for seed in range(4)]
        wait_until(lambda: all(j.state.finished for j in jobs), what="the jobs")
        assert [scheduler.get(j.id, "A") is not None for j in jobs] == [False, False, True, True]
        scheduler.keep_seconds = 0.0
        time.sleep(0.01)
        assert scheduler.get(jobs[3].id, "A") is None
    finally:
        scheduler.stop(5)


def test_a_client_cannot_flood_the_queue(gate):
    scheduler = Scheduler([Device("cpu", {"gate": gate})], max_queued_per_client=2)
    client = TestClient(create_app(scheduler), base_url=LOCAL)  # not started: everything waits
    assert [post_job(client, seed).status_code for seed in range(3)] == [202, 202, 429]
    assert "already have 2 jobs waiting" in post_job(client, 4).json()["error"]


# -- what is accepted ------------------------------------------------------------------------
def test_an_upload_over_the_limit_is_refused_with_a_clear_message(scheduler):
    client = TestClient(create_app(scheduler, ServerOptions(max_request_bytes=400)), base_url=LOCAL)
    body = json.dumps(small_body(1)).encode()
    assert len(body) > 400
    answer = post_job(client, 1)
    assert answer.status_code == 413
    assert "more than this server accepts" in answer.json()["error"] and "--max-upload-mb" in answer.json()["error"]
    # a body sent without a length (chunked) is cut off at the limit too
    answer = client.post("/v1/jobs", content=iter([body[:300], body[300:]]),
                         headers={"Content-Type": "application/json"})
    assert answer.status_code == 413


def test_a_model_not_on_the_servers_list_is_refused(scheduler):
    client = TestClient(create_app(scheduler), base_url=LOCAL)
    for name in ("/etc/passwd", "timbrooks/instruct-pix2pix", "../gate"):
        answer = post_job(client, 1, model=name)
        assert answer.status_code == 400
        assert answer.json()["kind"] == "ModelError" and "it offers gate" in answer.json()["error"]
    assert client.post("/v1/tokens", json={"model": "/etc/passwd", "instructions": [{"text": "a"}]}).status_code == 400


@pytest.mark.parametrize("changes, status, message", [
    ({"settings": {"steps": 5000}}, 400, "Steps must be a whole number from 1 to 1000"),
    ({"settings": {"resolution": 64, "guidance": 2}}, 400, "Unknown settings: guidance"),
    ({"seed": -1}, 422, "seed"),
    ({"instructions": [{"text": "make it red"}] * 7}, 400, "at most 6"),
    ({"instructions": [{"text": "make it red", "keyword": "blue"}]}, 400, "not a word of"),
    ({"photo": "bm90IGEgcGljdHVyZQ=="}, 400, "is not a PNG image"),
    ({"photo": "%%%"}, 422, "not valid base64"),
    ({"masks": [{"dtype": "float32", "encoding": "raw", "shape": [100000, 100000], "data": ""}]}, 422,
     "impossible shape"),
    ({"pickle": "gASVAAAA"}, 422, "pickle"),
])
def test_hostile_or_wrong_jobs_are_refused_before_they_queue(scheduler, gate, changes, status, message):
    client = TestClient(create_app(scheduler), base_url=LOCAL)
    answer = post_job(client, 1, **changes)
    assert answer.status_code == status, answer.text
    assert message in answer.json()["error"]
    assert not gate.started.is_set()


def test_a_photo_decoding_into_too_many_pixels_is_refused(scheduler, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    client = TestClient(create_app(scheduler), base_url=LOCAL)
    for photo in (small_body(1)["photo"], RAW_64):  # as PNG and raw alike
        answer = post_job(client, 1, photo=photo)
        assert answer.status_code == 400 and "too large to open safely" in answer.json()["error"]


# -- raw pictures ------------------------------------------------------------------------------
RAW_64 = {"encoding": "raw", "size": [64, 64], "data": base64.b64encode(bytes(64 * 64 * 3)).decode()}


def test_pictures_travel_raw_or_as_png_exactly():
    picture = Image.fromarray(np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8))
    for raw in (True, False):
        sent = json.loads(json.dumps(wire.picture_to_json(picture, raw)))
        assert isinstance(sent, dict) is raw
        back = wire.picture_from_json(sent, "The photo")
        assert (back.mode, back.size, back.tobytes()) == ("RGB", picture.size, picture.tobytes())
    with pytest.raises(wire.WireError, match="Only RGB pictures travel raw"):
        wire.picture_to_json(picture.convert("L"), True)


@pytest.mark.parametrize("changes, status, message", [
    ({"size": [100000, 100000]}, 400, "too large to open safely"),  # counted before the data is read
    ({"size": [64, 65]}, 422, "must be 12480 bytes of RGB as base64, as its size 64×65 says"),  # a lying header
    ({"data": RAW_64["data"][:-4]}, 422, "must be 12288 bytes of RGB"),  # cut short
    ({"data": RAW_64["data"][:-2] + "=="}, 422, "holds 12286 bytes, not the 12288"),  # the right length, padded
    ({"data": "%" * 16384}, 422, "not valid base64"),
    ({"size": [0, 64]}, 422, "impossible size"),
    ({"size": [64]}, 422, "impossible size"),
    ({"size": [True, 64]}, 422, "at photo.PictureIn.size.0"),
    ({"encoding": "png"}, 422, "at photo.PictureIn.encoding"),
    ({"pickle": "gASVAAAA"}, 422, "at photo.PictureIn.pickle"),
])
def test_hostile_raw_photos_are_refused_before_they_queue(scheduler, gate, changes, status, message):
    client = TestClient(create_app(scheduler), base_url=LOCAL)
    answer = post_job(client, 1, photo={**RAW_64, **changes})
    assert answer.status_code == status, answer.text
    assert message in answer.json()["error"]
    assert not gate.started.is_set()


def test_a_job_gets_its_result_as_png_unless_it_asks_for_raw(scheduler, gate):
    gate.gate.set()
    client = TestClient(create_app(scheduler), base_url=LOCAL)
    assert post_job(client, 1, result_encoding="jpeg").status_code == 422
    old = post_job(client, 3)  # as a client from before raw pictures sends it
    new = post_job(client, 3, photo=RAW_64, result_encoding="raw")
    for answer, form in ((old, str), (new, dict)):
        job_id = answer.json()["id"]
        wait_until(lambda: client.get(f"/v1/jobs/{job_id}").json()["state"] == "done", what="the job")
        result = client.get(f"/v1/jobs/{job_id}/result").json()
        assert isinstance(result["image"], form)
        assert wire.result_from_json(result).image.getpixel((0, 0)) == (3, 0, 0)


def test_posts_must_be_json_and_without_a_token_only_loopback_names_are_served(scheduler):
    client = TestClient(create_app(scheduler), base_url=LOCAL)
    answer = client.post("/v1/jobs", content=json.dumps(small_body(1)), headers={"Content-Type": "text/plain"})
    assert answer.status_code == 415  # a web page's form post cannot start a job
    rebinding = TestClient(create_app(scheduler), base_url="http://attacker.example")
    assert rebinding.get("/v1/info").status_code == 403
    assert client.get("/v1/info", headers={"Host": "localhost:8765"}).status_code == 200


# -- tokens ----------------------------------------------------------------------------------
def test_a_non_loopback_bind_gets_a_token_and_loopback_needs_none():
    made, generated = choose_tokens(None, "0.0.0.0")
    assert generated and len(made) == 1 and len(made[0]) >= 32
    assert choose_tokens(None, "192.168.1.20")[1] and choose_tokens(None, "gpu-box.local")[1]
    assert choose_tokens(None, "127.0.0.1") == ([], False) and choose_tokens(None, "::1") == ([], False)
    assert choose_tokens(None, "0.0.0.0", environment=TOKEN_A) == ([TOKEN_A], False)
    assert choose_tokens([TOKEN_B], "0.0.0.0", environment=TOKEN_A) == ([TOKEN_B], False)
    with pytest.raises(FoiError, match="at least 16 characters"):
        choose_tokens(["short"], "0.0.0.0")


def test_foi_serve_on_another_address_prints_a_token_and_requires_it(monkeypatch, capsys, gate):
    import uvicorn

    from foi_engine import server
    from foi_engine.cli import main

    served = {}
    monkeypatch.setattr(server, "load_devices", lambda *a, **k: ([Device("cpu", {"gate": gate})], {}))
    monkeypatch.setattr(server, "listen", lambda host, port: SimpleNamespace(getsockname=lambda: (host, 8765),
                                                                             close=lambda: None))
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: served.setdefault("app", self.config.app))
    monkeypatch.delenv("FOI_TOKEN", raising=False)
    assert main(["serve", "--host", "0.0.0.0", "--model", "tiny-random"]) == 0
    err = capsys.readouterr().err
    token = err.split("Token (give it to clients: foi edit --server URL --token …): ")[1].split()[0]
    assert "without TLS" in err
    client = TestClient(served["app"], base_url="http://192.168.1.20:8765")
    assert client.get("/v1/info").status_code == 401
    assert client.get("/v1/info").json()["kind"] == "missing-token"
    assert client.get("/v1/info", headers=bearer(token + "x")).json()["kind"] == "wrong-token"
    assert client.get("/v1/info", headers=bearer(token)).status_code == 200


def test_every_route_and_the_socket_check_the_token_in_constant_time(scheduler, monkeypatch):
    compared = []

    original = hmac.compare_digest

    def spy(a, b):
        compared.append((a, b))
        return original(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    client = TestClient(create_app(scheduler, ServerOptions(tokens=(TOKEN_A,), local_only=False)))
    job_id = post_job(client, 1, bearer(TOKEN_A)).json()["id"]
    routes = [("GET", "/v1/info"), ("POST", "/v1/tokens"), ("POST", "/v1/jobs"), ("GET", f"/v1/jobs/{job_id}"),
              ("GET", f"/v1/jobs/{job_id}/result"), ("DELETE", f"/v1/jobs/{job_id}")]
    for method, path in routes:
        for headers, status in (({}, 401), (bearer("x" * 30), 401), ({"Authorization": f"Basic {TOKEN_A}"}, 401)):
            answer = client.request(method, path, headers={"Content-Type": "application/json", **headers},
                                    content=b"{}")
            assert answer.status_code == status, (method, path, headers)
    assert (b"x" * 30, TOKEN_A.encode()) in compared
    from starlette.websockets import WebSocketDisconnect

    with pytest.raises(WebSocketDisconnect):
        with client.websocket_connect(f"/v1/jobs/{job_id}/events", headers=bearer("y" * 30)) as socket:
            socket.receive_json()
    assert (b"y" * 30, TOKEN_A.encode()) in compared
    with client.websocket_connect(f"/v1/jobs/{job_id}/events", headers=bearer(TOKEN_A)) as socket:
        assert socket.receive_json()["type"] == "state"


def test_a_server_url_is_told_from_a_model_name_or_folder():
    from foi_engine.catalog import is_loopback, is_server_url

    assert all(map(is_server_url, ["http://gpu-box:8765", "https://gpu-box.example.org/foi", "HTTP://10.0.0.2"]))
    assert not any(map(is_server_url, ["timbrooks/instruct-pix2pix", "tiny-random", "/models/ip2p", "C:\\models",
                                       "http://", "ftp://gpu-box", "file:///etc/passwd"]))
    assert is_loopback("127.0.0.1") and is_loopback("[::1]") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("gpu-box")


def test_the_routes_are_documented():
    scheduler = Scheduler([Device("cpu", {"gate": GateEngine()})])
    client = TestClient(create_app(scheduler), base_url=LOCAL)
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/info", "/v1/tokens", "/v1/jobs", "/v1/jobs/{job_id}", "/v1/jobs/{job_id}/result"} <= set(paths)
    assert "instructions" in json.dumps(paths["/v1/jobs"]["post"]["requestBody"])
    assert client.get("/docs").status_code == 200


# -- events ------------------------------------------------------------------------------------
def test_events_carry_progress_with_previews_then_the_final_state(scheduler, gate):
    client = TestClient(create_app(scheduler), base_url=LOCAL)
    job_id = post_job(client, 5).json()["id"]
    seen = []
    with client.websocket_connect(f"/v1/jobs/{job_id}/events", headers={"Host": "127.0.0.1"}) as socket:
        threading.Timer(0.2, gate.gate.set).start()
        while True:
            event = socket.receive_json()
            seen.append(event)
            if event["type"] == "state" and event["state"] == "done":
                break
    progress = [e for e in seen if e["type"] == "progress"]
    assert [(e["step"], e["steps"]) for e in progress] == [(1, 2), (2, 2)]
    assert progress[-1]["preview"] and progress[-1]["id"] == job_id
    assert wire.image_from_png(progress[-1]["preview"], "preview").size == (8, 8)
    result = wire.result_from_json(client.get(f"/v1/jobs/{job_id}/result").json())
    assert result.seed == 5 and result.image.getpixel((0, 0)) == (5, 0, 0)
