// Package cluster will wire hollywood remoting for enterprise deployments
// (several core nodes plus embedding workers). Nothing is implemented yet: a
// single core node runs everything.
package cluster
