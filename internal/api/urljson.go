package api

import (
	"sort"
	"strconv"
	"unicode/utf8"
)

// appendJSON writes ev as encoding/json would (the same members, the
// same values; keys of its maps in sorted order), without reflection: a
// URL request builds and sends one event each, on the path whose latency
// is compared with Invoke's.
func (ev *urlEventBody) appendJSON(b []byte) []byte {
	b = append(b, `{"version":`...)
	b = appendJSONString(b, ev.Version)
	b = append(b, `,"routeKey":`...)
	b = appendJSONString(b, ev.RouteKey)
	b = append(b, `,"rawPath":`...)
	b = appendJSONString(b, ev.RawPath)
	b = append(b, `,"rawQueryString":`...)
	b = appendJSONString(b, ev.RawQueryString)
	if len(ev.Cookies) > 0 {
		b = append(b, `,"cookies":[`...)
		for i, c := range ev.Cookies {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, c)
		}
		b = append(b, ']')
	}
	b = append(b, `,"headers":`...)
	b = appendJSONMap(b, ev.Headers)
	if len(ev.QueryStringParameters) > 0 {
		b = append(b, `,"queryStringParameters":`...)
		b = appendJSONMap(b, ev.QueryStringParameters)
	}
	rc := &ev.RequestContext
	b = append(b, `,"requestContext":{"accountId":`...)
	b = appendJSONString(b, rc.AccountID)
	b = append(b, `,"apiId":`...)
	b = appendJSONString(b, rc.APIID)
	b = append(b, `,"domainName":`...)
	b = appendJSONString(b, rc.DomainName)
	b = append(b, `,"domainPrefix":`...)
	b = appendJSONString(b, rc.DomainPrefix)
	b = append(b, `,"http":{"method":`...)
	b = appendJSONString(b, rc.HTTP.Method)
	b = append(b, `,"path":`...)
	b = appendJSONString(b, rc.HTTP.Path)
	b = append(b, `,"protocol":`...)
	b = appendJSONString(b, rc.HTTP.Protocol)
	b = append(b, `,"sourceIp":`...)
	b = appendJSONString(b, rc.HTTP.SourceIP)
	b = append(b, `,"userAgent":`...)
	b = appendJSONString(b, rc.HTTP.UserAgent)
	b = append(b, `},"requestId":`...)
	b = appendJSONString(b, rc.RequestID)
	b = append(b, `,"routeKey":`...)
	b = appendJSONString(b, rc.RouteKey)
	b = append(b, `,"stage":`...)
	b = appendJSONString(b, rc.Stage)
	b = append(b, `,"time":`...)
	b = appendJSONString(b, rc.Time)
	b = append(b, `,"timeEpoch":`...)
	b = strconv.AppendInt(b, rc.TimeEpoch, 10)
	b = append(b, '}')
	if ev.Body != nil {
		b = append(b, `,"body":`...)
		b = appendJSONString(b, *ev.Body)
	}
	b = append(b, `,"isBase64Encoded":`...)
	b = strconv.AppendBool(b, ev.IsBase64Encoded)
	return append(b, '}')
}

func appendJSONMap(b []byte, m map[string]string) []byte {
	var small [16]string
	keys := small[:0]
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
		b = append(b, ':')
		b = appendJSONString(b, m[k])
	}
	return append(b, '}')
}

const hexDigits = "0123456789abcdef"

// appendJSONString writes s as a JSON string the way encoding/json does:
// quotes, backslashes and control characters escaped, <, > and & as
// \u003c, \u003e and \u0026, U+2028 and U+2029 escaped, and each byte of
// invalid UTF-8 as U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
