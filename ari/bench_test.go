package ari

import (
	"testing"
)

// BenchmarkEvents measures events per second through decoding, call
// tracking and every detector (RunEventBench's traffic).
func BenchmarkEvents(b *testing.B) {
	r := RunEventBenchDetail(b.N)
	b.ReportMetric(r.EventsPerSec, "events/s")
	b.ReportMetric(r.HeapMB, "heapMB")
}

// TestEventBenchFlat: the heap after 60,000 events is no larger than
// after 10,000 (plus slack): state does not grow with traffic; and the
// calls are tracked to their end (settled from ChannelDestroyed).
func TestEventBenchFlat(t *testing.T) {
	small := RunEventBenchDetail(10_000)
	large := RunEventBenchDetail(60_000)
	t.Logf("%s", small)
	t.Logf("%s", large)
	if large.Events < 60_000 || large.EventsPerSec <= 0 {
		t.Fatalf("bench: %+v", large)
	}
	if large.HeapMB > small.HeapMB+4 {
		t.Errorf("heap grew from %.1f MB to %.1f MB", small.HeapMB, large.HeapMB)
	}
	if large.Settled < large.Calls*9/10 {
		t.Errorf("only %d of %d calls settled", large.Settled, large.Calls)
	}
}
