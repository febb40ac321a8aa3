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

func TestEventBenchSmoke(t *testing.T) {
	r := RunEventBenchDetail(20_000)
	if r.Events < 20_000 || r.EventsPerSec <= 0 || r.Calls == 0 {
		t.Fatalf("bench: %+v", r)
	}
	t.Logf("%+v", r)
}

// TestEventBenchFlat: the heap after 200,000 events is no larger than
// after 50,000 (plus slack): state does not grow with traffic.
func TestEventBenchFlat(t *testing.T) {
	small := RunEventBenchDetail(50_000)
	large := RunEventBenchDetail(200_000)
	if large.HeapMB > small.HeapMB+4 {
		t.Errorf("heap grew from %.1f MB to %.1f MB", small.HeapMB, large.HeapMB)
	}
	if large.Settled < large.Calls*9/10 {
		t.Errorf("only %d of %d calls settled", large.Settled, large.Calls)
	}
}
