package cli

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/adapters/demo"
	"github.com/sio-pso/siobroker/client"
	"github.com/sio-pso/siobroker/config"
	"github.com/sio-pso/siobroker/internal/app"
	"github.com/sio-pso/siobroker/signing"
	"github.com/sio-pso/siobroker/signing/devpki"
)

// BenchmarkSendEndToEnd measures a whole signed request over real HTTP on the embedded default:
// the client signs, the broker verifies, authorises, checks the case, fans out, merges and signs,
// the client verifies. The machines are noisy, so besides ns/op it reports x-raw-crypto: the time
// of one request divided by the time of the four RSA operations it cannot avoid (two signatures,
// two verifications), measured in the same run.
func BenchmarkSendEndToEnd(b *testing.B) {
	for _, transport := range []string{"gochannel", "amqp"} {
		for _, services := range []int{1, 10} {
			b.Run(fmt.Sprintf("transport=%s/services=%d", transport, services), func(b *testing.B) {
				benchSend(b, transport, services)
			})
		}
	}
}

func benchSend(b *testing.B, transport string, services int) {
	ctx := context.Background()
	cfg := config.Defaults()
	cfg.Dev = true
	cfg.Listen, cfg.Operator.Listen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.DataDir = b.TempDir()
	cfg.Rights = filepath.Join("..", "..", "configs", "rights.yaml")
	cfg.Routing.RoutesFile = filepath.Join("..", "..", "configs", "routes.yaml")
	cfg.Maintenance = filepath.Join("..", "..", "configs", "maintenance.yaml")
	if transport == "amqp" {
		prefix := amqpPrefix(b)
		cfg.Transport = "amqp"
		cfg.AMQP.URL, cfg.AMQP.Prefix, cfg.AMQP.Instance = testAMQPURL, prefix, prefix+"broker"
		cfg.AMQP.ClassicQueues, cfg.AMQP.InProcessAdapters = true, true
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	br, err := app.Start(ctx, cfg, siobroker.SystemClock{}, logger)
	if err != nil {
		b.Fatal(err)
	}
	defer br.Close()

	m, err := devpki.LoadManifest(br.PKIDir())
	if err != nil {
		b.Fatal(err)
	}
	var user devpki.User
	var kase devpki.Case
	for _, u := range m.Users {
		for _, c := range u.Cases {
			if u.Role == 1 && u.KeyType == devpki.KeyRSA && c.Basis == 1 && user.IIN == "" {
				user, kase = u, c
			}
		}
	}
	if user.IIN == "" {
		b.Fatal("no RSA prosecutor with a criminal case in the development PKI")
	}
	signer, err := signing.LoadSigner(filepath.Join(br.PKIDir(), user.Cert), filepath.Join(br.PKIDir(), user.Key))
	if err != nil {
		b.Fatal(err)
	}
	trust, err := signing.LoadTrustStore(signing.TrustConfig{RootFiles: []string{filepath.Join(br.PKIDir(), m.CA)}})
	if err != nil {
		b.Fatal(err)
	}
	c := &client.Client{
		URL: br.BaseURL() + cfg.Endpoint, Signer: signer, Verifier: mustVerifier(b, signing.VerifierConfig{Trust: trust, AnySigner: true}),
		Placement: signing.PlacementWSSE, HTTP: client.DefaultHTTPClient(time.Minute),
		Clock: siobroker.SystemClock{}, SenderID: "BENCH", ServiceID: "SIO_PSO_QUERY",
	}
	q := siobroker.Query{
		Basis: siobroker.Basis(kase.Basis), Case: kase.Ref(), Purpose: "benchmark",
		Subject: siobroker.Subject{IIN: demo.Generate(cfg.Demo.Seed, cfg.Demo.People, cfg.Demo.Organisations).People()[0].IIN},
	}
	for n := 1; n <= services; n++ {
		q.Services = append(q.Services, n)
	}

	baseline := rawCryptoNanos(b)

	b.ResetTimer()
	for b.Loop() {
		if _, err := c.Send(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/baseline, "x-raw-crypto")
}

// rawCryptoNanos times the RSA work one request cannot avoid: two RSA-2048 signatures (the user's
// and the broker's) and their two verifications. The development keys are RSA-2048 as well.
func rawCryptoNanos(b *testing.B) float64 {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	digest := sha256.Sum256([]byte("SignedInfo"))
	const rounds = 50
	start := time.Now()
	for range rounds * 2 {
		sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
		if err != nil {
			b.Fatal(err)
		}
		if err := rsa.VerifyPKCS1v15(&key.PublicKey, crypto.SHA256, digest[:], sig); err != nil {
			b.Fatal(err)
		}
	}
	return float64(time.Since(start).Nanoseconds()) / rounds
}

// mustVerifier is signing.NewVerifier for a configuration the test knows to be valid.
func mustVerifier(t testing.TB, cfg signing.VerifierConfig) *signing.Verifier {
	t.Helper()
	v, err := signing.NewVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
