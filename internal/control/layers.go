package control

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"regexp"
	"slices"
	"strconv"

	"github.com/lambdad/lambdad/internal/archive"
	"github.com/lambdad/lambdad/internal/awserr"
	"github.com/lambdad/lambdad/internal/function"
	"github.com/lambdad/lambdad/internal/policy"
	"github.com/lambdad/lambdad/internal/store"
)

// LayerContent is PublishLayerVersion's Content.
type LayerContent struct {
	ZipFile         []byte
	S3Bucket        string
	S3Key           string
	S3ObjectVersion string
}

// PublishLayerVersionInput is PublishLayerVersion's request.
type PublishLayerVersionInput struct {
	LayerName               string
	Description             string
	Content                 LayerContent
	CompatibleRuntimes      []string
	CompatibleArchitectures []string
	LicenseInfo             string
}

// layerRef parses a LayerName parameter into a layer of the caller's.
func (s *Service) layerRef(ctx context.Context, name string) (function.LayerRef, error) {
	p := s.names(ctx)
	ref, err := p.ParseLayerName(name)
	if err != nil {
		return ref, err
	}
	if ref.Account != p.Account || ref.Region != p.Region {
		return ref, layerAccessDenied(ctx, p.LayerARN(ref.Name))
	}
	return ref, nil
}

// layerAccessDenied is AWS's answer for another account's layer that its
// version policy does not share with the caller (sharedLayerVersion), and
// for any other operation on another account's layer: a layer version
// policy grants lambda:GetLayerVersion and nothing else.
func layerAccessDenied(ctx context.Context, arn string) error {
	return awserr.New(awserr.AccessDenied, "User: %s is not authorized to perform: lambda:GetLayerVersion on resource: %s", callerARN(ctx), arn)
}

func callerARN(ctx context.Context) string {
	c := callerOf(ctx)
	if c.Principal != "" {
		return c.Principal
	}
	if c.Account == "" {
		return "anonymous"
	}
	return "arn:aws:iam::" + c.Account + ":root"
}

// PublishLayerVersion publishes the next version of a layer, creating the
// layer with version 1.
func (s *Service) PublishLayerVersion(ctx context.Context, in *PublishLayerVersionInput) (*function.LayerVersion, error) {
	ref, err := s.layerRef(ctx, in.LayerName)
	if err != nil {
		return nil, err
	}
	for _, rt := range in.CompatibleRuntimes {
		if err := function.CheckLayerRuntime(rt); err != nil {
			return nil, err
		}
	}
	zip, err := s.code(ctx, &Code{ZipFile: in.Content.ZipFile, S3Bucket: in.Content.S3Bucket, S3Key: in.Content.S3Key, S3ObjectVersion: in.Content.S3ObjectVersion})
	if err != nil {
		return nil, err
	}
	unzipped, err := archive.Check(zip, archive.MaxUnzipped)
	if err != nil {
		return nil, err
	}
	lv := &function.LayerVersion{
		Name: ref.Name, Description: in.Description, LicenseInfo: in.LicenseInfo,
		CompatibleRuntimes: in.CompatibleRuntimes, CompatibleArchitectures: in.CompatibleArchitectures,
		CodeSha256: sha(zip), CodeSize: int64(len(zip)), UnzippedSize: unzipped, Created: s.opts.Now(),
	}
	release, err := s.db.SaveCode(lv.CodeSha256, zip)
	if err != nil {
		return nil, internal("save code", err)
	}
	defer release()
	err = s.update(ctx, func(tx Tx) error {
		l, err := tx.Layer(ref.Name)
		if errors.Is(err, store.ErrNotFound) {
			l, err = &function.Layer{Name: ref.Name}, nil
		}
		if err != nil {
			return err
		}
		l.LastVersion++
		lv.Version = l.LastVersion // set afresh on every run of the body
		if err := tx.PutLayer(l); err != nil {
			return err
		}
		return tx.PutLayerVersion(lv)
	})
	if err != nil {
		return nil, internal("publish layer version", err)
	}
	return lv, nil
}

func layerVersionNotFound() error {
	return awserr.New(awserr.ResourceNotFound, "The resource you requested does not exist.")
}

