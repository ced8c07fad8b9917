package s3code_test

import (
	"context"
	"strings"
	"testing"

	"github.com/lambdad/lambdad/internal/awserr"
	"github.com/lambdad/lambdad/internal/lambdatest"
	"github.com/lambdad/lambdad/internal/s3code"
)

// TestFetch reads objects from a real S3-compatible server on loopback
// (moto_server), by key and by version, and answers AWS Lambda's errors
// for a missing bucket, key or version and an object over the limit.
func TestFetch(t *testing.T) {
	s3 := lambdatest.StartS3(t)
	lambdatest.S3Credentials(t)
	ctx := context.Background()
	f, err := s3code.New(ctx, s3code.Options{Endpoint: s3.Endpoint, Region: "us-east-1", MaxSize: 16})
	if err != nil {
		t.Fatal(err)
	}
	s3.Versioned(t, "code")
	v1 := s3.Put(t, "code", "dir/f.zip", []byte("first"))
	s3.Put(t, "code", "dir/f.zip", []byte("second"))
	s3.Put(t, "code", "big.zip", []byte("seventeen bytes!!"))
	if got, err := f.Fetch(ctx, "code", "dir/f.zip", ""); err != nil || string(got) != "second" {
		t.Errorf("latest: %q %v", got, err)
	}
	if v1 == "" {
		t.Fatal("the versioned bucket gave no version id")
	}
	if got, err := f.Fetch(ctx, "code", "dir/f.zip", v1); err != nil || string(got) != "first" {
		t.Errorf("version %s: %q %v", v1, got, err)
	}
	for _, c := range []struct{ bucket, key, version, want string }{
		{"nope", "f.zip", "", "Error occurred while GetObject. S3 Error Code: NoSuchBucket. S3 Error Message: The specified bucket does not exist"},
		{"code", "nope.zip", "", "Error occurred while GetObject. S3 Error Code: NoSuchKey. S3 Error Message: The specified key does not exist."},
		{"code", "dir/f.zip", "nosuchversion", "Error occurred while GetObject. S3 Error Code: "},
		{"code", "big.zip", "", "Unzipped size must be smaller than 16 bytes"},
	} {
		_, err := f.Fetch(ctx, c.bucket, c.key, c.version)
		e, ok := awserr.As(err)
		if !ok || e.Code != awserr.InvalidParameterValue || !strings.HasPrefix(e.Message, c.want) {
			t.Errorf("s3://%s/%s?%s: %v, want InvalidParameterValueException %q", c.bucket, c.key, c.version, err, c.want)
		}
	}
}
