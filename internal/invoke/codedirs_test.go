package invoke

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
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
	db, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	saved, err := db.SaveCode(sha, zip)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *store.Tx) error {
		tx = tx.In("123456789012")
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

	// What Invoke does: a spec that names its code; the environment it
	// starts asks the store for the tree and holds it.
	spec := &execenv.Spec{Function: "f", Runtime: "provided.al2023", Handler: "bootstrap",
		Revision: "r1", Code: db, CodeSHA: sha}
	dir := filepath.Join(filepath.Dir(filepath.Dir(db.CodePath(sha))), "unpacked", filepath.Base(strings.TrimSuffix(db.CodePath(sha), ".zip")))
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
	if _, err := os.Stat(filepath.Join(dir, "marker.txt")); err != nil {
		t.Fatalf("the tree is not where the store keeps trees: %v", err)
	}

	if err := db.Update(func(tx *store.Tx) error { return tx.In("123456789012").DeleteFunction("f") }); err != nil {
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

	envs.Retire(function.Key{Name: "f"})
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

// TestStartWithoutCodeFails: an environment whose code is gone is not
// started, and the error says the code is not found.
func TestStartWithoutCodeFails(t *testing.T) {
	db, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	envs, err := execenv.NewManager(execenv.Config{TempRoot: t.TempDir(), Logger: lambdatest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer envs.Close()
	spec := &execenv.Spec{Function: "f", Runtime: "provided.al2023", Handler: "bootstrap", Revision: "r1", Code: db, CodeSHA: "bm9uZQ=="}
	_, err = envs.Invoke(context.Background(), spec, &execenv.Request{RequestID: "00000000-0000-4000-8000-000000000001", Payload: []byte("{}")})
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Invoke = %v, want store.ErrNotFound", err)
	}
	if st := envs.Stats(); st.Started != 0 {
		t.Fatalf("an environment started without code: %+v", st)
	}
}