// GetLayerVersion reads one version of a layer of the caller's, or of
// another account's layer whose version policy shares it with the caller.
func (s *Service) GetLayerVersion(ctx context.Context, name string, version int64) (*function.LayerVersion, error) {
	p := s.names(ctx)
	ref, err := p.ParseLayerName(name)
	if err != nil {
		return nil, err
	}
	if ref.Account != p.Account || ref.Region != p.Region {
		ref.Version = version
		return s.sharedLayerVersion(ctx, ref, layerVersionARN(ref))
	}
	var lv *function.LayerVersion
	err = s.view(ctx, func(tx Tx) error {
		lv, err = tx.LayerVersion(ref.Name, version)
		if errors.Is(err, store.ErrNotFound) {
			return layerVersionNotFound()
		}
		return err
	})
	if err != nil {
		return nil, internal("get layer version", err)
	}
	return lv, nil
}

// GetLayerVersionByArn reads a layer version by its ARN.
func (s *Service) GetLayerVersionByArn(ctx context.Context, arn string) (*function.LayerVersion, error) {
	ref, ok := function.ParseLayerVersionARN(arn)
	if !ok {
		return nil, awserr.New(awserr.InvalidParameterValue, "Invalid Layer Version Arn: %s", arn)
	}
	p := s.names(ctx)
	if ref.Account != p.Account || ref.Region != p.Region {
		return s.sharedLayerVersion(ctx, ref, arn)
	}
	return s.GetLayerVersion(ctx, ref.Name, ref.Version)
}

// DeleteLayerVersion deletes a layer version; deleting one that is not
// there succeeds, as on AWS. Functions that use it keep its code.
func (s *Service) DeleteLayerVersion(ctx context.Context, name string, version int64) error {
	ref, err := s.layerRef(ctx, name)
	if err != nil {
		return err
	}
	err = s.update(ctx, func(tx Tx) error {
		err := tx.DeleteLayerVersion(ref.Name, version)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		// The version's policy goes with it.
		l, err := tx.Layer(ref.Name)
		if err != nil || l.Policies[version] == nil {
			return err
		}
		l.Policies = withPolicy(l.Policies, version, nil)
		return tx.PutLayer(l)
	})
	return internal("delete layer version", err)
}

// pageSize is a List operation's page: MaxItems, at most AWS's 50.
func pageSize(maxItems *int) int {
	if maxItems != nil {
		return min(*maxItems, 50)
	}
	return 50
}

// ListLayers lists the caller's layers that have a version passing the
// filter, in name order, a page at a time: for each, its newest version
// that passes. It reads every version of the layers it passes over, which
// is cheap while an account has layers by the hundred, not the million.
func (s *Service) ListLayers(ctx context.Context, f function.LayerFilter, marker string, maxItems *int) ([]*function.LayerVersion, string, error) {
	limit := pageSize(maxItems)
	after, _, err := decodeMarker(marker)
	if err != nil {
		return nil, "", err
	}
	var out []*function.LayerVersion
	next := ""
	err = s.view(ctx, func(tx Tx) error {
		out, next = nil, ""
		layers, err := tx.Layers(after, -1)
		if err != nil {
			return err
		}
		for _, l := range layers {
			vs, err := tx.LayerVersions(l.Name, 0, -1)
			if err != nil {
				return err
			}
			i := slices.IndexFunc(vs, f.Match)
			if i < 0 {
				continue
			}
			if len(out) == limit {
				next = encodeMarker(out[limit-1].Name, "")
				return nil
			}
			out = append(out, vs[i])
		}
		return nil
	})
	return out, next, internal("list layers", err)
}

// ListLayerVersions lists a layer's versions that pass the filter, newest
// first, a page at a time. A layer that does not exist has none.
func (s *Service) ListLayerVersions(ctx context.Context, name string, f function.LayerFilter, marker string, maxItems *int) ([]*function.LayerVersion, string, error) {
	ref, err := s.layerRef(ctx, name)
	if err != nil {
		return nil, "", err
	}
	limit := pageSize(maxItems)
	var before int64
	if marker != "" {
		n, err := strconv.ParseInt(marker, 10, 64)
		if err != nil || n < 1 {
			return nil, "", awserr.New(awserr.InvalidParameterValue, "Invalid Marker: %s", marker)
		}
		before = n
	}
	var out []*function.LayerVersion
	next := ""
	err = s.view(ctx, func(tx Tx) error {
		out, next = nil, ""
		vs, err := tx.LayerVersions(ref.Name, before, -1)
		if err != nil {
			return err
		}
		for _, v := range vs {
			if !f.Match(v) {
				continue
			}
			if len(out) == limit {
				next = strconv.FormatInt(out[limit-1].Version, 10)
				return nil
			}
			out = append(out, v)
		}
		return nil
	})
	return out, next, internal("list layer versions", err)
}

