package store

import "time"

var bucketCodeSigning = []byte("codesigning") // id → CodeSigningConfig

// CodeSigningConfig is an account's code signing configuration: which
// signing profiles its functions' code must come from, and what a
// deployment of other code does (Warn or Enforce).
type CodeSigningConfig struct {
	ID                string            `json:"id"` // csc-<17 hex digits>
	Description       string            `json:"description,omitempty"`
	SigningProfiles   []string          `json:"signingProfiles"` // AllowedPublishers.SigningProfileVersionArns
	UntrustedArtifact string            `json:"untrustedArtifact"`
	LastModified      time.Time         `json:"lastModified"`
	Tags              map[string]string `json:"tags,omitempty"`
}

// CodeSigningConfig reads one, or ErrNotFound.
func (t *Tx) CodeSigningConfig(id string) (*CodeSigningConfig, error) {
	b, err := t.read(bucketCodeSigning)
	if err != nil {
		return nil, err
	}
	return get[CodeSigningConfig](b, []byte(id))
}

// PutCodeSigningConfig creates or replaces one.
func (t *Tx) PutCodeSigningConfig(c *CodeSigningConfig) error {
	b, err := t.write(bucketCodeSigning)
	if err != nil {
		return err
	}
	return put(b, []byte(c.ID), c)
}

// DeleteCodeSigningConfig removes one.
func (t *Tx) DeleteCodeSigningConfig(id string) error {
	b, err := t.write(bucketCodeSigning)
	if err != nil {
		return err
	}
	return b.Delete([]byte(id))
}

// CodeSigningConfigs lists the account's configurations in id order after
// the id after ("" for the first), at most limit of them.
func (t *Tx) CodeSigningConfigs(after string, limit int) ([]*CodeSigningConfig, error) {
	b, err := t.read(bucketCodeSigning)
	if err != nil {
		return nil, err
	}
	var from []byte
	if after != "" {
		from = []byte(after)
	}
	return scan[CodeSigningConfig](b, nil, from, limit)
}
