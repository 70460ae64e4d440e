"""The thesis' meter API (seed 004 §3.3/§4.4, Table 3.1, appendix A) and the REST mapping of the
61850 model (Table 2.8), against a real gateway."""

from __future__ import annotations

import uuid

from lxml import etree

from gridedge.gateways.iec61850.scl import check_semantics, validate_xsd
from tests.gateways.conftest import admin_headers, http

# What python-requests sends for requests.post(url, json=data) — the thesis client's only call.
REQUESTS_HEADERS = {
    "User-Agent": "python-requests/2.31.0",
    "Accept-Encoding": "gzip, deflate",
    "Accept": "*/*",
    "Connection": "keep-alive",
    "Content-Type": "application/json",
}


def test_thesis_client_flow_verbatim(standalone_gateway) -> None:
    """Appendix A, as data: POST {URL}/SmartMeter {"location":"Claremont","name":"k-Residence"},
    expect 200 and read ``id``; then POST {URL}/Readings/<token> with voltage, current, power,
    powerFactor (no frequency). Then read it back in JSON and XML."""
    with http(standalone_gateway) as c:
        r = c.post(
            "/SmartMeter",
            content=b'{"location": "Claremont", "name": "k-Residence"}',
            headers=REQUESTS_HEADERS,
        )
        assert r.status_code == 200
        token = r.json().get("id")
        assert uuid.UUID(token)  # a UUID token as in the thesis' Fig. 3.10
        reading = {"voltage": 229.7, "current": 1.234, "power": 270.5, "powerFactor": 0.95}
        r = c.post(f"/Readings/{token}", json=reading, headers=REQUESTS_HEADERS)
        assert r.status_code == 204 and r.content == b""

        got = c.get(f"/Readings/{token}").json()
        assert len(got) == 1
        assert {k: got[0][k] for k in reading} == reading
        assert got[0]["frequency"] is None  # missing optional value stored as null

        xml = c.get(f"/Readings/{token}", headers={"Accept": "application/xml"})
        assert xml.headers["content-type"].startswith("application/xml")
        root = etree.fromstring(xml.content)
        assert root.tag == "Readings"
        rd = root.find("Reading")
        assert float(rd.findtext("voltage")) == 229.7
        assert float(rd.findtext("powerFactor")) == 0.95
        assert rd.find("frequency").get("nil") == "true"

        # the meter is listed (admin) and readable by its token
        meters = c.get("/SmartMeter", headers=admin_headers()).json()
        assert [x["name"] for x in meters] == ["k-Residence"]
        assert c.get(f"/SmartMeter/{token}").json()["location"] == "Claremont"


def test_latest_reading_of_every_meter_json_and_xml(standalone_gateway) -> None:
    with http(standalone_gateway) as c:
        tokens = [
            c.post(
                "/SmartMeter", json={"name": f"h{i}", "location": "X", "zipCode": "7708"}
            ).json()["id"]
            for i in range(3)
        ]
        for i, t in enumerate(tokens):
            for k in range(2):
                body = {
                    "voltage": 230.0 + i,
                    "current": 1.0 + k,
                    "power": 100.0 * (k + 1),
                    "frequency": 50.0,
                }
                assert c.post(f"/Readings/{t}", json=body).status_code == 204
        latest = c.get("/Readings", headers=admin_headers()).json()
        assert sorted((x["voltage"], x["current"]) for x in latest) == [
            (230.0, 2.0),
            (231.0, 2.0),
            (232.0, 2.0),
        ]
        xml = c.get(
            "/Readings", headers=admin_headers(Accept="text/xml;q=0.9, application/json;q=0.5")
        )
        assert len(etree.fromstring(xml.content).findall("Reading")) == 3
        # JSON wins when ranked higher
        js = c.get(
            "/Readings", headers=admin_headers(Accept="application/xml;q=0.1, application/json")
        )
        assert js.headers["content-type"].startswith("application/json")
        # thesis Fig. 3.19 variant: token in the body of POST /Readings
        r = c.post("/Readings", json={"smartMeterId": tokens[0], "voltage": 1.0, "current": 0.0})
        assert r.status_code == 204
        assert c.get(f"/Readings/{tokens[0]}?limit=1").json()[0]["voltage"] == 1.0


def test_bad_inputs_are_refused_naming_the_field(standalone_gateway) -> None:
    with http(standalone_gateway) as c:
        assert c.post("/SmartMeter", json={"name": "x"}).json()["errors"][0]["field"] == "location"
        r = c.post("/SmartMeter", json={"name": "x", "location": "y", "phases": 2})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "phases"
        token = c.post("/SmartMeter", json={"name": "x", "location": "y"}).json()["id"]
        cases = [
            ({"voltage": "high", "current": 1}, "voltage"),
            ({"voltage": 230, "current": -1}, "current"),
            ({"voltage": 230, "current": 1, "powerFactor": 1.5}, "powerFactor"),
            ({"voltage": 230, "current": 1, "frequency": 0}, "frequency"),
            ({"current": 1}, "voltage"),
            ({"voltage": 230, "current": 1, "volts": 3}, "volts"),
        ]
        for body, field in cases:
            r = c.post(f"/Readings/{token}", json=body)
            assert r.status_code == 422, body
            assert field in [e["field"] for e in r.json()["errors"]], (body, r.json())
        r = c.post("/Readings/not-a-token", json={"voltage": 230, "current": 1})
        assert r.status_code == 404 and "not-a-token" in r.json()["detail"]
        assert (
            c.post("/Readings", json={"voltage": 1, "current": 1}).json()["errors"][0]["field"]
            == "smartMeterId"
        )
        assert c.get("/Readings/nope").status_code == 404
        assert c.get("/Readings/x?limit=0").status_code == 422
        # nothing invalid was stored
        assert c.get(f"/Readings/{token}").json() == []


