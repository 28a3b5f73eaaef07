"""A health check, in Python: after an upgrade, the node must run the application version the
upgrade intended and produce blocks with it (wasmvisor:plugin@0.2.0, world `health`).

It reads CometBFT's `/abci_info` over wasi:http (the application's own `version` and `last_block_height`):
- healthy: the version is the expected one and the app committed `blocks` blocks past the
  upgrade height;
- unhealthy: the app reports another version (the wrong binary was staged) — after `blocks`
  blocks, so a node still starting is not judged;
- pending: no answer yet, or not enough blocks.

Settings (plugins.toml `config`):
  rpc     = "http://127.0.0.1:26657"   the CometBFT RPC (allowlist its host:port)
  expect  = "v2.0.1"                   the version to see (default: the plan's name); a leading
                                       "v" is ignored on both sides
  blocks  = 2                          blocks past the upgrade height before judging
"""

import json

from wit_world import exports
from wit_world.imports.types import Health_Healthy, Health_Pending, Health_Unhealthy

from wasi_http import request


def setting(settings, key, default):
    value = default
    for k, v in settings:
        if k == key:
            value = v
    return value


def get_json(url):
    """GETs a small JSON document; a redirect or an error status is an error."""
    status, body = request("GET", url, [("accept", "application/json")])
    if status != 200:
        raise RuntimeError(f"{url}: HTTP {status}")
    return json.loads(body)


def bare(version):
    return version.strip().lower().removeprefix("v")


def judge(info, expect, height, blocks):
    response = info.get("result", {}).get("response", {})
    version = response.get("version", "")
    app_height = int(response.get("last_block_height", "0") or "0")
    if app_height < height + blocks:
        return Health_Pending(f"app at height {app_height}, waiting for {height + blocks}")
    if bare(version) != bare(expect):
        return Health_Unhealthy(
            f"the app reports version {version!r}, not {expect!r}: the wrong binary runs"
        )
    return Health_Healthy(f"app version {version} at height {app_height}")


class Check(exports.Check):
    def check(self, context, settings):
        rpc = setting(settings, "rpc", "http://127.0.0.1:26657").rstrip("/")
        expect = setting(settings, "expect", context.plan.name)
        try:
            blocks = int(setting(settings, "blocks", "2"))
        except ValueError:
            return Health_Unhealthy("app-version: the setting blocks is not a number")
        try:
            info = get_json(f"{rpc}/abci_info")
        except Exception as e:  # the node may still be starting: ask again
            return Health_Pending(f"{rpc}/abci_info: {e}")
        return judge(info, expect, context.plan.height, blocks)
