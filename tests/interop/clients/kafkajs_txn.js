#!/usr/bin/env node
// kafkajs (2.x) transactions, driven by test_transactions.py:
//
//   node kafkajs_txn.js --bootstrap HOST:PORT --topic T --offsets-topic O --group G --txn-id ID
//                       --prefix P [--timeout S]
//
// One transactional producer (transactionalId ID, idempotent, one request in flight) runs three
// transactions on partition 0 of T, each with sendOffsets for group G on partition 0 of O:
//   1. P-c-0..P-c-9,   offset 10,  committed
//   2. P-a-0..P-a-9,   offset 999, aborted
//   3. P-c-10..P-c-19, offset 20,  committed
// then prints, one JSON line each:
//   {"step": "produced", "committed": [...], "aborted": [...]}
//   {"step": "offsets", "offsets": [{"partition": p, "offset": "n"}, ...]}   (admin.fetchOffsets of G on O)
//   {"step": "consumed", "values": [...]}
// the last from a kafkajs consumer of a fresh group (readUncommitted false, the default) that
// reads T from the beginning until it has 20 records and then 2 s more, so records it should not
// see have time to arrive. Exit 1 on any error or after --timeout seconds (default 60).
'use strict'

const fs = require('fs')
const path = require('path')
const { createRequire } = require('module')

const jsRequire = createRequire(path.join(__dirname, '..', 'js', 'package.json'))
process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1'
const { Kafka, logLevel } = jsRequire('kafkajs')

function out(obj) {
  fs.writeSync(1, JSON.stringify(obj) + '\n')
}

function fail(msg) {
  fs.writeSync(2, `error: ${msg}\n`)
  process.exit(1)
}

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`)
  if (i >= 0 && i + 1 < process.argv.length) return process.argv[i + 1]
  if (fallback === undefined) fail(`--${name} is required`)
  return fallback
}

const bootstrap = arg('bootstrap')
const topic = arg('topic')
const offsetsTopic = arg('offsets-topic')
const group = arg('group')
const txnId = arg('txn-id')
const prefix = arg('prefix')
const timeoutS = Number(arg('timeout', '60'))
const hardTimer = setTimeout(() => fail(`did not finish within ${timeoutS}s`), timeoutS * 1000)

const kafka = new Kafka({
  clientId: 'interop-kafkajs-txn',
  brokers: [bootstrap],
  logLevel: logLevel.NOTHING,
  connectionTimeout: 3000,
  requestTimeout: 10000,
  retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 3000 },
})

function values(kind, from, to) {
  const v = []
  for (let i = from; i < to; i++) v.push(`${prefix}-${kind}-${i}`)
  return v
}

async function transaction(producer, vals, offset, commit) {
  const txn = await producer.transaction()
  try {
    await txn.send({ topic, messages: vals.map((value) => ({ value, partition: 0 })) })
    await txn.sendOffsets({
      consumerGroupId: group,
      topics: [{ topic: offsetsTopic, partitions: [{ partition: 0, offset: String(offset) }] }],
    })
  } catch (e) {
    await txn.abort()
    throw e
  }
  if (commit) await txn.commit()
  else await txn.abort()
}

async function main() {
  const producer = kafka.producer({ transactionalId: txnId, idempotent: true, maxInFlightRequests: 1 })
  await producer.connect()
  const committed = values('c', 0, 10).concat(values('c', 10, 20))
  await transaction(producer, values('c', 0, 10), 10, true)
  await transaction(producer, values('a', 0, 10), 999, false)
  await transaction(producer, values('c', 10, 20), 20, true)
  await producer.disconnect()
  out({ step: 'produced', committed, aborted: values('a', 0, 10) })

  const admin = kafka.admin()
  await admin.connect()
  const fetched = await admin.fetchOffsets({ groupId: group, topics: [offsetsTopic] })
  await admin.disconnect()
  out({ step: 'offsets', offsets: fetched[0].partitions.map(({ partition, offset }) => ({ partition, offset })) })

  const consumer = kafka.consumer({
    groupId: `${group}-reader`,
    sessionTimeout: 10000,
    rebalanceTimeout: 10000,
    heartbeatInterval: 1000,
    maxWaitTimeInMs: 200,
  })
  const seen = []
  let finish
  const done = new Promise((resolve) => { finish = resolve })
  consumer.on(consumer.events.CRASH, (ev) => fail(`consumer crashed: ${ev.payload.error}`))
  await consumer.connect()
  await consumer.subscribe({ topics: [topic], fromBeginning: true })
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ message }) => {
      seen.push(message.value.toString())
      if (seen.length === committed.length) setTimeout(finish, 2000)
    },
  })
  await done
  await consumer.disconnect()
  out({ step: 'consumed', values: seen })
}

main()
  .then(() => {
    clearTimeout(hardTimer)
    process.exit(0)
  })
  .catch((e) => fail(`${e && e.name ? e.name + ': ' : ''}${e && e.message ? e.message : e}`))
