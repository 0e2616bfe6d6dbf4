"""A minimal local inference server speaking TensorFlow Serving's REST ``predict`` protocol,
and the Open Inference Protocol (v2, spoken by Triton and KServe) for one float input.

    with PredictServer(predict, name="digits", input_shape=(64,)) as server:
        status, body = request(server.predict_url, {"instances": [[0.0] * 64]})

Requests (the same shapes as TensorFlow Serving's REST API, for a model with one input):

- ``GET  /v1/models/<name>``          -> 200 ``{"model_version_status": [...]}``
- ``POST /v1/models/<name>:predict``  with ``{"instances": [[...], ...]}`` (row form)
                                      -> 200 ``{"predictions": [[...], ...]}``
                                      or ``{"inputs": [[...], ...]}`` (columnar form)
                                      -> 200 ``{"outputs": [[...], ...]}``
- ``POST /v2/models/<name>/infer``    with ``{"inputs": [{"name", "shape", "datatype": "FP32",
                                      "data": [flat values]}]}`` -> 200 ``{"model_name",
                                      "outputs": [{"name", "shape", "datatype", "data"}]}``

Bad requests get a 4xx status and ``{"error": "<what is wrong>"}``: 400 for a body that is not
JSON, has neither ``"instances"`` nor ``"inputs"``, has the wrong shape or non-numeric values; 404 for an unknown
model or path; 405 for a wrong method; 411/413 for a missing or too large body. A predict
function that raises gives 500. Only the standard library is used (``http.server``).
"""

import json
import math
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

MAX_BODY = 8 * 2**20  # bytes; a larger request gets 413


