"""The cloud contracts' routes, ports and model locations (SageMaker, Vertex AI, Azure ML)."""

from __future__ import annotations

import importlib.util
import shutil

import pytest
from serve_runs import run
from test_service import make_client

from genlab.errors import GenlabError
from genlab.serve.contracts import get_contract, runs_in
from genlab.serve.service import Service

pytest.importorskip("fastapi")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A model folder as the platforms mount it: runs side by side."""
    folder = tmp_path_factory.mktemp("models")
    for name in ("dcgan", "gpt"):
        shutil.copytree(run(name), folder / name)
    return folder


def serve(contract: str, specs: list[str], kind: str = "fastapi"):
    chosen = get_contract(contract)
    service = Service(chosen.model_specs(specs))
    if kind == "fastapi":
        from fastapi.testclient import TestClient

        from genlab.serve.fastapi_app import create_app

        return service, TestClient(create_app(service, contract=chosen))
    from test_service import FlaskClient

    from genlab.serve.flask_app import create_app

    return service, FlaskClient(create_app(service, contract=chosen))


@pytest.mark.parametrize("kind", ["fastapi", "flask"])
def test_sagemaker_ping_and_invocations(models, monkeypatch, kind):
    monkeypatch.setenv("SM_MODEL_DIR", str(models))
    monkeypatch.setenv("SAGEMAKER_BIND_TO_PORT", "9090")
    assert get_contract("sagemaker").port() == 9090
    service, client = serve("sagemaker", [], kind)
    try:
        assert client.get("/ping").status_code == 200
        image = client.post("/invocations", json={"model": "dcgan", "n": 2, "seed": 1})
        assert image.status_code == 200 and len(image.json()["images"]) == 2
        same = client.post("/v1/models/dcgan/generate", json={"n": 2, "seed": 1}).json()
        assert same["images"] == image.json()["images"]
        text = client.post("/invocations", json={"model": "gpt", "prompt": "KING", "seed": 0})
        assert text.status_code == 200 and text.json()["text"]
        which = client.post("/invocations", json={"n": 1})
        assert which.status_code == 400 and "say which model" in which.json()["error"]
        stream = client.post("/invocations", json={"model": "gpt", "prompt": "a", "stream": True})
        assert stream.status_code == 422
    finally:
        service.close()
    monkeypatch.setenv("SAGEMAKER_BIND_TO_PORT", "http")
    with pytest.raises(GenlabError, match="SAGEMAKER_BIND_TO_PORT must be a port"):
        get_contract("sagemaker").port()


@pytest.mark.parametrize("kind", ["fastapi", "flask"])
def test_vertex_instances_in_predictions_out(models, monkeypatch, kind):
    import fsspec

    memory = fsspec.filesystem("memory")
    for path in (models / "dcgan").iterdir():
        if path.is_file():
            memory.pipe(f"/bucket/models/dcgan/{path.name}", path.read_bytes())
    monkeypatch.setenv("AIP_STORAGE_URI", "memory://bucket/models")
    monkeypatch.setenv("AIP_HTTP_PORT", "8081")
    monkeypatch.setenv("AIP_HEALTH_ROUTE", "/v1/endpoints/e/health")
    monkeypatch.setenv("AIP_PREDICT_ROUTE", "/v1/endpoints/e:predict")
    assert get_contract("vertex").port() == 8081
    service, client = serve("vertex", [], kind)
    try:
        assert client.get("/v1/endpoints/e/health").status_code == 200
        body = {"instances": [{"seed": 1}, {"seed": 2, "n": 2}], "parameters": {"format": "json"}}
        r = client.post("/v1/endpoints/e:predict", json=body)
        assert r.status_code == 200, r.text
        predictions = r.json()["predictions"]
        assert [p["n"] for p in predictions] == [1, 2]
        assert all(p["format"] == "json" for p in predictions)
        alone = service.run(None, None, {"seed": 2, "n": 2, "format": "json"})
        assert predictions[1]["samples"] == alone["samples"]
        bad = client.post("/v1/endpoints/e:predict", json={"instances": [{}, {"n": 0}]})
        assert bad.status_code == 422 and bad.json()["error"].startswith("instances[1]: n:")
        empty = client.post("/v1/endpoints/e:predict", json={"instances": []})
        assert empty.status_code == 422 and "instances" in empty.json()["error"]
    finally:
        service.close()
    monkeypatch.delenv("AIP_STORAGE_URI")
    with pytest.raises(GenlabError, match="AIP_STORAGE_URI"):
        get_contract("vertex").model_specs([])


def test_azure_score_py_init_and_run(models, monkeypatch, tmp_path, capsys):
    from genlab.cli import main

    assert main(["azure-score", "--out", str(tmp_path / "score.py")]) == 0
    spec = importlib.util.spec_from_file_location("score", tmp_path / "score.py")
    score = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(score)
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(models))
    monkeypatch.setenv("GENLAB_MAX_N", "4")
    score.init()
    try:
        out = score.run('{"model": "dcgan", "n": 3, "seed": 0}')
        assert len(out["images"]) == 3
        batch = score.run(b'{"instances": [{"model": "gpt", "prompt": "A", "seed": 1}]}')
        assert batch["predictions"][0]["text"]
        too_many = score.run('{"model": "dcgan", "n": 5}')
        assert too_many == {"error": "n: at most 4 samples per request", "status": 422}
        assert score.run("not json")["status"] == 400
    finally:
        score.service.close()
    service, client = serve("azure", [str(models)])
    try:
        r = client.post("/score", json={"model": "dcgan", "seed": 3})
        assert r.status_code == 200 and len(r.json()["images"]) == 1
    finally:
        service.close()


def test_model_folders_and_contract_detection(models, monkeypatch, tmp_path):
    assert runs_in(models) == [str(models / "dcgan"), str(models / "gpt")]
    assert runs_in(models / "gpt") == [str(models / "gpt")]
    assert get_contract("generic").model_specs([str(models)]) == runs_in(models)
    with pytest.raises(GenlabError, match="no genlab run"):
        runs_in(tmp_path)
    with pytest.raises(GenlabError, match="unknown contract"):
        get_contract("heroku")
    from genlab.cli import _detect_contract

    for variable in ("AIP_STORAGE_URI", "AZUREML_MODEL_DIR"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("SM_MODEL_DIR", str(tmp_path / "nothing"))
    assert _detect_contract([]) == "generic"
    assert _detect_contract(["runs/x"]) == "generic"
    monkeypatch.setenv("SM_MODEL_DIR", str(models))
    assert _detect_contract([]) == "sagemaker"
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(models))
    assert _detect_contract([]) == "azure"
    monkeypatch.setenv("AIP_STORAGE_URI", "gs://bucket/models")
    assert _detect_contract([]) == "vertex"


def test_both_apps_answer_alike(models):
    """The same requests, the same statuses and bodies (apart from timings) from both apps."""
    service = Service([str(models / "dcgan")])
    try:
        answers = {}
        for kind in ("fastapi", "flask"):
            c = make_client(kind, service)
            rows = []
            for body in ({"n": 2, "seed": 4}, {"n": -1}, {"bogus": 1}):
                r = c.post("/v1/models/dcgan/generate", json=body)
                data = r.json()
                data.pop("latency_ms", None)
                rows.append((r.status_code, data))
            rows.append((c.get("/v1/models").status_code, c.get("/v1/models").json()))
            answers[kind] = rows
        assert answers["fastapi"] == answers["flask"]
    finally:
        service.close()


def test_a_remote_folder_of_runs_serves_each_run(models):
    import fsspec

    memory = fsspec.filesystem("memory")
    for name in ("dcgan", "gpt"):
        for path in (models / name).iterdir():
            if path.is_file():
                memory.pipe(f"/shelf/{name}/{path.name}", path.read_bytes())
    specs = get_contract("generic").model_specs(["memory://shelf"])
    assert specs == ["memory://shelf/dcgan", "memory://shelf/gpt"]
    service = Service(specs)
    try:
        assert [m["name"] for m in service.describe()["models"]] == ["dcgan", "gpt"]
    finally:
        service.close()
