package sigv4

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"encoding/hex"
	"io"
	"strconv"
	"strings"
)

// DecodeStreaming reads an aws-chunked body (the form SDKs send with
// STREAMING-AWS4-HMAC-SHA256-PAYLOAD), checking each chunk's signature in
// the chain that starts at the request's own signature, and returns the
// payload. At most limit payload bytes are read; more is an error.
//
// Each chunk is "hex-size;chunk-signature=sig\r\n" data "\r\n", ending with
// a chunk of size 0; a chunk's string to sign is
//
//	AWS4-HMAC-SHA256-PAYLOAD \n date \n scope \n previous-signature \n hash("") \n hash(data)
func (s *Request) DecodeStreaming(body io.Reader, secret string, limit int64) ([]byte, error) {
	br := bufio.NewReader(body)
	key := SigningKey(secret, s.Date, s.Region, s.Service)
	prev := s.Signature
	var out bytes.Buffer
	for {
		line, err := br.ReadString('\n')
		if err != nil || !strings.HasSuffix(line, "\r\n") {
			return nil, incomplete("The chunked payload is malformed.")
		}
		sizeHex, ext, _ := strings.Cut(strings.TrimSuffix(line, "\r\n"), ";")
		sig, ok := strings.CutPrefix(ext, "chunk-signature=")
		size, perr := strconv.ParseInt(sizeHex, 16, 64)
		if !ok || perr != nil || size < 0 || int64(out.Len())+size > limit {
			return nil, incomplete("The chunked payload is malformed.")
		}
		data := make([]byte, size+2)
		if _, err := io.ReadFull(br, data); err != nil || data[size] != '\r' || data[size+1] != '\n' {
			return nil, incomplete("The chunked payload is malformed.")
		}
		data = data[:size]
		sts := "AWS4-HMAC-SHA256-PAYLOAD\n" + s.AmzDate + "\n" + s.Scope() + "\n" + prev + "\n" + EmptyHash + "\n" + hexHash(data)
		want := hmacSHA256(key, sts)
		got, err := hex.DecodeString(sig)
		if err != nil || !hmac.Equal(got, want) {
			return nil, mismatch()
		}
		prev = sig
		out.Write(data)
		if size == 0 {
			return out.Bytes(), nil
		}
	}
}
