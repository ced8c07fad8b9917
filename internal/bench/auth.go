package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/lambdad/lambdad/internal/iam"
	"github.com/lambdad/lambdad/internal/server"
	"github.com/lambdad/lambdad/internal/sigv4"
)

// The principal the authenticated server of an --auth run knows.
const (
	benchKey    = "AKIALAMBDADBENCH0001"
	benchSecret = "lambdad-bench-secret"
	benchCreds  = `{"accounts": [{"id": "123456789012"}],
 "principals": [{"accessKeyId": "` + benchKey + `", "secretAccessKey": "` + benchSecret + `", "account": "123456789012", "user": "bench",
   "policy": {"Version": "2012-10-17", "Statement": [
     {"Effect": "Deny", "Action": "lambda:DeleteFunctionConcurrency", "Resource": "arn:aws:lambda:*:*:function:prod-*"},
     {"Effect": "Allow", "Action": ["lambda:Get*", "lambda:List*"], "Resource": "*"},
     {"Effect": "Allow", "Action": ["lambda:InvokeFunction", "lambda:CreateFunction", "lambda:DeleteFunction"], "Resource": "arn:aws:lambda:*:123456789012:function:bench-*",
      "Condition": {"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}}]}}]}`
)

// signer signs every request of a client with the bench principal's key.
// A request the same as one signed less than a minute ago reuses its
// signature (the server accepts a signature for five minutes, as AWS
// does), so that the figures are the server's cost, not the client's.
type signer struct {
	base http.RoundTripper
	mu   *sync.Mutex // guards memo
	memo map[string]signed
}

type signed struct {
	at         time.Time
	date, auth string
}

func newSigner(base http.RoundTripper) signer {
	return signer{base: base, mu: new(sync.Mutex), memo: map[string]signed{}}
}

func (s signer) RoundTrip(r *http.Request) (*http.Response, error) {
	var body []byte
	if r.Body != nil {
		var err error
		if body, err = io.ReadAll(r.Body); err != nil {
			return nil, err
		}
		r.Body.Close()
	}
	r = r.Clone(r.Context())
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	key := r.Method + " " + r.URL.String() + "\n" + r.Header.Get("Content-Type") + "\n" + string(body)
	s.mu.Lock()
	m, ok := s.memo[key]
	s.mu.Unlock()
	if ok && time.Since(m.at) < time.Minute {
		r.Header.Set("X-Amz-Date", m.date)
		r.Header.Set("Authorization", m.auth)
		return s.base.RoundTrip(r)
	}
	sigv4.Sign(r, body, benchKey, benchSecret, "us-east-1", "lambda", time.Now())
	s.mu.Lock()
	s.memo[key] = signed{time.Now(), r.Header.Get("X-Amz-Date"), r.Header.Get("Authorization")}
	s.mu.Unlock()
	return s.base.RoundTrip(r)
}

// authRun compares warm invocations of two in-process servers in the same
// run, taking turns in rounds: one open, one with access control on. The
// requests to both are signed alike; the second checks every one:
// signature, key, clock, and a policy of three statements with a
// condition.
func authRun(ctx context.Context, o Options, code []byte) error {
	creds, err := iam.Parse("bench credentials", []byte(benchCreds))
	if err != nil {
		return err
	}
	type side struct {
		name   string
		client *http.Client
		url    string
	}
	var sides []side
	for _, withCreds := range []*iam.Credentials{nil, creds} {
		dir, err := os.MkdirTemp("", "lambdad-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		node, err := server.Start(server.Options{Listen: "127.0.0.1:0", DataDir: dir, Credentials: withCreds,
			AccountConcurrency: max(1000, o.Concurrency), Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			return err
		}
		defer node.Close(context.Background())
		// Both clients sign every request, as the SDKs do whatever the
		// endpoint: the open server accepts any signature without checking
		// it, so the difference is the server's checking alone.
		tr := &http.Transport{MaxIdleConnsPerHost: o.Concurrency + 8}
		s := side{name: "open", client: &http.Client{Transport: newSigner(tr)}}
		if withCreds != nil {
			s.name = "authenticated"
		}
		name := fmt.Sprintf("bench-%d", time.Now().UnixNano())
		if err := createFunction(ctx, s.client, node.URL(), name, code, 3); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		s.url = node.URL() + "/2015-03-31/functions/" + name + "/invocations"
		warm := o
		warm.Count, warm.Duration = o.Concurrency, 0
		drive(ctx, s.client, s.url, warm, "warm-up")
		sides = append(sides, s)
	}
	fmt.Fprintf(o.Out, "lambdad bench --auth: %d invokers, %s, open and authenticated servers taking turns\n", o.Concurrency, bound(o))
	rounds := max(1, o.Rounds)
	part := o
	part.Count, part.Duration = o.Count/rounds, o.Duration/time.Duration(rounds)
	open, auth := &Result{Name: "open"}, &Result{Name: "authenticated"}
	for range rounds {
		open.add(drive(ctx, sides[0].client, sides[0].url, part, "open"))
		auth.add(drive(ctx, sides[1].client, sides[1].url, part, "authenticated"))
	}
	open.finish()
	auth.finish()
	open.print(o.Out)
	auth.print(o.Out)
	fmt.Fprintf(o.Out, "ratio      p50=%.2fx p90=%.2fx p99=%.2fx throughput=%.2fx (authenticated / open, %d interleaved rounds)\n",
		ratio(auth.Percentile(50), open.Percentile(50)), ratio(auth.Percentile(90), open.Percentile(90)),
		ratio(auth.Percentile(99), open.Percentile(99)), auth.Throughput()/max(open.Throughput(), 1e-9), rounds)
	return nil
}
