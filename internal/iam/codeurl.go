package iam

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// CodeURLTTL is how long a presigned code download stays valid, as AWS's
// presigned Code.Location does (10 minutes).
const CodeURLTTL = 10 * time.Minute

var codeKey = sync.OnceValue(func() []byte {
	k := make([]byte, 32)
	rand.Read(k)
	return k
})

// PresignPath returns the query that lets anyone holding it GET path
// until CodeURLTTL from now: its expiry and an HMAC of both under a key
// that lives as long as this process.
func (g *Guard) PresignPath(path string) string {
	exp := strconv.FormatInt(g.opts.Now().Add(CodeURLTTL).Unix(), 10)
	return "X-Lambdad-Expires=" + exp + "&X-Lambdad-Signature=" + codeMAC(path, exp)
}

// CheckPresigned reports whether query presigns path and has not expired.
func (g *Guard) CheckPresigned(path string, query url.Values) bool {
	exp := query.Get("X-Lambdad-Expires")
	n, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || g.opts.Now().Unix() > n {
		return false
	}
	got, err := hex.DecodeString(query.Get("X-Lambdad-Signature"))
	want, _ := hex.DecodeString(codeMAC(path, exp))
	return err == nil && hmac.Equal(got, want)
}

func codeMAC(path, exp string) string {
	m := hmac.New(sha256.New, codeKey())
	m.Write([]byte(path + "\n" + exp))
	return hex.EncodeToString(m.Sum(nil))
}
