package function

import (
	"strings"

	"github.com/lambdad/lambdad/internal/awserr"
)

// Latest is the qualifier of a function's unpublished version.
const Latest = "$LATEST"

// Limits on names and qualifiers.
const (
	// MaxNameLen is the longest function name AWS stores. The model lets
	// longer names through (an ARN may be 140 characters); they can only
	// name a function that does not exist.
	MaxNameLen = 64
	// MaxQualifierLen is the longest qualifier (an alias name is the
	// longest kind).
	MaxQualifierLen = 128
)

// Ref is a parsed FunctionName: which account's function, and which of its
// versions or aliases.
type Ref struct {
	Account   string // the twelve-digit account the function belongs to
	Name      string // function name
	Qualifier string // from the ":qualifier" suffix or the Qualifier parameter; "" if none
}

// Key is what names one function on the server: its account and its name.
// Every map of per-function state is keyed by it, so that two accounts'
// functions of the same name never share anything.
type Key struct {
	Account string
	Name    string
}

// Key is the function the reference names, without its qualifier.
func (r Ref) Key() Key { return Key{Account: r.Account, Name: r.Name} }

// Parser turns the FunctionName parameter into a Ref. It knows the region
// and the caller's account because a name given as an ARN must point at
// them; the Refs it returns belong to that account.
// Region must be a region name of AWS's form (us-east-1) and Account twelve
// digits, or the ARNs it builds would not parse back.
type Parser struct{ Region, Account string }

// Parse parses a function name, a full ARN or a partial ARN, each optionally
// followed by ":qualifier".
//
// The parts are assigned as AWS's own pattern assigns them,
//
//	(arn:(aws[a-zA-Z-]*)?:lambda:)?(<region>:)?(\d{12}:)?(function:)?(<name>)(:<qualifier>)?
//
// matched in full with each optional group taken when the rest still
// matches: "123456789012:function:f" is a partial ARN, "f:1" is a name with
// qualifier "1", and the rarer forms the pattern allows ("function:f",
// "us-east-1:f") read the same way.
//
// A name that does not fit that shape is a 400 InvalidParameterValueException
// (the API's pattern check normally answers first). An ARN for another region
// or account, a name longer than MaxNameLen or a qualifier longer than
// MaxQualifierLen is a 404, as AWS answers for what does not exist.
func (p Parser) Parse(s string) (Ref, error) {
	f, err := p.parse(s)
	if err != nil {
		return Ref{}, err
	}
	return p.finish(f)
}

// ParseNew parses the FunctionName of a function to be created. It differs
// from Parse in one answer, recorded from AWS: a name longer than
// MaxNameLen cannot be created, so instead of the 404 for a function that
// does not exist it is a 400 InvalidParameterValueException worded like a
// model violation (the model allows 140 characters, for ARNs).
func (p Parser) ParseNew(s string) (Ref, error) {
	f, err := p.parse(s)
	if err != nil {
		return Ref{}, err
	}
	if len(f.name) > MaxNameLen {
		return Ref{}, awserr.New(awserr.InvalidParameterValue,
			"1 validation error detected: Value '%s' at 'functionName' failed to satisfy constraint: Member must have length less than or equal to %d",
			clip(s), MaxNameLen)
	}
	return p.finish(f)
}

// ParseWithQualifier parses s as Parse does and merges q, the Qualifier query
// parameter ("" when absent). When both give a qualifier they must agree.
func (p Parser) ParseWithQualifier(s, q string) (Ref, error) {
	f, err := p.parse(s)
	if err != nil {
		return Ref{}, err
	}
	if q != "" {
		if !isQueryQualifier(q) {
			return Ref{}, awserr.New(awserr.InvalidParameterValue,
				"Invalid qualifier: '%s'.", clip(q))
		}
		if f.qualifier != "" && f.qualifier != q {
			return Ref{}, awserr.New(awserr.InvalidParameterValue,
				"The derived qualifier from the function name does not match the specified qualifier.")
		}
		f.qualifier = q
	}
	return p.finish(f)
}

// ARN is the unqualified ARN of the named function on this server.
func (p Parser) ARN(name string) string {
	return "arn:aws:lambda:" + p.Region + ":" + p.Account + ":function:" + name
}

