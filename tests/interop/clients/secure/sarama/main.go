// Security-matrix client (sarama 1.22.1): produce "count" records to "topic" over the
// listener the JSON config in os.Args[1] describes, then read every partition from the
// oldest offset. Prints {"produced": n, "consumed": n} and exits 0, or {"stage": ...,
// "error": ...} and exits 1. Config keys as in kafkajs_secure.js. sarama 1.22.1 ships no
// SCRAM client, so a minimal RFC 5802 one is below.
package main

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io/ioutil"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/Shopify/sarama"
)

type config struct {
	Bootstrap string  `json:"bootstrap"`
	Protocol  string  `json:"protocol"`
	Mechanism string  `json:"mechanism"`
	Username  string  `json:"username"`
	Password  string  `json:"password"`
	CA        string  `json:"ca"`
	Cert      string  `json:"cert"`
	Key       string  `json:"key"`
	Topic     string  `json:"topic"`
	Count     int     `json:"count"`
	Prefix    string  `json:"prefix"`
	Timeout   float64 `json:"timeout"`
}

func finish(v map[string]interface{}, code int) {
	b, _ := json.Marshal(v)
	fmt.Println(string(b))
	os.Exit(code)
}

func fail(stage string, err error) {
	finish(map[string]interface{}{"stage": stage, "error": err.Error()}, 1)
}

// scramClient is RFC 5802's client side: client-first, client-final, server-final check.
type scramClient struct {
	newHash               func() hash.Hash
	user, password, nonce string
	firstBare             string
	serverSignature       []byte
	step                  int
}

func (s *scramClient) Begin(user, password, _ string) error {
	raw := make([]byte, 18)
	if _, err := rand.Read(raw); err != nil {
		return err
	}
	s.user, s.password, s.nonce = user, password, base64.RawURLEncoding.EncodeToString(raw)
	return nil
}

func (s *scramClient) mac(key []byte, msg string) []byte {
	m := hmac.New(s.newHash, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

func (s *scramClient) Step(challenge string) (string, error) {
	s.step++
	switch s.step {
	case 1:
		name := strings.NewReplacer("=", "=3D", ",", "=2C").Replace(s.user)
		s.firstBare = "n=" + name + ",r=" + s.nonce
		return "n,," + s.firstBare, nil
	case 2:
		attrs := map[string]string{}
		for _, kv := range strings.Split(challenge, ",") {
			if len(kv) > 2 && kv[1] == '=' {
				attrs[kv[:1]] = kv[2:]
			}
		}
		nonce := attrs["r"]
		if !strings.HasPrefix(nonce, s.nonce) || len(nonce) == len(s.nonce) {
			return "", errors.New("server nonce does not extend the client nonce")
		}
		salt, err := base64.StdEncoding.DecodeString(attrs["s"])
		if err != nil {
			return "", err
		}
		iterations, err := strconv.Atoi(attrs["i"])
		if err != nil {
			return "", err
		}
		salted, err := pbkdf2.Key(s.newHash, s.password, salt, iterations, s.newHash().Size())
		if err != nil {
			return "", err
		}
		clientKey := s.mac(salted, "Client Key")
		h := s.newHash()
		h.Write(clientKey)
		storedKey := h.Sum(nil)
		withoutProof := "c=biws,r=" + nonce
		authMessage := s.firstBare + "," + challenge + "," + withoutProof
		signature := s.mac(storedKey, authMessage)
		proof := make([]byte, len(clientKey))
		for i := range clientKey {
			proof[i] = clientKey[i] ^ signature[i]
		}
		s.serverSignature = s.mac(s.mac(salted, "Server Key"), authMessage)
		return withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof), nil
	default:
		if strings.HasPrefix(challenge, "e=") {
			return "", errors.New("server error: " + challenge[2:])
		}
		if challenge != "v="+base64.StdEncoding.EncodeToString(s.serverSignature) {
			return "", errors.New("server signature mismatch")
		}
		return "", nil
	}
}

func (s *scramClient) Done() bool { return s.step >= 3 }

func main() {
	var cfg config
	if len(os.Args) != 2 || json.Unmarshal([]byte(os.Args[1]), &cfg) != nil {
		fmt.Fprintln(os.Stderr, "usage: sarama-secure '<json config>'")
		os.Exit(2)
	}
	go func() {
		time.Sleep(time.Duration(cfg.Timeout * float64(time.Second)))
		fail("timeout", fmt.Errorf("timed out after %vs", cfg.Timeout))
	}()
	sc := sarama.NewConfig()
	sc.Version = sarama.V2_1_0_0
	sc.ClientID = "secmatrix-sarama"
	sc.Metadata.Retry.Max = 2
	sc.Producer.Return.Successes = true
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Retry.Max = 1
	sc.Consumer.Return.Errors = true
	pool := x509.NewCertPool()
	caPEM, err := ioutil.ReadFile(cfg.CA)
	if err != nil || !pool.AppendCertsFromPEM(caPEM) {
		fail("config", fmt.Errorf("cannot read CA %s: %v", cfg.CA, err))
	}
	tc := &tls.Config{RootCAs: pool}
	if cfg.Cert != "" {
		pair, err := tls.LoadX509KeyPair(cfg.Cert, cfg.Key)
		if err != nil {
			fail("config", err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	sc.Net.TLS.Enable = true
	sc.Net.TLS.Config = tc
	if cfg.Protocol == "SASL_SSL" {
		sc.Net.SASL.Enable = true
		sc.Net.SASL.Handshake = true
		sc.Net.SASL.User = cfg.Username
		sc.Net.SASL.Password = cfg.Password
		sc.Net.SASL.Mechanism = sarama.SASLMechanism(cfg.Mechanism)
		switch cfg.Mechanism {
		case "SCRAM-SHA-256":
			sc.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{newHash: sha256.New} }
		case "SCRAM-SHA-512":
			sc.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{newHash: sha512.New} }
		}
	}
	client, err := sarama.NewClient([]string{cfg.Bootstrap}, sc)
	if err != nil {
		fail("connect", err)
	}
	producer, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		fail("produce", err)
	}
	msgs := make([]*sarama.ProducerMessage, cfg.Count)
	for i := range msgs {
		msgs[i] = &sarama.ProducerMessage{Topic: cfg.Topic,
			Key:   sarama.StringEncoder(fmt.Sprintf("%s-key-%d", cfg.Prefix, i)),
			Value: sarama.StringEncoder(fmt.Sprintf("%s-value-%d", cfg.Prefix, i))}
	}
	if err := producer.SendMessages(msgs); err != nil {
		if errs, ok := err.(sarama.ProducerErrors); ok && len(errs) > 0 {
			err = errs[0].Err
		}
		fail("produce", err)
	}
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		fail("consume", err)
	}
	partitions, err := consumer.Partitions(cfg.Topic)
	if err != nil {
		fail("consume", err)
	}
	got := make(chan string)
	errs := make(chan error)
	for _, p := range partitions {
		pc, err := consumer.ConsumePartition(cfg.Topic, p, sarama.OffsetOldest)
		if err != nil {
			fail("consume", err)
		}
		go func() {
			for m := range pc.Messages() {
				got <- string(m.Value)
			}
		}()
		go func() {
			for e := range pc.Errors() {
				errs <- e.Err
			}
		}()
	}
	seen := map[string]bool{}
	for len(seen) < cfg.Count {
		select {
		case v := <-got:
			seen[v] = true
		case e := <-errs:
			fail("consume", e)
		}
	}
	finish(map[string]interface{}{"produced": cfg.Count, "consumed": len(seen)}, 0)
}
