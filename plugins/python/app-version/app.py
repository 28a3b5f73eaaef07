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
from urllib.parse import urlsplit

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import outgoing_handler
from wit_world.imports.http_types import (
    ErrorCode_HttpRequestDenied,
    Fields,
    IncomingBody,
    Method_Get,
    OutgoingRequest,
    Scheme_Http,
    Scheme_Https,
    http_error_code,
)
from wit_world.imports.streams import StreamError_Closed
from wit_world.imports.types import Health_Healthy, Health_Pending, Health_Unhealthy

MAX_BODY = 1 << 20


def setting(settings, key, default):
    value = default
    for k, v in settings:
        if k == key:
            value = v
    return value


def get(url, max_body=MAX_BODY):
    """GETs `url` over wasi:http (the standard interface; the host applies this plugin's
    allow-hosts, its deadline and idle timeout). Returns (status, body); raises RuntimeError.
    Every call blocks: a plugin call has no event loop to return to."""
    parts = urlsplit(url)
    schemes = {"http": Scheme_Http, "https": Scheme_Https}
    if parts.scheme not in schemes:
        raise RuntimeError(f"{url}: only http and https URLs")
    request = OutgoingRequest(Fields.from_list([("accept", b"application/json")]))
    request.set_method(Method_Get())
    request.set_scheme(schemes[parts.scheme]())
    request.set_authority(parts.netloc)
    request.set_path_with_query((parts.path or "/") + (f"?{parts.query}" if parts.query else ""))
    try:
        future = outgoing_handler.handle(request, None)
    except Err as e:
        raise RuntimeError(f"{url}: the request is invalid: {e.value}")
    with future:
        while (answer := future.get()) is None:
            with future.subscribe() as ready:
                ready.block()
    if isinstance(answer.value, Err):
        code = answer.value.value
        if isinstance(code, ErrorCode_HttpRequestDenied):
            raise RuntimeError(f"{url}: not in this plugin's allow-hosts")
        raise RuntimeError(f"{url}: {code}")
    with answer.value.value as response:
        status = response.status()
        body = response.consume()
    chunks, size = [], 0
    with body.stream() as stream:  # the stream goes before its body
        while True:
            try:
                chunk = stream.blocking_read(64 * 1024)
            except Err as e:
                if isinstance(e.value, StreamError_Closed):
                    break
                raise RuntimeError(f"{url}: reading the body: {http_error_code(e.value.value)}")
            size += len(chunk)
            if size > max_body:
                raise RuntimeError(f"{url}: more than {max_body} bytes")
            chunks.append(chunk)
    IncomingBody.finish(body)
    return status, b"".join(chunks)


def get_json(url):
    """GETs a small JSON document; a redirect or an error status is an error."""
    status, body = get(url)
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
