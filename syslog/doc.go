// Package syslog is logmesh's syslog edge: it parses RFC 5424 and RFC 3164
// messages into record.Record values, splits TCP streams into messages
// (RFC 6587 octet counting and newline framing, detected per message), and
// runs the TCP, UDP and TLS (RFC 5425) listeners that hand batches of records
// to a Sink.
//
// # Layers
//
//	Parser       pure: bytes + receive time -> record.Record (no I/O, no clock)
//	FrameReader  pure over an io.Reader: stream -> frames, bounded memory
//	Server       sockets, deadlines, batching, backpressure, stats
//
// # What is never lost
//
// Every message is stored with its raw bytes (record.Record.Raw), whether it
// parses or not. A message that does not parse completely is flagged
// (record.FlagParseError) with a record.Reason, keeps every field that could
// be recovered, and its text is in Message so a text search still finds it.
// A malformed frame never costs a connection its other lines: of all
// malformed input only broken octet framing, after which the stream cannot be
// resynchronised, closes a TCP connection, and only after the frames before it
// and the broken frame itself were handed to the Sink. (Timeouts, a failing
// Sink and Close end connections too.)
//
// # Parsing
//
// The format is chosen per message: after a valid PRI, "1 " means RFC 5424,
// anything else RFC 3164. github.com/leodido/go-syslog/v4 parses each
// message, but its result is only used when it agrees byte for byte with this
// package's own structural scan of the same bytes; otherwise the scan's
// fields are used (see Parser for the exact rules). The scan is the authority
// for RFC 3164, whose grammar go-syslog resolves wrongly in places (a tag it
// reports for "host app[12 msg", no message and no error for text holding a
// control byte, no timestamp when the message ends right after it).
//
// # Framing
//
// A frame that starts with a digit 1-9 followed by at most ten digits in
// total and a space is octet counted; every other frame is a line ended by
// LF. The count is checked against the size limit before anything is
// allocated, an oversized message keeps its first MaxMessageBytes bytes and
// the rest is skipped without being buffered (see FrameReader).
//
// # Hostile senders
//
// Before a byte is read, a connection must come from Config.Allow and find a
// slot under MaxConnections and MaxConnectionsPerSource; a TLS connection
// must then finish its handshake within HandshakeTimeout (TLS 1.2 or 1.3,
// with a verified client certificate under ClientAuthVerify). IdleTimeout
// and FrameTimeout close idle and trickling connections. An idle connection
// holds no read buffer. Every refusal and close is counted (Stats) by
// reason. Over TLS, octet counting is expected: a newline-framed message is
// stored flagged ReasonFraming.
//
// # Backpressure
//
// A TCP connection reads nothing while its batch is being stored: Sink.Ingest
// blocks until the batch is durable, and a record is never held back waiting
// for more input (the batch is flushed before every blocking read). A batch
// is therefore at most what one read brings: a connection starts with a
// 32 KiB read buffer, and a plain TCP one whose reads keep filling it (a
// sender with a backlog) gets a 256 KiB one until its reads stay small, at
// most 64 connections at a time (Stats.LargeReadBuffers).
package syslog
