package control

import (
	"context"
	"log/slog"

	"github.com/lambdad/lambdad/internal/account"
	"github.com/lambdad/lambdad/internal/awserr"
	"github.com/lambdad/lambdad/internal/function"
	"github.com/lambdad/lambdad/internal/store"
)

// PutFunctionConcurrency sets a function's reserved concurrency, with
// AWS's checks in AWS's order. invalid is the request's deferred model
// violation (n missing or negative), which AWS reports only after the name
// checks.
func (s *Service) PutFunctionConcurrency(ctx context.Context, name string, n *int, invalid error) (int, error) {
	fname, err := s.unqualified(ctx, name)
	if err != nil {
		return 0, err
	}
	err = s.update(ctx, func(tx Tx) error {
		f, err := mustFunction(tx, fname, s.ARN(ctx, fname, function.Latest))
		if err != nil {
			return err
		}
		if invalid != nil {
			return invalid
		}
		var others int64
		if *n > 0 {
			sums, err := tx.Sums()
			if err != nil {
				return err
			}
			// The function's claim becomes n, whatever it was (its
			// reservation, or its provisioned concurrency without one).
			others = sums.Claimed()
			if f.Reserved != nil {
				others -= int64(*f.Reserved)
			} else {
				others -= int64(f.Provisioned)
			}
		}
		if err := CheckReservation(s.limits(ctx), others, *n, f.Provisioned); err != nil {
			return err
		}
		old := f.Reserved
		f.Reserved = n
		if err := tx.PutFunction(f); err != nil {
			return err
		}
		return s.appendAudit(ctx, tx, "PutFunctionConcurrency", fname, old, n)
	})
	if err != nil {
		return 0, internal("put function concurrency", err)
	}
	return *n, nil
}

// CheckReservation is PutFunctionConcurrency's check of a reservation of
// n for a function whose configured provisioned concurrency totals
// provisioned, when the other functions claim others (Σ R of the reserved
// ones, Σ P of the rest), with AWS's messages in AWS's order. It is pure,
// so that a plan can be checked without a store (package simulate).
func CheckReservation(limits account.Limits, others int64, n, provisioned int) error {
	if n > 0 && !limits.Allows(others+int64(n)) {
		return awserr.NoType(awserr.InvalidParameterValue, "Specified ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value of [%d].", limits.Minimum())
	}
	if n < provisioned {
		return awserr.NoType(awserr.InvalidParameterValue, " ReservedConcurrentExecutions  %d should not be lower than function's total provisioned concurrency [%d].", n, provisioned)
	}
	return nil
}

// CheckProvisioned is PutProvisionedConcurrencyConfig's check of n
// provisioned environments on one target of a function whose other
// targets have otherTargets configured, under the function's reservation
// (nil: none), when the other functions claim others, with AWS's messages
// in AWS's order. It is pure, as CheckReservation is.
func CheckProvisioned(limits account.Limits, reserved *int, others int64, otherTargets, n int) error {
	if n > limits.Concurrency {
		return awserr.NoType(awserr.InvalidParameterValue, "Specified ConcurrentExecutions for function is greater than account's unreserved concurrency [%d].", limits.Concurrency)
	}
	if reserved != nil {
		if otherTargets+n > *reserved {
			return awserr.New(awserr.InvalidParameterValue, "Requested Provisioned Concurrency should not be greater than the reservedConcurrentExecution for function")
		}
		return nil
	}
	// Provisioned concurrency of a function without a reservation is its
	// claim on the unreserved pool.
	if !limits.Allows(others + int64(otherTargets+n)) {
		return awserr.NoType(awserr.InvalidParameterValue, "Specified ConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value of [%d].", limits.Minimum())
	}
	return nil
}

// GetFunctionConcurrency reads a function's reservation; ok is false when
// none is set.
func (s *Service) GetFunctionConcurrency(ctx context.Context, name string) (n int, ok bool, err error) {
	fname, err := s.unqualified(ctx, name)
	if err != nil {
		return 0, false, err
	}
	err = s.view(ctx, func(tx Tx) error {
		f, err := mustFunction(tx, fname, s.ARN(ctx, fname, ""))
		if err != nil {
			return err
		}
		if f.Reserved != nil {
			n, ok = *f.Reserved, true
		}
		return nil
	})
	return n, ok, internal("get function concurrency", err)
}

