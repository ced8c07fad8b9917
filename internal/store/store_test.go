package store

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/lambdad/lambdad/internal/function"
)

func open(t testing.TB, dir string) *DB {
	t.Helper()
	db, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func shaOf(b []byte) string {
	h := sha256.Sum256(b)
	return base64.StdEncoding.EncodeToString(h[:])
}

// addFunction stores a function with $LATEST running code.
func addFunction(t testing.TB, db *DB, name string, code []byte, reserved *int) {
	t.Helper()
	sha := shaOf(code)
	release, err := db.SaveCode(sha, code)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	err = db.Update(func(tx *Tx) error {
		tx = tx.In(testAccount)
		if err := tx.PutVersion(&function.Config{Name: name, Version: function.Latest, CodeSha256: sha, CodeSize: int64(len(code))}); err != nil {
			return err
		}
		return tx.PutFunction(&function.Function{Name: name, Reserved: reserved})
	})
	if err != nil {
		t.Fatal(err)
	}
}

func sums(t testing.TB, db *DB) Sums {
	var s Sums
	if err := db.View(func(tx *Tx) (err error) { tx = tx.In(testAccount); s, err = tx.Sums(); return err }); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSumsStayInStep(t *testing.T) {
	db := open(t, t.TempDir())
	defer db.Close()
	five, seven := 5, 7
	addFunction(t, db, "a", []byte("aaaa"), &five)
	addFunction(t, db, "b", []byte("bbbbbb"), nil)
	if got, want := sums(t, db), (Sums{FunctionCount: 2, TotalCodeSize: 10, Reserved: 5}); got != want {
		t.Fatalf("sums = %+v, want %+v", got, want)
	}
	// Publish a version of b: its code counts again, as AWS counts it.
	err := db.Update(func(tx *Tx) error {
		tx = tx.In(testAccount)
		c, err := tx.Version("b", function.Latest)
		if err != nil {
			return err
		}
		c.Version = "1"
		if err := tx.PutVersion(c); err != nil {
			return err
		}
		f, _ := tx.Function("b")
		f.Reserved = &seven
		f.LastVersion = 1
		return tx.PutFunction(f)
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sums(t, db), (Sums{FunctionCount: 2, TotalCodeSize: 16, Reserved: 12}); got != want {
		t.Fatalf("after publish: sums = %+v, want %+v", got, want)
	}
	if err := db.Update(func(tx *Tx) error { tx = tx.In(testAccount); return tx.DeleteFunction("b") }); err != nil {
		t.Fatal(err)
	}
	if got, want := sums(t, db), (Sums{FunctionCount: 1, TotalCodeSize: 4, Reserved: 5}); got != want {
		t.Fatalf("after delete: sums = %+v, want %+v", got, want)
	}
	// A failed transaction changes nothing.
	boom := errors.New("boom")
	err = db.Update(func(tx *Tx) error {
		tx = tx.In(testAccount)
		tx.PutFunction(&function.Function{Name: "c", Reserved: &seven})
		return boom
	})
	if !errors.Is(err, boom) || sums(t, db).FunctionCount != 1 {
		t.Fatalf("rolled-back write leaked into the sums: %+v", sums(t, db))
	}
}

func TestVersionsOrderAndPaging(t *testing.T) {
	db := open(t, t.TempDir())
	defer db.Close()
	addFunction(t, db, "f", []byte("x"), nil)
	addFunction(t, db, "f2", []byte("y"), nil) // a name that extends "f" must not leak into f's range
	db.Update(func(tx *Tx) error {
		tx = tx.In(testAccount)
		for _, v := range []string{"10", "2", "1"} {
			if err := tx.PutVersion(&function.Config{Name: "f", Version: v, CodeSha256: shaOf([]byte("x"))}); err != nil {
				return err
			}
		}
		return nil
	})
	var got []string
	after := ""
	for {
		var page []*function.Config
		db.View(func(tx *Tx) (err error) { tx = tx.In(testAccount); page, err = tx.Versions("f", after, 2); return err })
		if len(page) == 0 {
			break
		}
		for _, c := range page {
			got = append(got, c.Version)
		}
		after = page[len(page)-1].Version
	}
	if fmt.Sprint(got) != "[$LATEST 1 2 10]" {
		t.Fatalf("versions = %v", got)
	}
}

func TestCodeStoredOnceAndCollected(t *testing.T) {
	dir := t.TempDir()
	db := open(t, dir)
	code := []byte("shared code")
	addFunction(t, db, "a", code, nil)
	addFunction(t, db, "b", code, nil)
	files, _ := filepath.Glob(filepath.Join(dir, "code", "*.zip"))
	if len(files) != 1 {
		t.Fatalf("%d code files for one archive used twice", len(files))
	}
	// An upload whose transaction never committed (the process died
	// before it could release it) is collected on open.
	orphan := []byte("never referenced")
	if _, err := db.SaveCode(shaOf(orphan), orphan); err != nil {
		t.Fatal(err)
	}
	db.Update(func(tx *Tx) error { tx = tx.In(testAccount); return tx.DeleteFunction("a") })
	if _, err := db.Code(shaOf(code)); err != nil {
		t.Fatalf("code still used by b is gone: %v", err)
	}
	db.Update(func(tx *Tx) error { tx = tx.In(testAccount); return tx.DeleteFunction("b") })
	if _, err := os.Stat(db.CodePath(shaOf(code))); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("unreferenced code kept: %v", err)
	}
	db.Close()
	db = open(t, dir)
	defer db.Close()
	if _, err := db.Code(shaOf(orphan)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("orphan upload survived a reopen: %v", err)
	}
}

func TestReopenKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	db := open(t, dir)
	three := 3
	addFunction(t, db, "keep", []byte("code"), &three)
	db.Update(func(tx *Tx) error {
		tx = tx.In(testAccount)
		return tx.PutAlias("keep", &function.Alias{Name: "live", FunctionVersion: function.Latest})
	})
	db.Close()
	db = open(t, dir)
	defer db.Close()
	err := db.View(func(tx *Tx) error {
		tx = tx.In(testAccount)
		f, err := tx.Function("keep")
		if err != nil || *f.Reserved != 3 {
			return fmt.Errorf("function: %v %v", f, err)
		}
		if _, err := tx.Alias("keep", "live"); err != nil {
			return err
		}
		_, err = tx.Version("keep", function.Latest)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if s := sums(t, db); s.Reserved != 3 || s.FunctionCount != 1 {
		t.Fatalf("sums after reopen: %+v", s)
	}
}

func TestAuditKeepsNewestFirst(t *testing.T) {
	db := open(t, t.TempDir())
	defer db.Close()
	for i := range 5 {
		n := i
		if err := db.Update(func(tx *Tx) error {
			tx = tx.In(testAccount)
			return tx.AppendAudit(&AuditRecord{Operation: "Put", Function: "f", New: &n})
		}); err != nil {
			t.Fatal(err)
		}
	}
	var recs []*AuditRecord
	db.View(func(tx *Tx) (err error) { tx = tx.In(testAccount); recs, err = tx.Audit(0, 2); return err })
	if len(recs) != 2 || *recs[0].New != 4 || *recs[1].New != 3 {
		t.Fatalf("newest page wrong: %+v", recs)
	}
	db.View(func(tx *Tx) (err error) { tx = tx.In(testAccount); recs, err = tx.Audit(recs[1].Seq, 10); return err })
	if len(recs) != 3 || *recs[0].New != 2 {
		t.Fatalf("older page wrong: %+v", recs)
	}
}

// BenchmarkFunctionRead measures a point read at two store sizes; it must not
// grow with the number of functions.
func BenchmarkFunctionRead(b *testing.B) {
	for _, n := range []int{10, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			db := open(b, b.TempDir())
			defer db.Close()
			fill(b, db, n)
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				db.View(func(tx *Tx) error {
					tx = tx.In(testAccount)
					_, err := tx.Version(fmt.Sprintf("fn-%06d", i%n), function.Latest)
					return err
				})
			}
		})
	}
}

func fill(b *testing.B, db *DB, n int) {
	code := []byte("code")
	release, _ := db.SaveCode(shaOf(code), code)
	defer release()
	for start := 0; start < n; start += 1000 {
		db.Update(func(tx *Tx) error {
			tx = tx.In(testAccount)
			for i := start; i < min(n, start+1000); i++ {
				name := fmt.Sprintf("fn-%06d", i)
				tx.PutVersion(&function.Config{Name: name, Version: function.Latest, CodeSha256: shaOf(code), CodeSize: 4})
				tx.PutFunction(&function.Function{Name: name})
			}
			return nil
		})
	}
}

// testAccount is the account the tests' records belong to.
const testAccount = "123456789012"
