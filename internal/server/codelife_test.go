package server_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/lambdad/lambdad/internal/lambdatest"
	"github.com/lambdad/lambdad/internal/server"
)

// codeModel is what the test expects the server to hold: for each function,
// which archive each of its versions runs.
type codeModel struct {
	fns map[string]*fnModel
}

type fnModel struct {
	versions map[string]int // "$LATEST" or a number → archive index
	last     int            // the last version number published
	// fresh reports that $LATEST is unchanged since version last, so
	// PublishVersion answers that version instead of making one.
	fresh bool
}

// codeArchives builds n archives of the test function, each with a marker
// file of its own, so every archive has its own CodeSha256.
func codeArchives(t *testing.T, n int) (zips [][]byte, shas []string) {
	for i := range n {
		z := lambdatest.GoFunctionWith(t, map[string]string{"marker.txt": fmt.Sprint("archive-", i)})
		h := sha256.Sum256(z)
		zips = append(zips, z)
		shas = append(shas, base64.StdEncoding.EncodeToString(h[:]))
	}
	return zips, shas
}

// check verifies every function and version against the model: its
// configuration names the right code, the code downloads from
// Code.Location with that hash, and (for the functions in invoke, or all
// when invokeAll) an invocation runs that very archive. Last, the data
// directory holds exactly the archives the model refers to.
func (m *codeModel) check(t *testing.T, n *node, shas []string, invoke map[string]bool, invokeAll bool) {
	t.Helper()
	want := map[string]bool{}
	for name, f := range m.fns {
		for v, idx := range f.versions {
			want[shas[idx]] = true
			q := aws.String(v)
			got, err := n.client.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(name), Qualifier: q})
			if err != nil {
				t.Fatalf("GetFunction(%s:%s): %v", name, v, err)
			}
			if s := aws.ToString(got.Configuration.CodeSha256); s != shas[idx] {
				t.Fatalf("%s:%s has code %s, want archive %d (%s)", name, v, s, idx, shas[idx])
			}
			res := lambdatest.Do(t, "GET", aws.ToString(got.Code.Location), nil, nil)
			h := sha256.Sum256(res.Body)
			if res.Status != 200 || base64.StdEncoding.EncodeToString(h[:]) != shas[idx] {
				t.Fatalf("download of %s:%s: status %d, %d bytes", name, v, res.Status, len(res.Body))
			}
			if !invokeAll && !invoke[name] {
				continue
			}
			out, err := n.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(name), Qualifier: q, Payload: []byte(`{"file":"marker.txt"}`)})
			if err != nil {
				t.Fatalf("Invoke(%s:%s): %v", name, v, err)
			}
			var a struct{ Blob, Version string }
			json.Unmarshal(out.Payload, &a)
			if out.FunctionError != nil || a.Blob != fmt.Sprint("archive-", idx) || a.Version != v {
				t.Fatalf("Invoke(%s:%s) ran %q version %q (error %q), want archive-%d", name, v, a.Blob, a.Version, aws.ToString(out.FunctionError), idx)
			}
		}
	}
	files, _ := filepath.Glob(filepath.Join(n.dir, "code", "*.zip"))
	if len(files) != len(want) {
		t.Fatalf("data directory holds %d archives, the functions refer to %d: %v", len(files), len(want), files)
	}
	// An unpacked tree may outlive its archive only while an environment
	// still runs in it; right after a start none does.
	if invokeAll {
		trees, _ := os.ReadDir(filepath.Join(n.dir, "unpacked"))
		referenced := map[string]bool{}
		for sha := range want {
			raw, _ := base64.StdEncoding.DecodeString(sha)
			referenced[hex.EncodeToString(raw)] = true
		}
		for _, e := range trees {
			if !referenced[e.Name()] {
				t.Fatalf("unpacked %s has no archive the functions refer to", e.Name())
			}
		}
	}
}

