package control

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"maps"
	"os"
	"strconv"

	"github.com/lambdad/lambdad/internal/archive"
	"github.com/lambdad/lambdad/internal/awserr"
	"github.com/lambdad/lambdad/internal/function"
	"github.com/lambdad/lambdad/internal/store"
	"github.com/lambdad/lambdad/internal/uuid"
)

// Code is the Code member of CreateFunction; lambdad takes the archive
// inline (ZipFile, base64 on the wire).
type Code struct {
	ZipFile         []byte
	S3Bucket        string
	S3Key           string
	S3ObjectVersion string
	ImageUri        string
}

// Environment is the Environment member of a function's configuration.
type Environment struct {
	Variables map[string]string
}

// CreateFunctionInput is CreateFunction's request, by the model's names.
type CreateFunctionInput struct {
	FunctionName     string
	Runtime          string
	Role             string
	Handler          string
	Code             Code
	Description      string
	Timeout          *int
	MemorySize       *int
	Environment      *Environment
	Architectures    []string
	Tags             map[string]string
	Publish          bool
	PackageType      string
	EphemeralStorage *struct{ Size int }
	TracingConfig    *TracingConfig
	Layers           []string
	// CodeSigningConfigArn binds the function to one of the account's
	// code signing configurations at once, as PutFunctionCodeSigningConfig
	// would.
	CodeSigningConfigArn string
	// TenancyConfig turns tenant isolation on; it cannot be changed
	// afterwards (UpdateFunctionConfiguration has no such member).
	TenancyConfig *TenancyConfig
}

// TenancyConfig is a function's tenant isolation setting. The model has
// checked the mode already (PER_TENANT is its one value).
type TenancyConfig struct {
	TenantIsolationMode string
}

// TracingConfig is a function's X-Ray setting; lambdad keeps it as set
// (there is no X-Ray to send traces to).
type TracingConfig struct {
	Mode string
}

// FunctionView is a version's configuration with what describes the
// function as a whole.
type FunctionView struct {
	Config *function.Config
	// Qualifier is what the caller named: "" for the unqualified function,
	// else a version or alias; it qualifies the reported ARN.
	Qualifier string
	Function  *function.Function
}

// ARN is the function's ARN as the caller named it.
func (s *Service) ARN(ctx context.Context, name, qualifier string) string {
	return s.names(ctx).QualifiedARN(name, qualifier)
}

// code reads a function's or a layer's archive from where the request
// says it is (inline, or an S3 object through Options.S3), and checks it.
// unzipped is its size once unpacked.
func (s *Service) code(ctx context.Context, c *Code) ([]byte, error) {
	if c.ImageUri != "" {
		return nil, awserr.New(awserr.InvalidParameterValue, "lambdad runs Zip packages only; container images are not supported.")
	}
	zip := c.ZipFile
	if c.S3Bucket != "" || c.S3Key != "" {
		if len(c.ZipFile) > 0 {
			return nil, awserr.New(awserr.InvalidParameterValue, "Please do not provide other FunctionCode parameters when providing a ZipFile.")
		}
		if c.S3Bucket == "" || c.S3Key == "" {
			return nil, awserr.New(awserr.InvalidParameterValue, "Please provide a source for function code.")
		}
		if s.opts.S3 == nil {
			return nil, awserr.New(awserr.InvalidParameterValue, "This server reads no code from S3: its AWS configuration could not be loaded (see its log).")
		}
		var err error
		if zip, err = s.opts.S3.Fetch(ctx, c.S3Bucket, c.S3Key, c.S3ObjectVersion); err != nil {
			return nil, err
		}
	}
	if len(zip) == 0 {
		return nil, awserr.New(awserr.InvalidParameterValue, "Please provide a source for function code.")
	}
	return zip, nil
}

// checkedCode is code with its archive checked, and its unzipped size.
func (s *Service) checkedCode(ctx context.Context, c *Code) ([]byte, int64, error) {
	zip, err := s.code(ctx, c)
	if err != nil {
		return nil, 0, err
	}
	n, err := archive.Check(zip, archive.MaxUnzipped)
	if err != nil {
		return nil, 0, err
	}
	return zip, n, nil
}

