"""{{name}}: a health check plugin for wasmvisor (wasmvisor:plugin@0.2.0), in Python.

Healthy once the node's CometBFT RPC (`rpc` setting, default http://127.0.0.1:26657) answers
/status; pending until then. HTTP goes through the host's `http` import, a GET in one call
(allowlist the RPC's host:port in plugins.toml); for other methods, use wasi:http as the
app-version plugin in wasmvisor's repository does.
"""

from wit_world import exports
from wit_world.imports import http
from wit_world.imports.types import Health_Healthy, Health_Pending


class Check(exports.Check):
    def check(self, context, settings):
        rpc = "http://127.0.0.1:26657"
        for k, v in settings:
            if k == "rpc":
                rpc = v
        url = rpc.rstrip("/") + "/status"
        try:
            status = http.get(url, []).status()
        except Exception as e:
            return Health_Pending(f"{url}: {e}")
        if status == 200:
            return Health_Healthy(f"{url} answers")
        return Health_Pending(f"{url}: HTTP {status}")
