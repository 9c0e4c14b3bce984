package debezium

import (
	"bytes"
	"slices"
	"testing"
)

// eachRecordSkipping calls check with every recorded record and two
// decoders of its fixture: one decoding whole, one skipping the images of
// transactional events (Decoder.SkipTransactionalImages).
func eachRecordSkipping(t *testing.T, check func(t *testing.T, full, skip *Decoder, rec Record)) {
	for _, f := range loadFixtures(t) {
		t.Run(f.name, func(t *testing.T) {
			full, skip := NewDecoder(f.options()), NewDecoder(f.options())
			skip.SkipTransactionalImages()
			for _, r := range f.records {
				check(t, full, skip, toRecord(r))
			}
		})
	}
}

// TestSkipTransactionalImages decodes every recorded record with and
// without Decoder.SkipTransactionalImages: an event of a source transaction
// decodes to the same Change but for its images, left nil and flagged
// ImagesSkipped (what its partition stages; the resolver decodes it whole);
// any other record (and an Avro one) decodes exactly as without.
func TestSkipTransactionalImages(t *testing.T) {
	skipped, whole := 0, 0
	eachRecordSkipping(t, func(t *testing.T, full, skip *Decoder, rec Record) {
		want, werr := full.Decode(rec)
		got, gerr := skip.Decode(rec)
		// Avro records (the magic byte first) are decoded whole.
		avro := len(rec.Value) > 0 && rec.Value[0] == 0
		if want.Transaction == nil || werr != nil || want.Kind != KindChange || avro {
			if (werr == nil) != (gerr == nil) || werr != nil && werr.Error() != gerr.Error() {
				t.Fatalf("%s@%d: error %v, skipping %v", rec.Topic, rec.Offset, werr, gerr)
			}
			if d := differing(want, got); len(d) > 0 {
				t.Fatalf("%s@%d (no transaction block): skipping decodes differently in %v", rec.Topic, rec.Offset, d)
			}
			whole++
			return
		}
		if gerr != nil {
			t.Fatalf("%s@%d: skipping fails with %v", rec.Topic, rec.Offset, gerr)
		}
		if !got.ImagesSkipped || got.Before != nil || got.After != nil {
			t.Fatalf("%s@%d: skipping left ImagesSkipped %v, before %v, after %v; want true and no images", rec.Topic, rec.Offset, got.ImagesSkipped, got.Before, got.After)
		}
		d := differing(want, got)
		d = slices.DeleteFunc(d, func(f string) bool { return f == "Before" || f == "After" || f == "ImagesSkipped" })
		if len(d) > 0 {
			t.Fatalf("%s@%d: skipping decodes differently in %v", rec.Topic, rec.Offset, d)
		}
		skipped++
	})
	if skipped == 0 || whole == 0 {
		t.Fatalf("%d events skipped, %d decoded whole: want both", skipped, whole)
	}
}

// TestSkipTransactionalImagesChecksSyntax breaks the after image of every
// recorded event of a source transaction: skipping its images still
// refuses it, as decoding does (a record that is not JSON is dead-lettered
// by its partition, not staged).
func TestSkipTransactionalImagesChecksSyntax(t *testing.T) {
	broken := 0
	const after = `"after":{`
	eachRecordSkipping(t, func(t *testing.T, full, skip *Decoder, rec Record) {
		ch, err := full.Decode(rec)
		at := bytes.Index(rec.Value, []byte(after))
		if err != nil || ch.Transaction == nil || at < 0 {
			return
		}
		bad := bytes.Clone(rec.Value)
		bad[at+len(after)] = '#'
		rec.Value = bad
		if _, err := skip.Decode(rec); err == nil {
			t.Fatalf("%s@%d: an after image broken at byte %d decodes when skipped", rec.Topic, rec.Offset, at+len(after))
		}
		broken++
	})
	if broken == 0 {
		t.Fatal("no recorded event of a source transaction with an after image")
	}
}
