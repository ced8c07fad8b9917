package server_test

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/lambdad/lambdad/internal/server"
)

// desired is what a node's in-memory owners hold of the stored settings:
// admission's reservations and configured provisioned concurrency, and
// the provisioner's targets (what each should run, not how far along it
// is).
type desired struct {
	Reserved    map[string]int
	Configured  map[string]int // function:target → n
	Provisioned map[string]string
}

func desiredOf(n *node) desired {
	d := desired{Reserved: map[string]int{}, Configured: map[string]int{}, Provisioned: map[string]string{}}
	for _, f := range n.Admission().Snapshot().Functions {
		if f.HasReserved {
			d.Reserved[f.Name] = f.Reserved
		}
		for _, t := range f.Targets {
			if t.Configured > 0 {
				d.Configured[f.Name+":"+t.Target] = t.Configured
			}
		}
	}
	for _, t := range n.Provisioner().Targets() {
		d.Provisioned[t.Function+":"+t.Qualifier] = fmt.Sprintf("version %s × %d", t.Version, t.Requested)
	}
	return d
}

// TestOwnersMatchTheStoreAfterRacingWrites runs the writes that change
// concurrency settings from several clients at once (alias moves racing
// provisioned-concurrency puts and deletes, reservations put and removed),
// then checks that what admission and the provisioner hold is exactly what
// a server started afresh on the same data loads from the store. Before the
// change feed, an alias move could re-provision a config deleted in
// between, and the provisioner kept a target nobody had.
func TestOwnersMatchTheStoreAfterRacingWrites(t *testing.T) {
	dir := t.TempDir()
	n := start(t, server.Options{DataDir: dir})
	fns := []string{"a", "b"}
	for _, fn := range fns {
		n.createGo(t, fn, func(in *lambda.CreateFunctionInput) { in.Publish = true })
		if _, err := n.client.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String(fn), Timeout: aws.Int32(5)}); err != nil {
			t.Fatal(err)
		}
		if _, err := n.client.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String(fn)}); err != nil {
			t.Fatal(err)
		}
		if _, err := n.client.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String(fn), Name: aws.String("live"), FunctionVersion: aws.String("1")}); err != nil {
			t.Fatal(err)
		}
	}
	rounds := 40
	var wg sync.WaitGroup
	for w := range 4 {
		r := rand.New(rand.NewPCG(uint64(w), 7))
		wg.Go(func() {
			for range rounds {
				fn := aws.String(fns[r.IntN(len(fns))])
				// Errors are expected (conflicts, limits); what matters is
				// that whatever was committed is what the owners hold.
				switch r.IntN(5) {
				case 0:
					n.client.UpdateAlias(ctx, &lambda.UpdateAliasInput{FunctionName: fn, Name: aws.String("live"), FunctionVersion: aws.String(fmt.Sprint(1 + r.IntN(2)))})
				case 1:
					n.client.PutProvisionedConcurrencyConfig(ctx, &lambda.PutProvisionedConcurrencyConfigInput{FunctionName: fn, Qualifier: aws.String("live"), ProvisionedConcurrentExecutions: aws.Int32(int32(1 + r.IntN(2)))})
				case 2:
					n.client.DeleteProvisionedConcurrencyConfig(ctx, &lambda.DeleteProvisionedConcurrencyConfigInput{FunctionName: fn, Qualifier: aws.String("live")})
				case 3:
					n.client.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: fn, ReservedConcurrentExecutions: aws.Int32(int32(2 + r.IntN(5)))})
				case 4:
					n.client.DeleteFunctionConcurrency(ctx, &lambda.DeleteFunctionConcurrencyInput{FunctionName: fn})
				}
			}
		})
	}
	wg.Wait()
	got := desiredOf(n)
	if err := n.Close(ctx); err != nil {
		t.Fatal(err)
	}
	fresh := start(t, server.Options{DataDir: dir})
	if want := desiredOf(fresh); !reflect.DeepEqual(got, want) {
		t.Fatalf("after racing writes the owners hold\n%+v\nbut the store says\n%+v", got, want)
	}
}
