package function

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lambdad/lambdad/internal/awserr"
)

// MaxLayers is how many layers a function may use (AWS's limit).
const MaxLayers = 5

// Layer is the per-layer record: what outlives its versions.
type Layer struct {
	Name string `json:"name"`
	// LastVersion is the highest version ever published; AWS never reuses
	// a layer version number, even after the version is deleted.
	LastVersion int64 `json:"lastVersion"`
	// Policies are the layer version policies (AddLayerVersionPermission),
	// by version number. They live in the layer's record rather than the
	// version's because a version is written once and never replaced; a
	// version's policy is removed in the transaction that deletes the
	// version, and since version numbers are never reused a policy can
	// never pass to another version.
	Policies map[int64]*Policy `json:"policies,omitempty"`
}

// LayerVersion is one published, immutable version of a layer. Its code
// is a content-addressed archive like a function's, referenced once by
// this record and once by every function configuration that uses it.
type LayerVersion struct {
	Name                    string    `json:"name"`
	Version                 int64     `json:"version"`
	Description             string    `json:"description,omitempty"`
	LicenseInfo             string    `json:"licenseInfo,omitempty"`
	CompatibleRuntimes      []string  `json:"compatibleRuntimes,omitempty"`
	CompatibleArchitectures []string  `json:"compatibleArchitectures,omitempty"`
	CodeSha256              string    `json:"codeSha256"`
	CodeSize                int64     `json:"codeSize"`
	UnzippedSize            int64     `json:"unzippedSize"`
	Created                 time.Time `json:"created"`
	// Owner is the account of a version of another account's layer, read
	// through its version policy, for the ARNs it is shown with; "" for
	// the caller's own. It is never stored.
	Owner string `json:"-"`
}

// LayerUse is one entry of a function configuration's Layers: the version
// ARN the caller gave and what the environment needs of it, copied from
// the layer version when the configuration was written, so that the
// function keeps working after the version is deleted, as on AWS.
type LayerUse struct {
	Arn          string `json:"arn"`
	CodeSha256   string `json:"codeSha256"`
	CodeSize     int64  `json:"codeSize"`
	UnzippedSize int64  `json:"unzippedSize"`
}

// LayerARN is the ARN of a layer (without a version) in the parser's
// region and account.
func (p Parser) LayerARN(name string) string {
	return "arn:aws:lambda:" + p.Region + ":" + p.Account + ":layer:" + name
}

// LayerVersionARN is the ARN of one version of a layer.
func (p Parser) LayerVersionARN(name string, version int64) string {
	return p.LayerARN(name) + ":" + strconv.FormatInt(version, 10)
}

// LayerRef names one layer (Version 0) or one version of it.
type LayerRef struct {
	Region, Account, Name string
	Version               int64
}

// ParseLayerName reads the LayerName parameter: a name, or a layer ARN,
// which must be of the parser's region and account to name a layer of
// this caller's.
func (p Parser) ParseLayerName(s string) (LayerRef, error) {
	if !strings.HasPrefix(s, "arn:") {
		if !isLayerName(s) {
			return LayerRef{}, awserr.New(awserr.InvalidParameterValue, "Invalid Layer name: %s", s)
		}
		return LayerRef{Region: p.Region, Account: p.Account, Name: s}, nil
	}
	r, ok := parseLayerARN(s, false)
	if !ok {
		return LayerRef{}, awserr.New(awserr.InvalidParameterValue, "Invalid Layer name: %s", s)
	}
	return r, nil
}

// ParseLayerVersionARN reads a layer version ARN
// (arn:aws:lambda:REGION:ACCOUNT:layer:NAME:VERSION).
func ParseLayerVersionARN(s string) (LayerRef, bool) { return parseLayerARN(s, true) }

func parseLayerARN(s string, versioned bool) (LayerRef, bool) {
	parts := strings.Split(s, ":")
	want := 7
	if versioned {
		want = 8
	}
	if len(parts) != want || parts[0] != "arn" || !isPartition(parts[1]) || parts[2] != "lambda" ||
		!isRegion(parts[3]) || len(parts[4]) != 12 || !allDigits(parts[4]) || parts[5] != "layer" || !isLayerName(parts[6]) {
		return LayerRef{}, false
	}
	r := LayerRef{Region: parts[3], Account: parts[4], Name: parts[6]}
	if versioned {
		n, err := strconv.ParseInt(parts[7], 10, 64)
		if err != nil || n < 1 || !allDigits(parts[7]) {
			return LayerRef{}, false
		}
		r.Version = n
	}
	return r, true
}

// isLayerName is the model's name pattern [a-zA-Z0-9-_]+, at most 64
// characters as AWS stores them.
func isLayerName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isWordChar(s[i]) {
			return false
		}
	}
	return true
}

// LayerFilter is the CompatibleRuntime and CompatibleArchitecture filters
// of ListLayers and ListLayerVersions; "" passes everything.
type LayerFilter struct {
	CompatibleRuntime      string
	CompatibleArchitecture string
}

// Match reports whether v passes the filter.
func (f LayerFilter) Match(v *LayerVersion) bool {
	return (f.CompatibleRuntime == "" || slices.Contains(v.CompatibleRuntimes, f.CompatibleRuntime)) &&
		(f.CompatibleArchitecture == "" || slices.Contains(v.CompatibleArchitectures, f.CompatibleArchitecture))
}
