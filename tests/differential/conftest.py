"""Fixtures of the differential and Kafka-tools tests: one Apache Kafka 4.4.0 and one Strata
broker per session (see brokers.py for the environment they read)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import brokers  # noqa: E402


def pytest_report_header(config):
    import confluent_kafka
    return (f"differential: Apache Kafka 4.4.0 from {brokers.KAFKA_DIST}; "
            f"confluent-kafka {confluent_kafka.version()} (librdkafka {confluent_kafka.libversion()[0]})")


@pytest.fixture(scope="session")
def kafka(tmp_path_factory):
    b = brokers.start_kafka(tmp_path_factory.mktemp("kafka"))
    try:
        brokers.wait_ready(b)
        yield b
    finally:
        b.stop()


@pytest.fixture(scope="session")
def strata(tmp_path_factory):
    b = brokers.start_strata(tmp_path_factory.mktemp("strata"))
    try:
        brokers.wait_ready(b)
        yield b
    finally:
        b.stop()
