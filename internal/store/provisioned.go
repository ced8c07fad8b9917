package store

import "time"

var bucketProvisioned = []byte("provisioned") // name \x00 qualifier → ProvisionedConfig

// ProvisionedConfig is a provisioned-concurrency request on a version or
// alias. What is allocated and ready at a moment is live state kept by the
// provisioner, not stored.
type ProvisionedConfig struct {
	Function     string    `json:"function"`
	Qualifier    string    `json:"qualifier"`
	Requested    int       `json:"requested"`
	LastModified time.Time `json:"lastModified"`
}

// ProvisionedConfig reads one.
func (t *Tx) ProvisionedConfig(name, qualifier string) (*ProvisionedConfig, error) {
	b, err := t.read(bucketProvisioned)
	if err != nil {
		return nil, err
	}
	return get[ProvisionedConfig](b, configKey(name, qualifier))
}

// ProvisionedConfigs lists a function's configs in qualifier order ("" for
// every function's).
func (t *Tx) ProvisionedConfigs(name string) ([]*ProvisionedConfig, error) {
	var prefix []byte
	if name != "" {
		prefix = append([]byte(name), 0)
	}
	b, err := t.read(bucketProvisioned)
	if err != nil {
		return nil, err
	}
	return scan[ProvisionedConfig](b, prefix, nil, -1)
}

// PutProvisionedConfig stores a config whose qualifier names version now.
// The caller keeps the function record's Provisioned total in step (in the
// same transaction).
func (t *Tx) PutProvisionedConfig(p *ProvisionedConfig, version string) error {
	b, err := t.write(bucketProvisioned)
	if err != nil {
		return err
	}
	if err := put(b, configKey(p.Function, p.Qualifier), p); err != nil {
		return err
	}
	return t.record(Change{Kind: KindProvisioned, Function: p.Function, Key: p.Qualifier, Provisioned: clone(p), ProvisionedVersion: version})
}

// DeleteProvisionedConfig removes one.
func (t *Tx) DeleteProvisionedConfig(name, qualifier string) error {
	b, err := t.write(bucketProvisioned)
	if err != nil {
		return err
	}
	if err := b.Delete(configKey(name, qualifier)); err != nil {
		return err
	}
	return t.record(Change{Kind: KindProvisioned, Function: name, Key: qualifier})
}
