// Package query is the pure part of answering a query: parsing its
// parameters, matching encoded records against it without decoding them, and
// merging ordered result streams. It does no I/O.
package query
