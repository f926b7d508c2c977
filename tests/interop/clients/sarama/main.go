// Command sarama-client is the sarama (Go; Debian's golang-github-shopify-sarama-dev 1.22.1)
// interop client. Same interface and record recipe as tests/interop/clients/common.py:
//
//	sarama-client produce --bootstrap HOST:PORT --topic T --codec C --count N --prefix P [--timeout S]
//	sarama-client consume --bootstrap HOST:PORT --topic T --count N --timeout S
//
// It is built offline against Debian's packaged Go sources (GO111MODULE=off,
// GOPATH=/usr/share/gocode); tests/install-deps.sh does that. This sarama speaks Produce v3 and
// Fetch v4 at most, so it cannot use zstd against a broker that behaves like Kafka (zstd needs
// Produce v7 and Fetch v10, KIP-110).
package main

import (
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io/ioutil"
	"log"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/Shopify/sarama"
)

const baseTimestampMs = int64(1700000000000)

var valueSuffix = append([]byte("|\u00e9\u2713\u20ac|"), 0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff)
var h2Value = []byte{0x00, 0x01}

var codecs = map[string]sarama.CompressionCodec{
	"none":   sarama.CompressionNone,
	"gzip":   sarama.CompressionGZIP,
	"snappy": sarama.CompressionSnappy,
	"lz4":    sarama.CompressionLZ4,
	"zstd":   sarama.CompressionZSTD,
}

func fail(code int, format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "error: "+format+"\n", a...)
	os.Exit(code)
}

const usage = `usage: sarama-client produce --bootstrap HOST:PORT --topic T --codec {none,gzip,snappy,lz4,zstd} --count N --prefix P [--timeout S]
       sarama-client consume --bootstrap HOST:PORT --topic T --count N --timeout S

Kafka interop client (sarama): produce a known batch or dump a topic as JSON lines.
`

type options struct {
	bootstrap, topic, codec, prefix string
	count                           int
	timeout                         float64
}

func parse(args []string) (string, options) {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Print(usage)
		os.Exit(0)
	}
	cmd := args[0]
	if cmd != "produce" && cmd != "consume" {
		fmt.Fprintf(os.Stderr, "error: unknown command %q\n%s", cmd, usage)
		os.Exit(2)
	}
	var o options
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	fs.StringVar(&o.bootstrap, "bootstrap", "", "HOST:PORT")
	fs.StringVar(&o.topic, "topic", "", "topic")
	fs.IntVar(&o.count, "count", -1, "number of records")
	if cmd == "produce" {
		fs.StringVar(&o.codec, "codec", "none", "none|gzip|snappy|lz4|zstd")
		fs.StringVar(&o.prefix, "prefix", "", "record prefix")
		fs.Float64Var(&o.timeout, "timeout", 30, "seconds")
	} else {
		fs.Float64Var(&o.timeout, "timeout", 0, "seconds")
	}
	if err := fs.Parse(args[1:]); err != nil {
		if err == flag.ErrHelp {
			os.Exit(0)
		}
		os.Exit(2)
	}
	if fs.NArg() > 0 {
		fail(2, "unexpected argument %q", fs.Arg(0))
	}
	if o.bootstrap == "" || o.topic == "" || o.count < 0 || o.timeout <= 0 || (cmd == "produce" && o.prefix == "") {
		fail(2, "missing or invalid option\n%s", usage)
	}
	if _, ok := codecs[o.codec]; cmd == "produce" && !ok {
		fail(2, "--codec must be one of none, gzip, snappy, lz4, zstd")
	}
	return cmd, o
}

func config(o options) *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.ClientID = "interop-sarama"
	cfg.Version = sarama.V2_1_0_0 // record batches and headers (needs >= 0.11)
	d := time.Duration(o.timeout * float64(time.Second))
	if d > 10*time.Second {
		d = 10 * time.Second
	}
	cfg.Net.DialTimeout = d
	cfg.Net.ReadTimeout = d
	cfg.Net.WriteTimeout = d
	cfg.Metadata.Retry.Max = 3
	cfg.Metadata.Retry.Backoff = 250 * time.Millisecond
	return cfg
}

