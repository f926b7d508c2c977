#!/usr/bin/env node
// kafkajs (2.x, pure JavaScript) interop client. Same interface and record recipe as common.py:
//
//   node kafkajs_client.js produce --bootstrap HOST:PORT --topic T --codec C --count N --prefix P [--timeout S]
//   node kafkajs_client.js consume --bootstrap HOST:PORT --topic T --count N --timeout S
//
// Packages come from tests/interop/js/node_modules (tests/install-deps.sh installs them).
// kafkajs has gzip built in; snappy, lz4 and zstd come from kafkajs-snappy, kafkajs-lz4 and
// @kafkajs/zstd, registered below. kafkajs has no assign(): consume joins a fresh consumer group
// (unique group id, fromBeginning) and so also exercises the group coordinator.
'use strict'

const fs = require('fs')
const path = require('path')
const { createRequire } = require('module')

const jsRequire = createRequire(path.join(__dirname, '..', 'js', 'package.json'))

const CODECS = ['none', 'gzip', 'snappy', 'lz4', 'zstd']
const BASE_TIMESTAMP_MS = 1700000000000n
const VALUE_SUFFIX = Buffer.concat([
  Buffer.from('|\u00e9\u2713\u20ac|', 'utf8'),
  Buffer.from([0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff]),
])
const H2_VALUE = Buffer.from([0x00, 0x01])

function out(line) {
  fs.writeSync(1, line + '\n')
}

function fail(msg, code = 1) {
  fs.writeSync(2, `error: ${msg}\n`)
  process.exit(code)
}

const USAGE = `usage: kafkajs_client.js produce --bootstrap HOST:PORT --topic T --codec {${CODECS.join(',')}} --count N --prefix P [--timeout S]
       kafkajs_client.js consume --bootstrap HOST:PORT --topic T --count N --timeout S

Kafka interop client (kafkajs): produce a known batch or dump a topic as JSON lines.`

function parseArgs(argv) {
  if (argv.length === 0 || argv[0] === '-h' || argv[0] === '--help') {
    process.stdout.write(USAGE + '\n')
    process.exit(argv.length === 0 ? 2 : 0)
  }
  const command = argv[0]
  if (command !== 'produce' && command !== 'consume') fail(`unknown command ${command}\n${USAGE}`, 2)
  const allowed = command === 'produce'
    ? ['bootstrap', 'topic', 'codec', 'count', 'prefix', 'timeout']
    : ['bootstrap', 'topic', 'count', 'timeout']
  const args = { command, codec: 'none', timeout: command === 'produce' ? 30 : undefined }
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i]
    if (a === '-h' || a === '--help') {
      process.stdout.write(USAGE + '\n')
      process.exit(0)
    }
    if (!a.startsWith('--')) fail(`unexpected argument ${a}\n${USAGE}`, 2)
    let name = a.slice(2)
    let value
    const eq = name.indexOf('=')
    if (eq >= 0) {
      value = name.slice(eq + 1)
      name = name.slice(0, eq)
    } else {
      value = argv[++i]
    }
    if (!allowed.includes(name)) fail(`unknown option --${name} for ${command}\n${USAGE}`, 2)
    if (value === undefined) fail(`--${name} needs a value`, 2)
    args[name] = value
  }
  const required = command === 'produce'
    ? ['bootstrap', 'topic', 'count', 'prefix']
    : ['bootstrap', 'topic', 'count', 'timeout']
  for (const r of required) if (args[r] === undefined) fail(`--${r} is required\n${USAGE}`, 2)
  if (!CODECS.includes(args.codec)) fail(`--codec must be one of ${CODECS.join(', ')}`, 2)
  args.count = Number(args.count)
  args.timeout = Number(args.timeout)
  if (!Number.isInteger(args.count) || args.count < 0) fail('--count must be an integer >= 0', 2)
  if (!(args.timeout > 0)) fail('--timeout must be > 0', 2)
  return args
}

const args = parseArgs(process.argv.slice(2))

// The default partitioner is Java-compatible murmur2; silence kafkajs's notice about it.
process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1'

let kafkajs
try {
  kafkajs = jsRequire('kafkajs')
} catch (e) {
  fail(`cannot load kafkajs from tests/interop/js/node_modules (run tests/install-deps.sh): ${e.message}`)
}
const { Kafka, CompressionTypes, CompressionCodecs, logLevel } = kafkajs

// Register the optional codecs; a codec that failed to load only fails the runs that need it.
const codecErrors = {}
function register(type, name, load) {
  try {
    CompressionCodecs[type] = load()
  } catch (e) {
    codecErrors[name] = e.message.split('\n')[0]
    CompressionCodecs[type] = () => {
      throw new Error(`${name} codec unavailable: ${codecErrors[name]}`)
    }
  }
}
register(CompressionTypes.Snappy, 'snappy', () => jsRequire('kafkajs-snappy'))
register(CompressionTypes.LZ4, 'lz4', () => {
  const LZ4Codec = jsRequire('kafkajs-lz4')
  return new LZ4Codec().codec
})
register(CompressionTypes.ZSTD, 'zstd', () => jsRequire('@kafkajs/zstd')())

