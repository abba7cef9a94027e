// Package evidence owns a case's evidence files: their storage, type
// sniffing, analysis and the back end of the agent's evidence tools (list,
// read, search, timeline, digests). It has no HTTP; the gateway and the
// agent call its Store.
//
// Storage: records live in the "evid" keyspace, contents in the node's
// content-addressed blob store, named by SHA-256 and never by anything a
// user supplied (file names are sanitized and display-only). Keys:
//
//	f/<caseID>/<fileID>  JSON File
//	a/<caseID>/<fileID>  JSON analysis: the LLM digest and timeline events
//	h/<caseID>/<sha256>  id of the case's first file with this content
//	r/<sha256>           number of files, in all cases, referencing the blob
//
// Each logical step (an upload, a deletion, a case deletion) is one batch
// committed with Sync before it is acknowledged. A blob is removed when its
// reference count reaches zero. Uploads stream: memory per upload is
// bounded by the 8 KiB sniffing prefix and the analysers' own bounds, never
// by the file size. Repeated content within a case is stored once, recorded
// as a duplicate (DuplicateOf) and reuses the first upload's analysis;
// different cases share the blob but nothing else.
//
// Concurrency: Store is safe for concurrent use. Uploads stream, sniff and
// analyse in parallel; one mutex serialises only the short commits of
// records and reference counts with blob removal. A blob whose last
// reference goes while an upload is in flight is removed when no upload is
// in flight any more (if still unreferenced), so an upload never loses the
// blob it has just written. Reads and searches open blobs without locks: a
// file deleted meanwhile stays readable through the open handle.
//
// Crash windows leave garbage, never dangling records: a blob written but
// not yet referenced, or unreferenced but not yet removed, stays on disk.
//
// Must not: import the actors or gateway packages, touch another module's
// keyspace, open Pebble or build file paths from user input, or hold a
// whole upload in memory.
package evidence
