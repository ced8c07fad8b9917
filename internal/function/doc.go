// Package function holds lambdad's domain types and rules for functions,
// versions and aliases: their stored configuration, their names, ARNs and
// qualifiers. It is pure Go with no I/O, so every rule can be table-tested
// and fuzzed.
package function