// QualifiedARN is the ARN of a version or alias of the named function; with
// no qualifier it is the unqualified ARN.
func (p Parser) QualifiedARN(name, qualifier string) string {
	if qualifier == "" {
		return p.ARN(name)
	}
	return p.ARN(name) + ":" + qualifier
}

// IsVersion reports whether q names a published version: a decimal number
// from 1 up, without leading zeros (AWS numbers versions from 1).
func IsVersion(q string) bool {
	if q == "" || q[0] == '0' {
		return false
	}
	return allDigits(q)
}

// IsAliasName reports whether q can name an alias: 1 to 128 characters of
// [a-zA-Z0-9-_], not all digits (those would read as a version).
func IsAliasName(q string) bool {
	if q == "" || len(q) > MaxQualifierLen || allDigits(q) {
		return false
	}
	for i := 0; i < len(q); i++ {
		if !isWordChar(q[i]) {
			return false
		}
	}
	return true
}

// fnNameFields holds the groups of a FunctionName; the strings are slices of
// the input, so a parse allocates nothing.
type fnNameFields struct {
	input     string
	arn       bool // "arn:<partition>:lambda:" was given
	partition string
	region    string // "" if not given
	account   string // "" if not given
	name      string
	qualifier string
}

// fnNameMaxParts is the most colon-separated parts a FunctionName has:
// arn, partition, lambda, region, account, function, name, qualifier.
const fnNameMaxParts = 8

// match matches s structurally, without asking whether it points at this
// server.
func match(s string) (fnNameFields, bool) {
	var parts [fnNameMaxParts]string
	n := 0
	for rest := s; ; n++ {
		if n == fnNameMaxParts {
			return fnNameFields{}, false
		}
		part, after, more := strings.Cut(rest, ":")
		parts[n] = part
		if !more {
			n++
			break
		}
		rest = after
	}
	f := fnNameFields{input: s}
	if !f.matchARNPrefix(parts[:n]) {
		return fnNameFields{}, false
	}
	return f, true
}

// Qualified reports whether s is a well-formed FunctionName that carries a
// qualifier, whatever region or account it names. Operations on a function
// as a whole refuse a qualifier before any other check, as AWS does.
func Qualified(s string) bool {
	f, ok := match(s)
	return ok && f.qualifier != ""
}

// parse matches s structurally and checks that it points at this server.
func (p Parser) parse(s string) (fnNameFields, error) {
	f, ok := match(s)
	if !ok {
		return fnNameFields{}, invalidFunctionName(s)
	}
	// Region first: an ARN from another region never reaches this
	// region's functions, whatever its account.
	if f.region != "" && f.region != p.Region {
		return fnNameFields{}, awserr.New(awserr.ResourceNotFound,
			"Functions from '%s' are not reachable in this region ('%s')", f.region, p.Region)
	}
	if f.account != "" && f.account != p.Account {
		return fnNameFields{}, awserr.FunctionNotFound(p.givenARN(f))
	}
	return f, nil
}

// finish applies the checks that come after the qualifier is known.
func (p Parser) finish(f fnNameFields) (Ref, error) {
	if len(f.name) > MaxNameLen || len(f.qualifier) > MaxQualifierLen {
		// No function, version or alias can have this name, so AWS
		// answers as for any that does not exist.
		return Ref{}, awserr.FunctionNotFound(p.givenARN(f))
	}
	return Ref{Account: p.Account, Name: f.name, Qualifier: f.qualifier}, nil
}

// givenARN is the full ARN the input names, with the server's region and
// account standing in for the parts it left out. For a full ARN it is the
// input (with the merged qualifier).
func (p Parser) givenARN(f fnNameFields) string {
	partition, region, account := "aws", p.Region, p.Account
	if f.arn {
		partition = f.partition
	}
	if f.region != "" {
		region = f.region
	}
	if f.account != "" {
		account = f.account
	}
	arn := "arn:" + partition + ":lambda:" + region + ":" + account + ":function:" + f.name
	if f.qualifier != "" {
		arn += ":" + f.qualifier
	}
	return arn
}

// The match functions follow the pattern group by group. Each optional group
// is tried taken first and skipped if the rest then fails to match, as a
// backtracking regular expression does; there are at most 2^5 paths.

func (f *fnNameFields) matchARNPrefix(parts []string) bool {
	if len(parts) > 3 && parts[0] == "arn" && isPartition(parts[1]) && parts[2] == "lambda" {
		f.arn, f.partition = true, parts[1]
		if f.matchRegion(parts[3:]) {
			return true
		}
		f.arn, f.partition = false, ""
	}
	return f.matchRegion(parts)
}

