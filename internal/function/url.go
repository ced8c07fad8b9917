package function

import (
	"crypto/rand"
	"strings"
	"time"

	"github.com/lambdad/lambdad/internal/awserr"
)

// URLConfig is a function URL: an HTTP endpoint of its own that invokes the
// function's $LATEST (Qualifier "") or one alias.
type URLConfig struct {
	Function string `json:"function"`
	// Qualifier is the alias the URL invokes; "" for the function itself.
	Qualifier string `json:"qualifier,omitempty"`
	// ID is the URL's host label: 32 lowercase letters and digits, as AWS's.
	ID           string    `json:"id"`
	AuthType     string    `json:"authType"`
	InvokeMode   string    `json:"invokeMode"`
	Cors         *Cors     `json:"cors,omitempty"`
	Created      time.Time `json:"created"`
	LastModified time.Time `json:"lastModified"`
}

// Cors is a function URL's cross-origin resource sharing settings, as the
// API names them.
type Cors struct {
	AllowCredentials *bool    `json:"AllowCredentials,omitempty"`
	AllowHeaders     []string `json:"AllowHeaders,omitempty"`
	AllowMethods     []string `json:"AllowMethods,omitempty"`
	AllowOrigins     []string `json:"AllowOrigins,omitempty"`
	ExposeHeaders    []string `json:"ExposeHeaders,omitempty"`
	MaxAge           *int     `json:"MaxAge,omitempty"`
}

// Function URL auth types and invoke modes.
const (
	URLAuthNone     = "NONE"
	URLAuthIAM      = "AWS_IAM"
	InvokeBuffered  = "BUFFERED"
	InvokeStreaming = "RESPONSE_STREAM"
)

// CheckURLSettings refuses CORS methods that are not upper case or "*".
func CheckURLSettings(c *Cors) error {
	if c != nil {
		for _, m := range c.AllowMethods {
			if m != "*" && strings.ToUpper(m) != m {
				return awserr.New(awserr.InvalidParameterValue, "Invalid HTTP method in AllowMethods: %s", m)
			}
		}
	}
	return nil
}

// urlIDChars are the characters of a URL id: lowercase letters and
// digits, as in AWS's host names.
const urlIDChars = "abcdefghijklmnopqrstuvwxyz0123456789"

// NewURLID is a random 32-character URL id (about 165 bits).
func NewURLID() string {
	var b [32]byte
	rand.Read(b[:])
	for i := range b {
		b[i] = urlIDChars[int(b[i])%len(urlIDChars)]
	}
	return string(b[:])
}
