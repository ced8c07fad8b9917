// Package s3code reads function and layer code given as an S3 object
// (Code.S3Bucket, S3Key, S3ObjectVersion) with aws-sdk-go-v2's S3 client,
// from the endpoint the standard AWS configuration names
// (AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, the shared config files) or the
// one lambdad is given, and answers as AWS's Lambda does when the bucket
// or the object is missing or too large.
package s3code

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/lambdad/lambdad/internal/archive"
	"github.com/lambdad/lambdad/internal/awserr"
)

// Options configure a Fetcher.
type Options struct {
	// Endpoint, when set, is the S3 endpoint (--s3-endpoint); otherwise
	// the standard AWS configuration decides.
	Endpoint string
	// Region is the region of the requests when the configuration names
	// none (the server's).
	Region string
	// MaxSize bounds an object; archive.MaxUnzipped when 0.
	MaxSize int64
}

// Fetcher reads code archives from S3.
type Fetcher struct {
	client *s3.Client
	max    int64
}

// New loads the AWS configuration (environment, shared files) and returns
// a Fetcher over it. It reaches no server: a bad endpoint shows at the
// first Fetch.
func New(ctx context.Context, o Options) (*Fetcher, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("s3: load the AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = o.Region
	}
	if o.MaxSize == 0 {
		o.MaxSize = archive.MaxUnzipped
	}
	client := s3.NewFromConfig(cfg, func(so *s3.Options) {
		if o.Endpoint != "" {
			so.BaseEndpoint = aws.String(o.Endpoint)
		}
		// S3-compatible servers on a local address serve buckets by path,
		// not by host name.
		so.UsePathStyle = true
	})
	return &Fetcher{client: client, max: o.MaxSize}, nil
}

// Fetch reads one object. A missing bucket, key or version is AWS's
// InvalidParameterValueException naming S3's error code and message; an
// object larger than the code limit is refused before it is read.
func (f *Fetcher) Fetch(ctx context.Context, bucket, key, version string) ([]byte, error) {
	in := &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}
	if version != "" {
		in.VersionId = aws.String(version)
	}
	out, err := f.client.GetObject(ctx, in)
	if err != nil {
		return nil, s3Error(err)
	}
	defer out.Body.Close()
	if n := aws.ToInt64(out.ContentLength); n > f.max {
		return nil, tooLarge(f.max)
	}
	data, err := io.ReadAll(io.LimitReader(out.Body, f.max+1))
	if err != nil {
		return nil, fmt.Errorf("s3: read s3://%s/%s: %w", bucket, key, err)
	}
	if int64(len(data)) > f.max {
		return nil, tooLarge(f.max)
	}
	return data, nil
}

func tooLarge(max int64) error {
	return awserr.New(awserr.InvalidParameterValue, "Unzipped size must be smaller than %d bytes", max)
}

// s3Error turns S3's answer into AWS Lambda's (recorded): an
// InvalidParameterValueException naming S3's code and message. A failure
// to reach S3 at all is the server's problem, not the caller's.
func s3Error(err error) error {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return fmt.Errorf("s3: %w", err)
	}
	code, msg := ae.ErrorCode(), ae.ErrorMessage()
	// A HEAD-style answer has no body: S3's words for the usual cases.
	if msg == "" {
		msg = map[string]string{"NoSuchBucket": "The specified bucket does not exist", "NoSuchKey": "The specified key does not exist."}[code]
	}
	return awserr.New(awserr.InvalidParameterValue, "Error occurred while GetObject. S3 Error Code: %s. S3 Error Message: %s", code, msg)
}
