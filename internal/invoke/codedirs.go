package invoke

// Code gives environments their code: the directory of an archive's
// unpacked tree, by CodeSha256, held until release is called. The store
// (store.DB.CodeDir) owns the trees: it unpacks, checks and removes them,
// and removes none while it is held.
type Code interface {
	CodeDir(sha string) (dir string, release func(), err error)
}

// holdCode is the execenv.Spec.Hold of code sha: every environment holds
// its code's tree from its creation until its process is gone, so that
// the files stay while anything runs in them (python, for one, reads its
// modules lazily), even when the function is deleted meanwhile. It is
// called while the invocation that creates the environment holds the tree
// itself, so it cannot fail then; a failure otherwise (provisioned
// environments started later) leaves the environment to fail its start.
func holdCode(code Code, sha string) func() func() {
	return func() func() {
		_, release, err := code.CodeDir(sha)
		if err != nil {
			return func() {}
		}
		return release
	}
}
