// Package deps has no code: its test checks that lambdad's imports point
// one way (the HTTP edge calls the core, the core never calls the edge) and
// that each outside library stays in the package that owns its concern.
package deps
