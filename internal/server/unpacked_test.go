package server_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/lambdad/lambdad/internal/lambdatest"
	"github.com/lambdad/lambdad/internal/server"
)

// treeOf is where a data directory keeps the unpacked tree of an archive.
func treeOf(dataDir string, zip []byte) string {
	h := sha256.Sum256(zip)
	return filepath.Join(dataDir, "unpacked", hex.EncodeToString(h[:]))
}

func inodeOf(t *testing.T, path string) uint64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

// readMarker invokes fn and returns the content of its marker.txt as the
// function read it.
func (n *node) readMarker(t *testing.T, fn, payload string) string {
	t.Helper()
	out, err := n.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(fn), Payload: []byte(payload)})
	if err != nil {
		t.Fatalf("invoke %s: %v", fn, err)
	}
	if out.FunctionError != nil {
		t.Fatalf("invoke %s: %s %s", fn, aws.ToString(out.FunctionError), out.Payload)
	}
	var a struct{ Blob string }
	if err := json.Unmarshal(out.Payload, &a); err != nil {
		t.Fatal(err)
	}
	return a.Blob
}

func (n *node) createWith(t *testing.T, name string, zip []byte) {
	t.Helper()
	n.createGo(t, name, func(in *lambda.CreateFunctionInput) { in.Code.ZipFile = zip })
}

func waitGone(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Lstat(path); os.IsNotExist(err) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is still there", path)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// TestRestartKeepsUnpackedCode: after a restart the first invocation runs
// in the tree unpacked before it; a tree changed while the server was down
// is unpacked again.
func TestRestartKeepsUnpackedCode(t *testing.T) {
	dir := t.TempDir()
	marker := "unpacked once, kept through restarts"
	zip := lambdatest.GoFunctionWith(t, map[string]string{"marker.txt": marker})
	n := start(t, server.Options{DataDir: dir})
	n.createWith(t, "f", zip)
	if got := n.readMarker(t, "f", `{"file":"marker.txt"}`); got != marker {
		t.Fatalf("read %q", got)
	}
	tree := treeOf(dir, zip)
	boot := inodeOf(t, filepath.Join(tree, "bootstrap"))
	if err := n.Close(ctx); err != nil {
		t.Fatal(err)
	}

	n = start(t, server.Options{DataDir: dir})
	if got := n.readMarker(t, "f", `{"file":"marker.txt"}`); got != marker {
		t.Fatalf("after a restart read %q", got)
	}
	if inodeOf(t, filepath.Join(tree, "bootstrap")) != boot {
		t.Fatal("a restart unpacked the code again")
	}
	if err := n.Close(ctx); err != nil {
		t.Fatal(err)
	}

	// Cut the marker short, as a crash or the function itself might.
	if err := os.WriteFile(filepath.Join(tree, "marker.txt"), []byte("unpacked"), 0o644); err != nil {
		t.Fatal(err)
	}
	n = start(t, server.Options{DataDir: dir})
	if got := n.readMarker(t, "f", `{"file":"marker.txt"}`); got != marker {
		t.Fatalf("a changed tree was used after a restart: read %q", got)
	}
	if inodeOf(t, filepath.Join(tree, "bootstrap")) == boot {
		t.Fatal("the changed tree was not unpacked again")
	}
	if names := listDir(t, filepath.Join(dir, "unpacked")); len(names) != 1 {
		t.Fatalf("unpacked holds %v, want the one tree", names)
	}
}

// TestDeleteWhileInvokingKeepsTree deletes a function while an invocation
// of it runs; the invocation reads its code after the delete. The archive
// goes with the delete, the tree with the environment, and two functions
// sharing an archive share one tree.
func TestDeleteWhileInvokingKeepsTree(t *testing.T) {
	dir := t.TempDir()
	marker := "read after the delete"
	zip := lambdatest.GoFunctionWith(t, map[string]string{"marker.txt": marker})
	n := start(t, server.Options{DataDir: dir})
	n.createWith(t, "a", zip)
	// b's invocation is held until the test lets it go, so its timeout
	// must outlast the slowest machine.
	n.createGo(t, "b", func(in *lambda.CreateFunctionInput) { in.Code.ZipFile = zip; in.Timeout = aws.Int32(120) })
	n.readMarker(t, "a", `{"file":"marker.txt"}`)
	n.readMarker(t, "b", `{"file":"marker.txt"}`)
	tree := treeOf(dir, zip)
	if names := listDir(t, filepath.Join(dir, "unpacked")); len(names) != 1 || names[0] != filepath.Base(tree) {
		t.Fatalf("two functions of one archive: unpacked holds %v", names)
	}
	if _, err := n.client.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("a")}); err != nil {
		t.Fatal(err)
	}

	got := make(chan string, 1)
	release := filepath.Join(t.TempDir(), "release")
	go func() {
		// Waits for the test first, then reads the file.
		got <- n.readMarker(t, "b", fmt.Sprintf(`{"wait_for":%q,"file":"marker.txt"}`, release))
	}()
	deadline := time.Now().Add(10 * time.Second)
	for n.Environments().Stats().Busy == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the invocation did not start")
		}
		time.Sleep(2 * time.Millisecond)
	}
	if _, err := n.client.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("b")}); err != nil {
		t.Fatal(err)
	}
	if names, _ := filepath.Glob(filepath.Join(dir, "code", "*.zip")); len(names) != 0 {
		t.Fatalf("archives outlived their functions: %v", names)
	}
	if _, err := os.Stat(filepath.Join(tree, "marker.txt")); err != nil {
		t.Fatalf("the tree went under a running invocation: %v", err)
	}
	if err := os.WriteFile(release, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if b := <-got; b != marker {
		t.Fatalf("the invocation read %q", b)
	}
	waitGone(t, tree)
	if names := listDir(t, filepath.Join(dir, "unpacked")); len(names) != 0 {
		t.Fatalf("unpacked holds %v after its functions were deleted", names)
	}
}