// SharedLayers are the versions of other accounts' layers a function's
// Layers name, read before the function's transaction (which is on the
// caller's account alone) by sharedLayers, by ARN.
type SharedLayers map[string]*function.LayerVersion

// sharedLayers reads the versions of other accounts' layers among arns,
// each allowed by its version policy (sharedLayerVersion); ARNs that do
// not parse and the caller's own layers are left to layersOf.
func (s *Service) sharedLayers(ctx context.Context, arns []string) (SharedLayers, error) {
	if len(arns) > function.MaxLayers {
		return nil, nil // layersOf refuses them
	}
	p := s.names(ctx)
	var out SharedLayers
	for _, arn := range arns {
		ref, ok := function.ParseLayerVersionARN(arn)
		if !ok || (ref.Account == p.Account && ref.Region == p.Region) {
			continue
		}
		lv, err := s.sharedLayerVersion(ctx, ref, arn)
		if err != nil {
			return nil, err
		}
		if out == nil {
			out = SharedLayers{}
		}
		out[arn] = lv
	}
	return out, nil
}

// layersOf resolves a function's Layers (version ARNs) to what its
// configuration keeps, in order, with AWS's checks; other accounts'
// versions come from shared.
func (s *Service) layersOf(ctx context.Context, tx Tx, arns []string, shared SharedLayers) ([]function.LayerUse, error) {
	if len(arns) > function.MaxLayers {
		return nil, awserr.New(awserr.InvalidParameterValue, "Cannot reference more than %d layers.", function.MaxLayers)
	}
	p := s.names(ctx)
	var out []function.LayerUse
	seen := map[string]bool{}
	for _, arn := range arns {
		ref, ok := function.ParseLayerVersionARN(arn)
		if !ok {
			return nil, awserr.New(awserr.InvalidParameterValue, "Layer version arn %s is not valid.", arn)
		}
		// Two layers of the same name in different accounts are
		// different layers.
		layer := ref.Region + ":" + ref.Account + ":" + ref.Name
		if seen[layer] {
			return nil, awserr.New(awserr.InvalidParameterValue, "Two different versions of the same layer are not allowed.")
		}
		seen[layer] = true
		var lv *function.LayerVersion
		if ref.Account != p.Account || ref.Region != p.Region {
			if lv = shared[arn]; lv == nil {
				return nil, layerAccessDenied(ctx, arn)
			}
		} else {
			var err error
			lv, err = tx.LayerVersion(ref.Name, ref.Version)
			if errors.Is(err, store.ErrNotFound) {
				return nil, awserr.New(awserr.InvalidParameterValue, "Layer version %s does not exist.", arn)
			}
			if err != nil {
				return nil, err
			}
		}
		out = append(out, function.LayerUse{Arn: arn, CodeSha256: lv.CodeSha256, CodeSize: lv.CodeSize, UnzippedSize: lv.UnzippedSize})
	}
	return out, nil
}

// checkUnzipped applies AWS's 250 MB limit to a configuration's code and
// layers together.
func (s *Service) checkUnzipped(c *function.Config) error {
	total := c.UnzippedSize
	if total == 0 && len(c.Layers) > 0 {
		// A record from before the size was kept: measure the archive.
		if zip, err := os.ReadFile(s.db.CodePath(c.CodeSha256)); err == nil {
			total, _ = archive.Check(zip, 1<<62)
		}
	}
	for _, l := range c.Layers {
		total += l.UnzippedSize
	}
	if total > archive.MaxUnzipped {
		return awserr.New(awserr.InvalidParameterValue, "Function code combined with layers exceeds the maximum allowed size of %d bytes. The actual size is %d bytes.", archive.MaxUnzipped, total)
	}
	return nil
}

