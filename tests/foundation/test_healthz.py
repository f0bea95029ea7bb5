import pytest


def test_healthz_reports_every_dependency_up(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "up"
    assert {name: check["status"] for name, check in body["checks"].items()} == {
        "postgres": "up", "redis": "up", "kafka": "up"}


@pytest.mark.parametrize("setting,value", [("REDIS_URL", "redis://127.0.0.1:1/0"),
                                           ("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")])
def test_healthz_is_503_when_a_dependency_is_down(client, db, settings, setting, value):
    setattr(settings, setting, value)
    settings.HEALTHZ_TIMEOUT_SECONDS = 1
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "down"
    down = [name for name, check in body["checks"].items() if check["status"] == "down"]
    assert down == [{"REDIS_URL": "redis", "KAFKA_BOOTSTRAP_SERVERS": "kafka"}[setting]]
    assert body["checks"]["postgres"]["status"] == "up"
