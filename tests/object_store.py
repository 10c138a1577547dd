"""A local S3-compatible server (moto's) on 127.0.0.1, with a bucket and the Airflow Connection that reaches it."""

from __future__ import annotations

import json
import socket

import boto3
import requests
from moto.server import ThreadedMotoServer

ACCESS = {"login": "local-test-key", "password": "local-test-secret"}  # moto accepts any key; nothing real


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LocalObjectStore:
    """``with LocalObjectStore("bucket") as store:`` serves S3 on ``store.endpoint`` until the block ends."""

    def __init__(self, bucket: str):
        self.bucket = bucket
        self.port = free_port()
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def connection(self) -> str:
        """The Airflow Connection (JSON, for ``AIRFLOW_CONN_<ID>``) of this server."""
        return json.dumps({"conn_type": "aws", **ACCESS,
                           "extra": {"endpoint_url": self.endpoint, "region_name": "us-east-1"}})

    def client(self):
        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=ACCESS["login"], aws_secret_access_key=ACCESS["password"])

    def keys(self, prefix: str = "") -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

    def __enter__(self) -> LocalObjectStore:
        self._server.start()
        requests.post(f"{self.endpoint}/moto-api/reset", timeout=10).raise_for_status()  # moto's state is per process
        self.client().create_bucket(Bucket=self.bucket)
        return self

    def __exit__(self, *exc) -> None:
        self._server.stop()