// Layer version policies: AddLayerVersionPermission writes statements as
// AWS does (an account principal becomes its root ARN, "*" stays "*", an
// OrganizationId becomes an aws:PrincipalOrgID condition), each version's
// policy has its own RevisionId, and the policy decides whether another
// account may read the version (GetLayerVersion, GetLayerVersionByArn)
// and use it in a function's Layers. lambdad knows no organizations, so
// a statement limited to one never matches.

// AddLayerVersionPermissionInput is AddLayerVersionPermission's request.
type AddLayerVersionPermissionInput struct {
	LayerName      string
	VersionNumber  int64
	StatementId    string
	Action         string
	Principal      string
	OrganizationId string
	RevisionId     string
}

// layerPrincipal is the model's pattern for a layer permission's
// Principal, anchored.
var layerPrincipal = regexp.MustCompile(`^(\d{12}|\*|arn:(aws[a-zA-Z-]*):iam::\d{12}:root)$`)

func layerVersionARN(ref function.LayerRef) string {
	return "arn:aws:lambda:" + ref.Region + ":" + ref.Account + ":layer:" + ref.Name + ":" + strconv.FormatInt(ref.Version, 10)
}

// AddLayerVersionPermission adds a statement to a layer version's policy
// and returns the statement and the policy's new revision.
func (s *Service) AddLayerVersionPermission(ctx context.Context, in *AddLayerVersionPermissionInput) (statementJSON, revision string, err error) {
	ref, err := s.layerRef(ctx, in.LayerName)
	if err != nil {
		return "", "", err
	}
	ref.Version = in.VersionNumber
	// The model's patterns are checked before the request gets here;
	// these hold for callers that do not come through the API.
	if in.Action != "lambda:GetLayerVersion" {
		return "", "", awserr.New(awserr.InvalidParameterValue, "Action must be lambda:GetLayerVersion.")
	}
	if !layerPrincipal.MatchString(in.Principal) {
		return "", "", awserr.New(awserr.InvalidParameterValue, "The provided principal was invalid. Please check the principal and try again.")
	}
	// An organization narrows "*" to its accounts; with an account
	// principal it would mean nothing (inferred wording).
	if in.OrganizationId != "" && in.Principal != "*" {
		return "", "", awserr.New(awserr.InvalidParameterValue, "OrganizationId can only be specified when Principal is *.")
	}
	st := statement{Sid: in.StatementId, Effect: "Allow", Action: in.Action, Resource: layerVersionARN(ref)}
	switch p := in.Principal; {
	case p == "*":
		st.Principal = "*"
	case accountPrincipal.MatchString(p):
		st.Principal = map[string]string{"AWS": "arn:aws:iam::" + p + ":root"}
	default:
		st.Principal = map[string]string{"AWS": p}
	}
	if in.OrganizationId != "" {
		st.Condition, _ = json.Marshal(map[string]map[string]string{"StringEquals": {"aws:PrincipalOrgID": in.OrganizationId}})
	}
	raw, err := json.Marshal(st)
	if err != nil {
		return "", "", err
	}
	err = s.update(ctx, func(tx Tx) error {
		revision = ""
		l, err := mustLayerVersion(tx, ref)
		if err != nil {
			return err
		}
		old := l.Policies[ref.Version]
		if err := checkPolicyRevision(old, in.RevisionId, "GetLayerVersionPolicy"); err != nil {
			return err
		}
		p, err := withStatement(old, in.StatementId, raw)
		if err != nil {
			return err
		}
		l.Policies = withPolicy(l.Policies, ref.Version, p)
		revision = p.RevisionID
		return tx.PutLayer(l)
	})
	if err != nil {
		return "", "", internal("add layer version permission", err)
	}
	return string(raw), revision, nil
}