class BadRequest(Exception):
    """A client error: carries the HTTP status and the message sent back as ``{"error": ...}``."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status, self.message = status, message


def _load_object(body):
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BadRequest(
            400, f"the request body is not valid JSON ({err.__class__.__name__})"
        ) from None
    if not isinstance(payload, dict):
        raise BadRequest(400, 'the request body must be a JSON object like {"instances": [...]}')
    return payload


def parse_request(body, input_shape, dtype="float32", max_instances=4096):
    """Return ``(array, answer_key)`` from a TensorFlow Serving ``predict`` body, or raise.

    The row form ``{"instances": [...]}`` answers under ``"predictions"``; the columnar form
    ``{"inputs": [...]}`` (one unnamed input) answers under ``"outputs"``, as TensorFlow Serving
    does. The list is checked as in :func:`parse_instances`.
    """
    payload = _load_object(body)
    if "instances" in payload and "inputs" in payload:
        raise BadRequest(400, 'send either "instances" (row form) or "inputs" (columnar), not both')
    if "inputs" in payload:
        return _check_array(payload["inputs"], input_shape, dtype, max_instances), "outputs"
    return parse_instances(body, input_shape, dtype, max_instances), "predictions"


def parse_v2(body, input_shape, dtype="float32", max_instances=4096):
    """Return a NumPy array from an Open Inference Protocol (v2) ``infer`` body, or raise.

    Expects ``{"inputs": [{"name": ..., "shape": [n, *input_shape], "datatype": "FP32",
    "data": [n * prod(input_shape) numbers]}]}``: one input, its values flat in row-major order.
    """
    payload = _load_object(body)
    inputs = payload.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
        raise BadRequest(
            400, 'v2 needs "inputs": [{"name", "shape", "datatype", "data"}], one input'
        )
    tensor = inputs[0]
    missing = [k for k in ("name", "shape", "datatype", "data") if k not in tensor]
    if missing:
        raise BadRequest(400, f"the v2 input lacks {', '.join(missing)}")
    if tensor["datatype"] != "FP32":
        raise BadRequest(400, f'datatype must be "FP32", got {json.dumps(tensor["datatype"])[:20]}')
    shape = tensor["shape"]
    if not isinstance(shape, list) or not all(type(d) is int and d > 0 for d in shape):
        raise BadRequest(400, "shape must be a list of positive integers")
    if tuple(shape[1:]) != tuple(input_shape):
        raise BadRequest(400, f"shape must be [n, {', '.join(map(str, input_shape))}], got {shape}")
    data = tensor["data"]
    if not isinstance(data, list):
        raise BadRequest(400, '"data" must be a list of numbers')
    _check_numbers(data)
    flat = np.asarray(data, dtype=np.float64)
    if flat.ndim != 1 or flat.size != math.prod(shape):
        raise BadRequest(
            400, f"data holds {flat.size} values; shape {shape} needs {math.prod(shape)}"
        )
    if shape[0] > max_instances:
        raise BadRequest(400, f"too many instances: {shape[0]} (at most {max_instances})")
    return flat.reshape(shape).astype(dtype)


def parse_instances(body, input_shape, dtype="float32", max_instances=4096):
    """Return a NumPy array ``(n, *input_shape)`` from a request body (bytes), or raise BadRequest.

    Checks, in order: the body is JSON, an object, with a non-empty list ``"instances"`` of at
    most ``max_instances`` items, every value a finite number (not a string, bool or null), and
    every instance of shape ``input_shape``.
    """
    payload = _load_object(body)
    if "instances" not in payload:
        keys = ", ".join(sorted(map(str, payload))) or "none"
        raise BadRequest(
            400,
            f'missing "instances" or "inputs" (keys found: {keys}); send {{"instances": [...]}}',
        )
    return _check_array(payload["instances"], input_shape, dtype, max_instances)


def _check_array(instances, input_shape, dtype, max_instances):
    if not isinstance(instances, list) or not instances:
        raise BadRequest(400, '"instances" must be a non-empty list of inputs')
    if len(instances) > max_instances:
        raise BadRequest(400, f"too many instances: {len(instances)} (at most {max_instances})")
    _check_numbers(instances)
    try:
        array = np.asarray(instances, dtype=np.float64)
    except ValueError:
        raise BadRequest(
            400, f"instances have different shapes; each must have shape {tuple(input_shape)}"
        ) from None
    if array.shape[1:] != tuple(input_shape):
        raise BadRequest(
            400, f"each instance must have shape {tuple(input_shape)}, got {array.shape[1:]}"
        )
    return array.astype(dtype)


def _check_numbers(value, depth=0):
    """Raise BadRequest at the first value that is not a finite number (walks nested lists)."""
    if depth > 32:
        raise BadRequest(400, "instances are nested too deeply")
    if isinstance(value, list):
        for item in value:
            _check_numbers(item, depth + 1)
    elif isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRequest(
            400, f"instances must contain only numbers, found {json.dumps(value)[:40]}"
        )
    elif not math.isfinite(value):
        raise BadRequest(400, "instances must contain only finite numbers (no NaN or Infinity)")


class PredictServer:
    """Serve ``predict`` (NumPy array in, NumPy array out) over HTTP on ``host``, in a thread.

    ``port=0`` asks the operating system for a free port; read it from ``.port`` or
    ``.url``. Use it as a context manager, or call :meth:`start` and :meth:`stop`.
    ``requests`` counts the requests answered, by status code.
    """

    def __init__(
        self,
        predict,
        *,
        name="model",
        input_shape=(64,),
        dtype="float32",
        host="127.0.0.1",
        port=0,
        version=1,
        max_instances=4096,
    ):
        self.predict, self.name, self.input_shape = predict, name, tuple(input_shape)
        self.dtype, self.host, self.version = dtype, host, version
        self.max_instances = max_instances
        self.requests = {}
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer((host, port), _handler_for(self))
        self._httpd.daemon_threads = True
        self._port = self._httpd.server_address[1]
        self._thread = None

    @property
    def port(self):
        """The port the server listens on (chosen by the operating system when ``port=0``)."""
        return self._port

    @property
    def url(self):
        """The model's address, ``http://127.0.0.1:<port>/v1/models/<name>``."""
        return f"http://{self.host}:{self.port}/v1/models/{self.name}"

    @property
    def predict_url(self):
        return self.url + ":predict"

    @property
    def v2_url(self):
        """The Open Inference Protocol (v2) address, ``.../v2/models/<name>/infer``."""
        return f"http://{self.host}:{self.port}/v2/models/{self.name}/infer"

    @property
    def running(self):
        return self._thread is not None and self._thread.is_alive()

    def start(self):
        """Start answering requests in a background thread; return self."""
        if self._httpd is None:
            raise RuntimeError("this server was stopped; create a new PredictServer")
        if not self.running:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
            )
            self._thread.start()
        return self

    def stop(self, timeout=5):
        """Stop serving, close the listening socket and wait for the thread; safe to call twice."""
        if self._httpd is None:
            return
        if self.running:
            self._httpd.shutdown()
            self._thread.join(timeout)
        self._httpd.server_close()
        self._httpd = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _count(self, status):
        with self._lock:
            self.requests[status] = self.requests.get(status, 0) + 1

    def status_body(self):
        """The answer to ``GET /v1/models/<name>`` (TensorFlow Serving's model status shape)."""
        return {
            "model_version_status": [
                {
                    "version": str(self.version),
                    "state": "AVAILABLE",
                    "status": {"error_code": "OK", "error_message": ""},
                }
            ]
        }