func (f *fnNameFields) matchRegion(parts []string) bool {
	if len(parts) > 1 && isRegion(parts[0]) {
		f.region = parts[0]
		if f.matchAccount(parts[1:]) {
			return true
		}
		f.region = ""
	}
	return f.matchAccount(parts)
}

func (f *fnNameFields) matchAccount(parts []string) bool {
	if len(parts) > 1 && len(parts[0]) == 12 && allDigits(parts[0]) {
		f.account = parts[0]
		if f.matchFunctionWord(parts[1:]) {
			return true
		}
		f.account = ""
	}
	return f.matchFunctionWord(parts)
}

func (f *fnNameFields) matchFunctionWord(parts []string) bool {
	if len(parts) > 1 && parts[0] == "function" && f.matchName(parts[1:]) {
		return true
	}
	return f.matchName(parts)
}

func (f *fnNameFields) matchName(parts []string) bool {
	if len(parts) == 0 || len(parts) > 2 || !isFunctionName(parts[0]) {
		return false
	}
	if len(parts) == 2 {
		if !isNameQualifier(parts[1]) {
			return false
		}
		f.qualifier = parts[1]
	}
	f.name = parts[0]
	return true
}

// isPartition matches (aws[a-zA-Z-]*)?.
func isPartition(s string) bool {
	if s == "" {
		return true
	}
	if !strings.HasPrefix(s, "aws") {
		return false
	}
	for i := 3; i < len(s); i++ {
		if c := s[i]; !isLetter(c) && c != '-' {
			return false
		}
	}
	return true
}

// isRegion matches [a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}, for
// example us-east-1, us-gov-west-1, us-isob-east-1.
func isRegion(s string) bool {
	if len(s) < 6 || !isLower(s[0]) || !isLower(s[1]) || s[len(s)-2] != '-' || !isDigit(s[len(s)-1]) {
		return false
	}
	// What is left is "-x" or "-<gov|iso|iso?>-x" with x in [a-z]+.
	mid := s[2 : len(s)-2]
	if mid[0] != '-' {
		return false
	}
	mid = mid[1:]
	if infix, rest, ok := strings.Cut(mid, "-"); ok {
		if infix != "gov" && !(strings.HasPrefix(infix, "iso") && len(infix) <= 4 && allLower(infix)) {
			return false
		}
		mid = rest
	}
	return mid != "" && allLower(mid)
}

// isFunctionName matches [a-zA-Z0-9-_.]+. The dot belongs to the
// namespaced names some operations take.
func isFunctionName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isWordChar(c) && c != '.' {
			return false
		}
	}
	return true
}

// isNameQualifier matches the qualifier group of the FunctionName pattern:
// \$LATEST(\.PUBLISHED)?|[a-zA-Z0-9-_]+.
func isNameQualifier(s string) bool {
	if s == Latest || s == "$LATEST.PUBLISHED" {
		return true
	}
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isWordChar(s[i]) {
			return false
		}
	}
	return true
}

// isQueryQualifier matches the Qualifier query parameter's pattern,
// \$LATEST(\.PUBLISHED)?|[a-zA-Z0-9-_$]+. It is looser than the name
// suffix: a value such as "$1" passes and then names nothing that exists.
// Its length is checked with the suffix's, in finish.
func isQueryQualifier(s string) bool {
	if s == "$LATEST.PUBLISHED" {
		return true
	}
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isWordChar(c) && c != '$' {
			return false
		}
	}
	return true
}

func invalidFunctionName(s string) error {
	return awserr.New(awserr.InvalidParameterValue,
		"Invalid function name or ARN: '%s'. Use a function name, a function ARN or a partial ARN, optionally followed by ':' and a version or alias.",
		clip(s))
}

// clip bounds what a message echoes of a caller's input.
func clip(s string) string {
	const max = 256
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

func allLower(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isLower(s[i]) {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool  { return '0' <= c && c <= '9' }
func isLower(c byte) bool  { return 'a' <= c && c <= 'z' }
func isLetter(c byte) bool { return isLower(c) || 'A' <= c && c <= 'Z' }

// isWordChar matches [a-zA-Z0-9-_].
func isWordChar(c byte) bool { return isLetter(c) || isDigit(c) || c == '-' || c == '_' }
