"""Choose the S3 client by measurement, and measure replication against a plain parallel upload.

Run with `python benchmarks/bench_remote.py [--objects 400] [--threads 16]`.
It starts moto's S3 server on 127.0.0.1. For boto3 and for obstore, it
times a parallel put, a list and a parallel get of N objects of 20 to 60 kB
of random bytes, the size of tvcat chunks, which do not compress further. With --replicate it also times `replicate` of a repository holding
the same objects, as a ratio to the plain parallel put of obstore, the chosen
client, with the same number of threads.

Each step runs three times on fresh keys and reports its fastest run. It
prints objects/s and MB/s and writes every figure to
benchmarks/results/remote-<UTC time>.json.
"""

import argparse
import json
import logging
import os
import platform
import secrets
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import boto3
import obstore
from botocore.config import Config as BotoConfig
from moto.server import ThreadedMotoServer
from obstore.store import S3Store

BUCKET = "bench"
REGION = "us-east-1"


def make_objects(count: int) -> list[tuple[str, bytes]]:
    """Return `count` (key, bytes) pairs of 20 to 60 kB of random bytes."""
    sizes = [20_000 + int.from_bytes(secrets.token_bytes(2)) % 40_000 for _ in range(count)]
    return [(secrets.token_hex(32), os.urandom(size)) for size in sizes]


def boto3_client(endpoint: str, threads: int):
    return boto3.client(
        "s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id="bench",
        aws_secret_access_key="bench", config=BotoConfig(max_pool_connections=threads),
    )


def obstore_store(endpoint: str):
    return S3Store(
        BUCKET, endpoint=endpoint, region=REGION, access_key_id="bench", secret_access_key="bench",
        client_options={"allow_http": True},
    )


def timed(step) -> float:
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


def bench_boto3(endpoint: str, objects, threads: int, run: str) -> dict[str, float]:
    client = boto3_client(endpoint, threads)
    prefix = f"boto3-{run}/"

    def put(item):
        client.put_object(Bucket=BUCKET, Key=prefix + item[0], Body=item[1], IfNoneMatch="*")

    def get(item):
        client.get_object(Bucket=BUCKET, Key=prefix + item[0])["Body"].read()

    def listing():
        paginator = client.get_paginator("list_objects_v2")
        return [entry["Key"] for page in paginator.paginate(Bucket=BUCKET, Prefix=prefix)
                for entry in page.get("Contents", [])]

    with ThreadPoolExecutor(threads) as executor:
        put_seconds = timed(lambda: list(executor.map(put, objects)))
        list_seconds = timed(listing)
        get_seconds = timed(lambda: list(executor.map(get, objects)))
    return {"put": put_seconds, "list": list_seconds, "get": get_seconds}


def bench_obstore(endpoint: str, objects, threads: int, run: str) -> dict[str, float]:
    store = obstore_store(endpoint)
    prefix = f"obstore-{run}/"

    def put(item):
        obstore.put(store, prefix + item[0], item[1], mode="create")

    def get(item):
        obstore.get(store, prefix + item[0]).bytes()

    def listing():
        return [entry["path"] for batch in obstore.list(store, prefix=prefix) for entry in batch]

    with ThreadPoolExecutor(threads) as executor:
        put_seconds = timed(lambda: list(executor.map(put, objects)))
        list_seconds = timed(listing)
        get_seconds = timed(lambda: list(executor.map(get, objects)))
    return {"put": put_seconds, "list": list_seconds, "get": get_seconds}


def bench_replicate(endpoint: str, objects, threads: int, run: str) -> dict[str, float]:
    """Time `replicate_repository` of a repository with the same objects, and a plain obstore put of them."""
    from tvcat.catalog.repository import Repository
    from tvcat.engine.config.schema import RemoteBackend
    from tvcat.engine.remote.replicate import replicate_repository
    from tvcat.engine.remote.store import S3ObjectStore

    with tempfile.TemporaryDirectory() as directory:
        repository = Repository(Path(directory) / "repo")
        for key, data in objects:
            repository.store.put(key, data)
        repository.store.flush()
        settings = RemoteBackend(enabled=True, bucket=BUCKET, endpoint_url=endpoint, prefix=f"repl-{run}",
                                 region=REGION, access_key_id="bench", secret_access_key="bench")
        remote = S3ObjectStore(settings, max_connections=threads)
        seconds = timed(lambda: replicate_repository(repository, remote, parallel=threads))
        repository.close()
    plain = bench_obstore(endpoint, objects, threads, f"plain-{run}")["put"]
    return {"replicate": seconds, "plain_put": plain}


def rates(objects, seconds: float) -> dict[str, float]:
    total = sum(len(data) for _, data in objects)
    return {"seconds": seconds, "objects_per_s": len(objects) / seconds, "mb_per_s": total / seconds / 1e6}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=400)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--replicate", action="store_true")
    arguments = parser.parse_args()

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    os.environ.pop("AWS_PROFILE", None)
    boto3_client(endpoint, 1).create_bucket(Bucket=BUCKET)

    objects = make_objects(arguments.objects)
    results: dict[str, dict] = {}
    for name, bench in (("boto3", bench_boto3), ("obstore", bench_obstore)):
        runs = [bench(endpoint, objects, arguments.threads, str(run)) for run in range(3)]
        results[name] = {step: rates(objects, min(run[step] for run in runs)) for step in ("put", "list", "get")}
    if arguments.replicate:
        runs = [bench_replicate(endpoint, objects, arguments.threads, str(run)) for run in range(3)]
        replicate = rates(objects, min(run["replicate"] for run in runs))
        plain = rates(objects, min(run["plain_put"] for run in runs))
        results["replication"] = {"replicate": replicate, "plain_put": plain,
                                  "ratio": plain["seconds"] / replicate["seconds"]}
    server.stop()

    for name, steps in results.items():
        for step, figures in steps.items():
            if isinstance(figures, dict):
                print(f"{name:12} {step:10} {figures['seconds']:8.3f} s {figures['objects_per_s']:9.0f} obj/s "
                      f"{figures['mb_per_s']:8.1f} MB/s")
            else:
                print(f"{name:12} {step:10} {figures:8.2f}")
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    output = Path(__file__).parent / "results" / f"remote-{stamp}.json"
    output.write_text(json.dumps({
        "objects": arguments.objects, "threads": arguments.threads, "python": platform.python_version(),
        "cpus": os.cpu_count(), "results": results,
    }, indent=2))
    print(f"written to {output}")


if __name__ == "__main__":
    main()
