package lambdatest

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// RequireE2E skips the test because an outside program is missing, or
// fails it when LAMBDAD_REQUIRE_E2E=1 (as in CI), where a missing program
// is a broken machine, not a reason to skip.
func RequireE2E(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("LAMBDAD_REQUIRE_E2E") == "1" {
		t.Fatalf("%s (LAMBDAD_REQUIRE_E2E=1)", why)
	}
	t.Skip(why)
}

// Moto starts moto_server (a real SQS/S3/IAM-compatible server) on a free
// loopback port for the test, stops it at the end, and returns its
// endpoint. It also gives the test the static credentials moto accepts,
// so that lambdad's own AWS clients find some.
func Moto(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("moto_server")
	if err != nil {
		RequireE2E(t, "moto_server is not installed (pip install 'moto[server]')")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	cmd.Stdout, cmd.Stderr = t.Output(), t.Output()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	endpoint := "http://127.0.0.1:" + strconv.Itoa(port)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if r, err := http.Get(endpoint + "/moto-api/"); err == nil {
			r.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("moto_server did not start in 30 s")
		}
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	return endpoint
}

// SQS returns an SQS client for endpoint, with retries off.
func SQS(endpoint string) *sqs.Client {
	return sqs.NewFromConfig(aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
		Retryer:     func() aws.Retryer { return aws.NopRetryer{} },
	}, func(o *sqs.Options) { o.BaseEndpoint = aws.String(endpoint) })
}
