#!/usr/bin/env bash
# The whole test suite: installs what the tests need, builds the release binary the black-box
# tests run, then runs unit, property and integration tests, the cross-client interop suite, and
# the differential tests against Apache Kafka with Kafka's own command-line tools.
set -euo pipefail
cd "$(dirname "$0")/.."

started=$(date +%s)
step() { echo; echo "=== $* ($(( $(date +%s) - started ))s)"; }

step "installing test dependencies"
bash tests/install-deps.sh

step "building target/release/strata"
cargo build --release --locked -p strata
export STRATA_BIN="$PWD/target/release/strata"

step "cargo test (unit, property and black-box tests)"
cargo test --workspace --locked -- --test-threads=2

step "cross-client interop (kcat, confluent-kafka, kafka-python, aiokafka, kafkajs, sarama)"
bash tests/interop/run.sh -q -p no:cacheprovider

step "deploy/ files: validators, and their topologies run on loopback"
tests/interop/.venv/bin/python -m pytest tests/deploy -q -p no:cacheprovider

step "differential (Strata against Apache Kafka 4.4.0) and Kafka's own tools against Strata"
bash tests/differential/run.sh -q -p no:cacheprovider

step "all tests passed"