func sha(zip []byte) string {
	h := sha256.Sum256(zip)
	return base64.StdEncoding.EncodeToString(h[:])
}

// unqualified parses a FunctionName that must not carry a qualifier, for
// operations on the function as a whole.
func (s *Service) unqualified(ctx context.Context, name string) (string, error) {
	// The qualifier is refused first, even in an ARN of another region.
	if function.Qualified(name) {
		return "", awserr.New(awserr.InvalidParameterValue, "This operation is permitted on Lambda functions only. Aliases and versions do not support this operation. Please specify either a function name or an unqualified function ARN.")
	}
	ref, err := s.names(ctx).Parse(name)
	if err != nil {
		return "", err
	}
	return ref.Name, nil
}

// CreateFunction creates a function, and its version 1 when Publish is set.
func (s *Service) CreateFunction(ctx context.Context, in *CreateFunctionInput) (*FunctionView, error) {
	ref, err := s.names(ctx).ParseNew(in.FunctionName)
	if err != nil {
		return nil, err
	}
	if ref.Qualifier != "" {
		return nil, awserr.New(awserr.InvalidParameterValue, "Unsupported function name: %s. A function name must not carry a qualifier.", in.FunctionName)
	}
	if err := s.checkRole(ctx, in.Role); err != nil {
		return nil, err
	}
	if in.PackageType == "Image" {
		return nil, awserr.New(awserr.InvalidParameterValue, "lambdad runs Zip packages only; PackageType Image is not supported.")
	}
	if in.Runtime == "" || in.Handler == "" {
		return nil, awserr.New(awserr.InvalidParameterValue, "Runtime and Handler are mandatory parameters for functions created with deployment packages.")
	}
	if err := s.checkRuntime(in.Runtime); err != nil {
		return nil, err
	}
	zip, unzipped, err := s.checkedCode(ctx, &in.Code)
	if err != nil {
		return nil, err
	}
	now := s.opts.Now()
	cfg := &function.Config{
		Name: ref.Name, Version: function.Latest, Runtime: in.Runtime, Role: in.Role, Handler: in.Handler,
		Description: in.Description, Timeout: function.DefaultTimeout, MemorySize: function.DefaultMemorySize,
		Ephemeral: function.DefaultEphemeral, Architectures: []string{function.DefaultArch},
		CodeSha256: sha(zip), CodeSize: int64(len(zip)), UnzippedSize: unzipped, LastModified: now, RevisionID: uuid.New(),
	}
	if in.Timeout != nil {
		cfg.Timeout = *in.Timeout
	}
	if in.MemorySize != nil {
		cfg.MemorySize = *in.MemorySize
	}
	if in.Environment != nil && len(in.Environment.Variables) > 0 {
		cfg.Environment = maps.Clone(in.Environment.Variables)
	}
	if len(in.Architectures) > 0 {
		cfg.Architectures = in.Architectures
	}
	if in.EphemeralStorage != nil {
		cfg.Ephemeral = in.EphemeralStorage.Size
	}
	if in.TracingConfig != nil {
		cfg.TracingMode = in.TracingConfig.Mode
	}
	if in.TenancyConfig != nil {
		cfg.TenantIsolation = in.TenancyConfig.TenantIsolationMode
	}
	release, err := s.db.SaveCode(cfg.CodeSha256, zip)
	if err != nil {
		return nil, internal("save code", err)
	}
	defer release()
	view := &FunctionView{Config: cfg}
	shared, err := s.sharedLayers(ctx, in.Layers)
	if err != nil {
		return nil, err
	}
	err = s.update(ctx, func(tx Tx) error {
		if _, err := tx.Function(ref.Name); err == nil {
			return awserr.New(awserr.ResourceConflict, "Function already exist: %s", ref.Name)
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		f := &function.Function{Name: ref.Name, Tags: in.Tags}
		if in.CodeSigningConfigArn != "" {
			if err := s.cscExists(ctx, tx, in.CodeSigningConfigArn); err != nil {
				return err
			}
			f.CodeSigningConfigArn = in.CodeSigningConfigArn
		}
		layers, err := s.layersOf(ctx, tx, in.Layers, shared)
		if err != nil {
			return err
		}
		cfg.Layers = layers // set afresh on every run of the body
		if err := s.checkUnzipped(cfg); err != nil {
			return err
		}
		if err := tx.PutVersion(cfg); err != nil {
			return err
		}
		if in.Publish {
			v, err := publish(tx, f, cfg, "")
			if err != nil {
				return err
			}
			view.Config = v
		}
		view.Function = f
		return tx.PutFunction(f)
	})
	return view, internal("create function", err)
}

// publish makes the next version from $LATEST; the caller stores f.
func publish(tx Tx, f *function.Function, latest *function.Config, description string) (*function.Config, error) {
	f.LastVersion++
	f.PublishedRevision = latest.RevisionID
	v := *latest
	v.Version = strconv.Itoa(f.LastVersion)
	v.RevisionID = uuid.New()
	if description != "" {
		v.Description = description
	}
	return &v, tx.PutVersion(&v)
}

// GetFunction reads a function, or one of its versions or aliases.
func (s *Service) GetFunction(ctx context.Context, name, qualifier string) (*FunctionView, error) {
	ref, err := s.names(ctx).ParseWithQualifier(name, qualifier)
	if err != nil {
		return nil, err
	}
	view := &FunctionView{Qualifier: ref.Qualifier}
	err = s.view(ctx, func(tx Tx) error {
		arn := s.ARN(ctx, ref.Name, ref.Qualifier)
		f, err := mustFunction(tx, ref.Name, arn)
		if err != nil {
			return err
		}
		view.Function = f
		view.Config, _, err = resolve(tx, ref.Name, ref.Qualifier, arn)
		return err
	})
	return view, internal("get function", err)
}

// ListFunctionsInput is ListFunctions' request.
type ListFunctionsInput struct {
	Marker          string
	MaxItems        *int
	FunctionVersion string
	MasterRegion    string
}

// ListFunctions lists functions ($LATEST, or every version with
// FunctionVersion ALL) a page at a time. The marker is the position after
// the last item returned.
func (s *Service) ListFunctions(ctx context.Context, in *ListFunctionsInput) ([]*function.Config, string, error) {
	limit := 50
	if in.MaxItems != nil {
		limit = min(*in.MaxItems, 50)
	}
	all := in.FunctionVersion == "ALL"
	if in.FunctionVersion != "" && !all {
		return nil, "", awserr.New(awserr.InvalidParameterValue, "Invalid FunctionVersion value: %s", in.FunctionVersion)
	}
	afterFn, afterVersion, err := decodeMarker(in.Marker)
	if err != nil {
		return nil, "", err
	}
	var out []*function.Config
	next := ""
	err = s.view(ctx, func(tx Tx) error {
		out = nil // the body may run again: it starts afresh
		// Read one item more than a page, to know whether another follows.
		if all && afterVersion != "" {
			rest, err := tx.Versions(afterFn, afterVersion, limit+1)
			if err != nil {
				return err
			}
			out = append(out, rest...)
		}
		for fn := afterFn; len(out) <= limit; {
			fns, err := tx.Functions(fn, limit+1-len(out))
			if err != nil || len(fns) == 0 {
				return err
			}
			for _, f := range fns {
				var cfgs []*function.Config
				if all {
					cfgs, err = tx.Versions(f.Name, "", limit+1-len(out))
				} else {
					var c *function.Config
					c, err = tx.Version(f.Name, function.Latest)
					cfgs = []*function.Config{c}
				}
				if err != nil {
					return err
				}
				out = append(out, cfgs...)
				fn = f.Name
				if len(out) > limit {
					break
				}
			}
		}
		return nil
	})
	if len(out) > limit {
		out = out[:limit]
		last := out[limit-1]
		if all {
			next = encodeMarker(last.Name, last.Version)
		} else {
			next = encodeMarker(last.Name, "")
		}
	}
	return out, next, internal("list functions", err)
}

func encodeMarker(fn, version string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(fn + "\x00" + version))
}

