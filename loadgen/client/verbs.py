"""The verbs (``get``, ``post``, ...) with requests' positional arguments: a mixin of `HttpSession`.

Each passes its arguments on to `request` by position, and requests' further ones (`RequestExtras`) only
when there are any: a call through a verb costs less than matching keywords twice would.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .extras import RequestExtras
    from .response import Response

USE_SETTINGS: Any = object()
"""``timeout=`` not given: the settings' connect and read timeouts."""

HeaderArg = Mapping[str, Any] | None


class Verbs:
    """get(url, params), post(url, data, json), put/patch(url, data), delete/head/options(url), then the other
    arguments (by keyword, as in requests: their order is not part of the API; keyword-only arguments would cost
    a dict look-up each per call). ``head`` does not follow redirects unless asked to."""

    __slots__ = ()

    def request(self, method: str, path: str, name: str | None = None, headers: HeaderArg = None, params: Any = None,
                json: Any = None, data: Any = None, timeout: Any = USE_SETTINGS, catch_response: bool = False,
                allow_redirects: bool = True, **extras: Unpack[RequestExtras]) -> Response:
        raise NotImplementedError

    def get(self, path: str, params: Any = None, name: str | None = None, headers: HeaderArg = None,
            json: Any = None, data: Any = None, timeout: Any = USE_SETTINGS, catch_response: bool = False,
            allow_redirects: bool = True, **extras: Unpack[RequestExtras]) -> Response:
        if extras:
            return self.request("GET", path, name, headers, params, json, data, timeout, catch_response,
                                allow_redirects, **extras)
        return self.request("GET", path, name, headers, params, json, data, timeout, catch_response, allow_redirects)

    def post(self, path: str, data: Any = None, json: Any = None, name: str | None = None, headers: HeaderArg = None,
             params: Any = None, timeout: Any = USE_SETTINGS, catch_response: bool = False,
             allow_redirects: bool = True, **extras: Unpack[RequestExtras]) -> Response:
        if extras:
            return self.request("POST", path, name, headers, params, json, data, timeout, catch_response,
                                allow_redirects, **extras)
        return self.request("POST", path, name, headers, params, json, data, timeout, catch_response, allow_redirects)

    def put(self, path: str, data: Any = None, name: str | None = None, headers: HeaderArg = None,
            params: Any = None, json: Any = None, timeout: Any = USE_SETTINGS, catch_response: bool = False,
            allow_redirects: bool = True, **extras: Unpack[RequestExtras]) -> Response:
        if extras:
            return self.request("PUT", path, name, headers, params, json, data, timeout, catch_response,
                                allow_redirects, **extras)
        return self.request("PUT", path, name, headers, params, json, data, timeout, catch_response, allow_redirects)

    def patch(self, path: str, data: Any = None, name: str | None = None, headers: HeaderArg = None,
              params: Any = None, json: Any = None, timeout: Any = USE_SETTINGS, catch_response: bool = False,
              allow_redirects: bool = True, **extras: Unpack[RequestExtras]) -> Response:
        if extras:
            return self.request("PATCH", path, name, headers, params, json, data, timeout, catch_response,
                                allow_redirects, **extras)
        return self.request("PATCH", path, name, headers, params, json, data, timeout, catch_response,
                            allow_redirects)

    def delete(self, path: str, name: str | None = None, headers: HeaderArg = None, params: Any = None,
               json: Any = None, data: Any = None, timeout: Any = USE_SETTINGS, catch_response: bool = False,
               allow_redirects: bool = True, **extras: Unpack[RequestExtras]) -> Response:
        if extras:
            return self.request("DELETE", path, name, headers, params, json, data, timeout, catch_response,
                                allow_redirects, **extras)
        return self.request("DELETE", path, name, headers, params, json, data, timeout, catch_response,
                            allow_redirects)

    def head(self, path: str, name: str | None = None, headers: HeaderArg = None, params: Any = None,
             json: Any = None, data: Any = None, timeout: Any = USE_SETTINGS, catch_response: bool = False,
             allow_redirects: bool = False, **extras: Unpack[RequestExtras]) -> Response:
        if extras:
            return self.request("HEAD", path, name, headers, params, json, data, timeout, catch_response,
                                allow_redirects, **extras)
        return self.request("HEAD", path, name, headers, params, json, data, timeout, catch_response, allow_redirects)

    def options(self, path: str, name: str | None = None, headers: HeaderArg = None, params: Any = None,
                json: Any = None, data: Any = None, timeout: Any = USE_SETTINGS, catch_response: bool = False,
                allow_redirects: bool = True, **extras: Unpack[RequestExtras]) -> Response:
        if extras:
            return self.request("OPTIONS", path, name, headers, params, json, data, timeout, catch_response,
                                allow_redirects, **extras)
        return self.request("OPTIONS", path, name, headers, params, json, data, timeout, catch_response,
                            allow_redirects)
