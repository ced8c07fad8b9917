"""Lambda Runtime API loop for python3.x functions, standard library only.

Loads the handler named by _HANDLER ("module.function", the module may be a
path like "dir/module") from LAMBDA_TASK_ROOT, then answers events from
AWS_LAMBDA_RUNTIME_API until the process is stopped. Error documents follow
the shapes the AWS Python runtime produces.
"""

import http.client
import importlib
import json
import os
import sys
import time
import traceback

API = "/2018-06-01/runtime"


class LambdaContext:
    """The context object handed to the handler, as on AWS."""

    def __init__(self, request_id, deadline_ms, invoked_arn, client_context, identity, tenant_id=None):
        self.aws_request_id = request_id
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "")
        self.invoked_function_arn = invoked_arn
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.client_context = client_context
        self.identity = identity
        # The tenant of a function with tenant isolation; None otherwise.
        self.tenant_id = tenant_id
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self):
        return max(int(self._deadline_ms - time.time() * 1000), 0)


class Client:
    """One keep-alive connection to the Runtime API."""

    def __init__(self, address):
        host, _, port = address.rpartition(":")
        self.conn = http.client.HTTPConnection(host, int(port))

    def request(self, method, path, body=None, headers=None):
        self.conn.request(method, API + path, body=body, headers=headers or {})
        resp = self.conn.getresponse()
        data = resp.read()
        return resp.status, resp, data

    def post(self, path, body, error_type=None):
        headers = {"Content-Type": "application/json"}
        if error_type:
            headers["Lambda-Runtime-Function-Error-Type"] = error_type
        status, _, data = self.request("POST", path, body, headers)
        if status != 202:
            sys.stderr.write("runtime API answered %d to POST %s: %s\n" % (status, path, data.decode("utf-8", "replace")))
            sys.exit(1)


def error_doc(error_type, message, request_id="", stack=None):
    return json.dumps({
        "errorMessage": message,
        "errorType": error_type,
        "requestId": request_id,
        "stackTrace": stack or [],
    }).encode()


def user_stack(tb):
    # Skip this file's frames: the trace starts in the function's code.
    frames = [f for f in traceback.extract_tb(tb) if f.filename != __file__]
    return traceback.format_list(frames)


def load_handler(handler):
    """Returns (function, None) or (None, (errorType, message, stack))."""
    try:
        modname, fname = handler.rsplit(".", 1)
    except ValueError as e:
        return None, ("Runtime.MalformedHandlerName", "Bad handler '%s': %s" % (handler, e), [])
    modname = modname.replace("/", ".")
    try:
        mod = importlib.import_module(modname)
    except SyntaxError as e:
        return None, ("Runtime.UserCodeSyntaxError", "Syntax error in module '%s': %s" % (modname, e), [])
    except ImportError as e:
        return None, ("Runtime.ImportModuleError", "Unable to import module '%s': %s" % (modname, e), [])
    except Exception as e:  # raised by the module's own top-level code
        return None, (type(e).__name__, str(e), user_stack(e.__traceback__))
    fn = getattr(mod, fname, None)
    if fn is None:
        return None, ("Runtime.HandlerNotFound", "Handler '%s' missing on module '%s'" % (fname, modname), [])
    return fn, None


def main():
    client = Client(os.environ["AWS_LAMBDA_RUNTIME_API"])
    task_root = os.environ.get("LAMBDA_TASK_ROOT", os.getcwd())
    # The script's own directory must not shadow the function's modules.
    if sys.path and os.path.abspath(sys.path[0] or ".") == os.path.dirname(os.path.abspath(__file__)):
        sys.path.pop(0)
    sys.path.insert(0, task_root)

    fn, err = load_handler(os.environ.get("_HANDLER", ""))
    if err is not None:
        error_type, message, stack = err
        sys.stderr.write("[ERROR] %s: %s\n" % (error_type, message))
        client.post("/init/error", error_doc(error_type, message, "", stack), error_type)
        sys.exit(1)

    while True:
        status, resp, body = client.request("GET", "/invocation/next")
        if status != 200:
            sys.stderr.write("runtime API answered %d to GET /next\n" % status)
            sys.exit(1)
        request_id = resp.getheader("Lambda-Runtime-Aws-Request-Id", "")
        deadline_ms = int(resp.getheader("Lambda-Runtime-Deadline-Ms", "0") or 0)
        trace_id = resp.getheader("Lambda-Runtime-Trace-Id")
        if trace_id:
            os.environ["_X_AMZN_TRACE_ID"] = trace_id
        else:
            os.environ.pop("_X_AMZN_TRACE_ID", None)
        client_context = resp.getheader("Lambda-Runtime-Client-Context")
        identity = resp.getheader("Lambda-Runtime-Cognito-Identity")
        try:
            client_context = json.loads(client_context) if client_context else None
            identity = json.loads(identity) if identity else None
            event = json.loads(body) if body else None
        except ValueError as e:
            client.post("/invocation/%s/error" % request_id,
                        error_doc("Runtime.UnmarshalError", "Unable to unmarshal input: %s" % e, request_id),
                        "Runtime.UnmarshalError")
            continue
        ctx = LambdaContext(request_id, deadline_ms, resp.getheader("Lambda-Runtime-Invoked-Function-Arn", ""),
                            client_context, identity, resp.getheader("Lambda-Runtime-Aws-Tenant-Id"))
        try:
            result = fn(event, ctx)
        except Exception as e:
            error_type = type(e).__name__
            stack = user_stack(e.__traceback__)
            sys.stdout.write("[ERROR] %s: %s\nTraceback (most recent call last):\n%s" % (error_type, e, "".join(stack)))
            client.post("/invocation/%s/error" % request_id, error_doc(error_type, str(e), request_id, stack), error_type)
            continue
        try:
            payload = json.dumps(result).encode()
        except (TypeError, ValueError) as e:
            client.post("/invocation/%s/error" % request_id,
                        error_doc("Runtime.MarshalError", "Unable to marshal response: %s" % e, request_id),
                        "Runtime.MarshalError")
            continue
        client.post("/invocation/%s/response" % request_id, payload)


if __name__ == "__main__":
    main()
