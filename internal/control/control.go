// Package control is lambdad's control plane: every operation that creates,
// changes or reads functions, versions, aliases and concurrency settings.
// Each operation applies AWS's checks in AWS's order inside one store
// transaction, so a check and the write it guards are one atomic step. The
// operations tell no one of their writes: the in-memory owners (admission,
// the resolve cache, environment retirement, the provisioner) follow the
// store's change feed, through the subscribers in feed.go and resolve.go.
package control

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"time"

	"github.com/lambdad/lambdad/internal/account"
	"github.com/lambdad/lambdad/internal/awserr"
	"github.com/lambdad/lambdad/internal/function"
	"github.com/lambdad/lambdad/internal/store"
)

// Options configure the control plane.
type Options struct {
	Region string
	// AccountID is the account of work no caller started, and the only
	// account of a server without access control.
	AccountID string
	// AccountConcurrency is the account limit L (AWS default 1000).
	AccountConcurrency int
	// MinUnreserved is M, the concurrency that must stay unreserved (AWS
	// default 100). The minimum in force is min(M, L).
	MinUnreserved int
	// Limits gives each account its L and M; when nil every account has
	// AccountConcurrency and MinUnreserved.
	Limits account.Settings
	Logger *slog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// LookPath finds a runtime's interpreter (python3, node) on the
	// machine's PATH, so that CreateFunction refuses a runtime this machine
	// cannot start; exec.LookPath when nil.
	LookPath func(file string) (string, error)
	// S3 reads code given as an S3 object (Code.S3Bucket and S3Key); nil
	// refuses such code.
	S3 CodeFetcher
}

// CodeFetcher reads an S3 object holding a code archive, answering AWS's
// errors when the bucket or object is missing or the object too large.
type CodeFetcher interface {
	Fetch(ctx context.Context, bucket, key, version string) ([]byte, error)
}

// Service is the control plane.
type Service struct {
	db   Store
	opts Options
	log  *slog.Logger
	// statuses reports provisioned environments' live state.
	statuses Statuses
	cache    resolveCache
	policies policyCache
}

// New returns the control plane over db (Bolt for the embedded store).
// statuses may be nil (every provisioned config then reads as
// IN_PROGRESS). Once a write of db.Update returns nil, the change is
// durable and every subscriber of the store's feed (admission, the resolve
// cache, the provisioner, ...) has applied it.
func New(db Store, opts Options, statuses Statuses) (*Service, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.LookPath == nil {
		opts.LookPath = exec.LookPath
	}
	if opts.Limits == nil {
		opts.Limits = account.Uniform{Concurrency: opts.AccountConcurrency, MinUnreserved: opts.MinUnreserved}
	}
	s := &Service{db: db, opts: opts, log: opts.Logger, statuses: statuses}
	if err := db.Subscribe(&s.cache); err != nil {
		return nil, err
	}
	return s, nil
}

// Names is the parser for the FunctionName values of account's requests.
func (s *Service) Names(account string) function.Parser {
	return function.Parser{Region: s.opts.Region, Account: account}
}

// NamesOf is the parser for the FunctionName values of ctx's caller.
func (s *Service) NamesOf(ctx context.Context) function.Parser { return s.Names(s.account(ctx)) }

func (s *Service) names(ctx context.Context) function.Parser { return s.NamesOf(ctx) }

// account is the account the request acts in: the caller's, or the
// server's own for work that no caller started.
func (s *Service) account(ctx context.Context) string { return account.Of(ctx, s.opts.AccountID) }

// view and update run fn in a transaction on the caller's account.
func (s *Service) view(ctx context.Context, fn func(Tx) error) error {
	return s.db.View(ctx, s.account(ctx), fn)
}

func (s *Service) update(ctx context.Context, fn func(Tx) error) error {
	return s.db.Update(ctx, s.account(ctx), fn)
}

// Options returns the settings the service runs with.
func (s *Service) Options() Options { return s.opts }

// limits are the concurrency rules of the caller's account.
func (s *Service) limits(ctx context.Context) account.Limits {
	return s.opts.Limits.Limits(s.account(ctx))
}

// callerOf is the request's caller (the zero Caller for work no request
// started).
func callerOf(ctx context.Context) account.Caller {
	c, _ := account.CallerOf(ctx)
	return c
}

// internal wraps an unexpected store failure; the renderer shows the client
// a ServiceException and logs the cause.
func internal(op string, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := awserr.As(err); ok {
		return err
	}
	return fmt.Errorf("%s: %w", op, err)
}

// mustFunction reads a function's record, turning absence into AWS's 404
// naming arn.
func mustFunction(tx Tx, name, arn string) (*function.Function, error) {
	f, err := tx.Function(name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, awserr.FunctionNotFound(arn)
	}
	return f, err
}