// RemoveLayerVersionPermission removes a statement from a layer version's
// policy by its id.
func (s *Service) RemoveLayerVersionPermission(ctx context.Context, name string, version int64, sid, revision string) error {
	ref, err := s.layerRef(ctx, name)
	if err != nil {
		return err
	}
	ref.Version = version
	err = s.update(ctx, func(tx Tx) error {
		l, err := mustLayerVersion(tx, ref)
		if err != nil {
			return err
		}
		old := l.Policies[ref.Version]
		if old == nil {
			return noPolicy()
		}
		if err := checkPolicyRevision(old, revision, "GetLayerVersionPolicy"); err != nil {
			return err
		}
		p, err := withoutStatement(old, sid)
		if err != nil {
			return err
		}
		l.Policies = withPolicy(l.Policies, ref.Version, p)
		return tx.PutLayer(l)
	})
	return internal("remove layer version permission", err)
}

// GetLayerVersionPolicy returns a layer version's policy document and its
// revision.
func (s *Service) GetLayerVersionPolicy(ctx context.Context, name string, version int64) (doc, revision string, err error) {
	ref, err := s.layerRef(ctx, name)
	if err != nil {
		return "", "", err
	}
	ref.Version = version
	var p *function.Policy
	err = s.view(ctx, func(tx Tx) error {
		l, err := mustLayerVersion(tx, ref)
		if err != nil {
			return err
		}
		p = l.Policies[ref.Version]
		return nil
	})
	if err != nil {
		return "", "", internal("get layer version policy", err)
	}
	if p == nil {
		return "", "", noPolicy()
	}
	return policyDocument(p), p.RevisionID, nil
}

// mustLayerVersion reads the record of the layer of an existing version,
// where its policy is kept, or AWS's 404 for the version.
func mustLayerVersion(tx Tx, ref function.LayerRef) (*function.Layer, error) {
	if _, err := tx.LayerVersion(ref.Name, ref.Version); errors.Is(err, store.ErrNotFound) {
		return nil, layerVersionNotFound()
	} else if err != nil {
		return nil, err
	}
	l, err := tx.Layer(ref.Name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, layerVersionNotFound()
	}
	return l, err
}

// sharedLayerVersion reads a version of another account's layer for the
// caller when the version's policy allows the caller lambda:GetLayerVersion
// on it, and answers AccessDeniedException otherwise, whether or not the
// version exists, so that an account learns nothing of layers not shared
// with it. A layer of another region is never reachable. It runs in a
// transaction of its own on the owner's account, never inside one on the
// caller's.
func (s *Service) sharedLayerVersion(ctx context.Context, ref function.LayerRef, arn string) (*function.LayerVersion, error) {
	if ref.Region != s.names(ctx).Region {
		return nil, layerAccessDenied(ctx, arn)
	}
	var lv *function.LayerVersion
	var p *function.Policy
	err := s.db.View(ctx, ref.Account, func(tx Tx) error {
		lv, p = nil, nil
		l, err := tx.Layer(ref.Name)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if p = l.Policies[ref.Version]; p == nil {
			return nil
		}
		lv, err = tx.LayerVersion(ref.Name, ref.Version)
		if errors.Is(err, store.ErrNotFound) {
			lv, err = nil, nil
		}
		return err
	})
	if err != nil {
		return nil, internal("get shared layer version", err)
	}
	if lv == nil || !s.layerPolicyAllows(ctx, p, layerVersionARN(ref)) {
		return nil, layerAccessDenied(ctx, arn)
	}
	lv.Owner = ref.Account
	return lv, nil
}

// layerPolicyAllows evaluates a layer version's policy for the caller's
// lambda:GetLayerVersion on the version's ARN, by the rules of a
// resource-based policy (package policy): an explicit Deny would refuse,
// an Allow naming "*", the caller's account or its root ARN allows.
func (s *Service) layerPolicyAllows(ctx context.Context, p *function.Policy, arn string) bool {
	doc, err := policy.Parse([]byte(policyDocument(p)))
	if err != nil {
		// Statements are written by AddLayerVersionPermission alone; a
		// policy that does not parse grants nothing.
		s.log.WarnContext(ctx, "a layer version policy does not parse", "layer", arn, "err", err)
		return false
	}
	c := callerOf(ctx)
	acct := s.account(ctx)
	req := &policy.Request{Action: "lambda:GetLayerVersion", Resource: arn, PrincipalARN: c.Principal, PrincipalAccount: acct, Time: s.opts.Now()}
	return doc.EvaluateResource(req, arn) == policy.Allowed
}
