package bench

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
)

// IsEchoFunction reports whether this process was started as the bench's
// function: as a Lambda bootstrap, with a Runtime API to serve.
func IsEchoFunction() bool {
	return filepath.Base(os.Args[0]) == "bootstrap" && os.Getenv("AWS_LAMBDA_RUNTIME_API") != ""
}

// RunEchoFunction serves as the echo function: it answers each event with
// itself, after sleeping sleep_ms if the event asks. It never returns.
func RunEchoFunction() {
	lambda.Start(func(ctx context.Context, ev json.RawMessage) (json.RawMessage, error) {
		var e struct {
			SleepMS int `json:"sleep_ms"`
		}
		json.Unmarshal(ev, &e)
		if e.SleepMS > 0 {
			time.Sleep(time.Duration(e.SleepMS) * time.Millisecond)
		}
		return ev, nil
	})
}

// EchoZip packs the running binary as a provided-runtime function: run
// as its bootstrap, the binary serves as the echo function, which sleeps
// {"sleep_ms": n} (see IsEchoFunction).
func EchoZip() ([]byte, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return functionZip(self)
}
