package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/lambdad/lambdad/internal/lambdatest"
	"github.com/lambdad/lambdad/internal/server"
)

// cluster starts n nodes sharing one etcd under prefix.
func cluster(t *testing.T, endpoint, prefix string, n int, mutate ...func(*server.Options)) []*node {
	t.Helper()
	var out []*node
	for range n {
		out = append(out, clusterNode(t, endpoint, prefix, mutate...))
	}
	return out
}

func clusterNode(t *testing.T, endpoint, prefix string, mutate ...func(*server.Options)) *node {
	t.Helper()
	o := server.Options{EtcdEndpoints: []string{endpoint}, EtcdPrefix: prefix}
	for _, m := range mutate {
		m(&o)
	}
	return start(t, o)
}

// TestClusterAnyNodeServesAnyFunction: a function created through one node
// is served, code and all, by every other, including a node that started
// after the first one was gone.
func TestClusterAnyNodeServesAnyFunction(t *testing.T) {
	endpoint := lambdatest.Etcd(t)
	nodes := cluster(t, endpoint, "/any/", 2)
	a, b := nodes[0], nodes[1]
	a.createGo(t, "f")
	out, err := b.invoke(t, "f", `{"echo":"from b"}`)
	if err != nil || out.FunctionError != nil {
		t.Fatalf("invoke on the other node: %v %s", err, payloadOf(out))
	}
	if err := a.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := clusterNode(t, endpoint, "/any/")
	got, err := c.client.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("f")})
	if err != nil {
		t.Fatalf("GetFunction on a node started after the creator stopped: %v", err)
	}
	if got.Configuration.CodeSha256 == nil || *got.Configuration.CodeSha256 == "" {
		t.Errorf("no CodeSha256: %+v", got.Configuration)
	}
	out, err = c.invoke(t, "f", `{}`)
	if err != nil || out.FunctionError != nil {
		t.Fatalf("invoke on a node that never saw the upload, its creator gone: %v %s", err, payloadOf(out))
	}
	var ans answer
	if err := json.Unmarshal(out.Payload, &ans); err != nil || ans.RequestID == "" {
		t.Errorf("answer %s: %v", out.Payload, err)
	}
}

// TestClusterSettingReachesEveryNode: a reservation put through one node
// governs admission on another within a bounded time, and so does its
// removal; the time is measured.
func TestClusterSettingReachesEveryNode(t *testing.T) {
	endpoint := lambdatest.Etcd(t)
	nodes := cluster(t, endpoint, "/setting/", 2)
	a, b := nodes[0], nodes[1]
	a.createGo(t, "f")
	if _, err := b.invoke(t, "f", `{}`); err != nil {
		t.Fatal(err)
	}
	var worst time.Duration
	for range 5 {
		start := time.Now()
		a.reserve(t, "f", 0)
		for {
			_, err := b.invoke(t, "f", `{}`)
			var throttle *types.TooManyRequestsException
			if errors.As(err, &throttle) {
				break
			}
			if time.Since(start) > 5*time.Second {
				t.Fatalf("the other node still admits 5 s after a reservation of 0: %v", err)
			}
		}
		worst = max(worst, time.Since(start))
		start = time.Now()
		if _, err := a.client.DeleteFunctionConcurrency(ctx, &lambda.DeleteFunctionConcurrencyInput{FunctionName: aws.String("f")}); err != nil {
			t.Fatal(err)
		}
		for {
			if _, err := b.invoke(t, "f", `{}`); err == nil {
				break
			} else if time.Since(start) > 5*time.Second {
				t.Fatalf("the other node still throttles 5 s after the reservation went: %v", err)
			}
		}
		worst = max(worst, time.Since(start))
	}
	t.Logf("a reservation put or removed on one node governed the other within %v (worst of 10, the write and an invoke included)", worst)
	got, err := b.client.GetFunctionConcurrency(ctx, &lambda.GetFunctionConcurrencyInput{FunctionName: aws.String("f")})
	if err != nil || got.ReservedConcurrentExecutions != nil {
		t.Errorf("GetFunctionConcurrency on the other node: %+v, %v; want none", got, err)
	}
}

func payloadOf(out *lambda.InvokeOutput) string {
	if out == nil {
		return ""
	}
	return string(out.Payload)
}

