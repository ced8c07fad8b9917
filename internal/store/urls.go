package store

import (
	"errors"

	"github.com/lambdad/lambdad/internal/function"
)

// Function URLs are an account's records, one per function or alias. A
// request to a URL names only the URL's id (its host label), so an index
// that all accounts share maps each id to the account and the record;
// it is written in the same transaction as the record.
var (
	bucketURLs   = []byte("urls")   // name \x00 qualifier → function.URLConfig
	bucketURLIDs = []byte("urlids") // id → urlIndex, shared by the accounts
)

type urlIndex struct {
	Account   string `json:"account"`
	Function  string `json:"function"`
	Qualifier string `json:"qualifier,omitempty"`
}

func urlKey(name, qualifier string) []byte { return append(append([]byte(name), 0), qualifier...) }

// URLConfig returns the URL of a function ("" qualifier) or an alias.
func (t *Tx) URLConfig(name, qualifier string) (*function.URLConfig, error) {
	b, err := t.read(bucketURLs)
	if err != nil {
		return nil, err
	}
	return get[function.URLConfig](b, urlKey(name, qualifier))
}

// PutURLConfig creates or replaces a URL and its entry in the index.
func (t *Tx) PutURLConfig(u *function.URLConfig) error {
	b, err := t.write(bucketURLs)
	if err != nil {
		return err
	}
	ix, err := t.tx.CreateBucketIfNotExists(bucketURLIDs)
	if err != nil {
		return err
	}
	if err := put(ix, []byte(u.ID), urlIndex{t.account, u.Function, u.Qualifier}); err != nil {
		return err
	}
	if err := put(b, urlKey(u.Function, u.Qualifier), u); err != nil {
		return err
	}
	return t.record(Change{Kind: KindURL, Function: u.Function, Key: u.Qualifier, URL: clone(u)})
}

// DeleteURLConfig removes a URL and its entry in the index.
func (t *Tx) DeleteURLConfig(name, qualifier string) error {
	b, err := t.write(bucketURLs)
	if err != nil {
		return err
	}
	key := urlKey(name, qualifier)
	old, err := get[function.URLConfig](b, key)
	if err != nil {
		return err
	}
	if ix := t.tx.Bucket(bucketURLIDs); ix != nil {
		if err := ix.Delete([]byte(old.ID)); err != nil {
			return err
		}
	}
	if err := b.Delete(key); err != nil {
		return err
	}
	return t.record(Change{Kind: KindURL, Function: name, Key: qualifier})
}

// URLConfigs lists a function's URLs (its own first, then its aliases' in
// name order).
func (t *Tx) URLConfigs(name string) ([]*function.URLConfig, error) {
	b, err := t.read(bucketURLs)
	if err != nil {
		return nil, err
	}
	return scan[function.URLConfig](b, append([]byte(name), 0), nil, -1)
}

// URLByID finds a URL by its id in whichever account holds it: the one
// read across accounts, because a request to a URL names nothing else.
func (t *Tx) URLByID(id string) (account string, u *function.URLConfig, err error) {
	ix := t.tx.Bucket(bucketURLIDs)
	if ix == nil {
		return "", nil, ErrNotFound
	}
	e, err := get[urlIndex](ix, []byte(id))
	if err != nil {
		return "", nil, err
	}
	u, err = t.In(e.Account).URLConfig(e.Function, e.Qualifier)
	if errors.Is(err, ErrNotFound) {
		return "", nil, errors.New("store: the URL index names a URL that is not there")
	}
	return e.Account, u, err
}

// dropURLs removes the index entries of a function's URLs; the caller
// removes the records.
func (t *Tx) dropURLs(name string) error {
	us, err := t.URLConfigs(name)
	if err != nil || len(us) == 0 {
		return err
	}
	ix := t.tx.Bucket(bucketURLIDs)
	for _, u := range us {
		if err := ix.Delete([]byte(u.ID)); err != nil {
			return err
		}
	}
	return nil
}