def _handler_for(server):
    prefix = "/v1/models/"

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "CourseServing/1.0"

        def log_message(self, *args):  # keep request logs out of notebook outputs
            pass

        def _send(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            server._count(status)

        def _model_and_verb(self):
            path = self.path.split("?", 1)[0]
            if not path.startswith(prefix):
                raise BadRequest(404, f"unknown path {path}; models live under {prefix}<name>")
            rest = path[len(prefix) :]
            name, _, verb = rest.partition(":")
            name = name.split("/versions/")[0]
            if name != server.name:
                raise BadRequest(404, f"no model named {name!r}; this server has {server.name!r}")
            return verb

        def do_GET(self):
            try:
                if self._model_and_verb():
                    raise BadRequest(405, "use POST for :predict")
                self._send(200, server.status_body())
            except BadRequest as bad:
                self._send(bad.status, {"error": bad.message})

        def do_POST(self):
            v2 = self.path.split("?", 1)[0] == f"/v2/models/{server.name}/infer"
            try:
                verb = "predict" if v2 else self._model_and_verb()
                if verb != "predict":
                    raise BadRequest(404, f"unknown method {verb!r}; this server has only :predict")
                length = self.headers.get("Content-Length")
                if length is None:
                    raise BadRequest(411, "the request needs a Content-Length header")
                length = int(length)
                if length > MAX_BODY:
                    raise BadRequest(413, f"the request body is larger than {MAX_BODY} bytes")
                body = self.rfile.read(length)
                limits = (server.input_shape, server.dtype, server.max_instances)
                if v2:
                    X, key = parse_v2(body, *limits), None
                else:
                    X, key = parse_request(body, *limits)
            except BadRequest as bad:
                self.close_connection = True
                self._send(bad.status, {"error": bad.message})
                return
            except ValueError:
                self.close_connection = True
                self._send(400, {"error": "the Content-Length header is not a number"})
                return
            try:
                Y = np.asarray(server.predict(X))
            except Exception as err:  # the model failed: a server error, said plainly
                self._send(500, {"error": f"prediction failed: {type(err).__name__}: {err}"})
                return
            if key is None:  # Open Inference Protocol: flat data with its shape and type
                output = {"name": "output_0", "shape": list(Y.shape), "datatype": "FP32"}
                output["data"] = Y.astype(np.float32).ravel().tolist()
                self._send(200, {"model_name": server.name, "outputs": [output]})
            else:
                self._send(200, {key: Y.tolist()})

    return Handler


def request(url, payload=None, *, data=None, method=None, timeout=10):
    """Send one request with ``urllib.request``; return ``(status, decoded JSON body)``.

    ``payload`` is sent as JSON; ``data`` (bytes) is sent as it is, for malformed requests.
    Without either, the request is a GET. HTTP errors (4xx, 5xx) are returned, not raised.
    """
    if payload is not None:
        data = json.dumps(payload).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as err:
        with err:
            return err.code, json.loads(err.read() or b"{}")


def port_is_open(port, host="127.0.0.1", timeout=0.5):
    """Return True if something accepts TCP connections on ``host:port``."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        return sock.connect_ex((host, port)) == 0