def test_admin_operations_need_the_admin_token(standalone_gateway) -> None:
    with http(standalone_gateway) as c:
        created = c.post("/SmartMeter", json={"name": "a", "location": "b"}).json()
        for method, path in [
            ("GET", "/SmartMeter"),
            ("GET", "/Readings"),
            ("GET", "/SCL"),
            ("GET", "/iec61850"),
            ("DELETE", f"/SmartMeter/{created['id']}"),
            ("GET", f"/SmartMeter/{created['deviceId']}"),  # device id (not the token)
        ]:
            r = c.request(method, path)
            assert r.status_code == 401, (method, path)
            r = c.request(method, path, headers={"Authorization": "Bearer wrong"})
            assert r.status_code == 401, (method, path)
        assert (
            c.get(f"/SmartMeter/{created['deviceId']}", headers=admin_headers()).status_code == 200
        )
        assert c.delete(f"/SmartMeter/{created['id']}", headers=admin_headers()).status_code == 204
        assert c.get(f"/SmartMeter/{created['id']}").status_code == 404
        assert c.delete(f"/SmartMeter/{created['id']}", headers=admin_headers()).status_code == 404
        assert c.get("/SmartMeter", headers=admin_headers()).json() == []


def test_scl_endpoint_and_rest_mapping_of_the_model(standalone_gateway) -> None:
    with http(standalone_gateway) as c:
        created = c.post("/SmartMeter", json={"name": "a", "location": "b", "phases": 3}).json()
        single = c.post("/SmartMeter", json={"name": "c", "location": "d"}).json()
        c.post(f"/Readings/{single['id']}", json={"voltage": 231.25, "current": 2.5, "power": 500})
        scd = c.get("/SCL", headers=admin_headers()).content
        assert validate_xsd(scd) == [] and check_semantics(scd) == []
        ld1, ld2 = created["iedName"] + "MTR", single["iedName"] + "MTR"
        assert f'iedName="{created["iedName"]}"'.encode() in scd

        h = admin_headers()
        assert sorted(c.get("/iec61850", headers=h).json()["logicalDevices"]) == sorted([ld1, ld2])
        assert c.get(f"/iec61850/{ld1}", headers=h).json()["logicalNodes"] == [
            "CSWI1",
            "LLN0",
            "LPHD1",
            "MMTR1",
            "MMXU1",
            "XSWI1",
        ]
        assert "MMXN1" in c.get(f"/iec61850/{ld2}", headers=h).json()["logicalNodes"]
        dos = c.get(f"/iec61850/{ld1}/XSWI1", headers=h).json()["dataObjects"]
        assert set(dos) == {"Beh", "Loc", "OpCnt", "Pos", "BlkOpn", "BlkCls", "SwTyp"}
        v = c.get(f"/iec61850/{ld2}/MMXN1/Vol/mag/f", headers=h).json()
        assert v["value"] == 231.25 and v["fc"] == "MX"
        vol = c.get(f"/iec61850/{ld2}/MMXN1/Vol", headers=h).json()["attributes"]
        assert vol["Vol.q"]["value"]["validity"] == "good"
        xml = c.get(
            f"/iec61850/{ld2}/MMXN1/Watt/mag/f", headers=admin_headers(Accept="application/xml")
        )
        assert float(etree.fromstring(xml.content).findtext("value")) == 500.0
        # never-measured three-phase meter: values invalid, not fake zeros
        q = c.get(f"/iec61850/{ld1}/MMXU1/TotW/q", headers=h).json()
        assert q["value"]["validity"] == "invalid"

        # POST sets a settable attribute (DC) ...
        r = c.post(f"/iec61850/{ld1}/LLN0/NamPlt/vendor", json={"value": "ACME meters"}, headers=h)
        assert r.status_code == 200 and r.json()["value"] == "ACME meters"
        assert (
            c.get(f"/iec61850/{ld1}/LLN0/NamPlt/vendor", headers=h).json()["value"] == "ACME meters"
        )
        # ... and refuses read-only ones with a clear 4xx
        r = c.post(f"/iec61850/{ld2}/MMXN1/Vol/mag/f", json={"value": 1.0}, headers=h)
        assert r.status_code == 409 and "read-only" in r.json()["detail"]
        r = c.post(f"/iec61850/{ld1}/CSWI1/Pos/ctlModel", json={"value": 1}, headers=h)
        assert r.status_code == 409 and "control model" in r.json()["detail"]
        r = c.post(f"/iec61850/{ld1}/LLN0/NamPlt/vendor", json={"value": 5}, headers=h)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "value"
        r = c.post(f"/iec61850/{ld1}/LLN0/NamPlt/vendor", json={"v": "x"}, headers=h)
        assert r.status_code == 422
        assert (
            c.get(f"/iec61850/{ld1}/MMXU1/NoSuch", headers=h).json()["errors"][0]["field"] == "DO"
        )
        assert c.get("/iec61850/NOPE", headers=h).status_code == 404
