package sigv4

import (
	"net/http"
	"strings"
	"time"
)

// Sign signs r (whose body is body) for the scope's region and service,
// as the SDKs do: host, x-amz-date, content-length and any X-Amz-* and
// Content-Type headers signed, the payload hashed. lambdad's own clients (the load
// tool) use it; the tests sign with the SDK's signer instead, so that the
// verifier is checked against AWS's implementation and not its own.
func Sign(r *http.Request, body []byte, accessKeyID, secret, region, service string, now time.Time) {
	amzDate := now.UTC().Format(timeFormat)
	r.Header.Set("X-Amz-Date", amzDate)
	if r.Host == "" {
		r.Host = r.URL.Host
	}
	signed := []string{"host"}
	if r.ContentLength > 0 {
		signed = append(signed, "content-length")
	}
	for k := range r.Header {
		lk := strings.ToLower(k)
		if strings.HasPrefix(lk, "x-amz-") || lk == "content-type" {
			signed = append(signed, lk)
		}
	}
	sortStrings(signed)
	s := &Request{AccessKeyID: accessKeyID, Date: amzDate[:8], Region: region, Service: service,
		SignedHeaders: signed, AmzDate: amzDate}
	sig := s.sign(secret, s.stringToSign(CanonicalRequest(r, signed, HashPayload(body), false)))
	r.Header.Set("Authorization", Algorithm+" Credential="+accessKeyID+"/"+s.Scope()+
		", SignedHeaders="+strings.Join(signed, ";")+", Signature="+hexString(sig))
}
