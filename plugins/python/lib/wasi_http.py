"""HTTP over wasi:http for wasmvisor plugins written in Python (componentize-py).

The standard interface: the host sends each request through its own client, only to the plugin's
`allow-hosts`, within the call's deadline, and fails a body that stalls for `idle-timeout`. Every
call blocks (a plugin call has no event loop to return to). Errors are RuntimeError with a text an
operator can act on: the URL and what went wrong.

    status, body = request("POST", url, [("content-type", "application/json")], b"{...}")
"""

from urllib.parse import urlsplit

from componentize_py_types import Err
from wit_world.imports import outgoing_handler
from wit_world.imports.http_types import (
    ErrorCode_ConnectionRefused,
    ErrorCode_ConnectionTimeout,
    ErrorCode_ConnectionReadTimeout,
    ErrorCode_DnsError,
    ErrorCode_HttpRequestDenied,
    ErrorCode_HttpResponseTimeout,
    ErrorCode_InternalError,
    Fields,
    IncomingBody,
    Method_Get,
    Method_Post,
    Method_Put,
    OutgoingBody,
    OutgoingRequest,
    RequestOptions,
    Scheme_Http,
    Scheme_Https,
    http_error_code,
)
from wit_world.imports.streams import StreamError_Closed

MAX_BODY = 1 << 20
SECOND_NS = 1_000_000_000
METHODS = {"GET": Method_Get, "POST": Method_Post, "PUT": Method_Put}


def describe(code):
    """An ErrorCode as words."""
    if isinstance(code, ErrorCode_HttpRequestDenied):
        return "not in this plugin's allow-hosts"
    if isinstance(code, ErrorCode_ConnectionRefused):
        return "the connection was refused"
    if isinstance(code, ErrorCode_ConnectionTimeout):
        return "no connection in time"
    if isinstance(code, (ErrorCode_ConnectionReadTimeout, ErrorCode_HttpResponseTimeout)):
        return "no answer in time"
    if isinstance(code, ErrorCode_DnsError):
        return f"the name does not resolve ({code.value.rcode or 'no answer'})"
    if isinstance(code, ErrorCode_InternalError) and code.value:
        return code.value
    return type(code).__name__.removeprefix("ErrorCode_")


def stream_error(url, what, e):
    """A stream's failure: the ErrorCode it carries, else the host's own words."""
    if isinstance(e, StreamError_Closed):
        return RuntimeError(f"{url}: {what}: the connection closed")
    code = http_error_code(e.value)
    said = describe(code) if code is not None else e.value.to_debug_string()
    return RuntimeError(f"{url}: {what}: {said}")


def request(method, url, headers=(), body=b"", max_body=MAX_BODY, timeout_s=4):
    """Sends one request; returns (status, body). `timeout_s` bounds the connection and the wait
    for the answer's head (the host clamps both to the call's deadline)."""
    parts = urlsplit(url)
    schemes = {"http": Scheme_Http, "https": Scheme_Https}
    if parts.scheme not in schemes:
        raise RuntimeError(f"{url}: only http and https URLs")
    fields = Fields.from_list([(k.lower(), v.encode()) for k, v in headers])
    req = OutgoingRequest(fields)
    req.set_method(METHODS[method]())
    req.set_scheme(schemes[parts.scheme]())
    req.set_authority(parts.netloc)
    req.set_path_with_query((parts.path or "/") + (f"?{parts.query}" if parts.query else ""))
    out = req.body()
    options = RequestOptions()
    options.set_connect_timeout(timeout_s * SECOND_NS)
    options.set_first_byte_timeout(timeout_s * SECOND_NS)
    try:
        future = outgoing_handler.handle(req, options)
    except Err as e:
        raise RuntimeError(f"{url}: {describe(e.value)}")
    sent = None
    with out.write() as stream:
        for at in range(0, len(body), 4096):
            try:
                stream.blocking_write_and_flush(body[at : at + 4096])
            except Err as e:
                sent = stream_error(url, "sending the body", e.value)
                break
    if sent is None:
        OutgoingBody.finish(out, None)
    with future:
        while (answer := future.get()) is None:
            with future.subscribe() as ready:
                ready.block()
    # A refused request closes the body's stream first: its answer says why.
    if isinstance(answer.value, Err):
        raise RuntimeError(f"{url}: {describe(answer.value.value)}")
    if sent is not None:
        raise sent
    with answer.value.value as response:
        status = response.status()
        incoming = response.consume()
    chunks, size = [], 0
    with incoming.stream() as stream:  # the stream goes before its body
        while True:
            try:
                chunk = stream.blocking_read(64 * 1024)
            except Err as e:
                if isinstance(e.value, StreamError_Closed):
                    break
                raise stream_error(url, f"reading the body after {size} bytes", e.value)
            size += len(chunk)
            if size > max_body:
                raise RuntimeError(f"{url}: more than {max_body} bytes")
            chunks.append(chunk)
    IncomingBody.finish(incoming)
    return status, b"".join(chunks)
