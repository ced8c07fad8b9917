package function

import (
	"encoding/json"
	"time"
)

// TimeFormat is the layout AWS Lambda uses for LastModified.
const TimeFormat = "2006-01-02T15:04:05.000-0700"

// FormatTime renders t as AWS Lambda renders LastModified (always UTC).
func FormatTime(t time.Time) string { return t.UTC().Format(TimeFormat) }

// Defaults AWS applies when CreateFunction leaves a setting out.
const (
	DefaultTimeout    = 3
	DefaultMemorySize = 128
	DefaultEphemeral  = 512
	DefaultArch       = "x86_64"
)

// Config is one version's configuration ($LATEST or a published version),
// as stored. Its JSON form is what the store keeps; the API renders it
// through its own wire types.
type Config struct {
	Name          string            `json:"name"`
	Version       string            `json:"version"`
	Runtime       string            `json:"runtime,omitempty"`
	Handler       string            `json:"handler,omitempty"`
	Role          string            `json:"role"`
	Description   string            `json:"description,omitempty"`
	Timeout       int               `json:"timeout"`
	MemorySize    int               `json:"memorySize"`
	Ephemeral     int               `json:"ephemeral"`
	Environment   map[string]string `json:"environment,omitempty"`
	Architectures []string          `json:"architectures,omitempty"`
	// TracingMode is TracingConfig.Mode as set ("Active", "PassThrough");
	// "" means never set, which AWS reports as PassThrough.
	TracingMode string `json:"tracingMode,omitempty"`
	CodeSha256  string `json:"codeSha256"`
	CodeSize    int64  `json:"codeSize"`
	// UnzippedSize is the code's size once unpacked; 0 in records
	// written before it was kept.
	UnzippedSize int64 `json:"unzippedSize,omitempty"`
	// Layers are the layer versions the configuration uses, in order.
	Layers       []LayerUse `json:"layers,omitempty"`
	LastModified time.Time  `json:"lastModified"`
	RevisionID   string     `json:"revisionId"`
	// UpdateRuntimeOn and RuntimeVersionArn are the runtime management
	// configuration; "" is Auto, AWS's default.
	UpdateRuntimeOn   string `json:"updateRuntimeOn,omitempty"`
	RuntimeVersionArn string `json:"runtimeVersionArn,omitempty"`
	// TenantIsolation is TenancyConfig.TenantIsolationMode, set at
	// CreateFunction and never changed: PerTenant, or "" for a function
	// without tenant isolation. Versions inherit it from $LATEST.
	TenantIsolation string `json:"tenantIsolation,omitempty"`
}

// Alias points a name at a version, optionally splitting traffic with a
// second version.
type Alias struct {
	Name            string             `json:"name"`
	FunctionVersion string             `json:"functionVersion"`
	Description     string             `json:"description,omitempty"`
	RoutingWeights  map[string]float64 `json:"routingWeights,omitempty"`
	RevisionID      string             `json:"revisionId"`
}

// Function is the per-function record: what applies to the function as a
// whole rather than to one version.
type Function struct {
	Name string `json:"name"`
	// LastVersion is the highest version number ever published; version
	// numbers are never reused, even after a version is deleted.
	LastVersion int `json:"lastVersion"`
	// PublishedRevision is the RevisionId $LATEST had when version
	// LastVersion was published from it: $LATEST is unchanged since then
	// exactly when its RevisionId still is this. Empty in records written
	// before it was kept.
	PublishedRevision string `json:"publishedRevision,omitempty"`
	// Reserved is the reserved concurrency, nil when none is set (0 is a
	// valid reservation that throttles every invocation).
	Reserved *int              `json:"reserved,omitempty"`
	Tags     map[string]string `json:"tags,omitempty"`
	// Provisioned is the function's total configured provisioned
	// concurrency over all its versions and aliases.
	Provisioned int `json:"provisioned,omitempty"`
	// CodeSigningConfigArn is the code signing configuration the function
	// uses; "" for none.
	CodeSigningConfigArn string `json:"codeSigningConfigArn,omitempty"`
	// RecursiveLoop is Allow or Terminate; "" is Terminate, AWS's default.
	RecursiveLoop string `json:"recursiveLoop,omitempty"`
	// Policies are the resource-based policies (AddPermission) of the
	// function ("") and of its versions and aliases, by qualifier.
	Policies map[string]*Policy `json:"policies,omitempty"`
}

// Policy is a resource-based policy: its statements in the order they
// were added, each as the JSON AWS shows, and the revision GetPolicy
// reports (a new one on every change).
type Policy struct {
	RevisionID string            `json:"revisionId"`
	Statements []json.RawMessage `json:"statements"`
}
