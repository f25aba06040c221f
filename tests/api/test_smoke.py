def test_register_volunteer_and_submit_need(client, tokens, make_volunteer, make_need, work):
    v = make_volunteer(on_duty=True)
    assert v["id"].startswith("vol_")
    need = make_need()
    assert need["status"] == "queued"
    work()
    got = client.get(f"/api/v1/needs/{need['id']}", headers=tokens.dispatcher).get_json()
    assert got["status"] == "offered", got
    assert got["assignments"][0]["volunteer_id"] == v["id"]
