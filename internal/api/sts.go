package api

import (
	"encoding/xml"
	"net/http"
	"net/url"
	"strconv"

	"github.com/lambdad/lambdad/internal/account"
	"github.com/lambdad/lambdad/internal/awserr"
)

// sts answers the one STS operation tools call first on any endpoint,
// GetCallerIdentity, in STS's query protocol (a form POSTed to "/",
// answered in XML), so that deploy tools learn the account and ARN they
// act as. AWS Lambda's own routes are all under a versioned path and are
// unaffected.
func (s *Server) sts(w http.ResponseWriter, r *http.Request) {
	id := w.Header().Get(requestIDHeader)
	ctx, err := s.authenticate(r, id)
	if err != nil {
		stsError(w, id, err)
		return
	}
	// The body was read (and put back) by authentication when it is
	// signed; a form is small.
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		stsFault(w, id, 400, "Sender", "MalformedQueryString", "The request is not a valid form.")
		return
	}
	switch r.Form.Get("Action") {
	case "GetCallerIdentity":
	case "":
		stsFault(w, id, 400, "Sender", "MissingAction", "Missing Action")
		return
	default:
		stsFault(w, id, 400, "Sender", "InvalidAction", "Could not find operation "+url.QueryEscape(r.Form.Get("Action"))+" for version "+r.Form.Get("Version"))
		return
	}
	caller, _ := account.CallerOf(ctx)
	arn, userID := caller.Principal, caller.UserID
	if arn == "" {
		// Without access control every caller is the account itself.
		arn, userID = "arn:aws:iam::"+caller.Account+":root", caller.Account
	}
	type result struct {
		Arn     string `xml:"Arn"`
		UserID  string `xml:"UserId"`
		Account string `xml:"Account"`
	}
	writeXML(w, 200, struct {
		XMLName   xml.Name `xml:"https://sts.amazonaws.com/doc/2011-06-15/ GetCallerIdentityResponse"`
		Result    result   `xml:"GetCallerIdentityResult"`
		RequestID string   `xml:"ResponseMetadata>RequestId"`
	}{Result: result{Arn: arn, UserID: userID, Account: caller.Account}, RequestID: id})
}

// stsError answers an authentication failure in STS's XML error form.
func stsError(w http.ResponseWriter, id string, err error) {
	status, code, msg := 500, "InternalFailure", "An internal error occurred."
	if e, ok := awserr.As(err); ok {
		status, code, msg = e.Status(), stsCode(string(e.Code)), e.Message
	}
	stsFault(w, id, status, "Sender", code, msg)
}

// stsCode is STS's name for a front-end error (it drops "Exception" and
// names some differently).
func stsCode(code string) string {
	switch code {
	case "UnrecognizedClientException":
		return "InvalidClientTokenId"
	case "InvalidSignatureException":
		return "SignatureDoesNotMatch"
	case "MissingAuthenticationTokenException":
		return "MissingAuthenticationToken"
	case "IncompleteSignatureException":
		return "IncompleteSignature"
	case "ExpiredTokenException":
		return "ExpiredToken"
	}
	return code
}

func stsFault(w http.ResponseWriter, id string, status int, typ, code, msg string) {
	type detail struct {
		Type    string `xml:"Type"`
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	}
	writeXML(w, status, struct {
		XMLName   xml.Name `xml:"https://sts.amazonaws.com/doc/2011-06-15/ ErrorResponse"`
		Error     detail   `xml:"Error"`
		RequestID string   `xml:"RequestId"`
	}{Error: detail{typ, code, msg}, RequestID: id})
}

func writeXML(w http.ResponseWriter, status int, v any) {
	body, _ := xml.Marshal(v)
	body = append([]byte(xml.Header), body...)
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}
