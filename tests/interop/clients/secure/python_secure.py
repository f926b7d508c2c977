"""Security-matrix client for the Python libraries: `python_secure.py LIB '<json config>'` with
LIB confluent-kafka, kafka-python or aiokafka. Produces `count` records to `topic` over the
listener the config describes, then reads them back in consumer group `group`. Prints
{"produced": n, "consumed": n} and exits 0, or {"stage": ..., "error": ...} and exits 1.
Config keys as in kafkajs_secure.js."""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time

stage = "connect"


def finish(obj: dict, code: int) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()
    os._exit(code)


def confluent(cfg: dict) -> None:
    global stage
    from confluent_kafka import Consumer, KafkaException, Producer

    conf = {"bootstrap.servers": cfg["bootstrap"], "security.protocol": cfg["protocol"],
            "ssl.ca.location": cfg["ca"], "log_level": 0}
    if cfg.get("cert"):
        conf.update({"ssl.certificate.location": cfg["cert"], "ssl.key.location": cfg["key"]})
    if cfg["protocol"] == "SASL_SSL":
        conf.update({"sasl.mechanism": cfg["mechanism"], "sasl.username": cfg["username"],
                     "sasl.password": cfg["password"]})
    errors: list[str] = []

    def on_error(err):
        errors.append(f"{err.name()}: {err.str()}")
        if err.code() in (-169,) or "AUTHENTICATION" in err.name():  # _AUTHENTICATION
            finish({"stage": stage, "error": errors[-1]}, 1)

    stage = "produce"
    producer = Producer({**conf, "error_cb": on_error, "message.timeout.ms": 15000})
    failures: list[str] = []
    for i in range(cfg["count"]):
        producer.produce(cfg["topic"], key=f"{cfg['prefix']}-key-{i}", value=f"{cfg['prefix']}-value-{i}",
                         on_delivery=lambda err, _m: err and failures.append(f"{err.name()}: {err.str()}"))
    left = producer.flush(20)
    if failures or left:
        finish({"stage": stage, "error": "; ".join(failures + errors) or f"{left} undelivered"}, 1)
    stage = "consume"
    consumer = Consumer({**conf, "error_cb": on_error, "group.id": cfg["group"],
                         "auto.offset.reset": "earliest"})
    consumer.subscribe([cfg["topic"]])
    seen: set[bytes] = set()
    while len(seen) < cfg["count"]:
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        if msg.error():
            if msg.error().code() == -191:  # _PARTITION_EOF
                continue
            finish({"stage": stage, "error": f"{msg.error().name()}: {msg.error().str()}"}, 1)
        seen.add(msg.value())
    finish({"produced": cfg["count"], "consumed": len(seen)}, 0)


class _Recent(logging.Handler):
    """kafka-python and aiokafka log why a connection failed (they raise only "Unable to
    bootstrap"); the last messages go into the error line."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        self.messages = (self.messages + [message])[-12:]
        # kafka-python retries a refused login until its bootstrap times out; the first
        # refusal is the answer. (aiokafka: "Unable connect to ...: [Error 58]
        # SaslAuthenticationFailed: ...")
        if "AuthenticationFailedError" in message or "SaslAuthenticationFailed" in message:
            finish({"stage": stage, "error": message}, 1)


RECENT = _Recent()


def kafka_python(cfg: dict) -> None:
    global stage
    from kafka import KafkaConsumer, KafkaProducer

    logging.getLogger("kafka").addHandler(RECENT)
    logging.getLogger("kafka").setLevel(logging.WARNING)

    conf = {"bootstrap_servers": cfg["bootstrap"], "security_protocol": cfg["protocol"],
            "ssl_cafile": cfg["ca"]}
    if cfg.get("cert"):
        conf.update({"ssl_certfile": cfg["cert"], "ssl_keyfile": cfg["key"]})
    if cfg["protocol"] == "SASL_SSL":
        conf.update({"sasl_mechanism": cfg["mechanism"], "sasl_plain_username": cfg["username"],
                     "sasl_plain_password": cfg["password"]})
    stage = "produce"
    producer = KafkaProducer(**conf, request_timeout_ms=10000, max_block_ms=15000)
    futures = [producer.send(cfg["topic"], key=f"{cfg['prefix']}-key-{i}".encode(),
                             value=f"{cfg['prefix']}-value-{i}".encode()) for i in range(cfg["count"])]
    for f in futures:
        f.get(timeout=15)
    producer.close(timeout=5)
    stage = "consume"
    consumer = KafkaConsumer(cfg["topic"], **conf, group_id=cfg["group"], auto_offset_reset="earliest")
    seen: set[bytes] = set()
    while len(seen) < cfg["count"]:
        for records in consumer.poll(timeout_ms=500).values():
            seen.update(r.value for r in records)
    finish({"produced": cfg["count"], "consumed": len(seen)}, 0)


def aiokafka(cfg: dict) -> None:
    import asyncio

    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.helpers import create_ssl_context

    logging.getLogger("aiokafka").addHandler(RECENT)
    logging.getLogger("aiokafka").setLevel(logging.WARNING)

    async def run() -> None:
        global stage
        conf = {"bootstrap_servers": cfg["bootstrap"], "security_protocol": cfg["protocol"],
                "ssl_context": create_ssl_context(cafile=cfg["ca"], certfile=cfg.get("cert"),
                                                  keyfile=cfg.get("key")),
                "request_timeout_ms": 10000}
        if cfg["protocol"] == "SASL_SSL":
            conf.update({"sasl_mechanism": cfg["mechanism"], "sasl_plain_username": cfg["username"],
                         "sasl_plain_password": cfg["password"]})
        stage = "produce"
        producer = AIOKafkaProducer(**conf, acks="all")
        await producer.start()
        try:
            for i in range(cfg["count"]):
                await producer.send_and_wait(cfg["topic"], key=f"{cfg['prefix']}-key-{i}".encode(),
                                             value=f"{cfg['prefix']}-value-{i}".encode())
        finally:
            await producer.stop()
        stage = "consume"
        consumer = AIOKafkaConsumer(cfg["topic"], **conf, group_id=cfg["group"], auto_offset_reset="earliest")
        await consumer.start()
        seen: set[bytes] = set()
        try:
            while len(seen) < cfg["count"]:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    seen.update(r.value for r in records)
        finally:
            await consumer.stop()
        finish({"produced": cfg["count"], "consumed": len(seen)}, 0)

    asyncio.run(run())


def main() -> None:
    lib, cfg = sys.argv[1], json.loads(sys.argv[2])
    timer = threading.Timer(cfg["timeout"], lambda: finish(
        {"stage": stage, "error": "timed out; " + " | ".join(RECENT.messages)}, 1))
    timer.daemon = True
    timer.start()
    try:
        {"confluent-kafka": confluent, "kafka-python": kafka_python, "aiokafka": aiokafka}[lib](cfg)
    except Exception as e:  # noqa: BLE001
        finish({"stage": stage, "error": f"{type(e).__name__}: {e}; " + " | ".join(RECENT.messages)}, 1)


if __name__ == "__main__":
    main()
