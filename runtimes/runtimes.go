// Package runtimes holds the bootstrap programs lambdad runs for the
// interpreted runtimes (python3.x, nodejs*): small standard-library-only
// implementations of the Lambda Runtime API loop that load the handler named
// by _HANDLER from LAMBDA_TASK_ROOT.
package runtimes

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// FS holds python/bootstrap.py and node/bootstrap.js.
//
//go:embed python/* node/*
var FS embed.FS

// Bootstrap scripts inside FS (and inside a directory written by Extract).
const (
	Python = "python/bootstrap.py"
	Node   = "node/bootstrap.js"
)

// Extract writes every file of FS under dir, keeping the layout, readable
// by everyone and writable by no one, so function code cannot alter the
// runtime another environment is about to start.
func Extract(dir string) error {
	return fs.WalkDir(FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		target := filepath.Join(dir, filepath.FromSlash(path))
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := FS.ReadFile(path)
		if err != nil {
			return err
		}
		if err := os.WriteFile(target, b, 0o444); err != nil {
			return fmt.Errorf("runtimes: %w", err)
		}
		return nil
	})
}
