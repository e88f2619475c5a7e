"""Android fleets under the Esper MDM: the gateway (gateway.py) over Esper's own SDK
(client.py), its table (records.py), and a fake Esper server for tests (fake_server.py)."""
