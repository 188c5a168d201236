"""The routes' JSON bodies read with each number as written (`application.requests.json_numbers`):
FastAPI reads a body through `Request.json()`, Starlette's `json.loads`, which takes a fraction
that rounds to an integer for that integer. Every router that takes a body is made with
`route_class=ExactJsonRoute`; the command lane reads its bodies the same way."""

import json
from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi import Request, Response
from fastapi.routing import APIRoute

from complaintcore.application.requests.json_numbers import loads_exact, number_as_written


class _ExactJsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            try:
                self._json = loads_exact(body)
            except orjson.JSONDecodeError:
                # what the json module takes and orjson does not (NaN, integers beyond 64 bits)
                # is read as Starlette reads it, for the models to refuse as they did
                self._json = json.loads(body, parse_float=number_as_written)
        return self._json


class ExactJsonRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def exact_json_handler(request: Request) -> Response:
            return await handler(_ExactJsonRequest(request.scope, request.receive))

        return exact_json_handler