func produce(o options) {
	cfg := config(o)
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Return.Successes = true
	cfg.Producer.Return.Errors = true
	cfg.Producer.Compression = codecs[o.codec]
	cfg.Producer.Flush.Frequency = 5 * time.Millisecond
	cfg.Producer.Timeout = 10 * time.Second
	cfg.Producer.Retry.Max = 3
	cfg.Producer.Retry.Backoff = 250 * time.Millisecond

	p, err := sarama.NewSyncProducer([]string{o.bootstrap}, cfg)
	if err != nil {
		fail(1, "cannot start producer against %s: %v", o.bootstrap, err)
	}
	msgs := make([]*sarama.ProducerMessage, o.count)
	for i := 0; i < o.count; i++ {
		msgs[i] = &sarama.ProducerMessage{
			Topic: o.topic,
			Key:   sarama.ByteEncoder(fmt.Sprintf("%s-key-%d", o.prefix, i)),
			Value: sarama.ByteEncoder(append([]byte(fmt.Sprintf("%s-value-%d", o.prefix, i)), valueSuffix...)),
			Headers: []sarama.RecordHeader{
				{Key: []byte("h1"), Value: []byte(fmt.Sprintf("%s-%d", o.prefix, i))},
				{Key: []byte("h2"), Value: h2Value},
			},
			Timestamp: time.Unix(0, (baseTimestampMs+int64(i))*int64(time.Millisecond)),
		}
	}
	done := make(chan error, 1)
	go func() { done <- p.SendMessages(msgs) }()
	select {
	case err = <-done:
	case <-time.After(time.Duration((o.timeout + 5) * float64(time.Second))):
		fail(1, "produce did not finish within %.0fs", o.timeout+5)
	}
	if err != nil {
		if perrs, ok := err.(sarama.ProducerErrors); ok {
			var parts []string
			for i, pe := range perrs {
				if i == 5 {
					parts = append(parts, fmt.Sprintf("+%d more", len(perrs)-5))
					break
				}
				parts = append(parts, pe.Error())
			}
			fail(1, "%d/%d records failed: %s", len(perrs), o.count, strings.Join(parts, "; "))
		}
		fail(1, "produce failed: %v", err)
	}
	if err := p.Close(); err != nil {
		fail(1, "closing producer: %v", err)
	}
	fmt.Printf("produced %d records to %s codec=%s\n", o.count, o.topic, o.codec)
}

type record struct {
	Partition int32       `json:"partition"`
	Offset    int64       `json:"offset"`
	Key       *string     `json:"key"`
	Value     *string     `json:"value"`
	Headers   [][]*string `json:"headers"`
	Timestamp int64       `json:"timestamp"`
}

func hexp(b []byte) *string {
	if b == nil {
		return nil
	}
	s := hex.EncodeToString(b)
	return &s
}

func consume(o options) {
	deadline := time.Now().Add(time.Duration(o.timeout * float64(time.Second)))
	timer := time.AfterFunc(time.Until(deadline), func() {
		fail(1, "timed out after %gs before %d records", o.timeout, o.count)
	})
	defer timer.Stop()
	if o.count == 0 {
		return
	}
	cfg := config(o)
	cfg.Consumer.Return.Errors = true
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.MaxWaitTime = 500 * time.Millisecond

	client, err := sarama.NewClient([]string{o.bootstrap}, cfg)
	if err != nil {
		fail(1, "cannot connect to %s: %v", o.bootstrap, err)
	}
	var partitions []int32
	for {
		partitions, err = client.Partitions(o.topic)
		if err == nil && len(partitions) > 0 {
			break
		}
		if time.Now().After(deadline) {
			fail(1, "timed out waiting for partitions of %s: %v", o.topic, err)
		}
		time.Sleep(200 * time.Millisecond)
		_ = client.RefreshMetadata(o.topic)
	}
	sort.Slice(partitions, func(i, j int) bool { return partitions[i] < partitions[j] })
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		fail(1, "cannot create consumer: %v", err)
	}
	records := make(chan *sarama.ConsumerMessage, 256)
	errs := make(chan error, 16)
	var wg sync.WaitGroup
	for _, p := range partitions {
		pc, err := consumer.ConsumePartition(o.topic, p, sarama.OffsetOldest)
		if err != nil {
			fail(1, "cannot consume partition %d: %v", p, err)
		}
		wg.Add(2)
		go func(pc sarama.PartitionConsumer) {
			defer wg.Done()
			for m := range pc.Messages() {
				records <- m
			}
		}(pc)
		go func(pc sarama.PartitionConsumer) {
			defer wg.Done()
			for e := range pc.Errors() {
				errs <- e
			}
		}(pc)
	}
	enc := json.NewEncoder(os.Stdout)
	for got := 0; got < o.count; {
		select {
		case m := <-records:
			r := record{Partition: m.Partition, Offset: m.Offset, Key: hexp(m.Key), Value: hexp(m.Value),
				Headers: [][]*string{}, Timestamp: m.Timestamp.UnixNano() / int64(time.Millisecond)}
			for _, h := range m.Headers {
				name := string(h.Key)
				r.Headers = append(r.Headers, []*string{&name, hexp(h.Value)})
			}
			if err := enc.Encode(r); err != nil {
				fail(1, "stdout: %v", err)
			}
			got++
		case e := <-errs:
			fail(1, "consume error: %v", e)
		}
	}
	timer.Stop()
	// Everything is printed; closing is best effort but bounded.
	closed := make(chan struct{})
	go func() { consumer.Close(); client.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
	}
}

func main() {
	// sarama logs to ioutil.Discard by default; keep it that way unless asked.
	if os.Getenv("SARAMA_DEBUG") != "" {
		sarama.Logger = log.New(os.Stderr, "[sarama] ", log.LstdFlags)
	} else {
		sarama.Logger = log.New(ioutil.Discard, "", 0)
	}
	cmd, o := parse(os.Args[1:])
	if cmd == "produce" {
		produce(o)
	} else {
		consume(o)
	}
}
