package control

import (
	"context"

	"github.com/lambdad/lambdad/internal/function"
	"github.com/lambdad/lambdad/internal/store"
)

// Tx is what an operation reads and writes in one transaction, by the
// records of package store. A body may run more than once (a transaction
// on a shared store retries on conflict): it reads and writes only through
// tx, and what it leaves outside is set afresh on each run, never added to.
type Tx interface {
	Sums() (store.Sums, error)

	Function(name string) (*function.Function, error)
	PutFunction(f *function.Function) error
	DeleteFunction(name string) error
	Functions(after string, limit int) ([]*function.Function, error)
	ScanFunctions(fn func(*function.Function) error) error

	Version(name, version string) (*function.Config, error)
	PutVersion(c *function.Config) error
	DeleteVersion(name, version string) error
	Versions(name, after string, limit int) ([]*function.Config, error)

	Alias(name, alias string) (*function.Alias, error)
	PutAlias(name string, a *function.Alias) error
	DeleteAlias(name, alias string) error
	Aliases(name, after string, limit int) ([]*function.Alias, error)

	ProvisionedConfig(name, qualifier string) (*store.ProvisionedConfig, error)
	ProvisionedConfigs(name string) ([]*store.ProvisionedConfig, error)
	PutProvisionedConfig(p *store.ProvisionedConfig, version string) error
	DeleteProvisionedConfig(name, qualifier string) error

	EventConfig(name, qualifier string) (*store.EventConfig, error)
	EventConfigs(name string) ([]*store.EventConfig, error)
	PutEventConfig(c *store.EventConfig) error
	DeleteEventConfig(name, qualifier string) error

	CodeSigningConfig(id string) (*store.CodeSigningConfig, error)
	PutCodeSigningConfig(c *store.CodeSigningConfig) error
	DeleteCodeSigningConfig(id string) error
	CodeSigningConfigs(after string, limit int) ([]*store.CodeSigningConfig, error)

	EventSourceMapping(uuid string) (*store.EventSourceMapping, error)
	PutEventSourceMapping(m *store.EventSourceMapping) error
	DeleteEventSourceMapping(m *store.EventSourceMapping) error
	EventSourceMappings(after string, limit int) ([]*store.EventSourceMapping, error)

	AppendAudit(r *store.AuditRecord) error
	Audit(before uint64, limit int) ([]*store.AuditRecord, error)

	// OnCommit runs fn once the transaction has committed, and only then.
	OnCommit(fn func())
}

// Store is what the control plane needs of the store: transactions,
// content-addressed code put before the transaction that refers to it, and
// the change feed its resolve cache follows. Bolt adapts the embedded
// store; a store shared by several nodes provides the same.
type Store interface {
	// View and Update run fn in a transaction on one account's records.
	View(ctx context.Context, account string, fn func(Tx) error) error
	Update(ctx context.Context, account string, fn func(Tx) error) error
	SaveCode(sha string, zip []byte) (release func(), err error)
	CodePath(sha string) string
	Subscribe(s store.Subscriber) error
}

// Bolt is the Store of the embedded database.
func Bolt(db *store.DB) Store { return boltStore{db} }

type boltStore struct{ db *store.DB }

// View and Update start no transaction for a caller that has gone.
func (b boltStore) View(ctx context.Context, account string, fn func(Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return b.db.View(func(tx *store.Tx) error { return fn(tx.In(account)) })
}

func (b boltStore) Update(ctx context.Context, account string, fn func(Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return b.db.Update(func(tx *store.Tx) error { return fn(tx.In(account)) })
}

func (b boltStore) SaveCode(sha string, zip []byte) (func(), error) { return b.db.SaveCode(sha, zip) }
func (b boltStore) CodePath(sha string) string                      { return b.db.CodePath(sha) }
func (b boltStore) Subscribe(s store.Subscriber) error              { return b.db.Subscribe(s) }
