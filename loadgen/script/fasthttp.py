"""``FastHttpUser``: Locust's geventhttpclient user, on loadgen's own client (which is the fast one here).

Its class attributes map onto the session: ``network_timeout`` (read), ``connection_timeout``, ``max_redirects``,
``insecure`` (no certificate checks), ``concurrency`` (the user's connections) and ``client_pool`` (shared
connections). ``max_retries`` above 0 is refused: loadgen never resends a request that may have arrived.
"""

from __future__ import annotations

from typing import Any, ClassVar

from loadgen.script.users import HttpUser, UserContext


class FastHttpUser(HttpUser):
    abstract = True
    network_timeout: ClassVar[float] = 60.0
    connection_timeout: ClassVar[float] = 60.0
    max_redirects: ClassVar[int] = 30
    max_retries: ClassVar[int] = 0
    insecure: ClassVar[bool] = True
    default_headers: ClassVar[dict[str, str] | None] = None
    concurrency: ClassVar[int] = 10
    client_pool: ClassVar[Any] = None
    proxy_host: ClassVar[str | None] = None
    proxy_port: ClassVar[int | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.max_retries:
            raise ValueError(f"{cls.__name__}.max_retries = {cls.max_retries}: loadgen never resends a request "
                             "that may have reached the server; retry in the task if it is safe")
        if getattr(cls, "ssl_context_factory", None) is not None:
            raise ValueError(f"{cls.__name__}.ssl_context_factory: loadgen keeps one TLS context per process; "
                             "use --ca-bundle, --client-cert/--client-key, --insecure or --tls-max")
        if cls.client_pool is not None:
            cls.connection_pool = "shared"
        if cls.pool_size is None:
            cls.pool_size = cls.concurrency

    def __init__(self, context: UserContext) -> None:
        super().__init__(context)
        client = self.client
        client.configure(connect_timeout=self.connection_timeout, read_timeout=self.network_timeout,
                         max_redirects=self.max_redirects)
        if self.insecure:
            client.verify = False
        if self.default_headers:
            client.headers.update(self.default_headers)
        if self.proxy_host:
            proxy = f"http://{self.proxy_host}:{self.proxy_port or 80}"
            client.proxies = {"http": proxy, "https": proxy}
