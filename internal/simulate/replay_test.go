package simulate

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/lambdad/lambdad/internal/awserr"
	"github.com/lambdad/lambdad/internal/lambdatest"
	"github.com/lambdad/lambdad/internal/server"
)

// TestReplayAgreesWithSimulation replays a small trace against a live
// server and checks that the throttles it meets are those the simulation
// predicts: calls of hundreds of milliseconds, spaced so that no
// admission is decided by a few milliseconds of timing noise.
func TestReplayAgreesWithSimulation(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server and runs functions")
	}
	min := 5
	node, err := server.Start(server.Options{Listen: "127.0.0.1:0", DataDir: t.TempDir(), AccountConcurrency: 10, MinUnreserved: &min, Logger: lambdatest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Close(context.Background()) })
	// a reserved 2: three overlapping calls, one throttled, twice.
	// b and c share U = 10 − 2 − 3 = 5: six overlapping, one throttled.
	// d reserved 3 takes its three.
	var b strings.Builder
	b.WriteString("timestamp_ms,function,duration_ms\n")
	for _, at := range []int{0, 1200} {
		for i := 0; i < 3; i++ {
			fmt.Fprintf(&b, "%d,a,700\n", at+i*60)
		}
	}
	for i := 0; i < 6; i++ {
		fn := "b"
		if i%2 == 1 {
			fn = "c"
		}
		fmt.Fprintf(&b, "%d,%s,700\n", 300+i*60, fn)
	}
	for i := 0; i < 3; i++ {
		fmt.Fprintf(&b, "%d,d,500\n", 700+i*60)
	}
	trace := b.String()
	// The trace is in time order once sorted by timestamp.
	lines := strings.Split(strings.TrimSpace(trace), "\n")
	body := lines[1:]
	sort.SliceStable(body, func(i, j int) bool { return atOf(body[i]) < atOf(body[j]) })
	trace = lines[0] + "\n" + strings.Join(body, "\n") + "\n"

	p := plan(t, `{"account_limit": 10, "min_unreserved": 5, "functions": {"a": {"reserved": 2}, "d": {"reserved": 3}}}`)
	sim, err := RunReader(p, strings.NewReader(trace), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !sim.PlanValid {
		t.Fatalf("problems %q", sim.Problems)
	}

	client := ClientFromEnv(node.URL())
	client.AccessKeyID = ""
	ctx := context.Background()
	if err := client.Prepare(ctx, []string{"a", "b", "c", "d"}, lambdatest.GoFunction(t), p); err != nil {
		t.Fatal(err)
	}
	// Warm each function once, so that cold starts do not stretch the
	// replayed calls, and give the environments time to go idle.
	for _, fn := range []string{"a", "b", "c", "d"} {
		if err := client.Invoke(ctx, fn, "", []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := client.Replay(ctx, strings.NewReader(trace), ReplayOptions{MaxDuration: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Problems) > 0 {
		t.Fatalf("replay problems: %q", got.Problems)
	}
	for _, name := range []string{"a", "b", "c", "d"} {
		s, r := sim.Functions[name], got.Functions[name]
		t.Logf("%s: simulated %d/%d %v, replayed %d/%d %v", name, s.Invocations, s.Throttles, s.ThrottlesByReason, r.Invocations, r.Throttles, r.ThrottlesByReason)
	}
	if sim.Functions["a"].ThrottlesByReason[awserr.ReasonReservedFunctionConcurrentInvocationLimitExceeded] != 2 ||
		sim.Functions["b"].Throttles+sim.Functions["c"].Throttles != 1 || sim.Functions["d"].Throttles != 0 {
		t.Fatalf("the simulation does not predict what the test expects")
	}
	for _, name := range []string{"a", "d"} {
		s, r := sim.Functions[name], got.Functions[name]
		if s.Invocations != r.Invocations || s.Throttles != r.Throttles || fmt.Sprint(s.ThrottlesByReason) != fmt.Sprint(r.ThrottlesByReason) {
			t.Errorf("%s: simulated %d invocations, %v; replayed %d, %v", name, s.Invocations, s.ThrottlesByReason, r.Invocations, r.ThrottlesByReason)
		}
	}
	// Which of b and c meets the full pool is a matter of order; together
	// they must agree.
	if sb, rb := sim.Functions["b"].Throttles+sim.Functions["c"].Throttles, got.Functions["b"].Throttles+got.Functions["c"].Throttles; sb != rb {
		t.Errorf("b and c: simulated %d throttles, replayed %d", sb, rb)
	}

	// The plan read back from the server is the plan applied.
	exported, err := client.Export(ctx, 5)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	WritePlan(&buf, exported)
	if *exported.AccountLimit != 10 || *exported.Functions["a"].Reserved != 2 || *exported.Functions["d"].Reserved != 3 || exported.Functions["b"].Reserved != nil {
		t.Errorf("exported %s", buf.String())
	}
	// The replay's bounds hold.
	bounded, err := client.Replay(ctx, strings.NewReader(trace), ReplayOptions{MaxCount: 4})
	if err != nil {
		t.Fatal(err)
	}
	if n := bounded.Account.Invocations + bounded.Account.Throttles; n != 4 {
		t.Errorf("max-count 4 sent %d", n)
	}
}

func atOf(line string) int {
	var at int
	fmt.Sscanf(line, "%d", &at)
	return at
}

// TestHeapOrder checks the 4-ary heap against a sort.
func TestHeapOrder(t *testing.T) {
	s := &sim{}
	var want []int64
	for i := 0; i < 5000; i++ {
		e := rand.Int64N(1000)
		want = append(want, e)
		s.push(running{end: e})
		if i%3 == 0 {
			sort.Slice(want, func(a, b int) bool { return want[a] < want[b] })
			if got := s.pop().end; got != want[0] {
				t.Fatalf("pop %d, want %d", got, want[0])
			}
			want = want[1:]
		}
	}
	sort.Slice(want, func(a, b int) bool { return want[a] < want[b] })
	for _, w := range want {
		if got := s.pop().end; got != w {
			t.Fatalf("pop %d, want %d", got, w)
		}
	}
}