// run is one line of testfn's runs.log.
type run struct {
	ID     string `json:"id"`
	Tmp    string `json:"tmp"`
	PID    int    `json:"pid"`
	Tenant string `json:"tenant"`
}

// ranOn reports whether the run was on node n.
func (r run) ranOn(n *node) bool {
	return strings.HasPrefix(r.Tmp, n.DataDir()+string(filepath.Separator))
}

func runs(t *testing.T, dir string) []run {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "runs.log"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []run
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if l == "" {
			continue
		}
		var r run
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("runs.log line %q: %v", l, err)
		}
		out = append(out, r)
	}
	return out
}

func waitRuns(t *testing.T, dir string, n int, within time.Duration) []run {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if r := runs(t, dir); len(r) >= n {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d runs after %v, want %d: %+v", len(runs(t, dir)), within, n, runs(t, dir))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestClusterEventsRunOnceAndOutliveTheirNode: events accepted by one node
// run there and nowhere else while it lives; when it goes with events
// unfinished, another node takes them over and runs each of them.
func TestClusterEventsRunOnceAndOutliveTheirNode(t *testing.T) {
	endpoint := lambdatest.Etcd(t)
	nodes := cluster(t, endpoint, "/events/", 2, func(o *server.Options) { o.LeaseTTL = 2 * time.Second })
	a, b := nodes[0], nodes[1]
	dir := t.TempDir()
	a.createGo(t, "worker", func(in *lambda.CreateFunctionInput) {
		recording(dir)(in)
		in.Timeout = aws.Int32(120)
	})
	release := filepath.Join(t.TempDir(), "release")
	const n = 6
	for range n {
		a.send(t, "worker", fmt.Sprintf(`{"wait_for":%q}`, release))
	}
	first := waitRuns(t, dir, n, 30*time.Second)
	time.Sleep(300 * time.Millisecond) // time for a wrong second run to show
	if got := runs(t, dir); len(got) != n {
		t.Fatalf("%d runs of %d events while their node lives: %+v", len(got), n, got)
	}
	for _, r := range first {
		if !r.ranOn(a) {
			t.Fatalf("an event accepted by one node ran on another: %+v (the accepting node's data in %s)", r, a.DataDir())
		}
	}
	// The node goes with every event still running: they stay stored,
	// and the other node takes them over.
	if err := a.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(release, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	all := waitRuns(t, dir, 2*n, 30*time.Second)
	again := map[string]bool{}
	for _, r := range all[n:] {
		if !r.ranOn(b) {
			t.Errorf("a run elsewhere than on the node left: %+v", r)
		}
		again[r.ID] = true
	}
	for _, r := range first {
		if !again[r.ID] {
			t.Errorf("event %s did not run again after its node went", r.ID)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for s := b.Events().Stats(); s.Pending+s.Running > 0; s = b.Events().Stats() {
		if time.Now().After(deadline) {
			t.Fatalf("the events taken over did not finish: %+v", s)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	if got := runs(t, dir); len(got) != 2*n {
		t.Errorf("%d runs in all, want %d", len(got), 2*n)
	}
}

// TestClusterProvisionedCountedOnce: a provisioned config's environments
// are divided among the nodes, add up to what was asked wherever the
// status is read, and are kept up by the others when a node goes.
func TestClusterProvisionedCountedOnce(t *testing.T) {
	endpoint := lambdatest.Etcd(t)
	nodes := cluster(t, endpoint, "/provisioned/", 3, func(o *server.Options) { o.LeaseTTL = 2 * time.Second })
	a := nodes[0]
	a.createGo(t, "p")
	v, err := a.client.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("p")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.client.PutProvisionedConcurrencyConfig(ctx, &lambda.PutProvisionedConcurrencyConfigInput{
		FunctionName: aws.String("p"), Qualifier: v.Version, ProvisionedConcurrentExecutions: aws.Int32(4)}); err != nil {
		t.Fatal(err)
	}
	ready := func(n *node, want int32) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			got, err := n.client.GetProvisionedConcurrencyConfig(ctx, &lambda.GetProvisionedConcurrencyConfigInput{FunctionName: aws.String("p"), Qualifier: v.Version})
			if err == nil && got.Status == types.ProvisionedConcurrencyStatusEnumReady && aws.ToInt32(got.AllocatedProvisionedConcurrentExecutions) == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("not READY with %d allocated after 60 s: %+v %v", want, got, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	local := func(live []*node) (total int, each []int) {
		for _, n := range live {
			k := 0
			for _, tg := range n.Provisioner().Targets() {
				k += tg.Allocated
			}
			total += k
			each = append(each, k)
		}
		return total, each
	}
	for _, n := range nodes {
		ready(n, 4)
	}
	if total, each := local(nodes); total != 4 {
		t.Fatalf("the nodes keep %v environments, %d in all, want 4 in all", each, total)
	}
	if err := nodes[2].Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	live := nodes[:2]
	deadline := time.Now().Add(30 * time.Second)
	for {
		total, each := local(live)
		if total == 4 {
			break
		}
		if total > 4 || time.Now().After(deadline) {
			t.Fatalf("after a node left the others keep %v, want 4 in all", each)
		}
		time.Sleep(50 * time.Millisecond)
	}
	ready(nodes[0], 4)
	ready(nodes[1], 4)
}

// TestClusterEventBurstFitsEtcd: a burst of large events from many senders
// at once is accepted whole by a node whose queue is in an etcd of default
// limits (128 operations and 1.5 MiB a transaction), and every event runs.
func TestClusterEventBurstFitsEtcd(t *testing.T) {
	endpoint := lambdatest.Etcd(t)
	n := clusterNode(t, endpoint, "/burst/")
	dir := t.TempDir()
	n.createGo(t, "sink", recording(dir))
	big := strings.Repeat("x", 256<<10)
	const events = 96
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i := range events {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			out, err := n.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("sink"), InvocationType: types.InvocationTypeEvent,
				Payload: []byte(fmt.Sprintf(`{"echo":%q,"i":%d}`, big, i))})
			if err != nil || out.StatusCode != 202 {
				t.Errorf("event %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	records(t, dir, events, 60*time.Second)
}

// clusterStorm sends count invocations of name from clients spread over nodes,
// conc at a time, each sleeping in the function; it returns the most
// invocations seen running at once inside the function (all nodes run on
// this machine, so inflight_dir counts across the cluster), how many were
// throttled and with which reasons.
func clusterStorm(t *testing.T, nodes []*node, name string, conc, count, sleepMS int) (peak int, throttled map[string]int) {
	t.Helper()
	dir := t.TempDir()
	var mu sync.Mutex
	throttled = map[string]int{}
	var wg sync.WaitGroup
	sem := make(chan struct{}, conc)
	for i := range count {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			n := nodes[i%len(nodes)]
			out, err := n.invoke(t, name, fmt.Sprintf(`{"inflight_dir":%q,"sleep_ms":%d}`, dir, sleepMS))
			mu.Lock()
			defer mu.Unlock()
			var throttle *types.TooManyRequestsException
			switch {
			case errors.As(err, &throttle):
				throttled[string(throttle.Reason)]++
			case err != nil:
				t.Errorf("invoke: %v", err)
			case out.FunctionError != nil:
				t.Errorf("function error: %s", out.Payload)
			default:
				var a answer
				if err := json.Unmarshal(out.Payload, &a); err != nil {
					t.Errorf("answer %s: %v", out.Payload, err)
				}
				peak = max(peak, a.Inflight)
			}
		})
	}
	wg.Wait()
	return peak, throttled
}

// TestClusterLimitsHoldAcrossNodes: a reservation R and the unreserved pool
// hold across three nodes together, observed inside the function, under
// storms spread over every node; and the whole of R is admitted at once
// wherever the load arrives.
func TestClusterLimitsHoldAcrossNodes(t *testing.T) {
	endpoint := lambdatest.Etcd(t)
	nodes := cluster(t, endpoint, "/limits/", 3, func(o *server.Options) {
		o.AccountConcurrency, o.MinUnreserved = 8, new(3)
		o.InvocationRate = new(0)
	})
	a := nodes[0]
	a.createGo(t, "reserved")
	a.createGo(t, "free")
	a.reserve(t, "reserved", 3)
	// Warm every node's environments first, so that the storms measure
	// admission, not cold starts.
	for _, n := range nodes {
		for _, f := range []string{"reserved", "free"} {
			if _, err := n.invoke(t, f, `{}`); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, c := range []struct {
		name  string
		limit int
		on    []*node
	}{
		{"reserved", 3, nodes},
		{"reserved", 3, nodes[1:2]},
		{"free", 5, nodes}, // U = L − R = 8 − 3
	} {
		peak, throttled := clusterStorm(t, c.on, c.name, 12, 60, 150)
		t.Logf("%s over %d node(s): peak %d running at once, throttled %v", c.name, len(c.on), peak, throttled)
		if peak > c.limit {
			t.Errorf("%s over %d node(s): %d ran at once, limit %d", c.name, len(c.on), peak, c.limit)
		}
		if peak < c.limit {
			t.Errorf("%s over %d node(s): at most %d ran at once, want the whole limit %d", c.name, len(c.on), peak, c.limit)
		}
		if len(throttled) == 0 {
			t.Errorf("%s: a storm of 12 at once against a limit of %d was never throttled", c.name, c.limit)
		}
		want := string(types.ThrottleReasonConcurrentInvocationLimitExceeded)
		if c.name == "reserved" {
			want = string(types.ThrottleReasonReservedFunctionConcurrentInvocationLimitExceeded)
		}
		for reason := range throttled {
			if reason != want {
				t.Errorf("%s throttled with Reason %s, want %s", c.name, reason, want)
			}
		}
	}
}

// TestClusterPartitionedNodeFences: a node cut off from etcd ends the
// invocations it admitted before its lease can expire, so that when the
// other node takes the reservation's slots none of them still runs.
func TestClusterPartitionedNodeFences(t *testing.T) {
	endpoint := lambdatest.Etcd(t)
	proxy := lambdatest.NewProxy(t, strings.TrimPrefix(endpoint, "http://"))
	ttl := 3 * time.Second
	a := clusterNode(t, endpoint, "/fence/", func(o *server.Options) { o.LeaseTTL = ttl })
	b := clusterNode(t, "http://"+proxy.Addr(), "/fence/", func(o *server.Options) { o.LeaseTTL = ttl })
	t.Cleanup(proxy.Mend) // before b closes: a node cut off waits out etcd's timeouts
	a.createGo(t, "held", func(in *lambda.CreateFunctionInput) { in.Timeout = aws.Int32(120) })
	a.reserve(t, "held", 2)
	if _, err := b.invoke(t, "held", `{}`); err != nil {
		t.Fatal(err)
	}
	never := filepath.Join(t.TempDir(), "never")
	ended := make(chan time.Time, 2)
	for range 2 {
		go func() {
			b.invoke(t, "held", fmt.Sprintf(`{"wait_for":%q}`, never))
			ended <- time.Now()
		}()
	}
	for deadline := time.Now().Add(20 * time.Second); b.Environments().Stats().Busy < 2; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the two held invocations did not start on the node to cut off")
		}
	}
	// The reservation is full: the other node throttles.
	if _, err := a.invoke(t, "held", `{}`); err == nil {
		t.Fatal("a third invocation ran under a reservation of 2")
	}
	cut := time.Now()
	proxy.Cut()
	var last time.Time
	for range 2 {
		select {
		case at := <-ended:
			last = at
		case <-time.After(2 * ttl):
			t.Fatalf("the cut-off node's invocations still run %v after the cut", 2*ttl)
		}
	}
	fenced := last.Sub(cut)
	var admitted time.Duration
	for {
		if _, err := a.invoke(t, "held", `{}`); err == nil {
			admitted = time.Since(cut)
			break
		}
		if time.Since(cut) > 4*ttl {
			t.Fatalf("the other node still throttles %v after the cut", 4*ttl)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("TTL %v: the cut-off node's invocations ended %v after the cut; the other node admitted again %v after it", ttl, fenced.Round(time.Millisecond), admitted.Round(time.Millisecond))
	if fenced >= ttl {
		t.Errorf("the cut-off node's invocations ran %v after the cut, not less than the lease's %v", fenced, ttl)
	}
	if admitted <= fenced {
		t.Errorf("the other node admitted (%v) before the cut-off node's invocations ended (%v)", admitted, fenced)
	}
}

// TestClusterReservationRemovedWhileRunning: a reservation removed while
// its invocations run on one node never lets the cluster pass the account
// limit: the unreserved pool grows at once, but the account's own pool
// still counts what runs.
func TestClusterReservationRemovedWhileRunning(t *testing.T) {
	endpoint := lambdatest.Etcd(t)
	nodes := cluster(t, endpoint, "/removed/", 2, func(o *server.Options) {
		o.AccountConcurrency, o.MinUnreserved = 6, new(0)
		o.InvocationRate = new(0)
	})
	a, b := nodes[0], nodes[1]
	a.createGo(t, "r", func(in *lambda.CreateFunctionInput) { in.Timeout = aws.Int32(120) })
	a.createGo(t, "u")
	a.reserve(t, "r", 4)
	inflight := t.TempDir()
	release := filepath.Join(t.TempDir(), "release")
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() { a.invoke(t, "r", fmt.Sprintf(`{"wait_for":%q,"inflight_dir":%q}`, release, inflight)) })
	}
	waitInHandler(t, inflight, 4)
	if _, err := a.client.DeleteFunctionConcurrency(ctx, &lambda.DeleteFunctionConcurrencyInput{FunctionName: aws.String("r")}); err != nil {
		t.Fatal(err)
	}
	// U is now 6 on every node, but 4 of L = 6 run: a storm on the other
	// node gets 2 at most, counted with the 4 inside the function.
	var mu sync.Mutex
	peak, ok := 0, 0
	var storm sync.WaitGroup
	for range 12 {
		storm.Go(func() {
			out, err := b.invoke(t, "u", fmt.Sprintf(`{"inflight_dir":%q,"sleep_ms":300}`, inflight))
			if err != nil {
				return
			}
			var ans answer
			json.Unmarshal(out.Payload, &ans)
			mu.Lock()
			peak, ok = max(peak, ans.Inflight), ok+1
			mu.Unlock()
		})
	}
	storm.Wait()
	os.WriteFile(release, nil, 0o644)
	wg.Wait()
	t.Logf("with 4 running under a removed reservation, %d of 12 more ran, peak %d at once", ok, peak)
	if peak > 6 {
		t.Errorf("%d ran at once across the cluster, account limit 6", peak)
	}
	if ok == 0 {
		t.Error("nothing more ran, though 2 of the account's 6 were free")
	}
}

// TestClusterReservationsRaceAcrossNodes: PutFunctionConcurrency calls
// racing on different nodes can never, together, push the unreserved pool
// below its minimum: each check and its write are one etcd transaction.
func TestClusterReservationsRaceAcrossNodes(t *testing.T) {
	endpoint := lambdatest.Etcd(t)
	nodes := cluster(t, endpoint, "/race/", 2, func(o *server.Options) { o.AccountConcurrency, o.MinUnreserved = 20, new(10) })
	const functions = 12
	for i := range functions {
		nodes[0].createGo(t, fmt.Sprintf("f%d", i))
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	won, refused := 0, 0
	for i := range functions {
		wg.Go(func() {
			_, err := nodes[i%2].client.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{
				FunctionName: aws.String(fmt.Sprintf("f%d", i)), ReservedConcurrentExecutions: aws.Int32(2)})
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				won++
				return
			}
			var bad *types.InvalidParameterValueException
			if !errors.As(err, &bad) {
				t.Errorf("PutFunctionConcurrency f%d: %v, want success or InvalidParameterValueException", i, err)
			}
			refused++
		})
	}
	wg.Wait()
	if won != 5 || refused != functions-5 {
		t.Errorf("%d reservations of 2 taken and %d refused, want 5 (L 20 − M 10 = 10) and %d", won, refused, functions-5)
	}
	for _, n := range nodes {
		s, err := n.client.GetAccountSettings(ctx, &lambda.GetAccountSettingsInput{})
		if err != nil {
			t.Fatal(err)
		}
		if u := aws.ToInt32(s.AccountLimit.UnreservedConcurrentExecutions); u != 10 {
			t.Errorf("UnreservedConcurrentExecutions %d on a node, want 10", u)
		}
	}
}
