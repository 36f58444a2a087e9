"""An S3 server for the object-storage lake tests: moto's standalone server, a stand-in.

:func:`s3_lake` yields ``(lake_url, env)``: a fresh ``s3://bucket/prefix`` and the AWS
variables (``AWS_ENDPOINT_URL``, keys, region) that point at the server. By default the
server is moto's ``ThreadedMotoServer`` on 127.0.0.1 and a free port, with a new bucket; it
stops with the fixture. When ``WORKBENCH_TEST_S3_URL`` is set (``s3://bucket/prefix`` on a
real S3 or MinIO, with the AWS variables of the environment), the tests run there instead,
each under a fresh prefix.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

AWS_VARIABLES = (
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_DEFAULT_REGION",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def moto_standin() -> Iterator[dict[str, str]]:
    """Run moto's S3 server on 127.0.0.1 (a stand-in for S3); yield the AWS variables for it."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield {
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
            "AWS_ACCESS_KEY_ID": "standin",
            "AWS_SECRET_ACCESS_KEY": "standin",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    finally:
        server.stop()


def create_bucket(env: dict[str, str], bucket: str) -> None:
    """Create ``bucket`` on the server ``env`` points at."""
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_DEFAULT_REGION"],
    )
    client.create_bucket(Bucket=bucket)


@contextmanager
def s3_lake() -> Iterator[tuple[str, dict[str, str]]]:
    """Yield ``(lake_url, aws_env)``: a fresh lake on the real S3 of ``WORKBENCH_TEST_S3_URL``
    when set, else on moto's stand-in server with a new bucket."""
    real = os.environ.get("WORKBENCH_TEST_S3_URL")
    if real:
        env = {k: os.environ[k] for k in AWS_VARIABLES if k in os.environ}
        yield f"{real.rstrip('/')}/{uuid.uuid4().hex[:12]}", env
        return
    with moto_standin() as env:
        bucket = f"standin-{uuid.uuid4().hex[:12]}"
        create_bucket(env, bucket)
        yield f"s3://{bucket}/lake", env
