package bench

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// scrapeComparison measures the invoke path without and with a scraper
// reading /lambdad/metrics every o.Scrape, in interleaved rounds of the
// same run, and prints both and their ratio. With o.ScrapeFunctions it
// first registers that many more functions, each with a reservation (of
// 0, which every account allows), so that each scrape walks them all.
func scrapeComparison(ctx context.Context, client *http.Client, endpoint, invokeURL, name string, o Options, created *[]string) error {
	if o.ScrapeFunctions > 0 {
		t0 := time.Now()
		code := tinyZip()
		for i := range o.ScrapeFunctions {
			fn := fmt.Sprintf("%s-fill-%06d", name, i)
			*created = append(*created, fn)
			if err := createFunction(ctx, client, endpoint, fn, code, 3); err != nil {
				return err
			}
			status, body, _, err := put(ctx, client, endpoint+"/2017-10-31/functions/"+fn+"/concurrency", []byte(`{"ReservedConcurrentExecutions":0}`))
			if err != nil || status != 200 {
				return fmt.Errorf("reserving %s: %d %s %v", fn, status, body, err)
			}
		}
		fmt.Fprintf(o.Out, "registered %d reserved functions in %v\n", o.ScrapeFunctions, time.Since(t0).Round(time.Millisecond))
	}
	rounds := max(1, o.Rounds)
	part := o
	part.Count, part.Duration = o.Count/rounds, o.Duration/time.Duration(rounds)
	alone, scraped := &Result{Name: "lambdad"}, &Result{Name: "scraped"}
	var scrapes []time.Duration
	for range rounds {
		alone.add(drive(ctx, client, invokeURL, part, "lambdad"))
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() { scrapes = append(scrapes, scraper(ctx, client, endpoint, o.Scrape, stop)...) })
		scraped.add(drive(ctx, client, invokeURL, part, "scraped"))
		close(stop)
		wg.Wait()
	}
	alone.finish()
	scraped.finish()
	alone.print(o.Out)
	scraped.print(o.Out)
	sortD(scrapes)
	p50 := time.Duration(0)
	if len(scrapes) > 0 {
		p50 = scrapes[len(scrapes)/2]
	}
	fmt.Fprintf(o.Out, "scrapes    n=%d every %v, p50 %v\n", len(scrapes), o.Scrape, round(p50))
	fmt.Fprintf(o.Out, "ratio      p50=%.2fx p90=%.2fx p99=%.2fx throughput=%.2fx (scraped / not, %d interleaved rounds)\n",
		ratio(scraped.Percentile(50), alone.Percentile(50)), ratio(scraped.Percentile(90), alone.Percentile(90)),
		ratio(scraped.Percentile(99), alone.Percentile(99)), scraped.Throughput()/max(alone.Throughput(), 1e-9), rounds)
	return nil
}

// scraper reads /lambdad/metrics every interval until stop is closed, and
// returns how long each scrape took.
func scraper(ctx context.Context, client *http.Client, endpoint string, interval time.Duration, stop <-chan struct{}) []time.Duration {
	var took []time.Duration
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		t0 := time.Now()
		req, err := http.NewRequestWithContext(ctx, "GET", endpoint+"/lambdad/metrics", nil)
		if err != nil {
			return took
		}
		if resp, err := client.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			took = append(took, time.Since(t0))
		}
		select {
		case <-stop:
			return took
		case <-ctx.Done():
			return took
		case <-t.C:
		}
	}
}

// tinyZip is the code of the functions registered for the scrape: they
// are never invoked.
func tinyZip() []byte {
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	h := &zip.FileHeader{Name: "bootstrap", Method: zip.Store}
	h.SetMode(0o755)
	// Writing to an in-memory archive cannot fail.
	f, _ := w.CreateHeader(h)
	f.Write([]byte("#!/bin/sh\n"))
	w.Close()
	return buf.Bytes()
}

func put(ctx context.Context, client *http.Client, url string, body []byte) (int, []byte, string, error) {
	req, err := http.NewRequestWithContext(ctx, "PUT", url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, "", err
}
