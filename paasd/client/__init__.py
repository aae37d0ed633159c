"""The control API client: what `paasctl` and the TUI use, and nothing else.

A thin layer over httpx speaking HTTP to the daemon's Unix socket; API errors
and an unreachable daemon become `ApiError` with a message a user can act on.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import httpx

from ..paths import default_socket


class ApiError(Exception):
    def __init__(self, message: str, status: int = 0, problems: list[str] | None = None):
        super().__init__(message)
        self.status = status
        self.problems = problems or []


SYSTEM_SOCKET = "/run/paasd/paasd.sock"  # paasd.service's (RuntimeDirectory=paasd)


def resolve_socket(explicit: str | None = None) -> str:
    chosen = explicit or os.environ.get("PAASD_SOCKET")
    if chosen:
        return chosen
    own = default_socket()
    if not os.path.exists(own) and os.path.exists(SYSTEM_SOCKET):
        return SYSTEM_SOCKET  # no daemon of the user's own: the system service's
    return own


class Client:
    def __init__(self, socket_path: str | None = None, timeout: float = 30.0) -> None:
        self.socket = resolve_socket(socket_path)
        self._http = httpx.Client(transport=httpx.HTTPTransport(uds=self.socket),
                                  base_url="http://paasd", timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _unreachable(self, exc: Exception) -> ApiError:
        reason = "no such socket" if not os.path.exists(self.socket) else str(exc)
        return ApiError(
            f"cannot reach paasd at {self.socket} ({reason}). Start the daemon with `paasd` "
            "(or `systemctl start paasd`), or point at its socket with --socket PATH or "
            "PAASD_SOCKET.")

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except (httpx.ConnectError, httpx.RemoteProtocolError, FileNotFoundError,
                ConnectionRefusedError, PermissionError) as exc:
            raise self._unreachable(exc) from None
        except httpx.TimeoutException:
            raise ApiError(f"paasd at {self.socket} did not answer in time") from None
        return self._decode(response)

    @staticmethod
    def _decode(response: httpx.Response) -> Any:
        try:
            body = response.json()
        except json.JSONDecodeError:
            body = {"error": {"message": response.text.strip()}}
        if response.status_code >= 400:
            err = body.get("error", body) if isinstance(body, dict) else {}
            problems = err.get("problems") or body.get("problems") or []
            raise ApiError(err.get("message", f"HTTP {response.status_code}"),
                           response.status_code, problems)
        return body

    def stream(self, path: str, params: dict[str, Any] | None = None) -> Iterator[bytes]:
        try:
            with self._http.stream("GET", path, params=params, timeout=None) as response:
                if response.status_code >= 400:
                    response.read()
                    self._decode(response)
                yield from response.iter_bytes()
        except (httpx.ConnectError, FileNotFoundError, ConnectionRefusedError,
                PermissionError) as exc:
            raise self._unreachable(exc) from None
        except httpx.RemoteProtocolError:
            return  # the daemon went away mid-stream

    # -- the API --------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", "/v1/info")
        return result

    def apply(self, text: str, filename: str = "<stdin>", dry_run: bool = False
              ) -> list[dict[str, Any]]:
        params = {"filename": filename, **({"dryRun": "All"} if dry_run else {})}
        body = self.request("POST", "/v1/apply", params=params,
                            content=text.encode(), headers={"content-type": "application/yaml"})
        results: list[dict[str, Any]] = body["results"]
        return results

    def apply_document(self, doc: dict[str, Any], filename: str = "<paasctl>"
                       ) -> dict[str, Any]:
        body = self.request("POST", "/v1/apply", params={"filename": filename},
                            content=json.dumps(doc).encode(),
                            headers={"content-type": "application/json"})
        result: dict[str, Any] = body["results"][0]
        return result

    def export(self, namespace: str, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request(
            "GET", f"/v1/namespaces/{namespace}/services/{name}/export")
        return result

    def export_all(self, namespace: str | None = None) -> list[dict[str, Any]]:
        params = {"namespace": namespace} if namespace else None
        items: list[dict[str, Any]] = self.request("GET", "/v1/export", params=params)["items"]
        return items

    def rollback(self, namespace: str, name: str, to: str | None = None) -> dict[str, Any]:
        result: dict[str, Any] = self.request(
            "POST", f"/v1/namespaces/{namespace}/services/{name}/rollback",
            content=json.dumps({"to": to}).encode(),
            headers={"content-type": "application/json"})
        return result

    def services(self, namespace: str | None = None) -> list[dict[str, Any]]:
        params = {"namespace": namespace} if namespace else None
        items: list[dict[str, Any]] = self.request("GET", "/v1/services", params=params)["items"]
        return items

    def service(self, namespace: str, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request(
            "GET", f"/v1/namespaces/{namespace}/services/{name}")
        return result

    def delete_service(self, namespace: str, name: str) -> None:
        self.request("DELETE", f"/v1/namespaces/{namespace}/services/{name}")

    def revisions(self, namespace: str | None = None, service: str | None = None,
                  active: bool = False) -> list[dict[str, Any]]:
        """Revisions; with `active`, only those with live figures (scaled or running)."""
        params = {k: v for k, v in (("namespace", namespace), ("service", service),
                                    ("active", "1" if active else None)) if v}
        items: list[dict[str, Any]] = self.request("GET", "/v1/revisions",
                                                   params=params)["items"]
        return items

    def revision(self, namespace: str, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request(
            "GET", f"/v1/namespaces/{namespace}/revisions/{name}")
        return result

    def routes(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.request("GET", "/v1/routes")["items"]
        return items

    def instances(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.request("GET", "/v1/instances")["items"]
        return items

    def events(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.request("GET", "/v1/events")["items"]
        return items

    def logs(self, namespace: str, name: str, follow: bool = False, tail: int = 100
             ) -> Iterator[bytes]:
        return self.stream(f"/v1/namespaces/{namespace}/services/{name}/logs",
                           params={"follow": "1" if follow else "0", "tail": str(tail)})

    def requests(self, namespace: str, name: str | None, *, follow: bool = False,
                 status: str | None = None, since: str | None = None, tail: int = 100
                 ) -> Iterator[dict[str, Any]]:
        """A service's request records (`name` None: requests no service had), oldest
        first; with `follow`, new ones as they finish, until the caller stops."""
        path = f"/v1/namespaces/{namespace}/services/{name}/requests" if name \
            else "/v1/requests/unrouted"
        params = {"follow": "1" if follow else "0", "tail": str(tail)}
        if status:
            params["status"] = status
        if since:
            params["since"] = since
        buffer = b""
        for chunk in self.stream(path, params=params):
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                if line.strip():
                    yield json.loads(line)

    def watch(self) -> Iterator[dict[str, Any]]:
        buffer = b""
        for chunk in self.stream("/v1/watch"):
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                if line.strip():
                    yield json.loads(line)

    def config(self) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", "/v1/config")
        return result

    def put_config(self, text: str) -> dict[str, Any]:
        """Validate, write and reload; ApiError(422) with `problems` if it is invalid."""
        result: dict[str, Any] = self.request("PUT", "/v1/config", content=text.encode())
        return result

    def reload_config(self) -> dict[str, Any]:
        result: dict[str, Any] = self.request("POST", "/v1/config/reload")
        return result

    def check_config(self, text: str, filename: str) -> dict[str, Any]:
        try:
            result: dict[str, Any] = self.request("POST", "/v1/config/check",
                                                  params={"filename": filename},
                                                  content=text.encode())
        except ApiError as exc:
            if exc.status == 422:
                return {"ok": False, "problems": exc.problems}
            raise
        return result

    # -- builds and git push (docs/builds.md) ---------------------------------

    def build(self, namespace: str, name: str, source: str) -> dict[str, Any]:
        """Queue a build of a directory on the daemon's machine."""
        result: dict[str, Any] = self.request(
            "POST", f"/v1/namespaces/{namespace}/services/{name}/builds",
            json={"source": source})
        return result

    def build_git(self, namespace: str, name: str, repo: str, commit: str,
                  env: dict[str, str]) -> dict[str, Any]:
        result: dict[str, Any] = self.request(
            "POST", f"/v1/namespaces/{namespace}/services/{name}/builds",
            json={"git": {"repo": repo, "commit": commit, "env": env}})
        return result

    def builds(self, namespace: str | None = None, service: str | None = None
               ) -> list[dict[str, Any]]:
        params = {k: v for k, v in (("namespace", namespace), ("service", service)) if v}
        items: list[dict[str, Any]] = self.request("GET", "/v1/builds", params=params)["items"]
        return items

    def get_build(self, namespace: str, build_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET",
                                              f"/v1/namespaces/{namespace}/builds/{build_id}")
        return result

    def build_log(self, namespace: str, build_id: str, follow: bool = True) -> Iterator[bytes]:
        return self.stream(f"/v1/namespaces/{namespace}/builds/{build_id}/log",
                           params={"follow": "1" if follow else "0"})

    def dockerfile(self, source: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("POST", "/v1/builds/dockerfile",
                                              json={"source": source})
        return result

    def git_init(self, namespace: str, name: str, python: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request(
            "POST", f"/v1/namespaces/{namespace}/services/{name}/git", json={"python": python})
        return result
