package esm

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// Message is one SQS message as a batch carries it.
type Message struct {
	ID, ReceiptHandle, Body, MD5OfBody string
	Attributes                         map[string]string
	MessageAttributes                  map[string]sqstypes.MessageAttributeValue
}

// Queues is what a poller needs of SQS.
type Queues interface {
	// Receive long-polls a queue for at most max (1–10) messages, waiting
	// at most wait for the first.
	Receive(ctx context.Context, queueArn string, max int, wait time.Duration) ([]Message, error)
	// Delete removes processed messages and returns how many it removed;
	// a message SQS refuses to delete (its receipt handle is stale because
	// it was received again) is left to whoever received it last.
	Delete(ctx context.Context, queueArn string, msgs []Message) (int, error)
}

// SQS is Queues over aws-sdk-go-v2's SQS client.
type SQS struct {
	client *sqs.Client
	mu     sync.Mutex
	urls   map[string]string // queue ARN → URL
}

// NewSQS makes the SQS client from the standard AWS configuration (the
// environment, AWS_ENDPOINT_URL_SQS and AWS_ENDPOINT_URL, the shared
// config files) in region; endpoint, when set, overrides the endpoint.
func NewSQS(ctx context.Context, region, endpoint string) (*SQS, error) {
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(region))
	if err != nil {
		return nil, err
	}
	if cfg.Credentials == nil {
		cfg.Credentials = aws.AnonymousCredentials{}
	}
	client := sqs.NewFromConfig(cfg, func(o *sqs.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	})
	return &SQS{client: client, urls: map[string]string{}}, nil
}

// url finds a queue's URL from its ARN (arn:aws:sqs:REGION:ACCOUNT:NAME).
func (q *SQS) url(ctx context.Context, arn string) (string, error) {
	q.mu.Lock()
	u, ok := q.urls[arn]
	q.mu.Unlock()
	if ok {
		return u, nil
	}
	parts := strings.Split(arn, ":")
	if len(parts) != 6 {
		return "", errors.New("esm: not a queue ARN: " + arn)
	}
	out, err := q.client.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(parts[5]), QueueOwnerAWSAccountId: aws.String(parts[4])})
	if err != nil {
		return "", err
	}
	q.mu.Lock()
	q.urls[arn] = aws.ToString(out.QueueUrl)
	q.mu.Unlock()
	return aws.ToString(out.QueueUrl), nil
}

// Receive implements Queues.
func (q *SQS) Receive(ctx context.Context, arn string, max int, wait time.Duration) ([]Message, error) {
	u, err := q.url(ctx, arn)
	if err != nil {
		return nil, err
	}
	out, err := q.client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl: aws.String(u), MaxNumberOfMessages: int32(max), WaitTimeSeconds: int32(wait / time.Second),
		MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll},
		MessageAttributeNames:       []string{"All"},
	})
	if err != nil {
		return nil, err
	}
	msgs := make([]Message, len(out.Messages))
	for i, m := range out.Messages {
		msgs[i] = Message{ID: aws.ToString(m.MessageId), ReceiptHandle: aws.ToString(m.ReceiptHandle), Body: aws.ToString(m.Body),
			MD5OfBody: aws.ToString(m.MD5OfBody), Attributes: m.Attributes, MessageAttributes: m.MessageAttributes}
	}
	return msgs, nil
}

// Delete implements Queues, ten at a time as SQS takes them.
func (q *SQS) Delete(ctx context.Context, arn string, msgs []Message) (int, error) {
	u, err := q.url(ctx, arn)
	if err != nil {
		return 0, err
	}
	deleted := 0
	for len(msgs) > 0 {
		n := min(10, len(msgs))
		entries := make([]sqstypes.DeleteMessageBatchRequestEntry, n)
		for i, m := range msgs[:n] {
			entries[i] = sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(m.ID), ReceiptHandle: aws.String(m.ReceiptHandle)}
		}
		out, err := q.client.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(u), Entries: entries})
		if err != nil {
			return deleted, err
		}
		deleted += len(out.Successful)
		msgs = msgs[n:]
	}
	return deleted, nil
}
