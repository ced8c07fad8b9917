package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/lambdad/lambdad/internal/control"
	"github.com/lambdad/lambdad/internal/function"
	"github.com/lambdad/lambdad/internal/store"
)

func layerVersion(name string, v int64, code string) *function.LayerVersion {
	return &function.LayerVersion{Name: name, Version: v, CodeSha256: code, CodeSize: 22, Created: time.Unix(0, 0).UTC()}
}

// layersRoundTrip: layers and their versions are an account's, listed in
// order (layers by name, versions newest first, from a position), and a
// version is never written twice.
func layersRoundTrip(t *testing.T, s control.Store) {
	zip := []byte("PK\x05\x06" + string(make([]byte, 18)))
	digest := sha(zip)
	release, err := s.SaveCode(digest, zip)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	update(t, s, A, func(tx control.Tx) error {
		for _, name := range []string{"b", "a", "a-b"} {
			if err := tx.PutLayer(&function.Layer{Name: name, LastVersion: 3}); err != nil {
				return err
			}
			for v := int64(1); v <= 3; v++ {
				if err := tx.PutLayerVersion(layerVersion(name, v, digest)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	view(t, s, A, func(tx control.Tx) error {
		ls, err := tx.Layers("", -1)
		if err != nil {
			return err
		}
		if got := layerNames(ls); got != "[a a-b b]" {
			t.Errorf("Layers = %s", got)
		}
		if ls, _ := tx.Layers("a", 1); layerNames(ls) != "[a-b]" {
			t.Errorf("Layers after a, 1 = %s", layerNames(ls))
		}
		vs, err := tx.LayerVersions("a", 0, -1)
		if err != nil {
			return err
		}
		if got := layerVersions(vs); got != "[a:3 a:2 a:1]" {
			t.Errorf("LayerVersions(a) = %s", got)
		}
		if vs, _ := tx.LayerVersions("a", 3, 1); layerVersions(vs) != "[a:2]" {
			t.Errorf("LayerVersions(a, before 3, 1) = %s", layerVersions(vs))
		}
		if vs, _ := tx.LayerVersions("b", 0, -1); layerVersions(vs) != "[b:3 b:2 b:1]" {
			t.Errorf("LayerVersions(b) = %s", layerVersions(vs))
		}
		if _, err := tx.LayerVersion("a", 4); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("a version never written: %v", err)
		}
		if err := tx.PutLayerVersion(layerVersion("a", 1, digest)); err == nil {
			t.Error("a layer version was written twice")
		}
		return nil
	})
	view(t, s, B, func(tx control.Tx) error {
		if ls, _ := tx.Layers("", -1); len(ls) != 0 {
			t.Errorf("account B sees A's layers: %s", layerNames(ls))
		}
		if _, err := tx.LayerVersion("a", 1); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("account B reads A's layer version: %v", err)
		}
		return nil
	})
}

// layerCodeLifetime: a layer version's archive lives while the version or
// any configuration using it does, whichever goes last.
func layerCodeLifetime(t *testing.T, s control.Store) {
	zip := []byte("PK\x05\x06" + string(make([]byte, 18)))
	digest := sha(zip)
	fnZip := []byte("PK\x05\x06" + string(make([]byte, 16)) + "\x01\x00x") // with a comment
	fnDigest := sha(fnZip)
	var releases []func()
	for _, z := range [][]byte{zip, fnZip} {
		release, err := s.SaveCode(sha(z), z)
		if err != nil {
			t.Fatal(err)
		}
		releases = append(releases, release)
	}
	update(t, s, A, func(tx control.Tx) error {
		if err := tx.PutLayerVersion(layerVersion("l", 1, digest)); err != nil {
			return err
		}
		if err := tx.PutFunction(fn("f", nil, 0)); err != nil {
			return err
		}
		c := version("f", function.Latest, fnDigest, 1)
		c.Layers = []function.LayerUse{{Arn: "arn:aws:lambda:us-east-1:" + A + ":layer:l:1", CodeSha256: digest, CodeSize: 22}}
		if err := tx.PutVersion(c); err != nil {
			return err
		}
		v1 := *c
		v1.Version = "1"
		return tx.PutVersion(&v1)
	})
	for _, r := range releases {
		r()
	}
	update(t, s, A, func(tx control.Tx) error { return tx.DeleteLayerVersion("l", 1) })
	if !exists(s.CodePath(digest)) {
		t.Fatal("a layer's code went with its version while functions use it")
	}
	update(t, s, A, func(tx control.Tx) error {
		c, err := tx.Version("f", function.Latest)
		if err != nil {
			return err
		}
		c.Layers = nil
		return tx.PutVersion(c)
	})
	if !exists(s.CodePath(digest)) {
		t.Fatal("a layer's code went while version 1 still uses it")
	}
	update(t, s, A, func(tx control.Tx) error { return tx.DeleteFunction("f") })
	if exists(s.CodePath(digest)) {
		t.Error("a layer's code outlived its version and every configuration using it")
	}
}

// urlsRoundTrip: a URL is its account's, found by its id from any
// account's view, goes with its function, and every write of one is on
// the feed (the URL cache follows it).
func urlsRoundTrip(t *testing.T, s control.Store) {
	rec := &recorder{}
	if err := s.Subscribe(rec); err != nil {
		t.Fatal(err)
	}
	now := time.Unix(0, 0).UTC()
	update(t, s, A, func(tx control.Tx) error {
		if err := tx.PutFunction(fn("f", nil, 0)); err != nil {
			return err
		}
		for i, q := range []string{"", "live", "beta"} {
			u := &function.URLConfig{Function: "f", Qualifier: q, ID: fmt.Sprintf("id%d", i), AuthType: "NONE", Created: now, LastModified: now}
			if err := tx.PutURLConfig(u); err != nil {
				return err
			}
		}
		return nil
	})
	view(t, s, B, func(tx control.Tx) error {
		acct, u, err := tx.URLByID("id1")
		if err != nil {
			return err
		}
		if acct != A || u.Qualifier != "live" {
			t.Errorf("URLByID(id1) = %s %+v", acct, u)
		}
		if _, err := tx.URLConfig("f", ""); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("account B reads A's URL: %v", err)
		}
		return nil
	})
	view(t, s, A, func(tx control.Tx) error {
		us, err := tx.URLConfigs("f")
		if err != nil {
			return err
		}
		if len(us) != 3 || us[0].Qualifier != "" || us[1].Qualifier != "beta" {
			t.Errorf("URLConfigs = %+v", us)
		}
		return nil
	})
	update(t, s, A, func(tx control.Tx) error { return tx.DeleteURLConfig("f", "beta") })
	var urls []string
	for _, b := range rec.batches() {
		for _, c := range b.Changes {
			if c.Kind == store.KindURL {
				urls = append(urls, fmt.Sprintf("%s:%q deleted=%v", c.Account, c.Key, c.Deleted()))
			}
		}
	}
	if got, want := fmt.Sprint(urls), fmt.Sprintf(`[%[1]s:"" deleted=false %[1]s:"live" deleted=false %[1]s:"beta" deleted=false %[1]s:"beta" deleted=true]`, A); got != want {
		t.Errorf("URL changes on the feed: %s, want %s", got, want)
	}
	view(t, s, A, func(tx control.Tx) error {
		if _, _, err := tx.URLByID("id2"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("a deleted URL's id still resolves: %v", err)
		}
		return nil
	})
	update(t, s, A, func(tx control.Tx) error { return tx.DeleteFunction("f") })
	view(t, s, A, func(tx control.Tx) error {
		if _, _, err := tx.URLByID("id0"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("a deleted function's URL id still resolves: %v", err)
		}
		if us, _ := tx.URLConfigs("f"); len(us) != 0 {
			t.Errorf("a deleted function's URLs: %+v", us)
		}
		return nil
	})
}

func layerNames(ls []*function.Layer) string {
	var out []string
	for _, l := range ls {
		out = append(out, l.Name)
	}
	return fmt.Sprint(out)
}

func layerVersions(vs []*function.LayerVersion) string {
	var out []string
	for _, v := range vs {
		out = append(out, fmt.Sprintf("%s:%d", v.Name, v.Version))
	}
	return fmt.Sprint(out)
}

// layerPolicies: the layer version policies are kept in the layer's
// record (function.Layer.Policies, by version), so PutLayer and Layer
// must round trip them whole, statements byte for byte (they are JSON
// the control plane wrote and hands back as it is), replace them on the
// next PutLayer, and keep them the account's.
func layerPolicies(t *testing.T, s control.Store) {
	st1 := json.RawMessage(`{"Sid":"a","Effect":"Allow","Principal":"*","Action":"lambda:GetLayerVersion","Resource":"arn:aws:lambda:us-east-1:` + A + `:layer:l:1"}`)
	st2 := json.RawMessage(`{"Sid":"b","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + B + `:root"},"Action":"lambda:GetLayerVersion","Resource":"arn:aws:lambda:us-east-1:` + A + `:layer:l:3"}`)
	update(t, s, A, func(tx control.Tx) error {
		return tx.PutLayer(&function.Layer{Name: "l", LastVersion: 3, Policies: map[int64]*function.Policy{
			1: {RevisionID: "r1", Statements: []json.RawMessage{st1}},
			3: {RevisionID: "r3", Statements: []json.RawMessage{st1, st2}},
		}})
	})
	view(t, s, A, func(tx control.Tx) error {
		l, err := tx.Layer("l")
		if err != nil {
			return err
		}
		p1, p3 := l.Policies[1], l.Policies[3]
		if len(l.Policies) != 2 || p1 == nil || p3 == nil || p1.RevisionID != "r1" || p3.RevisionID != "r3" ||
			len(p1.Statements) != 1 || string(p1.Statements[0]) != string(st1) ||
			len(p3.Statements) != 2 || string(p3.Statements[0]) != string(st1) || string(p3.Statements[1]) != string(st2) {
			t.Errorf("policies read back: %+v", l.Policies)
		}
		if ls, _ := tx.Layers("", -1); len(ls) != 1 || len(ls[0].Policies) != 2 {
			t.Errorf("Layers drops the policies: %+v", ls)
		}
		return nil
	})
	update(t, s, A, func(tx control.Tx) error {
		l, err := tx.Layer("l")
		if err != nil {
			return err
		}
		delete(l.Policies, 1)
		return tx.PutLayer(l)
	})
	view(t, s, A, func(tx control.Tx) error {
		l, err := tx.Layer("l")
		if err != nil {
			return err
		}
		if _, ok := l.Policies[1]; ok || len(l.Policies) != 1 || l.Policies[3].RevisionID != "r3" {
			t.Errorf("after replacing the record: %+v", l.Policies)
		}
		return nil
	})
	view(t, s, B, func(tx control.Tx) error {
		if _, err := tx.Layer("l"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("account B reads A's layer: %v", err)
		}
		return nil
	})
}
