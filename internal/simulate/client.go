package simulate

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/lambdad/lambdad/internal/sigv4"
)

// Client calls a Lambda API endpoint over plain HTTP, signing its
// requests (SigV4) when credentials are given, so that the same calls
// reach lambdad and AWS alike.
type Client struct {
	Endpoint string
	HTTP     *http.Client
	// Credentials sign the requests when AccessKeyID is set.
	AccessKeyID, SecretAccessKey, SessionToken, Region string
}

// ClientFromEnv is a client of endpoint that signs with the standard AWS
// environment variables when they are set.
func ClientFromEnv(endpoint string) *Client {
	region := os.Getenv("AWS_REGION")
	if region == "" {
		region = os.Getenv("AWS_DEFAULT_REGION")
	}
	if region == "" {
		region = "us-east-1"
	}
	return &Client{
		Endpoint: endpoint, HTTP: &http.Client{Timeout: 16 * time.Minute},
		AccessKeyID: os.Getenv("AWS_ACCESS_KEY_ID"), SecretAccessKey: os.Getenv("AWS_SECRET_ACCESS_KEY"),
		SessionToken: os.Getenv("AWS_SESSION_TOKEN"), Region: region,
	}
}

// APIError is an answer other than the one expected.
type APIError struct {
	Op     string
	Status int
	Code   string
	Reason string
	Body   []byte
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s: %d %s %s", e.Op, e.Status, e.Code, bytes.TrimSpace(e.Body))
}

// do sends one request and decodes a JSON answer into out (when not nil);
// an answer other than want is an *APIError.
func (c *Client) do(ctx context.Context, op, method, path string, body []byte, want int, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.Endpoint+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.AccessKeyID != "" {
		if c.SessionToken != "" {
			req.Header.Set("X-Amz-Security-Token", c.SessionToken)
		}
		sigv4.Sign(req, body, c.AccessKeyID, c.SecretAccessKey, c.Region, "lambda", time.Now())
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if resp.StatusCode != want {
		e := &APIError{Op: op, Status: resp.StatusCode, Code: resp.Header.Get("X-Amzn-ErrorType"), Body: b}
		var r struct{ Reason string }
		if json.Unmarshal(b, &r) == nil {
			e.Reason = r.Reason
		}
		return e
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s: the answer %q: %w", op, b, err)
		}
	}
	return nil
}

// Export reads the plan of the account behind the client: its limit
// (GetAccountSettings), every function (ListFunctions), each one's
// reservation (GetFunctionConcurrency) and provisioned configurations
// (ListProvisionedConcurrencyConfigs). The minimum unreserved is not part
// of the Lambda API; minUnreserved gives it.
func (c *Client) Export(ctx context.Context, minUnreserved int) (*Plan, error) {
	var settings struct {
		AccountLimit struct{ ConcurrentExecutions int }
	}
	if err := c.do(ctx, "GetAccountSettings", "GET", "/2016-08-19/account-settings", nil, 200, &settings); err != nil {
		return nil, err
	}
	p := &Plan{AccountLimit: new(settings.AccountLimit.ConcurrentExecutions), MinUnreserved: new(minUnreserved), Functions: map[string]*FunctionPlan{}}
	marker := ""
	for {
		var page struct {
			Functions  []struct{ FunctionName string }
			NextMarker string
		}
		q := url.Values{"MaxItems": {"50"}}
		if marker != "" {
			q.Set("Marker", marker)
		}
		if err := c.do(ctx, "ListFunctions", "GET", "/2015-03-31/functions?"+q.Encode(), nil, 200, &page); err != nil {
			return nil, err
		}
		for _, f := range page.Functions {
			fp, err := c.exportFunction(ctx, f.FunctionName)
			if err != nil {
				return nil, err
			}
			p.Functions[f.FunctionName] = fp
		}
		if page.NextMarker == "" || page.NextMarker == marker {
			break
		}
		marker = page.NextMarker
	}
	return p, nil
}

func (c *Client) exportFunction(ctx context.Context, name string) (*FunctionPlan, error) {
	fp := &FunctionPlan{}
	var conc struct{ ReservedConcurrentExecutions *int }
	if err := c.do(ctx, "GetFunctionConcurrency", "GET", "/2019-09-30/functions/"+url.PathEscape(name)+"/concurrency", nil, 200, &conc); err != nil {
		return nil, err
	}
	fp.Reserved = conc.ReservedConcurrentExecutions
	marker := ""
	for {
		var page struct {
			ProvisionedConcurrencyConfigs []struct {
				FunctionArn                              string
				RequestedProvisionedConcurrentExecutions int
			}
			NextMarker string
		}
		q := url.Values{"List": {"ALL"}, "MaxItems": {"50"}}
		if marker != "" {
			q.Set("Marker", marker)
		}
		if err := c.do(ctx, "ListProvisionedConcurrencyConfigs", "GET", "/2019-09-30/functions/"+url.PathEscape(name)+"/provisioned-concurrency?"+q.Encode(), nil, 200, &page); err != nil {
			return nil, err
		}
		for _, cfg := range page.ProvisionedConcurrencyConfigs {
			_, q := splitName(cfg.FunctionArn)
			if q == "" {
				continue
			}
			if fp.Provisioned == nil {
				fp.Provisioned = map[string]int{}
			}
			fp.Provisioned[q] = cfg.RequestedProvisionedConcurrentExecutions
		}
		if page.NextMarker == "" || page.NextMarker == marker {
			break
		}
		marker = page.NextMarker
	}
	return fp, nil
}

// Invoke invokes function[:qualifier] synchronously with payload; a
// throttle is an *APIError with Status 429 and its Reason.
func (c *Client) Invoke(ctx context.Context, function, qualifier string, payload []byte) error {
	path := "/2015-03-31/functions/" + url.PathEscape(function) + "/invocations"
	if qualifier != "" {
		path += "?Qualifier=" + url.QueryEscape(qualifier)
	}
	return c.do(ctx, "Invoke", "POST", path, payload, 200, nil)
}

// CreateFunction creates a provided-runtime function from a zip whose
// bootstrap sleeps {"sleep_ms": n}, for a replay's functions.
func (c *Client) CreateFunction(ctx context.Context, name string, zip []byte, timeout int) error {
	body, _ := json.Marshal(map[string]any{
		"FunctionName": name, "Runtime": "provided.al2023", "Handler": "bootstrap",
		"Role": "arn:aws:iam::123456789012:role/lambdad-replay", "Timeout": timeout,
		"Code": map[string][]byte{"ZipFile": zip},
	})
	return c.do(ctx, "CreateFunction", "POST", "/2015-03-31/functions", body, 201, nil)
}

// PutFunctionConcurrency reserves n for function.
func (c *Client) PutFunctionConcurrency(ctx context.Context, function string, n int) error {
	body := []byte(`{"ReservedConcurrentExecutions":` + strconv.Itoa(n) + `}`)
	return c.do(ctx, "PutFunctionConcurrency", "PUT", "/2017-10-31/functions/"+url.PathEscape(function)+"/concurrency", body, 200, nil)
}
