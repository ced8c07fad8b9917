package function

import "time"

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
