// Security-matrix client (kafkajs): produce --count records to --topic over the listener the
// JSON config on argv[2] describes, then read them back in a consumer group. Prints
// {"produced": n, "consumed": n} and exits 0, or {"stage": ..., "error": ...} and exits 1.
// Config keys: bootstrap, protocol (SSL | SASL_SSL), mechanism (PLAIN | SCRAM-SHA-256 |
// SCRAM-SHA-512), username, password, ca, cert, key (PEM paths), topic, group, count, prefix,
// timeout (seconds).
const fs = require('fs')
const path = require('path')
const { createRequire } = require('module')

const jsRequire = createRequire(path.join(__dirname, '..', '..', 'js', 'package.json'))
const { Kafka, logLevel } = jsRequire('kafkajs')

const cfg = JSON.parse(process.argv[2])
let stage = 'connect'

function finish(obj, code) {
  fs.writeSync(1, JSON.stringify(obj) + '\n')
  process.exit(code)
}

setTimeout(() => finish({ stage, error: `timed out after ${cfg.timeout}s` }, 1), cfg.timeout * 1000).unref()

async function main() {
  const ssl = { ca: [fs.readFileSync(cfg.ca)] }
  if (cfg.cert) {
    ssl.cert = fs.readFileSync(cfg.cert)
    ssl.key = fs.readFileSync(cfg.key)
  }
  const opts = {
    clientId: 'secmatrix-kafkajs',
    brokers: [cfg.bootstrap],
    ssl,
    logLevel: logLevel.NOTHING,
    retry: { retries: 2 },
    connectionTimeout: 5000,
  }
  if (cfg.protocol === 'SASL_SSL') {
    opts.sasl = { mechanism: cfg.mechanism.toLowerCase(), username: cfg.username, password: cfg.password }
  }
  const kafka = new Kafka(opts)
  stage = 'produce'
  const producer = kafka.producer()
  await producer.connect()
  const messages = []
  for (let i = 0; i < cfg.count; i++) messages.push({ key: `${cfg.prefix}-key-${i}`, value: `${cfg.prefix}-value-${i}` })
  await producer.send({ topic: cfg.topic, messages })
  await producer.disconnect()
  stage = 'consume'
  const consumer = kafka.consumer({ groupId: cfg.group, retry: { retries: 0 } })
  const seen = new Set()
  let failure = null
  consumer.on(consumer.events.CRASH, (e) => { failure = e.payload.error })
  await consumer.connect()
  await consumer.subscribe({ topic: cfg.topic, fromBeginning: true })
  await consumer.run({
    eachMessage: async ({ message }) => { seen.add(message.value.toString()) },
  })
  while (seen.size < cfg.count && failure === null) await new Promise((r) => setTimeout(r, 100))
  if (failure !== null) throw failure
  await consumer.disconnect()
  finish({ produced: cfg.count, consumed: seen.size }, 0)
}

main().catch((e) => finish({ stage, error: `${e.name}: ${e.type || ''} ${e.message}` }, 1))
