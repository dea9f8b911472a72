"""``switchyard``: the command-line client CI uses to drive the REST API.

    switchyard release create --service api --version 1.4.2 --artifact '{"sample": {}}'
    switchyard deploy --service api --env prod --version 1.4.2 [--strategy file.json] --wait
    switchyard status ID
    switchyard promote [--full] ID | pause ID | resume ID | abort ID | rollback ID | end-window ID

The server and token come from ``SWITCHYARD_URL`` (default http://127.0.0.1:8000) and
``SWITCHYARD_TOKEN``. Exit status: 0 done (with ``--wait``: the deployment succeeded); 1 the
deployment failed, was rolled back, aborted or rejected, or ``--wait`` timed out first; 2 a usage
error or an error from the API (its message is printed).

Only the standard library and httpx: no Django import, so it runs anywhere CI does.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

EXIT_OK, EXIT_FAILED, EXIT_ERROR = 0, 1, 2
DEFAULT_URL = "http://127.0.0.1:8000"
SUCCEEDED = ("succeeded",)
FAILED = ("failed", "rolled_back", "aborted", "rejected")
REQUEST_TIMEOUT = 15.0
CREATE_ATTEMPTS = 3


class UsageError(Exception):
    """A bad argument: exit 2 without calling the API."""


class ApiError(Exception):
    """The API answered with an error (or could not be reached): exit 2."""

    def __init__(self, message: str, *, status: int | None = None, details: dict | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.details = details or {}

    @property
    def transient(self) -> bool:
        """Worth retrying: the server could not be reached or had a server-side error."""
        return self.status is None or self.status >= 500


class Client:
    """A thin wrapper over /api/v1 that turns every error body into an ApiError."""

    def __init__(self, url: str, token: str, *, timeout: float = REQUEST_TIMEOUT, transport=None):
        self.url = url.rstrip("/")
        headers = {"User-Agent": "switchyard-cli/1", "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.http = httpx.Client(
            base_url=f"{self.url}/api/v1", headers=headers, timeout=timeout, transport=transport
        )

    def close(self) -> None:
        self.http.close()

    def call(self, method: str, path: str, **kwargs) -> tuple[int, Any]:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ApiError(f"cannot reach Switchyard at {self.url}: {exc}") from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code >= 400:
            if isinstance(body, dict) and "message" in body:
                raise ApiError(
                    body["message"],
                    status=response.status_code,
                    details=body.get("details") or {},
                )
            raise ApiError(
                f"{method} {path} answered {response.status_code} "
                f"{response.reason_phrase}: {response.text[:200]}",
                status=response.status_code,
            )
        if body is None:
            raise ApiError(f"{method} {path} answered with something that is not JSON")
        return response.status_code, body


# --- arguments --------------------------------------------------------------------------------


def _json_object(value: str, what: str) -> dict:
    """``value`` as a JSON object: inline JSON, ``@file``, or (for a path that exists) a file."""
    text = value
    if value.startswith("@") or (not value.lstrip().startswith("{") and Path(value).is_file()):
        path = Path(value[1:] if value.startswith("@") else value)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot read the {what} file {path}: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"the {what} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"the {what} must be a JSON object")
    return data


def _positive(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not number > 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return number


def _common(defaults: bool) -> argparse.ArgumentParser:
    """--url and --json, accepted before or after the command."""
    common = argparse.ArgumentParser(add_help=False)
    unset = argparse.SUPPRESS
    common.add_argument(
        "--url",
        default=None if defaults else unset,
        help=f"server URL (default: $SWITCHYARD_URL or {DEFAULT_URL})",
    )
    common.add_argument(
        "--json",
        action="store_true",
        default=False if defaults else unset,
        help="print the API's JSON answer on stdout (progress goes to stderr)",
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="switchyard",
        description="Drive Switchyard from CI. Server: $SWITCHYARD_URL; token: $SWITCHYARD_TOKEN.",
        epilog="Exit status: 0 done/succeeded, 1 deployment failed/rolled back/aborted/rejected "
        "(or --wait timed out), 2 usage or API error.",
        parents=[_common(defaults=True)],
    )
    common = [_common(defaults=False)]
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name, text):
        return sub.add_parser(name, help=text, parents=common)

    release = command("release", "releases: create")
    release_sub = release.add_subparsers(dest="release_command", required=True, metavar="ACTION")
    create = release_sub.add_parser("create", help="register a build", parents=common)
    create.add_argument("--service", required=True)
    create.add_argument("--version", required=True)
    create.add_argument("--artifact", help="JSON object, or @file with one")
    create.add_argument("--commit", default="")
    create.add_argument("--notes", default="")

    deploy = command("deploy", "start a deployment (and --wait for it)")
    deploy.add_argument("--service", required=True)
    deploy.add_argument("--env", required=True, help="the environment's slug")
    deploy.add_argument("--version", required=True)
    deploy.add_argument("--strategy", help="strategy spec: a JSON file, @file or inline JSON")
    deploy.add_argument("--reason", default="")
    deploy.add_argument(
        "--idempotency-key", help="retrying with the same key never starts a second deployment"
    )
    deploy.add_argument("--wait", action="store_true", help="follow it until it finishes")
    deploy.add_argument(
        "--timeout", type=_positive, default=1800.0, help="seconds --wait waits (default 1800)"
    )
    deploy.add_argument("--interval", type=_positive, default=2.0, help=argparse.SUPPRESS)

    status = command("status", "show a deployment")
    status.add_argument("id", type=int)

    promote = command("promote", "go to the next step (--full: to 100%%)")
    promote.add_argument("--full", action="store_true")
    promote.add_argument("id", type=int)
    for name, text in (("pause", "hold a rollout"), ("resume", "continue a paused rollout")):
        command(name, text).add_argument("id", type=int)
    for name, text in (
        ("abort", "stop and send traffic back to the stable release"),
        (
            "rollback",
            "roll back (a succeeded deployment: switch back to the previous release inside its "
            "rollback window, else deploy it again)",
        ),
        ("retry", "deploy an aborted/failed/rolled back deployment's release again"),
        ("end-window", "end a succeeded deployment's rollback window now (retire the warm slot)"),
    ):
        stop = command(name, text)
        stop.add_argument("--reason", default="")
        stop.add_argument("id", type=int)
    for name, text in (
        ("approve", "approve a deployment awaiting approval (or its step gate)"),
        ("reject", "reject a deployment awaiting approval"),
    ):
        decide = command(name, text)
        decide.add_argument("--comment", default="")
        decide.add_argument("id", type=int)
    return parser


# --- output -----------------------------------------------------------------------------------


def _out(text: str = "") -> None:
    print(text, flush=True)


def _err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _clock(stamp: str | None) -> str:
    return (stamp or "")[11:19] or "--:--:--"


def _weights(weights: dict) -> str:
    return " ".join(f"{role}={value}%" for role, value in weights.items())


def describe(d: dict) -> str:
    """One line about a deployment: id, what goes where, state and step."""
    frm = d.get("stable_version") or "nothing"
    line = (
        f"deployment #{d['id']}: {d['service']} {frm} -> {d['target_version']} in "
        f"{d['environment']} ({d.get('strategy', {}).get('kind', '?')}): {d['state']}"
    )
    step = d.get("step") or {}
    if step.get("description"):
        line += f", step {step.get('index', 0) + 1}: {step['description']}"
    if d.get("weights"):
        line += f" [{_weights(d['weights'])}]"
    return line


def show_deployment(d: dict) -> None:
    _out(describe(d))
    if d.get("intent"):
        _out(f"  pending intent: {d['intent']}")
    if d.get("message"):
        _out(f"  {d['message']}")
    if d.get("failure_reason"):
        _out(f"  failure: {d['failure_reason']}")
    if d.get("links", {}).get("page"):
        _out(f"  {d['links']['page']}")


def show_error(exc: ApiError) -> None:
    _err(f"error: {exc.message}")
    for error in exc.details.get("errors", []) if isinstance(exc.details, dict) else []:
        if isinstance(error, dict):
            _err(f"  {error.get('path') or '(body)'}: {error.get('message')}")


# --- commands ---------------------------------------------------------------------------------


def release_create(client: Client, args) -> int:
    body = {"version": args.version, "commit": args.commit, "notes": args.notes}
    if args.artifact:
        body["artifact"] = _json_object(args.artifact, "artifact")
    status, release = client.call("POST", f"/services/{args.service}/releases", json=body)
    if args.json:
        _out(json.dumps(release))
    elif status == 201:
        _out(f"release {release['service']} {release['version']} created")
    else:
        _out(f"release {release['service']} {release['version']} already exists (same body)")
    return EXIT_OK


def deploy(client: Client, args) -> int:
    body = {
        "service": args.service,
        "environment": args.env,
        "version": args.version,
        "reason": args.reason,
    }
    if args.strategy:
        body["strategy"] = _json_object(args.strategy, "strategy")
    # one key per invocation: retrying the POST after a lost answer cannot deploy twice
    key = args.idempotency_key or f"cli-{uuid.uuid4()}"
    for attempt in range(1, CREATE_ATTEMPTS + 1):
        try:
            status, d = client.call(
                "POST", "/deployments", json=body, headers={"Idempotency-Key": key}
            )
            break
        except ApiError as exc:
            if not exc.transient or attempt == CREATE_ATTEMPTS:
                raise
            _err(f"retrying ({exc.message})")
            time.sleep(min(2**attempt, 10))
    if args.json and not args.wait:
        _out(json.dumps(d))
        return EXIT_OK
    say = _err if args.json else _out
    say(("started " if status == 201 else "already started: ") + describe(d))
    if not args.wait:
        return EXIT_OK
    return follow(client, d, timeout=args.timeout, interval=args.interval, as_json=args.json)


def follow(client: Client, d: dict, *, timeout: float, interval: float, as_json=False) -> int:
    """Print each new event and state until the deployment finishes (or ``timeout`` passes)."""
    say = _err if as_json else _out
    deadline = time.monotonic() + timeout
    cursor, last_line, warned = None, None, False
    while True:
        try:
            _, d = client.call("GET", f"/deployments/{d['id']}")
            cursor = _print_events(client, d["id"], cursor, say)
            warned = False
        except ApiError as exc:
            if not exc.transient:
                raise
            if not warned:  # a server restart should not fail the CI job: keep trying
                _err(f"warning: {exc.message}; still trying")
                warned = True
        else:
            line = describe(d)
            if line != last_line:
                say(line)
                last_line = line
            if d["state"] in SUCCEEDED + FAILED:
                if as_json:
                    _out(json.dumps(d))
                if d["state"] in SUCCEEDED:
                    return EXIT_OK
                if d.get("failure_reason"):
                    say(f"failure: {d['failure_reason']}")
                return EXIT_FAILED
        if time.monotonic() >= deadline:
            _err(
                f"timed out after {timeout:g}s; deployment #{d['id']} is still {d['state']} "
                f"(switchyard abort {d['id']} to stop it)"
            )
            return EXIT_FAILED
        time.sleep(max(0.0, min(interval, deadline - time.monotonic())))


def _print_events(client: Client, deployment_id: int, cursor: int | None, say) -> int | None:
    while True:
        params = {"limit": 200}
        if cursor is not None:
            params["after"] = cursor
        _, page = client.call("GET", f"/deployments/{deployment_id}/events", params=params)
        for event in page["items"]:
            say(f"{_clock(event.get('created_at'))}  {event['kind']:<8} {event['message']}")
            cursor = event["id"]
        if not page.get("next"):
            return cursor


def status(client: Client, args) -> int:
    _, d = client.call("GET", f"/deployments/{args.id}")
    if args.json:
        _out(json.dumps(d))
    else:
        show_deployment(d)
    return EXIT_OK


def operator(client: Client, args) -> int:
    body: dict[str, Any] = {}
    if args.command == "promote" and args.full:
        body["full"] = True
    if args.command in ("abort", "rollback", "retry", "end-window") and args.reason:
        body["reason"] = args.reason
    if args.command in ("approve", "reject") and args.comment:
        body["comment"] = args.comment
    _, d = client.call("POST", f"/deployments/{args.id}/{args.command}", json=body or None)
    if args.json:
        _out(json.dumps(d))
    elif d["id"] != args.id:  # a retry, or rolling back a succeeded one, starts a new one
        _out(f"{args.command} accepted: started {describe(d)}")
    else:
        _out(f"{args.command} accepted: {describe(d)}")
    return EXIT_OK


COMMANDS = {
    "release": release_create,
    "deploy": deploy,
    "status": status,
    "promote": operator,
    "pause": operator,
    "resume": operator,
    "abort": operator,
    "rollback": operator,
    "retry": operator,
    "end-window": operator,
    "approve": operator,
    "reject": operator,
}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed the usage error (or the help)
        return EXIT_ERROR if exc.code not in (0, None) else EXIT_OK
    url = args.url or os.environ.get("SWITCHYARD_URL") or DEFAULT_URL
    token = os.environ.get("SWITCHYARD_TOKEN", "")
    if not url.startswith(("http://", "https://")):
        _err(f"error: the server URL must start with http:// or https://, got {url!r}")
        return EXIT_ERROR
    if not token:
        _err("warning: SWITCHYARD_TOKEN is not set; the API will refuse the request")
    client = Client(url, token)
    try:
        return COMMANDS[args.command](client, args)
    except UsageError as exc:
        parser.print_usage(sys.stderr)
        _err(f"error: {exc}")
        return EXIT_ERROR
    except ApiError as exc:
        show_error(exc)
        return EXIT_ERROR
    except KeyboardInterrupt:
        _err("interrupted (the deployment, if started, carries on)")
        return EXIT_ERROR
    finally:
        client.close()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