func decodeMarker(m string) (fn, version string, err error) {
	if m == "" {
		return "", "", nil
	}
	raw, derr := base64.RawURLEncoding.DecodeString(m)
	if derr != nil {
		return "", "", awserr.New(awserr.InvalidParameterValue, "Invalid Marker: %s", m)
	}
	b := string(raw)
	for i := range len(b) {
		if b[i] == 0 {
			return b[:i], b[i+1:], nil
		}
	}
	return "", "", awserr.New(awserr.InvalidParameterValue, "Invalid Marker: %s", m)
}

// UpdateFunctionCodeInput is UpdateFunctionCode's request.
type UpdateFunctionCodeInput struct {
	FunctionName    string
	ZipFile         []byte
	S3Bucket        string
	S3Key           string
	S3ObjectVersion string
	ImageUri        string
	Publish         bool
	DryRun          bool
	RevisionId      string
	Architectures   []string
}

func checkRevision(want, have string) error {
	if want != "" && want != have {
		return awserr.New(awserr.PreconditionFailed, "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id")
	}
	return nil
}

// latest reads a function and its $LATEST for an update, refusing a stale
// RevisionId.
func (s *Service) latest(ctx context.Context, tx Tx, name, revision string) (*function.Function, *function.Config, error) {
	f, err := mustFunction(tx, name, s.ARN(ctx, name, ""))
	if err != nil {
		return nil, nil, err
	}
	latest, err := tx.Version(name, function.Latest)
	if err != nil {
		return nil, nil, err
	}
	if err := checkRevision(revision, latest.RevisionID); err != nil {
		return nil, nil, err
	}
	return f, latest, nil
}

