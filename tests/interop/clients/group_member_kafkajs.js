#!/usr/bin/env node
// One kafkajs consumer group member that processes then commits each record: the same output
// as group_member.py ({"p","o","v"} per record, {"assigned": [...]} per rebalance).
//
//   node group_member_kafkajs.js --bootstrap HOST:PORT --topic T --group G [--session-timeout-ms N]
'use strict'

const path = require('path')
const { createRequire } = require('module')

const jsRequire = createRequire(path.join(__dirname, '..', 'js', 'package.json'))
const { Kafka, logLevel } = jsRequire('kafkajs')

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? process.argv[i + 1] : fallback
}

async function main() {
  const topic = arg('topic')
  const kafka = new Kafka({ clientId: 'group-member', brokers: [arg('bootstrap')], logLevel: logLevel.NOTHING })
  const consumer = kafka.consumer({
    groupId: arg('group'),
    sessionTimeout: Number(arg('session-timeout-ms', '6000')),
    heartbeatInterval: 500,
  })
  consumer.on(consumer.events.GROUP_JOIN, (e) => {
    const assigned = (e.payload.memberAssignment[topic] || []).slice().sort((a, b) => a - b)
    process.stdout.write(JSON.stringify({ assigned }) + '\n')
  })
  const stop = async () => {
    await consumer.disconnect().catch(() => {})
    process.exit(0)
  }
  process.on('SIGTERM', stop)
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ partition, message }) => {
      process.stdout.write(JSON.stringify({ p: partition, o: Number(message.offset), v: message.value.toString() }) + '\n')
      const next = (BigInt(message.offset) + 1n).toString()
      await consumer.commitOffsets([{ topic, partition, offset: next }])
    },
  })
}

main().catch((e) => {
  process.stderr.write(`error: ${e}\n`)
  process.exit(1)
})
