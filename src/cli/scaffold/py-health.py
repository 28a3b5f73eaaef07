"""{{name}}: a health check plugin for wasmvisor (wasmvisor:plugin@0.2.0), in Python.

Healthy once the node's CometBFT RPC (`rpc` setting, default http://127.0.0.1:26657) answers
/status; pending until then. HTTP goes through wasi:http with `wasi_http.request` (beside this
file: any method, a body, errors that say what went wrong); allowlist the RPC's host:port in
plugins.toml.
"""

from wit_world import exports
from wit_world.imports.types import Health_Healthy, Health_Pending

from wasi_http import request


class Check(exports.Check):
    def check(self, context, settings):
        rpc = "http://127.0.0.1:26657"
        for k, v in settings:
            if k == "rpc":
                rpc = v
        url = rpc.rstrip("/") + "/status"
        try:
            # Shorter than the call's timeout (10 s by default): a node that never answers is
            # `pending`, in this plugin's words, rather than a call stopped at its deadline.
            status, _ = request("GET", url, [("accept", "application/json")], timeout_s=3)
        except RuntimeError as e:
            return Health_Pending(str(e))
        if status == 200:
            return Health_Healthy(f"{url} answers")
        return Health_Pending(f"{url}: HTTP {status}")