const COMPRESSION = {
  none: CompressionTypes.None,
  gzip: CompressionTypes.GZIP,
  snappy: CompressionTypes.Snappy,
  lz4: CompressionTypes.LZ4,
  zstd: CompressionTypes.ZSTD,
}

// Overall bound: whatever kafkajs is retrying, the process ends.
const hardLimitS = args.timeout + 15
const hardTimer = setTimeout(() => fail(`${args.command} did not finish within ${hardLimitS}s`), hardLimitS * 1000)

const logErrors = []
function logCreator() {
  return ({ level, log }) => {
    const line = `${log.message}${log.error ? ': ' + log.error : ''}`
    if (level <= logLevel.ERROR && logErrors.length < 5 && !logErrors.includes(line)) logErrors.push(line)
  }
}

function makeKafka(clientId) {
  return new Kafka({
    clientId,
    brokers: [args.bootstrap],
    logLevel: logLevel.ERROR,
    logCreator,
    connectionTimeout: 3000,
    requestTimeout: Math.min(args.timeout, 10) * 1000,
    // kafkajs's retry count (5) with a shorter first backoff: about 3 s in all, which rides out a
    // coordinator that is still loading (COORDINATOR_NOT_AVAILABLE) without stretching a run
    // against a broker that lacks an API.
    retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 3000 },
  })
}

function describe(e) {
  const parts = [e && e.name ? `${e.name}: ${e.message}` : String(e)]
  if (e && e.type) parts.push(`type=${e.type}`)
  if (e && e.cause) parts.push(`cause=${e.cause.message || e.cause}`)
  return parts.join(' ')
}

async function produce() {
  if (codecErrors[args.codec]) fail(`${args.codec} codec unavailable: ${codecErrors[args.codec]}`)
  const kafka = makeKafka('interop-kafkajs-producer')
  const producer = kafka.producer({ allowAutoTopicCreation: true, idempotent: false })
  try {
    await producer.connect()
    const messages = []
    for (let i = 0; i < args.count; i++) {
      messages.push({
        key: Buffer.from(`${args.prefix}-key-${i}`),
        value: Buffer.concat([Buffer.from(`${args.prefix}-value-${i}`), VALUE_SUFFIX]),
        headers: { h1: Buffer.from(`${args.prefix}-${i}`), h2: H2_VALUE },
        timestamp: (BASE_TIMESTAMP_MS + BigInt(i)).toString(),
      })
    }
    const res = await producer.send({
      topic: args.topic,
      acks: -1,
      timeout: Math.min(args.timeout, 30) * 1000,
      compression: COMPRESSION[args.codec],
      messages,
    })
    for (const r of res) {
      if (r.errorCode !== 0) fail(`partition ${r.partition}: error code ${r.errorCode}`)
    }
  } catch (e) {
    fail(`produce failed: ${describe(e)}${logErrors.length ? ' | ' + logErrors.join(' | ') : ''}`)
  }
  try {
    await producer.disconnect()
  } catch (e) {
    // delivered already; a failed disconnect is not a produce failure
  }
  out(`produced ${args.count} records to ${args.topic} codec=${args.codec}`)
}

function hex(b) {
  return b === null || b === undefined ? null : Buffer.from(b).toString('hex')
}

async function consume() {
  const kafka = makeKafka('interop-kafkajs-consumer')
  const groupId = `interop-kafkajs-${process.pid}-${Date.now()}-${Math.random().toString(16).slice(2)}`
  const consumer = kafka.consumer({
    groupId,
    allowAutoTopicCreation: false,
    sessionTimeout: 10000,
    rebalanceTimeout: 10000,
    heartbeatInterval: 1000,
    maxWaitTimeInMs: 500,
  })
  let got = 0
  let finish
  const done = new Promise((resolve) => { finish = resolve })
  const timer = setTimeout(() => {
    fail(`timed out after ${args.timeout}s with ${got}/${args.count} records${logErrors.length ? ': ' + logErrors.join(' | ') : ''}`)
  }, args.timeout * 1000)
  consumer.on(consumer.events.CRASH, (ev) => {
    fail(`consumer crashed: ${describe(ev.payload.error)}`)
  })
  try {
    if (args.count === 0) {
      clearTimeout(timer)
      return
    }
    await consumer.connect()
    await consumer.subscribe({ topics: [args.topic], fromBeginning: true })
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        if (got >= args.count) return
        const headers = []
        for (const [name, v] of Object.entries(message.headers || {})) {
          for (const one of Array.isArray(v) ? v : [v]) headers.push([name, hex(one)])
        }
        out(JSON.stringify({
          partition,
          offset: Number(message.offset),
          key: hex(message.key),
          value: hex(message.value),
          headers,
          timestamp: Number(message.timestamp),
        }))
        got++
        if (got >= args.count) finish()
      },
    })
    await done
    clearTimeout(timer)
  } catch (e) {
    fail(`consume failed: ${describe(e)}${logErrors.length ? ' | ' + logErrors.join(' | ') : ''}`)
  }
  try {
    await consumer.disconnect()
  } catch (e) {
    // all records are out; leaving the group is best effort
  }
}

;(args.command === 'produce' ? produce() : consume())
  .then(() => {
    clearTimeout(hardTimer)
    process.exit(0)
  })
  .catch((e) => fail(describe(e)))
