// Package recording is the on-disk form of Kafka records captured from the
// real stack: one JSON object per line, bytes kept exactly as Kafka held them.
//
// It must never interpret a record's key or value: decoding tests read these
// files and decide what the bytes mean.
package recording
