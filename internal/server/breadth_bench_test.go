package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/lambdad/lambdad/internal/lambdatest"
	"github.com/lambdad/lambdad/internal/server"
)

func p50(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// BenchmarkColdStartLayers compares cold starts of the same Go function
// without layers and with 5 (each with files under python/, nodejs/,
// bin/ and lib/), taking turns in the same run: each round changes both
// functions' configuration, so the next invocation of each starts a new
// environment. It reports both p50s and their ratio.
func BenchmarkColdStartLayers(b *testing.B) {
	n := benchNode(b, server.Options{}, "plain")
	var arns []string
	for i := range 5 {
		files := map[string]string{}
		for _, d := range []string{"python/pkg%d/m%d.py", "nodejs/node_modules/m%d/index%d.js", "bin/tool%d-%d", "lib/lib%d.so.%d"} {
			for j := range 10 {
				files[fmt.Sprintf(d, i, j)] = "x"
			}
		}
		out, err := n.client.PublishLayerVersion(ctx, &lambda.PublishLayerVersionInput{LayerName: aws.String(fmt.Sprint("l", i)),
			Content: &types.LayerVersionContentInput{ZipFile: lambdatest.Zip(b, files)}})
		if err != nil {
			b.Fatal(err)
		}
		arns = append(arns, aws.ToString(out.LayerVersionArn))
	}
	in := goFunctionInput(b, "layered")
	in.Layers = arns
	if _, err := n.client.CreateFunction(ctx, in); err != nil {
		b.Fatal(err)
	}
	cold := map[string][]time.Duration{}
	round := 0
	b.ResetTimer()
	for b.Loop() {
		for _, fn := range []string{"plain", "layered"} {
			b.StopTimer()
			round++
			if _, err := n.client.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String(fn), Description: aws.String(fmt.Sprint(round))}); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			t0 := time.Now()
			out, err := n.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(fn), Payload: []byte(`{}`)})
			if err != nil || out.FunctionError != nil {
				b.Fatalf("invoke %s: %v %s", fn, err, out.Payload)
			}
			cold[fn] = append(cold[fn], time.Since(t0))
		}
	}
	plain, layered := p50(cold["plain"]), p50(cold["layered"])
	b.ReportMetric(float64(plain.Microseconds()), "plain-p50-µs")
	b.ReportMetric(float64(layered.Microseconds()), "5layers-p50-µs")
	b.ReportMetric(float64(layered)/float64(plain), "ratio")
}

// BenchmarkURLvsInvoke compares a warm request to a function URL with a
// warm Invoke of the same function, taking turns in the same run, one
// request at a time each over a kept-alive connection. It reports the
// p50s and two ratios: against an Invoke of the same small body, and
// against an Invoke whose payload is the payload format 2.0 event the URL
// request becomes (so that only the URL front end differs, not the work
// of the function and its Runtime API on a larger event).
func BenchmarkURLvsInvoke(b *testing.B) {
	n := benchNode(b, server.Options{}, "echo")
	u, err := n.client.CreateFunctionUrlConfig(ctx, &lambda.CreateFunctionUrlConfigInput{FunctionName: aws.String("echo"), AuthType: types.FunctionUrlAuthTypeNone})
	if err != nil {
		b.Fatal(err)
	}
	id := urlIDOf(b, aws.ToString(u.FunctionUrl))
	targets := map[string]string{
		"invoke": n.URL() + "/2015-03-31/functions/echo/invocations",
		"url":    n.URL() + "/lambda-url/" + id + "/",
	}
	client := &http.Client{}
	body := []byte(`{"echo":"x"}`)
	send := func(url string, body []byte) (time.Duration, []byte) {
		t0 := time.Now()
		resp, err := client.Post(url, "application/json", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("%s: status %d", url, resp.StatusCode)
		}
		return time.Since(t0), out
	}
	// The event the URL request becomes, as the function records it.
	dir := b.TempDir()
	setEnv := func(env map[string]string) {
		if _, err := n.client.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("echo"),
			Environment: &types.Environment{Variables: env}}); err != nil {
			b.Fatal(err)
		}
	}
	setEnv(map[string]string{"RECORD_DIR": dir})
	send(targets["url"], body)
	setEnv(map[string]string{})
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(files) != 1 {
		b.Fatalf("recorded %d events", len(files))
	}
	event, err := os.ReadFile(files[0])
	if err != nil || !json.Valid(event) {
		b.Fatalf("the recorded URL event: %v %s", err, event)
	}
	bodies := map[string][]byte{"invoke": body, "invoke-event": event, "url": body}
	targets["invoke-event"] = targets["invoke"]
	order := []string{"invoke", "invoke-event", "url"}
	for _, k := range order {
		send(targets[k], bodies[k])
	}
	lat := map[string][]time.Duration{}
	b.ResetTimer()
	for b.Loop() {
		for _, k := range order {
			d, _ := send(targets[k], bodies[k])
			lat[k] = append(lat[k], d)
		}
	}
	inv, invEvent, url := p50(lat["invoke"]), p50(lat["invoke-event"]), p50(lat["url"])
	b.ReportMetric(float64(inv.Microseconds()), "invoke-p50-µs")
	b.ReportMetric(float64(invEvent.Microseconds()), "invoke-event-p50-µs")
	b.ReportMetric(float64(url.Microseconds()), "url-p50-µs")
	b.ReportMetric(float64(url)/float64(inv), "ratio")
	b.ReportMetric(float64(url)/float64(invEvent), "ratio-same-event")
}

func urlIDOf(b *testing.B, u string) string {
	const scheme = "http://"
	host := u[len(scheme):]
	for i := range host {
		if host[i] == '.' {
			return host[:i]
		}
	}
	b.Fatalf("no id in %s", u)
	return ""
}
