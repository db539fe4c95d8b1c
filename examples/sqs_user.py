"""Load-test Amazon SQS (or any boto3 service): a non-HTTP user timed with ``self.measure()``.

Against a local moto server (``pip install 'moto[server]' boto3``)::

    python -m moto.server -H 127.0.0.1 -p 5000 &
    SQS_ENDPOINT=http://127.0.0.1:5000 loadgen run -f examples/sqs_user.py -u 20 -r 10 -t 1m

Against AWS: leave SQS_ENDPOINT unset and use your usual credentials and AWS_REGION.

What keeps it from ever hanging (docs/robustness.md):
* one boto3 client per user, made in ``on_start`` from its own ``boto3.session.Session`` (sessions are not
  safe to share between concurrent users);
* botocore ``Config`` with ``connect_timeout``/``read_timeout`` and one attempt: a dead endpoint is a
  recorded failure within seconds, not a retry loop;
* ``read_timeout`` longer than ``WaitTimeSeconds`` (a long poll is not a timeout) and ``measure(timeout=)``
  as the outer bound: whatever botocore does, the call becomes a failure, never a stuck user.
"""

from __future__ import annotations

import os
import uuid

import boto3
from botocore.config import Config

from loadgen import User, between, task

ENDPOINT = os.environ.get("SQS_ENDPOINT") or None  # None: the real AWS endpoint of AWS_REGION
REGION = os.environ.get("AWS_REGION", "us-east-1")
QUEUE = os.environ.get("SQS_QUEUE", "loadgen-example")
WAIT_SECONDS = int(os.environ.get("SQS_WAIT_SECONDS", "1"))  # long polling of receive_message

CONFIG = Config(
    connect_timeout=2,
    read_timeout=WAIT_SECONDS + 5,
    # one attempt in all, each measured: no hidden retries. (botocore's "max_attempts" counts the retries after
    # the first attempt in this dict, so {"max_attempts": 1} would make two attempts a call.)
    retries={"total_max_attempts": 1, "mode": "standard"},
    max_pool_connections=2,
)


class SqsUser(User):
    wait_time = between(0.05, 0.2)

    def on_start(self) -> None:
        credentials = {}
        if ENDPOINT and not os.environ.get("AWS_ACCESS_KEY_ID"):
            credentials = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        session = boto3.session.Session()
        self.sqs = session.client("sqs", region_name=REGION, endpoint_url=ENDPOINT, config=CONFIG, **credentials)
        self.queue_url: str | None = None
        self._queue()

    def _queue(self) -> str | None:
        if self.queue_url is None:
            with self.measure("sqs", "create_queue", timeout=10):
                self.queue_url = self.sqs.create_queue(QueueName=QUEUE)["QueueUrl"]
        return self.queue_url

    @task(2)
    def send(self) -> None:
        queue_url = self._queue()
        if queue_url is None:
            return
        with self.measure("sqs", "send", timeout=10):
            self.sqs.send_message(QueueUrl=queue_url, MessageBody=f"order {uuid.uuid4()}")

    @task(1)
    def receive(self) -> None:
        queue_url = self._queue()
        if queue_url is None:
            return
        messages: list[dict] = []
        with self.measure("sqs", "receive", timeout=WAIT_SECONDS + 10):
            response = self.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10,
                                                WaitTimeSeconds=WAIT_SECONDS)
            messages = response.get("Messages", [])
        if messages:
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
            with self.measure("sqs", "delete", timeout=10):
                self.sqs.delete_message_batch(QueueUrl=queue_url, Entries=entries)

    def on_stop(self) -> None:
        self.sqs.close()
