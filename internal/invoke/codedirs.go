package invoke

import (
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"sync"

	"github.com/lambdad/lambdad/internal/archive"
)

// CodeReader reads a code archive by its CodeSha256.
type CodeReader interface {
	Code(sha string) ([]byte, error)
}

// CodeDirs unpacks each code archive once, into a directory of its own
// named by its hash, and hands that directory to every environment that
// runs the code. The directories are a cache: they are made again after a
// restart.
type CodeDirs struct {
	root   string
	reader CodeReader

	mu sync.Mutex // guards the following fields
	// done maps a CodeSha256 to its unpacked directory.
	done map[string]string
	// busy holds one lock per archive being unpacked, so that concurrent
	// cold starts of the same code unpack it once.
	busy map[string]*sync.Mutex
}

// NewCodeDirs returns a cache under root, emptied first.
func NewCodeDirs(root string, reader CodeReader) (*CodeDirs, error) {
	if err := os.RemoveAll(root); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, err
	}
	return &CodeDirs{root: root, reader: reader, done: map[string]string{}, busy: map[string]*sync.Mutex{}}, nil
}

// Dir returns the unpacked directory of an archive, unpacking it if needed.
func (c *CodeDirs) Dir(sha string) (string, error) {
	c.mu.Lock()
	if d, ok := c.done[sha]; ok {
		c.mu.Unlock()
		return d, nil
	}
	lock := c.busy[sha]
	if lock == nil {
		lock = new(sync.Mutex)
		c.busy[sha] = lock
	}
	c.mu.Unlock()

	lock.Lock()
	defer lock.Unlock()
	c.mu.Lock()
	d, ok := c.done[sha]
	c.mu.Unlock()
	if ok {
		return d, nil
	}
	raw, _ := base64.StdEncoding.DecodeString(sha)
	dir := filepath.Join(c.root, hex.EncodeToString(raw))
	zip, err := c.reader.Code(sha)
	if err != nil {
		return "", err
	}
	os.RemoveAll(dir)
	if err := archive.Unpack(zip, dir, archive.MaxUnzipped); err != nil {
		return "", err
	}
	c.mu.Lock()
	c.done[sha] = dir
	delete(c.busy, sha)
	c.mu.Unlock()
	return dir, nil
}
