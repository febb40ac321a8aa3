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
