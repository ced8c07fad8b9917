package store

import (
	"encoding/binary"
	"errors"

	"github.com/lambdad/lambdad/internal/function"
)

// Layers are an account's records like functions: one record per layer
// (its highest version number, which is never reused) and one per
// version. A version holds its archive by one code reference, as a
// function version does; a function configuration that uses a layer holds
// one more (PutVersion), so the archive lives as long as the layer version
// or any configuration using it, whichever goes last.
var (
	bucketLayers        = []byte("layers")        // name → function.Layer
	bucketLayerVersions = []byte("layerversions") // name \x00 version (big endian) → function.LayerVersion
)

func layerVersionKey(name string, version int64) []byte {
	return binary.BigEndian.AppendUint64(append([]byte(name), 0), uint64(version))
}

// Layer returns a layer's record, or ErrNotFound.
func (t *Tx) Layer(name string) (*function.Layer, error) {
	b, err := t.read(bucketLayers)
	if err != nil {
		return nil, err
	}
	return get[function.Layer](b, []byte(name))
}

// PutLayer creates or replaces a layer's record.
func (t *Tx) PutLayer(l *function.Layer) error {
	b, err := t.write(bucketLayers)
	if err != nil {
		return err
	}
	return put(b, []byte(l.Name), l)
}

// Layers lists layer records in name order after the name after, at most
// limit of them (limit < 0: all).
func (t *Tx) Layers(after string, limit int) ([]*function.Layer, error) {
	var from []byte
	if after != "" {
		from = []byte(after)
	}
	b, err := t.read(bucketLayers)
	if err != nil {
		return nil, err
	}
	return scan[function.Layer](b, nil, from, limit)
}

// LayerVersion returns one version of a layer, or ErrNotFound.
func (t *Tx) LayerVersion(name string, version int64) (*function.LayerVersion, error) {
	b, err := t.read(bucketLayerVersions)
	if err != nil {
		return nil, err
	}
	return get[function.LayerVersion](b, layerVersionKey(name, version))
}

// PutLayerVersion stores a new layer version and takes its code reference.
// Layer versions are immutable: storing one that exists is an error.
func (t *Tx) PutLayerVersion(v *function.LayerVersion) error {
	b, err := t.write(bucketLayerVersions)
	if err != nil {
		return err
	}
	key := layerVersionKey(v.Name, v.Version)
	if b.Get(key) != nil {
		return errors.New("store: layer version exists")
	}
	if err := t.addCodeRef(v.CodeSha256); err != nil {
		return err
	}
	return put(b, key, v)
}

// DeleteLayerVersion removes one layer version and drops its code
// reference; configurations using it keep theirs.
func (t *Tx) DeleteLayerVersion(name string, version int64) error {
	b, err := t.write(bucketLayerVersions)
	if err != nil {
		return err
	}
	key := layerVersionKey(name, version)
	old, err := get[function.LayerVersion](b, key)
	if err != nil {
		return err
	}
	if err := t.dropCode(old.CodeSha256, "layer "+name); err != nil {
		return err
	}
	return b.Delete(key)
}

// LayerVersions lists a layer's versions, newest first as AWS lists them,
// starting below version before (0: from the newest), at most limit of
// them (limit < 0: all).
func (t *Tx) LayerVersions(name string, before int64, limit int) ([]*function.LayerVersion, error) {
	b, err := t.read(bucketLayerVersions)
	if b == nil || err != nil {
		return nil, err
	}
	prefix := append([]byte(name), 0)
	var out []*function.LayerVersion
	c := b.Cursor()
	var k, v []byte
	if before == 0 {
		// The key after every version of name is name \x01.
		k, v = c.Seek(append([]byte(name), 1))
		if k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
	} else {
		c.Seek(layerVersionKey(name, before))
		k, v = c.Prev()
	}
	for ; k != nil && len(k) == len(prefix)+8 && string(k[:len(prefix)]) == string(prefix) && (limit < 0 || len(out) < limit); k, v = c.Prev() {
		lv := new(function.LayerVersion)
		if err := unmarshal(k, v, lv); err != nil {
			return nil, err
		}
		out = append(out, lv)
	}
	return out, nil
}