// UpdateFunctionCode replaces $LATEST's code.
func (s *Service) UpdateFunctionCode(ctx context.Context, in *UpdateFunctionCodeInput) (*function.Config, error) {
	name, err := s.unqualified(ctx, in.FunctionName)
	if err != nil {
		return nil, err
	}
	zip, unzipped, err := s.checkedCode(ctx, &Code{ZipFile: in.ZipFile, S3Bucket: in.S3Bucket, S3Key: in.S3Key, S3ObjectVersion: in.S3ObjectVersion, ImageUri: in.ImageUri})
	if err != nil {
		return nil, err
	}
	digest := sha(zip)
	if !in.DryRun {
		release, err := s.db.SaveCode(digest, zip)
		if err != nil {
			return nil, internal("save code", err)
		}
		defer release()
	}
	var out *function.Config
	err = s.update(ctx, func(tx Tx) error {
		f, latest, err := s.latest(ctx, tx, name, in.RevisionId)
		if err != nil {
			return err
		}
		c := *latest
		c.CodeSha256, c.CodeSize, c.UnzippedSize = digest, int64(len(zip)), unzipped
		if err := s.checkUnzipped(&c); err != nil {
			return err
		}
		if len(in.Architectures) > 0 {
			c.Architectures = in.Architectures
		}
		c.LastModified, c.RevisionID = s.opts.Now(), uuid.New()
		out = &c
		if in.DryRun {
			return nil
		}
		if err := tx.PutVersion(&c); err != nil {
			return err
		}
		if in.Publish {
			if out, err = publish(tx, f, &c, ""); err != nil {
				return err
			}
			return tx.PutFunction(f)
		}
		return nil
	})
	return out, internal("update function code", err)
}

// UpdateFunctionConfigurationInput is UpdateFunctionConfiguration's request.
type UpdateFunctionConfigurationInput struct {
	FunctionName     string
	Role             *string
	Handler          *string
	Description      *string
	Timeout          *int
	MemorySize       *int
	Environment      *Environment
	Runtime          *string
	RevisionId       string
	EphemeralStorage *struct{ Size int }
	TracingConfig    *TracingConfig
	// Layers replaces the function's layers when set (an empty list
	// removes them all).
	Layers *[]string
}

