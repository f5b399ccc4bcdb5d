"""Paginators for the local clients, driven by botocore's paginator model (as boto3's are).

``client.get_paginator("list_objects_v2").paginate(Bucket=..., Prefix=...)``
yields the pages of successive calls, passing each page's output token
(``NextContinuationToken``, ``NextToken``, ...) as the next call's input
token, until a page has none (or ``more_results`` says there are no more).
``PaginationConfig`` takes ``PageSize`` (the operation's limit key) and
``MaxItems``/``StartingToken`` are refused rather than half-supported.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any


def _as_list(value: Any) -> list[str]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


class Paginator:
    def __init__(self, method: Callable[..., dict[str, Any]], config: dict[str, Any]) -> None:
        self._method = method
        self._input_tokens = _as_list(config["input_token"])
        self._output_tokens = _as_list(config["output_token"])
        self._limit_key = config.get("limit_key")
        self._more_results = config.get("more_results")

    def paginate(self, **params: Any) -> Iterator[dict[str, Any]]:
        paging = dict(params.pop("PaginationConfig", None) or {})
        page_size = paging.pop("PageSize", None)
        if paging:
            raise ValueError(f"PaginationConfig {sorted(paging)} is not supported by the local paginator (PageSize is)")
        if page_size is not None and self._limit_key:
            params[self._limit_key] = page_size
        return self._pages(params)

    def _pages(self, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        while True:
            page = self._method(**params)
            yield page
            tokens = [page.get(key.split(".")[-1]) for key in self._output_tokens]
            if self._more_results and not page.get(self._more_results):
                return
            if not any(tokens):
                return
            for key, token in zip(self._input_tokens, tokens):
                if token:
                    params[key] = token
                else:
                    params.pop(key, None)
