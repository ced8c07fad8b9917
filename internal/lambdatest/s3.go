package lambdatest

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// S3Server is an S3-compatible server on the loopback address for a test:
// moto_server, started on a free port and stopped when the test ends.
type S3Server struct {
	// Endpoint is its URL, http://127.0.0.1:PORT.
	Endpoint string
}

// StartS3 starts moto_server for t, or skips t when it is not installed
// (fails it when LAMBDAD_REQUIRE_E2E is set).
func StartS3(t testing.TB) *S3Server {
	t.Helper()
	bin, err := exec.LookPath("moto_server")
	if err != nil {
		if os.Getenv("LAMBDAD_REQUIRE_E2E") != "" {
			t.Fatalf("moto_server is not installed and LAMBDAD_REQUIRE_E2E is set")
		}
		t.Skipf("moto_server is not installed; skipping (pip install 'moto[server]', or set LAMBDAD_REQUIRE_E2E=1 to make this a failure)")
	}
	// A port another process takes between the probe and moto's bind
	// makes moto exit: try again on another.
	for attempt := 0; ; attempt++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Stdout, cmd.Stderr = t.Output(), t.Output()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		stop := func() {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		s := &S3Server{Endpoint: "http://127.0.0.1:" + strconv.Itoa(port)}
		if s.ready(exited) {
			t.Cleanup(stop)
			return s
		}
		stop()
		if attempt == 2 {
			t.Fatal("moto_server did not start")
		}
	}
}

// ready waits until the server answers, or has exited, or 30 s pass.
func (s *S3Server) ready(exited <-chan struct{}) bool {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return false
		default:
		}
		if res, err := http.Get(s.Endpoint + "/"); err == nil {
			res.Body.Close()
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// client is an S3 client of the server, signing as S3Credentials does.
func (s *S3Server) client() *s3.Client {
	return s3.New(s3.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(s.Endpoint), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
	})
}

// Bucket creates a bucket.
func (s *S3Server) Bucket(t testing.TB, bucket string) {
	t.Helper()
	if _, err := s.client().CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
}

// Put stores an object in a bucket that exists; it returns the version
// id S3 gave it, if the bucket keeps versions.
func (s *S3Server) Put(t testing.TB, bucket, key string, body []byte) string {
	t.Helper()
	out, err := s.client().PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body)})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.VersionId)
}

// Versioned creates a bucket that keeps versions.
func (s *S3Server) Versioned(t testing.TB, bucket string) {
	t.Helper()
	s.Bucket(t, bucket)
	_, err := s.client().PutBucketVersioning(context.Background(), &s3.PutBucketVersioningInput{Bucket: aws.String(bucket),
		VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusEnabled}})
	if err != nil {
		t.Fatal(err)
	}
}

// S3Credentials sets the environment an AWS client reads its credentials
// and region from, for a test that talks to an S3Server.
func S3Credentials(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_REGION", "us-east-1")
	// No shared config files of the machine's user.
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}