// UpdateFunctionConfiguration changes $LATEST's settings.
func (s *Service) UpdateFunctionConfiguration(ctx context.Context, in *UpdateFunctionConfigurationInput) (*function.Config, error) {
	name, err := s.unqualified(ctx, in.FunctionName)
	if err != nil {
		return nil, err
	}
	if in.Role != nil {
		if err := s.checkRole(ctx, *in.Role); err != nil {
			return nil, err
		}
	}
	// Only a runtime the caller names is checked: AWS lets a function on a
	// retired runtime change its other settings, and refuses naming the
	// retired runtime itself.
	if in.Runtime != nil {
		if err := s.checkRuntime(*in.Runtime); err != nil {
			return nil, err
		}
	}
	var out *function.Config
	var shared SharedLayers
	if in.Layers != nil {
		if shared, err = s.sharedLayers(ctx, *in.Layers); err != nil {
			return nil, err
		}
	}
	err = s.update(ctx, func(tx Tx) error {
		_, latest, err := s.latest(ctx, tx, name, in.RevisionId)
		if err != nil {
			return err
		}
		c := *latest
		set(&c.Role, in.Role)
		set(&c.Handler, in.Handler)
		set(&c.Description, in.Description)
		set(&c.Runtime, in.Runtime)
		set(&c.Timeout, in.Timeout)
		set(&c.MemorySize, in.MemorySize)
		if in.Environment != nil {
			c.Environment = maps.Clone(in.Environment.Variables)
			if len(c.Environment) == 0 {
				c.Environment = nil
			}
		}
		if in.EphemeralStorage != nil {
			c.Ephemeral = in.EphemeralStorage.Size
		}
		if in.TracingConfig != nil && in.TracingConfig.Mode != "" {
			c.TracingMode = in.TracingConfig.Mode
		}
		if in.Layers != nil {
			if c.Layers, err = s.layersOf(ctx, tx, *in.Layers, shared); err != nil {
				return err
			}
			if err := s.checkUnzipped(&c); err != nil {
				return err
			}
		}
		c.LastModified, c.RevisionID = s.opts.Now(), uuid.New()
		out = &c
		return tx.PutVersion(&c)
	})
	return out, internal("update function configuration", err)
}

func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

// DeleteFunction deletes a function with everything it has, or one
// published version when a qualifier is given.
func (s *Service) DeleteFunction(ctx context.Context, name, qualifier string) error {
	ref, err := s.names(ctx).ParseWithQualifier(name, qualifier)
	if err != nil {
		return err
	}
	if ref.Qualifier == function.Latest {
		return awserr.New(awserr.InvalidParameterValue, "$LATEST version cannot be deleted without deleting the function.")
	}
	if ref.Qualifier != "" && !function.IsVersion(ref.Qualifier) {
		return awserr.New(awserr.InvalidParameterValue, "Deletion of aliases is not supported by DeleteFunction. Use DeleteAlias instead.")
	}
	err = s.update(ctx, func(tx Tx) error {
		f, err := mustFunction(tx, ref.Name, s.ARN(ctx, ref.Name, ref.Qualifier))
		if err != nil {
			return err
		}
		if ref.Qualifier == "" {
			if f.Reserved != nil {
				if err := s.appendAudit(ctx, tx, "DeleteFunction", ref.Name, f.Reserved, nil); err != nil {
					return err
				}
			}
			return tx.DeleteFunction(ref.Name)
		}
		if _, err := tx.Version(ref.Name, ref.Qualifier); errors.Is(err, store.ErrNotFound) {
			return awserr.FunctionNotFound(s.ARN(ctx, ref.Name, ref.Qualifier))
		} else if err != nil {
			return err
		}
		var using []string
		aliases, err := tx.Aliases(ref.Name, "", 1<<20)
		if err != nil {
			return err
		}
		for _, a := range aliases {
			if _, weighted := a.RoutingWeights[ref.Qualifier]; a.FunctionVersion == ref.Qualifier || weighted {
				using = append(using, a.Name)
			}
		}
		if len(using) > 0 {
			return awserr.New(awserr.ResourceConflict, "Unable to delete version because the following aliases reference it: %v", using)
		}
		if err := s.dropProvisioned(ctx, tx, ref.Name, ref.Qualifier); err != nil {
			return err
		}
		if err := dropPolicy(tx, f, ref.Qualifier); err != nil {
			return err
		}
		return tx.DeleteVersion(ref.Name, ref.Qualifier)
	})
	if err != nil {
		return internal("delete function", err)
	}
	return nil
}

