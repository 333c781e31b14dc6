"""A real S3-compatible server for the remote tests: moto's server mode on 127.0.0.1.

moto runs in this process, starts in well under a second and enforces the
conditional PUT (`If-None-Match: *`) that replication relies on.
"""

import logging
import secrets

import boto3
import pytest
from moto.server import ThreadedMotoServer

from tvcat.engine.config.schema import RemoteBackend

KEY_ID = "AKIATESTKEYID0000001"
SECRET = "s3cr3t-test-value-never-shown"


@pytest.fixture(scope="session")
def s3_endpoint():
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def bucket(s3_endpoint) -> str:
    """A new empty bucket for one test."""
    name = f"tvcat-{secrets.token_hex(4)}"
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                          aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET)
    client.create_bucket(Bucket=name)
    return name


@pytest.fixture
def remote_settings(s3_endpoint, bucket) -> RemoteBackend:
    return RemoteBackend(enabled=True, bucket=bucket, endpoint_url=s3_endpoint, prefix="team/tvcat",
                         access_key_id=KEY_ID, secret_access_key=SECRET)
