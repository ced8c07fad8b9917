package server_test

import (
	"os/exec"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/lambdad/lambdad/internal/lambdatest"
	"github.com/lambdad/lambdad/internal/server"
)

// ttfbFn makes the same 1 MiB response in 16 pieces of 64 KiB, with
// event.ms of work (a timer) before each: "streamed" writes each piece as
// it is made (awslambda.streamifyResponse), "buffered" returns them all
// at the end (a JSON string: 2 bytes more).
const ttfbFn = `const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const piece = "x".repeat(64 << 10);
exports.streamed = awslambda.streamifyResponse(async (event, responseStream) => {
  for (let i = 0; i < 16; i++) { if (event.ms) await sleep(event.ms); responseStream.write(piece); }
  responseStream.end();
});
exports.buffered = async (event) => {
  const parts = [];
  for (let i = 0; i < 16; i++) { if (event.ms) await sleep(event.ms); parts.push(piece); }
  return parts.join("");
};
`

// BenchmarkStreamTTFB compares the time to the first byte of the same
// 1 MiB response streamed and buffered, both read with the SDK's
// InvokeWithResponseStream, warm, taking turns in the same run: with 2 ms
// of work before each of the 16 pieces, and with none (the response as
// fast as it can be made). It reports the p50 of the first PayloadChunk and
// of the whole response for each.
func BenchmarkStreamTTFB(b *testing.B) {
	if _, err := exec.LookPath("node"); err != nil {
		lambdatest.RequireE2E(b, "node is not installed")
	}
	opts := server.Options{}
	opts.Listen, opts.DataDir = "127.0.0.1:0", b.TempDir()
	nn, err := server.Start(opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { nn.Close(ctx) })
	n := &node{Node: nn, client: clientFor(nn.URL())}
	for _, h := range []string{"streamed", "buffered"} {
		if _, err := n.client.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String(h),
			Runtime: types.RuntimeNodejs20x, Handler: aws.String("index." + h), Role: aws.String(role), Timeout: aws.Int32(30),
			Code: &types.FunctionCode{ZipFile: lambdatest.Zip(b, map[string]string{"index.js": ttfbFn})}}); err != nil {
			b.Fatal(err)
		}
	}
	once := func(fn, payload string) (first, whole time.Duration, size int) {
		t0 := time.Now()
		out, err := n.client.InvokeWithResponseStream(ctx, &lambda.InvokeWithResponseStreamInput{FunctionName: aws.String(fn), Payload: []byte(payload)})
		if err != nil {
			b.Fatal(err)
		}
		stream := out.GetStream()
		defer stream.Close()
		for ev := range stream.Events() {
			if c, ok := ev.(*types.InvokeWithResponseStreamResponseEventMemberPayloadChunk); ok {
				if size == 0 {
					first = time.Since(t0)
				}
				size += len(c.Value.Payload)
			}
		}
		if err := stream.Err(); err != nil {
			b.Fatalf("%s %s after %d bytes: %v", fn, payload, size, err)
		}
		return first, time.Since(t0), size
	}
	for _, c := range []struct{ name, payload string }{{"work-2ms", `{"ms":2}`}, {"no-work", `{}`}} {
		b.Run(c.name, func(b *testing.B) {
			once("streamed", c.payload) // warm both
			once("buffered", c.payload)
			first := map[string][]time.Duration{}
			whole := map[string][]time.Duration{}
			for b.Loop() {
				for _, fn := range []string{"streamed", "buffered"} {
					f, w, size := once(fn, c.payload)
					if size < 1<<20 {
						b.Fatalf("%s: %d bytes", fn, size)
					}
					first[fn], whole[fn] = append(first[fn], f), append(whole[fn], w)
				}
			}
			b.ReportMetric(float64(p50(first["streamed"]).Microseconds()), "streamed-ttfb-µs")
			b.ReportMetric(float64(p50(first["buffered"]).Microseconds()), "buffered-ttfb-µs")
			b.ReportMetric(float64(p50(whole["streamed"]).Microseconds()), "streamed-whole-µs")
			b.ReportMetric(float64(p50(whole["buffered"]).Microseconds()), "buffered-whole-µs")
			b.ReportMetric(float64(p50(first["buffered"]))/float64(p50(first["streamed"])), "ttfb-buffered/streamed")
		})
	}
}
