package invoke

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lambdad/lambdad/internal/execenv"
	"github.com/lambdad/lambdad/internal/function"
	"github.com/lambdad/lambdad/internal/lambdatest"
	"github.com/lambdad/lambdad/internal/store"
)

// TestEnvironmentHoldsItsCode runs a real environment of a real archive
// through a real execenv.Manager with the Spec.Hold the invoker gives it:
// after its function is deleted, the archive goes at once, the tree stays
// for as long as the environment lives (a warm invocation still reads its
// files), and goes when the environment stops.
func TestEnvironmentHoldsItsCode(t *testing.T) {
	zip := lambdatest.GoFunctionWith(t, map[string]string{"marker.txt": "held"})
	h := sha256.Sum256(zip)
	sha := base64.StdEncoding.EncodeToString(h[:])
	db, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	saved, err := db.SaveCode(sha, zip)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *store.Tx) error {
		if err := tx.PutVersion(&function.Config{Name: "f", Version: function.Latest, CodeSha256: sha, CodeSize: int64(len(zip))}); err != nil {
			return err
		}
		return tx.PutFunction(&function.Function{Name: "f"})
	})
	saved()
	if err != nil {
		t.Fatal(err)
	}
	envs, err := execenv.NewManager(execenv.Config{TempRoot: t.TempDir(), Logger: lambdatest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer envs.Close()

	// What Invoke does: hold the code for the call, start the environment
	// with a spec whose Hold takes the environment's own hold.
	dir, release, err := db.CodeDir(sha)
	if err != nil {
		t.Fatal(err)
	}
	spec := &execenv.Spec{Function: "f", Runtime: "provided.al2023", Handler: "bootstrap", CodeDir: dir,
		Revision: "r1", Hold: holdCode(db, sha)}
	invoke := func(payload string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		res, err := envs.Invoke(ctx, spec, &execenv.Request{RequestID: "00000000-0000-4000-8000-000000000001", Payload: []byte(payload)})
		if err != nil {
			t.Fatal(err)
		}
		var a struct{ Blob string }
		json.Unmarshal(res.Payload, &a)
		if res.FunctionError != "" {
			t.Fatalf("function error: %s", res.Payload)
		}
		return a.Blob
	}
	if got := invoke(`{"file":"marker.txt"}`); got != "held" {
		t.Fatalf("first invocation read %q", got)
	}
	release()

	if err := db.Update(func(tx *store.Tx) error { return tx.DeleteFunction("f") }); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(db.CodePath(sha)); !os.IsNotExist(err) {
		t.Fatalf("the archive outlived its function: %v", err)
	}
	// The idle environment still holds the tree: its process may read
	// any of its files yet.
	if got := invoke(`{"file":"marker.txt"}`); got != "held" {
		t.Fatalf("an environment of the deleted function read %q", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "bootstrap")); err != nil {
		t.Fatalf("the tree went while an environment ran in it: %v", err)
	}

	envs.Retire("f")
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Lstat(dir); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the tree outlived the environment: %v", envs.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if st := envs.Stats(); st.Idle+st.Busy != 0 {
		t.Fatalf("environments left: %+v", st)
	}
}

// TestHoldCodeOfMissingCode: a hold of code that is gone does nothing, and
// its release may be called.
func TestHoldCodeOfMissingCode(t *testing.T) {
	db, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	release := holdCode(db, "bm9uZQ==")()
	release()
}