// DeleteFunctionConcurrency removes a function's reservation.
func (s *Service) DeleteFunctionConcurrency(ctx context.Context, name string) error {
	fname, err := s.unqualified(ctx, name)
	if err != nil {
		return err
	}
	err = s.update(ctx, func(tx Tx) error {
		f, err := mustFunction(tx, fname, s.ARN(ctx, fname, function.Latest))
		if err != nil {
			return err
		}
		old := f.Reserved
		if old == nil {
			return nil
		}
		f.Reserved = nil
		if err := tx.PutFunction(f); err != nil {
			return err
		}
		return s.appendAudit(ctx, tx, "DeleteFunctionConcurrency", fname, old, nil)
	})
	if err != nil {
		return internal("delete function concurrency", err)
	}
	return nil
}

// AccountSettings is GetAccountSettings' answer.
type AccountSettings struct {
	ConcurrentExecutions           int
	UnreservedConcurrentExecutions int
	FunctionCount                  int64
	TotalCodeSize                  int64
}

// GetAccountSettings reads the account's limits and usage from the running
// sums.
func (s *Service) GetAccountSettings(ctx context.Context) (*AccountSettings, error) {
	var out AccountSettings
	err := s.view(ctx, func(tx Tx) error {
		sums, err := tx.Sums()
		if err != nil {
			return err
		}
		out = AccountSettings{
			ConcurrentExecutions:           s.limits(ctx).Concurrency,
			UnreservedConcurrentExecutions: int(s.limits(ctx).Unreserved(sums.Claimed())),
			FunctionCount:                  sums.FunctionCount,
			TotalCodeSize:                  sums.TotalCodeSize,
		}
		return nil
	})
	return &out, internal("get account settings", err)
}

// appendAudit writes a concurrency change to the trail inside tx and logs
// it once the change is durable.
func (s *Service) appendAudit(ctx context.Context, tx Tx, op, fn string, old, new *int) error {
	r := s.auditRecord(ctx, op, fn)
	r.Old, r.New = old, new
	if err := tx.AppendAudit(r); err != nil {
		return err
	}
	tx.OnCommit(func() {
		s.log.LogAttrs(ctx, slogInfo, "concurrency changed", auditAttrs(r)...)
	})
	return nil
}

// auditRecord is a record of op on fn by the request's caller; with access
// control on (the caller has a principal), a change is an allowed
// decision.
func (s *Service) auditRecord(ctx context.Context, op, fn string) *store.AuditRecord {
	c := callerOf(ctx)
	r := &store.AuditRecord{Time: s.opts.Now().UTC(), RequestID: c.RequestID, AccessKeyID: c.AccessKeyID,
		Principal: c.Principal, SourceIP: c.SourceIP, Operation: op, Function: fn}
	if c.Principal != "" {
		r.Decision = "Allow"
	}
	return r
}

// AuditDecision records a decision on op that changed nothing: refused
// ("Deny"), or allowed and then answered with cause. The record is in the
// caller's account, under the function name as given.
func (s *Service) AuditDecision(ctx context.Context, op, name, decision string, cause error) {
	fn := name
	if ref, err := s.names(ctx).Parse(name); err == nil {
		fn = ref.Name
	}
	r := s.auditRecord(ctx, op, fn)
	r.Decision = decision
	r.Error = "InternalError"
	if e, ok := awserr.As(cause); ok {
		r.Error = string(e.Code)
	}
	err := s.update(ctx, func(tx Tx) error {
		rec := *r
		if err := tx.AppendAudit(&rec); err != nil {
			return err
		}
		tx.OnCommit(func() {
			s.log.LogAttrs(ctx, slogInfo, "concurrency decision", append(auditAttrs(&rec),
				slog.String("decision", rec.Decision), slog.String("error", rec.Error))...)
		})
		return nil
	})
	if err != nil {
		s.log.ErrorContext(ctx, "audit decision not recorded", "op", op, "function", fn, "err", err)
	}
}

// Audit returns recent audit records, newest first.
func (s *Service) Audit(ctx context.Context, before uint64, limit int) ([]*store.AuditRecord, error) {
	var out []*store.AuditRecord
	err := s.view(ctx, func(tx Tx) (err error) {
		out, err = tx.Audit(before, limit)
		return err
	})
	return out, internal("audit", err)
}
