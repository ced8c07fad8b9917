package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/lambdad/lambdad/internal/function"
)

// archives lists the archives on disk by CodeSha256.
func archives(t *testing.T, db *DB) []string {
	t.Helper()
	var shas []string
	err := db.View(func(tx *Tx) error {
		tx = tx.In(testAccount)
		return tx.tx.Bucket(bucketCodeRefs).ForEach(func(k, _ []byte) error {
			if _, err := os.Stat(db.CodePath(string(k))); err != nil {
				return fmt.Errorf("code %s is referenced but its file is gone: %w", k, err)
			}
			shas = append(shas, string(k))
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(db.code.dir, "*.zip"))
	if len(files) != len(shas) {
		t.Fatalf("%d archives on disk, %d referenced: %v", len(files), len(shas), files)
	}
	slices.Sort(shas)
	return shas
}

func update(t *testing.T, db *DB, fn func(*Tx) error) {
	t.Helper()
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
}

// TestRewriteWithSameCodeKeepsIt replaces a configuration by one holding
// the same, unshared code (what UpdateFunctionConfiguration does), and
// copies it (PublishVersion): the archive must survive both, and a reopen.
func TestRewriteWithSameCodeKeepsIt(t *testing.T) {
	dir := t.TempDir()
	db := open(t, dir)
	code := []byte("only this function's code")
	addFunction(t, db, "x", code, nil)
	update(t, db, func(tx *Tx) error {
		tx = tx.In(testAccount)
		c, err := tx.Version("x", function.Latest)
		if err != nil {
			return err
		}
		c.Timeout = 9
		return tx.PutVersion(c)
	})
	if _, err := db.Code(shaOf(code)); err != nil {
		t.Fatalf("a configuration update lost the code: %v", err)
	}
	update(t, db, func(tx *Tx) error {
		tx = tx.In(testAccount)
		c, err := tx.Version("x", function.Latest)
		if err != nil {
			return err
		}
		c.Version = "1"
		return tx.PutVersion(c)
	})
	db.Close()
	db = open(t, dir)
	defer db.Close()
	if got := archives(t, db); len(got) != 1 || got[0] != shaOf(code) {
		t.Fatalf("archives after reopen: %v", got)
	}
	// Dropping one of the two records keeps the code for the other.
	update(t, db, func(tx *Tx) error { tx = tx.In(testAccount); return tx.DeleteVersion("x", "1") })
	if _, err := db.Code(shaOf(code)); err != nil {
		t.Fatalf("code still held by $LATEST is gone: %v", err)
	}
}

// TestReleaseCollectsUnusedUpload: an upload whose transaction failed is
// removed as soon as it is released, not only at the next Open.
func TestReleaseCollectsUnusedUpload(t *testing.T) {
	db := open(t, t.TempDir())
	defer db.Close()
	code := []byte("refused")
	release, err := db.SaveCode(shaOf(code), code)
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err = db.Update(func(tx *Tx) error {
		tx = tx.In(testAccount)
		if err := tx.PutVersion(&function.Config{Name: "y", Version: function.Latest, CodeSha256: shaOf(code)}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if _, err := db.Code(shaOf(code)); err != nil {
		t.Fatalf("a pinned upload was removed: %v", err)
	}
	release()
	release() // idempotent
	if _, err := db.Code(shaOf(code)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("an unreferenced upload outlived its release: %v", err)
	}
}

// TestDeleteRacingCreateOfSameCode deletes the only holder of an archive
// while another writer uploads the same archive for a new function. Before
// archives were pinned, the upload saw the file still there and skipped it,
// then the delete's commit removed it, leaving the new function with no
// code.
func TestDeleteRacingCreateOfSameCode(t *testing.T) {
	db := open(t, t.TempDir())
	defer db.Close()
	for i := range 200 {
		code := fmt.Appendf(nil, "shared %d", i)
		sha := shaOf(code)
		a, b := fmt.Sprint("a", i), fmt.Sprint("b", i)
		addFunction(t, db, a, code, nil)
		var wg sync.WaitGroup
		wg.Go(func() {
			if err := db.Update(func(tx *Tx) error { tx = tx.In(testAccount); return tx.DeleteFunction(a) }); err != nil {
				t.Error(err)
			}
		})
		wg.Go(func() {
			release, err := db.SaveCode(sha, code)
			if err != nil {
				t.Error(err)
				return
			}
			defer release()
			err = db.Update(func(tx *Tx) error {
				tx = tx.In(testAccount)
				if err := tx.PutVersion(&function.Config{Name: b, Version: function.Latest, CodeSha256: sha}); err != nil {
					return err
				}
				return tx.PutFunction(&function.Function{Name: b})
			})
			if err != nil {
				t.Error(err)
			}
		})
		wg.Wait()
		if _, err := db.Code(sha); err != nil {
			t.Fatalf("round %d: %s has no code: %v", i, b, err)
		}
		update(t, db, func(tx *Tx) error { tx = tx.In(testAccount); return tx.DeleteFunction(b) })
	}
	if got := archives(t, db); len(got) != 0 {
		t.Fatalf("archives left with nothing referring to them: %v", got)
	}
}