// PublishVersionInput is PublishVersion's request.
type PublishVersionInput struct {
	FunctionName string
	CodeSha256   string
	Description  string
	RevisionId   string
}

// PublishVersion publishes $LATEST as a new version, unless $LATEST is
// unchanged since the last version, which is then returned as AWS does.
func (s *Service) PublishVersion(ctx context.Context, in *PublishVersionInput) (*function.Config, error) {
	name, err := s.unqualified(ctx, in.FunctionName)
	if err != nil {
		return nil, err
	}
	var out *function.Config
	err = s.update(ctx, func(tx Tx) error {
		f, err := mustFunction(tx, name, s.ARN(ctx, name, ""))
		if err != nil {
			return err
		}
		latest, err := tx.Version(name, function.Latest)
		if err != nil {
			return err
		}
		if in.CodeSha256 != "" && in.CodeSha256 != latest.CodeSha256 {
			return awserr.New(awserr.InvalidParameterValue, "CodeSHA256 (%s) is different from current CodeSHA256 in $LATEST (%s). Please try again with the current CodeSHA256.", in.CodeSha256, latest.CodeSha256)
		}
		if err := checkRevision(in.RevisionId, latest.RevisionID); err != nil {
			return err
		}
		if f.LastVersion > 0 {
			prev, err := tx.Version(name, strconv.Itoa(f.LastVersion))
			if err == nil && unchanged(f, prev, latest) && (in.Description == "" || in.Description == prev.Description) {
				out = prev
				return nil
			}
		}
		if out, err = publish(tx, f, latest, in.Description); err != nil {
			return err
		}
		return tx.PutFunction(f)
	})
	return out, internal("publish version", err)
}

// unchanged reports whether $LATEST is as it was when prev, the last
// version, was published from it: same code and same configuration. Every
// change to $LATEST gives it a new RevisionId; records from before the
// revision was kept compare the code and the time of the last change.
func unchanged(f *function.Function, prev, latest *function.Config) bool {
	if f.PublishedRevision != "" {
		return f.PublishedRevision == latest.RevisionID
	}
	return prev.CodeSha256 == latest.CodeSha256 && prev.LastModified.Equal(latest.LastModified)
}

// page reads the paging parameters of a per-function List operation: the
// unqualified function, the position after which the page starts (from
// the marker, which must be this function's), and the page size (at most
// 50, AWS's largest page).
func (s *Service) page(ctx context.Context, functionName, marker string, maxItems *int) (name, after string, limit int, err error) {
	if name, err = s.unqualified(ctx, functionName); err != nil {
		return "", "", 0, err
	}
	limit = 50
	if maxItems != nil {
		limit = min(*maxItems, 50)
	}
	if marker != "" {
		fn, pos, err := decodeMarker(marker)
		if err != nil || fn != name {
			return "", "", 0, awserr.New(awserr.InvalidParameterValue, "Invalid Marker: %s", marker)
		}
		after = pos
	}
	return name, after, limit, nil
}

// ListVersions lists a function's versions, $LATEST first.
func (s *Service) ListVersions(ctx context.Context, name, marker string, maxItems *int) ([]*function.Config, string, error) {
	fname, after, limit, err := s.page(ctx, name, marker, maxItems)
	if err != nil {
		return nil, "", err
	}
	var out []*function.Config
	next := ""
	err = s.view(ctx, func(tx Tx) error {
		if _, err := mustFunction(tx, fname, s.ARN(ctx, fname, "")); err != nil {
			return err
		}
		vs, err := tx.Versions(fname, after, limit+1)
		if err != nil {
			return err
		}
		if len(vs) > limit {
			vs = vs[:limit]
			next = encodeMarker(fname, vs[limit-1].Version)
		}
		out = vs
		return nil
	})
	return out, next, internal("list versions", err)
}

// CodeFile returns the file holding the code archive whose SHA-256 is the
// given hex string, and whether it exists.
func (s *Service) CodeFile(hexSHA string) (string, bool) {
	raw, err := hex.DecodeString(hexSHA)
	if err != nil {
		return "", false
	}
	path := s.db.CodePath(base64.StdEncoding.EncodeToString(raw))
	_, err = os.Stat(path)
	return path, err == nil
}