// TestCodeLivesExactlyAsLongAsItsReferences drives random sequences of the
// operations that create, replace, copy and drop code, over functions that
// share and do not share archives, and after every step checks that every
// function and version can be downloaded (and invoked) with its own code
// and that no archive is left that nothing refers to; every few steps the
// server is restarted on the same data directory and everything is checked
// again, invocations included.
func TestCodeLivesExactlyAsLongAsItsReferences(t *testing.T) {
	zips, shas := codeArchives(t, 4)
	steps := 60
	if os.Getenv("LAMBDAD_SOAK") != "" {
		steps = 400
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 0))
	dir := t.TempDir()
	n := start(t, server.Options{DataDir: dir})
	m := &codeModel{fns: map[string]*fnModel{}}
	names := []string{"f0", "f1", "f2"}

	for step := range steps {
		name := names[r.IntN(len(names))]
		f := m.fns[name]
		idx := r.IntN(len(zips))
		publish := r.IntN(3) == 0
		var op string
		var err error
		switch k := r.IntN(6); {
		case f == nil:
			op = fmt.Sprintf("CreateFunction(%s, archive %d, publish %v)", name, idx, publish)
			in := goFunctionInput(t, name)
			in.Code.ZipFile, in.Publish = zips[idx], publish
			_, err = n.client.CreateFunction(ctx, in)
			f = &fnModel{versions: map[string]int{"$LATEST": idx}}
			m.fns[name] = f
			if publish {
				f.last++
				f.versions["1"] = idx
			}
			f.fresh = publish
		case k == 0:
			op = fmt.Sprintf("UpdateFunctionCode(%s, archive %d, publish %v)", name, idx, publish)
			_, err = n.client.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String(name), ZipFile: zips[idx], Publish: publish})
			f.versions["$LATEST"] = idx
			if publish {
				f.last++
				f.versions[strconv.Itoa(f.last)] = idx
			}
			f.fresh = publish
		case k == 1 || k == 2:
			op = fmt.Sprintf("UpdateFunctionConfiguration(%s)", name)
			_, err = n.client.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String(name), Timeout: aws.Int32(int32(3 + step%10))})
			f.fresh = false
		case k == 3:
			op = fmt.Sprintf("PublishVersion(%s)", name)
			_, err = n.client.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String(name)})
			if !f.fresh {
				f.last++
				f.versions[strconv.Itoa(f.last)] = f.versions["$LATEST"]
				f.fresh = true
			}
		case k == 4 && len(f.versions) > 1:
			var vs []string
			for v := range f.versions {
				if v != "$LATEST" {
					vs = append(vs, v)
				}
			}
			slices.Sort(vs)
			v := vs[r.IntN(len(vs))]
			op = fmt.Sprintf("DeleteFunction(%s:%s)", name, v)
			_, err = n.client.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String(name), Qualifier: aws.String(v)})
			delete(f.versions, v)
			if v == strconv.Itoa(f.last) {
				f.fresh = false
			}
		default:
			op = fmt.Sprintf("DeleteFunction(%s)", name)
			_, err = n.client.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String(name)})
			delete(m.fns, name)
		}
		if err != nil {
			t.Fatalf("step %d: %s: %v", step, op, err)
		}
		t.Logf("step %d: %s", step, op)
		// Invoke only now and then, so that many versions are updated
		// before anything ever ran them (nothing unpacked yet).
		m.check(t, n, shas, map[string]bool{name: r.IntN(4) == 0}, false)
		if step%20 == 19 || step == steps-1 {
			if err := n.Close(ctx); err != nil {
				t.Fatal(err)
			}
			n = start(t, server.Options{DataDir: dir})
			m.check(t, n, shas, nil, true)
		}
	}
}

// TestCreateRacingDeleteOfSameCode deletes the only function holding an
// archive while another function is created with the same archive; the new
// function must keep its code, through a restart.
func TestCreateRacingDeleteOfSameCode(t *testing.T) {
	zips, shas := codeArchives(t, 6)
	dir := t.TempDir()
	n := start(t, server.Options{DataDir: dir})
	m := &codeModel{fns: map[string]*fnModel{}}
	for i := range zips {
		a, b := fmt.Sprint("a", i), fmt.Sprint("b", i)
		in := goFunctionInput(t, a)
		in.Code.ZipFile = zips[i]
		if _, err := n.client.CreateFunction(ctx, in); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		wg.Go(func() {
			if _, err := n.client.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String(a)}); err != nil {
				t.Error(err)
			}
		})
		wg.Go(func() {
			in := goFunctionInput(t, b)
			in.Code = &types.FunctionCode{ZipFile: zips[i]}
			if _, err := n.client.CreateFunction(ctx, in); err != nil {
				t.Error(err)
			}
		})
		wg.Wait()
		m.fns[b] = &fnModel{versions: map[string]int{"$LATEST": i}}
		m.check(t, n, shas, nil, false)
	}
	n.Close(ctx)
	n = start(t, server.Options{DataDir: dir})
	m.check(t, n, shas, nil, true)
}
